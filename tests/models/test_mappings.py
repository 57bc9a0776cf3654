"""A model's column mapping as a service: recorded at registration, corrected as a new mapping, audited, guarded."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import func
from sqlmodel import SQLModel, select

from core import audit
from core.access import Actor
from core.db import session_scope
from core.errors import Forbidden, InvalidInput
from core.models import mappings, registry
from core.models.column_mapping import Declared
from core.monitoring import ingest
from tests.support import external_logs as ext
from tests.support.lake import stored_labels, stored_predictions

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



def test_a_dropped_log_is_read_by_the_column_names_of_the_mapping(backend, tmp_path: Path):
    """An export that calls its id `txn_ref` and its time `booked_at`: scheduled drops are read through the mapping."""
    ext.create_project()
    files = ext.write_files(tmp_path)
    for path in files.values():
        pd.read_csv(path).rename(columns={"id": "txn_ref", "timestamp": "booked_at"}).to_csv(path, index=False)
    with session_scope() as s:
        registry.register_model(session=s, actor=MAYA, project_key="FRAUD", name="card-fraud", task="binary",
                                target="is_fraud", reference_csv=files["reference"], score_col="score",
                                columns=Declared(id_column="txn_ref", timestamp_column="booked_at"))
    with session_scope() as s:
        logged = ingest.ingest_detected(session=s, actor=MAYA, model="card-fraud", source=files["predictions"])
        labelled = ingest.ingest_detected(session=s, actor=MAYA, model="card-fraud", source=files["labels"])
    first_logged = pd.read_csv(files["predictions"])["booked_at"].min()
    assert (logged.kind, logged.rows, logged.window_start) == ("predictions", 1500, datetime.fromisoformat(first_logged))
    assert labelled.kind == "ground_truth" and len(stored_labels()) == 1500

    untimed = tmp_path / "untimed.csv"
    pd.read_csv(files["predictions"]).drop(columns=["booked_at"]).assign(
        txn_ref=lambda f: "late-" + f["txn_ref"]).to_csv(untimed, index=False)
    with pytest.raises(InvalidInput, match="no column 'booked_at', the model's timestamp column"), session_scope() as s:
        ingest.ingest_detected(session=s, actor=MAYA, model="card-fraud", source=untimed)
    assert len(stored_predictions()) == 1500
