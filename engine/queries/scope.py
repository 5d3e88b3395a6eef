"""Who sees what, as SQL: the policy predicates of `engine.policy` drawn as WHERE conditions, so a list
asks the database for exactly the rows its reader may see (DESIGN invariant 7: anything else is "not
found", never "forbidden").

The inbox conditions repeat the predicates of the partial indexes over ready tasks as literals
(`state = 'ready'`), which is what lets SQLite and PostgreSQL use those indexes.
"""
from __future__ import annotations

from sqlalchemy import ColumnElement, and_, false, literal_column, or_, select, true
from sqlalchemy.orm import Session, defer

from .. import policy
from ..errors import NotFound
from ..models import Case, TaskRow, User
from ..policy import Actor, as_actor
from ..vocab import WORKER_ROLES, Level, Role

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


def visible_case(session: Session, user: Who, number: str) -> Case:
    """The case `number` if `user` may see it — every column but the workflow state, which no page
    reads — else `NotFound` (whether it does not exist or is someone else's is not told)."""
    case = session.scalar(select(Case).options(defer(Case.instance_json, raiseload=True))
                          .where(Case.number == number, case_scope(user)))
    if case is None:
        raise NotFound(f"没有办件 {number}，或您无权查看 / no case {number}", reason="case.not_found", case=number)
    return case


# literals, so both databases match the partial indexes over live rows
READY: ColumnElement[str] = literal_column("'ready'")
OPEN: ColumnElement[str] = literal_column("'open'")


def queue_parts(user: Actor | User) -> tuple[ColumnElement[bool], ...]:
    """The unclaimed ready tasks of the user's unit they may pick up (`policy.may_work_on` as SQL), as
    disjoint conditions that one index each serves in due order; () for roles without a unit queue.

    A village's or township's queue is one range of `ix_tasks_ready_queue` (unit, due, id). A county
    officer's is two ranges of `ix_tasks_ready_group` (unit, candidate group, due, id): their department's
    tasks and the tasks for no department — rather than the whole county queue of every department,
    filtered row by row."""
    actor = as_actor(user)
    if actor.role not in WORKER_ROLES or not policy.is_staff(actor):
        return ()
    queue = and_(TaskRow.state == READY, TaskRow.assignee_id.is_(None), TaskRow.unit_id == actor.unit_id)
    if actor.role != Role.COUNTY_OFFICER:
        return (queue,)
    nobody = and_(queue, TaskRow.candidate_group.is_(None))
    if actor.department is None:
        return (nobody,)
    return (and_(queue, TaskRow.candidate_group == actor.department), nobody)


def queue_filter(user: Actor | User) -> ColumnElement[bool] | None:
    """The user's unit queue (`queue_parts`) as one condition; None for roles without a unit queue."""
    parts = queue_parts(user)
    return None if not parts else parts[0] if len(parts) == 1 else or_(*parts)


def claimed_filter(user: Actor | User) -> ColumnElement[bool]:
    """Ready tasks the user holds, wherever they sit. Served by the partial index `ix_tasks_ready_claimed`."""
    return and_(TaskRow.state == READY, TaskRow.assignee_id == as_actor(user).id)


def inbox_filter(user: Actor | User) -> ColumnElement[bool]:
    """Everything in the user's inbox as one condition (the queue and the claimed tasks are disjoint)."""
    queue = queue_filter(user)
    return claimed_filter(user) if queue is None else or_(queue, claimed_filter(user))
