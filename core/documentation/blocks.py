"""The building blocks of a document and how values read in it, the same in every format.

Every string in a block is plain text (often written by users); the renderers escape it for their format.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class Para:
    text: str
    tone: str = ""  # "" | "note" | "warning"


@dataclass(frozen=True)
class Facts:
    rows: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class Table:
    columns: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    caption: str = ""


@dataclass(frozen=True)
class Chart:
    title: str
    spec: dict  # Vega-Lite, data inline


@dataclass(frozen=True)
class Section:
    title: str
    blocks: tuple
    level: int = 2


@dataclass(frozen=True)
class Outline:
    title: str
    subtitle: str
    sections: tuple[Section, ...]


def num(value: object) -> str:
    """How every number appears in the documentation (the same in all formats)."""
    if value is None or (isinstance(value, float) and value != value):
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:,.2f}" if abs(value) >= 1000 else f"{value:.4f}"
    if isinstance(value, (dict, list)):
        return json.dumps(value, sort_keys=True, default=str)
    return str(value)


def when(value: datetime | None) -> str:
    return "—" if value is None else f"{value:%Y-%m-%d %H:%M} UTC"


def day(value: datetime | None) -> str:
    return "—" if value is None else f"{value:%Y-%m-%d}"


def window(start: datetime, end: datetime) -> str:
    return f"{start:%Y-%m-%d %H:%M} → {end:%Y-%m-%d %H:%M}"


def amount(value: object) -> str:
    """Business values (money, counts of value) with two decimals, whatever their size."""
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value == value:
        return f"{value:,.2f}"
    return num(value)
