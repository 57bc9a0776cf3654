"""Company sign-in in a real browser against a real OpenID provider on loopback (oidc-provider-mock).

The administrator's `.streamlit/secrets.toml` holds the `[auth]` section and the claim-to-role mapping; the
portal runs headless with it and no demo mode. People sign in at the provider's form, as they would at
their company's, and land on their persona's pages — or on "No access" when no group of theirs is mapped.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import threading
import urllib.request
from collections.abc import Iterator
from urllib.parse import quote

import pytest
from sqlmodel import select

from core.access import pages_for
from core.db import session_scope
from core.entities import AuditEvent
from tests.e2e.conftest import (
    ROOT,
    TIMEOUT_MS,
    Portal,
    _wait_healthy,
    assert_no_exception,
    free_port,
    main_text,
    nav_titles,
    wait_idle,
)


@pytest.fixture(scope="module")
def provider() -> Iterator[str]:
    """A real OpenID Connect provider on a free port of 127.0.0.1; any client id and secret are accepted."""
    import oidc_provider_mock
    import werkzeug.serving

    server = werkzeug.serving.make_server("127.0.0.1", 0, oidc_provider_mock.app(require_nonce=True),
                                          threaded=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(5)
        server.server_close()


def company_person(provider: str, sub: str, **claims: object) -> None:
    """What the company directory says about a person (the claims the provider will sign)."""
    request = urllib.request.Request(f"{provider}/users/{quote(sub)}", method="PUT",
                                     data=json.dumps(claims).encode(), headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as resp:
        assert resp.status == 204


@pytest.fixture(scope="module")
def company_portal(provider: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Portal]:
    """The portal with OpenID Connect configured in its secrets file, over an empty database, not in demo mode."""
    home = tmp_path_factory.mktemp("company") / "home"
    home.mkdir()
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    secrets_file = home / "secrets.toml"
    secrets_file.write_text(
        'WATCHTOWER_OIDC_ROLE_MAP = "fraud-risk=risk_manager,ml-eng=ml_engineer"\n\n'
        "[auth]\n"
        f'redirect_uri = "{url}/oauth2callback"\n'
        f'cookie_secret = "{secrets.token_hex(32)}"\n'
        'client_id = "watchtower"\n'
        f'client_secret = "{secrets.token_hex(16)}"\n'
        f'server_metadata_url = "{provider}/.well-known/openid-configuration"\n')
    env = {k: v for k, v in os.environ.items() if not k.startswith("WATCHTOWER_OIDC")}
    env.pop("WATCHTOWER_DEMO", None)
    env.update({"WATCHTOWER_HOME": str(home), "WATCHTOWER_DATABASE_URL": f"sqlite:///{home / 'watchtower.db'}",
                "WATCHTOWER_BASE_URL": url, "WATCHTOWER_SECRETS_FILE": str(secrets_file)})
    with (home / "streamlit.log").open("w") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", str(ROOT / "app.py"), "--server.port", str(port),
             "--server.address", "127.0.0.1", "--server.headless", "true", "--browser.gatherUsageStats", "false",
             "--secrets.files", str(secrets_file)],
            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            _wait_healthy(url, proc)
            yield Portal(url=url, home=home)
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()


@pytest.fixture
def page(browser, company_portal: Portal) -> Iterator[object]:  # noqa: ANN001 - playwright Browser
    context = browser.new_context(base_url=company_portal.url, viewport={"width": 1400, "height": 1000})
    context.set_default_timeout(TIMEOUT_MS)
    pg = context.new_page()
    pg.goto(company_portal.url)
    wait_idle(pg)
    yield pg
    context.close()


def sign_in_at_the_company(page, sub: str) -> None:  # noqa: ANN001
    """Click the company sign-in button, authenticate as `sub` at the provider's form, come back."""
    page.get_by_role("button", name="Sign in with your company account").click()
    page.locator("input[name='sub']").fill(sub)
    page.get_by_role("button", name="Authorize").click()
    page.wait_for_url(lambda u: "/oauth2" not in u and "/auth/" not in u)
    wait_idle(page)


