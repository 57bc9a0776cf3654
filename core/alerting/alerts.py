"""Alerts: a failed check fanned out to its audience, each person in their own words; inbox and deliveries.

Every recipient gets an in-app alert. Each of the check's channels gets deliveries: one e-mail per
recipient, one Slack or webhook post per audience wording (business words, metric words). Deliveries
are sent by the worker (`deliver_due`), retried with exponential backoff and recorded with their status.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta

import httpx
from sqlalchemy import update
from sqlmodel import Session, select

from core import audit
from core.access import Actor, require
from core.alerting import channels
from core.clock import now
from core.config import get_settings
from core.db import session_scope
from core.entities import (
    Alert,
    AlertDelivery,
    Channel,
    Check,
    CheckResult,
    Evaluation,
    Model,
    ModelVersion,
    Project,
    User,
)
from core.errors import Forbidden, NotFound
from core.monitoring import slice_findings
from core.monitoring.checks import TICKS, render_wording

MAX_ATTEMPTS = 5
CLAIM_SECONDS = 300  # a claimed delivery is not picked again for this long, even if its sender died
ENGINEERING_ROLES = frozenset({"ml_engineer", "data_scientist"})


def retry_base_seconds() -> float:
    """First retry delay; each later one doubles (30 s, 1 min, 2 min, 4 min by default)."""
    return float(os.environ.get("WATCHTOWER_RETRY_BASE_SECONDS", "30"))


@dataclass(frozen=True)
class AlertRead:
    id: int
    username: str
    kind: str
    severity: str
    title: str
    message: str
    link: str
    project_key: str | None
    created_at: datetime
    acknowledged_at: datetime | None
    check_result_id: int | None
    history: str

    @property
    def unread(self) -> bool:
        return self.acknowledged_at is None


@dataclass(frozen=True)
class DeliveryRead:
    id: int
    alert_id: int
    alert_title: str
    recipient: str
    channel: str
    channel_kind: str
    status: str
    attempts: int
    next_attempt_at: datetime
    last_error: str
    delivered_at: datetime | None


@dataclass(frozen=True)
class DeliveryStats:
    sent: int
    retrying: int
    failed: int


def audience_of(roles: list[str] | tuple[str, ...]) -> str:
    """Business words for business people; metric words for everyone who works with the metrics."""
    return "business" if "business" in roles and not set(roles) & ENGINEERING_ROLES else "engineering"


def _history_until(session: Session, result: CheckResult) -> str:
    rows = session.exec(select(CheckResult.status).where(CheckResult.check_id == result.check_id,
                                                         CheckResult.at <= result.at)
                        .order_by(CheckResult.at.desc(), CheckResult.id.desc()).limit(12)).all()
    return "".join(TICKS.get(s, "⬜") for s in reversed(rows))


def _recipients(session: Session, roles: list[str], usernames: list[str]) -> list[User]:
    people = session.exec(select(User).where(User.active).order_by(User.username)).all()
    return [u for u in people if set(u.roles) & set(roles) or u.username in usernames]


def explain_link(*, audience: str, project_key: str, model: str | None, kind: str,
                 evaluation_id: int | None = None, segment: str | None = None) -> str:
    """The page that explains an alert: the project dashboard for business, the evidence for engineers (the
    evaluation store at the window with its first segment selected, when segments explain it)."""
    if audience == "business" or not model:
        return f"/project?project={project_key}"
    if kind in ("drift_share", "field_drift") and evaluation_id:
        return f"/drift?evaluation={evaluation_id}"
    if segment and evaluation_id:
        return f"/evaluation_store?model={model}&evaluation={evaluation_id}&slice={segment}"
    return f"/evaluation_store?model={model}"


def _segment(session: Session, check: Check, result: CheckResult, model: Model | None) -> tuple[str, dict] | None:
    """(loss, first segment) stored for a failed check's window, when segments explain it."""
    if model is None or result.evaluation_id is None or check.slice_conditions:
        return None
    loss = slice_findings.loss_for_check(kind=check.kind, metric=check.metric, task=model.task)
    top = slice_findings.stored_top(session=session, evaluation_id=result.evaluation_id, loss=loss) if loss else None
    return (loss, top) if top else None


