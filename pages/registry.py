"""Registry: every version with status, origin, lineage and where it runs; two versions side by side; import."""

import json
import tempfile
from pathlib import Path

import altair as alt
import pandas as pd
import streamlit as st

from core.db import session_scope
from core.models import lineage, registry
from core.validation import comparison
from ui import column_mapping, mlflow_import, notices
from ui.actions import act, attempt
from ui.documents import documentation_downloads
from ui.pickers import pick_model, pick_version
from ui.session import require_page

user = require_page("registry.view")
actor = user.actor
STATUS = {"active": "🟢 active", "candidate": "🟡 candidate", "archived": "⚪ archived"}
ORIGIN = {"manual": "manual", "scheduled_retrain": "scheduled retrain", "imported": "imported", "external": "external"}

st.title("Registry")
notices.show()
if actor.has("model.register"):
    with st.expander("Register a model", expanded=st.session_state.get(column_mapping.PREVIEW) is not None):
        column_mapping.register_section(actor)
    with st.expander("Import from MLflow"):
        mlflow_import.import_section(actor)
if actor.has("settings.manage"):
    with st.expander("Trusted MLflow sources"):
        mlflow_import.sources_section(actor)
name = pick_model(key="reg_model")
with session_scope() as s:
    rows = lineage.versions_overview(session=s, actor=actor, model=name)
if not rows:
    st.info(f"{name} has no versions yet.")
    st.stop()

st.subheader("Versions")
st.dataframe(pd.DataFrame([
    {"Version": f"v{v.number}", "Status": STATUS.get(v.status, v.status), "Origin": ORIGIN.get(v.origin, v.origin),
     "Running in": ", ".join(v.running_in) or "—", v.primary_metric: v.primary_value,
     "Training window": (f"{v.training_start:%Y-%m-%d} – {v.training_end:%Y-%m-%d}"
                         if v.training_start and v.training_end else "—"),
     "Triggered by check result": str(v.triggered_by_check_result_id or "—"), "Created by": v.created_by,
     "Created": v.created_at.strftime("%Y-%m-%d %H:%M")} for v in rows]), hide_index=True, width="stretch")

numbers = [v.number for v in rows]
st.subheader("Lineage")
number = pick_version(numbers, key=f"reg_version_{name}")
with session_scope() as s:
    story = lineage.lineage(session=s, actor=actor, model=name, version=number)
    intact = lineage.verify_artifact(session=s, actor=actor, model=name, version=number)
v = story.version
left, right = st.columns(2)
with left:
    st.markdown(
        f"- **Status:** {v.status} · **Origin:** {ORIGIN.get(v.origin, v.origin)}\n"
        f"- **Created by:** {v.created_by} on {v.created_at:%Y-%m-%d %H:%M} UTC\n"
        f"- **Training window:** "
        + (f"{v.training_start:%Y-%m-%d %H:%M} – {v.training_end:%Y-%m-%d %H:%M}" if v.training_start else "—") + "\n"
        f"- **Training rows:** {story.training_rows or '—'}"
        + (f" · trained in {story.training_duration_s:.1f}s (run {story.training_run_id})"
           if story.training_run_id else "") + "\n"
        f"- **Data fingerprint:** `{v.data_fingerprint[:24]}…`\n"
        f"- **Artifact sha256:** " + (f"`{v.artifact_sha256[:24]}…` ({'verified' if intact else 'DOES NOT MATCH'})"
                                       if v.artifact_sha256 else "none (external model)") + "\n"
        f"- **Running in:** {', '.join(story.running_in) or '—'}")
    if story.trigger:
        t = story.trigger
        st.warning(f"Retrained after the failed check **{t.check}** (check result {t.check_result_id}, {t.metric} "
                   f"{t.value if t.value is not None else '—'} against {t.threshold}, {t.at:%Y-%m-%d}).")
    if story.notes:
        st.caption(story.notes)
    mlflow_import.lineage_section(v.recipe)
with right:
    st.markdown("**Recipe**")
    st.code(json.dumps(v.recipe, indent=1, default=str), language="json")
    with st.expander("Hyperparameters"):
        st.code(json.dumps(v.params, indent=1, default=str), language="json")
    with st.expander("Training metrics"):
        st.dataframe(pd.DataFrame([{"Metric": k, "Value": val} for k, val in v.training_metrics.items()]),
                     hide_index=True, width="stretch")
if story.deployments:
    st.dataframe(pd.DataFrame([{"Environment": d.environment, "Deployed": d.deployed_at.strftime("%Y-%m-%d %H:%M"),
                                "By": d.deployed_by, "Active": d.active} for d in story.deployments]),
                 hide_index=True, width="stretch")
