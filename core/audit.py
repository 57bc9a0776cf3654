"""Append-only audit trail, chained with a keyed hash (HMAC-SHA256) and anchored by signed checkpoints.

Every event's hash is an HMAC over its content and its predecessor's hash, made with a secret key that is never
stored in the database (`WATCHTOWER_AUDIT_KEY`, else a key file `WATCHTOWER_HOME/audit.key` created on first use),
so someone who can write to the database but has not the key cannot recompute a valid chain. A checkpoint
(sequence number, head hash, event count, time, HMAC signature) written outside the database — appended to a JSONL
file or POSTed to a write-once store — also reveals a truncated tail or a chain recomputed from scratch.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets as pysecrets
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import func, update
from sqlmodel import Session, select

from core.access import Actor, require
from core.clock import now
from core.config import get_settings, secret
from core.entities import AuditEvent, AuditHead, AuditVerification
from core.errors import IntegrityFailure, InvalidInput, WatchtowerError

KEY_SETTING = "WATCHTOWER_AUDIT_KEY"
CHECKPOINT_SETTING = "WATCHTOWER_AUDIT_CHECKPOINT"
INTERVAL_SETTING = "WATCHTOWER_AUDIT_CHECKPOINT_MINUTES"
DEFAULT_INTERVAL_MINUTES = 60


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


# --- the key -----------------------------------------------------------------------------------------------

def key_file() -> Path:
    return get_settings().home / "audit.key"


def audit_key() -> bytes:
    """The chain's secret: WATCHTOWER_AUDIT_KEY (env or secrets.toml), else WATCHTOWER_HOME/audit.key (0600).

    The key file is created with a random key on first use, which suits a demo or a single machine; teams set
    WATCHTOWER_AUDIT_KEY from their secret store so that the key lives apart from the database.
    """
    value = secret(KEY_SETTING)
    if value:
        return value.encode()
    path = key_file()
    try:
        return path.read_bytes().strip()
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process created it meanwhile
        return path.read_bytes().strip()
    with os.fdopen(fd, "w") as fh:
        fh.write(pysecrets.token_hex(32) + "\n")
    return path.read_bytes().strip()


def _payload(seq: int, at: datetime, actor: str, action: str, entity_type: str, entity_id: str,
             project_id: int | None, details: dict, prev_hash: str) -> bytes:
    return json.dumps(
        [seq, at.isoformat(timespec="microseconds"), actor, action, entity_type, entity_id, project_id,
         details, prev_hash],
        sort_keys=True, separators=(",", ":"), default=str,
    ).encode()


def _digest(key: bytes, *, seq: int, at: datetime, actor: str, action: str, entity_type: str, entity_id: str,
            project_id: int | None, details: dict, prev_hash: str) -> str:
    return hmac.digest(key, _payload(seq, at, actor, action, entity_type, entity_id, project_id, details,
                                     prev_hash), hashlib.sha256).hex()


# --- writing -----------------------------------------------------------------------------------------------

def record(session: Session, *, actor: str, action: str, entity_type: str, entity_id: object,
           details: dict | None = None, project_id: int | None = None) -> None:
    """Append one event. Updating the head row first takes the write lock, so the chain never forks."""
    key = audit_key()
    if session.get(AuditHead, 1) is None:
        session.add(AuditHead(id=1, seq=0, last_hash=""))
        session.flush()
    session.execute(update(AuditHead).where(AuditHead.id == 1).values(seq=AuditHead.seq + 1))
    head = session.exec(select(AuditHead).where(AuditHead.id == 1).execution_options(populate_existing=True)).one()
    details = json.loads(json.dumps(details or {}, default=str))
    at = now()
    digest = _digest(key, seq=head.seq, at=at, actor=actor, action=action, entity_type=entity_type,
                     entity_id=str(entity_id), project_id=project_id, details=details, prev_hash=head.last_hash)
    session.add(AuditEvent(seq=head.seq, at=at, actor=actor, action=action, entity_type=entity_type,
                           entity_id=str(entity_id), project_id=project_id, details=details,
                           prev_hash=head.last_hash, hash=digest))
    head.last_hash = digest
    session.add(head)
    session.flush()


# --- checkpoints -------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Checkpoint:
    """The chain's state at one moment, signed with the audit key."""

    seq: int
    head_hash: str
    events: int
    at: str
    signature: str = ""

    def _signed_part(self) -> bytes:
        return json.dumps(["watchtower-audit-checkpoint", self.seq, self.head_hash, self.events, self.at],
                          separators=(",", ":")).encode()

    def signed(self, key: bytes) -> Checkpoint:
        sig = hmac.digest(key, self._signed_part(), hashlib.sha256).hex()
        return Checkpoint(seq=self.seq, head_hash=self.head_hash, events=self.events, at=self.at, signature=sig)

    def valid(self, key: bytes) -> bool:
        return hmac.compare_digest(self.signed(key).signature, self.signature)

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)