def _segment_words(check: Check, model: Model, loss: str, top: dict, granularity: str) -> dict[str, str]:
    """The first segment in each audience's words."""
    labels = slice_findings.losses(task=model.task, business=model.business_metrics, has_score=True)
    business_loss = loss.replace("_", " ") if check.kind == "business" else labels.get(loss, loss)
    return {"business": slice_findings.business_sentence(top, loss_label=business_loss, granularity=granularity),
            "engineering": slice_findings.engineering_sentence(top, loss_label=labels.get(loss, loss))}


def _wording(check: Check, result: CheckResult, project: Project, model: str | None,
             window_end: datetime | None, segment: dict[str, str] | None = None) -> dict[str, tuple[str, str]]:
    """(title, message) per audience; the first segment behind the failure, when known, closes each message."""
    when = f"the period ending {window_end:%d %b %Y}" if window_end else "the latest period"
    if check.business_wording:
        business = render_wording(check.business_wording, value=result.value, threshold=check.threshold,
                                  window_end=window_end, project=project.key, model=model)
    else:
        business = (f"The quality check “{check.name}” of {project.name} did not pass for {when}. "
                    "The ML team has been alerted and is looking into it.")
    engineering = result.message
    if segment:
        business, engineering = f"{business} {segment['business']}", f"{engineering}. {segment['engineering']}"
    return {"business": (f"{project.name}: {check.name} needs attention", business),
            "engineering": (f"{check.name} failed on {model or project.key} ({result.status})", engineering)}


def _channel_rows(session: Session, names: list[str]) -> list[Channel]:
    if not names:
        return []
    return list(session.exec(select(Channel).where(Channel.name.in_(names), Channel.enabled)
                             .order_by(Channel.name)).all())


def _raise(session: Session, *, project: Project | None, people: list[User], kind: str, severity: str,
           channel_rows: list[Channel], words: Callable[[str], tuple[str, str, str]],
           check_result_id: int | None = None, review_id: int | None = None) -> list[Alert]:
    """Create one alert per person and the deliveries of each channel (see the module docstring)."""
    alerts: list[tuple[Alert, User, str]] = []
    for user in people:
        audience = audience_of(user.roles)
        title, message, link = words(audience)
        alert = Alert(check_result_id=check_result_id, review_id=review_id, project_id=project.id if project else None,
                      user_id=user.id, kind=kind, severity=severity, title=title, message=message, link=link)
        session.add(alert)
        alerts.append((alert, user, audience))
    session.flush()
    at = now()
    for channel in channel_rows:
        wanted = set(channel.config.get("roles") or [])
        targets = [(a, u, aud) for a, u, aud in alerts if not wanted or wanted & set(u.roles)]
        if channel.kind in ("slack", "webhook"):  # one post per wording, not one per person
            first: dict[str, Alert] = {}
            for a, _u, aud in targets:
                first.setdefault(aud, a)
            targets = [(a, None, aud) for aud, a in first.items()]
        for alert, _user, _aud in targets:
            done = channel.kind == "inapp"
            session.add(AlertDelivery(alert_id=alert.id, channel_id=channel.id, status="sent" if done else "pending",
                                      attempts=1 if done else 0, next_attempt_at=at, delivered_at=at if done else None))
    session.flush()
    return [a for a, _u, _aud in alerts]


def fan_out(*, session: Session, check_result_id: int) -> list[AlertRead]:
    """Alert the audience of a failed check result (once: a second call returns the same alerts)."""
    return fan_out_many(session=session, check_result_ids=[check_result_id])


