"""Yellow and red: the warning levels of a case and its steps, the immutable cards (黄牌/红牌) each level
issues, and the notifications that tell people about them.

Levels (DESIGN.md §5): green; yellow when at most max(1, ⌈20 % of the limit⌉) working days are left;
red when overdue. A case is measured against its promised due (and gets a separate red card when its
legal due passes), a step against its own due — a step running over is carded even when the case is
within its limit. Each level change issues one card and notifies the assignee and the supervisors above
the unit. Re-evaluation is driven by an indexed ``warning_check_at`` column, so the sweep touches only
what is about to change. The arithmetic (thresholds, levels) is `engine.deadlines`.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, bindparam, insert, literal, literal_column, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from ..clock import due_date
from ..db import is_sqlite
from ..deadlines import CARDS_AT, level_at, next_check, yellow_at
from ..errors import InvalidInput
from ..models import T_AUDIT, T_CARD, T_CASE, T_NOTE, T_TASK, T_USER, OrgUnit, User
from ..policy import Actor
from ..vocab import WORKER_ROLES, Role


def _supervisors(session: Session, unit_id: int) -> list[int]:
    """Supervisors of the unit: those whose own unit is the unit or one of its ancestors."""
    unit = session.get(OrgUnit, unit_id)
    if unit is None:
        return []
    codes = unit.path.strip("/").split("/")
    return list(session.scalars(select(User.id).join(OrgUnit, OrgUnit.id == User.unit_id)
                                .where(User.role == "supervisor", User.active.is_(True), OrgUnit.code.in_(codes))))


def issue_card(session: Session, *, case: Mapping[Any, Any], subject: str, color: str, unit_id: int,
               reason: str, now: datetime, due_at: datetime | None, task_id: int | None = None,
               assignee_id: int | None = None) -> int | None:
    """Record a card once per (case, subject, colour) and notify; returns its id (None if it existed)."""
    exists = session.scalar(select(T_CARD.c.id).where(T_CARD.c.case_id == case["id"], T_CARD.c.subject == subject,
                                                      T_CARD.c.color == color))
    if exists:
        return None
    card_id = session.execute(insert(T_CARD).returning(T_CARD.c.id).values(
        case_id=case["id"], task_id=task_id, subject=subject, color=color, unit_id=unit_id,
        responsible_clerk_id=case["first_clerk_id"], assignee_id=assignee_id, due_at=due_at, issued_at=now,
        reason=reason, resolved_at=None)).scalar_one()
    label = {"yellow": "黄牌", "red": "红牌"}[color]
    message = f"{label} {case['number']}: {reason}"
    users = set(_supervisors(session, unit_id)) | {u for u in (assignee_id,) if u}
    if users:
        session.execute(insert(T_NOTE), [dict(user_id=u, case_id=case["id"], card_id=card_id, created_at=now,
                                             read_at=None, message=message) for u in sorted(users)])
    session.execute(insert(T_AUDIT).values(
        case_id=case["id"], actor_id=None, at=now, action=f"card.{color}", details={"subject": subject,
                                                                                      "reason": reason},
        old_value=None, new_value=color))
    return card_id


#: The most notifications one "mark read" names (a page shows 50; anything beyond is not a click).
MAX_MARK_IDS = 200


def mark_read(session: Session, user: Actor | User, now: datetime, ids: Sequence[int] | None = None) -> int:
    """The user has seen their notifications (all of them, or those of `ids` — only ever their own);
    returns how many were unread."""
    where = [T_NOTE.c.user_id == user.id, T_NOTE.c.read_at.is_(None)]
    if ids is not None:
        if len(ids) > MAX_MARK_IDS or not all(isinstance(i, int) and not isinstance(i, bool) for i in ids):
            raise InvalidInput(f"at most {MAX_MARK_IDS} notification ids, whole numbers",
                               reason="notification.ids_invalid", max_count=MAX_MARK_IDS)
        if not ids:
            return 0
        where.append(T_NOTE.c.id.in_(ids))
    res = session.connection().execute(update(T_NOTE).where(*where).values(read_at=now))
    return res.rowcount or 0


# ------------------------------------------------------------------------ the unit of an unclaimed step
#: The notice a step of nobody's earns, by the colour it turned (web.engine_texts reads it in English).
UNCLAIMED = "无人领取"
UNCLAIMED_KINDS = {"yellow": "unclaimed_yellow", "red": "unclaimed_red"}


def _step_reason(name: str, color: str, due_at: datetime) -> str:
    """A step's card reason, as its card and notifications state it (web.engine_texts.FORMS)."""
    return (f"环节「{name}」将到期" if color == "yellow" else f"环节「{name}」已超时") + f"（{_day(due_at)}）"


