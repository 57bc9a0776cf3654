"""Recorded column mappings of a model row: numbered, audited, and mirrored in the model's feature list."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func
from sqlmodel import Session, select

from core import audit
from core.access import Actor
from core.entities import ColumnMapping, Model
from core.models.column_mapping import Mapping, Proposal


@dataclass(frozen=True)
class MappingInfo:
    model: str
    number: int
    mapping: Mapping
    ignored: tuple[str, ...]
    created_by: str
    created_at: datetime | None
    notes: str


def _info(model: Model, row: ColumnMapping) -> MappingInfo:
    mapping = Mapping(target=row.target, features=tuple(dict(f) for f in row.features), id_column=row.id_column,
                      timestamp_column=row.timestamp_column, score_column=row.score_column,
                      prediction_column=row.prediction_column)
    return MappingInfo(model=model.name, number=row.number, mapping=mapping, ignored=tuple(row.ignored),
                       created_by=row.created_by, created_at=row.created_at, notes=row.notes)


def newest(session: Session, model: Model) -> MappingInfo | None:
    """The newest recorded mapping of a model, if any."""
    row = session.exec(select(ColumnMapping).where(ColumnMapping.model_id == model.id)
                        .order_by(ColumnMapping.number.desc())).first()
    return None if row is None else _info(model, row)


def record(session: Session, *, actor: Actor, model: Model, proposal: Proposal, notes: str = "") -> MappingInfo:
    """Store PROPOSAL as the model's next mapping, make its features the model's, and audit it."""
    number = (session.exec(select(func.max(ColumnMapping.number)).where(ColumnMapping.model_id == model.id)).one()
              or 0) + 1
    m = proposal.mapping
    row = ColumnMapping(model_id=model.id, number=number, id_column=m.id_column, timestamp_column=m.timestamp_column,
                        target=m.target, score_column=m.score_column, prediction_column=m.prediction_column,
                        features=[dict(f) for f in m.features], ignored=list(proposal.ignored),
                        created_by=actor.username, notes=notes)
    model.features = [dict(f) for f in m.features]
    session.add(model)
    session.add(row)
    session.flush()
    audit.record(session, actor=actor.username, action="mapping.set", entity_type="model", entity_id=model.name,
                 project_id=model.project_id,
                 details={"number": number, **m.as_schema(), "ignored": list(proposal.ignored), "notes": notes})
    return _info(model, row)


def history(session: Session, model: Model) -> list[MappingInfo]:
    """Every recorded mapping of a model, oldest first."""
    rows = session.exec(select(ColumnMapping).where(ColumnMapping.model_id == model.id)
                        .order_by(ColumnMapping.number)).all()
    return [_info(model, r) for r in rows]
