"""New project: pick a template, answer a short form, get a project wired for monitoring and governance."""

import streamlit as st

from core.catalog import templates
from core.db import session_scope
from core.entities import RISK_LEVELS
from ui.actions import act, attempt
from ui.session import require_page

user = require_page("project.create")
st.title("New project")
st.caption("Start from a template: the project gets the blueprint of its risk level, a model trained on your "
           "dataset, the standard AI quality checks and a daily scenario — ingest, evaluate, check, retrain on "
           "failure, review.")

created = st.session_state.pop("new_project_created", None)
if created:
    st.success(f"Project {created['key']} created from template “{created['template']}”: blueprint "
               f"{created['blueprint']} (stage {created['stage']}), model {created['model']} v{created['version']}, "
               f"{len(created['checks'])} checks ({', '.join(created['checks'])}), scenario “{created['scenario']}”.")
    st.page_link("pages/project.py", label=f"Open the {created['key']} dashboard", icon=":material/folder_open:",
                 query_params={"project": created["key"]})
    st.caption("Its process map: solid green links run by themselves, dashed orange ones wait for a person.")
    st.graphviz_chart(created["process_map"])

# Widget values live in session_state before the widgets are drawn, so one call fetches the page's data.
with session_scope() as s:
    view = templates.form_view(session=s, template=st.session_state.get("np_template"),
                               dataset=st.session_state.get("np_dataset"), target=st.session_state.get("np_target"))
if not view.templates:
    st.info("No project templates yet.")
    st.stop()

names = [t.name for t in view.templates]
st.selectbox("Template", names, key="np_template")
chosen = view.chosen
st.markdown(f"{chosen.description}  \n:gray[{'standard template' if chosen.standard else 'saved from project ' + chosen.source_project}"
            f" · {chosen.task} · model: {chosen.spec.get('model', {}).get('mode', 'trained')}"
            f" {chosen.spec.get('model', {}).get('algorithm', '')}]")
if chosen.required_columns:
    st.caption("Needs the dataset columns: " + ", ".join(f"`{c}` ({why})" for c, why in chosen.required_columns))

if not view.datasets:
    st.warning("No dataset is registered yet: register one on the Catalog page (or `watchtower dataset register`).")
    st.stop()

left, right = st.columns(2)
name = left.text_input("Project name", key="np_name", placeholder="e.g. Online payments fraud")
key = right.text_input("Key", key="np_key", placeholder="e.g. ONLINE", max_chars=32)
sponsor = left.text_input("Sponsor", key="np_sponsor")
initiative = right.text_input("Business initiative", key="np_initiative")
risk = left.selectbox("Risk level", RISK_LEVELS, index=1, key="np_risk")
labels = {d.dataset: f"{d.dataset} (v{d.number}, {d.rows:,} rows{', schema change not accepted' if d.flagged else ''})"
          for d in view.datasets}
dataset = right.selectbox("Data source (a registered dataset)", list(labels), format_func=labels.get, key="np_dataset",
                          on_change=lambda: st.session_state.pop("np_target", None))  # another dataset, other columns
columns = next(d.column_names for d in view.datasets if d.dataset == dataset)
target = left.selectbox("Target column", columns, index=columns.index(view.target) if view.target in columns else 0,
                        key="np_target")

if view.problem:
    st.error(view.problem)
elif view.features:
    st.caption(f"The model will learn from {len(view.features)} features: "
               + ", ".join(f["name"] for f in view.features))

if not user.actor.has("template.use"):
    st.info("Creating a project from a template trains and registers its model: a data scientist, an ML engineer "
            "or an administrator does it.")
elif st.button("Create project", key="np_create", type="primary", disabled=bool(view.problem)):
    bar = st.progress(0.0, text="checking the template and the dataset")
    result = attempt(templates.create_project_from_template,
                     actor=user.actor, template=chosen.name, key=key, name=name, dataset=dataset, target=target,
                     risk_level=risk, sponsor=sponsor, initiative=initiative.strip() or None,
                     progress=lambda fraction, message: bar.progress(min(1.0, fraction), text=message))
    if result is None:
        bar.empty()
    else:
        st.session_state["new_project_created"] = {
            "key": result.project.key, "template": result.template, "blueprint": result.project.blueprint or "none",
            "stage": result.project.stage, "model": result.model, "version": result.version,
            "checks": result.checks, "scenario": result.scenario, "process_map": result.process_map.dot}
        for field in ("np_name", "np_key", "np_sponsor", "np_initiative"):
            st.session_state.pop(field, None)
        st.rerun()

if user.actor.has("template.manage"):
    st.divider()
    st.subheader("Save a project as a template")
    with st.form("save_template"):
        source = st.selectbox("Project", view.project_keys, key="st_project")
        template_name = st.text_input("Template name", key="st_name")
        description = st.text_area("Description", key="st_description")
        save = st.form_submit_button("Save as template", key="st_submit")
    if save:
        act(templates.save_as_template, actor=user.actor, project_key=source, name=template_name,
            description=description, rerun=False,
            success=lambda saved: f"Template “{saved.name}” saved from {saved.source_project}: "
                                  f"{len(saved.spec['checks']['extra'])} checks, "
                                  f"scenario “{saved.spec['scenario']['name']}”.")