@pytest.mark.e2e
def test_a_risk_manager_signs_in_with_the_company_account_and_lands_on_their_pages(page, provider):
    company_person(provider, "fiona-1", preferred_username="fiona", name="Fiona Brandt",
                   email="fiona@bank.example", groups=["everyone", "fraud-risk"])
    sign_in_at_the_company(page, "fiona-1")
    page.get_by_role("button", name="Sign out").wait_for()
    sidebar = page.get_by_test_id("stSidebar").inner_text()
    assert "Fiona Brandt" in sidebar and "Risk manager" in sidebar
    assert sorted(nav_titles(page)) == sorted(spec.title for spec in pages_for(("risk_manager",)))
    assert "Portfolio" in main_text(page)
    assert_no_exception(page)


@pytest.mark.e2e
def test_the_roles_follow_the_group_at_the_next_sign_in(page, browser, company_portal, provider):
    company_person(provider, "gita-1", preferred_username="gita", name="Gita Rao", groups=["fraud-risk"])
    sign_in_at_the_company(page, "gita-1")
    assert "Risk manager" in page.get_by_test_id("stSidebar").inner_text()
    # She moves to the ML engineering team; her next sign-in (a new visit) reads the new group.
    company_person(provider, "gita-1", preferred_username="gita", name="Gita Rao", groups=["ml-eng"])
    other = browser.new_context(base_url=company_portal.url)
    other.set_default_timeout(TIMEOUT_MS)
    again = other.new_page()
    again.goto(company_portal.url)
    wait_idle(again)
    sign_in_at_the_company(again, "gita-1")
    again.get_by_role("button", name="Sign out").wait_for()
    assert "ML engineer" in again.get_by_test_id("stSidebar").inner_text()
    assert sorted(nav_titles(again)) == sorted(spec.title for spec in pages_for(("ml_engineer",)))
    other.close()
    with session_scope(f"sqlite:///{company_portal.home / 'watchtower.db'}") as s:
        changes = s.exec(select(AuditEvent).where(AuditEvent.action == "user.roles",
                                                  AuditEvent.entity_id == "gita")).all()
        assert [(e.details["before"], e.details["after"]) for e in changes] == [(["risk_manager"], ["ml_engineer"])]


@pytest.mark.e2e
def test_a_person_without_a_mapped_group_sees_no_access_and_no_pages(page, provider):
    company_person(provider, "hugo-1", preferred_username="hugo", name="Hugo Meyer", groups=["contractors"])
    sign_in_at_the_company(page, "hugo-1")
    page.get_by_text("No access", exact=True).first.wait_for()
    text = page.get_by_test_id("stApp").inner_text()
    assert "none of its groups (contractors) gives a Watchtower role" in text
    assert page.get_by_test_id("stSidebarNavLink").count() == 0
    assert "Portfolio" not in text
    assert_no_exception(page)


def sign_out_everywhere(page) -> None:  # noqa: ANN001
    """Sign out of the portal; the provider asks to end its session too, then sends the person back."""
    wait_idle(page)  # signing out from a page at rest once lost the provider's redirect: try exactly that
    page.get_by_role("button", name="Sign out").click()
    page.get_by_role("button", name="End session").click()
    page.get_by_role("button", name="Sign in with your company account").wait_for()
    wait_idle(page)


@pytest.mark.e2e
def test_signing_out_forgets_the_company_sign_in_and_is_audited(page, company_portal, provider):
    company_person(provider, "ida-1", preferred_username="ida", name="Ida Berg", groups=["ml-eng"])
    sign_in_at_the_company(page, "ida-1")
    page.get_by_role("button", name="Sign out").wait_for()
    sign_out_everywhere(page)
    assert "Ida Berg" not in page.get_by_test_id("stApp").inner_text()
    assert page.get_by_test_id("stSidebarNavLink").count() == 0
    page.reload()  # a new visit does not sign straight back in
    wait_idle(page)
    page.get_by_role("button", name="Sign in with your company account").wait_for()
    with session_scope(f"sqlite:///{company_portal.home / 'watchtower.db'}") as s:
        actions = [e.action for e in s.exec(select(AuditEvent).where(AuditEvent.entity_id == "ida")
                                            .order_by(AuditEvent.seq)).all()]
    assert actions == ["user.create", "user.sign_in", "user.sign_out"]
