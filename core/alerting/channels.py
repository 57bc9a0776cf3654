"""Alert channels: in-app, Slack incoming webhook, e-mail over SMTP, signed webhook.

A channel's config holds plain settings and the NAMES of the settings that hold its secrets (webhook
URLs, SMTP password, HMAC key); the values are read with `core.config.secret` at send time and never
stored, logged or shown. Every error message is scrubbed of secret values before it is recorded.
"""

from __future__ import annotations

import hashlib
import hmac
import html
import json
import re
import smtplib
import ssl
from dataclasses import dataclass, field
from email.message import EmailMessage

import httpx
from sqlmodel import Session, select

from core import audit
from core.access import Actor, require
from core.config import secret
from core.entities import Channel
from core.errors import Conflict, InvalidInput, NotFound

CHANNEL_KINDS = ("inapp", "slack", "email", "webhook")
_SECRET_KEYS = ("url_secret", "password_secret", "hmac_secret")
_KEYS = {
    "inapp": set(),
    "slack": {"url_secret", "roles"},
    "email": {"host", "port", "sender", "username", "password_secret", "starttls", "ssl", "roles"},
    "webhook": {"url_secret", "hmac_secret", "roles"},
}
_REQUIRED = {"inapp": set(), "slack": {"url_secret"}, "email": {"host", "sender"},
             "webhook": {"url_secret", "hmac_secret"}}
_SETTING_NAME = re.compile(r"[A-Z][A-Z0-9_]{2,63}")


class DeliveryError(Exception):
    """Sending failed; the message is safe to record (no secret in it)."""


class NotConfigured(DeliveryError):
    """A secret setting the channel needs is not set: retrying cannot help until someone sets it."""


@dataclass(frozen=True)
class ChannelRead:
    id: int
    name: str
    kind: str
    config: dict  # non-secret settings and secret NAMES only
    enabled: bool
    missing_settings: tuple[str, ...]  # secret settings that are not set

    @property
    def configured(self) -> bool:
        return not self.missing_settings

    @property
    def roles(self) -> tuple[str, ...]:
        """Audience roles this channel is for (empty: everyone the alert is for)."""
        return tuple(self.config.get("roles") or ())


@dataclass(frozen=True)
class Message:
    title: str
    text: str  # already worded for the audience
    severity: str
    link: str  # absolute URL of the page that explains the alert
    dashboard_url: str  # absolute URL of the project dashboard
    history: str  # recent statuses of the check as ticks, e.g. "✅✅✅❌"
    project: str
    audience: str  # business | engineering
    recipient_email: str | None = None
    details: dict = field(default_factory=dict)


def channel_read(c: Channel) -> ChannelRead:
    names = [c.config[k] for k in _SECRET_KEYS if c.config.get(k)]
    return ChannelRead(id=c.id, name=c.name, kind=c.kind, config=dict(c.config), enabled=c.enabled,
                       missing_settings=tuple(n for n in names if not secret(n)))


def _validate(kind: str, config: dict) -> dict:
    if kind not in CHANNEL_KINDS:
        raise InvalidInput(f"channel kind {kind!r} is not one of {', '.join(CHANNEL_KINDS)}")
    unknown = sorted(set(config) - _KEYS[kind])
    if unknown:
        hint = " (secrets are given by the name of the setting that holds them: url_secret, password_secret, " \
               "hmac_secret)" if set(unknown) & {"url", "password", "hmac_key", "key", "token"} else ""
        raise InvalidInput(f"unknown setting(s) {', '.join(unknown)} for a {kind} channel{hint}")
    missing = sorted(k for k in _REQUIRED[kind] if not config.get(k))
    if missing:
        raise InvalidInput(f"a {kind} channel needs {', '.join(missing)}")
    for key in _SECRET_KEYS:
        if key in config and not _SETTING_NAME.fullmatch(str(config[key])):
            raise InvalidInput(f"{key} must be the NAME of a setting (e.g. WATCHTOWER_SLACK_URL), "
                               "not the secret itself")
    if kind == "email":
        try:
            port = int(config.get("port", 25))
        except (TypeError, ValueError):
            raise InvalidInput(f"SMTP port {config.get('port')!r} is not a number") from None
        if not 0 < port < 65536:
            raise InvalidInput(f"SMTP port {port} is out of range")
        if "@" not in str(config["sender"]):
            raise InvalidInput(f"sender {config['sender']!r} is not an e-mail address")
        config = {**config, "port": port}
    from core.entities import ROLES

    bad_roles = [r for r in config.get("roles") or [] if r not in ROLES]
    if bad_roles:
        raise InvalidInput(f"unknown role(s) {', '.join(bad_roles)} for the channel audience")
    return dict(config)


