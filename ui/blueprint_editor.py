"""Editing blueprints, and putting a project under one: for risk managers and admins."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from core.access import Actor
from core.entities import ROLES
from core.projects import blueprints
from ui.actions import act
from ui.forms import split_list

EMPTY_STAGE = {"signoff_roles": "", "final_approver": "", "required_checks": "", "auto_deploy": False,
               "approver_distinct_from_signers": False}


def _rows(base: blueprints.BlueprintRead | None) -> pd.DataFrame:
    if base is None:
        return pd.DataFrame([{"stage": n, **EMPTY_STAGE} for n in blueprints.STAGES])
    return pd.DataFrame([
        {"stage": s.name, "signoff_roles": ", ".join(s.signoff_roles), "final_approver": s.final_approver or "",
         "required_checks": ", ".join(s.required_checks), "auto_deploy": s.auto_deploy,
         "approver_distinct_from_signers": s.approver_distinct_from_signers} for s in base.stages])


def _stages(edited: pd.DataFrame) -> list[dict]:
    return [{"name": r["stage"], "final_approver": r["final_approver"] or None,
             "signoff_roles": split_list(r["signoff_roles"]), "required_checks": split_list(r["required_checks"]),
             "auto_deploy": bool(r["auto_deploy"]),
             "approver_distinct_from_signers": bool(r.get("approver_distinct_from_signers"))}
            for r in edited.to_dict("records") if r["stage"]]


def blueprint_editor(known: tuple[blueprints.BlueprintRead, ...], *, actor: Actor, project_key: str) -> None:
    """Edit a blueprint or create one, then assign one to the project."""
    st.subheader("Edit or create a blueprint")
    chosen = st.selectbox("Blueprint", ["New blueprint", *[b.name for b in known]], key="bp_pick")
    base = next((b for b in known if b.name == chosen), None)
    with st.form("blueprint_form"):
        name = st.text_input("Name", value=base.name if base else "", key=f"bp_name_{chosen}")
        description = st.text_area("Description", value=base.description if base else "", key=f"bp_desc_{chosen}")
        risks = st.multiselect("Applies to risk levels", ["low", "medium", "high"],
                               default=list(base.risk_levels) if base else [], key=f"bp_risk_{chosen}")
        edited = st.data_editor(_rows(base), num_rows="dynamic", hide_index=True, key=f"bp_stages_{chosen}",
                                column_config={"final_approver": st.column_config.SelectboxColumn(
                                    "final_approver", options=["", *ROLES])})
        if st.form_submit_button("Save blueprint", key="bp_save"):
            act(blueprints.save_blueprint, actor=actor, name=name, risk_levels=risks, stages=_stages(edited),
                description=description, success=f"Blueprint {name} saved")
    with st.form("assign_blueprint"):
        st.markdown(f"**Put {project_key} under another blueprint**")
        target = st.selectbox("Blueprint", [b.name for b in known], key="assign_bp")
        if st.form_submit_button("Assign", key="assign_submit"):
            act(blueprints.assign_blueprint, actor=actor, project_key=project_key, blueprint=target,
                success=f"{project_key} now follows {target}")
