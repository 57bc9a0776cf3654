"""What every benchmark shares: the quick mode, the PostgreSQL database of the benchmarks, and the result lines.

- `quick()`: True when BENCH_QUICK=1; the scripts then shrink their sizes for a smoke run (the targets stay).
- `postgres_url()`: the benchmarks' own database on 127.0.0.1:5432 (`watchtower_bench`, or WATCHTOWER_BENCH_PG),
  created through the `postgres` maintenance database when missing; None when PostgreSQL is not reachable.
- `private_schema(url)`: a schema of its own in that database for one run, dropped afterwards.
- `empty_page(directory, permission)` and `open_first(page, ...)`: the page benchmarks' baseline, an empty page
  in the same app shell, and one timed AppTest run of app.py with a given page as the default one.
- `report(name, figure, target, ok)`: prints one result line (and a JSON line that bench/run_all.py collects);
  `finish()` exits 1 when any reported result missed its target, or when nothing was reported.
"""

from __future__ import annotations

import json
import os
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

BENCH_DATABASE = "watchtower_bench"
RESULT_MARKER = "BENCH-RESULT "
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_outcomes: list[bool] = []


def quick() -> bool:
    """A smoke run with smaller sizes (BENCH_QUICK=1)."""
    return os.environ.get("BENCH_QUICK") == "1"


def sized(full: int, small: int) -> int:
    """`small` in quick mode, else `full`."""
    return small if quick() else full


def postgres_url() -> str | None:
    """The benchmarks' own PostgreSQL database, created if missing; None (with the reason printed) if unreachable."""
    url = os.environ.get("WATCHTOWER_BENCH_PG", f"postgresql+psycopg://postgres@127.0.0.1:5432/{BENCH_DATABASE}")
    name = make_url(url).database
    maintenance = make_url(url).set(database="postgres")
    try:
        engine = create_engine(maintenance, isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 3})
        with engine.connect() as conn:
            exists = conn.execute(text("SELECT 1 FROM pg_database WHERE datname = :name"), {"name": name}).first()
            if not exists:
                conn.execute(text(f'CREATE DATABASE "{name}"'))
        engine.dispose()
    except Exception as exc:  # noqa: BLE001 - no server, no rights: the PostgreSQL part is skipped
        print(f"PostgreSQL not reachable ({str(exc).splitlines()[0]})")
        return None
    return url


@contextmanager
def private_schema(url: str, prefix: str = "bench") -> Iterator[str]:
    """A fresh schema in the database at `url`; yields a URL whose search_path is that schema; drops it after."""
    schema = f"{prefix}_{uuid.uuid4().hex[:10]}"
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield f"{url}?options=-csearch_path%3D{schema}"
    finally:
        with engine.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        engine.dispose()


def report(name: str, figure: str, target: str, ok: bool) -> None:
    """Print one result (a readable line and a JSON line for bench/run_all.py) and remember whether it passed."""
    _outcomes.append(bool(ok))
    size = " (quick)" if quick() else ""
    print(f"RESULT {name}{size}: {figure}   target {target}   {'PASS' if ok else 'FAIL'}")
    print(RESULT_MARKER + json.dumps({"name": name + size, "figure": figure, "target": target, "ok": bool(ok)}),
          flush=True)


def finish() -> None:
    """Exit 0 only when something was reported and every reported result met its target."""
    sys.exit(0 if _outcomes and all(_outcomes) else 1)


EMPTY_PAGE = """import streamlit as st

from ui.session import require_page

require_page({permission!r})
st.title("Empty")
"""


def empty_page(directory: str, permission: str) -> str:
    """Write a page that checks `permission` and shows a title, nothing else (no data work); returns its path."""
    path = os.path.join(directory, "bench_empty.py")
    with open(path, "w") as f:
        f.write(EMPTY_PAGE.format(permission=permission))
    return path


def open_first(page: str, permission: str, user: dict, *, clear_cache: bool) -> tuple[float, object]:
    """Run app.py in AppTest, signed in as `user`, with `page` the first (default) page of the navigation.

    The same app shell every time (page config, banner, sidebar, navigation); only the page differs. Returns
    the seconds of that one run and the AppTest. `clear_cache` empties Streamlit's data cache first (cold).
    """
    import time

    import streamlit as st
    from streamlit.testing.v1 import AppTest

    from core import access

    original = access.PAGES
    spec = next((p for p in original if p.path == page), None) or access.PageSpec(page, "Empty", "Bench", permission)
    access.PAGES = (spec, *(p for p in original if p.path != page))
    try:
        if clear_cache:
            st.cache_data.clear()
        at = AppTest.from_file(os.path.join(ROOT, "app.py"), default_timeout=180)
        at.session_state["user"] = user
        started = time.perf_counter()
        at.run()
        elapsed = time.perf_counter() - started
    finally:
        access.PAGES = original
    if at.exception:
        raise SystemExit(f"{page} raised: {at.exception[0].value}")
    return elapsed, at
