"""All tables of Watchtower's domain. Datetimes are naive UTC (see core.clock), hence NaiveDatetime."""

from __future__ import annotations

from typing import Any

from pydantic import NaiveDatetime
from sqlalchemy import JSON, Column, ForeignKey, ForeignKeyConstraint, Index, Integer, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from core.clock import now
from core.vocabulary import (  # noqa: F401 - the domain's words, importable from here too
    COMPONENT_KINDS,
    POLICIES,
    REVIEW_STATES,
    RISK_LEVELS,
    ROLES,
    TASKS,
    VERDICTS,
    VERSION_ORIGINS,
    VERSION_STATUSES,
)


def _json(default: Any = None) -> Any:
    factory = (lambda: list(default)) if isinstance(default, list) else (lambda: dict(default or {}))
    return Field(default_factory=factory, sa_column=Column(JSON, nullable=False))


def _text() -> Any:
    return Field(default="", sa_column=Column(Text, nullable=False))


# --- people and the audit trail -------------------------------------------------------------

class User(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    username: str = Field(unique=True, index=True, max_length=64)
    name: str
    email: str
    roles: list[str] = _json([])
    password_hash: str | None = None
    active: bool = True
    created_at: NaiveDatetime = Field(default_factory=now)
    # Company sign-in: "issuer|subject" of the OpenID Connect identity this user is (None: a local account).
    oidc_subject: str | None = Field(default=None, max_length=512)
    # Password lockout: consecutive failures and, once too many, the end of the lockout (naive UTC).
    failed_sign_ins: int = 0
    locked_until: NaiveDatetime | None = None


class Token(SQLModel, table=True):
    """A personal access token: only the hash of its secret is stored; scopes limit what it may reach."""

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="user.id", index=True)
    name: str = Field(max_length=64)
    prefix: str = Field(max_length=16)
    secret_hash: str = Field(unique=True, index=True, max_length=64)
    scopes: list[str] = _json([])
    created_at: NaiveDatetime = Field(default_factory=now)
    expires_at: NaiveDatetime
    last_used_at: NaiveDatetime | None = None
    revoked_at: NaiveDatetime | None = None


class AuditHead(SQLModel, table=True):
    """One row: the chain's length and last hash. Updating it first serializes writers of the chain."""

    id: int = Field(default=1, primary_key=True)
    seq: int = 0
    last_hash: str = ""


