"""Tasks as people look for them: a user's inbox, the tasks of a case, one task with its form.

All in due order — (due instant, id), a task without a deadline last — and paged by that key, which is
the order of the partial indexes over ready tasks (`ix_tasks_ready_queue`: unit, due, id;
`ix_tasks_ready_claimed`: assignee, due, id): a page walks its index and stops at LIMIT.
"""
from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, select, true, tuple_, union_all
from sqlalchemy.orm import Session, aliased

from ..errors import InvalidInput, NotFound
from ..forms import CASE_FIELDS
from ..models import T_TASK, Case, OrgUnit, ProcessVersion, TaskRow, User
from ..vocab import TaskState
from .models import FormField, TaskDetail, TaskItem
from .pages import Page, check_limit, page_of, read_task_cursor, task_cursor
from .scope import Who, case_scope, claimed_filter, queue_filter, visible_case, who

#: The order of every task list: the indexes' order (PostgreSQL's default places NULLs last too).
DUE_ORDER = (TaskRow.due_at.asc().nulls_last(), TaskRow.id)
#: How many tasks a case page lists (a case has a handful; a long loop of rework rounds a few dozen).
CASE_TASKS_SHOWN = 200

_TASK_LIST_COLUMNS = tuple(T_TASK.c[name] for name in (
    "id", "case_id", "bpmn_id", "name", "lane", "level", "unit_id", "candidate_group", "state", "created_at",
    "completed_at", "due_at", "limit_workdays", "warning_level"))


def task_select(where: ColumnElement[bool], limit: int, order: tuple[Any, ...] = DUE_ORDER) -> Select[Any]:
    """Task rows as plain columns with their case (and its item's name), unit and assignee: a list builds
    no ORM objects and never touches the case's workflow."""
    assignee, unit = aliased(User), aliased(OrgUnit)
    return (select(*_TASK_LIST_COLUMNS, Case.number, Case.service_code, Case.applicant_name,
                   ProcessVersion.name.label("service_name"),
                   assignee.username.label("assignee_name"), assignee.display_name.label("assignee_display"),
                   unit.name.label("unit_name"))
            .join(Case, Case.id == TaskRow.case_id)
            .join(ProcessVersion, ProcessVersion.id == Case.process_version_id)
            .join(unit, unit.id == TaskRow.unit_id)
            .outerjoin(assignee, assignee.id == TaskRow.assignee_id)
            .where(where).order_by(*order).limit(limit))


def page_select(where: ColumnElement[bool], cursor: str | None, limit: int) -> Select[Any]:
    """`limit` task rows matching `where` after the cursor's (due, id) — from the start without one — in
    due order, as one statement.

    Dated tasks come first, then the undated ones. Written as one range with `NULLS LAST` neither database
    can walk an index to it: SQLite keeps NULLs first in its indexes and sorts the whole range instead,
    and PostgreSQL cannot start a scan at the key of `(due, id) > key OR due IS NULL` and filters its way
    there. So the dated and the undated tasks are two branches of a UNION ALL, each an index range in the
    index's own order from its own start, each stopping at `limit`; only their ≤ 2 × `limit` rows are
    merged. A cursor on an undated task needs the undated branch only.
    """
    due, task_id = read_task_cursor(cursor) if cursor is not None else (None, None)
    in_index = (TaskRow.due_at, TaskRow.id)  # plain ascending: each branch holds no NULLs or only NULLs
    undated = and_(where, TaskRow.due_at.is_(None))
    if task_id is not None and due is None:
        return task_select(and_(undated, TaskRow.id > task_id), limit, in_index)
    dated = and_(where, TaskRow.due_at.is_not(None) if due is None else tuple_(*in_index) > (due, task_id))
    both = union_all(select(task_select(dated, limit, in_index).subquery()),
                     select(task_select(undated, limit, in_index).subquery())).subquery()
    return select(both).order_by(both.c.due_at.asc().nulls_last(), both.c.id).limit(limit)


def _due_key(row: Any) -> tuple[bool, datetime | None, int]:
    return row.due_at is None, row.due_at, row.id


