"""`watchtower --help` answers at once: building the help of every command loads no data or UI library.

Checked by what a fresh interpreter has imported rather than by timing, which would be flaky on a busy machine.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HEAVY = ("sklearn", "evidently", "pandas", "streamlit", "scipy", "numpy", "skops", "altair", "fpdf", "mlflow")

PROBE = """
import json, sys
import click
from core.cli import main
from core.cli.guard import walk

with click.Context(main, info_name="watchtower") as ctx:
    main.get_help(ctx)
for path, cmd in walk(main):
    with click.Context(cmd, info_name=path) as ctx:
        cmd.get_help(ctx)
print(json.dumps(sorted({name.split(".")[0] for name in sys.modules})))
"""


def _imported_after(code: str) -> set[str]:
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120,
                         check=True)
    return set(json.loads(out.stdout.strip().splitlines()[-1]))


def test_help_of_every_command_loads_no_heavy_library():
    loaded = _imported_after(PROBE)
    assert "click" in loaded  # the probe really built the help
    assert not loaded & set(HEAVY), f"--help imported {sorted(loaded & set(HEAVY))}"


def test_the_probe_would_see_a_heavy_import():
    assert "pandas" in _imported_after("import pandas, json, sys; print(json.dumps(sorted(sys.modules)))")


def test_watchtower_help_runs_and_lists_the_commands():
    out = subprocess.run([sys.executable, "-m", "core.cli", "--help"], cwd=ROOT, capture_output=True, text=True,
                         timeout=120, check=True).stdout
    assert "Watchtower: MLOps analytics and governance portal." in out
    for group in ("project", "model", "catalog", "user", "token"):
        assert f"  {group} " in out
