"""`watchtower serve` keeps the portal on this computer by default, and a demo portal on it unless told."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from click.testing import CliRunner

from core.cli import admin, main
from core.db import session_scope
from tests.e2e.conftest import free_port


class NothingStarts:
    """Fails the test if serve tries to start a process."""

    def __init__(self) -> None:
        self.started: list[list[str]] = []

    def __call__(self, cmd, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN204
        self.started.append(list(cmd))
        raise AssertionError(f"serve started {cmd}")


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.20", "portal.bank.example"])
def test_a_demo_portal_refuses_to_listen_beyond_this_computer(sqlite_home, monkeypatch, host):
    monkeypatch.setenv("WATCHTOWER_DEMO", "1")
    guard = NothingStarts()
    monkeypatch.setattr(admin.subprocess, "Popen", guard)
    result = CliRunner().invoke(main, ["serve", "--host", host, "--port", "8599"])
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [
        f"error: demo mode lets anyone sign in as anyone, so it serves only this computer: {host} is not a "
        "loopback address (use --allow-remote-demo to serve it anyway)"]
    assert guard.started == []
    from core.identity import users

    with session_scope() as s:
        assert users.list_users(session=s) == [], "the demo was not even seeded"


def test_the_explicit_flag_lets_a_demo_portal_listen_on_another_address(sqlite_home, monkeypatch):
    monkeypatch.setenv("WATCHTOWER_DEMO", "1")
    guard = NothingStarts()
    monkeypatch.setattr(admin.subprocess, "Popen", guard)
    monkeypatch.setattr("core.demo.seed_demo", lambda **_: False)
    result = CliRunner().invoke(main, ["serve", "--host", "0.0.0.0", "--allow-remote-demo", "--no-worker"])
    assert "not a loopback address" not in result.output
    [cmd] = guard.started
    assert cmd[cmd.index("--server.address") + 1] == "0.0.0.0"


def test_loopback_addresses_and_names():
    assert all(admin._is_loopback(h) for h in ("127.0.0.1", "127.0.0.2", "::1", "[::1]", "localhost"))
    assert not any(admin._is_loopback(h) for h in ("0.0.0.0", "::", "10.0.0.7", "no-such-host.invalid"))


def _non_loopback_address() -> str | None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        try:
            sock.connect(("10.255.255.255", 1))  # no packet is sent: this only picks the outgoing interface
            address = sock.getsockname()[0]
        except OSError:
            return None
    return None if address.startswith("127.") or address == "0.0.0.0" else address


def _children(pid: int) -> list[str]:
    names = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        for child in (task / "children").read_text().split():
            names.append(Path(f"/proc/{child}/cmdline").read_bytes().replace(b"\0", b" ").decode())
    return names


def test_serve_listens_on_127_0_0_1_by_default_and_starts_the_worker(sqlite_home):
    port = free_port()
    env = {**os.environ, "WATCHTOWER_HOME": str(sqlite_home),
           "WATCHTOWER_DATABASE_URL": f"sqlite:///{sqlite_home / 'watchtower.db'}"}
    env.pop("WATCHTOWER_DEMO", None)
    proc = subprocess.Popen([sys.executable, "-m", "core.cli", "serve", "--port", str(port)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 90
        while True:
            assert proc.poll() is None, proc.stdout.read()
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2) as resp:
                    assert resp.status == 200
                    break
            except OSError:
                assert time.monotonic() < deadline, "the portal did not answer on 127.0.0.1"
                time.sleep(0.25)
        children = _children(proc.pid)
        assert any("core.cli worker" in c for c in children), children
        [app] = [c for c in children if "streamlit run" in c]
        assert "--server.address 127.0.0.1" in app
        other = _non_loopback_address()
        if other:
            with pytest.raises(OSError):
                socket.create_connection((other, port), timeout=2).close()
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)


class Recorded:
    """A started process that has already finished: serve records what it would run and returns at once."""

    def __init__(self, cmd, *args, env=None, **kwargs) -> None:  # noqa: ANN001, ANN002, ANN003
        self.cmd, self.env = list(cmd), env or {}

    def wait(self, timeout: float | None = None) -> int:
        return 0

    def poll(self) -> int:
        return 0


@pytest.mark.slow
def test_serve_with_an_api_port_also_starts_the_scoring_api_which_answers_its_health_route(sqlite_home,
                                                                                           monkeypatch):
    started: list[Recorded] = []
    popen = subprocess.Popen  # serve's Popen is replaced below; the test starts the API for real
    monkeypatch.setattr(admin.subprocess, "Popen", lambda *a, **kw: started.append(Recorded(*a, **kw)) or started[-1])
    monkeypatch.delenv("WATCHTOWER_DEMO", raising=False)
    monkeypatch.setenv("WATCHTOWER_API_URL", "")  # unset for serve, and restored after the test
    port = free_port()
    result = CliRunner().invoke(main, ["serve", "--no-worker", "--api-port", str(port)])
    assert result.exit_code == 0, result.output
    assert f"scoring API on http://localhost:{port}" in result.output
    [api] = [p for p in started if "api" in p.cmd]
    assert api.cmd[-5:] == ["api", "--port", str(port), "--host", "127.0.0.1"]
    assert api.env["WATCHTOWER_API_URL"] == f"http://127.0.0.1:{port}"  # where the demo points its environments

    # the very command serve runs answers on that port
    proc = popen(api.cmd, env=api.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, "the scoring API exited"
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as resp:
                    assert resp.status == 200
                    break
            except OSError:
                assert time.monotonic() < deadline, "the scoring API did not answer"
                time.sleep(0.25)
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_make_run_starts_the_scoring_api_on_api_port_and_points_the_demo_at_it():
    makefile = (Path(__file__).resolve().parents[2] / "Makefile").read_text()
    run = makefile.split("\nrun:", 1)[1].split("\n\n", 1)[0]
    assert "API_PORT ?= 8000" in makefile
    assert "--api-port $(API_PORT)" in run and "WATCHTOWER_API_URL=http://127.0.0.1:$(API_PORT)" in run
