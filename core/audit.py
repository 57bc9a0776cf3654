"""Append-only, hash-chained audit trail written in the caller's transaction."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import update
from sqlmodel import Session, select

from core.clock import now
from core.entities import AuditEvent, AuditHead


@dataclass(frozen=True)
class AuditRead:
    seq: int
    at: datetime
    actor: str
    action: str
    entity_type: str
    entity_id: str
    project_id: int | None
    details: dict


def _digest(*, seq: int, at: datetime, actor: str, action: str, entity_type: str, entity_id: str,
            project_id: int | None, details: dict, prev_hash: str) -> str:
    payload = json.dumps(
        [seq, at.isoformat(timespec="microseconds"), actor, action, entity_type, entity_id, project_id,
         details, prev_hash],
        sort_keys=True, separators=(",", ":"), default=str,
    )
    return hashlib.sha256(payload.encode()).hexdigest()


def record(session: Session, *, actor: str, action: str, entity_type: str, entity_id: object,
           details: dict | None = None, project_id: int | None = None) -> None:
    """Append one event. Updating the head row first takes the write lock, so the chain never forks."""
    if session.get(AuditHead, 1) is None:
        session.add(AuditHead(id=1, seq=0, last_hash=""))
        session.flush()
    session.execute(update(AuditHead).where(AuditHead.id == 1).values(seq=AuditHead.seq + 1))
    head = session.exec(select(AuditHead).where(AuditHead.id == 1).execution_options(populate_existing=True)).one()
    details = json.loads(json.dumps(details or {}, default=str))
    at = now()
    digest = _digest(seq=head.seq, at=at, actor=actor, action=action, entity_type=entity_type,
                     entity_id=str(entity_id), project_id=project_id, details=details, prev_hash=head.last_hash)
    session.add(AuditEvent(seq=head.seq, at=at, actor=actor, action=action, entity_type=entity_type,
                           entity_id=str(entity_id), project_id=project_id, details=details,
                           prev_hash=head.last_hash, hash=digest))
    head.last_hash = digest
    session.add(head)
    session.flush()


@dataclass(frozen=True)
class ChainReport:
    ok: bool
    events: int
    problems: list[str]


def verify(*, session: Session) -> ChainReport:
    """Recompute every hash and link; name each edited, deleted or reordered event."""
    problems: list[str] = []
    prev_hash = ""
    expected_seq = 1
    events = session.exec(select(AuditEvent).order_by(AuditEvent.seq)).all()
    for ev in events:
        if ev.seq != expected_seq:
            problems.append(f"events {expected_seq}..{ev.seq - 1} are missing (deleted) before event {ev.seq}")
        if ev.prev_hash != prev_hash:
            problems.append(f"event {ev.seq} ({ev.action}) does not link to its predecessor")
        digest = _digest(seq=ev.seq, at=ev.at, actor=ev.actor, action=ev.action, entity_type=ev.entity_type,
                         entity_id=ev.entity_id, project_id=ev.project_id, details=ev.details,
                         prev_hash=ev.prev_hash)
        if digest != ev.hash:
            problems.append(f"event {ev.seq} ({ev.action} by {ev.actor}) was edited: its content does not match its hash")
        prev_hash = ev.hash
        expected_seq = ev.seq + 1
    head = session.get(AuditHead, 1)
    if head is not None and head.seq != expected_seq - 1:
        problems.append(f"events {expected_seq}..{head.seq} are missing (deleted) at the end of the chain")
    if head is not None and events and head.last_hash != prev_hash:
        problems.append("the chain head does not match the last event")
    return ChainReport(ok=not problems, events=len(events), problems=problems)


def events(*, session: Session, project_id: int | None = None, entity_type: str | None = None,
           entity_id: str | None = None, limit: int = 200) -> list[AuditRead]:
    """Newest first, optionally for one project or one entity."""
    q = select(AuditEvent).order_by(AuditEvent.seq.desc()).limit(limit)
    if project_id is not None:
        q = q.where(AuditEvent.project_id == project_id)
    if entity_type is not None:
        q = q.where(AuditEvent.entity_type == entity_type)
    if entity_id is not None:
        q = q.where(AuditEvent.entity_id == str(entity_id))
    return [AuditRead(seq=e.seq, at=e.at, actor=e.actor, action=e.action, entity_type=e.entity_type,
                      entity_id=e.entity_id, project_id=e.project_id, details=e.details)
            for e in session.exec(q).all()]
