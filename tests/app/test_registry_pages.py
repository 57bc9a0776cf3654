"""Experiments, Registry and Validation lab pages over the seeded fraud story."""

from __future__ import annotations

import re
from datetime import date

from tests.app.conftest import texts


def _open(page_as, page: str, username: str):  # noqa: ANN001, ANN202
    at = page_as(None, username=username)
    at.query_params["model"] = "fraud-detector"
    at.switch_page(page).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def test_a_data_scientist_trains_compares_and_promotes_a_candidate(page_as):
    at = _open(page_as, "pages/experiments.py", "dario")
    assert at.title[0].value == "Experiments"
    runs = at.dataframe[0].value
    retrained = runs.iloc[0]
    assert (retrained["Version"], retrained["By"]) == ("v3", "maya")

    at.selectbox(key="exp_algorithm").select("logistic_regression").run()
    at.date_input(key="exp_start").set_value(date(2026, 10, 15))
    at.date_input(key="exp_end").set_value(date(2026, 10, 28))
    at.button(key="exp_train").click().run()
    assert not at.exception, [e.value for e in at.exception]
    done = re.fullmatch(r"Training run (\d+) finished: ([\d,]+) rows in [\d.]+s, held-out ROC AUC 0\.\d+",
                        at.success[0].value)
    assert done, at.success[0].value
    run, rows = int(done.group(1)), int(done.group(2).replace(",", ""))
    assert 15_000 < rows <= 14 * 1500  # the labelled predictions of those two weeks
    runs = at.dataframe[0].value
    assert list(runs["Run"])[0] == run and runs.iloc[0]["Algorithm"] == "Logistic regression"
    assert runs.iloc[0]["Window"] == "2026-10-15 – 2026-10-29" and runs.iloc[0]["By"] == "dario"
    assert runs.iloc[0]["Rows"] == rows and runs.iloc[0]["Version"] == "—"

    at.multiselect(key="exp_compare").set_value([run, 1]).run()
    compared = at.dataframe[1].value
    assert list(compared.columns) == [f"run {run}", "run 1", "best"]
    assert compared.loc["roc_auc", "best"] in ("run 1", f"run {run}")

    at.selectbox(key="exp_promote_run").select(run)
    at.button(key="exp_promote").click().run()
    assert f"Run {run} is now fraud-detector v4, a candidate." in texts(at)
    assert at.dataframe[0].value.iloc[0]["Version"] == "v4"


def test_a_bad_training_window_is_refused_on_the_page(page_as):
    at = _open(page_as, "pages/experiments.py", "maya")
    at.date_input(key="exp_start").set_value(date(2027, 3, 1))
    at.date_input(key="exp_end").set_value(date(2027, 3, 31))
    at.button(key="exp_train").click().run()
    assert [e.value for e in at.error] == [
        "Training refused: no labelled rows for fraud-detector between 2027-03-01 00:00:00 and 2027-04-01 00:00:00: "
        "nothing to train on"]
    assert not at.success and list(at.dataframe[0].value["Run"]) == [1]


def test_the_registry_shows_versions_lineage_and_the_trigger_of_the_retrain(page_as):
    at = _open(page_as, "pages/registry.py", "rhea")
    assert at.title[0].value == "Registry"
    versions = at.dataframe[0].value.set_index("Version")
    assert versions.loc["v3", "Status"] == "🟡 candidate" and versions.loc["v3", "Origin"] == "scheduled retrain"
    assert versions.loc["v2", "Status"] == "🟢 active" and versions.loc["v2", "Running in"] == "production"
    assert versions.loc["v1", "Status"] == "⚪ archived"

    at.selectbox(key="reg_version_fraud-detector").select(3).run()
    shown = texts(at)
    assert "Retrained after the failed check **auc**" in shown
    assert "Origin:** scheduled retrain" in shown and "(verified)" in shown
    assert "Created by:** maya" in shown
    assert '"algorithm": "hist_gradient_boosting"' in " ".join(c.value for c in at.code)