def parse_checkpoints(text: str, *, source: str) -> list[Checkpoint]:
    """Checkpoints from JSONL text (one per line); a malformed line is refused by its number."""
    out = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            raw = json.loads(line)
            cp = Checkpoint(seq=raw["seq"], head_hash=raw["head_hash"], events=raw["events"], at=raw["at"],
                            signature=raw["signature"])
            if not (isinstance(cp.seq, int) and isinstance(cp.events, int) and not isinstance(cp.seq, bool)
                    and all(isinstance(v, str) for v in (cp.head_hash, cp.at, cp.signature))):
                raise TypeError
        except (ValueError, KeyError, TypeError) as exc:
            raise InvalidInput(f"line {number} of {source} is not an audit checkpoint "
                               f"(expected JSON with seq, head_hash, events, at, signature)") from exc
        out.append(cp)
    if not out:
        raise InvalidInput(f"{source} holds no audit checkpoint")
    return out


def read_checkpoints(path: Path | str) -> list[Checkpoint]:
    path = Path(path)
    if not path.is_file():
        raise InvalidInput(f"checkpoint file {path} does not exist")
    return parse_checkpoints(path.read_text(), source=path.name)


def _is_url(destination: str) -> bool:
    return destination.startswith(("http://", "https://"))


def store_checkpoint(cp: Checkpoint, destination: str) -> None:
    """Append the checkpoint to a JSONL file, or POST it (JSON) to a webhook URL of a write-once store."""
    if _is_url(destination):
        import httpx

        try:
            answer = httpx.post(destination, content=cp.to_json(), timeout=15,
                                headers={"Content-Type": "application/json"})
        except httpx.HTTPError as exc:
            raise WatchtowerError(f"the checkpoint could not be sent to {destination} ({type(exc).__name__})") \
                from exc
        if not answer.is_success:
            raise WatchtowerError(f"the checkpoint store at {destination} refused it (HTTP {answer.status_code})")
        return
    path = Path(destination).expanduser()
    if not path.parent.is_dir():
        raise InvalidInput(f"checkpoint file {path}: folder {path.parent} does not exist")
    with path.open("a", encoding="utf-8") as fh:
        fh.write(cp.to_json() + "\n")
        fh.flush()
        os.fsync(fh.fileno())


def write_checkpoint(*, session: Session, actor: Actor, destination: str) -> Checkpoint:
    """Verify the chain, then store a signed checkpoint of its head outside the database (audited).

    A broken chain gets no checkpoint: anchoring it would vouch for the tampering.
    """
    require(actor, "audit.verify")
    if not destination.strip():
        raise InvalidInput("a checkpoint needs a destination: a file path or an http(s) URL")
    report = verify(session=session)
    if not report.ok:
        raise IntegrityFailure(f"the audit chain is broken ({report.problems[0]}); no checkpoint written")
    cp = Checkpoint(seq=report.head_seq, head_hash=report.head_hash, events=report.events,
                    at=now().isoformat(timespec="seconds") + "Z").signed(audit_key())
    store_checkpoint(cp, destination)
    record(session, actor=actor.username, action="audit.checkpoint", entity_type="audit", entity_id=cp.seq,
           details={"seq": cp.seq, "head_hash": cp.head_hash, "events": cp.events, "at": cp.at,
                    "destination": destination if _is_url(destination) else Path(destination).name})
    return cp


