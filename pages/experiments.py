"""Experiments: train candidates from a recipe, compare the tracked runs side by side, promote the best."""

import tempfile
from datetime import datetime, time, timedelta
from pathlib import Path

import pandas as pd
import streamlit as st

from core.db import session_scope
from core.models import lineage, registry, training
from core.models.labelled_data import latest_labelled_ts
from ui import notices
from ui.actions import act, attempt
from ui.notices import Notice
from ui.pickers import pick_model
from ui.session import require_page

user = require_page("experiments.run")
actor = user.actor

st.title("Experiments")
st.caption("Train candidate models from a recipe — features, algorithm, hyperparameters, training window — on the "
           "evaluation store's labelled predictions. Every run is tracked; the best becomes a version in one click.")
notices.show()

with session_scope() as s:
    by_name = {m.name: m for m in registry.list_models(session=s)}
    order = lineage.model_names(session=s)
by_name = {n: by_name[n] for n in order if n in by_name}
name = pick_model(list(by_name), key="exp_model")
model = by_name[name]
with session_scope() as s:
    latest = latest_labelled_ts(session=s, model=name)
    runs = training.list_runs(session=s, model=name)

PARAMS = {
    "logistic_regression": [("C", "Inverse regularization C", 1.0, 0.01)],
    "random_forest": [("n_estimators", "Trees", 200, 10), ("max_depth", "Max depth (0 = unlimited)", 0, 1),
                      ("min_samples_leaf", "Min samples per leaf", 2, 1)],
    "hist_gradient_boosting": [("max_iter", "Boosting iterations", 200, 10),
                               ("learning_rate", "Learning rate", 0.1, 0.01),
                               ("max_leaf_nodes", "Max leaf nodes", 31, 1)],
}

st.subheader("Train a candidate")
algorithm = st.selectbox("Algorithm", training.ALGORITHMS, format_func=training.ALGORITHM_LABELS.get,
                         key="exp_algorithm")
with st.form("train_form"):
    features = st.multiselect("Features", model.feature_names, default=model.feature_names, key="exp_features")
    params = {}
    columns = st.columns(len(PARAMS[algorithm]))
    for column, (param, label, default, step) in zip(columns, PARAMS[algorithm], strict=True):
        params[param] = column.number_input(label, value=default, step=step, min_value=0 if step >= 1 else step,
                                            key=f"exp_p_{algorithm}_{param}")
    if params.get("max_depth") == 0:
        params["max_depth"] = None
    end_default = (latest or datetime.now()).date()
    c1, c2, c3 = st.columns(3)
    start = c1.date_input("Window start", value=end_default - timedelta(days=60), key="exp_start")
    end = c2.date_input("Window end (inclusive)", value=end_default, key="exp_end")
    holdout = c3.slider("Held-out share", 0.1, 0.4, 0.2, 0.05, key="exp_holdout")
    st.caption("Data: the labelled predictions of the window from the evaluation store"
               + (f" (labels have arrived up to {latest:%Y-%m-%d})." if latest else " (none have labels yet).")
               + " Or upload a CSV with the features and the target: it is used whole, the window dates aside.")
    upload = st.file_uploader("Training data (CSV, optional)", type=["csv"], key="exp_csv")
    submitted = st.form_submit_button("Train", type="primary", key="exp_train")

if submitted:
    window = {} if upload is not None else {"start": datetime.combine(start, time()),
                                            "end": datetime.combine(end, time()) + timedelta(days=1)}
    recipe = training.Recipe(algorithm=algorithm, features=tuple(features), params=params, holdout=holdout,
                             **window)
    bar = st.progress(0.0, text="starting")
    with tempfile.TemporaryDirectory() as tmp:
        source = None
        if upload is not None:
            source = Path(tmp) / Path(upload.name).name
            source.write_bytes(upload.getvalue())
        run = attempt(training.train, actor=actor, model=name, recipe=recipe, data=source, refused="Training refused: ",
                      progress=lambda f, msg: bar.progress(min(max(f, 0.0), 1.0), text=msg))
    if run is None:
        bar.empty()
    else:
        notices.keep(Notice(f"Training run {run.id} finished: {run.rows:,} rows in {run.duration_s:.1f}s, "
                            f"held-out ROC AUC {run.metrics.get('roc_auc') or '—'}"))
        st.rerun()

st.subheader("Training runs")
if not runs:
    st.info(f"No training runs for {name} yet.")
    st.stop()
primary = ("roc_auc", "pr_auc", "recall", "precision", "brier") if model.task == "binary" else ("rmse", "mae", "r2")
st.dataframe(pd.DataFrame([
    {"Run": r.id, "Algorithm": training.ALGORITHM_LABELS.get(r.algorithm, r.algorithm),
     **{m: r.metrics.get(m) for m in primary}, "Rows": r.rows,
     "Window": f"{r.data_start:%Y-%m-%d} – {r.data_end:%Y-%m-%d}" if r.data_start and r.data_end else "—",
     "Duration (s)": r.duration_s, "By": r.created_by, "When": r.created_at.strftime("%Y-%m-%d %H:%M"),
     "Version": f"v{r.promoted_version}" if r.promoted_version else "—",
     "Data fingerprint": r.data_fingerprint[:12]} for r in runs]), hide_index=True, width="stretch")

ids = [r.id for r in runs]
chosen = st.multiselect("Compare runs", ids, default=ids[:min(3, len(ids))], format_func=lambda i: f"run {i}",
                        key="exp_compare")
if chosen:
    with session_scope() as s:
        comparison = training.compare_runs(session=s, run_ids=chosen)
    table = pd.DataFrame({f"run {r.id}": [r.metrics.get(m) for m in comparison.metrics] for r in comparison.runs},
                         index=comparison.metrics)
    table["best"] = [f"run {comparison.best[m]}" if m in comparison.best else "" for m in comparison.metrics]
    st.dataframe(table, width="stretch")
    with st.expander("Parameters of the compared runs"):
        st.dataframe(pd.DataFrame({f"run {r.id}": pd.Series({k: str(v) for k, v in r.params.items()})
                                   for r in comparison.runs}), width="stretch")

open_runs = [r.id for r in runs if r.promoted_version is None]
with st.form("promote_form"):
    st.markdown("**Promote a run to a new candidate version**")
    pick = st.selectbox("Run", open_runs, format_func=lambda i: f"run {i}", key="exp_promote_run")
    notes = st.text_input("Notes", key="exp_promote_notes")
    if st.form_submit_button("Promote", disabled=not open_runs, key="exp_promote"):
        act(training.promote_run, actor=actor, run_id=pick, notes=notes, refused="Promotion refused: ",
            success=lambda version: f"Run {pick} is now {name} v{version.number}, a candidate.")