def test_the_ml_engineer_compares_v2_and_v3_on_the_same_recent_data(page_as):
    at = _open(page_as, "pages/registry.py", "maya")
    assert at.selectbox(key="cmp_a_fraud-detector").value == 2
    assert at.selectbox(key="cmp_b_fraud-detector").value == 3
    at.button(key="cmp_go").click().run()
    assert not at.exception, [e.value for e in at.exception]
    shown = texts(at)
    assert "recent labelled predictions" in shown and "that neither version was trained on" in shown
    frames = {tuple(df.value.columns): df.value for df in at.dataframe}
    metrics = frames[("Metric", "v2", "v3", "Better")].set_index("Metric")
    assert metrics.loc["roc_auc", "Better"] == "v3" and metrics.loc["recall", "Better"] == "v3"
    business = frames[("Business metric", "v2", "v3", "Better")].set_index("Business metric")
    assert business.loc["Fraud missed (amount)", "Better"] == "v3"
    drift = frames[("Field", "Method", "Score", "Threshold", "Drifted")]
    assert drift.iloc[0]["Field"] == "card_age_days" and drift.iloc[0]["Drifted"] == "yes"


def test_the_validation_lab_what_if_explanations_diagnostics_and_verdict(page_as, monkeypatch):
    from core.validation import comparison, lab

    def computed(*_args, **_kwargs):  # noqa: ANN002, ANN003, ANN202
        raise AssertionError("the page computed permutation importance instead of reading it")

    monkeypatch.setattr(comparison, "permutation_importances", computed)
    monkeypatch.setattr(lab, "permutation_importances", computed)
    at = _open(page_as, "pages/validation.py", "maya")
    assert at.title[0].value == "Validation lab"
    assert at.selectbox(key="val_version_fraud-detector").value == 3  # the candidate waiting for review
    assert not at.metric  # the what-if opens on demand
    prefix = "wi_fraud-detector_3_"
    at.toggle(key="wi_open_fraud-detector_3").set_value(True).run()
    before = float(at.metric[0].value)
    shown = texts(at)
    assert "method: Shapley sampling (Štrumbelj & Kononenko)" in shown
    assert "add up to score − baseline within 1e-06" in shown

    at.number_input(key=prefix + "tx_last_24h").set_value(14.0)
    at.selectbox(key=prefix + "channel").select("online")
    at.number_input(key=prefix + "card_age_days").set_value(3.0).run()
    after = float(at.metric[0].value)
    assert after != before
    assert any(e.value.startswith("Decision: positive (is_fraud = 1)") for e in at.error) or \
        any(s.value.startswith("Decision: negative (is_fraud = 0)") for s in at.success)

    diagnostics = next(df.value for df in at.dataframe if "Diagnostic" in df.value.columns)
    assert list(diagnostics["Diagnostic"]) == ["Overfit", "Leakage", "Class imbalance", "Rows per feature",
                                               "Calibration", "Business metric vs active"]
    assert diagnostics.set_index("Diagnostic").loc["Leakage", "Status"] == "✅ pass"
    assert any("v3 beats v2 on roc_auc" in s.value for s in at.success)


def test_the_validation_lab_offers_to_compute_findings_it_does_not_have(page_as):
    from sqlmodel import delete

    from core.db import session_scope
    from core.entities import LabResult

    with session_scope() as s:  # as for a version registered before the lab stored its findings
        s.execute(delete(LabResult))
    at = _open(page_as, "pages/validation.py", "rhea")
    assert "were not computed for v3" in texts(at) and "Champion / challenger" not in texts(at)
    assert at.button(key="lab_compute").disabled  # a risk manager reads the lab but does not register versions

    at = _open(page_as, "pages/validation.py", "maya")
    at.button(key="lab_compute").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert "Computing… 0 of 4" in texts(at)


