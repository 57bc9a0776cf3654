"""Validation lab: what-if with explanations on demand; importance, diagnostics and champion / challenger as the
worker stored them for the version."""

import altair as alt
import pandas as pd
import streamlit as st

from core import validation
from core.access import Actor
from core.config import get_settings
from core.db import session_scope
from core.models import lineage, registry
from ui import lab_findings
from ui.actions import attempt
from ui.pickers import pick_model, pick_version
from ui.session import require_page

user = require_page("validation.view")
actor = user.actor

st.title("Validation lab")
name = pick_model(key="val_model")
with session_scope() as s:
    rows = [v for v in lineage.versions_overview(session=s, actor=actor, model=name) if v.has_artifact]
if not rows:
    st.info(f"{name} has no version with an artifact: the lab needs a model it can run.")
    st.stop()
numbers = [v.number for v in rows]
label = {v.number: f"v{v.number} ({v.status}, {v.origin.replace('_', ' ')})" for v in rows}
default = next((v.number for v in rows if v.status == "candidate"), next((v.number for v in rows
                                                                          if v.status == "active"), numbers[0]))
number = pick_version(numbers, current=default, query="version", describe=label.get, key=f"val_version_{name}")


@st.cache_resource(ttl=600, show_spinner="Loading the version and the recent labelled data…")
def load_lab(database: str, model: str, version: int, username: str, roles: tuple[str, ...]) -> validation.Lab:
    with session_scope() as s:
        return validation.open_lab(session=s, actor=Actor(username, roles), model=model, version=version)


key = (get_settings().database_url, name, number, actor.username, actor.roles)


@st.fragment
def what_if() -> None:
    """Widgets for each feature; a change rescores and re-explains this record only, not the whole page."""
    st.subheader("What-if")
    # Opened on demand: it reads the version and the recent labelled data, which the findings below do not need.
    if not st.toggle("Score and explain a record", key=f"wi_open_{name}_{number}"):
        return
    lab = attempt(load_lab, *key)
    if lab is None:
        return
    st.caption(f"Data: {lab.evaluation_source}.")
    prefix = f"wi_{name}_{number}_"
    choices = validation.record_choices(lab)
    typical = validation.typical_record(lab)
    ranges = {r.name: r for r in validation.feature_ranges(lab)}
    options = ["typical", *choices["prediction_id"].tolist()] if not choices.empty else ["typical"]
    by_id = {row["prediction_id"]: row for row in choices.to_dict("records")}

    def start_from() -> None:
        pick = st.session_state[prefix + "pick"]
        source = typical if pick == "typical" else by_id[pick]
        for feature in lab.version.features:
            value = source.get(feature)
            numeric = ranges[feature].type == "numeric" and value is not None
            st.session_state[prefix + feature] = float(value) if numeric else value

    def describe(pick: str) -> str:
        if pick == "typical":
            return "A typical record (median values, most frequent categories)"
        row = by_id[pick]
        return (f"{pick} · {row['ts']:%Y-%m-%d %H:%M} · logged score {row['__score__']:.3f} · "
                f"{lab.model.target} = {int(row[lab.model.target])}")

    st.selectbox("Start from a logged prediction", options, format_func=describe, key=prefix + "pick",
                 on_change=start_from)
    if prefix + lab.version.features[0] not in st.session_state:
        start_from()
    columns = st.columns(4)
    for i, feature in enumerate(lab.version.features):
        spec = ranges[feature]
        with columns[i % 4]:
            if spec.type == "numeric":
                whole = spec.low is not None and float(spec.low).is_integer() and float(spec.high).is_integer()
                st.number_input(feature, step=1.0 if whole else 0.1, format="%.0f" if whole else "%.3f",
                                key=prefix + feature)
            else:
                current = st.session_state.get(prefix + feature)
                st.selectbox(feature, sorted({*spec.categories, *([current] if current else [])}), key=prefix + feature)
    record = {f: st.session_state[prefix + f] for f in lab.version.features}
    result = attempt(validation.what_if, lab, record)
    explained = attempt(validation.explain, lab, record) if result is not None else None
    if explained is None:
        return
    left, right = st.columns([1, 2])
    with left:
        st.metric("Score", f"{result.score:.4f}", delta=f"{result.score - explained.baseline:+.4f} vs baseline",
                  delta_color="off")
        (st.error if result.flagged else st.success)(f"Decision: {result.decision}")
    with right:
        st.markdown(f"**Why this score** — method: {explained.method}")
        frame = pd.DataFrame([{"feature": f"{c.feature} = {c.value}", "contribution": c.contribution,
                               "direction": "raises the score" if c.contribution > 0 else "lowers the score"}
                              for c in explained.contributions])
        st.altair_chart(alt.Chart(frame).mark_bar().encode(
            y=alt.Y("feature:N", sort=None, title=None),
            x=alt.X("contribution:Q", title=f"contribution ({explained.space})"),
            color=alt.Color("direction:N", scale=alt.Scale(domain=["raises the score", "lowers the score"],
                                                           range=["#d62728", "#2ca02c"])),
            tooltip=["feature", "contribution"]), width="stretch")
        baseline_means = ("the score of the reference-mean input" if explained.space == "log-odds"
                          else "the mean score over the background sample of the reference data")
        st.caption(f"Baseline score {explained.baseline:.4f} ({baseline_means}). The contributions are in "
                   f"{explained.space} and add up to score − baseline within {explained.tolerance:g} "
                   f"(off by {explained.residual:.1e}).")


what_if()

with session_scope() as s:
    task = registry.get_model(session=s, name=name).task
lab_findings.show(actor, name, number, task=task)
