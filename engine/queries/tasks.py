"""Tasks as people look for them: a user's inbox (with its counts), the tasks of a case, one task with its
form, the colleagues a task may be handed to.

All in due order — (due instant, id), a task without a deadline last — and paged by that key both ways,
which is the order of the partial indexes over ready tasks (`ix_tasks_ready_queue`: unit, due, id;
`ix_tasks_ready_group`: unit, department, due, id; `ix_tasks_ready_claimed`: assignee, due, id): a page
walks its index and stops at LIMIT.
"""
from __future__ import annotations

import functools
import operator
import re
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, func, literal, select, true, tuple_, union_all
from sqlalchemy.orm import Session, aliased

from .. import clock
from ..errors import InvalidInput, NotFound
from ..forms import CASE_FIELDS
from ..models import T_TASK, Case, Notification, OrgUnit, ProcessVersion, TaskRow, User
from ..vocab import WORKER_ROLES, Level, TaskState, WarningLevel
from .models import Colleague, FormField, InboxCounts, TaskDetail, TaskItem
from .pages import Page, check_limit, page_before, page_of, read_task_cursor, task_cursor
from .scope import Who, case_scope, claimed_filter, queue_parts, visible_case, who
from .search import case_search

#: The order of every task list: the indexes' order (PostgreSQL's default places NULLs last too).
DUE_ORDER = (TaskRow.due_at.asc().nulls_last(), TaskRow.id)
#: How many tasks a case page lists (a case has a handful; a long loop of rework rounds a few dozen).
CASE_TASKS_SHOWN = 200
#: The tabs of an inbox: both lists, the tasks I claimed, my unit's unclaimed queue.
INBOX_TABS = ("all", "claimed", "queue")
#: The levels a task sits at (its lane): the inbox's level filter.
TASK_LEVELS = (Level.VILLAGE.value, Level.TOWNSHIP.value, Level.COUNTY.value)
#: What a service item code looks like (catalog.yaml: MZ-01; the tests' FX-DIBAO, TEST-RELAY).
SERVICE_CODE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,31}")
#: The most colleagues a reassignment offers (a county has one officer per department, a township a few).
MAX_COLLEAGUES = 200

_TASK_LIST_COLUMNS = tuple(T_TASK.c[name] for name in (
    "id", "case_id", "bpmn_id", "name", "lane", "level", "unit_id", "candidate_group", "state", "created_at",
    "completed_at", "due_at", "limit_workdays", "warning_level"))


def task_select(where: ColumnElement[bool], limit: int, order: tuple[Any, ...] = DUE_ORDER,
                found: Any = None) -> Select[Any]:
    """Task rows as plain columns with their case (and its item's name), unit and assignee: a list builds
    no ORM objects and never touches the case's workflow. `found`: a subquery of task ids to start from
    (`page_select`)."""
    assignee, unit = aliased(User), aliased(OrgUnit)
    stmt = select(*_TASK_LIST_COLUMNS, Case.number, Case.service_code, Case.applicant_name,
                  ProcessVersion.name.label("service_name"),
                  assignee.username.label("assignee_name"), assignee.display_name.label("assignee_display"),
                  unit.name.label("unit_name"))
    if found is not None:
        stmt = stmt.select_from(found).join(TaskRow, TaskRow.id == found.c.id)
    return (stmt
            .join(Case, Case.id == TaskRow.case_id)
            .join(ProcessVersion, ProcessVersion.id == Case.process_version_id)
            .join(unit, unit.id == TaskRow.unit_id)
            .outerjoin(assignee, assignee.id == TaskRow.assignee_id)
            .where(where).order_by(*order).limit(limit))


