"""Company sign-in: a claim of the verified ID token decides the roles, on every sign-in."""

from __future__ import annotations

import pytest
from sqlmodel import select

from core import audit
from core.db import session_scope
from core.entities import AuditEvent, User
from core.errors import Forbidden, InvalidInput
from core.identity import oidc, users
from tests.support.people import ADMINISTRATOR

ISSUER = "https://login.bank.example"
MAPPING = oidc.RoleMapping(claim="groups", roles_by_value=oidc.parse_role_map(
    "fraud-risk=risk_manager, ml-eng=ml_engineer, platform=it_ops, platform=ml_engineer"))


def claims(sub: str = "u-101", groups: list[str] | str | None = None, **extra: object) -> dict:
    out: dict = {"iss": ISSUER, "sub": sub, "preferred_username": "rhea.okafor", "name": "Rhea Okafor",
                 "email": "rhea@bank.example", **extra}
    if groups is not None:
        out["groups"] = groups
    return out


def sign_in(c: dict, mapping: oidc.RoleMapping = MAPPING) -> users.UserRead:
    with session_scope() as s:
        return oidc.sign_in(session=s, claims=c, mapping=mapping)


def events(action: str) -> list[AuditEvent]:
    with session_scope() as s:
        return list(s.exec(select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.seq)).all())


def test_the_role_map_reads_like_the_setting_and_names_a_bad_entry():
    assert oidc.parse_role_map("fraud-risk=risk_manager,ml-eng=ml_engineer") == {
        "fraud-risk": ("risk_manager",), "ml-eng": ("ml_engineer",)}
    # An LDAP-style value keeps its own "=": the role is what follows the last one.
    assert oidc.parse_role_map("ou=Groups=admin") == {"ou=Groups": ("admin",)}
    with pytest.raises(InvalidInput, match="'fraud-risk=wizard': unknown role 'wizard'"):
        oidc.parse_role_map("fraud-risk=wizard")
    with pytest.raises(InvalidInput, match="'fraud-risk' is not CLAIM_VALUE=ROLE"):
        oidc.parse_role_map("fraud-risk")


def test_the_mapping_comes_from_the_environment_or_the_secrets_file(tmp_path, monkeypatch):
    secrets = tmp_path / "secrets.toml"
    secrets.write_text('WATCHTOWER_OIDC_ROLE_MAP = "fraud-risk=risk_manager"\n'
                       'WATCHTOWER_OIDC_ROLE_CLAIM = "roles"\n[auth]\nredirect_uri = "x"\n')
    monkeypatch.setenv("WATCHTOWER_SECRETS_FILE", str(secrets))
    monkeypatch.delenv("WATCHTOWER_OIDC_ROLE_MAP", raising=False)
    monkeypatch.delenv("WATCHTOWER_OIDC_ROLE_CLAIM", raising=False)
    assert oidc.role_mapping() == oidc.RoleMapping(claim="roles", roles_by_value={"fraud-risk": ("risk_manager",)})
    monkeypatch.setenv("WATCHTOWER_OIDC_ROLE_MAP", "ml-eng=ml_engineer")
    monkeypatch.setenv("WATCHTOWER_OIDC_ROLE_CLAIM", "groups")
    assert oidc.role_mapping() == oidc.RoleMapping(claim="groups", roles_by_value={"ml-eng": ("ml_engineer",)})


def test_roles_from_a_list_or_a_single_value_in_the_house_order():
    assert oidc.roles_for(claims(groups=["platform", "everyone", "fraud-risk"]), MAPPING) == (
        "ml_engineer", "risk_manager", "it_ops")
    assert oidc.roles_for(claims(groups="fraud-risk"), MAPPING) == ("risk_manager",)
    assert oidc.roles_for(claims(groups=["Fraud-Risk"]), MAPPING) == (), "values match exactly"
    assert oidc.roles_for(claims(), MAPPING) == ()
    roles_claim = oidc.RoleMapping(claim="roles", roles_by_value={"fraud-risk": ("risk_manager",)})
    assert oidc.roles_for(claims(groups=["fraud-risk"]), roles_claim) == (), "only the configured claim counts"


