"""Per-field drift equals Evidently's DataDriftPreset on the same data, in both size regimes; the report embeds safely."""

from html.parser import HTMLParser

import numpy as np
import pandas as pd
import pytest
from evidently import Report
from evidently.legacy.calculations.stattests.registry import get_stattest
from evidently.legacy.core import ColumnType
from evidently.presets import DataDriftPreset

from core.monitoring import drift

HOSTILE = "</script><script>alert('pwned')</script>"


def _frame(n: int, *, seed: int, shifted: bool) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({
        "amount": rng.lognormal(3.5 + (0.4 if shifted else 0.0), 0.8, n),
        "card_age_days": rng.integers(1, 45, n) if shifted else rng.integers(1, 3000, n),
        "hour": rng.integers(0, 24, n),
        "score_like": rng.random(n),
        "segment": rng.integers(0, 4, n),  # few integer values: Evidently treats it as categorical
        "flag": rng.choice(["yes", "no"], n, p=[0.3, 0.7] if shifted else [0.5, 0.5]),  # two values: Z-test
        "channel": rng.choice(["pos", "online", "atm", HOSTILE], n),
        "rating": rng.choice([1.0, 2.0, 3.0, 4.0], n),  # a float column with few values
    })
    frame.loc[frame.sample(frac=0.05, random_state=seed).index, "amount"] = np.nan  # missing values are dropped
    frame.loc[0, "score_like"] = np.inf  # so are infinities
    return frame


def _evidently(reference: pd.DataFrame, current: pd.DataFrame) -> tuple[dict, dict]:
    snapshot = Report([DataDriftPreset()], include_tests=True).run(current, reference)
    data = snapshot.dict()
    per_column = {m["config"]["column"]: m for m in data["metrics"] if m["config"]["type"].endswith("ValueDrift")}
    count = next(m["value"] for m in data["metrics"] if m["config"]["type"].endswith("DriftedColumnsCount"))
    decisions = {t["name"].removeprefix("Value Drift for column "): str(t["status"]).endswith("FAIL")
                 for t in data["tests"] if t["name"].startswith("Value Drift for column ")}
    return {c: (m["value"], m["config"]["method"], m["config"]["threshold"], decisions[c])
            for c, m in per_column.items()}, count


@pytest.mark.parametrize(("ref_rows", "cur_rows"), [(800, 600), (3000, 2500)], ids=["small-reference", "large-reference"])
def test_field_drift_equals_evidently_data_drift_preset(ref_rows, cur_rows):
    reference = _frame(ref_rows, seed=1, shifted=False)
    current = _frame(cur_rows, seed=2, shifted=True)
    expected, count = _evidently(reference, current)
    summary = drift.data_drift(reference=reference, current=current, columns=list(reference.columns))
    got = {f.field: (f.score, f.method_label, f.threshold, f.drifted) for f in summary.fields}
    assert set(got) == set(expected)
    for name, (score, label, threshold, drifted) in expected.items():
        assert got[name][0] == pytest.approx(score, rel=1e-12, abs=1e-15), name
        assert got[name][1:] == (label, threshold, drifted), name
    assert summary.drifted_fields == count["count"]
    assert summary.drift_share == pytest.approx(count["share"])
    # Both regimes really were exercised.
    methods = {f.method for f in summary.fields}
    assert methods == ({"ks", "chisquare", "z"} if ref_rows <= 1000 else {"wasserstein", "jensenshannon"})
    assert next(f for f in summary.fields if f.field == "card_age_days").drifted


@pytest.mark.parametrize("ref_rows", [500, 1001])
@pytest.mark.parametrize("values", [[0.0, 1.0], [1, 2, 3], [1, 2, 3, 4, 5], list(range(6)), list(range(40))])
def test_test_choice_is_evidentlys_own(ref_rows, values):
    rng = np.random.default_rng(0)
    reference = pd.Series(rng.choice(values, ref_rows)).astype(float)
    current = pd.Series(rng.choice(values, 300)).astype(float)
    for ctype in (ColumnType.Numerical, ColumnType.Categorical):
        assert drift.default_test(reference, current, ctype) is get_stattest(reference, current, ctype, None)


def test_prediction_drift_and_untestable_fields_are_reported():
    reference = _frame(1500, seed=3, shifted=False).assign(__score__=np.random.default_rng(3).random(1500))
    current = _frame(900, seed=4, shifted=False).assign(__score__=np.random.default_rng(4).random(900) ** 3)
    current["empty"] = np.nan
    reference["empty"] = 1.0
    summary = drift.data_drift(reference=reference, current=current, columns=["amount", "empty", "absent"],
                               prediction_column="__score__")
    by_name = {f.field: f for f in summary.fields}
    assert summary.prediction.drifted and summary.prediction.method == "wasserstein"
    assert by_name["empty"].method == "" and "no values" in by_name["empty"].note
    assert by_name["absent"].method == "" and summary.tested == 1


def test_samples_are_bounded_and_repeatable():
    frame = _frame(5000, seed=5, shifted=False)
    a = drift.bounded(frame, limit=1000)
    assert len(a) == 1000 and a.equals(drift.bounded(frame, limit=1000))


class _Scripts(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.scripts: list[str] = []
        self._inside = False

    def handle_starttag(self, tag, attrs):  # noqa: ANN001
        if tag == "script":
            self._inside = True
            self.scripts.append("")

    def handle_endtag(self, tag):  # noqa: ANN001
        if tag == "script":
            self._inside = False

    def handle_data(self, data):  # noqa: ANN001
        if self._inside:
            self.scripts[-1] += data


def test_full_report_escapes_hostile_values_before_embedding():
    reference = _frame(300, seed=6, shifted=False).rename(columns={"hour": "<img src=x onerror=alert(1)>"})
    current = _frame(300, seed=7, shifted=True).rename(columns={"hour": "<img src=x onerror=alert(1)>"})
    html = drift.full_report_html(reference=reference, current=current, columns=list(reference.columns))
    parser = _Scripts()
    parser.feed(html)
    # The page keeps exactly its own scripts: data, globals, library, drawing. Nothing injected runs.
    assert len(parser.scripts) == 4
    assert not any("</" in body for body in parser.scripts)
    assert "alert('pwned')" in parser.scripts[0] and "<\\/script><script>alert('pwned')<\\/script>" in parser.scripts[0]
    assert HOSTILE not in html


def test_escaping_delimits_inlined_json_by_parsing_it():
    page = ('<html><head><script>\n    var d = {"v": "</script><script>evil()</script>", "w": "<!--<script>"};\n'
            '    var g = {};\n</script></head><body><script>var x = "</b>";</script></body></html>')
    escaped = drift.escape_scripts(page)
    parser = _Scripts()
    parser.feed(escaped)
    assert len(parser.scripts) == 2
    assert '"<\\/script><script>evil()<\\/script>"' in parser.scripts[0]
    assert "<!--" not in parser.scripts[0]
    assert parser.scripts[1] == 'var x = "<\\/b>";'


def test_distributions_for_charts():
    hist = drift.histogram(reference=pd.Series([1.0, 2.0, 3.0, np.nan]), current=pd.Series([3.0, 3.0, 4.0]), bins=3)
    assert set(hist["dataset"]) == {"reference", "current"}
    assert hist.groupby("dataset")["share"].sum().round(9).to_dict() == {"current": 1.0, "reference": 1.0}
    shares = drift.category_shares(reference=pd.Series(["a", "a", HOSTILE]), current=pd.Series(["b"]))
    assert HOSTILE in set(shares["category"])
