"""Users, roles and passwords (scrypt with a per-user salt; never stored in clear)."""

from __future__ import annotations

import functools
import hashlib
import hmac
import os
import re
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import text
from sqlmodel import Session, select

from core import audit, clock
from core.access import Actor, require
from core.config import get_settings
from core.entities import ROLES, User
from core.errors import Conflict, Forbidden, InvalidInput, NotFound

_N, _R, _P = 2**14, 8, 1
_BOOTSTRAP_LOCK = 0x5754_0001  # advisory lock key of the first-administrator bootstrap
# Lockout: after LOCKOUT_AFTER consecutive failures a password sign-in is refused for LOCKOUT_SECONDS,
# doubling with every further failure up to LOCKOUT_CAP_SECONDS.
LOCKOUT_AFTER = 5
LOCKOUT_SECONDS = 30
LOCKOUT_CAP_SECONDS = 15 * 60
REFUSED = "unknown user or wrong password"


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


def _validated(session: Session, *, username: str, roles: list[str], password: str | None) -> str:
    username = username.strip()
    if not username or len(username) > 64 or re.search(r"[\s\x00-\x1f]", username):
        raise InvalidInput(f"username {username!r} must be 1-64 characters without spaces")
    unknown = [r for r in roles if r not in ROLES]
    if unknown or not roles:
        raise InvalidInput(f"unknown role(s) {unknown or '(none)'}; roles are {', '.join(ROLES)}")
    if session.exec(select(User).where(User.username == username)).first():
        raise Conflict(f"user {username!r} already exists")
    if password is not None and len(password) < 8:
        raise InvalidInput("a password needs at least 8 characters")
    return username


def _add_user(session: Session, *, username: str, name: str, email: str, roles: list[str],
              password: str | None) -> User:
    user = User(username=username, name=name, email=email, roles=list(dict.fromkeys(roles)),
                password_hash=hash_password(password) if password else None)
    session.add(user)
    session.flush()
    return user


def create_user(*, session: Session, actor: Actor, username: str, name: str, email: str, roles: list[str],
                password: str | None = None) -> UserRead:
    """Create a user (administrators only); unknown roles and duplicate usernames are refused. Audited."""
    require(actor, "users.manage")
    return _create(session, by=actor.username, username=username, name=name, email=email, roles=roles,
                   password=password)


def provision_company_user(*, session: Session, username: str, name: str, email: str,
                           roles: list[str]) -> UserRead:
    """Create a person at their first company sign-in, with the roles the identity provider's claim maps to.

    No administrator acts here: the provider vouches for the person, so the event is audited as by "oidc".
    The account has no local password.
    """
    return _create(session, by="oidc", username=username, name=name, email=email, roles=roles, password=None,
                   details={"source": "company sign-in"})


def _create(session: Session, *, by: str, username: str, name: str, email: str, roles: list[str],
            password: str | None, details: dict | None = None) -> UserRead:
    username = _validated(session, username=username, roles=roles, password=password)
    user = _add_user(session, username=username, name=name, email=email, roles=roles, password=password)
    audit.record(session, actor=by, action="user.create", entity_type="user", entity_id=username,
                 details={"roles": list(user.roles), **(details or {})})
    return _read(user)


def create_first_admin(*, session: Session, username: str, password: str, name: str = "Administrator",
                       email: str = "") -> UserRead:
    """Create the first administrator; refused once any user exists, even when two processes race for it."""
    if session.get_bind().dialect.name == "postgresql":
        # Held until the unit of work ends: a second bootstrap waits here, then sees the first one's user.
        session.execute(text("select pg_advisory_xact_lock(:k)"), {"k": _BOOTSTRAP_LOCK})
    if session.exec(select(User.id).limit(1)).first() is not None:
        raise Conflict("an administrator already exists: `watchtower user create --as ADMIN` adds users")
    if password is None or not password.strip():
        raise InvalidInput("the first administrator needs a password")
    username = _validated(session, username=username, roles=["admin"], password=password)
    user = _add_user(session, username=username, name=name, email=email or f"{username}@localhost",
                     roles=["admin"], password=password)
    # On SQLite the insert above holds the database's write lock, so the count is of committed rows plus ours.
    if len(session.exec(select(User.id)).all()) != 1:
        raise Conflict("an administrator already exists: `watchtower user create --as ADMIN` adds users")
    audit.record(session, actor=username, action="user.create", entity_type="user", entity_id=username,
                 details={"roles": ["admin"], "first_administrator": True})
    return _read(user)


def _managed(session: Session, username: str) -> User:
    user = session.exec(select(User).where(User.username == username)).first()
    if user is None or not user.active:
        raise NotFound(f"no user {username!r}")
    return user


def _other_admins(session: Session, user: User) -> int:
    return sum(1 for u in session.exec(select(User).where(User.active, User.id != user.id)).all()
               if "admin" in u.roles)


