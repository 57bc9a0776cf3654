"""Model documentation: everything Watchtower knows about a model version, gathered, rendered and stored.

`gather` reads the facts into one plain read model; `core.documentation.render` turns it into Markdown, HTML or PDF;
`generate` does both and stores the file under WATCHTOWER_HOME/documents with its sha256, attached to the
version's open review so a reviewer can tell which document they signed off.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func
from sqlmodel import Session, select

from core import artifacts, audit
from core.access import Actor, require
from core.clock import now
from core.config import get_settings
from core.db import session_scope
from core.documentation import render
from core.documentation.facts import (
    ModelDocumentation,
    assess,
    drift_of,
    evaluations,
    profile_reference,
    stored_assessment,
    version_events,
)
from core.entities import (
    BusinessInitiative,
    Check,
    CheckResult,
    Document,
    Evaluation,
    Model,
    ModelVersion,
    Project,
)
from core.errors import IntegrityFailure, InvalidInput, NotFound
from core.governance import deployer, reviews
from core.models import registry
from core.monitoring import evaluation_store
from core.projects import projects
from core.validation import lab, lab_results
from core.vocabulary import DOCUMENT_FORMATS

FORMATS = DOCUMENT_FORMATS
MIME_TYPES = {"md": "text/markdown", "html": "text/html", "pdf": "application/pdf"}




@dataclass(frozen=True)
class DocumentRead:
    id: int
    model: str
    version: int
    format: str
    path: str
    sha256: str
    generated_at: datetime
    generated_by: str
    review_id: int | None
    out_of_date: bool  # generated before the latest evaluation of the version

    @property
    def file_name(self) -> str:
        return file_name(model=self.model, version=self.version, fmt=self.format)


@dataclass(frozen=True)
class GeneratedDocument:
    document: DocumentRead
    content: bytes

    @property
    def mime(self) -> str:
        return MIME_TYPES[self.document.format]


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("._") or "model"


def file_name(*, model: str, version: int, fmt: str) -> str:
    """The name a downloaded document is saved under."""
    return f"{_safe(model)}-v{version}-documentation.{fmt}"


def _check_format(fmt: str) -> None:
    if fmt not in FORMATS:
        raise InvalidInput(f"document format {fmt!r} is not one of {', '.join(FORMATS)}")


def _triggered_by(session: Session, version: ModelVersion) -> str:
    if version.triggered_by_check_result_id is None:
        return ""
    result = session.get(CheckResult, version.triggered_by_check_result_id)
    check = session.get(Check, result.check_id) if result else None
    if result is None or check is None:
        return f"check result {version.triggered_by_check_result_id}"
    value = "no value" if result.value is None else f"value {result.value:.4g}"
    return f"check {check.name!r} ({result.status}, {value}) on {result.at:%Y-%m-%d %H:%M}"


def gather(*, actor: Actor, model: str, version: int | None = None) -> ModelDocumentation:
    """Collect what Watchtower knows about one version (default: the active one).

    The records are read in one short unit of work; statistics, diagnostics and importance are computed
    after it, so no transaction stays open across the long part.
    """
    require(actor, "documentation.generate")
    # As of when the records are read: an evaluation stored after this makes the document out of date.
    read_at = now()
    with session_scope() as s:  # read everything at once; rendering runs outside any transaction
        m = registry.model_row(s, model)
        v = registry.version_row(s, m, version)
        info = registry.version_info(v)
        project = s.get(Project, m.project_id)
        initiative = s.get(BusinessInitiative, project.initiative_id) if project.initiative_id else None
        store_reader = _reader(actor, "evaluation.view")
        windows, latest = evaluations(evaluation_store.list_evaluations(
            session=s, actor=store_reader, model=m.name, version=v.number))
        active = registry.version_row(s, m) if not windows else None
        comparison = () if active is None or active.status != "active" or active.id == v.id else evaluations(
            evaluation_store.list_evaluations(session=s, actor=store_reader, model=m.name, version=active.number))[0]
        version_reviews = tuple(r for r in reviews.reviews_for_model(session=s, model=m.name) if r.version == v.number)
        deployments = tuple(reversed([d for d in deployer.history(session=s, model=m.name, limit=1000)
                                      if d.version == v.number]))
        findings = _stored_findings(s, actor=actor, model=m.name, version=info)
        opened, problem = (None, "") if findings else _open_lab(s, actor=actor, model=m.name, version=info)
        facts = dict(
            project=projects.get_project(session=s, key=project.key),
            initiative_description=initiative.description if initiative else "", model=registry.model_info(m),
            model_description=m.description, version=info, triggered_by=_triggered_by(s, v), windows=windows,
            latest=latest, comparison_version=active.number if comparison else None, comparison_windows=comparison,
            field_drift=drift_of(latest), deployments=deployments, reviews=version_reviews,
            audit=version_events(session=s, model=m.name, version=v.number, project_id=m.project_id,
                                 review_ids=[r.id for r in version_reviews]))
    reference = opened.version.reference if opened else artifacts.load_reference(
        path=info.reference_path, sha256=info.reference_sha256, what=f"{m.name} v{info.number}")
    return ModelDocumentation(generated_at=read_at, generated_by=actor.username,
                              fields=profile_reference(reference, features=facts["model"].features, target=m.target),
                              assessment=stored_assessment(findings) if findings else assess(
                                  opened, version=info, problem=problem), **facts)


def _reader(actor: Actor, permission: str) -> Actor:
    """Who reads a store on the document's behalf.

    The document is the record reviewers sign off, the same whoever generates it; a reviewer whose role does
    not open the evaluation store or the validation lab (IT & operations, business) still gets all of it. They
    are read in the generating person's name with a reviewer's read access (the risk manager's role, which
    opens both), never as an administrator; this actor is passed to those two reads only.
    """
    if actor.has(permission):
        return actor
    reader = Actor(username=actor.username, roles=("risk_manager",))
    require(reader, permission)
    return reader


def _stored_findings(session: Session, *, actor: Actor, model: str, version: registry.VersionInfo
                     ) -> lab_results.Findings | None:
    """The lab's findings the worker stored for the version, when they are current and its artifact is intact.

    Otherwise (none yet, pending, failed, computed against another champion, or an artifact that no longer
    matches its sha256) the document runs the lab itself, which also reports a tampered artifact.
    """
    if not version.artifact_path:
        return None
    kept = lab_results.stored(session=session, actor=_reader(actor, "validation.view"), model=model,
                              version=version.number)
    if kept.status != "done":
        return None
    path = artifacts.resolve(version.artifact_path)
    if not path.is_file() or artifacts.sha256_file(path) != version.artifact_sha256:
        return None
    return kept.findings


def _open_lab(session: Session, *, actor: Actor, model: str, version: registry.VersionInfo
              ) -> tuple[lab.Lab | None, str]:
    """The validation lab for the version, or why it cannot be opened."""
    if not version.artifact_path:
        return None, ""
    try:
        opened = lab.open_lab(session=session, actor=_reader(actor, "validation.view"), model=model,
                              version=version.number)
        return opened, ""
    except IntegrityFailure as exc:
        return None, f"The artifact failed verification, so the model was not run: {exc}"


def _latest_evaluation_at(session: Session, version_id: int) -> datetime | None:
    return session.exec(select(func.max(Evaluation.created_at))
                        .where(Evaluation.model_version_id == version_id)).one()


def _read(row: Document, *, model: str, version: int, latest_eval: datetime | None) -> DocumentRead:
    return DocumentRead(id=row.id, model=model, version=version, format=row.format, path=row.path,
                        sha256=row.sha256, generated_at=row.generated_at, generated_by=row.generated_by,
                        review_id=row.review_id,
                        out_of_date=latest_eval is not None and row.generated_at < latest_eval)


def store_document(*, session: Session, actor: Actor, doc: ModelDocumentation, fmt: str,
                   content: bytes) -> DocumentRead:
    """Write a rendered document under WATCHTOWER_HOME/documents and record it, attached to the open review."""
    require(actor, "documentation.generate")
    _check_format(fmt)
    version = session.get(ModelVersion, doc.version.id)
    if version is None:
        raise NotFound(f"model {doc.model.name} has no version {doc.version.number} any more")
    digest = hashlib.sha256(content).hexdigest()
    folder = get_settings().home / "documents"
    folder.mkdir(parents=True, exist_ok=True)
    stamp = doc.generated_at.strftime("%Y%m%dT%H%M%S")
    dest = folder / f"{_safe(doc.model.name)}-v{doc.version.number}-{stamp}-{digest[:12]}.{fmt}"
    tmp = dest.with_suffix(dest.suffix + ".tmp")
    tmp.write_bytes(content)
    tmp.replace(dest)
    review = reviews.latest_review_row(session, version.id)
    open_review = review if review is not None and review.state in reviews.OPEN_STATES else None
    row = Document(model_version_id=version.id, review_id=open_review.id if open_review else None, format=fmt,
                   path=str(dest.relative_to(get_settings().home)), sha256=digest,
                   generated_at=doc.generated_at, generated_by=actor.username)
    session.add(row)
    session.flush()
    audit.record(session, actor=actor.username, action="document.generate", entity_type="model_version",
                 entity_id=f"{doc.model.name}:v{doc.version.number}", project_id=doc.model.project_id,
                 details={"document_id": row.id, "format": fmt, "sha256": digest,
                          "review_id": row.review_id})
    return _read(row, model=doc.model.name, version=doc.version.number,
                 latest_eval=_latest_evaluation_at(session, version.id))


def generate(*, actor: Actor, model: str, version: int | None = None, fmt: str) -> GeneratedDocument:
    """Gather, render and store one document; the reads and the final write are short units of work."""
    _check_format(fmt)
    doc = gather(actor=actor, model=model, version=version)
    content = render.render(doc, fmt)
    with session_scope() as s:  # a short write after the long render
        stored = store_document(session=s, actor=actor, doc=doc, fmt=fmt, content=content)
    return GeneratedDocument(document=stored, content=content)


def list_documents(*, session: Session, actor: Actor, model: str, version: int | None = None,
                   review_id: int | None = None) -> list[DocumentRead]:
    """Stored documents of a version (or of one review), newest first, each marked out of date or not."""
    require(actor, "documentation.generate")
    m = registry.model_row(session, model)
    v = registry.version_row(session, m, version)
    q = select(Document).where(Document.model_version_id == v.id)
    if review_id is not None:
        q = q.where(Document.review_id == review_id)
    latest_eval = _latest_evaluation_at(session, v.id)
    rows = session.exec(q.order_by(Document.generated_at.desc(), Document.id.desc())).all()
    return [_read(r, model=m.name, version=v.number, latest_eval=latest_eval) for r in rows]


def read_document(*, session: Session, actor: Actor, document_id: int) -> GeneratedDocument:
    """A stored document's bytes, verified against the sha256 recorded when it was generated."""
    require(actor, "documentation.generate")
    row = session.get(Document, document_id)
    if row is None:
        raise NotFound(f"no document {document_id}")
    version = session.get(ModelVersion, row.model_version_id)
    m = session.get(Model, version.model_id)
    path = artifacts.resolve(row.path)
    if not path.is_file():
        raise IntegrityFailure(f"document {document_id} is missing from {path.parent}")
    content = path.read_bytes()
    if hashlib.sha256(content).hexdigest() != row.sha256:
        raise IntegrityFailure(f"document {document_id} was altered after it was generated (sha256 mismatch)")
    return GeneratedDocument(document=_read(row, model=m.name, version=version.number,
                                            latest_eval=_latest_evaluation_at(session, version.id)),
                             content=content)
