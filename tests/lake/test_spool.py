"""The scoring API's spool: predictions reach the store within the flush interval, a dead process's spool is
committed by the next one, and nothing is ever committed twice."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
import time
from datetime import datetime
from pathlib import Path

import pyarrow as pa
import pytest

from core.lake import predictions, spool
from core.lake import tables as lake

MODEL = 7


def rows(prefix: str, n: int = 3) -> pa.Table:
    return predictions.prediction_rows(
        version_id=1, environment_id=None, ids=[f"{prefix}-{i}" for i in range(n)],
        ts=pa.array([datetime(2026, 6, 1, 12)] * n, pa.timestamp("us")), score=pa.array([0.25] * n),
        predicted=pa.array([0.0] * n), features={"amount": pa.array([float(i) for i in range(n)])},
        logged_by="token:1:bench", batch=lake.new_batch_id())


def committed_ids() -> list[str]:
    return sorted(p.prediction_id for p in predictions.logged_predictions(model_id=MODEL))


def test_spooled_predictions_reach_the_store_within_the_flush_interval(sqlite_home, monkeypatch):
    monkeypatch.setenv(spool.FLUSH_SETTING, "0.2")
    spool.for_process().append(model_id=MODEL, rows=rows("a"))
    spool.for_process().append(model_id=MODEL, rows=rows("b"))
    deadline = time.monotonic() + 10
    while committed_ids() != ["a-0", "a-1", "a-2", "b-0", "b-1", "b-2"]:
        assert time.monotonic() < deadline, f"still not committed: {committed_ids()}"
        time.sleep(0.1)
    assert lake.table(MODEL, "predictions").version() <= 2, "the requests of one interval share a commit"
    spool.close_process()
    assert list((sqlite_home / "spool").iterdir()) == [], "a process that stops removes its spool"


ORPHAN = """
import os, sys
sys.path.insert(0, {root!r})
from tests.lake.test_spool import rows
from core.lake import spool
s = spool.Spool()
s.append(model_id={model}, rows=rows("dead"))
os._exit(9)  # killed after answering, before any flush
"""


def test_a_dead_processs_spool_is_committed_once_by_the_next_process(sqlite_home):
    root = str(Path(__file__).resolve().parents[2])
    died = subprocess.run([sys.executable, "-c", ORPHAN.format(root=root, model=MODEL)], env=_env(sqlite_home))
    assert died.returncode == 9 and committed_ids() == []
    assert spool.recover_orphans() == 3
    assert committed_ids() == ["dead-0", "dead-1", "dead-2"]
    assert spool.recover_orphans() == 0 and list((sqlite_home / "spool").iterdir()) == []


def test_a_live_processs_spool_is_left_to_it(sqlite_home):
    mine = spool.Spool()
    mine.append(model_id=MODEL, rows=rows("live"))
    assert spool.recover_orphans() == 0 and committed_ids() == []
    mine.close()
    assert committed_ids() == ["live-0", "live-1", "live-2"]


def test_files_committed_but_not_deleted_are_not_committed_again(sqlite_home, tmp_path):
    s = spool.Spool()
    s.append(model_id=MODEL, rows=rows("x"))
    s.append(model_id=MODEL, rows=rows("y"))
    kept = tmp_path / "kept"
    shutil.copytree(s.directory / str(MODEL), kept)
    assert s.flush() == 6
    shutil.copytree(kept, s.directory / str(MODEL), dirs_exist_ok=True)  # as if stopped before deleting them
    s.append(model_id=MODEL, rows=rows("z"))
    assert s.flush() == 3, "only the file spooled after the commit is new"
    assert committed_ids() == sorted(f"{p}-{i}" for p in "xyz" for i in range(3))
    s.close()


def test_a_request_still_writing_while_a_later_one_is_flushed_is_committed_later_not_lost(sqlite_home,
                                                                                        monkeypatch):
    s = spool.Spool()
    release, writing = threading.Event(), threading.Event()
    real_fsync = os.fsync

    def slow_first(fd: int) -> None:
        if not writing.is_set():
            writing.set()
            assert release.wait(10)
        real_fsync(fd)

    monkeypatch.setattr(spool.os, "fsync", slow_first)
    first = threading.Thread(target=s.append, kwargs={"model_id": MODEL, "rows": rows("first")})
    first.start()
    assert writing.wait(10)
    s.append(model_id=MODEL, rows=rows("second"))  # numbered after the first, written before it
    assert s.flush() == 0, "nothing numbered from the file still being written is committed"
    release.set()
    first.join(10)
    assert s.flush() == 6
    assert committed_ids() == sorted(f"{p}-{i}" for p in ("first", "second") for i in range(3))
    s.close()


def test_a_spooled_file_cut_short_by_a_crash_is_dropped_and_the_rest_committed(sqlite_home):
    s = spool.Spool()
    s.append(model_id=MODEL, rows=rows("whole"))
    s.append(model_id=MODEL, rows=rows("torn"))
    torn = sorted((s.directory / str(MODEL)).glob("*.arrow"))[-1]
    torn.write_bytes(torn.read_bytes()[:200])  # the process died before this request was answered
    assert s.flush() == 3 and committed_ids() == ["whole-0", "whole-1", "whole-2"]
    assert list((s.directory / str(MODEL)).glob("*.arrow")) == []
    s.close()


@pytest.mark.parametrize("raw", ["0", "-1", "soon", "7200"])
def test_a_bad_flush_interval_is_refused_naming_the_setting(raw, monkeypatch):
    monkeypatch.setenv(spool.FLUSH_SETTING, raw)
    with pytest.raises(ValueError, match="WATCHTOWER_API_FLUSH_SECONDS"):
        spool.flush_seconds()


def _env(home: Path) -> dict[str, str]:
    import os

    return {**os.environ, "WATCHTOWER_HOME": str(home), "WATCHTOWER_DATABASE_URL": f"sqlite:///{home / 'watchtower.db'}"}
