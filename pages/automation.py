"""Automation: a project's scenarios, their owner, schedule and next run, run history with live progress and the
worker of each run, runs per worker, approvals; for administrators, the data connections ingest steps may query."""

import altair as alt
import pandas as pd
import streamlit as st

from core.automation import connections, scenarios, workload
from core.db import session_scope
from core.entities import ROLES
from core.models import registry
from ui import notices
from ui.actions import act
from ui.forms import INVALID, parse_json
from ui.pickers import pick_project
from ui.session import require_page

user = require_page("automation.view")
STATUS = {"requested": "⏳ requested", "running": "🔄 running", "waiting_approval": "✋ waiting for approval",
          "succeeded": "✅ succeeded", "failed": "❌ failed", "interrupted": "⚡ interrupted", "pending": "· pending",
          "skipped": "↷ skipped"}

st.title("Automation")
st.caption("Scenarios run on the worker (`watchtower worker`): on a schedule, or now on request. "
           "Each one acts as its owner, the person who last created or changed it, with that person's "
           "permissions. Steps marked ✋ wait for a person's approval.")

notices.show()
key = pick_project(query="project", key="automation_project")

with session_scope() as s:
    defined = scenarios.list_scenarios(session=s, project_key=key)


def describe(step: dict) -> str:
    text = step["kind"]
    if step.get("mode") == "needs_approval":
        text += f" ✋ ({(step.get('approver_role') or '').replace('_', ' ')})"
    if step.get("when") == "checks_failed":
        text += " if a check failed"
    return text


st.subheader("Scenarios")
if not defined:
    st.caption("This project has no scenarios yet.")
else:
    st.dataframe(pd.DataFrame([
        {"Scenario": sc.name, "Owner": sc.owner or "— (edit to take over)", "Model": sc.model or "—",
         "Schedule": sc.schedule,
         "Next run (UTC)": f"{sc.next_run_at:%Y-%m-%d %H:%M}" if sc.next_run_at else "—",
         "Enabled": "yes" if sc.enabled else "no", "Steps": " → ".join(describe(st_) for st_ in sc.steps),
         "Last run": f"#{sc.last_run.id} {STATUS.get(sc.last_run.status, sc.last_run.status)}" if sc.last_run else "never"}
        for sc in defined]), hide_index=True, width="stretch")
    names = [sc.name for sc in defined]
    picked = st.selectbox("Scenario", names, key="scenario_name")
    chosen = next(sc for sc in defined if sc.name == picked)
    if user.actor.has("automation.run") and st.button("Run now", key="run_now", type="primary"):
        act(scenarios.request_run, actor=user.actor, scenario_id=chosen.id, rerun=False,
            success=lambda run: f"Run #{run.id} requested: the worker starts it within seconds.")

    with session_scope() as s:
        active = any(r.status in ("requested", "running") for r in
                     scenarios.list_runs(session=s, scenario_id=chosen.id, limit=5))

    @st.fragment(run_every="2s" if active else None)
    def runs_panel() -> None:
        """The run history; polls while a run is in progress so its steps update live."""
        with session_scope() as s:
            runs = scenarios.list_runs(session=s, scenario_id=chosen.id, limit=20)
        st.subheader("Runs")
        if not runs:
            st.caption("No runs yet.")
            return
        st.dataframe(pd.DataFrame([
            {"Run": f"#{r.id}", "Status": STATUS.get(r.status, r.status), "Trigger": r.trigger,
             "Requested by": r.requested_by, "Worker": r.worker_id or "—",
             "Requested (UTC)": f"{r.requested_at:%Y-%m-%d %H:%M:%S}",
             "Duration": f"{((r.finished_at or r.requested_at) - (r.started_at or r.requested_at)).total_seconds():.1f} s"
             if r.started_at else "—", "Error": r.error or "—"} for r in runs]), hide_index=True, width="stretch")
        run_id = st.selectbox("Run", [r.id for r in runs], key="run_id", format_func=lambda i: f"#{i}")
        run = next(r for r in runs if r.id == run_id)
        for step in run.steps:
            took = f" · {step.duration_s:.1f} s" if step.duration_s is not None else ""
            who = f" · approved by {step.approved_by}" if step.approved_by else ""
            spec = {"kind": step.kind, "mode": step.mode, "approver_role": step.approver_role}
            with st.expander(f"{step.position + 1}. {describe(spec)} — "
                             f"{STATUS.get(step.status, step.status)}{took}{who}",
                             expanded=step.status in ("running", "failed", "waiting_approval")):
                if step.error:
                    st.error(step.error)
                st.code(step.log or "(no log)", language=None)
        waiting = run.waiting_step
        if waiting is not None:
            role = (waiting.approver_role or "").replace("_", " ")
            st.warning(f"Step {waiting.position + 1} ({waiting.kind}) waits for approval by a {role}.")
            comment = st.text_input("Comment", key="approval_comment")
            approve, reject = st.columns(2)
            for column, fn, label in ((approve, scenarios.approve_step, "Approve"),
                                      (reject, scenarios.reject_step, "Reject")):
                if column.button(label, key=f"{label.lower()}_step"):
                    act(fn, actor=user.actor, run_id=run.id, comment=comment, rerun=False,
                        success=f"{label}d: " + ("the worker resumes the run within seconds."
                                                 if label == "Approve" else "the run has ended."))

    runs_panel()

    with session_scope() as s:
        loads = workload.runs_per_worker(session=s, project_key=key, recent=200)
    if loads:
        st.subheader("Workers")
        st.caption("Which worker ran the project's last 200 runs (each run goes to exactly one worker).")
        chart = pd.DataFrame([{"Worker": w.worker, "Status": status, "Runs": n}
                              for w in loads for status, n in w.by_status.items()])
        st.altair_chart(alt.Chart(chart).mark_bar().encode(
            x=alt.X("sum(Runs):Q", title="Runs"), y=alt.Y("Worker:N", sort="-x", title=None),
            color=alt.Color("Status:N"), tooltip=["Worker", "Status", "Runs"]).properties(height=40 + 28 * len(loads)),
            width="stretch")

