"""Read-only queries over the projections: who sees which cases, task inboxes, case detail.

Access follows the org tree (DESIGN.md invariant 7): a user sees the cases of their own unit and, at
township/county/city level, of every unit below it. A case outside that is reported as not found.
Nothing here deserializes a workflow.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, and_, bindparam, false, func, literal_column, or_, select, true
from sqlalchemy.orm import Session, aliased, defer, load_only

from . import policy
from .clock import local
from .errors import InvalidInput, NotFound
from .forms import CASE_FIELDS
from .models import (
    T_TASK,
    AuditEvent,
    Card,
    Case,
    Notification,
    OrgUnit,
    Pause,
    ProcessVersion,
    TaskRow,
    TimerRow,
    User,
)
from .policy import Actor, as_actor
from .vocab import WORKER_ROLES, Level, Role

Who = Actor | User | None  # None: the operator (kept for older callers; the CLI passes Actor.operator())


def who(user: Who) -> Actor:
    return Actor.operator() if user is None else as_actor(user)


def case_scope(user: Who) -> ColumnElement[bool]:
    """SQL condition: the cases `user` may see — `policy.may_see_case` drawn as SQL on the case's
    village/township/county columns (the operator, admins and the city see all)."""
    actor = who(user)
    if policy.sees_all(actor):
        return true()
    if not policy.is_staff(actor):
        return false()
    column = {Level.VILLAGE: Case.village_id, Level.TOWNSHIP: Case.township_id, Level.COUNTY: Case.county_id}
    return column[Level(actor.level)] == actor.unit_id


# literals, so both databases match the partial indexes over live rows
READY: ColumnElement[str] = literal_column("'ready'")
OPEN: ColumnElement[str] = literal_column("'open'")


def queue_filter(user: Actor | User) -> ColumnElement[bool] | None:
    """Unclaimed ready tasks of the user's unit they may pick up (`policy.may_work_on` as SQL: by
    department at county level); None for roles without a unit queue. Served by the partial index
    `ix_tasks_ready_queue`."""
    actor = as_actor(user)
    if actor.role not in WORKER_ROLES or not policy.is_staff(actor):
        return None
    queue = and_(TaskRow.state == READY, TaskRow.assignee_id.is_(None), TaskRow.unit_id == actor.unit_id)
    if actor.role == Role.COUNTY_OFFICER:
        queue = and_(queue, or_(TaskRow.candidate_group.is_(None), TaskRow.candidate_group == actor.department))
    return queue


def claimed_filter(user: Actor | User) -> ColumnElement[bool]:
    """Ready tasks the user holds, wherever they sit. Served by the partial index `ix_tasks_ready_claimed`."""
    return and_(TaskRow.state == READY, TaskRow.assignee_id == as_actor(user).id)


def inbox_filter(user: Actor | User) -> ColumnElement[bool]:
    """Everything in the user's inbox as one condition (the queue and the claimed tasks are disjoint)."""
    queue = queue_filter(user)
    return claimed_filter(user) if queue is None else or_(queue, claimed_filter(user))


#: The columns of a case that lists show; the instance JSON (the workflow state) is never among them.
CASE_LIST_COLUMNS = (Case.id, Case.number, Case.service_code, Case.applicant_name, Case.status, Case.outcome,
                     Case.created_at, Case.updated_at, Case.village_id)


def _case_columns_only() -> Any:
    return load_only(*CASE_LIST_COLUMNS, raiseload=True)


def _iso(value: Any) -> str | None:
    return local(value).isoformat(timespec="seconds") if value is not None else None


