"""MLflow tracking servers an administrator trusts: the only ones Watchtower imports models from.

Loading a model logged to MLflow runs code from it (a pickle, or the types a skops file names), so a tracking
URI must be on this list before anything is fetched from it. Adding, removing and every refusal are audited.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlsplit, urlunsplit

from sqlmodel import Session, select

from core import audit
from core.access import Actor, require
from core.entities import TrustedMlflowSource
from core.errors import Forbidden, InvalidInput

_SCHEMES = ("http", "https", "databricks", "sqlite", "postgresql", "mysql", "file")


@dataclass(frozen=True)
class SourceInfo:
    tracking_uri: str
    trusted_by: str
    trusted_at: datetime
    note: str


def normalise(uri: str) -> str:
    """A tracking URI as it is compared: scheme and host in lower case, no trailing slash, no credentials."""
    text = (uri or "").strip()
    if not text:
        raise InvalidInput("name the MLflow tracking URI, e.g. http://mlflow.internal:5000")
    parts = urlsplit(text)
    scheme = parts.scheme.lower()
    if scheme.split("+")[0] not in _SCHEMES:
        raise InvalidInput(f"tracking URI {text!r} is not an MLflow tracking URI "
                           f"(it starts with one of {', '.join(s + ':' for s in _SCHEMES)})")
    if parts.username or parts.password:
        raise InvalidInput("a tracking URI must not carry credentials; MLflow reads them from "
                           "MLFLOW_TRACKING_USERNAME / MLFLOW_TRACKING_PASSWORD or MLFLOW_TRACKING_TOKEN")
    netloc = parts.netloc.lower()
    path = parts.path.rstrip("/") if scheme in ("http", "https") else parts.path
    return urlunsplit((scheme, netloc, path, parts.query, ""))


def _info(row: TrustedMlflowSource) -> SourceInfo:
    return SourceInfo(tracking_uri=row.tracking_uri, trusted_by=row.trusted_by, trusted_at=row.trusted_at,
                      note=row.note)


def list_sources(*, session: Session, actor: Actor) -> list[SourceInfo]:
    """The trusted MLflow tracking servers, by URI (whoever sees the registry may see them)."""
    require(actor, "registry.view")
    rows = session.exec(select(TrustedMlflowSource).order_by(TrustedMlflowSource.tracking_uri)).all()
    return [_info(r) for r in rows]


def trust_source(*, session: Session, actor: Actor, tracking_uri: str, note: str = "") -> SourceInfo:
    """Trust an MLflow tracking server to import models from; audited (administrators only)."""
    require(actor, "settings.manage")
    uri = normalise(tracking_uri)
    found = session.exec(select(TrustedMlflowSource).where(TrustedMlflowSource.tracking_uri == uri)).first()
    if found is not None:
        return _info(found)
    row = TrustedMlflowSource(tracking_uri=uri, trusted_by=actor.username, note=note.strip())
    session.add(row)
    session.flush()
    audit.record(session, actor=actor.username, action="mlflow.trust", entity_type="settings",
                 entity_id="mlflow_sources", details={"tracking_uri": uri, "note": row.note})
    return _info(row)


def distrust_source(*, session: Session, actor: Actor, tracking_uri: str) -> bool:
    """Stop trusting an MLflow tracking server; versions imported from it stay. Audited; False if it was not trusted."""
    require(actor, "settings.manage")
    uri = normalise(tracking_uri)
    found = session.exec(select(TrustedMlflowSource).where(TrustedMlflowSource.tracking_uri == uri)).first()
    if found is None:
        return False
    session.delete(found)
    session.flush()
    audit.record(session, actor=actor.username, action="mlflow.distrust", entity_type="settings",
                 entity_id="mlflow_sources", details={"tracking_uri": uri})
    return True


def is_trusted(session: Session, tracking_uri: str) -> bool:
    uri = normalise(tracking_uri)
    return session.exec(select(TrustedMlflowSource.id).where(TrustedMlflowSource.tracking_uri == uri)).first() \
        is not None


def require_trusted(*, actor: Actor, tracking_uri: str, model_uri: str) -> str:
    """The normalised URI when an administrator trusts it; else refuse, audited in a unit of work of its own."""
    from core.db import session_scope

    uri = normalise(tracking_uri)
    with session_scope() as s:
        if is_trusted(s, uri):
            return uri
        audit.record(s, actor=actor.username, action="mlflow.refused", entity_type="mlflow_source", entity_id=uri,
                     details={"model_uri": model_uri, "reason": "not a trusted MLflow source"})
    raise Forbidden(f"{uri} is not a trusted MLflow source: loading a model from MLflow runs its code, so an "
                    f"administrator must trust the tracking server first (watchtower admin trust-mlflow {uri})")
