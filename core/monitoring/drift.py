"""Per-field drift with Evidently 0.7's own column typing, default test choice and statistical tests.

This is the only module that imports Evidently, so its API churn stays here. Evidently is imported
lazily (it takes seconds), so the CLI and the pages start fast and pay for it only when drift is computed.

Each column is tested the way `Report([DataDriftPreset()])` tests it: the column type is inferred from the
current data, infinities and missing values are dropped, the default test is chosen from the reference
size and the number of distinct values, and Evidently's test function gives the score and the decision.
Calling the tests per column on bounded samples costs close to plain scipy, instead of a whole Report.

An evaluation window is not sampled: `data_drift_counted` takes each current column as the lake's engine
summed it (`Counted`: distinct values or fine bins with their counts) and runs the same tests on weighted
values with Evidently's own typing, test choice and thresholds (exact on distinct values; on bins, the
Wasserstein distance from bin means and the K-S statistic with values spread evenly inside a bin).
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

SAMPLE_ROWS = 100_000  # rows per side a drift test on frames sees (a drill-down); larger frames are sampled
REPORT_ROWS = 5_000  # rows per side in the full HTML report
_TYPE_NAMES = {"num": "numeric", "cat": "categorical", "text": "text"}


@dataclass(frozen=True)
class FieldDrift:
    field: str
    type: str  # numeric | categorical | text | untested
    method: str  # Evidently's test name ("wasserstein", "ks", ...), "" when not tested
    method_label: str  # Evidently's display name ("Wasserstein distance (normed)")
    threshold: float | None
    score: float | None
    drifted: bool
    note: str = ""

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class DriftSummary:
    fields: list[FieldDrift]  # in the order asked for
    drifted_fields: int
    drift_share: float | None  # drifted / tested fields
    prediction: FieldDrift | None

    @property
    def tested(self) -> int:
        return sum(1 for f in self.fields if f.method)


def bounded(frame: pd.DataFrame, *, limit: int, seed: int = 0) -> pd.DataFrame:
    """At most `limit` rows, sampled with a fixed seed so the same window gives the same answer."""
    if len(frame) <= limit:
        return frame
    return frame.sample(n=limit, random_state=seed).sort_index()


def column_type(series: pd.Series) -> str | None:
    """How Evidently types this column in a current dataset: numeric, categorical, text, or None (skipped)."""
    from evidently.core.datasets import infer_column_type

    return _TYPE_NAMES.get(infer_column_type(series).value)


def _untested(name: str, kind: str, note: str) -> FieldDrift:
    return FieldDrift(field=name, type=kind, method="", method_label="", threshold=None, score=None,
                      drifted=False, note=note)


def _distinct_upto(reference: pd.Series, current: pd.Series, cap: int) -> int:
    """Distinct values of both series together (as Evidently counts them), exact up to `cap`.

    The heads are checked first: when they alone hold more than `cap` values the full count is not needed,
    which saves a hash of every row on continuous columns.
    """
    head = pd.concat([reference.iloc[:256], current.iloc[:256]]).nunique()
    if head > cap:
        return head
    return int(pd.concat([reference, current]).nunique())


def default_test(reference: pd.Series, current: pd.Series, ctype):  # noqa: ANN001, ANN201 - Evidently types
    """Evidently 0.7's default test for cleaned columns (its `_get_default_stattest`, without a full count).

    Reference > 1000 rows: Wasserstein (numeric, > 5 values) or Jensen-Shannon; otherwise K-S (numeric,
    > 5 values), chi-squared (> 2 values) or Z-test. Text columns get the text-content tests.
    """
    return _choose_test(ctype, large=reference.shape[0] > 1000,
                        distinct=lambda cap: _distinct_upto(reference, current, cap))


def _choose_test(ctype, *, large: bool, distinct):  # noqa: ANN001, ANN202 - Evidently types
    """Evidently's rule; DISTINCT(cap) counts the values of both columns together, exactly up to cap."""
    from evidently.legacy.calculations import stattests
    from evidently.legacy.core import ColumnType

    if ctype == ColumnType.Text:
        return stattests.abs_text_content_drift_stat_test if large else stattests.perc_text_content_drift_stat_test
    if ctype == ColumnType.Numerical:
        n_values = distinct(5)
        if large:
            return stattests.wasserstein_stat_test if n_values > 5 else stattests.jensenshannon_stat_test
        if n_values > 5:
            return stattests.ks_stat_test
        return stattests.chi_stat_test if n_values > 2 else stattests.z_stat_test
    if ctype == ColumnType.Categorical:
        if large:
            return stattests.jensenshannon_stat_test
        return stattests.chi_stat_test if distinct(2) > 2 else stattests.z_stat_test
    raise ValueError(f"no default drift test for column type {ctype}")