def page_select(where: ColumnElement[bool] | Sequence[ColumnElement[bool]], cursor: str | None, limit: int,
                extra: ColumnElement[bool] | None = None, backward: bool = False) -> Select[Any]:
    """`limit` task rows matching `where` (and `extra`) after the cursor's (due, id) — from the start
    without one — in due order, as one statement.

    `where` is one condition or several disjoint ones (a unit's queue, its department's part of it, the
    tasks one claimed), each the predicate of an index in (due, id) order. Dated tasks come first, then
    the undated ones. Written as one range with `NULLS LAST` neither database can walk an index to it:
    SQLite keeps NULLs first in its indexes and sorts the whole range instead, and PostgreSQL cannot start a
    scan at the key of `(due, id) > key OR due IS NULL` and filters its way there. So each condition's
    dated and undated tasks are two branches of one UNION ALL, each an index range in the index's own
    order from its own start, each stopping at `limit`; a cursor on an undated task needs the undated
    branches only. `extra` (filters on the task and its case) is checked on the rows each branch walks.

    A branch reads the task ids only (with their case, for the filters): joined to the unit or the
    assignee there, SQLite starts from the unit (one row, by the unit id the condition names) and then
    sorts the whole range instead of stopping at `limit`. The rows of the ≤ 2 × parts × `limit` ids are
    joined once, outside, and only those are sorted.

    `backward`: the `limit` rows *before* the cursor, in reverse due order (each branch walks its index
    backwards from the cursor's key; the caller turns them round: `pages.page_before`).
    """
    parts = tuple(where) if isinstance(where, (list, tuple)) else (where,)
    due, task_id = read_task_cursor(cursor) if cursor is not None else (None, None)
    in_index = (TaskRow.due_at, TaskRow.id)  # plain ascending: each branch holds no NULLs or only NULLs

    def branch(cond: ColumnElement[bool]) -> Select[Any]:
        order = (TaskRow.due_at.desc(), TaskRow.id.desc()) if backward else in_index
        return (select(TaskRow.id, TaskRow.due_at).join(Case, Case.id == TaskRow.case_id)
                .where(cond).order_by(*order).limit(limit))

    branches = []
    if backward:
        if task_id is None:
            raise ValueError("paging backwards needs a cursor")
        for part in parts:
            cond = part if extra is None else and_(part, extra)
            if due is None:  # before an undated task: the undated ones below it, then every dated one
                branches.append(branch(and_(cond, TaskRow.due_at.is_(None), TaskRow.id < task_id)))
                branches.append(branch(and_(cond, TaskRow.due_at.is_not(None))))
            else:
                branches.append(branch(and_(cond, tuple_(*in_index) < (due, task_id))))
        found = union_all(*(select(b.subquery()) for b in branches)).subquery("found")
        return task_select(TaskRow.id == found.c.id, limit, (found.c.due_at.desc().nulls_first(), found.c.id.desc()),
                           found=found)
    for part in parts:
        cond = part if extra is None else and_(part, extra)
        undated = and_(cond, TaskRow.due_at.is_(None))
        if task_id is not None and due is None:
            branches.append(branch(and_(undated, TaskRow.id > task_id)))
            continue
        dated = and_(cond, TaskRow.due_at.is_not(None) if due is None else tuple_(*in_index) > (due, task_id))
        branches += [branch(dated), branch(undated)]
    found = union_all(*(select(b.subquery()) for b in branches)).subquery("found")
    return task_select(TaskRow.id == found.c.id, limit, (found.c.due_at.asc().nulls_last(), found.c.id),
                       found=found)


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


def inbox_parts(user: Who, tab: str = "all") -> tuple[ColumnElement[bool], ...]:
    """The disjoint conditions of an inbox tab (`INBOX_TABS`), each served by one partial index: `queue`
    my unit's unclaimed tasks I may pick up (by department at county level), `claimed` the tasks I hold,
    `all` both."""
    if tab not in INBOX_TABS:
        raise InvalidInput(f"inbox tab must be one of {', '.join(INBOX_TABS)}, not {str(tab)[:20]!r}",
                           reason="inbox.tab_invalid")
    actor = who(user)
    queue = queue_parts(actor) if tab in ("all", "queue") else ()
    mine = (claimed_filter(actor),) if tab in ("all", "claimed") and actor.id is not None else ()
    return (*queue, *mine)


def inbox_filters(service_code: str | None = None, level: str | None = None, warning: str | None = None,
                  search: str | None = None) -> ColumnElement[bool] | None:
    """The filters of an inbox as one condition on the task and its case (None: no filter). Each value
    outside its set is `InvalidInput` with a reason: a typo must not look like "nothing to do"."""
    where: list[ColumnElement[bool]] = []
    if service_code:
        if not isinstance(service_code, str) or not SERVICE_CODE.fullmatch(service_code):
            raise InvalidInput(f"not a service item code: {str(service_code)[:40]!r}", reason="inbox.service_invalid")
        where.append(Case.service_code == service_code)
    if level:
        if level not in TASK_LEVELS:
            raise InvalidInput(f"level must be one of {', '.join(TASK_LEVELS)}, not {str(level)[:20]!r}",
                               reason="inbox.level_invalid")
        where.append(TaskRow.level == level)
    if warning:
        if warning not in WarningLevel.values():
            raise InvalidInput(f"warning must be one of {', '.join(WarningLevel.values())}, not {str(warning)[:20]!r}",
                               reason="inbox.warning_invalid")
        where.append(TaskRow.warning_level == warning)
    found = case_search(search)
    if found is not None:
        where.append(found)
    return and_(*where) if where else None


