"""Saying which column is what: a reference file's id and timestamp are recognised, bad mappings are refused."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from core.errors import InvalidInput
from core.models.column_mapping import Declared, check_incoming, propose, read_schema
from tests.support import external_logs as ext


@pytest.fixture(scope="module")
def export() -> pd.DataFrame:
    """An external model's reference export: id, timestamp, four features, score and label."""
    return ext.transactions(600, seed=5)


def _declared(**given: object) -> Declared:
    return Declared(target="is_fraud", score_column="score", **given)


def test_an_export_with_an_id_and_a_timestamp_keeps_both_out_of_the_features(export):
    proposal = propose(export, _declared(), source="reference.csv")
    m = proposal.mapping
    assert (m.id_column, m.timestamp_column) == ("id", "timestamp")
    assert m.feature_names == list(ext.FEATURES)
    assert {f["name"]: f["type"] for f in m.features}["merchant"] == "categorical"
    assert proposal.inferred == ("id column 'id': unique per row", "timestamp column 'timestamp': holds dates",
                                 "features: every other column (4)")
    assert proposal.ignored == {}
    assert "  id                   id" in proposal.lines()


def test_integer_ids_and_typed_dates_are_recognised_and_a_second_of_each_is_ignored_and_listed(export):
    frame = export.assign(row_number=np.arange(len(export)), booked_at=pd.to_datetime(export["timestamp"]),
                          id=np.arange(len(export)) + 500)
    proposal = propose(frame, _declared(), source="reference.csv")
    assert proposal.mapping.id_column == "id"  # the conventional name wins over row_number
    assert proposal.mapping.timestamp_column == "timestamp"
    assert proposal.ignored == {"row_number": "unique per row, like an id", "booked_at": "holds dates"}
    assert proposal.mapping.feature_names == list(ext.FEATURES)


def test_an_integer_coded_category_is_taken_as_numeric_with_a_warning_until_declared(export):
    inferred = propose(export, _declared(), source="reference.csv")
    assert {f["name"]: f["type"] for f in inferred.mapping.features}["region_code"] == "numeric"
    assert any("'region_code' holds integers with only 5 distinct values" in w for w in inferred.warnings)

    declared = propose(export, _declared(kinds={"region_code": "categorical"}), source="reference.csv")
    assert {f["name"]: f["type"] for f in declared.mapping.features}["region_code"] == "categorical"
    assert not declared.warnings


def test_columns_left_out_of_a_declared_feature_list_are_ignored_and_listed(export):
    proposal = propose(export, _declared(features=("amount", "merchant")), source="reference.csv")
    assert proposal.mapping.feature_names == ["amount", "merchant"]
    assert proposal.ignored == {"card_age_days": "not mapped", "region_code": "not mapped"}
    assert (proposal.mapping.id_column, proposal.mapping.timestamp_column) == ("id", "timestamp")


@pytest.mark.parametrize(("given", "reason"), [
    ({"id_column": "transaction_id"}, "id column 'transaction_id' is not in reference.csv"),
    ({"features": ("amount", "channel")}, "feature 'channel' is not in reference.csv"),
    ({"features": ("amount", "merchant", "amount")}, "feature 'amount' is listed twice"),
    ({"id_column": "id", "features": ("id", "amount")}, "column 'id' is both the id column and a feature"),
    ({"timestamp_column": "timestamp", "features": ("timestamp", "amount")},
     "column 'timestamp' is both the timestamp column and a feature"),
    ({"features": ("is_fraud", "amount")}, "column 'is_fraud' is both the target and a feature"),
    ({"features": ()}, "the feature list is empty"),
    ({"kinds": {"merchant": "numeric"}}, "feature 'merchant' is declared numeric but holds 'grocery', which is not a number"),
    ({"kinds": {"amount": "ordinal"}}, "feature 'amount' has kind 'ordinal'"),
    ({"kinds": {"id": "categorical"}}, "a kind is given for 'id', which is not a feature"),
    ({"timestamp_column": "merchant"}, "timestamp column 'merchant' holds values that are not dates"),
    ({"id_column": "id", "timestamp_column": "id"}, "column 'id' is both the id column and the timestamp column"),
])
def test_a_bad_mapping_is_refused_naming_the_column(export, given, reason):
    with pytest.raises(InvalidInput, match="^" + re.escape(reason)):
        propose(export, _declared(**given), source="reference.csv")


def test_a_categorical_float_with_thousands_of_values_is_warned_about():
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"balance": rng.normal(1000, 300, 3000), "y": rng.integers(0, 2, 3000)})
    proposal = propose(frame, Declared(target="y", kinds={"balance": "categorical"}), source="reference.csv")
    assert proposal.warnings == ("feature 'balance' is declared categorical but is a float column with 3,000 "
                                 "distinct values: each value becomes a category of its own",)


def test_a_schema_file_in_yaml_or_json_says_the_same(tmp_path: Path, export):
    (tmp_path / "mapping.yaml").write_text("id: id\ntimestamp: timestamp\ntarget: is_fraud\nscore: score\n"
                                           "features:\n  - amount\n  - merchant\n"
                                           "  - name: region_code\n    kind: categorical\n")
    (tmp_path / "mapping.json").write_text(json.dumps({
        "id": "id", "timestamp": "timestamp", "target": "is_fraud", "score": "score",
        "features": ["amount", "merchant", {"name": "region_code", "kind": "categorical"}]}))
    from_yaml, from_json = read_schema(tmp_path / "mapping.yaml"), read_schema(tmp_path / "mapping.json")
    assert from_yaml == from_json
    mapping = propose(export, from_yaml, source="reference.csv").mapping
    assert mapping.as_schema() == {"id": "id", "timestamp": "timestamp", "target": "is_fraud", "score": "score",
                                   "prediction": None, "features": [
                                       {"name": "amount", "kind": "numeric"},
                                       {"name": "merchant", "kind": "categorical"},
                                       {"name": "region_code", "kind": "categorical"}]}
    # Options given as well win over the file.
    assert Declared(features=("amount",)).over(from_yaml).features == ("amount",)


def test_a_schema_file_with_an_unknown_key_is_refused(tmp_path: Path):
    (tmp_path / "mapping.yaml").write_text("target: is_fraud\nlabel: is_fraud\n")
    with pytest.raises(InvalidInput, match="schema file mapping.yaml has unknown key"):
        read_schema(tmp_path / "mapping.yaml")


def test_an_incoming_file_needs_every_mapped_feature_and_its_extra_columns_are_listed():
    features = [{"name": "amount", "type": "numeric"}, {"name": "merchant", "type": "categorical"}]
    ignored = check_incoming(columns=["id", "timestamp", "amount", "merchant", "score", "batch"], features=features,
                             read=["id", "timestamp", "score"], source="log.csv")
    assert ignored == ["batch"]
    with pytest.raises(InvalidInput, match="log.csv lacks required column\\(s\\) 'merchant', mapped as feature"):
        check_incoming(columns=["id", "amount", "score"], features=features, read=["id", "score"], source="log.csv")