def clean(series: pd.Series) -> pd.Series:
    """What Evidently tests of a column: infinities and missing values dropped."""
    return series.replace([-np.inf, np.inf], np.nan).dropna()


def prepared_reference(reference: pd.DataFrame, columns: list[str], *, limit: int = SAMPLE_ROWS) -> dict[str, pd.Series]:
    """A reference sample bounded and cleaned once, for many windows to be tested against."""
    ref = bounded(reference, limit=limit)
    return {c: clean(ref[c]) for c in columns if c in ref}


def field_drift(*, name: str, reference: pd.Series, current: pd.Series, kind: str | None = None,
                reference_clean: bool = False) -> FieldDrift:
    """Test one field as DataDriftPreset would; `kind` defaults to Evidently's typing of the current data."""
    from evidently.legacy.core import ColumnType

    kind = kind or column_type(current)
    if kind is None:
        return _untested(name, "untested", "not a numeric, categorical or text column")
    ref = reference if reference_clean else clean(reference)
    cur = clean(current)
    if ref.empty or cur.empty:
        return _untested(name, kind, f"no values in the {'reference' if ref.empty else 'current'} data")
    ctype = {"numeric": ColumnType.Numerical, "categorical": ColumnType.Categorical, "text": ColumnType.Text}[kind]
    if ctype == ColumnType.Numerical and not (pd.api.types.is_numeric_dtype(ref) and pd.api.types.is_numeric_dtype(cur)):
        return _untested(name, kind, "values are not all numbers")
    test = default_test(ref, cur, ctype)
    result = test(ref, cur, ctype, None)
    return FieldDrift(field=name, type=kind, method=test.name, method_label=test.display_name,
                      threshold=float(result.actual_threshold), score=float(result.drift_score),
                      drifted=bool(result.drifted))


def data_drift(*, reference: pd.DataFrame | dict[str, pd.Series], current: pd.DataFrame, columns: list[str],
               prediction_column: str | None = None, limit: int = SAMPLE_ROWS) -> DriftSummary:
    """Drift of every field (and of the prediction) between a reference (a frame, or `prepared_reference`)
    and a current frame."""
    wanted = [*columns, *([prediction_column] if prediction_column else [])]
    ref = reference if isinstance(reference, dict) else prepared_reference(reference, wanted, limit=limit)
    cur = bounded(current, limit=limit)

    def test(c: str) -> FieldDrift:
        if c not in ref or c not in cur:
            return _untested(c, "untested", "missing from the reference or the current data")
        return field_drift(name=c, reference=ref[c], current=cur[c], reference_clean=True)

    fields = [test(c) for c in columns]
    tested = [f for f in fields if f.method]
    drifted = sum(1 for f in tested if f.drifted)
    prediction = test(prediction_column) if prediction_column and prediction_column in ref and \
        prediction_column in cur else None
    return DriftSummary(fields=fields, drifted_fields=drifted,
                        drift_share=(drifted / len(tested)) if tested else None, prediction=prediction)


def full_report_html(*, reference: pd.DataFrame, current: pd.DataFrame, columns: list[str],
                     limit: int = REPORT_ROWS) -> str:
    """Evidently's full data drift report on bounded samples, as a standalone HTML page with `</` escaped."""
    from evidently import Report
    from evidently.presets import DataDriftPreset

    ref = bounded(reference[columns], limit=limit).reset_index(drop=True)
    cur = bounded(current[columns], limit=limit).reset_index(drop=True)
    snapshot = Report([DataDriftPreset(columns=columns)]).run(cur, ref)
    return escape_scripts(snapshot.get_html_str(as_iframe=False))


_SCRIPT_OPEN = re.compile(r"<script\b[^>]*>", re.IGNORECASE)
_SCRIPT_CLOSE = re.compile(r"</script\s*>", re.IGNORECASE)
_DATA_STATEMENT = re.compile(r"\s*var\s+[A-Za-z_$][\w$]*\s*=\s*")


