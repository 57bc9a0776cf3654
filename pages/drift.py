"""Drift drill-down: one evaluation window field by field, reference against current, and Evidently's full report."""

import altair as alt
import pandas as pd
import streamlit as st
import streamlit.components.v1 as components

from core.access import Actor
from core.db import session_scope
from core.monitoring import evaluation_views
from ui.actions import attempt
from ui.session import require_page

user = require_page("evaluation.view")
st.title("Drift drill-down")
st.caption("Every field of one evaluation window against the version's reference sample, tested the way "
           "Evidently's DataDriftPreset tests it; the most drifted field first.")


@st.cache_data(ttl=120, show_spinner=False)
def load(username: str, roles: tuple[str, ...], evaluation_id: int | None) -> evaluation_views.DriftView:
    with session_scope() as s:
        return evaluation_views.drift_view(session=s, actor=Actor(username, roles), evaluation_id=evaluation_id)


@st.cache_data(ttl=600, show_spinner=False)
def distribution(username: str, roles: tuple[str, ...], evaluation_id: int, field: str) -> pd.DataFrame:
    return evaluation_views.field_distribution(actor=Actor(username, roles), evaluation_id=evaluation_id, field=field)


requested = st.query_params.get("evaluation")
view = attempt(load, user.username, user.roles, int(requested) if requested and requested.isdigit() else None,
               show=st.info)
if view is None:
    st.stop()
ev = view.evaluation

names = {"1D": "day", "7D": "week", "1M": "month", "custom": "window"}
ids = [w[0] for w in view.windows]
labels = {w[0]: f"{names.get(w[3], w[3])} {w[1]:%Y-%m-%d %H:%M} → {w[2]:%Y-%m-%d %H:%M}" for w in view.windows}
picked = st.selectbox("Window", ids, index=ids.index(ev.id), format_func=labels.get, key="drift_window")
if picked != ev.id:
    st.query_params["evaluation"] = str(picked)
    st.rerun()

st.text(f"{ev.model} v{ev.version} · {ev.rows:,} predictions, {ev.labelled_rows:,} labelled")
k1, k2, k3 = st.columns(3)
k1.metric("Drifted fields", f"{ev.drifted_fields} of {len(view.fields)}")
k2.metric("Share of drifted fields", "—" if ev.drift_share is None else f"{ev.drift_share:.0%}")
prediction = ev.prediction_drift
k3.metric("Prediction drift", "—" if prediction.get("score") is None else
          f"{prediction['score']:.3f} ({'drifted' if prediction.get('drifted') else 'stable'})",
          help=prediction.get("method_label") or None)

st.subheader("Fields")
st.dataframe(view.fields, hide_index=True, width="stretch", column_config={
    "field": "Field", "type": "Type", "method": "Method",
    "threshold": st.column_config.NumberColumn("Threshold", format="%.3g"),
    "score": st.column_config.NumberColumn("Score", format="%.4g"),
    "drifted": st.column_config.CheckboxColumn("Drifted"),
    "severity": st.column_config.ProgressColumn("Score / threshold", min_value=0.0,
                                                max_value=max(2.0, float(view.fields.severity.max() or 0)),
                                                format="%.2f"),
})

fields = view.fields.field.tolist()
if fields:
    field = st.selectbox("Distribution of", fields, key="drift_field")
    data = attempt(distribution, user.username, user.roles, ev.id, field)
    if data is not None:
        colors = alt.Scale(domain=["reference", "current"], range=["#7f7f7f", "#d62728"])
        if "category" in data.columns:
            chart = alt.Chart(data).mark_bar().encode(
                x=alt.X("category:N", sort="-y", title=None), xOffset="dataset:N",
                y=alt.Y("share:Q", axis=alt.Axis(format="%"), title="share of rows"),
                color=alt.Color("dataset:N", scale=colors, title=None),
                tooltip=["category:N", "dataset:N", alt.Tooltip("share:Q", format=".1%")])
        else:
            chart = alt.Chart(data).mark_bar(opacity=0.55, binSpacing=0).encode(
                x=alt.X("start:Q", title=None), x2="end:Q",
                y=alt.Y("share:Q", axis=alt.Axis(format="%"), title="share of rows", stack=None),
                color=alt.Color("dataset:N", scale=colors, title=None),
                tooltip=["dataset:N", alt.Tooltip("start:Q", format=",.4g"), alt.Tooltip("end:Q", format=",.4g"),
                         alt.Tooltip("share:Q", format=".1%")])
        st.altair_chart(chart.properties(height=300, title=f"{field}: reference vs current"), width="stretch")

st.subheader("Full Evidently report")
st.caption("Generated on demand from bounded samples of the window and the reference; `</` inside its scripts "
           "is escaped before it is shown here, so values in the data cannot run as code in the portal.")
reports = st.session_state.setdefault("drift_reports", {})
if st.button("Generate the full report", key="drift_report"):
    with st.spinner("Running Evidently on the samples…"):
        made = attempt(evaluation_views.full_report, actor=user.actor, evaluation_id=ev.id)
        if made is not None:
            reports[ev.id] = made
report = reports.get(ev.id)
if report is not None:
    st.download_button("Download the report (HTML)", data=report.html, file_name=report.file_name,
                       mime="text/html", key="drift_download")
    components.html(report.html, height=1100, scrolling=True)