st.subheader("Column mapping")
column_mapping.mapping_section(actor, name)
if actor.has("governance.view"):
    documentation_downloads(actor=actor, model=name, version=number, key="reg-docs")
if actor.has("validation.view") and v.artifact_path:
    st.page_link("pages/validation.py", label=f"Open v{number} in the validation lab", icon=":material/science:",
                 query_params={"model": name, "version": str(number)})

st.subheader("Compare two versions")
runnable = [v.number for v in rows if v.has_artifact]
active = next((v.number for v in rows if v.status == "active"), runnable[-1] if runnable else None)
newest = next((n for n in runnable if n != active), active)
if len(runnable) < 2:
    st.caption("Comparison needs two versions with an artifact.")
else:
    c1, c2 = st.columns(2)
    a = pick_version(runnable, label="Version A", current=active, key=f"cmp_a_{name}", where=c1)
    b = pick_version(runnable, label="Version B", current=newest, key=f"cmp_b_{name}", where=c2)
    if st.button("Compare", type="primary", key="cmp_go"):
        with st.spinner("Scoring both versions on the same recent labelled data"):
            st.session_state["cmp_result"] = attempt(comparison.compare_versions, actor=actor, model=name, a=a, b=b)
    c = st.session_state.get("cmp_result")
    if c is not None and c.model == name and (c.a.number, c.b.number) == (a, b):
        A, B = f"v{a}", f"v{b}"
        st.caption(f"On {c.rows:,} recent labelled predictions ({c.window_start:%Y-%m-%d} – {c.window_end:%Y-%m-%d}) "
                   f"that neither version was trained on.")
        mark = {"a": A, "b": B}
        st.markdown("**Metrics**")
        st.dataframe(pd.DataFrame([{"Metric": m, A: x, B: y, "Better": mark.get(w, "")} for m, x, y, w in c.metrics]),
                     hide_index=True, width="stretch")
        if c.business:
            st.markdown("**Business metrics**")
            st.dataframe(pd.DataFrame([{"Business metric": label, A: x, B: y, "Better": mark.get(w, "")}
                                       for _n, label, x, y, w in c.business]), hide_index=True, width="stretch")
        st.markdown("**Feature importance** (drop in ROC AUC when the feature is shuffled)")
        imp = pd.DataFrame([{"feature": i.feature, "version": A, "importance": i.mean} for i in c.importance_a]
                           + [{"feature": i.feature, "version": B, "importance": i.mean} for i in c.importance_b])
        st.altair_chart(alt.Chart(imp).mark_bar().encode(
            y=alt.Y("feature:N", sort="-x", title=None), x=alt.X("importance:Q", title="importance"),
            color=alt.Color("version:N"), yOffset="version:N", tooltip=["feature", "version", "importance"]),
            width="stretch")
        st.markdown(f"**Drift between their training data** ({B} against {A}): {c.drifted_fields} field(s) drifted")
        st.dataframe(pd.DataFrame([{"Field": f.field, "Method": f.method, "Score": f.score, "Threshold": f.threshold,
                                    "Drifted": "yes" if f.drifted else "no"} for f in c.drift]),
                     hide_index=True, width="stretch")

st.subheader("Import an existing model")
with st.form("import_form"):
    st.caption("A scikit-learn estimator saved with skops (`skops.io.dump(model, \"model.skops\")`), and reference "
               "data (CSV) with the model's features and target. Types in the file are checked before anything is "
               "loaded; a pickle/joblib file is opened only if an administrator allowed that exact file. The file's "
               "sha256 is recorded and checked before every load.")
    artifact = st.file_uploader("Model (skops)", type=["skops", "joblib", "pkl"], key="imp_artifact")
    reference = st.file_uploader("Reference data (CSV)", type=["csv"], key="imp_reference")
    expected = st.text_input("Expected sha256 (optional)", key="imp_sha")
    notes = st.text_input("Notes", key="imp_notes")
    if st.form_submit_button("Import", disabled=not actor.has("model.register"), key="imp_go"):
        if artifact is None or reference is None:
            st.error("Choose both the model file and its reference data.")
        else:
            with tempfile.TemporaryDirectory() as tmp:
                art = Path(tmp) / Path(artifact.name).name
                art.write_bytes(artifact.getvalue())
                ref = Path(tmp) / Path(reference.name).name
                ref.write_bytes(reference.getvalue())
                act(registry.import_version, actor=actor, model=name, artifact=art, reference=ref,
                    expected_sha256=expected or None, notes=notes, refused="Import refused: ",
                    success=lambda imported: f"{name} v{imported.number} imported as a candidate.")
