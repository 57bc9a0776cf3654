"""Real receivers on loopback for the alerting tests: an HTTP endpoint (webhooks, Slack) and an SMTP server."""

import pytest

from tests.support.receivers import HttpReceiver, SmtpReceiver


@pytest.fixture
def receiver():
    r = HttpReceiver()
    yield r
    r.close()


@pytest.fixture
def smtp():
    s = SmtpReceiver()
    yield s
    s.close()
