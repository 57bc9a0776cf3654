"""The evaluation store and drift pages: trends against training and checks, windows, drill-down, report, upload."""

from __future__ import annotations

import json
from datetime import timedelta
from html.parser import HTMLParser

import pandas as pd
import pyarrow as pa
import pytest
import streamlit as st

from core.access import pages_for
from core.db import session_scope
from core.identity import users
from core.monitoring import checks, evaluation_store, evaluation_views
from tests.app.conftest import open_page, texts
from tests.support import evaluation_world as world
from tests.support.lake import stored_labels
from tests.support.people import ADMINISTRATOR

HOSTILE = "</script><script>alert('x')</script>"


@pytest.fixture
def monitored(sqlite_home):
    """Three evaluated days of the small card world, an AUC check, and the personas who look at them."""
    st.cache_data.clear()  # the pages cache their reads; each test starts from its own database
    world.build()
    days = world.three_days(300)
    evaluation_store.evaluate(actor=world.MAYA, model=world.MODEL, every="1D")
    with session_scope() as s:
        for username, roles in (("maya", ["ml_engineer"]), ("bianca", ["business"]), ("omar", ["it_ops"])):
            users.create_user(session=s, actor=ADMINISTRATOR, username=username, name=username.title(), email=f"{username}@x.io",
                              roles=roles)
        checks.define_check(session=s, actor=world.MAYA, project_key="CARDS", name="auc floor", kind="metric",
                            model=world.MODEL, metric="roc_auc", threshold=0.7, audience_roles=["ml_engineer"])
    return days


def _charts(at) -> list[tuple[str, pd.DataFrame]]:  # noqa: ANN001
    """Each Altair chart of the page: its title and all the rows it draws."""
    out = []
    for el in at.get("vega_lite_chart"):
        spec = json.loads(el.proto.spec)
        frames = [pa.ipc.open_stream(d.data.data).read_all().to_pandas() for d in el.proto.datasets]
        out.append((str(spec.get("title", "")), pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()))
    return out


def test_the_store_shows_each_metric_against_training_and_its_check(monitored):
    at = open_page("pages/evaluation_store.py", username="maya")
    assert not at.exception
    shown = texts(at)
    assert "Evaluation store" in shown and "AUC, latest window" in shown
    charts = dict(_charts(at))
    assert {"AUC", "recall", "precision", "Fraud missed (amount)", "share of drifted fields"} <= set(charts)
    auc = charts["AUC"]
    assert {"at training", "check auc floor"} <= set(auc["label"].dropna())
    assert {"realized", "estimated"} <= set(auc["series"].dropna())
    assert set(charts["Fraud missed (amount)"]["series"].dropna()) == {"realized", "estimated", "at training"}
    table = at.dataframe[0].value
    assert len(table) == 3 and table.iloc[0]["most_drifted_field"] == "card_age_days"
    assert "Log predictions or labels from a CSV file" in [e.label for e in at.expander]


def test_the_business_stakeholder_reads_but_cannot_upload(monitored):
    at = open_page("pages/evaluation_store.py", username="bianca")
    assert not at.exception and "Fraud missed (amount)" in dict(_charts(at))
    assert "Log predictions or labels from a CSV file" not in [e.label for e in at.expander]
    offered = {p.path for p in pages_for(("it_ops",))}
    assert "pages/evaluation_store.py" not in offered and "pages/drift.py" not in offered


def test_switching_to_weekly_windows(monitored):
    evaluation_store.evaluate(actor=world.MAYA, model=world.MODEL, every="7D")
    at = open_page("pages/evaluation_store.py", username="maya")
    at.selectbox(key="es_granularity").select("weekly").run()
    assert not at.exception and len(at.dataframe[0].value) == 1


def test_the_drill_down_puts_the_most_drifted_field_first(monitored):
    with session_scope() as s:
        third = evaluation_store.list_evaluations(session=s, actor=world.MAYA, model=world.MODEL)[2]
    at = open_page(None, username="maya")
    at.query_params["evaluation"] = str(third.id)
    at.switch_page("pages/drift.py").run()
    assert not at.exception
    fields = at.dataframe[0].value
    assert fields.iloc[0]["field"] == "card_age_days" and bool(fields.iloc[0]["drifted"])
    assert fields.iloc[0]["method"] == "Wasserstein distance (normed)" and fields.iloc[0]["threshold"] == 0.1
    title, rows = _charts(at)[0]
    assert title == "card_age_days: reference vs current"
    assert set(rows["dataset"]) == {"reference", "current"} and "start" in rows
    at.selectbox(key="drift_field").select("merchant").run()
    title, rows = _charts(at)[0]
    assert {"fuel", "web"} <= set(rows["category"]), "categories are drawn as bars"


