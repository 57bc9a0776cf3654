"""Environments (staging = lower, production = higher), each with its governance policy and scoring endpoint.

They fail closed: only an administrator creates or changes one, and a new one blocks unapproved versions.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlmodel import Session, select

from core import audit
from core.access import Actor, require
from core.entities import POLICIES, Environment
from core.errors import InvalidInput, NotFound
from core.vocabulary import TIERS


@dataclass(frozen=True)
class EnvironmentRead:
    id: int
    name: str
    tier: str
    position: int
    policy: str
    endpoint_url: str | None


def _env_read(e: Environment) -> EnvironmentRead:
    return EnvironmentRead(id=e.id, name=e.name, tier=e.tier, position=e.position, policy=e.policy,
                           endpoint_url=e.endpoint_url)


# --- environments ----------------------------------------------------------------------------

def environment_row(session: Session, name: str) -> Environment:
    env = session.exec(select(Environment).where(Environment.name == name)).first()
    if env is None:
        known = ", ".join(session.exec(select(Environment.name).order_by(Environment.position)).all()) or "none"
        raise NotFound(f"no environment {name!r} (environments: {known})")
    return env


def list_environments(*, session: Session) -> list[EnvironmentRead]:
    """Environments from the lowest to the highest."""
    rows = session.exec(select(Environment).order_by(Environment.position, Environment.id)).all()
    return [_env_read(e) for e in rows]


def _loosenings(before: dict, after: dict) -> list[str]:
    """What a change opens up: a looser policy, or an environment now of the higher (production) tier."""
    out = []
    if POLICIES.index(after["policy"]) > POLICIES.index(before["policy"]):
        out.append(f"policy loosened from {before['policy']} to {after['policy']}")
    if after["tier"] == "higher" and before["tier"] != "higher":
        out.append("marked as a higher (production) environment")
    return out


def configure_environment(*, session: Session, actor: Actor, name: str, tier: str | None = None,
                          policy: str | None = None, endpoint_url: str | None = None,
                          position: int | None = None) -> EnvironmentRead:
    """Create or change an environment (administrators only); a new one blocks unapproved versions.

    Loosening a policy (block → warn → allow) or marking an environment higher is audited and alerts the risk
    managers; a new environment counts as changed from a blocking, lower one.
    """
    require(actor, "environment.manage")
    if tier is not None and tier not in TIERS:
        raise InvalidInput(f"tier {tier!r} is not one of {', '.join(TIERS)}")
    if policy is not None and policy not in POLICIES:
        raise InvalidInput(f"policy {policy!r} is not one of {', '.join(POLICIES)}")
    if endpoint_url is not None and endpoint_url and not endpoint_url.startswith(("http://", "https://")):
        raise InvalidInput(f"endpoint URL {endpoint_url!r} must start with http:// or https://")
    env = session.exec(select(Environment).where(Environment.name == name)).first()
    created = env is None
    if created:
        if not name.strip() or not name.replace("-", "").replace("_", "").isalnum():
            raise InvalidInput(f"environment name {name!r} may hold only letters, digits, '-' and '_'")
        env = Environment(name=name, tier="lower", policy="block",
                          position=position if position is not None else len(list_environments(session=session)))
    if policy is not None and policy != env.policy:
        require(actor, "environment.policy")
    before = {"tier": env.tier, "policy": env.policy, "endpoint_url": None if created else env.endpoint_url,
              "position": env.position}
    env.tier = tier or env.tier
    env.policy = policy or env.policy
    env.endpoint_url = (endpoint_url.rstrip("/") or None) if endpoint_url is not None else env.endpoint_url
    env.position = position if position is not None else env.position
    session.add(env)
    session.flush()
    after = {"tier": env.tier, "policy": env.policy, "endpoint_url": env.endpoint_url, "position": env.position}
    opened = _loosenings(before, after)
    audit.record(session, actor=actor.username, action="environment.create" if created else "environment.update",
                 entity_type="environment", entity_id=name,
                 details={**{k: {"from": before[k], "to": v} for k, v in after.items() if created or before[k] != v},
                          "loosened": opened})
    if opened:
        _alert_risk_managers(session, actor=actor, env=env, opened=opened, created=created)
    return _env_read(env)


def _alert_risk_managers(session: Session, *, actor: Actor, env: Environment, opened: list[str],
                         created: bool) -> None:
    from core.alerting import notifications  # the alerting machinery is only needed when notifying

    lets = {"block": "refuses unapproved versions", "warn": "deploys unapproved versions with a warning",
            "allow": "deploys any version, approved or not"}[env.policy]
    notifications.notify_roles(session, roles=["risk_manager"], kind="governance", severity="warning",
                            title=f"Environment {env.name}: {'; '.join(opened)}",
                            message=f"{actor.username} {'created' if created else 'changed'} environment {env.name} "
                                    f"({env.tier}, policy {env.policy}): {'; '.join(opened)}. It now {lets}.")


def production_environment(session: Session) -> Environment | None:
    """The highest environment: where an approval leads."""
    return session.exec(select(Environment).where(Environment.tier == "higher")
                        .order_by(Environment.position.desc(), Environment.id.desc())).first()


