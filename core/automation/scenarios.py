"""Scenarios: a project's automation — a trigger (cron, interval, manual) and ordered steps — and their runs.

The portal only records requests ("Run now", an approval); the worker (`watchtower worker`) executes
them with `core.automation.runner`. A step is `auto` or `needs_approval`: a run pauses at the latter until
a holder of the step's approver role approves it here.

A scenario acts as its owner, the user who last created or changed it, whoever requests a run: each step is
checked at run time against the permission its kind needs (core.automation.step_kinds.STEP_PERMISSIONS) for the owner's
current roles, and a deactivated owner can do nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from apscheduler.triggers.cron import CronTrigger
from sqlalchemy import delete
from sqlmodel import Session, select

from core import audit
from core.access import Actor, require
from core.automation import run_states
from core.clock import now
from core.entities import ROLES, Model, Project, Scenario, ScenarioRun, StepRun, User
from core.errors import Conflict, Forbidden, InvalidInput, NotFound
from core.projects.projects import project_row

TRIGGER_KINDS = ("cron", "interval", "manual")
STEP_MODES = ("auto", "needs_approval")
STEP_WHEN = ("always", "checks_failed")
ACTIVE = ("requested", "running", "waiting_approval")
MIN_INTERVAL_SECONDS = 1


@dataclass(frozen=True)
class StepRunRead:
    position: int
    kind: str
    mode: str
    approver_role: str | None
    status: str
    started_at: datetime | None
    finished_at: datetime | None
    log: str
    error: str
    approved_by: str | None

    @property
    def duration_s(self) -> float | None:
        if self.started_at is None:
            return None
        return ((self.finished_at or now()) - self.started_at).total_seconds()


@dataclass(frozen=True)
class RunRead:
    id: int
    scenario_id: int
    scenario: str
    project_key: str
    status: str
    trigger: str
    requested_by: str
    requested_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    worker_id: str | None
    error: str
    steps: tuple[StepRunRead, ...]

    @property
    def waiting_step(self) -> StepRunRead | None:
        return next((s for s in self.steps if s.status == "waiting_approval"), None)


@dataclass(frozen=True)
class ScenarioRead:
    id: int
    project_key: str
    model: str | None
    name: str
    description: str
    trigger_kind: str
    trigger_value: str
    steps: tuple[dict, ...]
    enabled: bool
    next_run_at: datetime | None
    last_run: RunRead | None
    owner: str = ""  # the user its steps act as

    @property
    def schedule(self) -> str:
        if self.trigger_kind == "cron":
            return f"cron {self.trigger_value} (UTC)"
        if self.trigger_kind == "interval":
            return f"every {int(self.trigger_value):,} s"
        return "manual"


def validate_trigger(kind: str, value: str | int | None) -> str:
    """Normalize a trigger value; a cron expression that does not parse is refused with the parser's reason."""
    value = str(value if value is not None else "").strip()
    if kind not in TRIGGER_KINDS:
        raise InvalidInput(f"trigger {kind!r} is not one of {', '.join(TRIGGER_KINDS)}")
    if kind == "cron":
        try:
            CronTrigger.from_crontab(value, timezone=UTC)
        except ValueError as exc:
            raise InvalidInput(f"cron expression {value!r} does not parse: {exc}") from None
        return " ".join(value.split())
    if kind == "interval":
        try:
            seconds = int(value)
        except ValueError:
            raise InvalidInput(f"interval {value!r} is not a whole number of seconds") from None
        if seconds < MIN_INTERVAL_SECONDS:
            raise InvalidInput(f"interval {seconds} s is too short (at least {MIN_INTERVAL_SECONDS} s)")
        return str(seconds)
    return ""


_SETTING_KEYS = ("url_secret", "url", "database_url", "secret")


