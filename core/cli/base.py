"""The `watchtower` group every command registers on, and the way a command fails."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import Any

import click

from core.cli.guard import WatchtowerGroup
from core.errors import WatchtowerError


@click.group(cls=WatchtowerGroup, context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """Watchtower: MLOps analytics and governance portal."""


def fails_cleanly(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Turn a service error into a one-line reason on stderr and exit status 1."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except WatchtowerError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(1)

    return wrapper
