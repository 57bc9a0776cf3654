"""Alerts: your inbox (acknowledge, open the page that explains it), check histories, deliveries."""

import pandas as pd
import streamlit as st

from core.alerting import alerts
from core.db import session_scope
from core.monitoring import checks
from ui.actions import act
from ui.inbox import link_to
from ui.pickers import pick_project
from ui.session import require_page

user = require_page("alerts.view")
ICONS = {"error": "🔴", "warning": "🟠", "info": "🔵", "pass": "🟢"}

with session_scope() as s:
    unread = alerts.unread_count(session=s, username=user.username)
st.title("Alerts")
st.caption(f"{unread} unread" if unread else "All caught up: no unread alerts.")

inbox_tab, history_tab, deliveries_tab = st.tabs(["Inbox", "Check history", "Deliveries"])

with inbox_tab:
    only_unread = st.toggle("Unread only", value=False, key="only_unread")
    with session_scope() as s:
        entries = alerts.inbox(session=s, username=user.username, unread_only=only_unread)
    if not entries:
        st.info("No alerts for you." if not only_unread else "No unread alerts.")
    for a in entries:
        with st.container(border=True):
            head, action = st.columns([5, 1])
            state = "**NEW** · " if a.unread else ""
            head.markdown(f"{ICONS.get(a.severity, '⚪')} {state}**{a.title}**")
            head.caption(f"{a.created_at:%Y-%m-%d %H:%M} UTC · {a.kind}" + (f" · {a.project_key}" if a.project_key else ""))
            st.text(a.message)
            if a.history:
                st.markdown(f"Recent history (oldest first): {a.history}")
            if a.link:
                link_to(a.link, roles=user.roles, label="Open the page that explains it")
            if a.unread and action.button("Acknowledge", key=f"ack_{a.id}"):
                act(alerts.acknowledge, actor=user.actor, alert_id=a.id)

with history_tab:
    key = pick_project(key="history_project", stop=False)
    if key is not None:
        with session_scope() as s:
            histories = checks.project_histories(session=s, project_key=key, limit=26)
        if not histories:
            st.caption("This project has no checks yet.")
        else:
            st.dataframe(pd.DataFrame([
                {"Check": h.check.name, "Model": h.check.model or "all", "Rule": h.check.rule,
                 "Audience": ", ".join([*h.check.audience_roles, *h.check.audience_users]),
                 "History (oldest → newest)": h.icons, "Latest": h.latest.replace("_", " ")}
                for h in histories]), hide_index=True, width="stretch")
            st.caption("✅ passed · ❌ failed (error) · ⚠️ failed (warning) · ⬜ no data. One tick per evaluation window.")

with deliveries_tab:
    status = st.selectbox("Status", ["failed", "pending", "sent", "all"], key="delivery_status")
    with session_scope() as s:
        rows = alerts.deliveries(session=s, actor=user.actor, status=None if status == "all" else status)
    if not rows:
        st.caption(f"No {status if status != 'all' else ''} deliveries.".replace("  ", " "))
    else:
        st.dataframe(pd.DataFrame([
            {"Alert": d.alert_title, "Channel": f"{d.channel} ({d.channel_kind})", "To": d.recipient,
             "Status": d.status, "Attempts": d.attempts, "Next attempt": f"{d.next_attempt_at:%Y-%m-%d %H:%M:%S}"
             if d.status == "pending" else "—", "Last error": d.last_error or "—"} for d in rows]),
            hide_index=True, width="stretch")
        failed = [d for d in rows if d.status == "failed"]
        if failed and user.actor.has("alerts.deliveries"):
            choice = st.selectbox("Failed delivery", [d.id for d in failed], key="retry_choice",
                                  format_func=lambda i: next(f"#{d.id} {d.alert_title} via {d.channel}"
                                                             for d in failed if d.id == i))
            if st.button("Retry this delivery", key="retry_delivery"):
                act(alerts.retry_delivery, actor=user.actor, delivery_id=choice, rerun=False,
                    success="Queued again: the worker sends it within seconds.")