def workers_of(unit_id: int, candidate_group: str | None) -> ColumnElement[bool]:
    """The active users who may work on a step of `unit_id` for `candidate_group`: `policy.may_work_on`
    as SQL — the unit's workers; at county level only the department the step names (a step for no
    department is any county officer's). A village has clerks, a township agents and officers."""
    who = and_(T_USER.c.unit_id == unit_id, T_USER.c.active.is_(True), T_USER.c.role.in_(sorted(WORKER_ROLES)))
    if candidate_group is None:
        return who
    return and_(who, or_(T_USER.c.role != Role.COUNTY_OFFICER.value, T_USER.c.department == candidate_group))


def notify_unclaimed(session: Session, *, task: Mapping[Any, Any], case_id: int, case_number: str, color: str,
                     now: datetime, besides: int | None = None) -> int:
    """Tell everyone who could pick up a ready step that nobody claimed that it turned `color` (kind
    `unclaimed_yellow`/`unclaimed_red`, with the task): one INSERT … SELECT over the unit's users, whatever
    their number. Once per person, step and colour on both databases — the partial unique index
    `uq_notifications_task_kind` with ON CONFLICT DO NOTHING — so the sweep may look again and a step
    released and claimed again does not ring twice; `besides` (who released it) is not told what they know.
    Returns how many were told."""
    if task["assignee_id"] is not None or task.get("due_at") is None:
        return 0
    kind = UNCLAIMED_KINDS[color]
    message = f"{UNCLAIMED} {case_number}: {_step_reason(task['name'], color, task['due_at'])}"
    people = (select(T_USER.c.id, literal(case_id), literal(task["id"]), literal(kind),
                     literal(now, T_NOTE.c.created_at.type), literal(message, T_NOTE.c.message.type))
              .where(workers_of(task["unit_id"], task["candidate_group"])))
    if besides is not None:
        people = people.where(T_USER.c.id != besides)
    dialect_insert = sqlite.insert if is_sqlite(session) else postgresql.insert
    stmt = (dialect_insert(T_NOTE)
            .from_select(["user_id", "case_id", "task_id", "kind", "created_at", "message"], people)
            .on_conflict_do_nothing().returning(T_NOTE.c.id))  # rowcount is -1 here on PostgreSQL's driver
    return len(session.connection().execute(stmt).all())


def notify_unclaimed_step(session: Session, task_id: int, case_id: int, case_number: str, now: datetime,
                          besides: int | None = None) -> int:
    """A step released back to its unit's queue while due soon or overdue: its unit is told now, as
    the sweep would have told it had nobody held the step when it turned (once per colour) — all but
    `besides`, who released it."""
    task = session.execute(select(T_TASK).where(T_TASK.c.id == task_id)).mappings().one()
    if task["state"] != "ready" or task["warning_level"] not in UNCLAIMED_KINDS:
        return 0
    return notify_unclaimed(session, task=task, case_id=case_id, case_number=case_number,
                            color=task["warning_level"], now=now, besides=besides)


_RESOLVE_TASK_CARDS = (update(T_CARD).where(T_CARD.c.case_id == bindparam("b_case"),
                                            T_CARD.c.task_id.in_(bindparam("b_ids", expanding=True)),
                                            T_CARD.c.resolved_at.is_(None))
                       .values(resolved_at=bindparam("b_now")))
_RESOLVE_CASE_CARDS = (update(T_CARD).where(T_CARD.c.case_id == bindparam("b_case"), T_CARD.c.resolved_at.is_(None))
                       .values(resolved_at=bindparam("b_now")))


def resolve_cards(conn: Any, case_id: int, now: datetime, task_ids: list[int] | None = None) -> None:
    """A card is resolved when its step is done (or the case closes); the record itself stays."""
    if task_ids is None:
        conn.execute(_RESOLVE_CASE_CARDS, {"b_case": case_id, "b_now": now})
    elif task_ids:
        conn.execute(_RESOLVE_TASK_CARDS, {"b_case": case_id, "b_ids": task_ids, "b_now": now})


