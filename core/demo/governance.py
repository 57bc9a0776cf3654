"""The governance part of the story: v3 waits in staging for its sign-offs while v2 serves production.

Runs after the registry step (which leaves v3, the scheduled retrain, as a candidate). Both environments point
at the local scoring API (`watchtower api`, WATCHTOWER_API_URL, by default port 8000), so the Deployer page's test
queries reach it; `make run` starts that API beside the portal.
"""

from __future__ import annotations

from core import governance
from core.access import Actor
from core.config import get_settings
from core.db import session_scope
from core.governance import deployer, environments
from core.identity import users

MODEL = "fraud-detector"
CANDIDATE = 3


def _person(session, username: str) -> Actor:  # noqa: ANN001 - a Session
    return users.get_user(session=session, username=username).actor


def seed(*, progress) -> None:  # noqa: ANN001 - core.demo.Progress
    """v3 deployed to staging by maya, its review requested and waiting for feedback, IT & operations' given."""
    progress("deploying fraud-detector v3 to staging and asking for its review")
    with session_scope() as s:
        admin, maya, omar = (_person(s, name) for name in ("admin", "maya", "omar"))
        for env in ("staging", "production"):
            environments.configure_environment(session=s, actor=admin, name=env, endpoint_url=get_settings().api_url)
        deployer.deploy(session=s, actor=maya, model=MODEL, version=CANDIDATE, environment="staging",
                        note="the scheduled retrain after the quality alert, for a look before production")
        review = governance.request_review(
            session=s, actor=maya, model=MODEL, version=CANDIDATE,
            comment="Retrained on the latest labelled transactions after the quality alerts; it catches fraud on "
                    "new cards again. Please sign off so it can replace v2 in production.")
        governance.give_feedback(
            session=s, actor=omar, review_id=review.id, role="it_ops", verdict="APPROVED",
            comment="Runs in staging within the latency budget; rollback to v2 rehearsed.")
    progress("fraud-detector v3 runs in staging; its review waits for risk and business feedback")
