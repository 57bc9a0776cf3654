"""Notifications: alerting named people, or every holder of a role, in their inbox and through the channels."""

from __future__ import annotations

from sqlmodel import Session

from core.alerting import alerts, channels
from core.entities import Project
from core.identity import users


def notify_users(session: Session, *, usernames: list[str], kind: str, severity: str, title: str, message: str,
                 link: str = "", project_id: int | None = None, review_id: int | None = None) -> int:
    """Alert the named people in their inbox and through every enabled channel; returns how many were alerted."""
    if not usernames:
        return 0
    project = session.get(Project, project_id) if project_id else None
    names = [c.name for c in channels.list_channels(session=session) if c.enabled]
    return len(alerts.notify(session=session, project_key=project.key if project else None, roles=[],
                             usernames=list(dict.fromkeys(usernames)), title=title, message=message, link=link,
                             kind=kind, severity=severity, channel_names=names, review_id=review_id))


def notify_roles(session: Session, *, roles: list[str], kind: str, severity: str, title: str, message: str,
                 link: str = "", project_id: int | None = None, review_id: int | None = None,
                 exclude: tuple[str, ...] = ()) -> int:
    """Alert every active holder of any of the roles (but not the excluded users)."""
    names = [u.username for role in roles for u in users.users_with_role(session=session, role=role)
             if u.username not in exclude]
    return notify_users(session, usernames=names, kind=kind, severity=severity, title=title, message=message,
                        link=link, project_id=project_id, review_id=review_id)