def fan_out_many(*, session: Session, check_result_ids: list[int]) -> list[AlertRead]:
    """Alert the audiences of failed check results, each once; people and channels are read once for all."""
    ids = list(dict.fromkeys(check_result_ids))
    rows = session.exec(select(CheckResult, Check, Project, Evaluation, ModelVersion)
                        .join(Check, CheckResult.check_id == Check.id).join(Project, Check.project_id == Project.id)
                        .outerjoin(Evaluation, CheckResult.evaluation_id == Evaluation.id)
                        .outerjoin(ModelVersion, Evaluation.model_version_id == ModelVersion.id)
                        .where(CheckResult.id.in_(ids))).all() if ids else []
    missing = sorted(set(ids) - {r.id for r, *_ in rows})
    if missing:
        raise NotFound(f"no check result {', '.join(map(str, missing))}")
    existing = list(session.exec(select(Alert).where(Alert.check_result_id.in_(ids)).order_by(Alert.id)).all()) \
        if ids else []
    done = {a.check_result_id for a in existing}
    todo = sorted((row for row in rows if row[0].id not in done and row[0].status not in ("pass", "no_data")),
                  key=lambda row: ids.index(row[0].id))
    if not todo:
        return _reads(session, existing)
    model_ids = {c.model_id or (v.model_id if v else None) for _r, c, _p, _e, v in todo} - {None}
    rows_of = {m.id: m for m in session.exec(select(Model).where(Model.id.in_(model_ids))).all()} if model_ids else {}
    people = list(session.exec(select(User).where(User.active).order_by(User.username)).all())
    by_name = {c.name: c for c in session.exec(select(Channel).where(Channel.enabled).order_by(Channel.name)).all()}
    raised: list[Alert] = []
    told: dict[int, dict] = {}
    for result, check, project, ev, version in todo:
        model_row = rows_of.get(check.model_id or (version.model_id if version else None))
        model = model_row.name if model_row else None
        found = _segment(session, check, result, model_row)
        segment = _segment_words(check, model_row, found[0], found[1], ev.granularity if ev else "") \
            if found else None
        wording = _wording(check, result, project, model, ev.window_end if ev else result.at, segment)
        audience = [u for u in people if set(u.roles) & set(check.audience_roles) or u.username in check.audience_users]

        def words(kind: str, *, wording=wording, project=project, model=model, check=check, result=result,  # noqa: ANN001, ANN202
                  found=found):
            title, message = wording[kind]
            return title, message, explain_link(audience=kind, project_key=project.key, model=model,
                                                kind=check.kind, evaluation_id=result.evaluation_id,
                                                segment=f"{found[0]}:{found[1]['rank']}" if found else None)

        raised += _raise(session, project=project, people=audience, kind="check", severity=result.status,
                         channel_rows=[by_name[n] for n in check.channels if n in by_name], words=words,
                         check_result_id=result.id)
        told.setdefault(project.id, {})[result.id] = {"check": check.name, "status": result.status,
                                                      "recipients": [u.username for u in audience]}
    for project_id, results in told.items():
        audit.record(session, actor="system", action="alert.raise", entity_type="check_result",
                     entity_id=",".join(map(str, results)), project_id=project_id, details={"results": results})
    return _reads(session, existing + raised)


def notify(*, session: Session, project_key: str | None, roles: list[str], usernames: list[str] | None = None,
           title: str, message: str, link: str = "", kind: str = "scenario", severity: str = "warning",
           channel_names: list[str] | None = None, business_message: str | None = None,
           review_id: int | None = None, actor: str = "system") -> list[AlertRead]:
    """Alert people by role or name outside a check (a review to sign, a blocked deployment, a run to approve)."""
    project = None
    if project_key:
        project = session.exec(select(Project).where(Project.key == project_key)).first()
        if project is None:
            raise NotFound(f"no project {project_key!r}")
    people = _recipients(session, roles, list(usernames or []))

    def words(audience: str) -> tuple[str, str, str]:
        text = business_message if audience == "business" and business_message else message
        return title, text, link or (f"/project?project={project.key}" if project else "")

    alerts = _raise(session, project=project, people=people, kind=kind, severity=severity,
                    channel_rows=_channel_rows(session, list(channel_names or [])), words=words, review_id=review_id)
    audit.record(session, actor=actor, action="alert.notify", entity_type="alert", entity_id=kind,
                 project_id=project.id if project else None,
                 details={"title": title, "recipients": [u.username for u in people]})
    return _reads(session, alerts)


def _histories(session: Session, result_ids: set[int]) -> dict[int, str]:
    """For each check result, the ticks of its check up to and including it (two queries for any number)."""
    if not result_ids:
        return {}
    mine = session.exec(select(CheckResult.id, CheckResult.check_id).where(CheckResult.id.in_(result_ids))).all()
    rows = session.exec(select(CheckResult.id, CheckResult.check_id, CheckResult.status)
                        .where(CheckResult.check_id.in_({c for _r, c in mine}))
                        .order_by(CheckResult.at, CheckResult.id)).all()
    by_check: dict[int, list[tuple[int, str]]] = {}
    for rid, cid, status in rows:
        by_check.setdefault(cid, []).append((rid, status))
    out = {}
    for rid, cid in mine:
        ordered = by_check[cid]
        upto = next(i for i, (other, _s) in enumerate(ordered) if other == rid) + 1
        out[rid] = "".join(TICKS.get(status, "⬜") for _o, status in ordered[max(0, upto - 12):upto])
    return out