def _check_ingest(i: int, params: dict, session: Session | None) -> None:
    """An ingest step reads its drop folder or queries a registered data connection, never a setting or URL."""
    from core.automation import connections

    named = [k for k in _SETTING_KEYS if k in params]
    if named:
        raise InvalidInput(f"step {i} (ingest) names a setting or URL ({', '.join(named)}); a SQL ingest names "
                           "a data connection an administrator registered: params source=sql, connection, query")
    source = params.get("source", "drop")
    if source not in ("drop", "sql"):
        raise InvalidInput(f"step {i} (ingest): source {source!r} is not one of drop, sql")
    if source != "sql":
        return
    if not params.get("connection") or not params.get("query"):
        raise InvalidInput(f"step {i} (ingest): a SQL ingest needs params connection (a data connection's name) "
                           "and query")
    if session is None:
        return
    try:
        conn = connections.get_connection(session=session, name=str(params["connection"]))
        connections.check_query(str(params["query"]), allowed_tables=conn.allowed_tables,
                                dialect=connections.dialect_of(conn.secret))
    except (InvalidInput, Forbidden, NotFound) as exc:
        raise type(exc)(f"step {i} (ingest): {exc}") from None


def validate_steps(steps: list[dict], *, session: Session | None = None) -> list[dict]:
    """Check each step's kind, mode, approver and (for a SQL ingest) its connection and query; return them in
    their stored shape."""
    from core.automation.step_kinds import STEP_KINDS, load_step_kinds

    load_step_kinds()
    if not steps:
        raise InvalidInput("a scenario needs at least one step")
    clean = []
    for i, spec in enumerate(steps, start=1):
        if not isinstance(spec, dict):
            raise InvalidInput(f"step {i} must be a mapping with a kind")
        kind, mode = spec.get("kind"), spec.get("mode", "auto")
        if kind not in STEP_KINDS:
            raise InvalidInput(f"step {i}: unknown kind {kind!r} (known: {', '.join(sorted(STEP_KINDS))})")
        if mode not in STEP_MODES:
            raise InvalidInput(f"step {i} ({kind}): mode {mode!r} is not one of {', '.join(STEP_MODES)}")
        approver = spec.get("approver_role") or ("ml_engineer" if mode == "needs_approval" else None)
        if approver is not None and approver not in ROLES:
            raise InvalidInput(f"step {i} ({kind}): approver role {approver!r} is not one of {', '.join(ROLES)}")
        when = spec.get("when", "always")
        if when not in STEP_WHEN:
            raise InvalidInput(f"step {i} ({kind}): when {when!r} is not one of {', '.join(STEP_WHEN)}")
        params = spec.get("params") or {}
        if not isinstance(params, dict):
            raise InvalidInput(f"step {i} ({kind}): params must be a mapping")
        if kind == "ingest":
            _check_ingest(i, params, session)
        clean.append({"kind": kind, "mode": mode, "approver_role": approver, "when": when, "params": dict(params)})
    return clean


