"""The scoring API's prediction spool: a scored batch is written to a local file before the answer goes out, and
a flusher commits the spooled batches to the lake together, about once a second.

Committing a Delta version per request would cost more than scoring it (a table snapshot to load, a Parquet file
and a log entry per request), and would leave a table of thousands of tiny files. Spooled, a request costs one
Arrow IPC file written to disk; a flush turns every request of the last second into one commit.

Exactly once: each process spools into a directory of its own, `WATCHTOWER_HOME/spool/<id>/<model id>/<seq>.arrow`,
and holds an exclusive lock on the directory's `lock` file while it lives. A flush commits a model's files as one
Delta commit that records an application transaction (app id: the directory's id, version: the highest sequence
committed), then deletes the files. Files at or below the version the table records are deleted without
committing them again, so a flusher stopped between its commit and the deletion duplicates nothing. A directory
whose lock is free belongs to a process that died: the next process to start flushes it and removes it.

Durable before answered: a request's file is fsynced before its answer goes out (one fsync, under its final name:
no rename whose directory entry would still need syncing). A flush takes only the files numbered below the oldest
one still being written, so it never reads half a file and never records a version past a file yet to come; a
file cut short by a crash belongs to a request that was never answered, and is dropped. Requests go on writing
while a flush commits.

Predictions reach the evaluation store within `WATCHTOWER_API_FLUSH_SECONDS` (default 1) of their answer, and
at once when the API stops.
"""

from __future__ import annotations

import atexit
import fcntl
import logging
import os
import shutil
import threading
import uuid
from pathlib import Path

import pyarrow as pa
import pyarrow.ipc as ipc

from core.config import get_settings
from core.db import session_scope
from core.lake import tables as lake

FLUSH_SETTING = "WATCHTOWER_API_FLUSH_SECONDS"
log = logging.getLogger("watchtower.spool")


def flush_seconds() -> float:
    raw = os.environ.get(FLUSH_SETTING, "1").strip() or "1"
    try:
        seconds = float(raw)
    except ValueError:
        seconds = -1.0
    if not 0 < seconds <= 3600:
        raise ValueError(f"{FLUSH_SETTING}={raw!r} must be a number of seconds between 0 and 3600")
    return seconds


def root() -> Path:
    return get_settings().home / "spool"


def _read(path: Path) -> pa.Table | None:
    """A spooled file's rows; None for a file cut short (its writer died or failed before it was durable, so its
    request was never answered with these predictions)."""
    try:
        return ipc.open_file(path).read_all()
    except (pa.ArrowInvalid, OSError):
        log.warning("spooled file %s is incomplete (its request was not answered); it is dropped", path)
        return None


def _commit_directory(directory: Path, below: int | None = None) -> int:
    """Commit every spooled file under DIRECTORY (one commit per model), those numbered below BELOW when given
    (files at or above it may still be being written), and delete them; returns the rows committed."""
    app_id = f"spool-{directory.name}"
    committed = 0
    for model_dir in sorted(p for p in directory.iterdir() if p.is_dir()):
        files = [f for f in sorted(model_dir.glob("*.arrow")) if below is None or int(f.stem) < below]
        if not files:
            continue
        model_id = int(model_dir.name)
        table = lake.table(model_id, "predictions")
        done = table.transaction_version(app_id) if table is not None else None
        fresh = [f for f in files if done is None or int(f.stem) > done]
        parts = [part for part in map(_read, fresh) if part is not None]
        if parts:
            rows = pa.concat_tables(parts, promote_options="default")
            with session_scope() as s:
                lake.stage_predictions(s, model_id=model_id, rows=rows,
                                       app_transaction=(app_id, max(int(f.stem) for f in fresh)))
            committed += rows.num_rows
        for f in files:
            f.unlink()
    return committed