def task_dict(task: Any, case: Any = None, assignee: str | None = None,
              unit: str | None = None, assignee_display: str | None = None) -> dict[str, Any]:
    d = {
        "id": task.id, "case_id": task.case_id, "bpmn_id": task.bpmn_id, "name": task.name, "lane": task.lane,
        "level": task.level, "unit_id": task.unit_id, "unit": unit, "candidate_group": task.candidate_group,
        "assignee": assignee, "assignee_display_name": assignee_display, "state": task.state,
        "created_at": _iso(task.created_at),
        "completed_at": _iso(task.completed_at), "due_at": _iso(task.due_at), "limit_workdays": task.limit_workdays,
        "warning_level": task.warning_level if task.state == "ready" else None,
    }
    if case is not None:
        d.update(case_number=case.number, service_code=case.service_code, applicant_name=case.applicant_name)
    return d


_TASK_LIST_COLUMNS = tuple(T_TASK.c[name] for name in (
    "id", "case_id", "bpmn_id", "name", "lane", "level", "unit_id", "candidate_group", "state", "created_at",
    "completed_at", "due_at", "limit_workdays", "warning_level"))


def _task_rows(where: ColumnElement[bool], order: tuple[Any, ...], limit: int) -> Any:
    """Task rows as plain columns (named as `task_dict` reads them): a list builds no ORM objects."""
    assignee, unit = aliased(User), aliased(OrgUnit)
    return (select(*_TASK_LIST_COLUMNS, Case.number, Case.service_code, Case.applicant_name,
                   assignee.username.label("assignee_name"), assignee.display_name.label("assignee_display"),
                   unit.name.label("unit_name"))
            .join(Case, Case.id == TaskRow.case_id)
            .join(unit, unit.id == TaskRow.unit_id)
            .outerjoin(assignee, assignee.id == TaskRow.assignee_id)
            .where(where).order_by(*order).limit(limit))


def _due_order(row: Any) -> tuple[bool, Any, int]:
    return row.due_at is None, row.due_at, row.id


def list_tasks(session: Session, user: Who = None, case_number: str | None = None,
               state: str | None = "ready", limit: int = 200) -> list[dict[str, Any]]:
    """A user's inbox (no case given), or the tasks of one case the user may see.

    The inbox is two queries — the unit's unclaimed queue and the tasks the user claimed — each walking
    its partial index over ready tasks in due order and stopping at `limit`, merged here; so its cost
    follows the open work, never the history of completed tasks.
    """
    actor = who(user)
    if case_number is None and not actor.is_operator:
        by_due = (TaskRow.due_at.asc().nulls_last(), TaskRow.id)  # the indexes' order (PostgreSQL's default)
        parts = [f for f in (queue_filter(actor), claimed_filter(actor)) if f is not None]
        inbox = sorted((r for f in parts for r in session.execute(_task_rows(f, by_due, limit)).all()),
                       key=_due_order)[:limit]
        return [task_dict(r, r, r.assignee_name, r.unit_name, r.assignee_display) for r in inbox]
    where: list[ColumnElement[bool]] = []
    if case_number is not None:
        where += [Case.number == case_number, case_scope(user)]
    if state:
        where.append(TaskRow.state == state)
    rows = session.execute(_task_rows(and_(true(), *where), (TaskRow.due_at.is_(None), TaskRow.due_at, TaskRow.id),
                                      limit)).all()
    if case_number is not None and not rows:
        visible_case(session, user, case_number)  # raises NotFound for an unknown or hidden case
    return [task_dict(r, r, r.assignee_name, r.unit_name, r.assignee_display) for r in rows]


def task_detail(session: Session, task_id: int, user: Who = None) -> dict[str, Any]:
    """One task with its form (fields, types, options) and documentation, for a client to render."""
    row = session.execute(select(TaskRow, Case, ProcessVersion.task_meta).join(Case, Case.id == TaskRow.case_id)
                          .join(ProcessVersion, ProcessVersion.id == Case.process_version_id)
                          .options(_case_columns_only())
                          .where(TaskRow.id == task_id, case_scope(user))).first()
    if row is None:
        raise NotFound(f"没有这个环节，或您无权查看 / no task {task_id}", reason="task.not_found", task_id=task_id)
    task, case, meta = row
    unit = session.get(OrgUnit, task.unit_id)
    assignee = session.get(User, task.assignee_id) if task.assignee_id else None
    m = (meta or {}).get(task.bpmn_id, {})
    return {**task_dict(task, case, assignee.username if assignee else None, unit.name if unit else None),
            "form_key": m.get("form_key"), "documentation": m.get("documentation"),
            "fields": [dict(f, readonly=f["id"] in CASE_FIELDS) for f in m.get("fields", [])]}