def test_the_validation_lab_explains_the_linear_v1_exactly(page_as):
    at = page_as(None, username="dario")
    at.query_params["model"] = "fraud-detector"
    at.query_params["version"] = "1"
    at.switch_page("pages/validation.py").run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.selectbox(key="val_version_fraud-detector").value == 1
    at.toggle(key="wi_open_fraud-detector_1").set_value(True).run()
    assert "method: Exact linear attribution: coefficient × (value − reference mean), in log-odds" in texts(at)


def test_a_crafted_pickle_uploaded_on_the_registry_page_is_refused_without_running(page_as, tmp_path):
    import io
    import os
    import subprocess
    import sys

    import joblib

    from core import audit
    from core.db import session_scope
    from core.demo import story

    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):  # noqa: ANN204
            return (os.system, (f"touch {marker}",))

    evil = io.BytesIO()
    joblib.dump(Payload(), evil)
    # The payload is armed: unpickling it the unsafe way runs the command.
    subprocess.run([sys.executable, "-c", "import pickle, sys; pickle.loads(sys.stdin.buffer.read())"],
                   input=evil.getvalue(), check=False)
    assert marker.exists()
    marker.unlink()

    frame = story.transactions(start=story.WAVE_START, days=1, per_day=80)
    reference = frame[[*story.FEATURE_NAMES, story.TARGET]].to_csv(index=False).encode()
    at = _open(page_as, "pages/registry.py", "maya")
    at.file_uploader(key="imp_artifact").set_value(("model.joblib", evil.getvalue(), "application/octet-stream"))
    at.file_uploader(key="imp_reference").set_value(("reference.csv", reference, "text/csv"))
    at.button(key="imp_go").click().run()
    assert not at.exception, [e.value for e in at.exception]
    errors = [e.value for e in at.error]
    assert len(errors) == 1 and errors[0].startswith("Import refused: artifact model.joblib is not a skops file")
    assert 'skops.io.dump(model, "model.skops")' in errors[0]
    assert not marker.exists()
    with session_scope() as s:
        refused = [e for e in audit.events(session=s) if e.action == "artifact.refused"]
    assert [(e.actor, e.entity_id) for e in refused] == [("maya", "model.joblib")]
    assert "v4" not in set(at.dataframe[0].value["Version"])


def _mapping(at) -> dict[str, str]:  # noqa: ANN001
    frame = next(df.value for df in at.dataframe if list(df.value.columns) == ["Column", "Role", "Note"])
    return dict(zip(frame["Column"], frame["Role"], strict=True))


def test_an_ml_engineer_corrects_a_models_column_mapping_on_the_registry_page(page_as):
    at = _open(page_as, "pages/registry.py", "maya")
    assert "Register a model" in [e.label for e in at.expander]
    at.button(key="reg_new_preview_go").click().run()  # nothing uploaded yet
    assert [e.value for e in at.error] == ["Refused: choose the reference data (CSV)"]
    before = _mapping(at)
    assert before["is_fraud"] == "target" and before["hour"] == "feature (numeric)"

    at.text_input(key="map_kinds").input("hour=categorical")
    at.text_input(key="map_notes").input("hours are a cycle, not a quantity")
    at.button(key="map_go").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert "fraud-detector mapping 1 recorded" in texts(at)
    after = _mapping(at)
    assert after["hour"] == "feature (categorical)" and set(after) == set(before)

    at.text_input(key="map_features").input("amount,amount")
    at.button(key="map_go").click().run()
    assert [e.value for e in at.error] == ["Correction refused: feature 'amount' is listed twice"]


def test_a_risk_manager_reads_the_mapping_but_cannot_correct_it(page_as):
    at = _open(page_as, "pages/registry.py", "rhea")
    assert _mapping(at)["amount"] == "feature (numeric)"
    assert not [t for t in at.text_input if t.key == "map_kinds"]
    assert "Register a model" not in [e.label for e in at.expander]
