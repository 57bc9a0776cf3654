"""Run every bench/bench_*.py in its own process, then print one table of their results.

Each script's output is shown as it runs; the lines it reports through bench/common.py's `report` are
collected. A script that exits non-zero without reporting a failure (it crashed) gets a row of its own.
Exits 1 when any result missed its target or any script crashed. BENCH_QUICK=1 passes through (smaller sizes).

Usage: .venv/bin/python bench/run_all.py [NAME ...]   (e.g. `retrain api` to run only those)
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from common import RESULT_MARKER  # noqa: E402


def run_one(script: Path) -> tuple[list[dict], int, float]:
    """Run one script, echoing its output; returns its results, exit status and duration."""
    print(f"\n== {script.name}", flush=True)
    started = time.monotonic()
    proc = subprocess.Popen([sys.executable, str(script)], cwd=HERE.parent, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, bufsize=1)
    results = []
    for line in proc.stdout:
        if line.startswith(RESULT_MARKER):
            results.append(json.loads(line[len(RESULT_MARKER):]))
        else:
            print("   " + line, end="", flush=True)
    status = proc.wait()
    return results, status, time.monotonic() - started


def main() -> int:
    wanted = sys.argv[1:]
    scripts = sorted(HERE.glob("bench_*.py"))
    if wanted:
        scripts = [s for s in scripts if s.stem.removeprefix("bench_") in wanted]
    rows: list[dict] = []
    for script in scripts:
        results, status, seconds = run_one(script)
        for r in results:
            rows.append({**r, "script": script.name})
        if status != 0 and all(r["ok"] for r in results):
            rows.append({"script": script.name, "name": script.stem, "figure": f"exit status {status}",
                         "target": "runs to the end", "ok": False})
        print(f"   ({seconds:.0f} s, exit status {status})", flush=True)

    headers = ("benchmark", "figure", "target", "result")
    table = [(r["name"], r["figure"], r["target"], "pass" if r["ok"] else "FAIL") for r in rows]
    widths = [max(len(h), *(len(t[i]) for t in table)) if table else len(h) for i, h in enumerate(headers)]
    print()
    print("  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)))
    print("  ".join("-" * w for w in widths))
    for t in table:
        print("  ".join(c.ljust(w) for c, w in zip(t, widths, strict=True)))
    failed = sum(1 for r in rows if not r["ok"])
    print(f"\n{len(rows) - failed} passed, {failed} failed")
    return 1 if failed or not rows else 0


if __name__ == "__main__":
    sys.exit(main())
