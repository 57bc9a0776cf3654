"""Checks: define a project's checks, apply the standard AI quality checks, see the alert channels."""

import pandas as pd
import streamlit as st

from core.alerting import channels
from core.db import session_scope
from core.entities import ROLES
from core.models import registry
from core.monitoring import checks
from ui import notices
from ui.actions import act
from ui.pickers import pick_model, pick_project
from ui.session import require_page

user = require_page("monitoring.manage")
st.title("Checks")
notices.show()
st.caption("Rules on every evaluation window. A failed check alerts its audience — business words for business "
           "roles, metric words for engineers — in the app and over the check's channels.")

key = pick_project(key="checks_project")
with session_scope() as s:
    histories = checks.project_histories(session=s, project_key=key, limit=12)
    models = [m.name for m in registry.list_models(session=s, project_key=key)]
    known_channels = channels.list_channels(session=s)

st.subheader("Checks")
if histories:
    st.dataframe(pd.DataFrame([
        {"Check": h.check.name, "Model": h.check.model or "all", "Kind": h.check.kind, "Rule": h.check.rule,
         "Severity": h.check.severity, "Audience": ", ".join([*h.check.audience_roles, *h.check.audience_users]),
         "Channels": ", ".join(h.check.channels) or "in-app", "Enabled": "yes" if h.check.enabled else "no",
         "Recent": h.icons} for h in histories]), hide_index=True, width="stretch")
else:
    st.caption("No checks yet: apply the standard template to a model, or define one below.")

if models:
    left, right = st.columns([3, 1])
    model = pick_model(models, query=None, key="template_model", where=left)
    right.write("")
    if right.button("Apply the standard AI quality checks", key="apply_template"):
        act(checks.apply_template, actor=user.actor, model=model,
            success=lambda applied: f"{model} has {len(applied)} standard checks: " + ", ".join(c.name for c in applied))

with st.expander("Define a check"):
    name = st.text_input("Name", key="check_name")
    kind = st.selectbox("Kind", checks.CHECK_KINDS, key="check_kind")
    model = st.selectbox("Model", ["all models", *models], key="check_model")
    metric = st.text_input("Metric (e.g. roc_auc, recall, fraud_missed_amount)", key="check_metric")
    field = st.text_input("Field (field drift, missing values)", key="check_field")
    condition = st.selectbox("Passes when the value is", ["default for the kind", "gte", "lte"], key="check_condition")
    threshold = st.text_input("Threshold", value="0", key="check_threshold")
    severity = st.selectbox("Severity", checks.SEVERITIES, index=1, key="check_severity")
    roles = st.multiselect("Audience roles", ROLES, default=["ml_engineer"], key="check_roles")
    chans = st.multiselect("Channels", [c.name for c in known_channels], key="check_channels")
    wording = st.text_input("Business wording, e.g. Fraud missed: {value:,.0f} EUR (limit {threshold:,.0f})",
                            key="check_wording")
    if st.button("Define check", key="define_check"):
        act(checks.define_check, actor=user.actor, project_key=key, name=name, kind=kind,
            model=None if model == "all models" else model, metric=metric.strip(), field=field.strip() or None,
            threshold=threshold, condition=None if condition.startswith("default") else condition,
            severity=severity, audience_roles=roles, channels=chans, business_wording=wording,
            success=f"Check {name} defined.")

st.subheader("Channels")
if known_channels:
    st.dataframe(pd.DataFrame([
        {"Channel": c.name, "Kind": c.kind, "For roles": ", ".join(c.roles) or "everyone alerted",
         "Settings": ", ".join(f"{k}={v}" for k, v in c.config.items() if k != "roles") or "—",
         "Configured": "yes" if c.configured else "missing " + ", ".join(c.missing_settings)}
        for c in known_channels]), hide_index=True, width="stretch")
    st.caption("Secrets are referenced by the name of the setting (environment or .streamlit/secrets.toml) "
               "that holds them; their values are never stored or shown.")
else:
    st.caption("No channels: alerts reach people in the app only.")