class AuditEvent(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    seq: int = Field(unique=True, index=True)
    at: NaiveDatetime = Field(default_factory=now)
    actor: str
    action: str = Field(index=True)
    entity_type: str
    entity_id: str
    project_id: int | None = Field(default=None, index=True)
    details: dict = _json({})
    prev_hash: str
    hash: str


# --- portfolio --------------------------------------------------------------------------------

class BusinessInitiative(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(unique=True)
    description: str = _text()


class Blueprint(SQLModel, table=True):
    """A governance workflow: ordered stages, each with sign-off roles and checks that must pass."""

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(unique=True)
    description: str = _text()
    risk_levels: list[str] = _json([])
    # [{"name": "Review", "signoff_roles": ["it_ops", ...], "final_approver": "risk_manager",
    #   "required_checks": ["auc"], "auto_deploy": true}, ...]
    stages: list[dict] = _json([])
    auto_deploy: bool = False


class Project(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(unique=True, index=True, max_length=32)
    name: str
    description: str = _text()
    sponsor: str = ""
    owner: str = ""
    contacts: list[dict] = _json([])  # [{"name", "email", "role"}]
    initiative_id: int | None = Field(default=None, foreign_key="businessinitiative.id")
    scope: str = _text()
    risk_level: str = "medium"
    blueprint_id: int | None = Field(default=None, foreign_key="blueprint.id")
    stage: str = "Exploration"
    tags: list[str] = _json([])
    created_at: NaiveDatetime = Field(default_factory=now)


# --- models and versions --------------------------------------------------------------------

class Model(SQLModel, table=True):
    __table_args__ = (UniqueConstraint("project_id", "name"),)
    id: int | None = Field(default=None, primary_key=True)
    project_id: int = Field(foreign_key="project.id", index=True)
    name: str = Field(unique=True, index=True)
    task: str = "binary"
    target: str
    features: list[dict] = _json([])  # [{"name": "amount", "type": "numeric"|"categorical"}]
    decision_threshold: float = 0.5
    # [{"name": "fraud_missed_amount", "kind": "amount_sum", "column": "amount", "label": 1, "prediction": 0,
    #   "label_text": "Fraud missed (amount)", "better": "lower"},
    #  {"name": "net_value", "kind": "cost_matrix", "tp": 100, "fp": -5, "fn": -100, "tn": 0, "better": "higher"}]
    business_metrics: list[dict] = _json([])
    description: str = _text()
    created_at: NaiveDatetime = Field(default_factory=now)


class ColumnMapping(SQLModel, table=True):
    """Which column of a model's data is what, numbered per model; the newest is the one in force."""

    __table_args__ = (UniqueConstraint("model_id", "number"),)
    id: int | None = Field(default=None, primary_key=True)
    model_id: int = Field(foreign_key="model.id", index=True)
    number: int
    id_column: str | None = None
    timestamp_column: str | None = None
    target: str
    score_column: str | None = None
    prediction_column: str | None = None
    features: list[dict] = _json([])  # [{"name": "amount", "type": "numeric"|"categorical"}], as on Model
    ignored: list[str] = _json([])  # columns of the reference file that are neither features nor metadata
    created_by: str
    created_at: NaiveDatetime = Field(default_factory=now)
    notes: str = _text()


class TrainingRun(SQLModel, table=True):
    """One tracked experiment: a recipe trained on a data window, evaluated on a held-out split."""

    id: int | None = Field(default=None, primary_key=True)
    model_id: int = Field(foreign_key="model.id", index=True)
    algorithm: str
    recipe: dict = _json({})
    params: dict = _json({})
    data_start: NaiveDatetime | None = None
    data_end: NaiveDatetime | None = None
    data_fingerprint: str = ""
    rows: int = 0
    metrics: dict = _json({})
    duration_s: float = 0.0
    status: str = "succeeded"
    error: str = _text()
    artifact_path: str | None = None
    artifact_sha256: str | None = None
    # The held-out sample the run was scored on: it becomes the version's reference data on promotion.
    reference_path: str | None = None
    reference_sha256: str | None = None
    created_by: str
    created_at: NaiveDatetime = Field(default_factory=now)


class ModelVersion(SQLModel, table=True):
    __table_args__ = (UniqueConstraint("model_id", "number"),)
    id: int | None = Field(default=None, primary_key=True)
    model_id: int = Field(foreign_key="model.id", index=True)
    number: int
    status: str = "candidate"
    origin: str = "manual"
    training_start: NaiveDatetime | None = None
    training_end: NaiveDatetime | None = None
    data_fingerprint: str = ""
    recipe: dict = _json({})
    params: dict = _json({})
    training_metrics: dict = _json({})
    reference_path: str
    reference_sha256: str
    reference_rows: int = 0
    artifact_path: str | None = None
    artifact_sha256: str | None = None
    training_run_id: int | None = Field(default=None, foreign_key="trainingrun.id")
    # The failed check that caused a scheduled retrain (a cycle in the FK graph, so added after create; SET NULL
    # lets SQLite drop the tables of a cycle, which it does by deleting their rows first).
    triggered_by_check_result_id: int | None = Field(
        default=None,
        sa_column=Column(Integer, ForeignKey("checkresult.id", use_alter=True, name="fk_version_checkresult",
                                            ondelete="SET NULL")),
    )
    created_by: str
    created_at: NaiveDatetime = Field(default_factory=now)
    notes: str = _text()


class Environment(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(unique=True)
    tier: str = "lower"  # lower | higher
    position: int = 0
    policy: str = "block"  # block | warn | allow; fails closed
    endpoint_url: str | None = None


class Deployment(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    environment_id: int = Field(foreign_key="environment.id", index=True)
    model_version_id: int = Field(foreign_key="modelversion.id", index=True)
    model_id: int = Field(foreign_key="model.id", index=True)
    deployed_at: NaiveDatetime = Field(default_factory=now)
    deployed_by: str
    active: bool = True
    ended_at: NaiveDatetime | None = None
    note: str = _text()


# --- the evaluation store -------------------------------------------------------------------

class Prediction(SQLModel, table=True):
    __table_args__ = (
        UniqueConstraint("model_id", "prediction_id", name="uq_prediction_model_pid"),
        Index("ix_prediction_version_ts", "model_version_id", "ts"),
    )
    id: int | None = Field(default=None, primary_key=True)
    model_id: int = Field(foreign_key="model.id")
    model_version_id: int = Field(foreign_key="modelversion.id")
    environment_id: int | None = Field(default=None, foreign_key="environment.id")
    prediction_id: str = Field(max_length=128)
    ts: NaiveDatetime
    score: float | None = None
    predicted: float | None = None
    features: dict = _json({})
    logged_by: str | None = Field(default=None, max_length=200)  # "token:ID:NAME" for the scoring API


class GroundTruth(SQLModel, table=True):
    __table_args__ = (
        UniqueConstraint("model_id", "prediction_id", name="uq_groundtruth_model_pid"),
        ForeignKeyConstraint(
            ["model_id", "prediction_id"], ["prediction.model_id", "prediction.prediction_id"],
            name="fk_groundtruth_prediction",
        ),
    )
    id: int | None = Field(default=None, primary_key=True)
    model_id: int = Field(foreign_key="model.id")
    prediction_id: str = Field(max_length=128)
    label: float
    arrived_at: NaiveDatetime = Field(default_factory=now)


class Evaluation(SQLModel, table=True):
    __table_args__ = (UniqueConstraint("model_version_id", "window_start", "window_end", name="uq_evaluation_window"),)
    id: int | None = Field(default=None, primary_key=True)
    model_version_id: int = Field(foreign_key="modelversion.id", index=True)
    environment_id: int | None = Field(default=None, foreign_key="environment.id")
    window_start: NaiveDatetime
    window_end: NaiveDatetime
    granularity: str = "custom"  # 1D | 7D | 1M | custom
    rows: int = 0
    labelled_rows: int = 0
    metrics: dict = _json({})
    estimated_metrics: dict = _json({})
    business_metrics: dict = _json({})
    data_quality: dict = _json({})  # {"missing_rate": {...}, "rows": n}
    drift_share: float | None = None
    drifted_fields: int = 0
    prediction_drift: dict = _json({})
    field_drift: list[dict] = _json([])  # [{"field", "type", "method", "threshold", "score", "drifted"}]
    report_path: str | None = None
    # The lake table versions the window was read at ({"predictions": n, "labels": m}), to reproduce it exactly.
    read_versions: dict | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    created_at: NaiveDatetime = Field(default_factory=now)
    created_by: str = "system"


# --- monitoring -----------------------------------------------------------------------------

class Channel(SQLModel, table=True):
    """Where alerts go. Config holds only non-secret values and the names of secret settings."""

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(unique=True)
    kind: str  # inapp | slack | email | webhook
    config: dict = _json({})
    enabled: bool = True


class Check(SQLModel, table=True):
    __table_args__ = (UniqueConstraint("project_id", "name"),)
    id: int | None = Field(default=None, primary_key=True)
    project_id: int = Field(foreign_key="project.id", index=True)
    model_id: int | None = Field(default=None, foreign_key="model.id", index=True)
    name: str
    kind: str  # metric | metric_drop | drift_share | field_drift | business | missing_rate | volume | estimated | endpoint
    metric: str = ""
    field: str | None = None
    condition: str = "gte"  # gte | lte
    threshold: float = 0.0
    severity: str = "error"  # warning | error
    audience_roles: list[str] = _json([])
    audience_users: list[str] = _json([])
    channels: list[str] = _json([])  # channel names
    description: str = _text()
    business_wording: str = _text()
    enabled: bool = True
    created_at: NaiveDatetime = Field(default_factory=now)
    # A check on one segment of the data ("watch this segment"): its conditions, empty for the whole window.
    slice_conditions: list[dict] = _json([])


class CheckResult(SQLModel, table=True):
    __table_args__ = (UniqueConstraint("check_id", "evaluation_id", name="uq_checkresult_eval"),)
    id: int | None = Field(default=None, primary_key=True)
    check_id: int = Field(foreign_key="check.id", index=True)
    evaluation_id: int | None = Field(default=None, foreign_key="evaluation.id")
    at: NaiveDatetime = Field(default_factory=now)
    value: float | None = None
    passed: bool | None = None  # None: no data
    status: str = "pass"  # pass | warning | error | no_data
    message: str = _text()


class Alert(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    check_result_id: int | None = Field(default=None, foreign_key="checkresult.id")
    review_id: int | None = Field(default=None, foreign_key="review.id")
    project_id: int | None = Field(default=None, foreign_key="project.id")
    user_id: int = Field(foreign_key="user.id", index=True)
    kind: str = "check"  # check | review | governance | scenario
    severity: str = "error"
    title: str
    message: str = _text()
    link: str = ""
    created_at: NaiveDatetime = Field(default_factory=now)
    acknowledged_at: NaiveDatetime | None = None
    acknowledged_by: str | None = None


class AlertDelivery(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    alert_id: int = Field(foreign_key="alert.id", index=True)
    channel_id: int = Field(foreign_key="channel.id")
    status: str = "pending"  # pending | sent | failed
    attempts: int = 0
    next_attempt_at: NaiveDatetime = Field(default_factory=now)
    last_error: str = _text()
    delivered_at: NaiveDatetime | None = None


# --- automation -----------------------------------------------------------------------------

class Scenario(SQLModel, table=True):
    __table_args__ = (UniqueConstraint("project_id", "name"),)
    id: int | None = Field(default=None, primary_key=True)
    project_id: int = Field(foreign_key="project.id", index=True)
    model_id: int | None = Field(default=None, foreign_key="model.id")
    name: str
    description: str = _text()
    trigger_kind: str = "manual"  # cron | interval | manual
    trigger_value: str = ""  # "0 6 * * *" | "3600" (seconds)
    # [{"kind": "evaluate", "mode": "auto"|"needs_approval", "approver_role": "ml_engineer", "params": {...}}]
    steps: list[dict] = _json([])
    enabled: bool = True
    created_at: NaiveDatetime = Field(default_factory=now)
    owner: str = ""  # the user who last created or changed it: its steps act as this user


class ScenarioRun(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    scenario_id: int = Field(foreign_key="scenario.id", index=True)
    status: str = "requested"  # requested | running | waiting_approval | succeeded | failed | interrupted
    trigger: str = "manual"  # schedule | manual
    requested_by: str = "system"
    requested_at: NaiveDatetime = Field(default_factory=now)
    started_at: NaiveDatetime | None = None
    finished_at: NaiveDatetime | None = None
    worker_id: str | None = None
    lease_expires_at: NaiveDatetime | None = None
    context: dict = _json({})  # values passed between steps
    error: str = _text()
    lease_token: int | None = None  # the fencing token of the lease it runs under; its writes must carry it
    scheduled_for: NaiveDatetime | None = None  # the trigger tick a scheduled run answers (one run per tick)


class StepRun(SQLModel, table=True):
    __table_args__ = (UniqueConstraint("run_id", "position"),)
    id: int | None = Field(default=None, primary_key=True)
    run_id: int = Field(foreign_key="scenariorun.id", index=True)
    position: int
    kind: str
    mode: str = "auto"
    status: str = "pending"  # pending | running | waiting_approval | succeeded | failed | skipped | interrupted
    started_at: NaiveDatetime | None = None
    finished_at: NaiveDatetime | None = None
    log: str = _text()
    error: str = _text()
    approved_by: str | None = None
    approved_at: NaiveDatetime | None = None


class Lease(SQLModel, table=True):
    """A named lock with an expiry and a fencing token that grows with every acquisition.

    On SQLite the row is the lock; on PostgreSQL an advisory lock is, and the row keeps the token.
    """

    name: str = Field(primary_key=True)
    holder: str  # "" once released
    expires_at: NaiveDatetime
    token: int = 0


# --- governance -----------------------------------------------------------------------------

class Review(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    model_version_id: int = Field(foreign_key="modelversion.id", index=True)
    stage: str = "Review"
    state: str = "NOT_STARTED"
    requested_by: str
    requested_at: NaiveDatetime = Field(default_factory=now)
    required_roles: list[str] = _json([])
    final_approver_role: str = "risk_manager"
    approver_distinct_from_signers: bool = False  # the blueprint's demand, fixed when the review is requested
    decided_by: str | None = None
    decided_at: NaiveDatetime | None = None
    decision_comment: str = _text()


class SignOff(SQLModel, table=True):
    __table_args__ = (UniqueConstraint("review_id", "role"),)
    id: int | None = Field(default=None, primary_key=True)
    review_id: int = Field(foreign_key="review.id", index=True)
    role: str
    reviewer: str
    verdict: str
    comment: str = _text()
    at: NaiveDatetime = Field(default_factory=now)


class Document(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    model_version_id: int = Field(foreign_key="modelversion.id", index=True)
    review_id: int | None = Field(default=None, foreign_key="review.id")
    format: str  # md | html | pdf
    path: str
    sha256: str
    generated_at: NaiveDatetime = Field(default_factory=now)
    generated_by: str = "system"


# --- the catalog: reusable components, datasets and project templates -------------------------

class Component(SQLModel, table=True):
    """A reusable, searchable thing with an owner to contact; `ref` names what it points at."""

    __table_args__ = (UniqueConstraint("kind", "name", name="uq_component_kind_name"),)
    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(index=True)
    name: str
    description: str = _text()
    owner: str = Field(index=True)
    tags: list[str] = _json([])
    project_id: int | None = Field(default=None, foreign_key="project.id", index=True)  # where it was built
    ref: str = ""  # dataset name, model name, "model:vN"; empty for definitions held in spec
    spec: dict = _json({})  # the definition: a recipe, check or scenario template, business metric
    search_text: str = _text()  # lower-cased name, description, tags and owner: what search scans
    tag_text: str = _text()  # "|tag1|tag2|": exact tag filter
    revision: int = 1
    created_by: str
    created_at: NaiveDatetime = Field(default_factory=now)
    updated_at: NaiveDatetime = Field(default_factory=now, index=True)


class ComponentUse(SQLModel, table=True):
    __table_args__ = (UniqueConstraint("component_id", "project_id", name="uq_componentuse"),)
    id: int | None = Field(default=None, primary_key=True)
    component_id: int = Field(foreign_key="component.id", index=True)
    project_id: int = Field(foreign_key="project.id", index=True)
    how: str = ""  # "data source of churn-model", "checks of the project"
    created_by: str
    created_at: NaiveDatetime = Field(default_factory=now)


class Dataset(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(unique=True, index=True)
    source_kind: str = "csv"  # csv | sql
    source: str = _text()  # file name or SQL query
    connection: str = ""  # database URL without its password; empty: the Watchtower database
    created_by: str
    created_at: NaiveDatetime = Field(default_factory=now)


class DatasetVersion(SQLModel, table=True):
    __table_args__ = (UniqueConstraint("dataset_id", "number", name="uq_datasetversion_number"),)
    id: int | None = Field(default=None, primary_key=True)
    dataset_id: int = Field(foreign_key="dataset.id", index=True)
    number: int
    rows: int = 0
    columns: list[dict] = _json([])  # the schema: [{"name", "type": numeric|categorical|boolean|datetime}]
    profile: list[dict] = _json([])  # per column: type, missing_rate, distribution summary
    fingerprint: str
    source: str = _text()  # the file name or the query this version was read from
    data_path: str
    data_sha256: str
    schema_changes: dict = _json({})  # {"added": [...], "removed": [...], "changed": [{"column", "from", "to"}]}
    flagged: bool = False  # schema differs from the previous version and nobody accepted it yet
    accepted_by: str | None = None
    accepted_at: NaiveDatetime | None = None
    created_by: str
    created_at: NaiveDatetime = Field(default_factory=now)


class ProjectTemplate(SQLModel, table=True):
    """A reusable project setup: model, checks, scenario and the dataset columns they rely on."""

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(unique=True)
    description: str = _text()
    task: str = "binary"
    # {"model": {"score_col": ...}, "required_columns": [...], "checks": {...}, "scenario": {...}, "tags": [...]}
    spec: dict = _json({})
    source_project_id: int | None = Field(default=None, foreign_key="project.id")
    created_by: str
    created_at: NaiveDatetime = Field(default_factory=now)


class DataConnection(SQLModel, table=True):
    """A named, read-only SQL source for the ingest step: the URL stays in a setting, tables are allow-listed."""

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(unique=True, index=True, max_length=64)
    secret: str  # the NAME of the setting that holds the database URL
    allowed_tables: list[str] = _json([])  # "table", "schema.table" or "schema.*"
    created_by: str
    created_at: NaiveDatetime = Field(default_factory=now)
    updated_at: NaiveDatetime = Field(default_factory=now)
# --- safe model import and audit checkpoints -------------------------------------------------------------

class TrustedType(SQLModel, table=True):
    """A Python type an administrator allows in uploaded skops files (beyond skops' own safe defaults)."""

    id: int | None = Field(default=None, primary_key=True)
    type_name: str = Field(unique=True)
    trusted_by: str
    trusted_at: NaiveDatetime = Field(default_factory=now)


class PickleAllowance(SQLModel, table=True):
    """An administrator's permission to load one exact pickle/joblib file (by sha256) for one model."""

    __table_args__ = (UniqueConstraint("model_name", "sha256"),)
    id: int | None = Field(default=None, primary_key=True)
    model_name: str = Field(index=True)
    sha256: str
    allowed_by: str
    allowed_at: NaiveDatetime = Field(default_factory=now)


class TrustedMlflowSource(SQLModel, table=True):
    """An MLflow tracking server an administrator allows models to be imported from (loading one runs its code)."""

    id: int | None = Field(default=None, primary_key=True)
    tracking_uri: str = Field(unique=True)  # normalised: scheme and host in lower case, no trailing slash
    trusted_by: str
    trusted_at: NaiveDatetime = Field(default_factory=now)
    note: str = _text()


class AuditVerification(SQLModel, table=True):
    """The outcome of one verification of the audit chain against a checkpoint kept outside the database."""

    id: int | None = Field(default=None, primary_key=True)
    at: NaiveDatetime = Field(default_factory=now, index=True)
    actor: str
    ok: bool
    events: int = 0
    checkpoint_seq: int = 0
    checkpoint_at: str = ""
    first_bad_seq: int | None = None
    summary: str = _text()
class SliceFinding(SQLModel, table=True):
    """The segments that explain one loss (missed fraud, an amount, errors) in one evaluation window."""

    __table_args__ = (UniqueConstraint("evaluation_id", "loss", name="uq_slicefinding_loss"),)
    id: int | None = Field(default=None, primary_key=True)
    evaluation_id: int = Field(foreign_key="evaluation.id", index=True)
    loss: str  # missed | false_alarms | errors | log_loss | abs_error | a business metric's name
    status: str = "found"  # found | none | not_enough_data
    reason: str = _text()
    rows: int = 0
    segments: list[dict] = _json([])  # best first: conditions, rows, share, metric inside/outside, loss share...
    grown: list[dict] = _json([])  # single conditions whose share grew most against the reference
    created_by: str = "system"
    created_at: NaiveDatetime = Field(default_factory=now)


class LabResult(SQLModel, table=True):
    """What the validation lab computed once for a version: importance, diagnostics, champion / challenger."""

    id: int | None = Field(default=None, primary_key=True)
    model_version_id: int = Field(foreign_key="modelversion.id", unique=True)
    status: str = "pending"  # pending | running | done | failed
    done: int = 0  # steps finished, of `total`
    total: int = 0
    champion: int | None = None  # the active version's number the comparison was made against
    results: dict = _json({})
    error: str = _text()
    requested_by: str
    requested_at: NaiveDatetime = Field(default_factory=now)
    started_at: NaiveDatetime | None = None
    computed_at: NaiveDatetime | None = None