def _reads(session: Session, rows: list[Alert]) -> list[AlertRead]:
    names = dict(session.exec(select(User.id, User.username).where(User.id.in_({a.user_id for a in rows}))).all()) \
        if rows else {}
    keys = dict(session.exec(select(Project.id, Project.key).where(
        Project.id.in_({a.project_id for a in rows if a.project_id}))).all()) if rows else {}
    history = _histories(session, {a.check_result_id for a in rows if a.check_result_id})
    return [AlertRead(id=a.id, username=names[a.user_id], kind=a.kind, severity=a.severity, title=a.title,
                      message=a.message, link=a.link, project_key=keys.get(a.project_id), created_at=a.created_at,
                      acknowledged_at=a.acknowledged_at, check_result_id=a.check_result_id,
                      history=history.get(a.check_result_id, "")) for a in rows]


def _read(session: Session, a: Alert) -> AlertRead:
    return _reads(session, [a])[0]


# --- the inbox ---------------------------------------------------------------------------------------

def _user_id(session: Session, username: str) -> int:
    uid = session.exec(select(User.id).where(User.username == username)).first()
    if uid is None:
        raise NotFound(f"no user {username!r}")
    return uid


def inbox(*, session: Session, username: str, unread_only: bool = False, limit: int = 100) -> list[AlertRead]:
    """A person's alerts, newest first."""
    q = select(Alert).where(Alert.user_id == _user_id(session, username))
    if unread_only:
        q = q.where(Alert.acknowledged_at.is_(None))
    rows = session.exec(q.order_by(Alert.created_at.desc(), Alert.id.desc()).limit(limit)).all()
    return _reads(session, list(rows))


def unread_count(*, session: Session, username: str) -> int:
    from sqlalchemy import func

    uid = session.exec(select(User.id).where(User.username == username)).first()
    if uid is None:
        return 0
    return session.exec(select(func.count()).select_from(Alert)
                        .where(Alert.user_id == uid, Alert.acknowledged_at.is_(None))).one()


def acknowledge(*, session: Session, actor: Actor, alert_id: int) -> AlertRead:
    """Mark one of your own alerts as read."""
    alert = session.get(Alert, alert_id)
    if alert is None:
        raise NotFound(f"no alert {alert_id}")
    if alert.user_id != _user_id(session, actor.username):
        raise Forbidden(f"alert {alert_id} is not addressed to {actor.username}")
    if alert.acknowledged_at is None:
        alert.acknowledged_at, alert.acknowledged_by = now(), actor.username
        session.add(alert)
        audit.record(session, actor=actor.username, action="alert.acknowledge", entity_type="alert",
                     entity_id=alert.id, project_id=alert.project_id, details={"title": alert.title})
    return _read(session, alert)


# --- deliveries --------------------------------------------------------------------------------------

def deliveries(*, session: Session, actor: Actor, status: str | None = None, limit: int = 200) -> list[DeliveryRead]:
    """Deliveries, newest first: everyone's for those who watch the channels, else the actor's own."""
    q = select(AlertDelivery, Alert, Channel, User).join(Alert, AlertDelivery.alert_id == Alert.id) \
        .join(Channel, AlertDelivery.channel_id == Channel.id).join(User, Alert.user_id == User.id)
    if not actor.has("alerts.deliveries"):
        q = q.where(User.username == actor.username)
    if status:
        q = q.where(AlertDelivery.status == status)
    rows = session.exec(q.order_by(AlertDelivery.id.desc()).limit(limit)).all()
    return [DeliveryRead(id=d.id, alert_id=a.id, alert_title=a.title,
                         recipient=u.username if c.kind == "email" else c.name, channel=c.name, channel_kind=c.kind,
                         status=d.status, attempts=d.attempts, next_attempt_at=d.next_attempt_at,
                         last_error=d.last_error, delivered_at=d.delivered_at) for d, a, c, u in rows]


def retry_delivery(*, session: Session, actor: Actor, delivery_id: int) -> None:
    """Queue a failed delivery again (after fixing a channel's settings)."""
    require(actor, "alerts.deliveries")
    delivery = session.get(AlertDelivery, delivery_id)
    if delivery is None:
        raise NotFound(f"no delivery {delivery_id}")
    delivery.status, delivery.attempts, delivery.next_attempt_at = "pending", 0, now()
    session.add(delivery)
    audit.record(session, actor=actor.username, action="delivery.retry", entity_type="delivery",
                 entity_id=delivery.id)