def _data_block_end(html: str, start: int) -> int | None:
    """End of a block of `var NAME = <JSON>;` statements, found by parsing the JSON, not by searching."""
    decoder = json.JSONDecoder()
    pos, parsed = start, False
    while True:
        match = _DATA_STATEMENT.match(html, pos)
        if not match:
            break
        try:
            _value, end = decoder.raw_decode(html, match.end())
        except json.JSONDecodeError:
            return None
        pos, parsed = end, True
        semicolon = re.compile(r"\s*;").match(html, pos)
        if semicolon:
            pos = semicolon.end()
    return pos if parsed else None


def escape_scripts(html: str) -> str:
    """Escape every `</` inside the page's scripts as `<\\/`, so inlined data cannot close its script tag.

    Evidently inlines the report data as `var NAME = <JSON>;` in a script. A value such as
    `</script><script>…` inside that JSON would end the script early; the JSON is therefore delimited by
    parsing it, never by searching for the closing tag, and `<\\/` means the same inside JS strings.
    """
    out: list[str] = []
    pos = 0
    while True:
        opening = _SCRIPT_OPEN.search(html, pos)
        if not opening:
            out.append(html[pos:])
            return "".join(out)
        out.append(html[pos:opening.end()])
        body_start = opening.end()
        data_end = _data_block_end(html, body_start)
        closing = _SCRIPT_CLOSE.search(html, data_end if data_end is not None else body_start)
        if not closing:  # an unterminated script: escape the rest
            out.append(html[body_start:].replace("</", "<\\/"))
            return "".join(out)
        body = html[body_start:closing.start()].replace("</", "<\\/")
        if data_end is not None:  # untrusted data: "<!--" could also keep the script from closing
            body = body.replace("<!--", "\\u003c!--")
        out.append(body)
        out.append(html[closing.start():closing.end()])
        pos = closing.end()


def histogram(*, reference: pd.Series, current: pd.Series, bins: int = 30) -> pd.DataFrame:
    """Shares of reference and current values in common bins (numbers) — for a distribution chart."""
    ref = pd.to_numeric(reference, errors="coerce").replace([-np.inf, np.inf], np.nan).dropna().to_numpy(float)
    cur = pd.to_numeric(current, errors="coerce").replace([-np.inf, np.inf], np.nan).dropna().to_numpy(float)
    both = np.concatenate([ref, cur])
    if both.size == 0:
        return pd.DataFrame(columns=["start", "end", "dataset", "share"])
    edges = np.histogram_bin_edges(both, bins=bins)
    rows = []
    for label, values in (("reference", ref), ("current", cur)):
        counts = np.histogram(values, bins=edges)[0]
        shares = counts / max(values.size, 1)
        rows += [{"start": float(a), "end": float(b), "dataset": label, "share": float(s)}
                 for a, b, s in zip(edges[:-1], edges[1:], shares, strict=True)]
    return pd.DataFrame(rows)


def category_shares(*, reference: pd.Series, current: pd.Series, top: int = 30) -> pd.DataFrame:
    """Shares of each category (the most frequent `top`, the rest as "(other)") in reference and current."""
    ref = reference.dropna().astype(str)
    cur = current.dropna().astype(str)
    order = pd.concat([ref, cur]).value_counts().index.tolist()
    keep = set(order[:top])
    rows = []
    for label, values in (("reference", ref), ("current", cur)):
        shares = values.where(values.isin(keep), "(other)").value_counts(normalize=True)
        rows += [{"category": str(k), "dataset": label, "share": float(v)} for k, v in shares.items()]
    return pd.DataFrame(rows, columns=["category", "dataset", "share"])


# --- drift from a window's aggregates -------------------------------------------------------------------------