def scheduled_checkpoint(*, actor: Actor) -> Checkpoint | None:
    """Write a checkpoint to WATCHTOWER_AUDIT_CHECKPOINT when the interval has passed since the last one.

    Meant for the worker's tick; does nothing when the setting is unset. Errors are raised to the caller's log.
    """
    from core.db import session_scope

    destination = (secret(CHECKPOINT_SETTING) or "").strip()
    if not destination:
        return None
    try:
        minutes = float(secret(INTERVAL_SETTING) or DEFAULT_INTERVAL_MINUTES)
    except ValueError as exc:
        raise InvalidInput(f"{INTERVAL_SETTING} must be a number of minutes") from exc
    with session_scope() as s:  # its own unit of work: the worker's timer calls this with no transaction of its own
        last = s.exec(select(func.max(AuditEvent.at)).where(AuditEvent.action == "audit.checkpoint")).one()
        if last is not None and now() - last < timedelta(minutes=minutes):
            return None
        return write_checkpoint(session=s, actor=actor, destination=destination)


def checkpoint_tick_seconds() -> float:
    """How often the worker asks whether a checkpoint is due: every minute, or sooner for a shorter interval."""
    try:
        minutes = float(secret(INTERVAL_SETTING) or DEFAULT_INTERVAL_MINUTES)
    except ValueError:
        minutes = DEFAULT_INTERVAL_MINUTES
    return max(0.5, min(60.0, minutes * 60))


def checkpoint_job() -> None:
    """The worker's scheduled checkpoint, as the local operator (system); failures are logged, never raised."""
    import logging

    from core.access import SYSTEM

    log = logging.getLogger("watchtower.audit")
    try:
        cp = scheduled_checkpoint(actor=SYSTEM)
    except WatchtowerError as exc:
        log.error("audit checkpoint not written: %s", exc)
        return
    if cp is not None:
        log.info("audit checkpoint written: event %s, head %s", cp.seq, cp.head_hash[:12])


# --- verifying ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class ChainReport:
    ok: bool
    events: int
    problems: list[str]
    first_bad_seq: int | None = None
    head_seq: int = 0
    head_hash: str = ""
    checkpoint: Checkpoint | None = None

    @property
    def summary(self) -> str:
        if self.ok:
            against = f" and matches the checkpoint of {self.checkpoint.at} (event {self.checkpoint.seq})" \
                if self.checkpoint else ""
            return f"audit chain intact: {self.events} events{against}"
        first = f"first wrong event: {self.first_bad_seq}; " if self.first_bad_seq is not None else ""
        return f"audit chain broken: {first}{self.problems[0]}"


_COLUMNS = (AuditEvent.seq, AuditEvent.at, AuditEvent.actor, AuditEvent.action, AuditEvent.entity_type,
            AuditEvent.entity_id, AuditEvent.project_id, AuditEvent.details, AuditEvent.prev_hash, AuditEvent.hash)


