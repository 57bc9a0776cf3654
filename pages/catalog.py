"""Catalog: every reusable component in one searchable place, with its owner, trust and who uses it."""

import json
import tempfile
from pathlib import Path

import pandas as pd
import streamlit as st

from core import catalog
from core.catalog import datasets
from core.db import session_scope
from core.entities import COMPONENT_KINDS
from ui import notices
from ui.actions import act, attempt
from ui.forms import INVALID, parse_json
from ui.notices import Notice
from ui.session import require_page

user = require_page("catalog.view")
TRUST = {"trusted": "✅ trusted", "flagged": "⚠️ flagged", "unverified": "◻️ unverified"}
ALL = "All"
BAD_SPEC = "The definition is not valid JSON"


def registered_dataset(v: datasets.DatasetVersionRead) -> Notice:
    note = f"Dataset {v.dataset} v{v.number} registered: {v.rows:,} rows, {len(v.columns)} columns."
    return Notice(f"{note} {v.warning}", "warning") if v.warning else Notice(note)

st.title("Catalog")
st.caption("Datasets, training recipes, models and versions, check and scenario templates, business metrics: "
           "find what others built, see where it is used, and who to ask.")

notices.show()

wanted_kind, wanted_name = st.query_params.get("kind"), st.query_params.get("name")


def _filter(key: str) -> str | None:
    value = st.session_state.get(key, ALL)
    return None if value == ALL else value


# Widget values live in session_state before the widgets are drawn, so one call fetches the page's data.
with session_scope() as s:
    view = attempt(catalog.browse, session=s, query=st.session_state.get("q", ""), kind=_filter("f_kind"),
                   tag=_filter("f_tag"), owner=_filter("f_owner"), project=_filter("f_project"),
                   selected=(wanted_kind, wanted_name) if wanted_kind and wanted_name else None)
if view is None:
    st.stop()
facets = view.facets
st.text_input("Search names, descriptions, tags and owners", key="q", placeholder="e.g. customer review text")
c1, c2, c3, c4 = st.columns(4)
c1.selectbox("Kind", [ALL, *COMPONENT_KINDS], key="f_kind",
             format_func=lambda k: k if k == ALL else f"{catalog.KIND_LABELS[k]} ({facets.kinds[k]})")
c2.selectbox("Tag", [ALL, *facets.tags], key="f_tag")
c3.selectbox("Owner", [ALL, *facets.owners], key="f_owner")
c4.selectbox("Used by project", [ALL, *facets.projects], key="f_project")
filtered = any((st.session_state.get("q"), _filter("f_kind"), _filter("f_tag"), _filter("f_owner"),
                _filter("f_project")))

hits = view.result.hits
if not hits:
    st.info("No component matches this search." if filtered else "The catalog is empty.")
else:
    st.dataframe(pd.DataFrame([
        {"Kind": catalog.KIND_LABELS[c.kind], "Name": c.name, "Owner": c.owner_name, "Trust": TRUST[c.trust.status],
         "Why": c.trust.reason, "Tags": ", ".join(c.tags), "Used by": ", ".join(u.project_key for u in c.used_by),
         "Description": c.description, "Updated": c.updated_at.strftime("%Y-%m-%d")} for c in hits]),
        hide_index=True, width="stretch")
    st.caption(f"{view.result.total} component(s)" + (f", first {len(hits)} shown" if view.result.total > len(hits)
                                                      else ""))

# --- one component in full --------------------------------------------------------------------------------------
labels = {(c.kind, c.name): f"{catalog.KIND_LABELS[c.kind]}: {c.name}" for c in hits}
chosen = view.selected
if chosen is not None:
    labels.setdefault((chosen.kind, chosen.name), f"{catalog.KIND_LABELS[chosen.kind]}: {chosen.name}")
if labels:
    keys = list(labels)
    default = keys.index((chosen.kind, chosen.name)) if chosen is not None else 0
    picked = st.selectbox("Details of", keys, index=default, format_func=labels.get, key="pick")
    if chosen is None or (chosen.kind, chosen.name) != picked:
        chosen = next((c for c in hits if (c.kind, c.name) == picked), None)

