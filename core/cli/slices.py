"""slices: the segments of an evaluation window where the model loses most, from the command line."""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import TYPE_CHECKING

import click

from core.cli.base import fails_cleanly, main
from core.errors import InvalidInput

if TYPE_CHECKING:
    from core.monitoring import slice_findings


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{value:.1%}"


def _num(value: float | None) -> str:
    return "—" if value is None else f"{value:,.3f}" if abs(value) < 10 else f"{value:,.0f}"


def _table(found: slice_findings.FindingRead) -> str:
    head = (f"{found.model} v{found.version}, window {found.window_start:%Y-%m-%d} → {found.window_end:%Y-%m-%d} "
            f"(evaluation {found.evaluation_id}): {found.loss_label}, {found.rows:,} labelled rows")
    if found.status != "found":
        return f"{head}\n{found.reason}"
    lines = [head, f"{'#':>2}  {'rows':>8}  {'share':>6}  {'in ref':>6}  {'inside':>9}  {'outside':>9}  "
                   f"{'of loss':>7}  segment"]
    for s in found.segments:
        lines.append(f"{s['rank']:>2}  {s['rows']:>8,}  {_pct(s['share']):>6}  {_pct(s['reference_share']):>6}  "
                     f"{_num(s['inside']):>9}  {_num(s['outside']):>9}  {_pct(s['loss_share']):>7}  {s['text']}"
                     + ("  (grew)" if s["grew"] else ""))
    lines.append(f"inside / outside: {found.metric_label}")
    if found.grown:
        lines.append("grown since the reference: " + "; ".join(
            f"{g['text']} {_pct(g['reference_share'])} → {_pct(g['share'])}"
            + (" (hurts)" if g["harmful"] else " (no harm)") for g in found.grown))
    return "\n".join(lines)


@main.command("slices")
@click.argument("model")
@click.option("--evaluation", "evaluation_id", type=int, default=None,
              help="Evaluation window id (default: the active version's latest labelled window).")
@click.option("--loss", default=None, help="What to explain: missed, false_alarms, errors, log_loss, abs_error or a "
                                           "business metric (default: the model's first business amount).")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
@click.option("--as", "as_user", default=None, help="Act as this user (authenticated).")
@fails_cleanly
def slices_command(model: str, evaluation_id: int | None, loss: str | None, fmt: str, as_user: str | None) -> None:
    """The segments of MODEL's evaluation window where its loss concentrates (up to three conditions each)."""
    from core.cli.actors import resolve_actor
    from core.db import session_scope
    from core.monitoring import slice_findings

    actor = resolve_actor(as_user)
    with session_scope() as s:
        if evaluation_id is None:
            evaluation_id = slice_findings.latest_labelled(session=s, actor=actor, model=model)
        elif slice_findings.model_of(session=s, evaluation_id=evaluation_id) != model:
            raise InvalidInput(f"evaluation {evaluation_id} is not a window of {model}")
        found = slice_findings.explain(session=s, actor=actor, evaluation_id=evaluation_id, loss=loss)
    if fmt == "json":
        data = asdict(found)
        data.update(window_start=found.window_start.isoformat(), window_end=found.window_end.isoformat())
        click.echo(json.dumps(data, indent=2))
    else:
        click.echo(_table(found))
