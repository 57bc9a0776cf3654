"""Per-field drift with Evidently 0.7's own column typing, default test choice and statistical tests.

This is the only module that imports Evidently, so its API churn stays here. Evidently is imported
lazily (it takes seconds), so the CLI and the pages start fast and pay for it only when drift is computed.

Each column is tested the way `Report([DataDriftPreset()])` tests it: the column type is inferred from the
current data, infinities and missing values are dropped, the default test is chosen from the reference
size and the number of distinct values, and Evidently's test function gives the score and the decision.
Calling the tests per column on bounded samples costs close to plain scipy, instead of a whole Report.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

SAMPLE_ROWS = 100_000  # rows per side a drift test sees; larger windows are sampled (fixed seed)
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
    from evidently.legacy.calculations import stattests
    from evidently.legacy.core import ColumnType

    large = reference.shape[0] > 1000
    if ctype == ColumnType.Text:
        return stattests.abs_text_content_drift_stat_test if large else stattests.perc_text_content_drift_stat_test
    if ctype == ColumnType.Numerical:
        n_values = _distinct_upto(reference, current, 5)
        if large:
            return stattests.wasserstein_stat_test if n_values > 5 else stattests.jensenshannon_stat_test
        if n_values > 5:
            return stattests.ks_stat_test
        return stattests.chi_stat_test if n_values > 2 else stattests.z_stat_test
    if ctype == ColumnType.Categorical:
        if large:
            return stattests.jensenshannon_stat_test
        return stattests.chi_stat_test if _distinct_upto(reference, current, 2) > 2 else stattests.z_stat_test
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