def inbox(session: Session, user: Who, limit: int = 200, cursor: str | None = None, *, tab: str = "all",
          service_code: str | None = None, level: str | None = None, warning: str | None = None,
          search: str | None = None, before: str | None = None) -> Page[TaskItem]:
    """A user's inbox: their unit's unclaimed queue (by department at county level) and the tasks they
    claimed (`tab`: both, or either), in due order, filtered by service item, level, warning colour and a
    search for a case number or an applicant (`search.case_search`).

    One statement a page: the branches of `page_select`, each walking its partial index over ready tasks
    in due order from the cursor and stopping at `limit` + 1 — so its cost follows the open work, never
    the history of completed tasks, and never the page number. The filters are checked on the rows walked.
    `before` (a cursor of a row of a later page): the page before that row, the same way backwards.
    """
    actor, limit = who(user), check_limit(limit)
    parts = inbox_parts(actor, tab)
    extra = inbox_filters(service_code, level, warning, search)
    for given in (cursor, before):
        if given is not None:
            read_task_cursor(given)  # a bad cursor is refused even where no branch would read it
    if not parts:
        return Page(())
    if before is not None:
        rows = session.execute(page_select(parts, before, limit + 1, extra, backward=True)).all()
        return page_before(rows, limit, task_item, _cursor_of)
    rows = session.execute(page_select(parts, cursor, limit + 1, extra)).all()
    return page_of(rows, limit, task_item, _cursor_of, after_cursor=cursor is not None)


def visible_task(session: Session, task_id: int, user: Who) -> TaskItem:
    """One task of a case `user` may see, as a list shows it (no form: the task's process metadata is not
    read); `NotFound` for a task that does not exist or that they may not see — the same answer."""
    row = session.execute(task_select(and_(TaskRow.id == task_id, case_scope(user)), 1)).first()
    if row is None:
        raise NotFound(f"没有这个环节，或您无权查看 / no task {task_id}", reason="task.not_found", task_id=task_id)
    return task_item(row)


def colleagues(session: Session, user: Who) -> tuple[Colleague, ...]:
    """The active workers of the user's unit, by name: whom a step of the unit may be handed to (转办;
    `policy.may_receive` says which of them for which step). The users' unit index."""
    actor = who(user)
    if actor.unit_id is None:
        return ()
    rows = session.execute(select(User.id, User.username, User.display_name, User.role, User.department)
                           .where(User.unit_id == actor.unit_id, User.active.is_(True),
                                  User.role.in_(sorted(WORKER_ROLES)))
                           .order_by(User.display_name, User.username).limit(MAX_COLLEAGUES))
    return tuple(Colleague(r.id, r.username, r.display_name, r.role, r.department) for r in rows)


def inbox_counts(session: Session, user: Who, now: datetime | None = None) -> InboxCounts:
    """The navigation's numbers (`InboxCounts`) as ONE statement of scalar subqueries, each a count over a
    range of a partial index (the queue's, the claimed tasks', the unread notifications'): overdue ones
    are red tasks whose due has passed — the index range up to `now`, then the level of those rows only.
    """
    actor = who(user)
    now = now or clock.now()
    queue = queue_parts(actor)
    claimed = claimed_filter(actor) if actor.id is not None else None

    def count(*where: ColumnElement[bool]) -> Any:
        return select(func.count()).select_from(TaskRow).where(*where).scalar_subquery()

    def total(terms: list[Any]) -> Any:
        return functools.reduce(operator.add, terms) if terms else literal(0)

    late = (TaskRow.due_at <= now, TaskRow.warning_level == WarningLevel.RED.value)
    parts = [*queue, *([claimed] if claimed is not None else [])]
    unread = (select(func.count()).select_from(Notification)
              .where(Notification.user_id == actor.id, Notification.read_at.is_(None)).scalar_subquery()
              if actor.id is not None else literal(0))
    row = session.execute(select(total([count(p) for p in queue]).label("queue"),
                                 (count(claimed) if claimed is not None else literal(0)).label("claimed"),
                                 total([count(p, *late) for p in parts]).label("overdue"),
                                 unread.label("unread"))).one()
    return InboxCounts(int(row.queue), int(row.claimed), int(row.overdue), int(row.unread))


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