def test_the_full_report_is_embedded_only_escaped(monitored, monkeypatch):
    """A hostile category value reaches the report's data but cannot close its script tag in the page."""
    hostile = world.traffic(50, seed=9, start=world.DAY0 + timedelta(days=3)).assign(merchant=HOSTILE)
    world.log(hostile)
    (ev,) = evaluation_store.evaluate(actor=world.MAYA, model=world.MODEL, start=world.DAY0 + timedelta(days=3),
                                      end=world.DAY0 + timedelta(days=4))
    at = open_page(None, username="maya")
    at.query_params["evaluation"] = str(ev.id)
    at.switch_page("pages/drift.py").run()
    at.button(key="drift_report").click().run()
    assert not at.exception
    (frame,) = at.get("iframe")
    html = frame.proto.srcdoc

    class Scripts(HTMLParser):
        count = 0

        def handle_starttag(self, tag, attrs):  # noqa: ANN001
            self.count += tag == "script"

    parser = Scripts()
    parser.feed(html)
    assert parser.count == 4 and HOSTILE not in html and "<\\/script><script>alert('x')<\\/script>" in html
    with session_scope() as s:
        stored = evaluation_store.get_evaluation(session=s, actor=world.MAYA, evaluation_id=ev.id)
    assert stored.report_path == f"reports/drift-evaluation-{ev.id}.html"


def test_a_csv_upload_is_logged_through_the_page(monitored):
    new = world.traffic(40, seed=11, start=world.DAY0 + timedelta(days=5))
    at = open_page("pages/evaluation_store.py", username="maya")
    at.get("file_uploader")[0].upload("new.csv", new.drop(columns=["is_fraud"]).to_csv(index=False).encode(),
                                      "text/csv")
    at.run()
    at.selectbox(key="es_id_col").select("tx")
    at.selectbox(key="es_ts_col").select("ts")
    at.selectbox(key="es_score_col").select("score")
    at.button(key="es_ingest").click().run()
    assert not at.exception and "40 predictions logged for v1." in texts(at)

    # Labels for an id nobody logged: refused with the id named, nothing kept.
    at.radio(key="es_upload_kind").set_value("labels").run()
    labels = pd.DataFrame({"tx": [new.tx[0], "ghost-1"], "is_fraud": [1, 0]})
    at.get("file_uploader")[0].set_value(("labels.csv", labels.to_csv(index=False).encode(), "text/csv"))
    at.run()
    at.selectbox(key="es_id_col").select("tx")
    at.selectbox(key="es_label_col").select("is_fraud")
    at.button(key="es_ingest").click().run()
    assert "no prediction of fraud has id(s) 'ghost-1'" in texts(at)
    assert len(stored_labels()) == 600, "the two labelled days only"


def test_store_view_without_windows_and_without_models(sqlite_home):
    from core.access import SYSTEM

    with session_scope() as s:
        assert evaluation_views.store_view(session=s, actor=SYSTEM) is None
    world.build()
    with session_scope() as s:
        view = evaluation_views.store_view(session=s, actor=SYSTEM)
    assert view.model == world.MODEL and view.windows.empty and view.granularity is None
    assert isinstance(view.trend, pd.DataFrame)


def test_from_a_window_of_the_store_to_its_drill_down(monitored):
    at = open_page("pages/evaluation_store.py", username="maya")
    windows = at.selectbox(key="es_window")
    assert windows.options[0] == "2026-05-06 00:00", "newest window first"
    windows.select_index(0)
    at.button(key="es_drill").click().run()
    assert not at.exception and "Drift drill-down" in texts(at)
    assert at.dataframe[0].value.iloc[0]["field"] == "card_age_days"
    with session_scope() as s:
        third = evaluation_store.list_evaluations(session=s, actor=world.MAYA, model=world.MODEL)[2]
    assert at.selectbox(key="drift_window").value == third.id, "the drill-down opened the chosen window"
