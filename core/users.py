"""Users, roles and passwords (scrypt with a per-user salt; never stored in clear)."""

from __future__ import annotations

import hashlib
import hmac
import os
from dataclasses import dataclass

from sqlmodel import Session, select

from core import audit
from core.access import Actor
from core.entities import ROLES, User
from core.errors import Conflict, Forbidden, InvalidInput, NotFound

_N, _R, _P = 2**14, 8, 1


@dataclass(frozen=True)
class UserRead:
    id: int
    username: str
    name: str
    email: str
    roles: tuple[str, ...]

    @property
    def actor(self) -> Actor:
        return Actor(username=self.username, roles=self.roles)


def _read(u: User) -> UserRead:
    return UserRead(id=u.id, username=u.username, name=u.name, email=u.email, roles=tuple(u.roles))


def hash_password(password: str) -> str:
    salt = os.urandom(16)
    key = hashlib.scrypt(password.encode(), salt=salt, n=_N, r=_R, p=_P, dklen=32)
    return f"scrypt${_N}${_R}${_P}${salt.hex()}${key.hex()}"


def check_password(password: str, stored: str | None) -> bool:
    if not stored or not stored.startswith("scrypt$"):
        return False
    _, n, r, p, salt, key = stored.split("$")
    candidate = hashlib.scrypt(password.encode(), salt=bytes.fromhex(salt), n=int(n), r=int(r), p=int(p), dklen=32)
    return hmac.compare_digest(candidate.hex(), key)


def create_user(*, session: Session, username: str, name: str, email: str, roles: list[str],
                password: str | None = None, actor: str = "system") -> UserRead:
    """Create a user; unknown roles and duplicate usernames are refused."""
    username = username.strip()
    if not username:
        raise InvalidInput("a username is required")
    unknown = [r for r in roles if r not in ROLES]
    if unknown or not roles:
        raise InvalidInput(f"unknown role(s) {unknown or '(none)'}; roles are {', '.join(ROLES)}")
    if session.exec(select(User).where(User.username == username)).first():
        raise Conflict(f"user {username!r} already exists")
    if password is not None and len(password) < 8:
        raise InvalidInput("a password needs at least 8 characters")
    user = User(username=username, name=name, email=email, roles=list(roles),
                password_hash=hash_password(password) if password else None)
    session.add(user)
    session.flush()
    audit.record(session, actor=actor, action="user.create", entity_type="user", entity_id=username,
                 details={"roles": list(roles)})
    return _read(user)


def get_user(*, session: Session, username: str) -> UserRead:
    user = session.exec(select(User).where(User.username == username)).first()
    if user is None or not user.active:
        raise NotFound(f"no user {username!r}")
    return _read(user)


def list_users(*, session: Session) -> list[UserRead]:
    return [_read(u) for u in session.exec(select(User).where(User.active).order_by(User.username)).all()]


def users_with_role(*, session: Session, role: str) -> list[UserRead]:
    return [u for u in list_users(session=session) if role in u.roles]


def authenticate(*, session: Session, username: str, password: str | None, demo: bool = False) -> UserRead:
    """Return the user if the password matches; in demo mode any known persona signs in without one."""
    user = session.exec(select(User).where(User.username == username)).first()
    if user is None or not user.active:
        raise Forbidden("unknown user or wrong password")
    if demo:
        return _read(user)
    if not check_password(password or "", user.password_hash):
        raise Forbidden("unknown user or wrong password")
    return _read(user)
