"""A model's column mapping and its corrections: numbered, audited, and mirrored in the model's feature list.

Drift, metrics, the validation lab and documentation read the model's features, so a correction takes effect
for every evaluation after it. A model registered before mappings were recorded has the mapping its features
and target describe (number 0).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime

import pandas as pd
from sqlalchemy import func
from sqlmodel import Session, select

from core import artifacts, audit
from core.access import Actor, require
from core.entities import ColumnMapping, Model
from core.errors import InvalidInput
from core.models import registry
from core.models.column_mapping import Declared, Mapping, Proposal, propose


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


def _newest(session: Session, model: Model) -> ColumnMapping | None:
    return session.exec(select(ColumnMapping).where(ColumnMapping.model_id == model.id)
                        .order_by(ColumnMapping.number.desc())).first()


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


def current_mapping(*, session: Session, model: str) -> MappingInfo:
    """The mapping in force: the newest recorded, else the one the model's features and target describe."""
    m = registry.model_row(session, model)
    row = _newest(session, m)
    if row is not None:
        return _info(m, row)
    return MappingInfo(model=m.name, number=0, mapping=Mapping(target=m.target, features=tuple(m.features)),
                       ignored=(), created_by="", created_at=None, notes="as registered, before mappings")


def mapping_history(*, session: Session, model: str) -> list[MappingInfo]:
    """Every recorded mapping of MODEL, oldest first."""
    m = registry.model_row(session, model)
    rows = session.exec(select(ColumnMapping).where(ColumnMapping.model_id == m.id)
                        .order_by(ColumnMapping.number)).all()
    return [_info(m, r) for r in rows]


def reference_columns(session: Session, model: Model, current: Mapping) -> pd.DataFrame:
    """The active version's reference sample under the column names the user knows."""
    v = registry.version_row(session, model)
    frame = artifacts.load_reference(path=v.reference_path, sha256=v.reference_sha256,
                                     what=f"{model.name} v{v.number}")
    back = {"__score__": current.score_column, "__prediction__": current.prediction_column}
    frame = frame.rename(columns={k: n for k, n in back.items() if n})
    return frame.drop(columns=[c for c in ("__score__", "__prediction__") if c in frame.columns])


def propose_correction(*, session: Session, model: str, declared: Declared) -> Proposal:
    """The mapping a correction would record, checked against the active version's reference sample.

    The target, score and prediction columns are fixed by the versions' reference samples; what is not
    declared carries over, and columns given a new role leave the carried-over features.
    """
    m = registry.model_row(session, model)
    now_in_force = current_mapping(session=session, model=model).mapping
    for what, given, fixed in (("target", declared.target, now_in_force.target),
                               ("score column", declared.score_column, now_in_force.score_column),
                               ("prediction column", declared.prediction_column, now_in_force.prediction_column)):
        if given is not None and given != fixed:
            raise InvalidInput(f"the {what} of {m.name} is {fixed!r}, fixed by its versions' reference data; "
                               f"register a new model to change it")
    moved = {c for c in (declared.id_column, declared.timestamp_column) if c}
    kinds = {f["name"]: f["type"] for f in now_in_force.features}
    features = declared.features if declared.features is not None else tuple(
        n for n in now_in_force.feature_names if n not in moved)
    base = Declared(target=now_in_force.target, id_column=now_in_force.id_column,
                    timestamp_column=now_in_force.timestamp_column, score_column=now_in_force.score_column,
                    prediction_column=now_in_force.prediction_column, features=features,
                    kinds={n: k for n, k in kinds.items() if n in features})
    wanted = replace(declared, features=features).over(base)
    frame = reference_columns(session, m, now_in_force)
    return propose(frame, wanted, source=f"the reference data of {m.name}")


def set_mapping(*, session: Session, actor: Actor, model: str, declared: Declared, notes: str = "") -> MappingInfo:
    """Correct MODEL's mapping as a new numbered mapping (audited); later evaluations use its features."""
    require(actor, "model.register")
    proposal = propose_correction(session=session, model=model, declared=declared)
    now_in_force = current_mapping(session=session, model=model).mapping
    if proposal.mapping == now_in_force and current_mapping(session=session, model=model).number > 0:
        raise InvalidInput(f"the mapping of {model} already says exactly this; nothing changed")
    return record(session, actor=actor, model=registry.model_row(session, model), proposal=proposal, notes=notes)