def next_run_at(kind: str, value: str) -> datetime | None:
    """When the trigger fires next (naive UTC)."""
    current = now()
    if kind == "cron":
        fire = CronTrigger.from_crontab(value, timezone=UTC).get_next_fire_time(None, current.replace(tzinfo=UTC))
        return fire.astimezone(UTC).replace(tzinfo=None) if fire else None
    if kind == "interval":
        # The worker counts intervals from 2000-01-01 (see core.automation.worker): the next multiple after now.
        seconds = int(value)
        elapsed = (current - datetime(2000, 1, 1)).total_seconds()
        return datetime(2000, 1, 1) + timedelta(seconds=(elapsed // seconds + 1) * seconds)
    return None


def scenario_row(session: Session, *, scenario_id: int | None = None, project_key: str | None = None,
                 name: str | None = None) -> Scenario:
    if scenario_id is not None:
        found = session.get(Scenario, scenario_id)
    else:
        q = select(Scenario).where(Scenario.name == name)
        if project_key:
            q = q.where(Scenario.project_id == project_row(session, project_key).id)
        matches = session.exec(q).all()
        if len(matches) > 1:
            raise InvalidInput(f"several projects have a scenario named {name!r}; name the project")
        found = matches[0] if matches else None
    if found is None:
        raise NotFound(f"no scenario {name or scenario_id!r}")
    return found


def create_scenario(*, session: Session, actor: Actor, project_key: str, name: str, steps: list[dict],
                    trigger_kind: str = "manual", trigger_value: str | int | None = "", model: str | None = None,
                    description: str = "", enabled: bool = True) -> ScenarioRead:
    """Define a scenario; the trigger and every step are validated before anything is written."""
    require(actor, "automation.manage")
    project = project_row(session, project_key)
    name = name.strip()
    if not name:
        raise InvalidInput("a scenario needs a name")
    value = validate_trigger(trigger_kind, trigger_value)
    clean = validate_steps(steps, session=session)
    model_id = None
    if model:
        m = session.exec(select(Model).where(Model.name == model, Model.project_id == project.id)).first()
        if m is None:
            raise NotFound(f"project {project.key} has no model {model!r}")
        model_id = m.id
    if session.exec(select(Scenario).where(Scenario.project_id == project.id, Scenario.name == name)).first():
        raise Conflict(f"project {project.key} already has a scenario named {name!r}")
    scenario = Scenario(project_id=project.id, model_id=model_id, name=name, description=description,
                        trigger_kind=trigger_kind, trigger_value=value, steps=clean, enabled=enabled,
                        owner=actor.username)
    session.add(scenario)
    session.flush()
    audit.record(session, actor=actor.username, action="scenario.create", entity_type="scenario", entity_id=name,
                 project_id=project.id, details={"trigger": f"{trigger_kind} {value}".strip(),
                                                 "owner": actor.username,
                                                 "steps": [f"{s['kind']} ({s['mode']})" for s in clean]})
    return read_scenario(session, scenario)


def update_scenario(*, session: Session, actor: Actor, scenario_id: int, trigger_kind: str | None = None,
                    trigger_value: str | int | None = None, steps: list[dict] | None = None,
                    enabled: bool | None = None, description: str | None = None) -> ScenarioRead:
    """Change a scenario's trigger, steps, description or switch it on/off; the worker picks it up.

    Whoever changes it becomes its owner: from then on its steps act as them (audited when the owner changes)."""
    require(actor, "automation.manage")
    scenario = scenario_row(session, scenario_id=scenario_id)
    changes: dict = {}
    if trigger_kind is not None:
        value = validate_trigger(trigger_kind, trigger_value)
        changes["trigger"] = f"{trigger_kind} {value}".strip()
        scenario.trigger_kind, scenario.trigger_value = trigger_kind, value
    if steps is not None:
        scenario.steps = validate_steps(steps, session=session)
        changes["steps"] = [f"{s['kind']} ({s['mode']})" for s in scenario.steps]
    if enabled is not None:
        scenario.enabled = changes["enabled"] = enabled
    if description is not None:
        scenario.description = changes["description"] = description
    previous = scenario.owner
    scenario.owner = actor.username
    session.add(scenario)
    audit.record(session, actor=actor.username, action="scenario.update", entity_type="scenario",
                 entity_id=scenario.name, project_id=scenario.project_id, details=changes)
    if previous != actor.username:
        audit.record(session, actor=actor.username, action="scenario.owner", entity_type="scenario",
                     entity_id=scenario.name, project_id=scenario.project_id,
                     details={"from": previous, "to": actor.username,
                              "message": f"ownership of scenario {scenario.name} passed from "
                                         f"{previous or 'nobody'} to {actor.username}"})
    return read_scenario(session, scenario)


def acting_actor(*, session: Session, scenario_id: int, kind: str) -> Actor:
    """Who a step of this kind acts as: the scenario's owner with the roles they hold now.

    Raises Forbidden, with the reason, when the scenario has no owner, the owner is gone or deactivated, or
    their roles do not grant what the step needs (core.automation.step_kinds.STEP_PERMISSIONS)."""
    from core.automation.step_kinds import authorize

    scenario = scenario_row(session, scenario_id=scenario_id)
    if not scenario.owner:
        raise Forbidden(f"scenario {scenario.name} has no owner to act as; whoever edits it becomes its owner")
    user = session.exec(select(User).where(User.username == scenario.owner)).first()
    if user is None or not user.active:
        raise Forbidden(f"scenario {scenario.name} acts as its owner {scenario.owner}, who is "
                        f"{'no longer a user' if user is None else 'deactivated'}; another user must take it over "
                        "by editing it")
    actor = Actor(username=user.username, roles=tuple(user.roles))
    try:
        authorize(kind, actor)
    except Forbidden as exc:
        raise Forbidden(f"{exc}; scenario {scenario.name} acts as its owner {actor.username}") from None
    return actor


def delete_scenario(*, session: Session, actor: Actor, scenario_id: int) -> None:
    """Remove a scenario and its run history (the audit trail keeps the record); refused while it runs."""
    require(actor, "automation.manage")
    scenario = scenario_row(session, scenario_id=scenario_id)
    if session.exec(select(ScenarioRun).where(ScenarioRun.scenario_id == scenario.id,
                                              ScenarioRun.status.in_(ACTIVE))).first():
        raise Conflict(f"scenario {scenario.name} has a run in progress; wait for it or let it finish first")
    run_ids = session.exec(select(ScenarioRun.id).where(ScenarioRun.scenario_id == scenario.id)).all()
    if run_ids:
        session.execute(delete(StepRun).where(StepRun.run_id.in_(run_ids)))
        session.execute(delete(ScenarioRun).where(ScenarioRun.id.in_(run_ids)))
    session.delete(scenario)
    audit.record(session, actor=actor.username, action="scenario.delete", entity_type="scenario",
                 entity_id=scenario.name, project_id=scenario.project_id, details={"runs_removed": len(run_ids)})


# --- runs -------------------------------------------------------------------------------------------

def request_run(*, session: Session, actor: Actor, scenario_id: int, trigger: str = "manual") -> RunRead:
    """Record a request to run now; a worker starts it within seconds. One run at a time per scenario."""
    require(actor, "automation.run")
    scenario = scenario_row(session, scenario_id=scenario_id)
    active = session.exec(select(ScenarioRun).where(ScenarioRun.scenario_id == scenario.id,
                                                    ScenarioRun.status.in_(ACTIVE))).first()
    if active is not None:
        raise Conflict(f"scenario {scenario.name} already has run #{active.id} {active.status.replace('_', ' ')}")
    run = ScenarioRun(scenario_id=scenario.id, status="requested", trigger=trigger, requested_by=actor.username)
    session.add(run)
    session.flush()
    audit.record(session, actor=actor.username, action="scenario.run.request", entity_type="scenario_run",
                 entity_id=run.id, project_id=scenario.project_id, details={"scenario": scenario.name,
                                                                            "trigger": trigger})
    return read_run(session, run)


def _decide(session: Session, actor: Actor, run_id: int, approve: bool, comment: str) -> RunRead:
    run = session.get(ScenarioRun, run_id)
    if run is None:
        raise NotFound(f"no scenario run {run_id}")
    step = session.exec(select(StepRun).where(StepRun.run_id == run.id, StepRun.status == "waiting_approval")).first()
    if run.status != "waiting_approval" or step is None:
        raise Conflict(f"run #{run.id} is {run.status.replace('_', ' ')}, not waiting for an approval")
    run_states.check(run.status, "requested" if approve else "failed", run_id=run.id)
    scenario = session.get(Scenario, run.scenario_id)
    role = scenario.steps[step.position].get("approver_role") or "ml_engineer"
    if role not in actor.roles:
        raise Forbidden(f"step {step.position + 1} ({step.kind}) of {scenario.name} needs approval by a "
                        f"{role.replace('_', ' ')}; {actor.username} is not one")
    at = now()
    step.approved_by, step.approved_at = actor.username, at
    if approve:
        step.status, run.status = "pending", "requested"  # a worker resumes the run at this step
        step.log = (step.log + f"approved by {actor.username}" + (f": {comment}" if comment else "") + "\n")
    else:
        step.status, step.finished_at, step.error = "skipped", at, f"rejected by {actor.username}: {comment}".strip(": ")
        run.status, run.finished_at, run.error = "failed", at, f"step {step.position + 1} ({step.kind}) was rejected"
        for later in session.exec(select(StepRun).where(StepRun.run_id == run.id, StepRun.position > step.position)):
            later.status = "skipped"
            session.add(later)
    session.add(step)
    session.add(run)
    audit.record(session, actor=actor.username, action="scenario.step.approve" if approve else "scenario.step.reject",
                 entity_type="scenario_run", entity_id=run.id, project_id=scenario.project_id,
                 details={"scenario": scenario.name, "step": step.position + 1, "kind": step.kind, "comment": comment})
    return read_run(session, run)


def approve_step(*, session: Session, actor: Actor, run_id: int, comment: str = "") -> RunRead:
    """Approve the step a run waits on (only a holder of the step's approver role); the worker resumes it."""
    return _decide(session, actor, run_id, True, comment)


def reject_step(*, session: Session, actor: Actor, run_id: int, comment: str = "") -> RunRead:
    """Reject the step a run waits on: the run ends as failed and its remaining steps are skipped."""
    return _decide(session, actor, run_id, False, comment)


# --- reading ----------------------------------------------------------------------------------------

def read_run(session: Session, run: ScenarioRun) -> RunRead:
    scenario = session.get(Scenario, run.scenario_id)
    project = session.get(Project, scenario.project_id)
    rows = session.exec(select(StepRun).where(StepRun.run_id == run.id).order_by(StepRun.position)).all()
    by_pos = {r.position: r for r in rows}
    steps = []
    for pos, spec in enumerate(scenario.steps):
        r = by_pos.get(pos)
        steps.append(StepRunRead(position=pos, kind=spec["kind"], mode=spec.get("mode", "auto"),
                                 approver_role=spec.get("approver_role"), status=r.status if r else "pending",
                                 started_at=r.started_at if r else None, finished_at=r.finished_at if r else None,
                                 log=r.log if r else "", error=r.error if r else "",
                                 approved_by=r.approved_by if r else None))
    return RunRead(id=run.id, scenario_id=scenario.id, scenario=scenario.name, project_key=project.key,
                   status=run.status, trigger=run.trigger, requested_by=run.requested_by,
                   requested_at=run.requested_at, started_at=run.started_at, finished_at=run.finished_at,
                   worker_id=run.worker_id, error=run.error, steps=tuple(steps))


def read_scenario(session: Session, scenario: Scenario) -> ScenarioRead:
    project = session.get(Project, scenario.project_id)
    model = session.get(Model, scenario.model_id) if scenario.model_id else None
    last = session.exec(select(ScenarioRun).where(ScenarioRun.scenario_id == scenario.id)
                        .order_by(ScenarioRun.id.desc())).first()
    nxt = next_run_at(scenario.trigger_kind, scenario.trigger_value) if scenario.enabled else None
    return ScenarioRead(id=scenario.id, project_key=project.key, model=model.name if model else None,
                        name=scenario.name, description=scenario.description, trigger_kind=scenario.trigger_kind,
                        trigger_value=scenario.trigger_value, steps=tuple(dict(s) for s in scenario.steps),
                        enabled=scenario.enabled, next_run_at=nxt, last_run=read_run(session, last) if last else None,
                        owner=scenario.owner)


def list_scenarios(*, session: Session, project_key: str | None = None) -> list[ScenarioRead]:
    q = select(Scenario).order_by(Scenario.project_id, Scenario.name)
    if project_key:
        q = q.where(Scenario.project_id == project_row(session, project_key).id)
    return [read_scenario(session, s) for s in session.exec(q).all()]


def get_scenario(*, session: Session, scenario_id: int | None = None, project_key: str | None = None,
                 name: str | None = None) -> ScenarioRead:
    return read_scenario(session, scenario_row(session, scenario_id=scenario_id, project_key=project_key, name=name))


def list_runs(*, session: Session, scenario_id: int | None = None, project_key: str | None = None,
              status: str | None = None, limit: int = 50) -> list[RunRead]:
    """Runs, newest first."""
    q = select(ScenarioRun).order_by(ScenarioRun.id.desc()).limit(limit)
    if scenario_id is not None:
        q = q.where(ScenarioRun.scenario_id == scenario_id)
    if project_key:
        ids = session.exec(select(Scenario.id).where(Scenario.project_id == project_row(session, project_key).id)).all()
        q = q.where(ScenarioRun.scenario_id.in_(ids))
    if status:
        q = q.where(ScenarioRun.status == status)
    return [read_run(session, r) for r in session.exec(q).all()]


def get_run(*, session: Session, run_id: int) -> RunRead:
    run = session.get(ScenarioRun, run_id)
    if run is None:
        raise NotFound(f"no scenario run {run_id}")
    return read_run(session, run)
