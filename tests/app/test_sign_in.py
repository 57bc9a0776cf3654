"""The sign-in page: local accounts with a password and a lockout, and the demo-mode banner."""

from __future__ import annotations

import re

from streamlit.testing.v1 import AppTest

from core.db import session_scope
from core.identity import users
from tests.app.conftest import ROOT, texts
from tests.support.people import ADMINISTRATOR
from ui.session import DEMO_BANNER


def submit(at: AppTest, username: str, password: str) -> AppTest:
    at.text_input(key="username").input(username)
    at.text_input(key="password").input(password)
    next(b for b in at.button if b.label == "Sign in").click()
    return at.run()


def test_a_local_account_is_locked_after_five_wrong_passwords_even_against_the_right_one(sqlite_home):
    with session_scope() as s:
        users.create_user(session=s, actor=ADMINISTRATOR, username="rhea", name="Rhea Okafor", email="r@x.io", roles=["risk_manager"],
                          password="s3cret-pass")
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
    at.run()
    assert not at.warning, "no demo banner outside demo mode"
    assert "Choose a persona" not in texts(at)
    for _ in range(4):
        submit(at, "rhea", "not-it")
        assert [e.value for e in at.error] == ["unknown user or wrong password"]
    submit(at, "nobody", "not-it")
    assert [e.value for e in at.error] == ["unknown user or wrong password"], "an unknown name reads the same"
    submit(at, "rhea", "not-it")
    assert re.fullmatch(r"unknown user or wrong password; too many failed sign-ins: "
                        r"locked until \d\d:\d\d:\d\d UTC", at.error[0].value)
    submit(at, "rhea", "s3cret-pass")
    assert re.fullmatch(r"too many failed sign-ins: locked until \d\d:\d\d:\d\d UTC", at.error[0].value)
    assert not at.sidebar.button, "still signed out"


def test_a_local_account_signs_in_with_its_password(sqlite_home):
    with session_scope() as s:
        users.create_user(session=s, actor=ADMINISTRATOR, username="maya", name="Maya Lindqvist", email="m@x.io", roles=["ml_engineer"],
                          password="correct horse")
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
    at.run()
    submit(at, "maya", "correct horse")
    assert at.title[0].value == "Portfolio"
    assert "Maya Lindqvist" in " ".join(m.value for m in at.sidebar.markdown)
    from sqlmodel import select

    from core.entities import AuditEvent

    with session_scope() as s:
        [event] = s.exec(select(AuditEvent).where(AuditEvent.action == "user.sign_in")).all()
    assert (event.actor, event.details["method"]) == ("maya", "password")


def test_demo_mode_says_before_and_after_sign_in_that_anyone_can_sign_in_as_anyone(demo_home):
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
    at.run()
    assert [w.value for w in at.warning] == [DEMO_BANNER]
    assert DEMO_BANNER.startswith("Demo mode: anyone can sign in as anyone")
    at.selectbox(key="persona").select("omar")
    at.button(key="sign_in").click().run()
    assert at.title[0].value == "Portfolio"
    assert DEMO_BANNER in [w.value for w in at.warning]
