"""Company sign-in (OpenID Connect): map an identity provider's claim to Watchtower roles.

The portal hands over the claims of the verified ID token; everything else happens here. The first
sign-in creates the user with the mapped roles, every sign-in re-reads them (a change is audited), and a
person whose claim maps to no role is refused — with their roles removed, so no other entry point keeps
what the company took away.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from sqlmodel import Session, select

from core import audit
from core.config import secret
from core.entities import ROLES, User
from core.errors import Forbidden, InvalidInput
from core.identity import users

DEFAULT_CLAIM = "groups"


class NoAccess(Forbidden):
    """The identity is verified but none of its claim values maps to a Watchtower role."""


@dataclass(frozen=True)
class RoleMapping:
    """Which claim carries the groups, and the roles each of its values grants."""

    claim: str
    roles_by_value: dict[str, tuple[str, ...]]


def parse_role_map(text: str) -> dict[str, tuple[str, ...]]:
    """Parse "fraud-risk=risk_manager,ml-eng=ml_engineer" (a value may repeat to grant several roles)."""
    mapping: dict[str, list[str]] = {}
    for entry in re.split(r"[,;\n]", text or ""):
        entry = entry.strip()
        if not entry:
            continue
        value, sep, role = (part.strip() for part in entry.rpartition("="))
        if not sep or not value or not role:
            raise InvalidInput(f"role map entry {entry!r} is not CLAIM_VALUE=ROLE")
        if role not in ROLES:
            raise InvalidInput(f"role map entry {entry!r}: unknown role {role!r}; roles are {', '.join(ROLES)}")
        if role not in mapping.setdefault(value, []):
            mapping[value].append(role)
    return {value: tuple(roles) for value, roles in mapping.items()}


def role_mapping() -> RoleMapping:
    """The mapping from WATCHTOWER_OIDC_ROLE_CLAIM / WATCHTOWER_OIDC_ROLE_MAP (environment or secrets.toml)."""
    claim = (secret("WATCHTOWER_OIDC_ROLE_CLAIM") or DEFAULT_CLAIM).strip()
    return RoleMapping(claim=claim, roles_by_value=parse_role_map(secret("WATCHTOWER_OIDC_ROLE_MAP") or ""))


def claim_values(claims: Mapping[str, object], claim: str) -> list[str]:
    """The claim's values: a list of strings, or one string taken whole."""
    value = claims.get(claim)
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, list | tuple):
        return [str(v) for v in value]
    return [str(value)]


def roles_for(claims: Mapping[str, object], mapping: RoleMapping) -> tuple[str, ...]:
    """The Watchtower roles the claims grant, in the house order of roles."""
    granted = {role for value in claim_values(claims, mapping.claim)
               for role in mapping.roles_by_value.get(value, ())}
    return tuple(role for role in ROLES if role in granted)


def sign_in(*, session: Session, claims: Mapping[str, object], mapping: RoleMapping | None = None) -> users.UserRead:
    """Sign in the person a verified ID token describes: create or update them with the mapped roles.

    Raises NoAccess (after committing the audit and the removal of any roles they held) when the claim
    maps to no role.
    """
    mapping = mapping or role_mapping()
    subject = _subject(claims)
    roles = roles_for(claims, mapping)
    row = session.exec(select(User).where(User.oidc_subject == subject)).first()
    if row is None:
        if not roles:
            _refuse(session, _username(claims), claims, mapping)
        username = _username(claims)
        if session.exec(select(User).where(User.username == username)).first() is not None:
            raise Forbidden(f"the username {username!r} already belongs to another account; "
                            "ask an administrator to rename one of them")
        created = users.provision_company_user(session=session, username=username, name=_name(claims, username),
                                               email=str(claims.get("email") or ""), roles=list(roles))
        row = session.get(User, created.id)
        row.oidc_subject = subject
    else:
        if not row.active:
            raise Forbidden(f"the account {row.username!r} is deactivated")
        if tuple(row.roles) != roles:
            audit.record(session, actor="oidc", action="user.roles", entity_type="user", entity_id=row.username,
                         details={"before": list(row.roles), "after": list(roles),
                                  "source": f"claim {mapping.claim}"})
            row.roles = list(roles)
        row.name = _name(claims, row.name)
        row.email = str(claims.get("email") or row.email)
        if not roles:
            session.add(row)
            _refuse(session, row.username, claims, mapping)
    session.add(row)
    session.flush()
    return users.record_sign_in(session=session, username=row.username, method="oidc")


def _refuse(session: Session, username: str, claims: Mapping[str, object], mapping: RoleMapping) -> None:
    values = claim_values(claims, mapping.claim)
    audit.record(session, actor="oidc", action="user.sign_in_failed", entity_type="user", entity_id=username,
                 details={"reason": "no mapped role", "claim": mapping.claim, "values": values})
    session.commit()
    shown = ", ".join(values) if values else "none"
    raise NoAccess(f"No access: your company account is signed in, but none of its {mapping.claim} "
                   f"({shown}) gives a Watchtower role. Ask an administrator to map one of them.")


def _subject(claims: Mapping[str, object]) -> str:
    sub = str(claims.get("sub") or "").strip()
    if not sub:
        raise InvalidInput("the identity provider sent no subject (sub) claim")
    return f"{claims.get('iss') or ''}|{sub}"[:512]


def _username(claims: Mapping[str, object]) -> str:
    for key in ("preferred_username", "email", "sub"):
        value = str(claims.get(key) or "").strip()
        if value:
            return value[:64]
    raise InvalidInput("the identity provider sent no username, e-mail or subject")


def _name(claims: Mapping[str, object], fallback: str) -> str:
    return str(claims.get("name") or "").strip() or fallback
