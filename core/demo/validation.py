"""The validation lab's findings for every demo version, computed at seed time so that the lab opens at once."""

from __future__ import annotations

from collections.abc import Callable

from core.validation import lab_results


def seed(*, progress: Callable[[str], None] = lambda _msg: None) -> None:
    """Compute the findings queued when the demo's versions were registered."""
    progress("computing the validation lab's findings")
    lab_results.compute_queued()
