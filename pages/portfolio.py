"""Portfolio: every project with initiative, risk, stage, owner, what runs where, and health."""

import pandas as pd
import streamlit as st

from core.db import session_scope
from core.projects import projects
from ui.session import require_page

require_page("portfolio.view")
st.title("Portfolio")
st.caption("Every project across the enterprise: business initiative, risk, lifecycle stage and health.")

HEALTH = {"error": "🔴 error", "warning": "🟠 warning", "pass": "🟢 pass", "no data": "⚪ no data"}
ALL = "All"


def _chosen(key: str) -> str | None:
    value = st.session_state.get(key, ALL)
    return None if value == ALL else value


with session_scope() as s:
    view = projects.portfolio_view(session=s, initiative=_chosen("f_init"), risk_level=_chosen("f_risk"),
                                   stage=_chosen("f_stage"))

c1, c2, c3 = st.columns(3)
c1.selectbox("Initiative", [ALL, *view.initiatives], key="f_init")
c2.selectbox("Risk level", [ALL, *view.risk_levels], key="f_risk")
c3.selectbox("Stage", [ALL, *view.stages], key="f_stage")

if not view.rows:
    st.info("No project matches these filters." if view.total else "No projects yet.")
    st.stop()

envs = list(dict.fromkeys(e for r in view.rows for e in r.active_versions))
st.dataframe(pd.DataFrame([
    {"Project": r.key, "Name": r.name, "Initiative": r.initiative or "—", "Risk": r.risk_level, "Stage": r.stage,
     "Owner": r.owner, **{f"Active in {e}": r.active_versions.get(e, "—") for e in envs},
     "Health": HEALTH.get(r.health, r.health)} for r in view.rows]), hide_index=True, width="stretch")
st.caption(f"{len(view.rows)} of {view.total} projects · health is the worst of each project's latest checks")

st.markdown("**Open a project dashboard**")
cols = st.columns(min(len(view.rows), 6))
for i, r in enumerate(view.rows):
    cols[i % len(cols)].page_link("pages/project.py", label=f"{r.key} · {r.name}", icon=":material/folder_open:",
                                  query_params={"project": r.key})
