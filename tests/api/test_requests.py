"""Reading a scoring request's body: the typed decoding of well-formed bodies gives the same frame, logged columns
and refusals as reading the records one by one."""

from __future__ import annotations

import json
from typing import Any

import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from core.api.requests import TooLarge, parse_records, read_body, read_records
from core.errors import WatchtowerError

FEATURES = (("amount", "numeric"), ("card_age_days", "numeric"), ("channel", "categorical"))
EXTRAS = ("refund",)
GOOD = {"amount": 12.5, "card_age_days": 3, "channel": "web"}


def outcome(read: Any) -> tuple:
    """What a reading gives: its frame and logged columns, or the refusal with its message and field."""
    try:
        frame, logged = read()
    except WatchtowerError as exc:
        return type(exc).__name__, str(exc), getattr(exc, "field", None)
    return "read", frame.to_dict("list"), list(frame.dtypes), {name: col.to_pylist() for name, col in logged.items()}


def both(body: bytes, max_batch: int = 100) -> tuple[tuple, tuple]:
    typed = outcome(lambda: read_body(body, features=FEATURES, extras=EXTRAS, max_batch=max_batch))
    one_by_one = outcome(lambda: read_records(parse_records(body, max_batch=max_batch), features=FEATURES,
                                              extras=EXTRAS))
    return typed, one_by_one


def test_a_well_formed_batch_becomes_the_models_frame_and_the_logged_columns():
    body = json.dumps({"records": [GOOD, {**GOOD, "amount": 7, "refund": 2.5, "unknown": [1, {"a": None}]},
                                   {**GOOD, "channel": "pos ✓", "refund": None}]}).encode()
    frame, logged = read_body(body, features=FEATURES, extras=EXTRAS, max_batch=100)
    pd.testing.assert_frame_equal(frame, pd.DataFrame({"amount": [12.5, 7.0, 12.5], "card_age_days": [3.0, 3.0, 3.0],
                                                       "channel": ["web", "web", "pos ✓"]}))
    assert logged["refund"].to_pylist() == [None, 2.5, None]
    assert both(body)[0] == both(body)[1]
    assert both(json.dumps([GOOD, GOOD]).encode())[0][0] == "read", "a bare list of records is read too"


def test_every_refused_body_is_refused_with_the_same_message_and_field():
    bodies = [
        b"", b"null", b"[]", b'{"records": []}', b'{"rows": []}', b'{"records": 5}', b'["amount=3"]',
        json.dumps([GOOD, {"card_age_days": 4, "channel": "web"}]).encode(),
        json.dumps([{**GOOD, "amount": "12.5"}]).encode(),
        json.dumps([{**GOOD, "amount": True}]).encode(),
        json.dumps([{**GOOD, "card_age_days": None}]).encode(),
        json.dumps([GOOD, {**GOOD, "channel": None}]).encode(),
        json.dumps([GOOD, {"amount": 1, "card_age_days": 4}]).encode(),
        json.dumps([{**GOOD, "channel": 5}, {**GOOD, "amount": None}]).encode(),
        json.dumps([GOOD, {**GOOD, "refund": "x"}]).encode(),
        b'[{"amount": 1e999, "card_age_days": 3, "channel": "web"}]',
        b'[{"amount": 1' + b"0" * 400 + b', "card_age_days": 3, "channel": "web"}]',
        b'[{"amount": NaN, "card_age_days": 3, "channel": "web"}]',
        b'[{"amount": 1, "card_age_days": 3, "channel": "web", "unknown": "\xff"}]',  # not UTF-8, where skipped
        b'[{"amount": 1, "card_age_days": 3, "channel": "web", "unknown": ' + b"[" * 5000 + b"]" * 5000 + b"}]",
        b"[" * 100_000 + b"]" * 100_000,
    ]
    for body in bodies:
        typed, one_by_one = both(body)
        assert typed[0] != "read" and typed == one_by_one, (body[:80], typed, one_by_one)
    too_many = json.dumps([GOOD] * 11).encode()
    assert both(too_many, max_batch=10)[0] == both(too_many, max_batch=10)[1] == (
        TooLarge.__name__, "11 records exceed the limit of 10 per request", "records")


VALUE = st.one_of(st.none(), st.booleans(), st.integers(), st.integers(min_value=10**300, max_value=10**400),
                  st.floats(), st.text(max_size=5), st.lists(st.integers(), max_size=2))


def mostly(valid: st.SearchStrategy) -> st.SearchStrategy:
    """A valid value nine times in ten, else any value (or none at all): most batches hold one problem at most."""
    return st.one_of(*[valid] * 9, VALUE)


RECORD = st.fixed_dictionaries({"amount": mostly(st.floats(allow_nan=False, allow_infinity=False)),
                                "card_age_days": mostly(st.integers(-10**6, 10**6)),
                                "channel": mostly(st.sampled_from(["web", "pos"]))},
                               optional={"refund": mostly(st.floats(allow_nan=False)), "unknown": VALUE})
BATCH = st.lists(st.one_of(RECORD, st.dictionaries(st.sampled_from(["amount", "channel", "refund"]), VALUE)),
                 max_size=4)


@settings(max_examples=400, deadline=None)
@given(records=BATCH, wrapped=st.booleans())
def test_any_body_reads_as_it_does_record_by_record(records, wrapped):
    body = json.dumps({"records": records} if wrapped else records).encode()
    typed, one_by_one = both(body)
    assert typed == one_by_one
