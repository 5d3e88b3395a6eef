"""督办 and 情况说明 as pages show them: the supervisions of a case (who sent it, when, the message, to which
step, unit and holder), the supervisions of the work in a reader's inbox (so the people who do the work
see them beside it), the explanations written for a case's cards — and what the reader may do about a
late case (`CaseOversight`), so the case page shows only the forms that would work (the engine's verbs,
`cases.supervise`, `cases.explain_card`, `cases.reassign_task`, enforce the same rules: `engine.policy`).

Scoped like `case_detail`: a case the reader may not see is NotFound (`scope.visible_case`).
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, false, or_, select
from sqlalchemy.orm import Session, aliased

from .. import clock, policy
from ..models import Card, CardExplanation, Case, OrgUnit, Supervision, TaskRow, User
from ..policy import Actor, Chain
from ..vocab import WORKER_ROLES, Role, WarningLevel
from .models import CardItem, Colleague, TaskItem
from .pages import check_limit
from .scope import OPEN, READY, Who, visible_case, who
from .serialize import JsonModel

#: the warning levels a 督办 is for (as `cases.supervision.AT_RISK`)
AT_RISK = frozenset({WarningLevel.YELLOW.value, WarningLevel.RED.value})
#: the most workers a reassignment form offers for one step (a unit has a handful)
MAX_TARGETS = 200


@dataclass(frozen=True)
class SupervisionItem(JsonModel):
    """A 督办: on which step (None: the case as a whole), the unit that owned the work and who held it then,
    who sent it, when, and the message."""
    id: int
    case_number: str
    task_id: int | None
    task_name: str | None
    unit_id: int
    unit: str
    assignee: str | None
    assignee_name: str | None
    sent_by: str
    sent_by_name: str
    sent_at: datetime
    message: str


@dataclass(frozen=True)
class CardExplanationItem(JsonModel):
    """The 情况说明 written for a card (one per card), by whom and when."""
    card_id: int
    author: str
    author_name: str
    at: datetime
    explanation: str


@dataclass(frozen=True)
class ReassignChoice(JsonModel):
    """A current step a supervisor may hand to someone else of its unit, and to whom (`policy.may_receive`)."""
    task_id: int
    task_name: str
    unit: str | None
    assignee: str | None
    assignee_name: str | None
    targets: tuple[Colleague, ...]


@dataclass(frozen=True)
class CaseOversight(JsonModel):
    """What the reader may do about a late case: send a 督办 (`may_supervise`: a supervisor over the open
    case, and it or one of its steps due soon or overdue) on the case or on one of `supervise_steps` (the
    ids of the current steps at risk); explain the cards listed in `explainable` (ids of cards not yet
    explained that the reader may explain); reassign the steps of `reassign` (a supervisor leading their
    unit: `policy.leads`)."""
    may_supervise: bool = False
    supervise_steps: tuple[int, ...] = ()
    explainable: tuple[int, ...] = ()
    reassign: tuple[ReassignChoice, ...] = ()


def at_risk(level: str | None, due_at: datetime | None, now: datetime) -> bool:
    """Due soon or overdue (the engine's rule: the stored level, or a due already passed)."""
    return level in AT_RISK or (due_at is not None and due_at <= now)


# ------------------------------------------------------------------------------------------- reading
def _supervision_select(*where: ColumnElement[bool]) -> Select[Any]:
    sender, holder = aliased(User), aliased(User)
    return (select(Supervision, Case.number, TaskRow.name, OrgUnit.name, sender.username, sender.display_name,
                   holder.username, holder.display_name)
            .join(Case, Case.id == Supervision.case_id)
            .join(OrgUnit, OrgUnit.id == Supervision.unit_id)
            .join(sender, sender.id == Supervision.sent_by_id)
            .outerjoin(TaskRow, TaskRow.id == Supervision.task_id)
            .outerjoin(holder, holder.id == Supervision.assignee_id)
            .where(*where))


def _items(session: Session, stmt: Select[Any]) -> tuple[SupervisionItem, ...]:
    return tuple(SupervisionItem(s.id, number, s.task_id, task_name, s.unit_id, unit, holder, holder_name, sender,
                                 sender_name, s.sent_at, s.message)
                 for s, number, task_name, unit, sender, sender_name, holder, holder_name
                 in session.execute(stmt))


def supervisions_of(session: Session, case_id: int) -> tuple[SupervisionItem, ...]:
    """The 督办 of a case the caller already found visible, newest first (the supervisions' case index)."""
    return _items(session, _supervision_select(Supervision.case_id == case_id).order_by(Supervision.id.desc()))


def case_supervisions(session: Session, number: str, user: Who = None) -> tuple[SupervisionItem, ...]:
    """The 督办 of case `number`, newest first, for a reader who may see it (NotFound otherwise)."""
    return supervisions_of(session, visible_case(session, user, number).id)


def inbox_supervisions(session: Session, user: Who, limit: int = 20) -> tuple[SupervisionItem, ...]:
    """The 督办 on the work in the reader's inbox, newest first: on steps they hold now (or held when it was
    sent), and — for a worker — on the work of their unit (at county level, of their department or of
    none), as long as the step is still current and the case open."""
    actor = who(user)
    limit = check_limit(limit)
    if actor.id is None or not policy.is_staff(actor):
        return ()
    mine: list[ColumnElement[bool]] = [TaskRow.assignee_id == actor.id, Supervision.assignee_id == actor.id]
    if actor.role in WORKER_ROLES and actor.unit_id is not None:
        unit = Supervision.unit_id == actor.unit_id
        if actor.role == Role.COUNTY_OFFICER:
            unit = and_(unit, or_(TaskRow.candidate_group.is_(None), TaskRow.candidate_group == actor.department)
                        if actor.department else TaskRow.candidate_group.is_(None))
        mine.append(unit)
    stmt = _supervision_select(Case.status == OPEN, or_(Supervision.task_id.is_(None), TaskRow.state == READY),
                               or_(*mine) if mine else false()).order_by(Supervision.id.desc()).limit(limit)
    return _items(session, stmt)


def explanations_of(session: Session, case_id: int) -> tuple[CardExplanationItem, ...]:
    """The 情况说明 of a case's cards (one per card at most), in the cards' order."""
    rows = session.execute(select(CardExplanation, User.username, User.display_name)
                           .join(Card, Card.id == CardExplanation.card_id)
                           .join(User, User.id == CardExplanation.author_id)
                           .where(Card.case_id == case_id).order_by(Card.id))
    return tuple(CardExplanationItem(e.card_id, username, name, e.at, e.explanation) for e, username, name in rows)


def card_explanations(session: Session, number: str, user: Who = None) -> tuple[CardExplanationItem, ...]:
    """The 情况说明 of case `number`'s cards, for a reader who may see it (NotFound otherwise)."""
    return explanations_of(session, visible_case(session, user, number).id)


# ------------------------------------------------------------------------------------------- what one may do
def oversight_of(session: Session, case: Case, user: Who, tasks: Sequence[TaskItem], cards: Sequence[CardItem],
                 explanations: Sequence[CardExplanationItem], now: datetime | None = None) -> CaseOversight:
    """What the reader may do about a case the caller already found visible, with the tasks and cards it
    read anyway (`case_detail`)."""
    actor = who(user)
    now = now or clock.now()
    chain = Chain(case.village_id, case.township_id, case.county_id)
    is_open = case.status == "open"
    ready = [t for t in tasks if t.state == "ready"]
    risky = tuple(t.id for t in ready if at_risk(t.warning_level, t.due_at, now))
    case_risky = at_risk(case.warning_level, case.promised_due_at or case.legal_due_at, now)
    may_supervise = is_open and (case_risky or bool(risky)) and policy.may_supervise(actor, chain)
    explained = {e.card_id for e in explanations}
    groups = {t.id: t.candidate_group for t in tasks}
    units = dict(session.execute(select(Card.id, Card.unit_id).where(Card.case_id == case.id)).tuples().all()) \
        if cards else {}
    explainable = tuple(c.id for c in cards if c.id not in explained and policy.may_explain_card(
        actor, c.responsible_clerk_id, c.assignee_id, units.get(c.id, case.village_id),
        groups.get(c.task_id) if c.task_id is not None else None))
    reassign: tuple[ReassignChoice, ...] = ()
    if is_open and actor.role == Role.SUPERVISOR:
        reassign = tuple(ReassignChoice(t.id, t.name, t.unit, t.assignee, t.assignee_display_name,
                                        _targets(session, t))
                         for t in ready if policy.leads(actor, t.unit_id, chain))
    return CaseOversight(may_supervise, risky if may_supervise else (), explainable, reassign)


def _targets(session: Session, task: TaskItem) -> tuple[Colleague, ...]:
    """The active workers of a step's unit who could take it over (`policy.may_receive`), by name — its
    holder left out."""
    rows = session.execute(select(User.id, User.username, User.display_name, User.role, User.department)
                           .where(User.unit_id == task.unit_id, User.active.is_(True),
                                  User.role.in_(sorted(WORKER_ROLES)))
                           .order_by(User.display_name, User.username).limit(MAX_TARGETS))
    return tuple(Colleague(r.id, r.username, r.display_name, r.role, r.department) for r in rows
                 if r.username != task.assignee and policy.may_receive(
                     Actor(id=r.id, username=r.username, role=r.role, unit_id=task.unit_id, department=r.department),
                     task.unit_id, task.candidate_group))
