"""A model's column mapping by name, and its corrections (recorded by mapping_records).

Drift, metrics, the validation lab and documentation read the model's features, so a correction takes effect
for every evaluation after it. A model registered before mappings were recorded has the mapping its features
and target describe (number 0).
"""

from __future__ import annotations

from dataclasses import replace

import pandas as pd
from sqlmodel import Session

from core import artifacts
from core.access import Actor, require
from core.entities import Model
from core.errors import InvalidInput
from core.models import registry
from core.models.column_mapping import Declared, Mapping, Proposal, propose
from core.models.mapping_records import MappingInfo, history, newest, record


def current_mapping(*, session: Session, model: str) -> MappingInfo:
    """The mapping in force: the newest recorded, else the one the model's features and target describe."""
    m = registry.model_row(session, model)
    found = newest(session, m)
    if found is not None:
        return found
    return MappingInfo(model=m.name, number=0, mapping=Mapping(target=m.target, features=tuple(m.features)),
                       ignored=(), created_by="", created_at=None, notes="as registered, before mappings")


def mapping_history(*, session: Session, model: str) -> list[MappingInfo]:
    """Every recorded mapping of MODEL, oldest first."""
    return history(session, registry.model_row(session, model))


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