def test_first_sign_in_creates_the_user_and_every_sign_in_re_reads_the_roles(backend):
    first = sign_in(claims(groups=["fraud-risk"]))
    assert (first.username, first.name, first.email, first.roles) == (
        "rhea.okafor", "Rhea Okafor", "rhea@bank.example", ("risk_manager",))
    again = sign_in(claims(groups=["fraud-risk"]))
    assert again.id == first.id and again.roles == ("risk_manager",)
    assert events("user.roles") == [], "unchanged roles are not an event"

    moved = sign_in(claims(groups=["ml-eng", "platform"]))
    assert moved.roles == ("ml_engineer", "it_ops")
    with session_scope() as s:
        assert users.get_user(session=s, username="rhea.okafor").roles == ("ml_engineer", "it_ops")
    [change] = events("user.roles")
    assert (change.actor, change.entity_id, change.details) == (
        "oidc", "rhea.okafor", {"before": ["risk_manager"], "after": ["ml_engineer", "it_ops"],
                                "source": "claim groups"})
    assert [e.details["method"] for e in events("user.sign_in")] == ["oidc"] * 3
    assert [e.entity_id for e in events("user.create")] == ["rhea.okafor"]
    with session_scope() as s:
        assert audit.verify(session=s).ok


def test_no_mapped_group_means_no_access_and_nothing_created(backend):
    with pytest.raises(oidc.NoAccess, match=r"No access: .* none of its groups \(everyone, contractors\)"):
        sign_in(claims(groups=["everyone", "contractors"]))
    with pytest.raises(oidc.NoAccess, match=r"none of its groups \(none\)"):
        sign_in(claims())
    with session_scope() as s:
        assert users.list_users(session=s) == []
    assert [e.details["reason"] for e in events("user.sign_in_failed")] == ["no mapped role"] * 2


def test_a_person_whose_groups_were_taken_away_loses_their_roles(backend):
    sign_in(claims(groups=["fraud-risk"]))
    with pytest.raises(oidc.NoAccess):
        sign_in(claims(groups=["everyone"]))
    with session_scope() as s:
        assert users.get_user(session=s, username="rhea.okafor").roles == ()
    [change] = events("user.roles")
    assert change.details["after"] == []
    assert sign_in(claims(groups=["fraud-risk"])).roles == ("risk_manager",), "given back, signs in again"


def test_the_identity_is_the_subject_not_the_username(backend):
    """A company account never takes over a local account that happens to carry the same username."""
    with session_scope() as s:
        users.create_user(session=s, actor=ADMINISTRATOR, username="rhea.okafor", name="Local Rhea", email="l@x.io", roles=["admin"],
                          password="s3cret-pass")
    with pytest.raises(Forbidden, match="already belongs to another account"):
        sign_in(claims(groups=["fraud-risk"]))
    with session_scope() as s:
        row = s.exec(select(User).where(User.username == "rhea.okafor")).one()
        assert (row.roles, row.oidc_subject) == (["admin"], None)
    # Same username from another issuer is a different person too.
    other = sign_in(claims(sub="u-7", groups=["ml-eng"], preferred_username="maya"))
    with pytest.raises(Forbidden, match="already belongs"):
        sign_in({**claims(sub="u-7", groups=["ml-eng"], preferred_username="maya"), "iss": "https://evil.example"})
    assert other.roles == ("ml_engineer",)


def test_a_company_account_cannot_sign_in_with_a_password(backend):
    sign_in(claims(groups=["fraud-risk"]))
    with session_scope() as s, pytest.raises(Forbidden, match="unknown user or wrong password"):
        users.authenticate(session=s, username="rhea.okafor", password="")


def test_an_id_token_without_subject_is_refused(backend):
    with pytest.raises(InvalidInput, match="no subject"):
        sign_in({"iss": ISSUER, "groups": ["fraud-risk"]})