@dataclass(frozen=True)
class Counted:
    """A current column as the engine summed it: cleaned values (no missing, no infinities) with their counts.

    Numbers come as groups: `low`/`high` the smallest and largest value of each group, `total` their sum. A
    group whose low equals its high is one distinct value (always so when `exact`); otherwise it is a fine bin
    of the column's histogram. Categories come as distinct values (`values`, text) with their counts.
    """

    kind: str | None  # Evidently's typing of the current column: numeric | categorical | text | None
    counts: np.ndarray
    low: np.ndarray | None = None
    high: np.ndarray | None = None
    total: np.ndarray | None = None
    values: np.ndarray | None = None  # distinct values (categories, or numbers when exact)

    @property
    def rows(self) -> int:
        return int(self.counts.sum())

    @property
    def exact(self) -> bool:
        return self.values is not None or bool(np.array_equal(self.low, self.high))

    def points(self) -> np.ndarray:
        """A representative value per group: the value itself, or the mean of a bin."""
        if self.values is not None:
            return self.values
        return np.where(self.low == self.high, self.low, self.total / np.maximum(self.counts, 1))

    def distinct(self) -> np.ndarray:
        """The distinct values (only when exact)."""
        return self.values if self.values is not None else self.low

    def expanded(self) -> pd.Series:
        """Every value again (only for exact columns, small enough to hold)."""
        return pd.Series(np.repeat(self.distinct(), self.counts.astype(np.int64)))


def _n_values(reference: pd.Series, current: Counted, cap: int) -> int:
    """Distinct values of reference and current together, exact up to `cap` (a lower bound for binned numbers,
    whose bins each hold at least one value and, when low < high, at least two)."""
    if not current.exact:
        return max(int(reference.nunique()), int(np.sum(np.where(current.low == current.high, 1, 2))))
    values = current.distinct()
    if len(values) > cap:  # already more than the test choice needs to know
        return len(values)
    return len(set(reference.unique().tolist()) | set(values.tolist()))


def counted_test(reference: pd.Series, current: Counted, ctype):  # noqa: ANN001, ANN201 - Evidently types
    """`default_test`'s choice, made from a current column's counts."""
    return _choose_test(ctype, large=reference.shape[0] > 1000,
                        distinct=lambda cap: _n_values(reference, current, cap))


def _shares(reference: pd.Series, current: Counted) -> tuple[list, np.ndarray, np.ndarray]:
    """Counts of reference and current per value of either (Evidently's value-count binning)."""
    ref_counts = reference.value_counts()
    cur_counts: dict = {}
    for value, n in zip(current.distinct().tolist(), current.counts.tolist(), strict=True):
        cur_counts[value] = cur_counts.get(value, 0) + n
    keys = list(set(ref_counts.index.tolist()) | set(cur_counts))
    ref = np.array([float(ref_counts.get(k, 0)) for k in keys])
    cur = np.array([float(cur_counts.get(k, 0)) for k in keys])
    return keys, ref, cur


def wasserstein_counted(reference: pd.Series, current: Counted) -> float:
    """Wasserstein distance normed by the reference's standard deviation, the current side weighted."""
    from scipy import stats

    norm = max(float(np.std(reference)), 0.001)
    return float(stats.wasserstein_distance(reference.to_numpy(float), current.points().astype(float),
                                            None, current.counts.astype(float))) / norm


def jensenshannon_counted(reference: pd.Series, current: Counted) -> float:
    from scipy.spatial import distance

    _keys, ref, cur = _shares(reference, current)
    return float(distance.jensenshannon(ref / reference.shape[0], cur / current.rows))


def chisquare_counted(reference: pd.Series, current: Counted) -> float:
    from scipy.stats import chisquare

    _keys, ref, cur = _shares(reference, current)
    return float(chisquare(cur, ref * (current.rows / reference.shape[0]))[1])


def z_counted(reference: pd.Series, current: Counted) -> float:
    """Evidently's two-proportion Z-test: the share of values other than the smallest, in each dataset."""
    from scipy.stats import norm

    keys, ref, cur = _shares(reference, current)
    if len(keys) == 1:
        return 1.0
    first = keys.index(sorted(keys)[0])
    n1, n2 = float(ref.sum()), float(cur.sum())
    p1, p2 = (n1 - ref[first]) / n1, (n2 - cur[first]) / n2
    pooled = (p1 * n1 + p2 * n2) / (n1 + n2)
    z = (p1 - p2) / np.sqrt(pooled * (1 - pooled) * (1.0 / n1 + 1.0 / n2))
    return float(2 * (1 - norm.cdf(np.abs(z))))