# ------------------------------------------------------------------------------------------ evaluation
def evaluate_case(session: Session, case_id: int, now: datetime) -> int:
    """Bring the warning levels of one (locked, open, running) case and its open steps up to `now`,
    issuing cards for every level reached. Returns the number of cards issued."""
    case = session.execute(select(T_CASE).where(T_CASE.c.id == case_id)).mappings().one()
    issued = 0
    if case["status"] != "open" or case["paused_at"] is not None:
        return 0
    # the case, against its promised due (the legal due has its own red card)
    promised, legal = case["promised_due_at"], case["legal_due_at"]
    target = promised or legal
    if target is not None:
        limit = case["promised_limit_workdays"] if promised else case["legal_limit_workdays"]
        y = yellow_at(target, limit, case["accepted_at"] or case["created_at"])
        level = level_at(now, target, y)
        for color in CARDS_AT[level]:
            issued += issue_card(session, case=case, subject="case", color=color, unit_id=case["village_id"],
                                 reason=("承诺时限将到期" if color == "yellow" else "已超过承诺时限")
                                 + f"（{_day(target)}）", now=now, due_at=target) is not None
        if legal is not None and now >= legal:
            issued += issue_card(session, case=case, subject="legal", color="red", unit_id=case["village_id"],
                                 reason=f"已超过法定时限（{_day(legal)}）", now=now, due_at=legal) is not None
        checks = [c for c in (next_check(level, target, y), legal if legal and now < legal else None) if c]
        session.execute(update(T_CASE).where(T_CASE.c.id == case_id).values(
            warning_level=level, warning_check_at=min(checks) if checks else None))
    # the open steps
    for task in session.execute(select(T_TASK).where(T_TASK.c.case_id == case_id, T_TASK.c.state == "ready",
                                                     T_TASK.c.due_at.is_not(None))).mappings():
        y = yellow_at(task["due_at"], task["limit_workdays"], task["created_at"])
        level = level_at(now, task["due_at"], y)
        for color in CARDS_AT[level]:
            reason = _step_reason(task["name"], color, task["due_at"])
            issued += issue_card(session, case=case, subject=f"task:{task['id']}", color=color,
                                 unit_id=task["unit_id"], reason=reason, now=now, due_at=task["due_at"],
                                 task_id=task["id"], assignee_id=task["assignee_id"]) is not None
        if level != task["warning_level"] and level in UNCLAIMED_KINDS:
            # turned yellow or red with nobody holding it: everyone of its unit who could take it is told
            # (a step's holder has its card's notification; the supervisors too, as before)
            notify_unclaimed(session, task=task, case_id=case_id, case_number=case["number"], color=level, now=now)
        session.execute(update(T_TASK).where(T_TASK.c.id == task["id"]).values(
            warning_level=level, warning_check_at=next_check(level, task["due_at"], y)))
    return issued


def _day(instant: datetime) -> str:
    """The due date a deadline instant (24:00 local) stands for, as people say it."""
    return due_date(instant).isoformat()


def next_case_to_check(session: Session, now: datetime, skip: set[int]) -> int | None:
    """An open, running case with a step or case deadline to look at by `now` — two indexed lookups
    (tasks.warning_check_at, cases.warning_check_at), the case row locked SKIP LOCKED on PostgreSQL."""
    pg = not is_sqlite(session)
    # the literals let both databases prove the partial indexes' predicates (ready tasks, open cases)
    step = (select(T_TASK.c.case_id).join(T_CASE, T_CASE.c.id == T_TASK.c.case_id)
            .where(T_TASK.c.state == literal_column("'ready'"), T_TASK.c.warning_check_at <= now,
                   T_CASE.c.status == literal_column("'open'"), T_CASE.c.paused_at.is_(None))
            .order_by(T_TASK.c.warning_check_at).limit(1))
    whole = (select(T_CASE.c.id).where(T_CASE.c.status == literal_column("'open'"), T_CASE.c.paused_at.is_(None),
                                       T_CASE.c.warning_check_at <= now)
             .order_by(T_CASE.c.warning_check_at).limit(1))
    for stmt, col in ((step, T_TASK.c.case_id), (whole, T_CASE.c.id)):
        if skip:
            stmt = stmt.where(col.not_in(skip))
        if pg:
            stmt = stmt.with_for_update(of=T_CASE, skip_locked=True)
        found = session.scalar(stmt)
        if found is not None:
            return found
    return None