def visible_case(session: Session, user: Who, number: str) -> Case:
    # every column but the workflow state: the case page shows projections, never the instance JSON
    case = session.scalar(select(Case).options(defer(Case.instance_json, raiseload=True))
                          .where(Case.number == number, case_scope(user)))
    if case is None:
        raise NotFound(f"没有办件 {number}，或您无权查看 / no case {number}", reason="case.not_found", case=number)
    return case


CASE_STATUSES = ("open", "completed", "rejected", "withdrawn")


def list_cases(session: Session, user: Who = None, status: str | None = "open",
               limit: int = 100) -> list[dict[str, Any]]:
    if status is not None and status not in CASE_STATUSES:  # a typo must not look like "no cases"
        raise InvalidInput(f"case status must be one of {', '.join(CASE_STATUSES)}, not {status!r}")
    village = aliased(OrgUnit)
    stmt = (select(Case, village.name, ProcessVersion.name, ProcessVersion.version)
            .join(village, village.id == Case.village_id)
            .join(ProcessVersion, ProcessVersion.id == Case.process_version_id)
            .options(_case_columns_only())
            .where(case_scope(user)).order_by(Case.id.desc()).limit(limit))
    if status:  # inline (validated above): the open-case lists run on the partial indexes over open cases
        stmt = stmt.where(Case.status == bindparam("status", status, literal_execute=True))
    return [{"number": c.number, "service_code": c.service_code, "service_name": pname, "process_version": pver,
             "village": vname, "applicant_name": c.applicant_name, "status": c.status, "outcome": c.outcome,
             "created_at": _iso(c.created_at), "updated_at": _iso(c.updated_at)}
            for c, vname, pname, pver in session.execute(stmt).all()]


def case_detail(session: Session, number: str, user: Who = None) -> dict[str, Any]:
    case = visible_case(session, user, number)
    pv = session.execute(select(ProcessVersion.process_id, ProcessVersion.name, ProcessVersion.version)
                         .where(ProcessVersion.id == case.process_version_id)).first()
    units = {u.id: u for u in session.scalars(select(OrgUnit).where(
        OrgUnit.id.in_([case.village_id, case.township_id, case.county_id])))}
    first_clerk = session.get(User, case.first_clerk_id) if case.first_clerk_id else None
    actors: dict[int, tuple[str, str]] = {uid: (name, shown) for uid, name, shown in session.execute(
        select(User.id, User.username, User.display_name).distinct()
        .join(AuditEvent, AuditEvent.actor_id == User.id).where(AuditEvent.case_id == case.id))}
    timers = session.scalars(select(TimerRow).where(TimerRow.case_id == case.id).order_by(TimerRow.id)).all()
    audit = session.scalars(select(AuditEvent).where(AuditEvent.case_id == case.id)
                            .order_by(AuditEvent.id)).all()
    return {
        "number": case.number, "service_code": case.service_code,
        "process": {"id": pv.process_id, "name": pv.name, "version": pv.version} if pv else None,
        "applicant_name": case.applicant_name, "status": case.status, "outcome": case.outcome,
        "village": units[case.village_id].name, "township": units[case.township_id].name,
        "county": units[case.county_id].name,
        "first_clerk": first_clerk.username if first_clerk else None,
        "first_clerk_name": first_clerk.display_name if first_clerk else None,
        "created_at": _iso(case.created_at), "updated_at": _iso(case.updated_at), "closed_at": _iso(case.closed_at),
        "version": case.version,
        "accepted_at": _iso(case.accepted_at),
        "sla": {
            "legal_limit_workdays": case.legal_limit_workdays, "legal_due_at": _iso(case.legal_due_at),
            "promised_limit_workdays": case.promised_limit_workdays, "promised_due_at": _iso(case.promised_due_at),
            "estimated": case.due_estimated, "warning_level": case.warning_level,
            "paused_at": _iso(case.paused_at), "extension_workdays": case.extension_workdays,
        },
        "pauses": [{"kind": p.kind, "reason": p.reason, "started_at": _iso(p.started_at),
                    "ended_at": _iso(p.ended_at), "workdays_left": {k: v for k, v in p.left.items() if k != "timers"}}
                   for p in session.scalars(select(Pause).where(Pause.case_id == case.id).order_by(Pause.id))],
        "cards": [card_dict(c) for c in session.scalars(select(Card).where(Card.case_id == case.id)
                                                        .order_by(Card.id))],
        "tasks": list_tasks(session, user, number, state=None),
        "timers": [{"bpmn_id": t.bpmn_id, "due_at": _iso(t.due_at), "state": t.state,
                    "fired_at": _iso(t.fired_at), "error": t.error} for t in timers],
        "audit": [{"at": _iso(e.at), **_who_did(e, actors), "action": e.action, "old": e.old_value,
                   "new": e.new_value, "details": e.details} for e in audit],
    }