if chosen is not None:
    st.subheader(f"{chosen.name}")
    st.markdown(f"**{catalog.KIND_LABELS[chosen.kind]}** · trust: **{TRUST[chosen.trust.status]}** — "
                f"{chosen.trust.reason} · revision {chosen.revision}")
    st.markdown(f"Owner to contact: [{chosen.owner_name}](mailto:{chosen.owner_email}) :gray[{chosen.owner_email}]"
                + (f" · built in project **{chosen.project}**" if chosen.project else ""))
    st.markdown(f"Tags: {', '.join(f'`{t}`' for t in chosen.tags) or '—'}")
    st.text(chosen.description or "No description.")
    if chosen.used_by:
        st.markdown("**Used by**")
        st.dataframe(pd.DataFrame([{"Project": u.project_key, "Name": u.project_name, "Project owner": u.project_owner,
                                    "How": u.how} for u in chosen.used_by]), hide_index=True, width="stretch")
    else:
        st.caption("No project uses it yet.")
    d = chosen.details
    if chosen.kind == "dataset" and d:
        st.markdown(f"**Version {d['version']}** · {d['rows']:,} rows · {len(d['columns'])} columns · "
                    f"fresh as of {d['freshness']:%Y-%m-%d %H:%M} UTC")
        if d["flagged"]:
            st.warning(f"Version {d['version']} changed the schema ({catalog.describe_changes(d['schema_changes'])}); "
                       "no scenario uses it until someone accepts it.")
        st.dataframe(pd.DataFrame([{"Column": p["name"], "Type": p["type"], "Missing": f"{p['missing_rate']:.1%}",
                                    "Distribution": datasets.describe_summary(p)} for p in d["profile"]]),
                     hide_index=True, width="stretch")
        if d["flagged"] and user.actor.has("dataset.register") and st.button("Accept the schema change",
                                                                             key="accept_version"):
            act(datasets.accept_version, actor=user.actor, name=chosen.ref, version=d["version"],
                success=f"{chosen.name} v{d['version']} accepted.")
    if chosen.spec:
        with st.expander("Definition"):
            st.json(chosen.spec)

    if user.actor.has("catalog.register"):
        t1, t2 = st.columns(2)
        with t1.form("tag_form"):
            add = st.text_input("Add tags (comma separated)", key="tag_add")
            remove = st.multiselect("Remove tags", list(chosen.tags), key="tag_remove")
            tagged = st.form_submit_button("Save tags", key="tag_submit")
        with t2.form("use_form"):
            use_project = st.selectbox("Project", view.project_keys, key="use_project")
            how = st.text_input("How it uses it", key="use_how", placeholder="e.g. training data of churn-model")
            used = st.form_submit_button("Record use", key="use_submit")
        if tagged:
            act(catalog.tag_component, actor=user.actor, kind=chosen.kind, name=chosen.name,
                add=[t for t in add.split(",") if t.strip()], remove=remove, success=f"Tags of {chosen.name} saved.")
        if used:
            act(catalog.record_use, actor=user.actor, kind=chosen.kind, name=chosen.name, project_key=use_project,
                how=how, success=f"{use_project} now uses {chosen.name}.")
        if catalog.may_change(user.actor, chosen.owner):
            with st.form("change_form"):
                description = st.text_area("Description", chosen.description, key="change_description")
                spec_text = st.text_area("Definition (JSON)", json.dumps(chosen.spec, indent=2) if chosen.spec else "",
                                         key="change_spec")
                changed = st.form_submit_button("Save changes", key="change_submit")
            spec = parse_json(spec_text, problem=BAD_SPEC) if changed else INVALID
            if spec is not INVALID:
                act(catalog.update_component, actor=user.actor, kind=chosen.kind, name=chosen.name,
                    description=description, spec=spec, success=lambda result: (
                        Notice(f"Saved. {result.warning[0].upper()}{result.warning[1:]}; their owners were alerted.",
                               "warning") if result.warning
                        else f"{chosen.name} saved (revision {result.component.revision})."))

# --- registering ------------------------------------------------------------------------------------------------
if user.actor.has("catalog.register"):
    with st.expander("Register a component"):
        with st.form("register_form"):
            r_kind = st.selectbox("Kind", [k for k in COMPONENT_KINDS if k != "dataset"], key="reg_kind",
                                  format_func=catalog.KIND_LABELS.get)
            r_name = st.text_input("Name", key="reg_name")
            r_description = st.text_area("Description", key="reg_description")
            r_tags = st.text_input("Tags (comma separated)", key="reg_tags")
            r_project = st.selectbox("Built in project", ["—", *view.project_keys], key="reg_project")
            r_ref = st.text_input("Points at (model name, or MODEL:vN for a version)", key="reg_ref")
            r_spec = st.text_area("Definition (JSON, for recipes, templates and metrics)", key="reg_spec")
            registered = st.form_submit_button("Register", type="primary", key="reg_submit")
        spec = parse_json(r_spec, problem=BAD_SPEC) if registered else INVALID
        if spec is not INVALID:
            act(catalog.register_component, actor=user.actor, kind=r_kind, name=r_name, description=r_description,
                tags=[t for t in r_tags.split(",") if t.strip()], project_key=None if r_project == "—" else r_project,
                ref=r_ref, spec=spec, after=lambda c: st.query_params.update({"kind": c.kind, "name": c.name}),
                success=lambda c: f"{catalog.KIND_LABELS[c.kind]} {c.name} registered.")

if user.actor.has("dataset.register"):
    with st.expander("Register a dataset version"):
        with st.form("dataset_form"):
            ds_name = st.text_input("Dataset name", key="ds_name")
            upload = st.file_uploader("CSV file", type=["csv"], key="ds_file")
            ds_query = st.text_area("…or a SQL query on the Watchtower database", key="ds_query")
            ds_description = st.text_input("Description", key="ds_description")
            ds_tags = st.text_input("Tags (comma separated)", key="ds_tags")
            strict = st.checkbox("Refuse a version whose schema differs from the previous one", key="ds_strict")
            ds_submitted = st.form_submit_button("Register version", type="primary", key="ds_submit")
        if ds_submitted:
            with tempfile.TemporaryDirectory() as tmp:
                path = None
                if upload is not None:
                    path = Path(tmp) / Path(upload.name).name
                    path.write_bytes(upload.getvalue())
                act(datasets.register_dataset, actor=user.actor, name=ds_name, csv_path=path,
                    query=ds_query if ds_query.strip() else None, description=ds_description, strict=strict,
                    tags=[t for t in ds_tags.split(",") if t.strip()], success=registered_dataset,
                    after=lambda v: st.query_params.update({"kind": "dataset", "name": v.dataset}))