def _current_cdf(current: Counted, at: np.ndarray, *, left: bool) -> np.ndarray:
    """Share of current values <= `at` (< `at` with `left`), values spread evenly inside a bin's [low, high]."""
    order = np.argsort(current.low, kind="mergesort")
    low, high = current.low[order], current.high[order]
    counts = current.counts[order].astype(float)
    before = np.r_[0.0, np.cumsum(counts)]
    i = np.searchsorted(low, at, side="left" if left else "right") - 1
    inside = np.clip(i, 0, len(low) - 1)
    span = high[inside] - low[inside]
    part = np.where(span > 0, (at - low[inside]) / np.where(span > 0, span, 1.0), 1.0)
    part = np.where(high[inside] <= at, 1.0, np.clip(part, 0.0, 1.0))
    got = np.where(i >= 0, before[inside] + counts[inside] * part, 0.0)
    return got / counts.sum()


def ks_counted(reference: pd.Series, current: Counted) -> float:
    """The two-sample K-S p-value as `scipy.stats.ks_2samp` gives it (exact below 10,000 rows a side, else
    Smirnov's asymptotic distribution), from the current column's groups."""
    from scipy import stats

    ref = np.sort(reference.to_numpy(float))
    n1, n2 = ref.size, current.rows
    if current.exact and max(n1, n2) <= 10_000:
        return float(stats.ks_2samp(ref, current.expanded().to_numpy(float))[1])
    at = np.unique(np.r_[ref, current.low, current.high])
    right = np.abs(np.searchsorted(ref, at, side="right") / n1 - _current_cdf(current, at, left=False))
    left = np.abs(np.searchsorted(ref, at, side="left") / n1 - _current_cdf(current, at, left=True))
    d = float(max(right.max(), left.max()))
    m, n = sorted([float(n1), float(n2)], reverse=True)
    return float(np.clip(stats.distributions.kstwo.sf(d, np.round(m * n / (m + n))), 0, 1))


_COUNTED = {"wasserstein": wasserstein_counted, "jensenshannon": jensenshannon_counted,
            "chisquare": chisquare_counted, "z": z_counted, "ks": ks_counted}


def field_drift_counted(*, name: str, reference: pd.Series, current: Counted) -> FieldDrift:
    """Test one field as DataDriftPreset would, from the reference's values and the current column's counts.

    `reference` is cleaned (`prepared_reference`). Text columns are tested on their values again (Evidently's
    text tests need them), numbers and categories from the counts.
    """
    from evidently.legacy.core import ColumnType

    if current.kind is None:
        return _untested(name, "untested", "not a numeric, categorical or text column")
    if reference.empty or current.rows == 0:
        return _untested(name, current.kind, f"no values in the {'reference' if reference.empty else 'current'} data")
    if current.kind == "text":
        return field_drift(name=name, reference=reference, current=current.expanded(), kind="text",
                           reference_clean=True)
    ctype = ColumnType.Numerical if current.kind == "numeric" else ColumnType.Categorical
    if ctype == ColumnType.Numerical and (current.values is not None or
                                          not pd.api.types.is_numeric_dtype(reference)):
        return _untested(name, current.kind, "values are not all numbers")
    test = counted_test(reference, current, ctype)
    score = _COUNTED[test.name](reference, current)
    threshold = float(test.default_threshold)
    drifted = score >= threshold if test.name in ("wasserstein", "jensenshannon") else \
        (score <= threshold if test.name == "ks" else score < threshold)
    return FieldDrift(field=name, type=current.kind, method=test.name, method_label=test.display_name,
                      threshold=threshold, score=score, drifted=bool(drifted))


def data_drift_counted(*, reference: dict[str, pd.Series], current: dict[str, Counted], columns: list[str],
                       prediction_column: str | None = None) -> DriftSummary:
    """`data_drift` from a window's counts: every field, and the prediction, against a prepared reference."""

    def test(c: str) -> FieldDrift:
        if c not in reference or c not in current:
            return _untested(c, "untested", "missing from the reference or the current data")
        return field_drift_counted(name=c, reference=reference[c], current=current[c])

    fields = [test(c) for c in columns]
    tested = [f for f in fields if f.method]
    drifted = sum(1 for f in tested if f.drifted)
    prediction = test(prediction_column) if prediction_column and prediction_column in reference and \
        prediction_column in current else None
    return DriftSummary(fields=fields, drifted_fields=drifted,
                        drift_share=(drifted / len(tested)) if tested else None, prediction=prediction)