def define_channel(*, session: Session, actor: Actor, name: str, kind: str, config: dict | None = None,
                   enabled: bool = True) -> ChannelRead:
    """Create a channel; secrets are referenced by setting name, never stored."""
    require(actor, "channels.manage")
    name = name.strip()
    if not name:
        raise InvalidInput("a channel needs a name")
    clean = _validate(kind, dict(config or {}))
    if session.exec(select(Channel).where(Channel.name == name)).first():
        raise Conflict(f"a channel named {name!r} already exists")
    channel = Channel(name=name, kind=kind, config=clean, enabled=enabled)
    session.add(channel)
    session.flush()
    audit.record(session, actor=actor.username, action="channel.define", entity_type="channel", entity_id=name,
                 details={"kind": kind, "config": clean})
    return channel_read(channel)


def list_channels(*, session: Session) -> list[ChannelRead]:
    return [channel_read(c) for c in session.exec(select(Channel).order_by(Channel.name)).all()]


def get_channel(*, session: Session, name: str) -> ChannelRead:
    found = session.exec(select(Channel).where(Channel.name == name)).first()
    if found is None:
        raise NotFound(f"no channel named {name!r}")
    return channel_read(found)


# --- sending ----------------------------------------------------------------------------------------

def _secret(channel: ChannelRead, key: str) -> str:
    name = channel.config.get(key)
    value = secret(name) if name else None
    if not value:
        raise NotConfigured(f"not configured: setting {name} for channel {channel.name} is not set")
    return value


def _scrub(text: str, secrets: list[str]) -> str:
    for value in secrets:
        if value:
            text = text.replace(value, "•••")
    return text


def _slack_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack_payload(message: Message) -> dict:
    """The Block Kit message: what failed, in the audience's words, the recent history and a dashboard link."""
    icon = "❌" if message.severity == "error" else "⚠️" if message.severity == "warning" else "ℹ️"
    blocks = [
        {"type": "header", "text": {"type": "plain_text", "text": f"{icon} {message.title}"[:150], "emoji": True}},
        {"type": "section", "text": {"type": "mrkdwn", "text": _slack_escape(message.text)[:2900]}},
    ]
    if message.history:
        blocks.append({"type": "context", "elements": [
            {"type": "mrkdwn", "text": f"Recent history (oldest first): {message.history}"}]})
    blocks.append({"type": "actions", "elements": [
        {"type": "button", "text": {"type": "plain_text", "text": "Open the project dashboard"},
         "url": message.dashboard_url, "action_id": "open_dashboard"}]})
    return {"text": f"{icon} {message.title}: {message.text}"[:3000], "blocks": blocks}


def webhook_body(message: Message) -> bytes:
    payload = {"event": "alert", "title": message.title, "text": message.text, "severity": message.severity,
               "project": message.project, "audience": message.audience, "history": message.history,
               "link": message.link, "dashboard": message.dashboard_url, "details": message.details}
    return json.dumps(payload, sort_keys=True, ensure_ascii=False).encode()


def signature(body: bytes, key: str) -> str:
    """The value of the X-Watchtower-Signature header: sha256=<hex HMAC-SHA256 of the raw body>."""
    return "sha256=" + hmac.new(key.encode(), body, hashlib.sha256).hexdigest()