if user.actor.has("automation.manage"):
    with st.expander("New scenario"):
        with session_scope() as s:
            models = [m.name for m in registry.list_models(session=s, project_key=key)]
        name = st.text_input("Name", key="new_name")
        model = st.selectbox("Model", ["—", *models], key="new_model")
        kind = st.selectbox("Trigger", ["cron", "interval", "manual"], key="new_trigger")
        value = st.text_input("Cron expression (UTC) or interval in seconds", value="0 6 * * *", key="new_value")
        steps = st.data_editor(pd.DataFrame([
            {"kind": "evaluate", "mode": "auto", "approver_role": "", "when": "always", "params": "{}"},
            {"kind": "checks", "mode": "auto", "approver_role": "", "when": "always", "params": "{}"},
        ]), num_rows="dynamic", key="new_steps", column_config={
            "mode": st.column_config.SelectboxColumn(options=["auto", "needs_approval"]),
            "approver_role": st.column_config.SelectboxColumn(options=["", *ROLES]),
            "when": st.column_config.SelectboxColumn(options=["always", "checks_failed"])})
        if st.button("Create scenario", key="create_scenario"):
            rows = [r for r in steps.to_dict("records") if r.get("kind")]
            params = [parse_json(r["params"] or "", problem="step params must be JSON objects", empty={})
                      for r in rows]
            if INVALID not in params:
                spec = [{"kind": r["kind"], "mode": r["mode"], "approver_role": r["approver_role"] or None,
                         "when": r["when"], "params": p} for r, p in zip(rows, params, strict=True)]
                act(scenarios.create_scenario, actor=user.actor, project_key=key, name=name, steps=spec,
                    trigger_kind=kind, trigger_value=value, model=None if model == "—" else model,
                    success=f"Scenario {name} created.")

if user.actor.has(connections.PERMISSION):
    st.subheader("Data connections")
    st.caption("Read-only SQL sources an ingest step may query (params source=sql, connection, query). The URL "
               "stays in a setting; only the tables listed may be read, and never Watchtower's own database.")
    with session_scope() as s:
        registered = connections.list_connections(session=s)
    if registered:
        st.dataframe(pd.DataFrame([
            {"Connection": c.name, "URL setting": c.secret + ("" if c.configured else " (not set)"),
             "Allowed tables": ", ".join(c.allowed_tables), "Created by": c.created_by} for c in registered]),
            hide_index=True, width="stretch")
    else:
        st.caption("No data connections yet.")
    with st.expander("New data connection"):
        conn_name = st.text_input("Name", key="conn_name")
        conn_secret = st.text_input("Setting holding the database URL (its NAME)", key="conn_secret")
        conn_tables = st.text_input("Allowed tables (comma-separated: table, schema.table or schema.*)",
                                    key="conn_tables")
        if st.button("Register connection", key="create_connection"):
            act(connections.create_connection, actor=user.actor, name=conn_name, secret_name=conn_secret,
                allow=conn_tables.split(","), success=f"Connection {conn_name} registered.")
    if registered:
        doomed = st.selectbox("Connection", [c.name for c in registered], key="conn_delete_name")
        if st.button("Delete connection", key="delete_connection"):
            act(connections.delete_connection, actor=user.actor, name=doomed, success=f"Connection {doomed} deleted.")
