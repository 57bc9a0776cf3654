"""Evaluation store: every metric over the windows against training and the checks; the windows; logging files."""

import altair as alt
import pandas as pd
import streamlit as st

from core.access import Actor
from core.db import session_scope
from core.errors import WatchtowerError
from core.monitoring import checks, evaluation_views, ingest, slice_findings
from ui.session import require_page

user = require_page("evaluation.view")
st.title("Evaluation store")
st.caption("Each evaluation window of a model version: metrics as labels arrived, estimates before they did, "
           "business metrics, and drift — against the version at training time and the project's checks.")


@st.cache_data(ttl=120, show_spinner=False)
def load(username: str, roles: tuple[str, ...], model: str | None, version: int | None,
         granularity: str | None) -> evaluation_views.StoreView | None:
    with session_scope() as s:
        return evaluation_views.store_view(session=s, actor=Actor(username, roles), model=model, version=version,
                                           granularity=granularity)


@st.cache_data(ttl=120, show_spinner=False)
def load_why(username: str, roles: tuple[str, ...], evaluation_id: int, loss: str) -> slice_findings.FindingRead:
    with session_scope() as s:
        return slice_findings.explain(session=s, actor=Actor(username, roles), evaluation_id=evaluation_id, loss=loss)


@st.cache_data(ttl=120, show_spinner=False)
def load_trend(username: str, roles: tuple[str, ...], evaluation_id: int, conditions: str, loss: str) -> pd.DataFrame:
    import json

    return slice_findings.trend(actor=Actor(username, roles), evaluation_id=evaluation_id,
                                conditions=json.loads(conditions), loss=loss)


def why_view(evaluation_id: int) -> None:
    """Why?: the segments of the selected window where the chosen loss concentrates, one of them over time."""
    import json

    st.subheader("Why? Segments behind the window")
    with session_scope() as s:
        offered = slice_findings.available_losses(session=s, actor=user.actor, model=view.model)
    asked_loss, _, asked_rank = (st.query_params.get("slice") or "").partition(":")
    names = list(offered)
    default = names.index(asked_loss) if asked_loss in names else 0
    loss = st.selectbox("Explain", names, index=default, key="es_why_loss", format_func=lambda k: offered[k])
    try:
        found = load_why(user.username, user.roles, evaluation_id, loss)
    except WatchtowerError as exc:
        st.error(str(exc))
        return
    if found.status != "found":
        st.info(f"No segments for this window: {found.reason}")
        return
    table = pd.DataFrame([{"#": g["rank"], "segment": g["text"], "rows": g["rows"], "share": g["share"],
                           "share in reference": g["reference_share"], "grew": g["grew"], "inside": g["inside"],
                           "outside": g["outside"], "share of loss": g["loss_share"]} for g in found.segments])
    st.caption(f"Inside / outside: {found.metric_label}. Share of loss: of the {found.loss_label} in the window.")
    st.dataframe(table, hide_index=True, width="stretch", key="es_why_table", column_config={
        "share": st.column_config.NumberColumn(format="percent"),
        "share in reference": st.column_config.NumberColumn(format="percent"),
        "share of loss": st.column_config.NumberColumn(format="percent"),
        "inside": st.column_config.NumberColumn(format="%.3f"), "outside": st.column_config.NumberColumn(format="%.3f")})
    ranks = [g["rank"] for g in found.segments]
    picked = int(asked_rank) if asked_rank.isdigit() and int(asked_rank) in ranks and loss == asked_loss else ranks[0]
    rank = st.selectbox("Segment", ranks, index=ranks.index(picked), key="es_why_segment",
                        format_func=lambda r: found.segments[ranks.index(r)]["text"])
    segment = found.segments[ranks.index(rank)]
    st.markdown(f"**{segment['text']}** — {slice_findings.change_kind(segment)}. "
                f"{slice_findings.engineering_sentence(segment, loss_label=found.loss_label)}")
    history = load_trend(user.username, user.roles, evaluation_id, json.dumps(segment["conditions"]), loss)
    if not history.empty:
        st.altair_chart(alt.Chart(history).mark_line(point=True).encode(
            x=alt.X("window_start:T", title="window"), y=alt.Y("value:Q", title=found.metric_label),
            color=alt.Color("series:N", title=None, scale=alt.Scale(domain=["inside", "outside"],
                                                                    range=["#d62728", "#1f77b4"])),
            tooltip=[alt.Tooltip("window_start:T", title="from"), "series:N", alt.Tooltip("value:Q", format=",.4f"),
                     alt.Tooltip("rows:Q", format=",")],
        ).properties(height=240, title=f"{found.metric_label} inside vs outside the segment"), width="stretch")
    if found.grown:
        st.caption("Grown since the reference: " + "; ".join(
            f"{g['text']} {g['reference_share']:.1%} → {g['share']:.1%}"
            + (" (the model does worse there)" if g["harmful"] else " (no harm to the model)") for g in found.grown))
    if user.actor.has("monitoring.manage"):
        rule = slice_findings.watch_suggestion(found, segment)
        threshold = st.number_input(f"Watch this segment: alert when its {rule['metric'].replace('_', ' ')} is "
                                    f"{'below' if rule['condition'] == 'gte' else 'beyond'}",
                                    value=float(rule["threshold"]), key="es_watch_threshold")
        if st.button("Watch this segment", key="es_watch"):
            try:
                with session_scope() as s:
                    made = checks.watch_segment(session=s, actor=user.actor, evaluation_id=evaluation_id, loss=loss,
                                                rank=rank, threshold=threshold)
            except WatchtowerError as exc:
                st.error(str(exc))
            else:
                load.clear()
                st.success(f"Check “{made.name}” added: {made.rule}.")


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


