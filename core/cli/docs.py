"""docs: generate a model version's documentation (Markdown, HTML or PDF), stored and written to a file."""

from __future__ import annotations

from pathlib import Path

import click

from core.cli.base import fails_cleanly, main
from core.errors import InvalidInput
from core.vocabulary import DOCUMENT_FORMATS


@main.command("docs")
@click.argument("model")
@click.option("--version", "version", type=int, default=None, help="Version number (default: the active one).")
@click.option("--format", "fmt", type=click.Choice(DOCUMENT_FORMATS), required=True)
@click.option("--out", "out", required=True, type=click.Path(dir_okay=False), help="File to write.")
@click.option("--as", "as_user", default=None, help="Act as this user (authenticated).")
@fails_cleanly
def docs(model: str, version: int | None, fmt: str, out: str, as_user: str | None) -> None:
    """Generate the documentation of MODEL, store it with its sha256 and write it to FILE."""
    from core.cli.actors import resolve_actor
    from core.documentation import documents

    target = Path(out)
    if not target.parent.is_dir():
        raise InvalidInput(f"cannot write {out}: folder {target.parent} does not exist")
    actor = resolve_actor(as_user)
    generated = documents.generate(actor=actor, model=model, version=version, fmt=fmt)
    target.write_bytes(generated.content)
    d = generated.document
    attached = f", attached to review #{d.review_id}" if d.review_id else ""
    click.echo(f"{d.model} v{d.version} documentation ({d.format}, sha256 {d.sha256}) written to {out}{attached}")
