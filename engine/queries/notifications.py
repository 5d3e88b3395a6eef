"""A user's notifications (cards issued on their cases, newest first)."""
from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..models import Case, Notification, User
from ..policy import Actor, as_actor
from .models import NotificationItem
from .pages import check_limit


def list_notifications(session: Session, user: Actor | User, unread_only: bool = False,
                       limit: int = 50) -> tuple[NotificationItem, ...]:
    """The newest `limit` of them, served by `ix_notifications_inbox` (user, read)."""
    stmt = (select(Notification, Case.number).outerjoin(Case, Case.id == Notification.case_id)
            .where(Notification.user_id == as_actor(user).id).order_by(Notification.id.desc())
            .limit(check_limit(limit)))
    if unread_only:
        stmt = stmt.where(Notification.read_at.is_(None))
    return tuple(NotificationItem(n.id, number, n.message, n.created_at, n.read_at is not None)
                 for n, number in session.execute(stmt))
