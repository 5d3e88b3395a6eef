"""A user's notifications (cards issued on their cases, steps of their unit nobody claimed), newest first."""
from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..models import Case, Notification, User
from ..policy import Actor, as_actor
from .models import NotificationItem
from .pages import Page, check_limit, note_cursor, page_before, page_of, read_note_cursor


def _select(user: Actor | User, unread_only: bool, limit: int) -> Any:
    stmt = (select(Notification.id, Notification.message, Notification.created_at, Notification.read_at,
                   Notification.kind, Notification.task_id, Case.number)
            .outerjoin(Case, Case.id == Notification.case_id)
            .where(Notification.user_id == as_actor(user).id).order_by(Notification.id.desc()).limit(limit))
    return stmt.where(Notification.read_at.is_(None)) if unread_only else stmt


def _item(row: Any) -> NotificationItem:
    return NotificationItem(row.id, row.number, row.message, row.created_at, row.read_at is not None, row.kind,
                            row.task_id)


def list_notifications(session: Session, user: Actor | User, unread_only: bool = False,
                       limit: int = 50) -> tuple[NotificationItem, ...]:
    """The newest `limit` of them, served by `ix_notifications_user_id_id` (user, id) — or, unread only,
    by `ix_notifications_inbox` (user, read)."""
    return tuple(_item(r) for r in session.execute(_select(user, unread_only, check_limit(limit))))


def notification_page(session: Session, user: Actor | User, limit: int = 50, cursor: str | None = None,
                      unread_only: bool = False, before: str | None = None) -> Page[NotificationItem]:
    """One page of them, newest first, paged by id (keyset: the next page starts below the last id
    shown, so a notification arriving meanwhile neither repeats nor hides another); `before` a cursor:
    the page above it (newer), read upwards from it."""
    limit = check_limit(limit)
    stmt = _select(user, unread_only, limit + 1)
    if before is not None:
        stmt = stmt.where(Notification.id > read_note_cursor(before)).order_by(None).order_by(Notification.id)
        return page_before(session.execute(stmt).all(), limit, _item, _key)
    if cursor is not None:
        stmt = stmt.where(Notification.id < read_note_cursor(cursor))
    return page_of(session.execute(stmt).all(), limit, _item, _key, after_cursor=cursor is not None)


def _key(row: Any) -> str:
    return note_cursor(row.id)
