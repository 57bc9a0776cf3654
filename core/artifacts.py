"""Model artifacts and reference samples (parquet) under WATCHTOWER_HOME, checked by sha256 before every load.

Models Watchtower trains itself are stored with joblib: they are written only by Watchtower, their sha256 is
recorded when they are written and checked before every load. Uploaded models are read with skops (types listed
and vetted before anything is built) and kept as the uploaded .skops file; a pickle/joblib upload is opened only
when an administrator allowed that exact file (sha256).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import zipfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import joblib
import pandas as pd
import skops.io

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


class ArtifactRefused(InvalidInput):
    """An uploaded artifact is refused for safety (a pickle not allowed, an untrusted type); nothing was loaded."""


SKOPS_HOWTO = 'save the model with skops instead: import skops.io; skops.io.dump(model, "model.skops")'


def is_skops(path: Path | str) -> bool:
    """skops files are zip archives with a schema; pickle and joblib files never are."""
    return zipfile.is_zipfile(path)


def import_artifact(src: Path | str, *, expected_sha256: str | None = None,
                    validate: Callable[[Any], None] | None = None, trusted_types: Iterable[str] = (),
                    allowed_pickle_sha256s: Iterable[str] = (), model: str = "") -> tuple[str, str]:
    """Verify an uploaded estimator and copy it into the artifact store; no code from the upload ever runs.

    A skops file has the types it would build listed first; any type that neither skops nor an administrator
    trusts is refused by name. A pickle/joblib file is refused unless an administrator allowed exactly this file
    (its sha256) for the model. Then: estimator check, `validate`. Returns (path, sha256); writes nothing when
    any check fails.
    """
    src = Path(src)
    if not src.is_file():
        raise InvalidInput(f"artifact file {src} does not exist")
    digest = sha256_file(src)
    expected = (expected_sha256 or _expected_sidecar(src) or "").lower()
    if expected and expected != digest:
        raise IntegrityFailure(f"artifact {src.name} was tampered with: sha256 {digest[:12]}… does not match the "
                               f"expected {expected[:12]}…")
    if is_skops(src):
        obj = _load_skops_upload(src, trusted=set(trusted_types))
        suffix = ".skops"
    else:
        if digest not in {s.lower() for s in allowed_pickle_sha256s}:
            raise ArtifactRefused(
                f"artifact {src.name} is not a skops file; pickle and joblib files run code when they are loaded, so "
                f"Watchtower does not open them: {SKOPS_HOWTO} and import model.skops (or an administrator may allow "
                f"this exact file for model {model or '?'}: sha256 {digest})")
        try:
            obj = joblib.load(src)  # an administrator allowed exactly this file (its sha256 matched)
        except Exception as exc:  # noqa: BLE001 - any unpickling failure means a corrupt file
            raise InvalidInput(f"artifact {src.name} cannot be loaded as a joblib file ({type(exc).__name__})") \
                from exc
        suffix = ".joblib"
    check_estimator(obj, source=f"artifact {src.name}")
    if validate is not None:
        validate(obj)
    dest = get_settings().artifacts_dir / f"{digest}{suffix}"
    dest.parent.mkdir(parents=True, exist_ok=True)
    if not dest.exists():
        shutil.copyfile(src, dest)
    return _relative(dest), digest


def _load_skops_upload(src: Path, *, trusted: set[str]) -> Any:
    try:
        untrusted = skops.io.get_untrusted_types(file=src)
    except Exception as exc:  # noqa: BLE001 - a zip without a readable skops schema
        raise InvalidInput(f"artifact {src.name} is not a readable skops file ({type(exc).__name__})") from exc
    refused = sorted(set(untrusted) - trusted)
    if refused:
        raise ArtifactRefused(f"artifact {src.name} contains types that are not trusted: {', '.join(refused)}; "
                              f"an administrator can trust them after reviewing them "
                              f"(watchtower model trust-type TYPE --as ADMIN)")
    try:
        return skops.io.load(src, trusted=list(untrusted))
    except Exception as exc:  # noqa: BLE001 - a malformed skops file
        raise InvalidInput(f"artifact {src.name} cannot be loaded as a skops file ({type(exc).__name__})") from exc


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


def save_skops(estimator: Any, *, check: Callable[[Any], None]) -> tuple[str, str, bool]:
    """Dump an estimator with skops, CHECK the estimator loaded back from those bytes (it raises to refuse), and
    only then write them into the artifact store; return (path, sha256, whether the file is new).

    For estimators Watchtower loaded from a source an administrator trusts (an MLflow tracking server): the
    file's types are trusted for this one artifact, and scoring it later never unpickles anything.
    """
    data = skops.io.dumps(estimator)
    check(skops.io.loads(data, trusted=skops.io.get_untrusted_types(data=data)))
    digest = hashlib.sha256(data).hexdigest()
    store = get_settings().artifacts_dir
    store.mkdir(parents=True, exist_ok=True)
    dest = store / f"{digest}.skops"
    new = not dest.exists()
    if new:
        tmp = store / f"tmp-{digest}-{os.getpid()}.skops"
        tmp.write_bytes(data)
        tmp.replace(dest)
    return _relative(dest), digest, new


def load_estimator(*, path: str, sha256: str, actor: str = "system", what: str = "") -> Any:
    """Load an artifact after verifying its sha256; a mismatch refuses to load and is audited."""
    full = resolve(path)
    if not full.is_file():
        raise IntegrityFailure(f"artifact for {what or path} is missing from the artifact store")
    digest = sha256_file(full)
    if digest != sha256:
        with session_scope() as s:  # its own unit of work: the failed verification is audited even though the caller's rolls back
            audit.record(s, actor=actor, action="artifact.tampered", entity_type="artifact", entity_id=what or path,
                         details={"expected": sha256, "found": digest, "path": path})
        raise IntegrityFailure(f"artifact for {what or path} was tampered with (sha256 mismatch); refusing to load it")
    if full.suffix == ".skops":
        # An imported skops file: its types were vetted when it was imported, and the sha256 says it is that file.
        return skops.io.load(full, trusted=skops.io.get_untrusted_types(file=full))
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
