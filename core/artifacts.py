"""Model artifacts (joblib) and reference samples (parquet) under WATCHTOWER_HOME, checked by sha256."""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import joblib
import pandas as pd

from core import audit
from core.config import get_settings
from core.db import session_scope
from core.errors import IntegrityFailure, InvalidInput


def sha256_file(path: Path | str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _expected_sidecar(path: Path) -> str | None:
    """A `FILE.sha256` beside an artifact (sha256sum format) states what the file must hash to."""
    sidecar = path.with_name(path.name + ".sha256")
    if not sidecar.is_file():
        return None
    text = sidecar.read_text().strip()
    return text.split()[0].lower() if text else None


def resolve(stored: str) -> Path:
    """Stored paths are relative to WATCHTOWER_HOME so a home can be moved or copied whole."""
    path = Path(stored)
    return path if path.is_absolute() else get_settings().home / path


def _relative(path: Path) -> str:
    return str(path.relative_to(get_settings().home))


def check_estimator(obj: Any, *, source: str) -> None:
    if not (hasattr(obj, "predict") and hasattr(obj, "fit") and hasattr(obj, "get_params")):
        raise InvalidInput(f"{source} is not a scikit-learn estimator (it has no fit/predict/get_params)")


def import_artifact(src: Path | str, *, expected_sha256: str | None = None,
                    validate: Callable[[Any], None] | None = None) -> tuple[str, str]:
    """Verify (sha256, estimator, then `validate`) and copy a joblib estimator into the artifact store.

    Returns (path, sha256); writes nothing when any check fails.
    """
    src = Path(src)
    if not src.is_file():
        raise InvalidInput(f"artifact file {src} does not exist")
    digest = sha256_file(src)
    expected = (expected_sha256 or _expected_sidecar(src) or "").lower()
    if expected and expected != digest:
        raise IntegrityFailure(f"artifact {src.name} was tampered with: sha256 {digest[:12]}… does not match the "
                               f"expected {expected[:12]}…")
    try:
        obj = joblib.load(src)
    except Exception as exc:  # noqa: BLE001 - any unpickling failure means a corrupt file
        raise InvalidInput(f"artifact {src.name} cannot be loaded as a joblib file ({type(exc).__name__})") from exc
    check_estimator(obj, source=f"artifact {src.name}")
    if validate is not None:
        validate(obj)
    dest = get_settings().artifacts_dir / f"{digest}.joblib"
    dest.parent.mkdir(parents=True, exist_ok=True)
    if not dest.exists():
        shutil.copyfile(src, dest)
    return _relative(dest), digest


def save_estimator(estimator: Any) -> tuple[str, str]:
    """Dump a fitted estimator into the artifact store; return (path, sha256)."""
    store = get_settings().artifacts_dir
    store.mkdir(parents=True, exist_ok=True)
    tmp = store / f"tmp-{id(estimator)}-{hashlib.sha1(repr(estimator).encode()).hexdigest()[:8]}.joblib"
    joblib.dump(estimator, tmp)
    digest = sha256_file(tmp)
    dest = store / f"{digest}.joblib"
    tmp.replace(dest)
    return _relative(dest), digest


def load_estimator(*, path: str, sha256: str, actor: str = "system", what: str = "") -> Any:
    """Load an artifact after verifying its sha256; a mismatch refuses to load and is audited."""
    full = resolve(path)
    if not full.is_file():
        raise IntegrityFailure(f"artifact for {what or path} is missing from the artifact store")
    digest = sha256_file(full)
    if digest != sha256:
        with session_scope() as s:
            audit.record(s, actor=actor, action="artifact.tampered", entity_type="artifact", entity_id=what or path,
                         details={"expected": sha256, "found": digest, "path": path})
        raise IntegrityFailure(f"artifact for {what or path} was tampered with (sha256 mismatch); refusing to load it")
    return joblib.load(full)


def save_reference(frame: pd.DataFrame) -> tuple[str, str]:
    """Store a reference sample as parquet, named by content; return (path, sha256)."""
    store = get_settings().home / "references"
    store.mkdir(parents=True, exist_ok=True)
    tmp = store / f"tmp-{id(frame)}.parquet"
    frame.reset_index(drop=True).to_parquet(tmp, index=False)
    digest = sha256_file(tmp)
    dest = store / f"{digest}.parquet"
    tmp.replace(dest)
    return _relative(dest), digest


def load_reference(*, path: str, sha256: str, what: str = "") -> pd.DataFrame:
    full = resolve(path)
    if not full.is_file() or sha256_file(full) != sha256:
        raise IntegrityFailure(f"reference sample for {what or path} is missing or altered")
    return pd.read_parquet(full)


def fingerprint_frame(frame: pd.DataFrame) -> str:
    """A content fingerprint of a data frame (row order and column names included)."""
    hashed = pd.util.hash_pandas_object(frame, index=False).to_numpy()
    h = hashlib.sha256(",".join(map(str, frame.columns)).encode())
    h.update(hashed.tobytes())
    return h.hexdigest()
