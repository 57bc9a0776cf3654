"""Who may do what: permissions by role, checked in core so no entry point can skip them."""

from __future__ import annotations

from dataclasses import dataclass

from core.errors import Forbidden
from core.vocabulary import ROLES

ALL = frozenset(ROLES)

PERMISSIONS: dict[str, frozenset[str]] = {
    "portfolio.view": ALL,
    "project.view": ALL,
    "project.create": frozenset({"admin", "risk_manager", "data_scientist", "ml_engineer"}),
    "model.register": frozenset({"admin", "data_scientist", "ml_engineer"}),
    "evaluation.view": frozenset({"admin", "data_scientist", "ml_engineer", "risk_manager", "business"}),
    "evaluation.write": frozenset({"admin", "data_scientist", "ml_engineer"}),
    "monitoring.manage": frozenset({"admin", "ml_engineer", "data_scientist"}),
    "alerts.view": ALL,
    "automation.view": frozenset({"admin", "ml_engineer", "data_scientist", "it_ops"}),
    "automation.run": frozenset({"admin", "ml_engineer", "data_scientist", "it_ops"}),
    "automation.manage": frozenset({"admin", "ml_engineer", "data_scientist"}),
    "channels.manage": frozenset({"admin"}),
    "alerts.deliveries": frozenset({"admin", "ml_engineer", "it_ops"}),
    "experiments.run": frozenset({"admin", "data_scientist", "ml_engineer"}),
    "registry.view": frozenset({"admin", "data_scientist", "ml_engineer", "risk_manager", "it_ops"}),
    "validation.view": frozenset({"admin", "data_scientist", "ml_engineer", "risk_manager"}),
    "deploy": frozenset({"admin", "ml_engineer", "it_ops"}),
    # Scoring through the API (and logging what was scored) with a token's predict scope.
    "api.predict": frozenset({"admin", "ml_engineer", "it_ops", "data_scientist"}),
    "deployer.view": frozenset({"admin", "ml_engineer", "it_ops", "data_scientist"}),
    "governance.view": frozenset({"admin", "risk_manager", "business", "it_ops", "ml_engineer", "data_scientist"}),
    "blueprint.manage": frozenset({"admin", "risk_manager"}),
    "review.request": frozenset({"admin", "ml_engineer", "data_scientist"}),
    # Everyone who reviews, builds or runs a model may generate and download its documentation.
    "documentation.generate": frozenset({"admin", "risk_manager", "business", "it_ops", "ml_engineer",
                                         "data_scientist"}),
    # Environments fail closed: only an administrator creates or changes one, its policy included.
    "environment.manage": frozenset({"admin"}),
    "environment.policy": frozenset({"admin"}),
    "users.manage": frozenset({"admin"}),
    # Everyone manages their own personal access tokens (an administrator: everyone's, with users.manage).
    "tokens.manage": ALL,
    "settings.manage": frozenset({"admin"}),
    "catalog.view": ALL,
    "catalog.register": frozenset({"admin", "data_scientist", "ml_engineer", "risk_manager", "business"}),
    "dataset.register": frozenset({"admin", "data_scientist", "ml_engineer"}),
    "template.manage": frozenset({"admin", "data_scientist", "ml_engineer", "risk_manager"}),
    "template.use": frozenset({"admin", "data_scientist", "ml_engineer"}),
    "audit.verify": frozenset({"admin", "risk_manager"}),
}


@dataclass(frozen=True)
class Actor:
    """The person acting: a username and the roles they hold."""

    username: str
    roles: tuple[str, ...]

    def has(self, permission: str) -> bool:
        return bool(set(self.roles) & PERMISSIONS[permission])


SYSTEM = Actor(username="system", roles=("admin",))


def require(actor: Actor, permission: str) -> None:
    """Raise Forbidden unless one of the actor's roles grants the permission."""
    if not actor.has(permission):
        allowed = ", ".join(sorted(PERMISSIONS[permission]))
        raise Forbidden(f"{actor.username} may not {permission.replace('.', ' ')} (allowed roles: {allowed})")


@dataclass(frozen=True)
class PageSpec:
    path: str
    title: str
    section: str
    permission: str
    icon: str = ""


# The navigation, by persona section. Pages import nothing from here but their own permission.
PAGES: tuple[PageSpec, ...] = (
    PageSpec("pages/portfolio.py", "Portfolio", "Overview", "portfolio.view", ":material/dashboard:"),
    PageSpec("pages/project.py", "Project", "Overview", "project.view", ":material/folder_open:"),
    PageSpec("pages/alerts.py", "Alerts", "Overview", "alerts.view", ":material/notifications:"),
    PageSpec("pages/tokens.py", "Tokens", "Overview", "tokens.manage", ":material/key:"),
    PageSpec("pages/checks.py", "Checks", "Monitoring", "monitoring.manage", ":material/rule:"),
    PageSpec("pages/automation.py", "Automation", "Monitoring", "automation.view", ":material/schedule:"),
    PageSpec("pages/catalog.py", "Catalog", "Overview", "catalog.view", ":material/category:"),
    PageSpec("pages/new_project.py", "New project", "Overview", "project.create", ":material/add_circle:"),
    PageSpec("pages/governance.py", "Governance", "Governance", "governance.view", ":material/gavel:"),
    PageSpec("pages/deployer.py", "Deployer", "Deployment", "deployer.view", ":material/rocket_launch:"),
    PageSpec("pages/experiments.py", "Experiments", "Models", "experiments.run", ":material/science:"),
    PageSpec("pages/registry.py", "Registry", "Models", "registry.view", ":material/inventory_2:"),
    PageSpec("pages/validation.py", "Validation lab", "Models", "validation.view", ":material/fact_check:"),
    PageSpec("pages/evaluation_store.py", "Evaluation store", "Monitoring", "evaluation.view", ":material/monitoring:"),
    PageSpec("pages/drift.py", "Drift", "Monitoring", "evaluation.view", ":material/stacked_line_chart:"),
)


def pages_for(roles: tuple[str, ...] | list[str]) -> list[PageSpec]:
    """The pages a holder of these roles may open, in navigation order."""
    actor = Actor(username="?", roles=tuple(roles))
    return [p for p in PAGES if actor.has(p.permission)]