def _who_did(event: AuditEvent, actors: dict[int, tuple[str, str]]) -> dict[str, str]:
    """`actor` (a username, the operator's login, or "system" for the engine's own moves) and
    `actor_name` (the person's name, as pages show it)."""
    if event.actor_id is not None and event.actor_id in actors:
        username, shown = actors[event.actor_id]
        return {"actor": username, "actor_name": shown}
    operator = (event.details or {}).get("operator")
    if operator:
        return {"actor": operator, "actor_name": f"{Role.OPERATOR.zh}（{operator.removeprefix('operator:')}）"}
    return {"actor": "system", "actor_name": "系统"}


def count_open_cases(session: Session, user: Who = None) -> int:
    return session.scalar(select(func.count()).select_from(Case).where(Case.status == OPEN, case_scope(user))) or 0


def process_rows(versions: Sequence[Any]) -> list[dict[str, Any]]:
    """Rows of `processes.list_versions` (listed columns and counts, never the BPMN, spec or metadata)."""
    return [{"process_id": v.process_id, "name": v.name, "version": v.version, "executable": v.executable,
             "file": v.filename, "sha256": v.sha256[:12], "deployed_at": _iso(v.deployed_at),
             "user_tasks": v.user_tasks or 0, "warnings": v.warnings or 0} for v in versions]


def card_dict(c: Card) -> dict[str, Any]:
    return {"id": c.id, "color": c.color, "subject": c.subject, "task_id": c.task_id, "reason": c.reason,
            "issued_at": _iso(c.issued_at), "due_at": _iso(c.due_at), "resolved_at": _iso(c.resolved_at),
            "responsible_clerk_id": c.responsible_clerk_id, "assignee_id": c.assignee_id}


def list_notifications(session: Session, user: Actor | User, unread_only: bool = False,
                       limit: int = 50) -> list[dict[str, Any]]:
    stmt = (select(Notification, Case.number).outerjoin(Case, Case.id == Notification.case_id)
            .where(Notification.user_id == as_actor(user).id).order_by(Notification.id.desc()).limit(limit))
    if unread_only:
        stmt = stmt.where(Notification.read_at.is_(None))
    return [{"id": n.id, "case_number": number, "message": n.message, "created_at": _iso(n.created_at),
             "read": n.read_at is not None} for n, number in session.execute(stmt)]


def estimated_open_cases(session: Session, user: Who = None) -> int:
    """Open cases whose dues rest on a year the calendar does not know yet (shown as a warning)."""
    return session.scalar(select(func.count()).select_from(Case).where(
        Case.status == OPEN, Case.due_estimated.is_(True), case_scope(user))) or 0
