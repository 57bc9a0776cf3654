"""A model's column mapping as a service: recorded at registration, corrected as a new mapping, audited, guarded."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import func
from sqlmodel import SQLModel, select

from core import audit
from core.access import Actor
from core.db import session_scope
from core.errors import Forbidden, InvalidInput
from core.models import mappings, registry
from core.models.column_mapping import Declared
from tests.support import external_logs as ext

MAYA = Actor(username="maya", roles=("ml_engineer",))
OMAR = Actor(username="omar", roles=("business",))


def _row_counts() -> dict[str, int]:
    with session_scope() as s:
        return {t.name: s.exec(select(func.count()).select_from(t)).one() for t in SQLModel.metadata.sorted_tables}


@pytest.fixture
def registered(backend, tmp_path: Path) -> str:
    """card-fraud, an external model registered from an export with `id` and `timestamp`, nothing declared."""
    ext.create_project()
    files = ext.write_files(tmp_path)
    with session_scope() as s:
        registry.register_model(session=s, actor=MAYA, project_key="FRAUD", name="card-fraud", task="binary",
                                target="is_fraud", reference_csv=files["reference"], score_col="score")
    return "card-fraud"


def test_registration_records_the_inferred_mapping_and_the_model_reads_only_its_features(registered):
    with session_scope() as s:
        info = mappings.current_mapping(session=s, model=registered)
        model = registry.get_model(session=s, name=registered)
    assert info.number == 1 and info.created_by == "maya" and info.notes == "at registration"
    assert (info.mapping.id_column, info.mapping.timestamp_column) == ("id", "timestamp")
    assert model.feature_names == list(ext.FEATURES) == info.mapping.feature_names


def test_a_correction_is_a_new_audited_mapping_that_the_model_then_reads(registered):
    with session_scope() as s:
        info = mappings.set_mapping(session=s, actor=MAYA, model=registered, notes="region codes are categories",
                                    declared=Declared(kinds={"region_code": "categorical"}))
    assert info.number == 2
    with session_scope() as s:
        model = registry.get_model(session=s, name=registered)
        history = mappings.mapping_history(session=s, model=registered)
        trail = audit.events(session=s, entity_id=registered)
    assert {f["name"]: f["type"] for f in model.features}["region_code"] == "categorical"
    assert [h.number for h in history] == [1, 2]
    assert history[0].mapping.feature_names == history[1].mapping.feature_names  # only the kind changed
    assert trail[0].action == "mapping.set" and trail[0].details["notes"] == "region codes are categories"


@pytest.mark.parametrize(("actor", "declared", "error", "reason"), [
    (OMAR, Declared(kinds={"region_code": "categorical"}), Forbidden, "omar may not model register"),
    (MAYA, Declared(features=("amount", "channel")), InvalidInput, "feature 'channel' is not in the reference data"),
    (MAYA, Declared(features=("amount", "amount")), InvalidInput, "feature 'amount' is listed twice"),
    (MAYA, Declared(features=("id", "amount")), InvalidInput, "column 'id' is both the id column and a feature"),
    (MAYA, Declared(features=()), InvalidInput, "the feature list is empty"),
    (MAYA, Declared(target="amount"), InvalidInput, "the target of card-fraud is 'is_fraud', fixed"),
    (MAYA, Declared(), InvalidInput, "the mapping of card-fraud already says exactly this"),
])
def test_a_refused_correction_writes_nothing(registered, actor, declared, error, reason):
    before = _row_counts()
    with pytest.raises(error, match=reason), session_scope() as s:
        mappings.set_mapping(session=s, actor=actor, model=registered, declared=declared)
    assert _row_counts() == before