def change_roles(*, session: Session, actor: Actor, username: str, add: list[str] | tuple[str, ...] = (),
                 remove: list[str] | tuple[str, ...] = ()) -> UserRead:
    """Add and remove roles of a user (administrators only); the last administrator keeps the role. Audited."""
    require(actor, "users.manage")
    unknown = [r for r in (*add, *remove) if r not in ROLES]
    if unknown:
        raise InvalidInput(f"unknown role(s) {unknown}; roles are {', '.join(ROLES)}")
    both = set(add) & set(remove)
    if both:
        raise InvalidInput(f"role(s) {sorted(both)} both added and removed")
    if not add and not remove:
        raise InvalidInput("nothing to change: give --add ROLE or --remove ROLE")
    user = _managed(session, username)
    before = list(user.roles)
    after = [r for r in dict.fromkeys([*before, *add]) if r not in set(remove)]
    if "admin" in before and "admin" not in after and _other_admins(session, user) == 0:
        raise Conflict(f"{username} is the last administrator; make someone else an administrator first")
    if not after:
        raise InvalidInput(f"{username} would hold no role; deactivate the user instead")
    if after != before:
        user.roles = after
        session.add(user)
        audit.record(session, actor=actor.username, action="user.roles", entity_type="user", entity_id=username,
                     details={"before": before, "after": after})
    return _read(user)


def deactivate_user(*, session: Session, actor: Actor, username: str) -> UserRead:
    """Deactivate a user (administrators only): they no longer sign in, and their tokens stop working. Audited."""
    require(actor, "users.manage")
    user = _managed(session, username)
    if "admin" in user.roles and _other_admins(session, user) == 0:
        raise Conflict(f"{username} is the last administrator and cannot be deactivated")
    user.active = False
    session.add(user)
    audit.record(session, actor=actor.username, action="user.deactivate", entity_type="user", entity_id=username,
                 details={"roles": list(user.roles)})
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
    """Sign a person in to the portal: verify them (see `verify_credentials`) and audit the sign-in."""
    user = verify_credentials(session=session, username=username, password=password, demo=demo)
    return record_sign_in(session=session, username=user.username, method="demo" if demo else "password")


def verify_credentials(*, session: Session, username: str, password: str | None, demo: bool = False) -> UserRead:
    """Return the user if the password matches; in demo mode any known persona passes without one.

    Every refusal is audited: it (and the failure count it raises) is committed before Forbidden is raised,
    so the caller's rollback cannot erase it. The message never tells an unknown username from a wrong
    password. A success is not audited here: the portal records it as a sign-in (`authenticate`), and the
    command line, which proves who runs each command, audits what the command does under that name.
    """
    username = (username or "").strip()
    user = session.exec(select(User).where(User.username == username)).first() if username else None
    if demo:
        if not get_settings().demo:
            _refuse(session, username, reason="password-less sign-in outside demo mode",
                    message="signing in without a password is only possible in demo mode")
        if user is None or not user.active:
            _refuse(session, username, reason="unknown user", message=REFUSED)
        return _read(user)
    at = clock.now()
    if user is None or not user.active:
        check_password(password or "", _dummy_hash())  # the same work as for a real account
        _refuse(session, username, reason="unknown user", message=REFUSED)
    if user.locked_until is not None and at < user.locked_until:
        _refuse(session, username, reason="locked", message=_locked_message(user))
    if not check_password(password or "", user.password_hash):
        user.failed_sign_ins += 1
        message = REFUSED
        if user.failed_sign_ins >= LOCKOUT_AFTER:
            seconds = min(LOCKOUT_SECONDS * 2 ** (user.failed_sign_ins - LOCKOUT_AFTER), LOCKOUT_CAP_SECONDS)
            user.locked_until = at + timedelta(seconds=seconds)
            message = f"{REFUSED}; {_locked_message(user)}"
        session.add(user)
        _refuse(session, username, reason="wrong password", message=message,
                details={"failures": user.failed_sign_ins})
    user.failed_sign_ins = 0
    user.locked_until = None
    session.add(user)
    return _read(user)


def record_sign_out(*, session: Session, username: str) -> None:
    """Audit that a person signed out of the portal."""
    audit.record(session, actor=username, action="user.sign_out", entity_type="user", entity_id=username)


def record_sign_in(*, session: Session, username: str, method: str) -> UserRead:
    """Audit a verified sign-in ("password", "demo" or "oidc") and return the user as signed in."""
    user = session.exec(select(User).where(User.username == username)).one()
    audit.record(session, actor=user.username, action="user.sign_in", entity_type="user", entity_id=user.username,
                 details={"method": method, "roles": list(user.roles)})
    return _read(user)


def _locked_message(user: User) -> str:
    return f"too many failed sign-ins: locked until {user.locked_until:%H:%M:%S} UTC"


def _refuse(session: Session, username: str, *, reason: str, message: str, details: dict | None = None) -> None:
    audit.record(session, actor="anonymous", action="user.sign_in_failed", entity_type="user",
                 entity_id=username[:64], details={"reason": reason, **(details or {})})
    session.commit()
    raise Forbidden(message)


@functools.cache
def _dummy_hash() -> str:
    return hash_password(os.urandom(12).hex())
