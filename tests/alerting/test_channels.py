"""Channels deliver over real protocols to receivers on 127.0.0.1; secrets stay in settings."""

from __future__ import annotations

import hashlib
import hmac
import json

import pytest
from sqlmodel import select

from core.access import SYSTEM, Actor
from core.alerting import channels
from core.db import session_scope
from core.entities import AuditEvent, Channel
from core.errors import Forbidden, InvalidInput
from tests.support.receivers import free_port

SLACK_TOKEN_PATH = "/services/T000/B000/XXXXsecretXXXX"
HMAC_KEY = "k3y-that-must-stay-private"


def _message(**kw) -> channels.Message:
    base = dict(title="Fraud missed amount needs attention", text="Fraud missed this week: 12,500 EUR (limit 5,000)",
                severity="error", link="http://portal.example/project?project=FRAUD",
                dashboard_url="http://portal.example/project?project=FRAUD", history="✅✅✅❌", project="FRAUD",
                audience="business", recipient_email="bianca@bank.example", details={"check": "fraud missed"})
    return channels.Message(**{**base, **kw})


def _define(name, kind, config):
    with session_scope() as s:
        return channels.define_channel(session=s, actor=SYSTEM, name=name, kind=kind, config=config)


def test_slack_receives_a_block_kit_message_with_history_and_dashboard_link(backend, receiver, monkeypatch):
    monkeypatch.setenv("WT_SLACK_FRAUD", receiver.url(SLACK_TOKEN_PATH))
    channel = _define("#fraud-alerts", "slack", {"url_secret": "WT_SLACK_FRAUD"})
    channels.send(channel=channel, message=_message())
    (post,) = receiver.to(SLACK_TOKEN_PATH)
    blocks = post.json["blocks"]
    assert blocks[0]["type"] == "header" and "Fraud missed amount needs attention" in blocks[0]["text"]["text"]
    assert blocks[1]["text"]["text"] == "Fraud missed this week: 12,500 EUR (limit 5,000)"
    assert "✅✅✅❌" in blocks[2]["elements"][0]["text"]
    assert blocks[3]["elements"][0]["url"] == "http://portal.example/project?project=FRAUD"
    assert post.json["text"].startswith("❌ Fraud missed amount needs attention")


def test_a_generic_webhook_carries_an_hmac_sha256_signature_of_its_body(backend, receiver, monkeypatch):
    monkeypatch.setenv("WT_HOOK_URL", receiver.url("/hooks/watchtower"))
    monkeypatch.setenv("WT_HOOK_KEY", HMAC_KEY)
    channel = _define("ops-hook", "webhook", {"url_secret": "WT_HOOK_URL", "hmac_secret": "WT_HOOK_KEY"})
    channels.send(channel=channel, message=_message(audience="engineering", text="AUC 0.812 below 0.85"))
    (post,) = receiver.to("/hooks/watchtower")
    expected = "sha256=" + hmac.new(HMAC_KEY.encode(), post.body, hashlib.sha256).hexdigest()
    assert post.headers["x-watchtower-signature"] == expected
    assert post.json["text"] == "AUC 0.812 below 0.85" and post.json["history"] == "✅✅✅❌"
    assert HMAC_KEY not in post.body.decode()


def test_email_arrives_over_smtp_with_plain_text_and_html(backend, smtp):
    channel = _define("mail", "email", {"host": "127.0.0.1", "port": smtp.port, "sender": "watchtower@bank.example"})
    channels.send(channel=channel, message=_message(text="Fraud missed <b>12,500</b> EUR"))
    (mail,) = smtp.messages
    assert mail["To"] == "bianca@bank.example" and mail["Subject"] == "[Watchtower] Fraud missed amount needs attention"
    plain = mail.get_body(preferencelist=("plain",)).get_content()
    rich = mail.get_body(preferencelist=("html",)).get_content()
    assert "Fraud missed <b>12,500</b> EUR" in plain and "✅✅✅❌" in plain
    assert "Fraud missed &lt;b&gt;12,500&lt;/b&gt; EUR" in rich  # text is data, never markup
    assert 'href="http://portal.example/project?project=FRAUD"' in rich


@pytest.mark.parametrize("behaviour, expected", [("error", "answered HTTP 500"), ("slow", "did not answer within"),
                                                 ("refused", "refused the connection")])
def test_failures_are_reported_without_revealing_the_secret_url(backend, receiver, monkeypatch, behaviour, expected):
    url = receiver.url(SLACK_TOKEN_PATH) if behaviour != "refused" else f"http://127.0.0.1:{free_port()}{SLACK_TOKEN_PATH}"
    receiver.behaviour[SLACK_TOKEN_PATH] = behaviour
    receiver.slow_seconds = 1.5
    monkeypatch.setenv("WT_SLACK_FRAUD", url)
    channel = _define("#fraud-alerts", "slack", {"url_secret": "WT_SLACK_FRAUD"})
    with pytest.raises(channels.DeliveryError) as err:
        channels.send(channel=channel, message=_message(), timeout=0.5)
    assert expected in str(err.value)
    assert "XXXXsecretXXXX" not in str(err.value) and "127.0.0.1" not in str(err.value)


def test_an_unset_secret_setting_is_reported_as_not_configured(backend, monkeypatch):
    monkeypatch.delenv("WT_SLACK_UNSET", raising=False)
    monkeypatch.setenv("WATCHTOWER_SECRETS_FILE", "/nonexistent/secrets.toml")
    channel = _define("#nowhere", "slack", {"url_secret": "WT_SLACK_UNSET"})
    assert not channel.configured and channel.missing_settings == ("WT_SLACK_UNSET",)
    with pytest.raises(channels.NotConfigured, match="setting WT_SLACK_UNSET for channel #nowhere is not set"):
        channels.send(channel=channel, message=_message())


@pytest.mark.parametrize("kind, config, message", [
    ("slack", {"url": "https://hooks.slack.com/services/T/B/x"}, "secrets are given by the name of the setting"),
    ("slack", {"url_secret": "https://hooks.slack.com/services/T/B/x"}, "must be the NAME of a setting"),
    ("email", {"host": "smtp.bank.example", "sender": "w@bank.example", "password": "hunter2!"}, "unknown setting"),
    ("email", {"host": "smtp.bank.example", "sender": "w@bank.example", "port": "twenty-five"}, "is not a number"),
    ("webhook", {"url_secret": "WT_HOOK_URL"}, "needs hmac_secret"),
    ("pager", {}, "channel kind 'pager' is not one of"),
])
def test_channels_store_setting_names_never_secret_values(backend, kind, config, message):
    with pytest.raises(InvalidInput, match=message):
        _define("bad", kind, config)
    with session_scope() as s:
        assert s.exec(select(Channel)).all() == []


def test_only_an_administrator_defines_channels_and_the_audit_shows_names_only(backend, monkeypatch):
    with pytest.raises(Forbidden):
        with session_scope() as s:
            channels.define_channel(session=s, actor=Actor("maya", ("ml_engineer",)), name="x", kind="inapp")
    monkeypatch.setenv("WT_HOOK_URL", "http://127.0.0.1:9/secret-path")
    monkeypatch.setenv("WT_HOOK_KEY", HMAC_KEY)
    _define("ops-hook", "webhook", {"url_secret": "WT_HOOK_URL", "hmac_secret": "WT_HOOK_KEY"})
    with session_scope() as s:
        stored = json.dumps([c.config for c in s.exec(select(Channel)).all()]
                            + [e.details for e in s.exec(select(AuditEvent)).all()])
    assert "WT_HOOK_URL" in stored and "secret-path" not in stored and HMAC_KEY not in stored
