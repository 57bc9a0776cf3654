"""Models saved the way partners are asked to hand them over: with skops, their types trusted by an administrator."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import skops.io

from core.access import Actor
from core.db import session_scope
from core.models import registry

ADMIN = Actor(username="ada-admin", roles=("admin",))


def save_skops(estimator: Any, path: Path, *, trust: bool = True) -> Path:
    """Dump ESTIMATOR with skops; with `trust`, an administrator trusts the types it holds beyond skops' defaults."""
    skops.io.dump(estimator, path)
    untrusted = skops.io.get_untrusted_types(file=path)
    if trust and untrusted:
        with session_scope() as s:
            registry.trust_types(session=s, actor=ADMIN, type_names=untrusted)
    return path
