"""Personal access tokens for scripts, the command line and the scoring API.

A token is 32 random bytes shown once at creation; only its SHA-256 is stored and it is compared in
constant time. A token acts for its user, with the user's roles as they are when it is used, and only
within its scopes:

    cli                     the command line, as the user
    predict:ENV/MODEL       score (and log predictions) through the API
    read:ENV/MODEL          read what runs in an environment
    deploy:ENV/MODEL        deploy through the API (the governance gate still applies)

ENV and MODEL may be `*`. A scope is granted only to a user whose roles allow what it does.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import bindparam, update
from sqlmodel import Session, select

from core import audit
from core.access import Actor, require
from core.clock import now
from core.entities import Token, User
from core.errors import Conflict, Forbidden, InvalidInput, NotFound, Unauthenticated

SECRET_PREFIX = "wt_"
MAX_LIFETIME = timedelta(days=366)
LAST_USED_RESOLUTION = timedelta(seconds=60)  # a token's last use is written at most once a minute

# What each scope lets a token do, and the permission its user needs to be granted it.
SCOPE_PERMISSION = {"cli": "portfolio.view", "predict": "api.predict", "read": "deployer.view", "deploy": "deploy"}
_SCOPE = re.compile(r"^(?P<kind>predict|read|deploy):(?P<env>\*|[A-Za-z0-9_.-]{1,64})/(?P<model>\*|[A-Za-z0-9_.-]{1,128})$")
_DURATION = re.compile(r"^(?P<n>[1-9][0-9]{0,3})(?P<unit>[dh])$")


@dataclass(frozen=True)
class TokenRead:
    id: int
    username: str
    name: str
    prefix: str
    scopes: tuple[str, ...]
    created_at: datetime
    expires_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None

    @property
    def status(self) -> str:
        if self.revoked_at is not None:
            return "revoked"
        return "expired" if self.expires_at <= now() else "active"


@dataclass(frozen=True)
class TokenIdentity:
    """Who a presented token acts for, and within which scopes."""

    actor: Actor
    token_id: int
    token_name: str
    scopes: tuple[str, ...]

    def allows(self, kind: str, *, environment: str | None = None, model: str | None = None) -> bool:
        for scope in self.scopes:
            if kind == "cli":
                if scope == "cli":
                    return True
                continue
            m = _SCOPE.match(scope)
            if m and m["kind"] == kind and m["env"] in ("*", environment) and m["model"] in ("*", model):
                return True
        return False


def parse_duration(text: str) -> timedelta:
    """'90d' or '12h' as a timedelta; refused past a year."""
    m = _DURATION.match(text.strip())
    if not m:
        raise InvalidInput(f"expiry {text!r} is not a duration such as 90d or 12h")
    delta = timedelta(days=int(m["n"])) if m["unit"] == "d" else timedelta(hours=int(m["n"]))
    if delta > MAX_LIFETIME:
        raise InvalidInput(f"expiry {text!r} is longer than a year; create a new token when it expires")
    return delta


def validate_scope(scope: str) -> str:
    """A scope in canonical form, or InvalidInput naming it."""
    scope = scope.strip()
    if scope == "cli" or _SCOPE.match(scope):
        return scope
    raise InvalidInput(f"scope {scope!r} is not one of cli, predict:ENV/MODEL, read:ENV/MODEL, deploy:ENV/MODEL "
                       "(ENV and MODEL may be *)")


def _kind(scope: str) -> str:
    return scope.split(":", 1)[0]


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _read(t: Token, username: str) -> TokenRead:
    return TokenRead(id=t.id, username=username, name=t.name, prefix=t.prefix, scopes=tuple(t.scopes),
                     created_at=t.created_at, expires_at=t.expires_at, last_used_at=t.last_used_at,
                     revoked_at=t.revoked_at)


def _user(session: Session, username: str) -> User:
    user = session.exec(select(User).where(User.username == username)).first()
    if user is None or not user.active:
        raise NotFound(f"no user {username!r}")
    return user


def create_token(*, session: Session, actor: Actor, name: str, scopes: list[str],
                 expires_in: timedelta = timedelta(days=90)) -> tuple[TokenRead, str]:
    """Create a token for the acting user; returns it with its secret, which is never shown again."""
    require(actor, "tokens.manage")
    name = name.strip()
    if not re.fullmatch(r"[A-Za-z0-9_.-]{1,64}", name):
        raise InvalidInput(f"token name {name!r} must be 1-64 letters, digits, '.', '_' or '-'")
    if not scopes:
        raise InvalidInput("a token needs at least one scope (--scope)")
    if expires_in <= timedelta(0) or expires_in > MAX_LIFETIME:
        raise InvalidInput("a token expires after at most a year")
    canonical = sorted({validate_scope(s) for s in scopes})
    for scope in canonical:
        permission = SCOPE_PERMISSION[_kind(scope)]
        if not actor.has(permission):
            raise Forbidden(f"{actor.username} may not hold scope {scope!r} (it needs {permission.replace('.', ' ')})")
    user = _user(session, actor.username)
    live = session.exec(select(Token).where(Token.user_id == user.id, Token.name == name,
                                            Token.revoked_at.is_(None))).first()  # type: ignore[union-attr]
    if live is not None and live.expires_at > now():
        raise Conflict(f"{actor.username} already has an active token named {name!r}; revoke it first")
    secret = SECRET_PREFIX + base64.urlsafe_b64encode(secrets.token_bytes(32)).decode().rstrip("=")
    token = Token(user_id=user.id, name=name, prefix=secret[:10], secret_hash=_hash(secret), scopes=canonical,
                  expires_at=now() + expires_in)
    session.add(token)
    session.flush()
    audit.record(session, actor=actor.username, action="token.create", entity_type="token", entity_id=token.id,
                 details={"name": name, "scopes": canonical, "expires_at": token.expires_at.isoformat()})
    return _read(token, user.username), secret


def list_tokens(*, session: Session, actor: Actor, everyone: bool = False) -> list[TokenRead]:
    """The acting user's tokens (an administrator may list everyone's), newest first; never a secret."""
    require(actor, "tokens.manage")
    if everyone:
        require(actor, "users.manage")
    query = select(Token, User.username).join(User, User.id == Token.user_id)
    if not everyone:
        query = query.where(User.username == actor.username)
    rows = session.exec(query.order_by(Token.created_at.desc(), Token.id.desc())).all()  # type: ignore[attr-defined]
    return [_read(t, username) for t, username in rows]


def revoke_token(*, session: Session, actor: Actor, token_id: int) -> TokenRead:
    """Revoke a token: its owner or an administrator may; a revoked token never works again."""
    token = session.get(Token, token_id)
    owner = session.get(User, token.user_id) if token is not None else None
    if token is None or owner is None or (owner.username != actor.username and not actor.has("users.manage")):
        raise NotFound(f"no token {token_id} of {actor.username}")
    if token.revoked_at is None:
        token.revoked_at = now()
        session.add(token)
        audit.record(session, actor=actor.username, action="token.revoke", entity_type="token", entity_id=token.id,
                     details={"name": token.name, "owner": owner.username})
    return _read(token, owner.username)


# Built once: a token check runs on every API request, and building a statement costs more than running it.
_BY_DIGEST = (select(Token.id, Token.name, Token.secret_hash, Token.scopes, Token.expires_at, Token.last_used_at,
                     Token.revoked_at, User.username, User.roles, User.active)
              .join(User, User.id == Token.user_id, isouter=True)
              .where(Token.secret_hash == bindparam("digest")))
_TOUCH = (update(Token).where(Token.id == bindparam("token")).values(last_used_at=bindparam("at"))
          .execution_options(synchronize_session=False))


def authenticate_token(*, session: Session, secret: str) -> TokenIdentity:
    """The identity a presented secret acts for; Unauthenticated when unknown, revoked, expired or its user is gone.
    Read afresh from the database on every call (one query), so a revocation holds from the next request on."""
    if not secret or not secret.startswith(SECRET_PREFIX) or len(secret) > 128:
        raise Unauthenticated("a valid token is required")
    digest = _hash(secret)
    token = session.execute(_BY_DIGEST, {"digest": digest}).first()
    if token is None or not hmac.compare_digest(token.secret_hash, digest):
        raise Unauthenticated("a valid token is required")
    at = now()
    if token.revoked_at is not None:
        raise Unauthenticated(f"token {token.name!r} was revoked")
    if token.expires_at <= at:
        raise Unauthenticated(f"token {token.name!r} expired on {token.expires_at:%Y-%m-%d %H:%M} UTC")
    if token.username is None or not token.active:
        raise Unauthenticated(f"token {token.name!r} belongs to a user who is no longer active")
    if token.last_used_at is None or at - token.last_used_at >= LAST_USED_RESOLUTION:
        session.execute(_TOUCH, {"token": token.id, "at": at})
    return TokenIdentity(actor=Actor(username=token.username, roles=tuple(token.roles)), token_id=token.id,
                         token_name=token.name, scopes=tuple(token.scopes))


def require_scope(identity: TokenIdentity, kind: str, *, environment: str | None = None,
                  model: str | None = None) -> Actor:
    """The token's actor, if a scope covers this use and the user's roles still allow it; else Forbidden."""
    if not identity.allows(kind, environment=environment, model=model):
        where = f" {environment}/{model}" if environment else ""
        raise Forbidden(f"token {identity.token_name!r} has no {kind} scope for{where or ' the command line'}")
    require(identity.actor, SCOPE_PERMISSION[kind])
    return identity.actor