def _post(client: httpx.Client, url: str, *, content: bytes, headers: dict, timeout: float, what: str) -> None:
    try:
        response = client.post(url, content=content, headers=headers, timeout=timeout)
    except httpx.TimeoutException:
        raise DeliveryError(f"{what} did not answer within {timeout:g}s") from None
    except httpx.ConnectError:
        raise DeliveryError(f"{what} refused the connection or is unreachable") from None
    except httpx.HTTPError as exc:
        raise DeliveryError(f"{what} failed: {type(exc).__name__}") from None
    if response.status_code >= 300:
        raise DeliveryError(f"{what} answered HTTP {response.status_code}")


def email_message(message: Message, *, sender: str) -> EmailMessage:
    mail = EmailMessage()
    mail["Subject"] = f"[Watchtower] {message.title}"
    mail["From"] = sender
    mail["To"] = message.recipient_email or ""
    history = f"\nRecent history (oldest first): {message.history}\n" if message.history else "\n"
    mail.set_content(f"{message.text}\n{history}\nOpen: {message.link}\nProject dashboard: {message.dashboard_url}\n")
    e = html.escape
    mail.add_alternative(
        f"<html><body><h2>{e(message.title)}</h2><p>{e(message.text)}</p>"
        + (f"<p>Recent history (oldest first): {e(message.history)}</p>" if message.history else "")
        + f'<p><a href="{e(message.link, quote=True)}">Open in Watchtower</a> · '
        f'<a href="{e(message.dashboard_url, quote=True)}">Project dashboard</a></p></body></html>',
        subtype="html")
    return mail


def _send_email(channel: ChannelRead, message: Message, timeout: float) -> None:
    cfg = channel.config
    if not message.recipient_email:
        raise DeliveryError("the recipient has no e-mail address")
    password = _secret(channel, "password_secret") if cfg.get("password_secret") else None
    host, port = str(cfg["host"]), int(cfg.get("port", 25))
    try:
        smtp_cls = smtplib.SMTP_SSL if cfg.get("ssl") else smtplib.SMTP
        with smtp_cls(host, port, timeout=timeout) as smtp:
            if cfg.get("starttls"):
                smtp.starttls(context=ssl.create_default_context())
            if cfg.get("username") and password:
                smtp.login(str(cfg["username"]), password)
            smtp.send_message(email_message(message, sender=str(cfg["sender"])))
    except (OSError, smtplib.SMTPException) as exc:
        raise DeliveryError(_scrub(f"SMTP {host}:{port}: {type(exc).__name__}: {exc}"[:300], [password or ""])) from None


def send(*, channel: ChannelRead, message: Message, client: httpx.Client | None = None, timeout: float = 5.0) -> None:
    """Deliver one message over one channel; raise DeliveryError (secret-free) when it did not arrive."""
    secrets: list[str] = []
    try:
        if channel.kind == "inapp":
            return  # the alert row is the in-app inbox entry
        if channel.kind == "email":
            _send_email(channel, message, timeout)
            return
        url = _secret(channel, "url_secret")
        secrets.append(url)
        own = client is None
        client = client or httpx.Client()
        try:
            if channel.kind == "slack":
                body = json.dumps(slack_payload(message), ensure_ascii=False).encode()
                _post(client, url, content=body, headers={"Content-Type": "application/json"}, timeout=timeout,
                      what=f"Slack webhook of channel {channel.name}")
            else:
                key = _secret(channel, "hmac_secret")
                secrets.append(key)
                body = webhook_body(message)
                _post(client, url, content=body, timeout=timeout, what=f"webhook of channel {channel.name}",
                      headers={"Content-Type": "application/json", "X-Watchtower-Signature": signature(body, key)})
        finally:
            if own:
                client.close()
    except DeliveryError as exc:
        raise type(exc)(_scrub(str(exc), secrets)) from None