c1.selectbox("Model", view.models, index=view.models.index(view.model), key="es_model", on_change=_model_changed)
numbers = [n for n, _ in view.versions]
status = dict(view.versions)
c2.selectbox("Version", numbers, index=numbers.index(view.version), key="es_version",
             format_func=lambda n: f"v{n} ({status[n]})")
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
    palette = alt.Scale(domain=["realized", "estimated", "at training"], range=["#1f77b4", "#ff7f0e", "#7f7f7f"])
    for first in range(0, len(chosen), 2):
        for column, metric in zip(st.columns(2), chosen[first:first + 2], strict=False):
            data = view.trend[view.trend.metric == metric]
            base = alt.Chart(data).encode(
                x=alt.X("window_start:T", title="window"),
                y=alt.Y("value:Q", title=view.labels.get(metric, metric), scale=alt.Scale(zero=False)),
                color=alt.Color("series:N", scale=palette, title=None),
                strokeDash=alt.StrokeDash("series:N", legend=None,
                                          scale=alt.Scale(domain=["realized", "estimated", "at training"],
                                                          range=[[1, 0], [5, 3], [2, 2]])),
                tooltip=[alt.Tooltip("window_start:T", title="from"), alt.Tooltip("window_end:T", title="to"),
                         "series:N", alt.Tooltip("value:Q", format=",.4f"),
                         alt.Tooltip("labelled:Q", format=".0%", title="labelled")])
            chart = base.mark_line(point=True)
            marks = lines[lines.metric == metric]
            if not marks.empty:
                rules = alt.Chart(marks).mark_rule(strokeDash=[4, 4]).encode(
                    y="value:Q", color=alt.Color("kind:N", scale=alt.Scale(domain=["baseline", "check"],
                                                                            range=["#2ca02c", "#d62728"]),
                                                 title="lines"),
                    tooltip=["label:N", alt.Tooltip("value:Q", format=",.4f")])
                chart = alt.layer(chart, rules).resolve_scale(color="independent")
            column.altair_chart(chart.properties(height=240, title=view.labels.get(metric, metric)), width="stretch")

    if not view.field_drift.empty:
        st.subheader("Field drift over the windows")
        heat = view.field_drift.assign(level=view.field_drift.severity.clip(upper=5.0))
        st.altair_chart(alt.Chart(heat).mark_rect().encode(
            x=alt.X("window_start:T", title="window"), y=alt.Y("field:N", title=None),
            color=alt.Color("level:Q", title="score / threshold", scale=alt.Scale(scheme="orangered", domain=[0, 5])),
            tooltip=["field:N", alt.Tooltip("window_start:T", title="window"), "method:N",
                     alt.Tooltip("severity:Q", format=".2f", title="score / threshold"), "drifted:N"],
        ).properties(height=28 * heat.field.nunique() + 40), width="stretch")

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
    why_view(window)

if user.actor.has("evaluation.write"):
    with st.expander("Log predictions or labels from a CSV file"):
        kind = st.radio("The file holds", ["predictions", "labels"], horizontal=True, key="es_upload_kind")
        upload = st.file_uploader("CSV file", type=["csv"], key="es_upload")
        if upload is not None:
            try:
                columns = ingest.header(upload)
            except WatchtowerError as exc:
                st.error(str(exc))
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
                try:
                    with session_scope() as s:
                        if kind == "predictions":
                            done = ingest.ingest_predictions(
                                session=s, actor=user.actor, model=view.model, version=view.version, source=upload,
                                id_col=id_col, ts_col=None if ts_col == "(now)" else ts_col,
                                score_col=None if score_col == "(none)" else score_col,
                                prediction_col=None if prediction_col == "(none)" else prediction_col)
                            message = f"{done.rows:,} predictions logged for v{done.version}."
                        else:
                            done = ingest.ingest_ground_truth(session=s, actor=user.actor, model=view.model,
                                                              source=upload, id_col=id_col, label_col=label_col)
                            message = (f"{done.rows:,} labels: {done.inserted:,} new, {done.updated:,} changed, "
                                       f"{done.unchanged:,} unchanged.")
                except WatchtowerError as exc:
                    st.error(str(exc))
                else:
                    load.clear()
                    st.success(message + " Evaluate the new windows to see them here.")
