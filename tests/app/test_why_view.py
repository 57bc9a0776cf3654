"""The evaluation store's "Why?" view: the segments of a window, one of them over time, and watching it."""

from __future__ import annotations

import json

import pytest
import streamlit as st
from sqlmodel import select

from core.db import session_scope
from core.entities import Check, Evaluation
from tests.app.conftest import open_page, texts
from tests.support import slice_world as world


@pytest.fixture
def monitored(sqlite_home):
    st.cache_data.clear()
    world.build_monitored()
    with session_scope() as s:
        return list(s.exec(select(Evaluation.id).order_by(Evaluation.window_start)).all())


def test_why_lists_the_segments_draws_one_and_watches_it(monitored):
    _ordinary, failed = monitored
    at = open_page("pages/evaluation_store.py", username="maya")
    at.selectbox(key="es_window").set_value(failed).run()
    at.selectbox(key="es_why_loss").set_value("missed").run()
    assert not at.exception
    shown = texts(at)
    assert "Why? Segments behind the window" in shown and "Inside / outside: recall" in shown
    table = next(df.value for df in at.dataframe if "segment" in df.value.columns)
    assert "channel = online" in table.iloc[0]["segment"] and "card_age_days <" in table.iloc[0]["segment"]
    titles = [json.loads(c.proto.spec).get("title") for c in at.get("vega_lite_chart")]
    assert any("recall inside vs outside the segment" in str(t) for t in titles)
    assert "Grown since the reference: region = north" in shown and "(no harm to the model)" in shown
    at.button(key="es_watch").click().run()
    assert not at.exception
    assert any("Check “segment: card_age_days <" in s.value for s in at.success)
    with session_scope() as s:
        check = s.exec(select(Check).where(Check.name.startswith("segment:"))).one()
    assert check.metric == "recall" and {c["field"] for c in check.slice_conditions} == {"card_age_days", "channel"}


def test_business_people_read_segments_but_cannot_watch_them(monitored):
    _ordinary, failed = monitored
    at = open_page("pages/evaluation_store.py", username="bianca")
    at.selectbox(key="es_window").set_value(failed).run()
    assert not at.exception
    assert "Why? Segments behind the window" in texts(at)
    assert not [b for b in at.button if b.key == "es_watch"]
