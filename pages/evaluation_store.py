"""Evaluation store: every metric over the windows against training and the checks; the windows; logging files."""

import pandas as pd
import streamlit as st

from core.access import Actor
from core.db import session_scope
from core.monitoring import evaluation_views, ingest
from ui import trend_charts
from ui.actions import act, attempt
from ui.pickers import pick_model, pick_version
from ui.session import require_page
from ui.why import why_view

user = require_page("evaluation.view")
EVALUATE = "Evaluate the new windows to see them here."
st.title("Evaluation store")
st.caption("Each evaluation window of a model version: metrics as labels arrived, estimates before they did, "
           "business metrics, and drift — against the version at training time and the project's checks.")


@st.cache_data(ttl=120, show_spinner=False)
def load(username: str, roles: tuple[str, ...], model: str | None, version: int | None,
         granularity: str | None) -> evaluation_views.StoreView | None:
    with session_scope() as s:
        return evaluation_views.store_view(session=s, actor=Actor(username, roles), model=model, version=version,
                                           granularity=granularity)


state = st.session_state
model = state.get("es_model") or st.query_params.get("model")
view = load(user.username, user.roles, model, state.get("es_version"), state.get("es_granularity"))
if view is None:
    st.info("No models yet. Register one with `watchtower model register`.")
    st.stop()

c1, c2, c3 = st.columns([2, 1, 1])


def _model_changed() -> None:
    for key in ("es_version", "es_granularity"):
        state.pop(key, None)


pick_model(view.models, current=view.model, query=None, key="es_model", on_change=_model_changed, where=c1)
numbers = [n for n, _ in view.versions]
status = dict(view.versions)
pick_version(numbers, current=view.version, key="es_version", describe=lambda n: f"v{n} ({status[n]})", where=c2)
if view.granularities:
    names = {"1D": "daily", "7D": "weekly", "1M": "monthly", "custom": "custom"}
    c3.selectbox("Windows", view.granularities, index=view.granularities.index(view.granularity),
                 key="es_granularity", format_func=lambda g: names.get(g, g))

if view.windows.empty:
    st.info("No evaluation windows for this version yet. Log predictions, then run "
            "`watchtower evaluate MODEL --every 1D`.")
else:
    latest = view.windows.iloc[0]
    k1, k2, k3, k4 = st.columns(4)
    auc, est = latest.get("roc_auc"), latest.get("est_roc_auc")
    k1.metric("AUC, latest window", "—" if pd.isna(auc) else f"{auc:.3f}",
              help="Realized on the labelled rows of the latest window.")
    k2.metric("Estimated AUC", "—" if pd.isna(est) else f"{est:.3f}", help="CBPE, before labels arrive.")
    k3.metric("Labelled", f"{latest['labelled_rows']:,} of {latest['rows']:,}")
    share = latest.get("drift_share")
    k4.metric("Drifted fields", "—" if pd.isna(share) else f"{share:.0%}")

    offered = [*view.metrics, *view.business, "drift_share"]
    default = [m for m in ("roc_auc", "recall", "precision", *view.business, "drift_share") if m in offered]
    chosen = st.multiselect("Metrics", offered, default=default, key="es_metrics",
                            format_func=lambda m: view.labels.get(m, m))
    lines = pd.DataFrame([vars(line) for line in view.lines], columns=["metric", "label", "value", "kind"])
    for first in range(0, len(chosen), 2):
        for column, metric in zip(st.columns(2), chosen[first:first + 2], strict=False):
            column.vega_lite_chart(spec=trend_charts.metric_trend(
                title=view.labels.get(metric, metric), trend=view.trend[view.trend.metric == metric],
                lines=lines[lines.metric == metric]), width="stretch")

    if not view.field_drift.empty:
        st.subheader("Field drift over the windows")
        heat = view.field_drift.assign(level=view.field_drift.severity.clip(upper=5.0))
        st.vega_lite_chart(spec=trend_charts.drift_heat_map(heat), width="stretch")

    st.subheader("Windows")
    st.dataframe(view.windows, hide_index=True, width="stretch", column_config={
        "evaluation": None,
        "window_start": st.column_config.DatetimeColumn("From", format="YYYY-MM-DD HH:mm"),
        "window_end": st.column_config.DatetimeColumn("To", format="YYYY-MM-DD HH:mm"),
        "drift_share": st.column_config.NumberColumn("Drifted share", format="percent"),
        **{c: st.column_config.NumberColumn(view.labels.get(c, c), format="%.3f")
           for c in ("roc_auc", "recall", "est_roc_auc", "est_recall")},
    })
    starts = dict(zip(view.windows.evaluation, view.windows.window_start, strict=True))
    asked = st.query_params.get("evaluation")
    ids = list(starts)
    left, right = st.columns([3, 1])
    window = left.selectbox("Window to drill into", ids, key="es_window",
                            index=ids.index(int(asked)) if asked and asked.isdigit() and int(asked) in ids else 0,
                            format_func=lambda i: f"{starts[i]:%Y-%m-%d %H:%M}")
    right.write("")
    if right.button("Drift drill-down", key="es_drill", type="primary"):
        st.switch_page("pages/drift.py", query_params={"evaluation": str(window)})
    why_view(user=user, model=view.model, evaluation_id=window, on_watch=load.clear)

if user.actor.has("evaluation.write"):
    with st.expander("Log predictions or labels from a CSV file"):
        kind = st.radio("The file holds", ["predictions", "labels"], horizontal=True, key="es_upload_kind")
        upload = st.file_uploader("CSV file", type=["csv"], key="es_upload")
        if upload is not None:
            columns = attempt(ingest.header, upload)
            if columns is None:
                st.stop()
            pick = st.columns(3)
            id_col = pick[0].selectbox("Prediction id column", columns, key="es_id_col")
            if kind == "predictions":
                ts_col = pick[1].selectbox("Time column", ["(now)", *columns], key="es_ts_col")
                score_col = pick[2].selectbox("Score column", ["(none)", *columns], key="es_score_col")
                prediction_col = pick[2].selectbox("Prediction column", ["(none)", *columns], key="es_pred_col")
            else:
                label_col = pick[1].selectbox("Label column", columns, key="es_label_col")
            if st.button("Ingest", key="es_ingest", type="primary"):
                if kind == "predictions":
                    act(ingest.ingest_predictions, actor=user.actor, model=view.model, version=view.version,
                        source=upload, id_col=id_col, ts_col=None if ts_col == "(now)" else ts_col,
                        score_col=None if score_col == "(none)" else score_col,
                        prediction_col=None if prediction_col == "(none)" else prediction_col, rerun=False,
                        after=lambda _done: load.clear(),
                        success=lambda done: f"{done.rows:,} predictions logged for v{done.version}. " + (
                            f"Ignored column(s), not in the mapping: {', '.join(done.ignored_columns)}. "
                            if done.ignored_columns else "") + EVALUATE)
                else:
                    act(ingest.ingest_ground_truth, actor=user.actor, model=view.model, source=upload, id_col=id_col,
                        label_col=label_col, rerun=False, after=lambda _done: load.clear(),
                        success=lambda done: f"{done.rows:,} labels: {done.inserted:,} new, {done.updated:,} changed, "
                                             f"{done.unchanged:,} unchanged. " + EVALUATE)
