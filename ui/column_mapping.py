"""The Registry page's column mapping: register a model after confirming its mapping, and correct a mapping."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pandas as pd
import streamlit as st

from core.access import Actor
from core.db import session_scope
from core.errors import InvalidInput, WatchtowerError
from core.models import mappings, registry
from core.models.column_mapping import (
    Declared,
    Mapping,
    Proposal,
    parse_features,
    parse_kinds,
    propose,
    schema_text,
)
from core.projects import projects
from ui.actions import act

PREVIEW = "reg_new_preview"


def mapping_table(mapping: Mapping, ignored: dict[str, str] | tuple[str, ...] = ()) -> pd.DataFrame:
    """One row per column: its role, and why an ignored one is ignored."""
    rows = [{"Column": column, "Role": role, "Note": ""} for column, role in mapping.roles().items()]
    notes = ignored if isinstance(ignored, dict) else dict.fromkeys(ignored, "")
    rows += [{"Column": column, "Role": "ignored", "Note": why} for column, why in notes.items()]
    return pd.DataFrame(rows, columns=["Column", "Role", "Note"])


def _declared(*, prefix: str, schema: object | None, **roles: str | None) -> Declared:
    """The form's fields over an uploaded schema file; blank fields say nothing."""
    features = st.session_state.get(f"{prefix}_features") or None
    kinds = [k for k in (st.session_state.get(f"{prefix}_kinds") or "").replace(",", " ").split() if k]
    given = Declared(**{k: (v or None) for k, v in roles.items()},
                     id_column=st.session_state.get(f"{prefix}_id") or None,
                     timestamp_column=st.session_state.get(f"{prefix}_ts") or None,
                     features=parse_features(features), kinds=parse_kinds(kinds))
    base = schema_text(schema.getvalue().decode(), name=schema.name) if schema is not None else Declared()
    return given.over(base)


def _show(proposal: Proposal) -> None:
    for line in proposal.inferred:
        st.caption(f"Inferred {line}")
    st.dataframe(mapping_table(proposal.mapping, proposal.ignored), hide_index=True, width="stretch")
    for warning in proposal.warnings:
        st.warning(warning)


def _mapping_fields(prefix: str) -> None:
    c1, c2 = st.columns(2)
    c1.text_input("Id column (blank: inferred)", key=f"{prefix}_id")
    c2.text_input("Timestamp column (blank: inferred)", key=f"{prefix}_ts")
    st.text_input("Features, comma-separated (blank: every other column)", key=f"{prefix}_features")
    st.text_input("Kinds, e.g. region_code=categorical", key=f"{prefix}_kinds")


def register_section(actor: Actor) -> None:
    """Upload a reference file, preview the mapping Watchtower infers or is given, then register."""
    with session_scope() as s:
        keys = [p.key for p in projects.list_projects(session=s, actor=actor)]
    if not keys:
        st.caption("Create a project first.")
        return
    with st.form("reg_new_form"):
        c1, c2, c3 = st.columns(3)
        c1.selectbox("Project", keys, key="reg_new_project")
        c2.text_input("Model name", key="reg_new_name")
        c3.selectbox("Task", ["binary", "regression"], key="reg_new_task")
        c1, c2, c3 = st.columns(3)
        c1.text_input("Target column", key="reg_new_target")
        c2.text_input("Score column", key="reg_new_score")
        c3.text_input("Prediction column", key="reg_new_prediction")
        reference = st.file_uploader("Reference data (CSV)", type=["csv"], key="reg_new_reference")
        schema = st.file_uploader("Schema file (YAML or JSON, optional)", type=["yaml", "yml", "json"],
                                  key="reg_new_schema")
        _mapping_fields("reg_new")
        if st.form_submit_button("Preview the column mapping", key="reg_new_preview_go"):
            st.session_state.pop(PREVIEW, None)
            try:
                if reference is None:
                    raise InvalidInput("choose the reference data (CSV)")
                declared = _declared(prefix="reg_new", schema=schema,
                                     target=st.session_state["reg_new_target"],
                                     score_column=st.session_state["reg_new_score"],
                                     prediction_column=st.session_state["reg_new_prediction"])
                with tempfile.TemporaryDirectory() as tmp:
                    path = Path(tmp) / Path(reference.name).name
                    path.write_bytes(reference.getvalue())
                    proposal = propose(registry.read_reference_csv(path), declared, source=reference.name)
            except WatchtowerError as exc:
                st.error(f"Refused: {exc}")
            else:
                st.session_state[PREVIEW] = {"bytes": reference.getvalue(), "file": reference.name,
                                             "proposal": proposal}
    preview = st.session_state.get(PREVIEW)
    if preview is None:
        return
    st.markdown(f"**Column mapping of {preview['file']}** — confirm it to register")
    _show(preview["proposal"])
    if st.button("Register with this mapping", type="primary", key="reg_new_go"):
        mapping = preview["proposal"].mapping
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / Path(preview["file"]).name
            path.write_bytes(preview["bytes"])
            name = st.session_state["reg_new_name"]
            act(registry.register_model, actor=actor, project_key=st.session_state["reg_new_project"], name=name,
                task=st.session_state["reg_new_task"], target=mapping.target, reference_csv=path,
                score_col=mapping.score_column, prediction_col=mapping.prediction_column, columns=mapping.declared(),
                refused="Registration refused: ", after=lambda _v: st.session_state.pop(PREVIEW, None),
                success=lambda v: f"{name} registered: version {v.number} ({v.origin}), {v.reference_rows} "
                                  "reference rows.")


def mapping_section(actor: Actor, model: str) -> None:
    """The mapping in force, its history, and (for those who register versions) a correction."""
    with session_scope() as s:
        current = mappings.current_mapping(session=s, model=model)
        history = mappings.mapping_history(session=s, model=model)
    st.caption(f"Mapping {current.number}" + (f" by {current.created_by} on {current.created_at:%Y-%m-%d %H:%M}"
                                              if current.created_at else f" ({current.notes})"))
    st.dataframe(mapping_table(current.mapping, current.ignored), hide_index=True, width="stretch")
    if len(history) > 1:
        with st.expander(f"History ({len(history)} mappings)"):
            st.dataframe(pd.DataFrame([{"Mapping": h.number, "By": h.created_by,
                                        "When": h.created_at.strftime("%Y-%m-%d %H:%M") if h.created_at else "",
                                        "Id": h.mapping.id_column or "—", "Timestamp": h.mapping.timestamp_column or "—",
                                        "Features": ", ".join(h.mapping.feature_names), "Notes": h.notes}
                                       for h in reversed(history)]), hide_index=True, width="stretch")
    if not actor.has("model.register"):
        return
    with st.form(f"map_form_{model}"):
        st.caption("Blank fields keep the mapping in force; a column given the id or timestamp role leaves the "
                   "features. Recorded as a new mapping; evaluations after it use its features.")
        _mapping_fields("map")
        st.text_input("Why", key="map_notes")
        if st.form_submit_button("Record the corrected mapping", key="map_go"):
            try:
                declared = _declared(prefix="map", schema=None)
            except WatchtowerError as exc:
                st.error(f"Correction refused: {exc}")
                return
            act(mappings.set_mapping, actor=actor, model=model, declared=declared,
                notes=st.session_state.get("map_notes", ""), refused="Correction refused: ",
                success=lambda info: f"{model} mapping {info.number} recorded: {len(info.mapping.features)} "
                                     "feature(s).")

