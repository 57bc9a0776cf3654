"""The Registry page's MLflow parts: import a registered model version, its MLflow lineage, the trusted servers."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pandas as pd
import streamlit as st

from core.access import Actor
from core.db import session_scope
from core.models import mlflow_import, mlflow_sources
from core.models.column_mapping import Declared
from core.projects import projects
from ui.actions import act, attempt
from ui.notices import Notice, keep


def import_section(actor: Actor) -> None:
    """A form: project, model URI, a trusted tracking server, reference data; imports all or nothing."""
    with session_scope() as s:
        trusted = [src.tracking_uri for src in mlflow_sources.list_sources(session=s, actor=actor)]
        keys = projects.list_project_keys(session=s)
    if not trusted:
        st.info("No MLflow tracking server is trusted yet. Loading a model from MLflow runs its code, so an "
                "administrator must trust the server first (below, or `watchtower admin trust-mlflow URI`).")
    with st.form("mlflow_import_form"):
        st.caption("A version registered in MLflow (`models:/NAME@ALIAS` or `models:/NAME/VERSION`), and reference "
                   "data (CSV) with the model's input columns and the target. The signature gives the column "
                   "mapping; the run's metrics become the training baseline.")
        c1, c2 = st.columns(2)
        project = c1.selectbox("Project", keys, key="mlf_project")
        tracking = c2.selectbox("Tracking server", trusted, key="mlf_tracking")
        model_uri = c1.text_input("Model URI", placeholder="models:/card-fraud@champion", key="mlf_uri")
        name = c2.text_input("Watchtower model name (blank: the MLflow name)", key="mlf_name")
        target = c1.text_input("Target column (blank: inferred)", key="mlf_target")
        reference = st.file_uploader("Reference data (CSV)", type=["csv"], key="mlf_reference")
        mirror = st.checkbox("Write window evaluations back to the MLflow run", key="mlf_mirror")
        if st.form_submit_button("Import from MLflow", disabled=not trusted, key="mlf_go"):
            with tempfile.TemporaryDirectory() as tmp:
                ref = None
                if reference is not None:
                    ref = Path(tmp) / Path(reference.name).name
                    ref.write_bytes(reference.getvalue())
                done = attempt(mlflow_import.import_from_mlflow, actor=actor, project_key=project or "",
                               model_uri=model_uri, tracking_uri=tracking or "", reference=ref, name=name or None,
                               columns=Declared(target=target or None), mirror_metrics=mirror,
                               refused="Import refused: ")
            if done is not None:
                keep(Notice(f"{done.model} v{done.version.number} ({done.version.status}) imported from MLflow "
                            f"{done.source.name} v{done.source.version}, run {done.source.run_id or '—'}."))
                st.rerun()


def lineage_section(recipe: dict) -> None:
    """Where an imported version comes from in MLflow, and its run's metrics (the training baseline)."""
    if recipe.get("source") != "mlflow":
        return
    st.markdown(f"**From MLflow:** `{recipe.get('model_uri')}` → {recipe.get('registered_model')} "
                f"v{recipe.get('model_version')} at {recipe.get('tracking_uri')} · run `{recipe.get('run_id') or '—'}`"
                f" · {recipe.get('flavor')} flavour"
                + (" · evaluations mirrored to the run" if recipe.get("mirror_metrics") else ""))
    run_metrics = recipe.get("run_metrics") or {}
    if run_metrics:
        st.dataframe(pd.DataFrame([{"MLflow run metric": k, "Value": v} for k, v in sorted(run_metrics.items())]),
                     hide_index=True, width="stretch")


def sources_section(actor: Actor) -> None:
    """Administrators: trust or stop trusting MLflow tracking servers."""
    with session_scope() as s:
        rows = mlflow_sources.list_sources(session=s, actor=actor)
    if rows:
        st.dataframe(pd.DataFrame([{"Tracking server": r.tracking_uri, "Trusted by": r.trusted_by,
                                    "Since": r.trusted_at.strftime("%Y-%m-%d %H:%M"), "Note": r.note} for r in rows]),
                     hide_index=True, width="stretch")
    c1, c2 = st.columns([3, 1])
    uri = c1.text_input("Tracking URI", placeholder="http://mlflow.internal:5000", key="mlf_trust_uri")
    if c2.button("Trust", key="mlf_trust_go"):
        act(mlflow_sources.trust_source, actor=actor, tracking_uri=uri, refused="Not trusted: ",
            success=lambda src: f"{src.tracking_uri} is trusted as an MLflow source.")
    if rows and c2.button("Stop trusting", key="mlf_distrust_go"):
        act(mlflow_sources.distrust_source, actor=actor, tracking_uri=uri, refused="Refused: ",
            success=lambda removed: f"{uri} is no longer trusted." if removed else f"{uri} was not trusted.")
