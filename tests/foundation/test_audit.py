"""The audit trail is append-only and hash-chained: any edited or deleted event is pinpointed."""

from sqlalchemy import text

from core import audit, db
from core.db import session_scope
from core.identity import users
from tests.support.people import ADMINISTRATOR


def _three_events() -> None:
    with session_scope() as s:
        for name in ("ana", "ben", "cy"):
            users.create_user(session=s, actor=ADMINISTRATOR, username=name, name=name.title(), email=f"{name}@x.io", roles=["business"])


def test_intact_chain_verifies(backend):
    _three_events()
    with session_scope() as s:
        report = audit.verify(session=s)
    assert report.ok and report.events == 3


def test_editing_one_event_is_detected(backend):
    _three_events()
    with db.get_engine().begin() as conn:
        conn.execute(text("UPDATE auditevent SET actor = 'mallory' WHERE seq = 2"))
    with session_scope() as s:
        report = audit.verify(session=s)
    assert not report.ok
    assert any("event 2" in p and "edited" in p for p in report.problems)
    assert not any("event 1 " in p or "event 3 " in p for p in report.problems)


def test_deleting_an_event_is_detected(backend):
    _three_events()
    with db.get_engine().begin() as conn:
        conn.execute(text("DELETE FROM auditevent WHERE seq = 2"))
    with session_scope() as s:
        report = audit.verify(session=s)
    assert not report.ok
    assert any("2..2 are missing" in p for p in report.problems)


def test_deleting_the_last_event_is_detected(backend):
    _three_events()
    with db.get_engine().begin() as conn:
        conn.execute(text("DELETE FROM auditevent WHERE seq = 3"))
    with session_scope() as s:
        assert any("3..3 are missing" in p for p in audit.verify(session=s).problems)


def test_a_failed_action_leaves_no_event(backend):
    _three_events()
    try:
        with session_scope() as s:
            users.create_user(session=s, actor=ADMINISTRATOR, username="dan", name="Dan", email="d@x.io", roles=["admin"])
            raise RuntimeError("boom")
    except RuntimeError:
        pass
    with session_scope() as s:
        assert audit.verify(session=s).events == 3