def _message(session: Session, delivery_id: int) -> tuple[channels.ChannelRead, channels.Message]:
    """What a delivery sends, read in one query (plus the check's history)."""
    row = session.exec(
        select(AlertDelivery, Alert, User, Channel, Project, CheckResult, Check)
        .join(Alert, AlertDelivery.alert_id == Alert.id).join(User, Alert.user_id == User.id)
        .join(Channel, AlertDelivery.channel_id == Channel.id)
        .outerjoin(Project, Alert.project_id == Project.id)
        .outerjoin(CheckResult, Alert.check_result_id == CheckResult.id)
        .outerjoin(Check, CheckResult.check_id == Check.id).where(AlertDelivery.id == delivery_id)).one()
    _delivery, alert, user, channel, project, result, check = row
    base = get_settings().base_url
    dashboard = f"{base}/project?project={project.key}" if project else base
    details = {"alert_id": alert.id, "kind": alert.kind}
    if result is not None:
        details.update(check=check.name, check_kind=check.kind, metric=check.metric, value=result.value,
                       threshold=check.threshold, status=result.status, evaluation_id=result.evaluation_id)
    message = channels.Message(title=alert.title, text=alert.message, severity=alert.severity,
                               link=f"{base}{alert.link}" if alert.link.startswith("/") else alert.link or dashboard,
                               dashboard_url=dashboard, history=_history_until(session, result) if result else "",
                               project=project.key if project else "", audience=audience_of(user.roles),
                               recipient_email=user.email, details=details)
    return channels.channel_read(channel), message


def _claim(delivery_id: int, attempts: int, at: datetime) -> tuple[channels.ChannelRead, channels.Message] | None:
    """Take a due delivery for this sender and read what it sends; None when another sender took it first."""
    with session_scope() as s:  # each delivery claims and settles in a short unit of work: sending waits on the network
        taken = s.execute(update(AlertDelivery).where(
            AlertDelivery.id == delivery_id, AlertDelivery.status == "pending", AlertDelivery.attempts == attempts,
            AlertDelivery.next_attempt_at <= at).values(attempts=attempts + 1,
                                                        next_attempt_at=at + timedelta(seconds=CLAIM_SECONDS)))
        return _message(s, delivery_id) if taken.rowcount == 1 else None


def _deliver_one(delivery_id: int, attempts: int, at: datetime, client: httpx.Client, timeout: float) -> str:
    claimed = _claim(delivery_id, attempts, at)
    if claimed is None:
        return "skipped"
    error, final, tries = "", False, attempts + 1
    try:
        channels.send(channel=claimed[0], message=claimed[1], client=client, timeout=timeout)
    except channels.NotConfigured as exc:
        error, final = str(exc), True
    except channels.DeliveryError as exc:
        error = str(exc)
    if not error:
        outcome, values = "sent", {"status": "sent", "delivered_at": now(), "last_error": ""}
    elif final or tries >= MAX_ATTEMPTS:
        outcome, values = "failed", {"status": "failed", "last_error": error}
    else:
        delay = timedelta(seconds=retry_base_seconds() * 2 ** (tries - 1))
        outcome, values = "retrying", {"last_error": error, "next_attempt_at": at + delay}
    with session_scope() as s:
        s.execute(update(AlertDelivery).where(AlertDelivery.id == delivery_id).values(**values))
    return outcome


def deliver_due(*, at: datetime | None = None, limit: int = 500, timeout: float = 5.0,
                threads: int = 8) -> DeliveryStats:
    """Send every due delivery once; failures wait 2^n × the base delay, and fail after MAX_ATTEMPTS tries."""
    at = at or now()
    with session_scope() as s:
        due = s.exec(select(AlertDelivery.id, AlertDelivery.attempts).where(
            AlertDelivery.status == "pending", AlertDelivery.next_attempt_at <= at)
            .order_by(AlertDelivery.next_attempt_at, AlertDelivery.id).limit(limit)).all()
    if not due:
        return DeliveryStats(0, 0, 0)
    with httpx.Client() as client, ThreadPoolExecutor(max_workers=threads) as pool:
        outcomes = list(pool.map(lambda row: _deliver_one(row[0], row[1], at, client, timeout), due))
    return DeliveryStats(sent=outcomes.count("sent"), retrying=outcomes.count("retrying"),
                         failed=outcomes.count("failed"))
