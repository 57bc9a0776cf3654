"""The README is true for a newcomer: every command, every setting the code reads and every make target is in it."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from core.cli import main
from core.cli.guard import walk

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()
SETTING = re.compile(r"WATCHTOWER_[A-Z0-9_]+")


def _settings_table() -> list[str]:
    """The rows of the table under '## Settings', up to the first line that is not a table row."""
    section = README.split("\n## Settings\n", 1)[1]
    lines = section.splitlines()
    first = next(i for i, line in enumerate(lines) if line.startswith("|"))
    rows = []
    for line in lines[first:]:
        if not line.startswith("|"):
            break
        rows.append(line)
    return rows


def _settings_read_by_code() -> set[str]:
    """Every string that is exactly a WATCHTOWER_* name in core/ and the test harness (what the code reads)."""
    files = [*(ROOT / "core").rglob("*.py"), ROOT / "tests" / "conftest.py", ROOT / "tests" / "e2e" / "conftest.py"]
    names = set()
    for path in files:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and SETTING.fullmatch(node.value):
                names.add(node.value)
    return names


def test_every_command_appears_with_its_full_path():
    missing = [f"watchtower {path}" for path, _ in walk(main) if f"watchtower {path}" not in README]
    assert not missing, f"README lacks {missing}"


def test_the_settings_table_is_one_table_of_three_columns():
    rows = _settings_table()
    assert rows[0] == "| variable | default | meaning |" and rows[1] == "|---|---|---|"
    broken = [row for row in rows if row.count("|") != 4 or not row.endswith("|")]
    assert not broken, f"rows with other than three cells: {broken}"
    after = README.split("\n## Settings\n", 1)[1].split("\n## ", 1)[0]
    assert after.count("| variable | default | meaning |") == 1, "the settings are split over several tables"


def test_every_setting_the_code_reads_is_in_the_settings_table():
    documented = set(SETTING.findall("\n".join(row.split("|")[1] for row in _settings_table()[2:])))
    read = _settings_read_by_code()
    assert {"WATCHTOWER_HOME", "WATCHTOWER_DATABASE_URL", "WATCHTOWER_TOKEN"} <= read  # the scan works
    assert not read - documented, f"settings missing from the README's table: {sorted(read - documented)}"


def test_every_make_target_is_documented():
    phony = re.search(r"^\.PHONY:(.*)$", (ROOT / "Makefile").read_text(), re.MULTILINE)
    assert phony is not None
    targets = phony.group(1).split()
    assert "run" in targets and "test" in targets
    missing = [t for t in targets if f"`make {t}`" not in README]
    assert not missing, f"make targets the README does not document: {missing}"
