"""Two portal replicas (`watchtower serve --no-worker`) on one PostgreSQL serve the same state: what a person
does through one is what the other shows, and the other way round."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from core.access import Actor
from core.db import session_scope
from core.identity import users
from tests.conftest import _truncate_all
from tests.e2e.conftest import (
    LOG_ERROR_MARKERS,
    TIMEOUT_MS,
    _wait_healthy,
    free_port,
    goto,
    main_text,
    wait_idle,
)

ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "replica-pass-1234"


@pytest.fixture
def replicas(pg_schema_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """maya with a password on a clean PostgreSQL schema, and two portals without workers serving it."""
    _truncate_all(pg_schema_url)
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("WATCHTOWER_HOME", str(home))
    monkeypatch.setenv("WATCHTOWER_DATABASE_URL", pg_schema_url)
    monkeypatch.delenv("WATCHTOWER_DEMO", raising=False)
    with session_scope() as s:
        users.create_user(session=s, actor=Actor(username="setup", roles=("admin",)), username="maya", name="Maya",
                          email="maya@bank.test", roles=["ml_engineer"], password=PASSWORD)
    procs, urls = [], []
    env = {k: v for k, v in os.environ.items() if k != "WATCHTOWER_DEMO"}
    try:
        for n in range(2):
            port = free_port()
            log = (home / f"replica-{n}.log").open("w")
            procs.append(subprocess.Popen([sys.executable, "-m", "core.cli", "serve", "--no-worker", "--port", str(port)],
                                          cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT))
            urls.append(f"http://127.0.0.1:{port}")
        for url, proc in zip(urls, procs, strict=True):
            _wait_healthy(url, proc)
        yield urls
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
    for n in range(2):
        logged = (home / f"replica-{n}.log").read_text()
        assert not any(marker in logged for marker in LOG_ERROR_MARKERS), f"replica {n} logged an error:\n{logged}"


def _signed_in(browser, url: str):  # noqa: ANN001, ANN202 - playwright objects
    context = browser.new_context(base_url=url, viewport={"width": 1400, "height": 1000})
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    page.goto(url)
    wait_idle(page)
    page.get_by_role("textbox", name="Username").fill("maya")
    page.get_by_role("textbox", name="Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("button", name="Sign out").wait_for()
    wait_idle(page)
    return context, page


@pytest.mark.e2e
def test_two_replicas_on_one_database_show_what_either_one_changed(replicas, browser):  # noqa: ANN001
    first_context, first = _signed_in(browser, replicas[0])
    second_context, second = _signed_in(browser, replicas[1])

    goto(first, "Tokens")
    first.get_by_label("Name").fill("replica-check")
    first.get_by_label("Name").press("Enter")
    wait_idle(first)
    first.get_by_role("button", name="Create token").click()
    first.get_by_text("Copy the secret of token").wait_for()

    goto(second, "Tokens")
    revoke = second.get_by_test_id("stSelectbox").filter(has_text="Token")
    shown = revoke.inner_text() + " " + revoke.locator("input").input_value()
    assert "replica-check of maya" in shown, f"the second replica lists the token made on the first: {shown!r}"
    second.get_by_role("button", name="Revoke").click()
    second.get_by_text("Token replica-check of maya revoked").wait_for()

    goto(first, "Alerts")
    goto(first, "Tokens")
    assert "Revoke a token" not in main_text(first), "the first replica sees the revocation made on the second"
    first_context.close()
    second_context.close()
