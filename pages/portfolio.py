"""Portfolio: every project with initiative, risk, stage, owner, what runs where, and health."""

import pandas as pd
import streamlit as st

from core import projects
from core.db import session_scope
from ui.session import require_page

require_page("portfolio.view")
st.title("Portfolio")
st.caption("Every project across the enterprise: business initiative, risk, lifecycle stage and health.")

HEALTH_ICONS = {"error": "🔴 error", "warning": "🟠 warning", "pass": "🟢 pass", "no data": "⚪ no data"}

with session_scope() as s:
    rows = projects.portfolio(session=s)

c1, c2, c3 = st.columns(3)
initiative = c1.selectbox("Initiative", ["All", *sorted({r.initiative for r in rows if r.initiative})], key="f_init")
risk = c2.selectbox("Risk level", ["All", "low", "medium", "high"], key="f_risk")
stage = c3.selectbox("Stage", ["All", *sorted({r.stage for r in rows})], key="f_stage")
shown = [r for r in rows
         if (initiative == "All" or r.initiative == initiative)
         and (risk == "All" or r.risk_level == risk)
         and (stage == "All" or r.stage == stage)]

if not shown:
    st.info("No project matches these filters." if rows else "No projects yet.")
else:
    envs = sorted({e for r in shown for e in r.active_versions})
    table = pd.DataFrame([
        {"Project": r.key, "Name": r.name, "Initiative": r.initiative, "Risk": r.risk_level, "Stage": r.stage,
         "Owner": r.owner, **{f"Active in {e}": r.active_versions.get(e, "—") for e in envs},
         "Health": HEALTH_ICONS.get(r.health, r.health), "Open": f"/project?project={r.key}"}
        for r in shown])
    st.dataframe(table, hide_index=True, width="stretch",
                 column_config={"Open": st.column_config.LinkColumn("Open", display_text="dashboard")})
    st.caption(f"{len(shown)} of {len(rows)} projects")
