"""The evaluation store's "Why?": the segments of a window where a loss concentrates, one of them over time."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import altair as alt
import pandas as pd
import streamlit as st

from core.access import Actor
from core.db import session_scope
from core.monitoring import checks, slice_findings
from ui.actions import act, attempt
from ui.session import SignedIn


@st.cache_data(ttl=120, show_spinner=False)
def load_why(username: str, roles: tuple[str, ...], evaluation_id: int, loss: str) -> slice_findings.FindingRead:
    with session_scope() as s:
        return slice_findings.explain(session=s, actor=Actor(username, roles), evaluation_id=evaluation_id, loss=loss)


@st.cache_data(ttl=120, show_spinner=False)
def load_trend(username: str, roles: tuple[str, ...], evaluation_id: int, conditions: str, loss: str) -> pd.DataFrame:
    return slice_findings.trend(actor=Actor(username, roles), evaluation_id=evaluation_id,
                                conditions=json.loads(conditions), loss=loss)


def why_view(*, user: SignedIn, model: str, evaluation_id: int, on_watch: Callable[[], Any]) -> None:
    """Why?: the segments of the selected window where the chosen loss concentrates, one of them over time."""
    st.subheader("Why? Segments behind the window")
    with session_scope() as s:
        offered = slice_findings.available_losses(session=s, actor=user.actor, model=model)
    asked_loss, _, asked_rank = (st.query_params.get("slice") or "").partition(":")
    names = list(offered)
    default = names.index(asked_loss) if asked_loss in names else 0
    loss = st.selectbox("Explain", names, index=default, key="es_why_loss", format_func=lambda k: offered[k])
    found = attempt(load_why, user.username, user.roles, evaluation_id, loss)
    if found is None:
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
            act(checks.watch_segment, actor=user.actor, evaluation_id=evaluation_id, loss=loss, rank=rank,
                threshold=threshold, rerun=False, after=lambda _made: on_watch(),
                success=lambda made: f"Check “{made.name}” added: {made.rule}.")
