"""The validation lab's stored findings on a page: importance, diagnostics, champion / challenger, or their progress."""

from __future__ import annotations

import altair as alt
import pandas as pd
import streamlit as st

from core.access import Actor
from core.db import session_scope
from core.validation import lab_results
from ui.actions import act, attempt

STATUS = {"pass": "✅ pass", "warn": "⚠️ warn", "fail": "❌ fail"}
VERDICT = {"challenger_wins": "success", "champion_holds": "warning", "no_clear_winner": "info", "is_champion": "info"}
OFFER = {"absent": "The lab's findings (importance, diagnostics, champion / challenger) were not computed for v{n}.",
         "stale": "The active version changed since v{n}'s findings were computed: the comparison is out of date.",
         "failed": "Computing v{n}'s findings failed: {error}"}


def _read(actor: Actor, model: str, version: int) -> lab_results.StoredFindings | None:
    with session_scope() as s:
        return attempt(lab_results.stored, session=s, actor=actor, model=model, version=version)


def show(actor: Actor, model: str, version: int, *, task: str) -> None:
    """The stored findings; while they are computed, their progress; when there are none, the offer to compute."""
    found = _read(actor, model, version)
    if found is None:
        return
    if found.status in ("pending", "running"):
        _progress(actor, model, version)
        return
    if found.status in OFFER:
        (st.error if found.status == "failed" else st.info)(OFFER[found.status].format(n=version, error=found.error))
        if st.button("Compute the findings", key="lab_compute", disabled=not actor.has("model.register"),
                     help=None if actor.has("model.register") else "Only who may register versions can ask."):
            act(lab_results.queue, actor=actor, model=model, version=version,
                success=f"Queued: the worker computes v{version}'s findings.")
    if found.findings is not None:
        render(found.findings, task=task)


@st.fragment(run_every="2s")
def _progress(actor: Actor, model: str, version: int) -> None:
    found = _read(actor, model, version)
    if found is None or found.status not in ("pending", "running"):
        st.rerun()
    st.info(f"Computing… {found.done} of {found.total} (the worker computes v{version}'s importance, "
            "diagnostics and champion / challenger once; this page reads them when done).")
    st.progress(found.done / max(found.total, 1))


def render(findings: lab_results.Findings, *, task: str) -> None:
    """Global importance, diagnostics with the reliability curve, and the champion / challenger verdict."""
    st.subheader("Global importance")
    st.caption(f"Permutation importance: the drop in {'ROC AUC' if task == 'binary' else 'R²'} when one feature "
               f"is shuffled, on {findings.source}.")
    st.altair_chart(alt.Chart(pd.DataFrame([{"feature": i.feature, "importance": i.mean, "spread": i.std}
                                            for i in findings.importances])).mark_bar().encode(
        y=alt.Y("feature:N", sort="-x", title=None), x=alt.X("importance:Q"),
        tooltip=["feature", "importance", "spread"]), width="stretch")
    report, verdict = findings.report, findings.verdict
    st.subheader("Diagnostics")
    st.dataframe(pd.DataFrame([{"Status": STATUS[d.status], "Diagnostic": d.name, "Reason": d.reason}
                               for d in report.items]), hide_index=True, width="stretch",
                 column_config={"Reason": st.column_config.TextColumn(width="large")})
    if report.calibration is not None:
        curve = report.calibration
        points = pd.DataFrame({"mean score": curve.predicted, "observed rate": curve.observed, "rows": curve.counts})
        top = max(max(curve.predicted), max(curve.observed), 1e-3)
        diagonal = alt.Chart(pd.DataFrame({"x": [0.0, top], "y": [0.0, top]})) \
            .mark_line(strokeDash=[4, 4], color="gray").encode(x="x:Q", y="y:Q")
        line = alt.Chart(points).mark_line(point=True).encode(x=alt.X("mean score:Q"), y=alt.Y("observed rate:Q"),
                                                              tooltip=["mean score", "observed rate", "rows"])
        st.markdown(f"**Reliability curve** · Brier score {curve.brier:.4f} · calibration error {curve.ece:.4f}")
        st.altair_chart(diagonal + line, width="stretch")
    st.subheader("Champion / challenger")
    getattr(st, VERDICT[verdict.verdict])(verdict.reason)
    champ, chall = f"v{verdict.champion} (champion)", f"v{verdict.challenger} (challenger)"
    if verdict.metrics:
        st.dataframe(pd.DataFrame([{"Metric": m, champ: a, chall: b} for m, a, b in verdict.metrics]
                                  + [{"Metric": f"{label} ({better} is better)", champ: a, chall: b}
                                     for label, a, b, better in verdict.business]), hide_index=True, width="stretch")
    if verdict.segments:
        st.markdown("**Segment by segment** · where the champion lost most in its recent evaluation windows")
        st.dataframe(pd.DataFrame([{"Segment": g.segment, "Rows": g.rows, "Metric": g.metric, champ: g.champion,
                                    chall: g.challenger, "Outcome": g.outcome} for g in verdict.segments]),
                     hide_index=True, width="stretch", key="lab_segments")
