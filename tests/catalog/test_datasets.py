"""Datasets: versions from CSV files and SQL queries, with schema, fingerprint, profile and schema-change flags."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import create_engine, text
from sqlmodel import select

from core import artifacts, catalog
from core.alerting import alerts
from core.catalog import datasets
from core.db import session_scope
from core.entities import AuditEvent, Dataset, DatasetVersion, Project
from core.errors import Conflict, Forbidden, InvalidInput
from core.identity import users
from core.projects import projects
from tests.support.people import ADMINISTRATOR


def _people() -> dict[str, users.UserRead]:
    with session_scope() as s:
        return {u: users.create_user(session=s, actor=ADMINISTRATOR, username=u, name=u.title(), email=f"{u}@bank.example", roles=[r])
                for u, r in (("dario", "data_scientist"), ("maya", "ml_engineer"), ("bianca", "business"))}


def _reviews(n: int = 40, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({
        "review_id": np.arange(n),
        "stars": rng.integers(1, 6, n).astype(float),
        "channel": rng.choice(["app", "web", "store"], n),
        "posted_on": pd.date_range("2026-01-01", periods=n, freq="D").strftime("%Y-%m-%d"),
        "churned": rng.integers(0, 2, n),
    })


def _csv(tmp_path: Path, frame: pd.DataFrame, name: str = "reviews.csv") -> Path:
    path = tmp_path / name
    frame.to_csv(path, index=False)
    return path


def _audit_count() -> int:
    with session_scope() as s:
        return len(s.exec(select(AuditEvent.id)).all())


def test_a_csv_becomes_a_cataloged_version_with_schema_fingerprint_and_profile(backend, tmp_path):
    people = _people()
    frame = _reviews()
    frame.loc[:9, "stars"] = np.nan  # a quarter of the ratings are missing
    path = _csv(tmp_path, frame)

    with session_scope() as s:
        v = datasets.register_dataset(session=s, actor=people["dario"].actor, name="customer-reviews", csv_path=path,
                                      description="Customer reviews with star ratings", tags=["text", "Reviews"])

    assert (v.dataset, v.number, v.rows, v.flagged) == ("customer-reviews", 1, 40, False)
    assert v.columns == [{"name": "review_id", "type": "numeric"}, {"name": "stars", "type": "numeric"},
                         {"name": "channel", "type": "categorical"}, {"name": "posted_on", "type": "datetime"},
                         {"name": "churned", "type": "numeric"}]
    assert v.fingerprint == artifacts.fingerprint_frame(pd.read_csv(path))
    profile = {p["name"]: p for p in v.profile}
    assert profile["stars"]["missing_rate"] == 0.25
    stars = frame["stars"].dropna()
    assert profile["stars"]["summary"]["median"] == pytest.approx(stars.median())
    assert sum(profile["stars"]["summary"]["histogram"]["counts"]) == len(stars)
    assert profile["channel"]["summary"]["distinct"] == 3
    assert sum(t["share"] for t in profile["channel"]["summary"]["top"]) == pytest.approx(1.0)
    assert profile["posted_on"]["summary"] == {"min": "2026-01-01T00:00:00", "max": "2026-02-09T00:00:00"}

    with session_scope() as s:
        stored = datasets.load_frame(session=s, name="customer-reviews")
        entry = catalog.get_component(session=s, kind="dataset", name="customer-reviews")
    pd.testing.assert_frame_equal(stored, pd.read_csv(path))
    assert entry.owner == "dario" and entry.tags == ("text", "reviews")
    assert entry.details["rows"] == 40 and entry.details["version"] == 1
    assert entry.details["schema"]["posted_on"] == "datetime"


def test_a_sql_query_on_the_watchtower_database_or_another_one_is_a_dataset(backend, tmp_path):
    people = _people()
    other = tmp_path / "warehouse.db"
    engine = create_engine(f"sqlite:///{other}")
    with engine.begin() as conn:
        conn.execute(text("create table sales (region text, amount real)"))
        conn.execute(text("insert into sales values ('north', 10.5), ('south', 7.0), ('north', 3.25)"))
    engine.dispose()

    with session_scope() as s:
        own = datasets.register_dataset(session=s, actor=people["maya"].actor, name="user-actions",
                                        query="select seq, action, actor from auditevent order by seq")
        ext = datasets.register_dataset(session=s, actor=people["maya"].actor, name="sales",
                                        query="select region, amount from sales", database_url=f"sqlite:///{other}")

    assert own.rows == 3 and own.column_names == ["seq", "action", "actor"]  # the three user.create events
    assert ext.rows == 3 and ext.columns[1] == {"name": "amount", "type": "numeric"}
    with session_scope() as s:
        info = datasets.get_dataset(session=s, name="sales")
        assert info.source_kind == "sql" and info.connection == f"sqlite:///{other}"
        assert datasets.get_dataset(session=s, name="user-actions").connection.startswith("Watchtower database")


def test_a_schema_change_is_flagged_until_accepted_and_refused_when_strict(backend, tmp_path):
    people = _people()
    dario = people["dario"].actor
    with session_scope() as s:
        datasets.register_dataset(session=s, actor=dario, name="customer-reviews", csv_path=_csv(tmp_path, _reviews()))

    changed = _reviews(seed=1).drop(columns=["posted_on"]).assign(stars=lambda f: f["stars"].map("{:.0f} stars".format))
    path = _csv(tmp_path, changed, "reviews-v2.csv")
    before = _audit_count()
    with session_scope() as s, pytest.raises(InvalidInput, match=r"v2 changes the schema \(removed posted_on; "
                                                                 r"stars numeric → categorical\).*strict"):
        datasets.register_dataset(session=s, actor=dario, name="customer-reviews", csv_path=path, strict=True)
    assert _audit_count() == before
    with session_scope() as s:
        assert len(s.exec(select(DatasetVersion)).all()) == 1

    with session_scope() as s:
        v2 = datasets.register_dataset(session=s, actor=dario, name="customer-reviews", csv_path=path)
    assert v2.flagged and v2.schema_changes == {"removed": ["posted_on"],
                                                "changed": [{"column": "stars", "from": "numeric", "to": "categorical"}]}
    assert "v2 is flagged" in v2.warning
    with session_scope() as s:
        assert catalog.get_component(session=s, kind="dataset", name="customer-reviews").trust.status == "flagged"
        with pytest.raises(Conflict, match="customer-reviews v2 changed schema .*removed posted_on.*not accepted"):
            datasets.require_usable(session=s, name="customer-reviews")
        assert datasets.require_usable(session=s, name="customer-reviews", version=1).number == 1

    with session_scope() as s:
        datasets.accept_version(session=s, actor=people["maya"].actor, name="customer-reviews", version=2)
    with session_scope() as s:
        usable = datasets.require_usable(session=s, name="customer-reviews")
    assert usable.number == 2 and usable.accepted_by == "maya" and not usable.flagged


def test_a_new_version_warns_the_projects_that_depend_on_the_dataset(backend, tmp_path):
    people = _people()
    with session_scope() as s:
        datasets.register_dataset(session=s, actor=people["dario"].actor, name="customer-reviews",
                                  csv_path=_csv(tmp_path, _reviews()))
        projects.create_project(session=s, actor=people["maya"].actor, key="CHURN", name="Churn", owner="maya")
        catalog.record_use(session=s, actor=people["maya"].actor, kind="dataset", name="customer-reviews",
                           project_key="CHURN", how="training data of churn-model")
    with session_scope() as s:
        v2 = datasets.register_dataset(session=s, actor=people["dario"].actor, name="customer-reviews",
                                       csv_path=_csv(tmp_path, _reviews(seed=2), "more.csv"))
    assert not v2.flagged
    assert "used by other projects: CHURN (owner maya, training data of churn-model)" in v2.warning
    with session_scope() as s:
        assert [a.title for a in alerts.inbox(session=s, username="maya")] == [
            "Dataset customer-reviews changed (new version v2)"]


@pytest.mark.parametrize("content, message", [
    ("", "is not a readable CSV"),
    ("a,b\n", "has no rows"),
    ("a,a\n1,2\n", "duplicate or unnamed columns"),
])
def test_unreadable_or_empty_files_are_refused_and_nothing_is_written(backend, tmp_path, content, message):
    people = _people()
    path = tmp_path / "bad.csv"
    path.write_text(content)
    before = _audit_count()
    with session_scope() as s, pytest.raises(InvalidInput, match=message):
        datasets.register_dataset(session=s, actor=people["dario"].actor, name="bad", csv_path=path)
    with session_scope() as s:
        assert s.exec(select(Dataset)).all() == []
    assert _audit_count() == before


def test_bad_sources_are_refused_with_their_reason(backend, tmp_path):
    people = _people()
    dario = people["dario"].actor
    with session_scope() as s:
        projects.create_project(session=s, actor=people["maya"].actor, key="CHURN", name="Churn")
    with session_scope() as s:
        with pytest.raises(InvalidInput, match="must be a SELECT"):
            datasets.register_dataset(session=s, actor=dario, name="x", query="delete from project")
        with pytest.raises(InvalidInput, match="the dataset query failed: .*no_such_table"):
            datasets.register_dataset(session=s, actor=dario, name="x", query="select * from no_such_table")
        with pytest.raises(InvalidInput, match="either a CSV file or a SQL query"):
            datasets.register_dataset(session=s, actor=dario, name="x")
        with pytest.raises(InvalidInput, match="does not exist"):
            datasets.register_dataset(session=s, actor=dario, name="x", csv_path=tmp_path / "missing.csv")
        with pytest.raises(Forbidden, match="bianca may not dataset register"):
            datasets.register_dataset(session=s, actor=people["bianca"].actor, name="x", csv_path=tmp_path)
    with session_scope() as s:
        assert s.exec(select(Project.key)).all() == ["CHURN"]
        assert s.exec(select(Dataset)).all() == []


def test_the_same_content_twice_is_not_a_new_version(backend, tmp_path):
    people = _people()
    path = _csv(tmp_path, _reviews())
    with session_scope() as s:
        datasets.register_dataset(session=s, actor=people["dario"].actor, name="customer-reviews", csv_path=path)
    with session_scope() as s, pytest.raises(Conflict, match="unchanged since v1"):
        datasets.register_dataset(session=s, actor=people["dario"].actor, name="customer-reviews", csv_path=path)


def test_the_command_line_flags_a_schema_change_and_refuses_it_when_strict(backend, tmp_path, monkeypatch):
    from click.testing import CliRunner

    from core.cli import main

    _people()
    monkeypatch.setenv("WATCHTOWER_DEMO", "1")
    cli = CliRunner()
    first = cli.invoke(main, ["dataset", "register", "customer-reviews", "--csv", str(_csv(tmp_path, _reviews())),
                              "--tag", "text", "--as", "dario"])
    assert first.exit_code == 0 and "dataset customer-reviews v1: 40 rows, 5 columns" in first.output
    changed = _csv(tmp_path, _reviews(seed=3).drop(columns=["channel"]), "v2.csv")
    strict = cli.invoke(main, ["dataset", "register", "customer-reviews", "--csv", str(changed), "--strict",
                               "--as", "dario"])
    assert strict.exit_code == 1
    assert strict.output.strip() == ("error: dataset customer-reviews v2 changes the schema (removed channel); "
                                     "refused in strict mode")
    flagged = cli.invoke(main, ["dataset", "register", "customer-reviews", "--csv", str(changed), "--as", "dario"])
    assert flagged.exit_code == 0 and "(FLAGGED: schema changed)" in flagged.output
    shown = cli.invoke(main, ["dataset", "show", "customer-reviews", "--as", "maya"])
    assert "FLAGGED: removed channel" in shown.output and "stars" in shown.output