def verify(*, session: Session, checkpoints: Iterable[Checkpoint] = ()) -> ChainReport:
    """Recompute every keyed hash and link; name each edited, deleted, reordered or forged event.

    Against checkpoints (each first checked for its signature) it also finds a truncated tail and a chain
    recomputed as a whole. `first_bad_seq` is the earliest event found wrong.
    """
    key = audit_key()
    checkpoints = list(checkpoints)
    problems: list[tuple[int | None, str]] = []
    valid = []
    for cp in checkpoints:
        if cp.valid(key):
            valid.append(cp)
        else:
            problems.append((None, f"the checkpoint of {cp.at} (event {cp.seq}) has an invalid signature: it was "
                                   f"not made with this installation's audit key"))
    wanted = {cp.seq for cp in valid}
    hash_at: dict[int, str] = {}
    prev_hash = ""
    expected_seq = 1
    count = 0
    last_seq = 0
    mac = hmac.digest
    sha = hashlib.sha256
    for seq, at, actor, action, entity_type, entity_id, project_id, details, ev_prev, ev_hash in \
            session.execute(select(*_COLUMNS).order_by(AuditEvent.seq)):
        count += 1
        if seq != expected_seq:
            problems.append((expected_seq, f"events {expected_seq}..{seq - 1} are missing (deleted) before event "
                                           f"{seq}"))
        if ev_prev != prev_hash:
            problems.append((seq, f"event {seq} ({action}) does not link to its predecessor"))
        digest = mac(key, _payload(seq, at, actor, action, entity_type, entity_id, project_id, details, ev_prev),
                     sha).hex()
        if digest != ev_hash:
            problems.append((seq, f"event {seq} ({action} by {actor}) was edited or forged: its content does not "
                                  f"match its keyed hash"))
        if seq in wanted:
            hash_at[seq] = ev_hash
        prev_hash = ev_hash
        last_seq = seq
        expected_seq = seq + 1
    head = session.get(AuditHead, 1)
    if head is not None and head.seq != last_seq:
        problems.append((last_seq + 1, f"events {last_seq + 1}..{head.seq} are missing (deleted) at the end of the "
                                       f"chain"))
    if head is not None and count and head.last_hash != prev_hash:
        problems.append((last_seq, "the chain head does not match the last event"))
    for cp in valid:
        if last_seq < cp.seq:
            problems.append((last_seq + 1, f"events {last_seq + 1}..{cp.seq} are missing: the checkpoint of {cp.at} "
                                           f"covers {cp.seq} events but the trail ends at event {last_seq} "
                                           f"(its tail was truncated)"))
        elif cp.seq in hash_at and hash_at[cp.seq] != cp.head_hash:
            problems.append((cp.seq, f"event {cp.seq} does not match the checkpoint of {cp.at}: the chain up to it "
                                     f"was rewritten"))
        elif cp.seq > 0 and cp.seq not in hash_at:
            problems.append((cp.seq, f"event {cp.seq}, the head of the checkpoint of {cp.at}, is missing"))
    located = [seq for seq, _ in problems if seq is not None]
    newest = max(valid, key=lambda c: c.seq) if valid else None
    return ChainReport(ok=not problems, events=count, problems=[p for _, p in problems],
                       first_bad_seq=min(located) if located else None, head_seq=last_seq, head_hash=prev_hash,
                       checkpoint=newest)


def verify_against_checkpoints(*, session: Session, actor: Actor, checkpoints: list[Checkpoint]) -> ChainReport:
    """Verify the chain against checkpoints kept outside the database; record who verified, when, and the result."""
    require(actor, "audit.verify")
    if not checkpoints:
        raise InvalidInput("verification against a checkpoint needs at least one checkpoint")
    report = verify(session=session, checkpoints=checkpoints)
    newest = max(checkpoints, key=lambda c: c.seq)
    session.add(AuditVerification(actor=actor.username, ok=report.ok, events=report.events,
                                  checkpoint_seq=newest.seq, checkpoint_at=newest.at,
                                  first_bad_seq=report.first_bad_seq, summary=report.summary[:2000]))
    record(session, actor=actor.username, action="audit.verify", entity_type="audit", entity_id=newest.seq,
           details={"ok": report.ok, "events": report.events, "checkpoint_seq": newest.seq,
                    "first_bad_seq": report.first_bad_seq, "problems": report.problems[:5]})
    return report


@dataclass(frozen=True)
class VerificationInfo:
    at: datetime
    actor: str
    ok: bool
    events: int
    checkpoint_seq: int
    checkpoint_at: str
    first_bad_seq: int | None
    summary: str


def last_verification(*, session: Session) -> VerificationInfo | None:
    """The most recent verification of the trail against a checkpoint, if any."""
    row = session.exec(select(AuditVerification).order_by(AuditVerification.id.desc()).limit(1)).first()
    if row is None:
        return None
    return VerificationInfo(at=row.at, actor=row.actor, ok=row.ok, events=row.events,
                            checkpoint_seq=row.checkpoint_seq, checkpoint_at=row.checkpoint_at,
                            first_bad_seq=row.first_bad_seq, summary=row.summary)


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