def _cursor_of(row: Any) -> str:
    return task_cursor(row.due_at, row.id)


def task_item(row: Any) -> TaskItem:
    """A row of `task_select` as the read model."""
    return TaskItem(
        id=row.id, case_id=row.case_id, bpmn_id=row.bpmn_id, name=row.name, lane=row.lane, level=row.level,
        unit_id=row.unit_id, unit=row.unit_name, candidate_group=row.candidate_group, assignee=row.assignee_name,
        assignee_display_name=row.assignee_display, state=row.state, created_at=row.created_at,
        completed_at=row.completed_at, due_at=row.due_at, limit_workdays=row.limit_workdays,
        warning_level=row.warning_level if row.state == TaskState.READY else None,
        case_number=row.number, service_code=row.service_code, service_name=row.service_name,
        applicant_name=row.applicant_name)


def inbox(session: Session, user: Who, limit: int = 200, cursor: str | None = None) -> Page[TaskItem]:
    """A user's inbox: their unit's unclaimed queue (by department at county level) and the tasks they
    claimed, in due order.

    Two queries — each walking its partial index over ready tasks in due order from the cursor and
    stopping at `limit` + 1 — merged here; so its cost follows the open work, never the history of
    completed tasks, and never the page number.
    """
    actor, limit = who(user), check_limit(limit)
    parts = [f for f in (queue_filter(actor), claimed_filter(actor)) if f is not None]
    rows = sorted((r for f in parts for r in session.execute(page_select(f, cursor, limit + 1)).all()),
                  key=_due_key)[:limit + 1]
    return page_of(rows, limit, task_item, _cursor_of)


def list_tasks(session: Session, user: Who = None, case_number: str | None = None, state: str | None = "ready",
               limit: int = 200, cursor: str | None = None) -> Page[TaskItem]:
    """A user's inbox (no case given; the operator, who has none, gets every task in `state`), or the
    tasks of one case the user may see (`NotFound` for a case they may not)."""
    actor = who(user)
    if case_number is None and not actor.is_operator:
        return inbox(session, actor, limit, cursor)
    limit = check_limit(limit)
    if state is not None and state not in TaskState.values():  # a typo must not look like "no tasks"
        raise InvalidInput(f"task state must be one of {', '.join(TaskState.values())}, not {str(state)[:20]!r}",
                           reason="task.state_invalid")
    where: list[ColumnElement[bool]] = []
    if case_number is not None:
        where += [Case.number == case_number, case_scope(actor)]
    if state:
        where.append(TaskRow.state == state)
    rows = session.execute(page_select(and_(true(), *where), cursor, limit + 1)).all()
    if case_number is not None and not rows and cursor is None:
        visible_case(session, actor, case_number)  # raises NotFound for an unknown or hidden case
    return page_of(rows, limit, task_item, _cursor_of)


def case_tasks(session: Session, case_id: int) -> tuple[TaskItem, ...]:
    """Every task of a case the caller already found visible, in due order (the case page's list)."""
    rows = session.execute(task_select(TaskRow.case_id == case_id, CASE_TASKS_SHOWN)).all()
    return tuple(task_item(r) for r in rows)


def task_detail(session: Session, task_id: int, user: Who = None) -> TaskDetail:
    """One task with its form (fields, types, options; the case's own fields read-only) and documentation,
    for a client to render. One query; the form comes from the process version's stored metadata."""
    stmt = (task_select(and_(TaskRow.id == task_id, case_scope(user)), 1)
            .add_columns(ProcessVersion.task_meta))
    row = session.execute(stmt).first()
    if row is None:
        raise NotFound(f"没有这个环节，或您无权查看 / no task {task_id}", reason="task.not_found", task_id=task_id)
    item = task_item(row)
    meta = (row.task_meta or {}).get(row.bpmn_id, {})
    return TaskDetail(**{name: getattr(item, name) for name in item.__dataclass_fields__},
                      form_key=meta.get("form_key"), documentation=meta.get("documentation"),
                      fields=tuple(FormField.from_meta(f, readonly=f["id"] in CASE_FIELDS)
                                   for f in meta.get("fields") or ()))