class Spool:
    """One process's spool directory, locked while the process lives."""

    def __init__(self) -> None:
        name = uuid.uuid4().hex
        making = root() / f"{name}.new"  # locked before it takes its name: recovery never sees it unlocked
        making.mkdir(parents=True)
        self._lock_file = (making / "lock").open("w")
        fcntl.flock(self._lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        self.directory = making.rename(root() / name)
        self._seq = 0
        self._writing: set[int] = set()  # numbers of the files being written now
        self._guard = threading.Lock()  # sequence numbers and the files being written
        self._flushing = threading.Lock()  # one flush at a time; requests go on writing meanwhile
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def append(self, *, model_id: int, rows: pa.Table) -> None:
        """Write one request's predictions to disk and fsync them (before the request is answered): one fsync,
        no rename, as a flush leaves alone every file numbered from the oldest one still being written."""
        with self._guard:
            self._seq += 1
            seq = self._seq
            self._writing.add(seq)
        path = self.directory / str(model_id) / f"{seq:012d}.arrow"
        try:
            path.parent.mkdir(exist_ok=True)
            with path.open("wb") as out:
                with ipc.new_file(out, rows.schema) as writer:
                    writer.write_table(rows)
                out.flush()
                os.fsync(out.fileno())
        except BaseException:
            path.unlink(missing_ok=True)  # the request fails: its predictions are not logged
            raise
        finally:
            with self._guard:
                self._writing.discard(seq)

    def flush(self) -> int:
        """Commit what is spooled now (every file written in full, up to the oldest one still being written: the
        commit records the highest number it holds, so a file numbered below it must not come later); returns
        the rows committed."""
        with self._flushing:
            with self._guard:
                below = min(self._writing, default=self._seq + 1)
            return _commit_directory(self.directory, below=below)

    def start(self, *, every: float) -> None:
        """Flush every EVERY seconds in a background thread, after taking over the spools of dead processes."""
        recover_orphans()

        def run() -> None:
            while not self._stop.wait(every):
                try:
                    self.flush()
                except Exception:  # noqa: BLE001 - kept on disk and retried at the next flush
                    log.exception("could not commit spooled predictions; they stay spooled and are retried")

        self._thread = threading.Thread(target=run, name="watchtower-spool", daemon=True)
        self._thread.start()

    def close(self) -> None:
        """Stop flushing, commit what is left and remove the directory (kept if the last commit failed)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(30)
        try:
            self.flush()
        except Exception:  # noqa: BLE001 - left on disk: the next process to start commits it
            log.exception("could not commit spooled predictions at shutdown; the next start commits them")
            self._lock_file.close()
            return
        self._lock_file.close()
        shutil.rmtree(self.directory, ignore_errors=True)


def recover_orphans() -> int:
    """Commit and remove the spool directories of processes that died (their lock is free); returns the rows."""
    committed = 0
    if not root().exists():
        return 0
    for directory in sorted(p for p in root().iterdir() if p.is_dir() and not p.name.endswith(".new")):
        lock_path = directory / "lock"
        try:
            handle = lock_path.open("a")
        except OSError:
            continue
        with handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                continue  # a live process's spool
            committed += _commit_directory(directory)
            shutil.rmtree(directory, ignore_errors=True)
    if committed:
        log.info("committed %d spooled predictions left by a stopped process", committed)
    return committed


_process_spool: Spool | None = None
_process_guard = threading.Lock()


def for_process() -> Spool:
    """This process's spool, created and flushing in the background from its first use."""
    global _process_spool
    with _process_guard:
        if _process_spool is None:
            _process_spool = Spool()
            _process_spool.start(every=flush_seconds())
            atexit.register(close_process)
        return _process_spool


def flush_process() -> int:
    """Commit this process's spooled predictions now (0 when it has spooled none)."""
    with _process_guard:
        return _process_spool.flush() if _process_spool is not None else 0


def close_process() -> None:
    """Commit what this process spooled and stop its flusher (the API's shutdown, and at exit)."""
    global _process_spool
    with _process_guard:
        if _process_spool is not None:
            _process_spool.close()
            _process_spool = None
