"""What a report counts, each number once: the measures as SQL predicates over the projections, and the
filters a drill-down adds to them.

Every number on the board is `count(*)` of the rows one predicate here selects (or a sum of a column over
them), and the list a number links to selects with the very same predicate (`where`), plus the filter of
its row — so the list's total is the number by construction, not by two queries kept in step by hand.

Subjects: most measures count **cases**; the open cards count **cards** (a case may hold several); broken
down by the person holding them (经办人), the open measures count that person's **steps** (ready tasks),
since a step, not a case, is what one holds.
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from enum import StrEnum
from typing import Any

from sqlalchemy import ColumnElement, and_, false, literal_column, select
from sqlalchemy.orm import Session

from .. import catalog, clock
from ..errors import InvalidInput
from ..models import Card, Case, ProcessVersion, TaskRow
from . import scope

OPEN: ColumnElement[str] = literal_column("'open'")  # literals: the partial indexes over open cases match
COMPLETED: ColumnElement[str] = literal_column("'completed'")
READY: ColumnElement[str] = literal_column("'ready'")


class Measure(StrEnum):
    OPEN = "open"              # 在办
    DUE_SOON = "due_soon"      # 即将到期 (yellow), clock running
    OVERDUE = "overdue"        # 超期 (red), clock running
    PAUSED = "paused"          # 暂停计时 (补正, 特别程序, 公示)
    COMPLETED = "completed"    # 本月办结 (status completed, closed this Asia/Shanghai month)
    ON_TIME = "on_time"        # of those, closed by the promised due
    LATE = "late"              # of those, closed after it
    TIMED = "timed"            # of those, with the working days taken known (the average's base)
    CARDS = "cards"            # open yellow/red cards


#: The measures of open work: these, broken down by 经办人, count the steps people hold.
OPEN_MEASURES = (Measure.OPEN, Measure.DUE_SOON, Measure.OVERDUE, Measure.PAUSED)
#: The measures of the month's closed cases.
CLOSED_MEASURES = (Measure.COMPLETED, Measure.ON_TIME, Measure.LATE, Measure.TIMED)


class Subject(StrEnum):
    CASE = "case"
    TASK = "task"
    CARD = "card"


@dataclass(frozen=True)
class Month:
    """The Asia/Shanghai calendar month a board's "this month" means, as UTC instants [start, end)."""
    first_day: date
    start: datetime
    end: datetime

    @classmethod
    def of(cls, now: datetime) -> Month:
        return cls.containing(clock.local(now).date())

    @classmethod
    def containing(cls, day: date) -> Month:
        """The month a calendar day (Asia/Shanghai) falls in."""
        first = day.replace(day=1)
        following = first.replace(year=first.year + 1, month=1) if first.month == 12 else \
            first.replace(month=first.month + 1)
        return cls(first, _midnight(first), _midnight(following))

    def previous(self) -> Month:
        """The month before this one (the last complete month, seen from this one)."""
        day = self.first_day
        return Month.containing(day.replace(year=day.year - 1, month=12) if day.month == 1
                                else day.replace(month=day.month - 1))

    @property
    def code(self) -> str:
        """The month as a page's address names it: YYYY-MM."""
        return f"{self.first_day:%Y-%m}"

    @classmethod
    def parse(cls, value: Any, now: datetime) -> Month:
        """A month a reader chose (`YYYY-MM`, e.g. from a report's month picker): a month that has begun by
        `now`. Anything else — not that shape, no such month, before 1970, later than the current month — is
        `InvalidInput` (a month to come has no numbers yet; a blank report would pass for one)."""
        shown = str(value)[:20]
        found = _MONTH.fullmatch(value) if isinstance(value, str) else None
        if found is None or not 1 <= int(found[2]) <= 12 or int(found[1]) < clock.FIRST_YEAR:
            raise InvalidInput(f"月份 {shown!r} 无效，应为“年-月”如 2026-10 / bad month {shown!r}: YYYY-MM",
                               reason="report.month_invalid", month=shown)
        month = cls.containing(date(int(found[1]), int(found[2]), 1))
        if month.first_day > cls.of(now).first_day:
            raise InvalidInput(f"{shown} 尚未到来，没有数据 / {shown} has not begun: no numbers yet",
                               reason="report.month_future", month=shown)
        return month


#: a month as a report's address names it
_MONTH = re.compile(r"([0-9]{4})-([0-9]{2})")


def month_of(value: Any, now: datetime) -> Month:
    """The month a report counts closures in: the one `value` names (a `Month`, or YYYY-MM checked by
    `Month.parse`), or the current one when none is given."""
    if isinstance(value, Month):
        return value
    if value is None or value == "":
        return Month.of(now)
    return Month.parse(value, now)


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time(0), clock.SHANGHAI).astimezone(UTC)


def parse_measure(value: Any) -> Measure:
    try:
        return Measure(value)
    except ValueError:
        shown = str(value)[:20]
        raise InvalidInput(f"没有这个统计项 / no measure {shown!r}: one of {', '.join(Measure)}",
                           reason="report.measure_invalid", measure=shown) from None


# ------------------------------------------------------------------------------------------- predicates
def case_predicate(measure: Measure, month: Month) -> ColumnElement[bool]:
    """The cases a measure counts (CARDS: the open cases whose cards `card_predicate` counts)."""
    open_ = Case.status == OPEN
    running = and_(open_, Case.paused_at.is_(None))
    completed = and_(Case.closed_at >= month.start, Case.closed_at < month.end, Case.status == COMPLETED)
    return {
        Measure.OPEN: open_,
        Measure.DUE_SOON: and_(running, Case.warning_level == "yellow"),
        Measure.OVERDUE: and_(running, Case.warning_level == "red"),
        Measure.PAUSED: and_(open_, Case.paused_at.is_not(None)),
        Measure.COMPLETED: completed,
        Measure.ON_TIME: and_(completed, Case.on_time.is_(True)),
        Measure.LATE: and_(completed, Case.on_time.is_(False)),
        Measure.TIMED: and_(completed, Case.workdays_taken.is_not(None)),
        Measure.CARDS: open_,
    }[measure]


def task_predicate(measure: Measure) -> ColumnElement[bool]:
    """The steps someone holds that an open measure counts (joined with their cases)."""
    held = and_(TaskRow.state == READY, TaskRow.assignee_id.is_not(None), Case.status == OPEN)
    running = and_(held, Case.paused_at.is_(None))
    return {
        Measure.OPEN: held,
        Measure.DUE_SOON: and_(running, TaskRow.warning_level == "yellow"),
        Measure.OVERDUE: and_(running, TaskRow.warning_level == "red"),
        Measure.PAUSED: and_(held, Case.paused_at.is_not(None)),
    }[measure]


def card_predicate() -> ColumnElement[bool]:
    """The open cards (not resolved), joined with their cases (closing a case resolves its cards)."""
    return and_(Card.resolved_at.is_(None), Case.status == OPEN)


def subject_of(measure: Measure, by_person: bool) -> Subject:
    """What the rows behind a number are: cards for CARDS; steps for the open measures of one holder."""
    if measure is Measure.CARDS:
        return Subject.CARD
    if by_person:
        if measure not in OPEN_MEASURES:
            raise InvalidInput(f"{measure} is not counted by the person holding the steps",
                               reason="report.measure_invalid", measure=measure.value)
        return Subject.TASK
    return Subject.CASE


def predicate(measure: Measure, month: Month, subject: Subject) -> ColumnElement[bool]:
    """The one predicate of a measure over its subject: the board counts it, the drill-down lists it."""
    if subject is Subject.CARD:
        return and_(case_predicate(Measure.CARDS, month), card_predicate())
    if subject is Subject.TASK:
        return task_predicate(measure)
    return case_predicate(measure, month)


# ------------------------------------------------------------------------------------------- departments
def departments(session: Session) -> dict[str, str | None]:
    """Service code → its department (民政, 人社…): the catalogue's; for a process that is not in the
    catalogue, the first candidate group its newest version names at county level (None: no department).
    One statement, over the versions of processes outside the catalogue only (none in production)."""
    known = {code: (item.get("department") or None) for code, item in catalog.items_by_code().items()}
    newest: dict[str, tuple[int, str | None]] = {}
    rows = session.execute(select(ProcessVersion.process_id, ProcessVersion.version, ProcessVersion.task_meta)
                           .where(ProcessVersion.process_id.not_in(list(known))))
    for process_id, version, meta in rows:
        if process_id in newest and newest[process_id][0] > version:
            continue
        groups = [g for m in (meta or {}).values() if isinstance(m, dict) and m.get("level") == "county"
                  for g in (m.get("candidate_groups") or ())]
        newest[process_id] = (version, groups[0] if groups else None)
    return {**known, **{code: dept for code, (_, dept) in newest.items()}}


#: the key of the rows of no department / no person
NONE = "none"
SERVICE_CODE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,31}")
_USER_ID = re.compile(r"[0-9]{1,12}")
#: the filters of a drill-down list, by the breakdown each comes from
FILTER_KEYS = ("unit", "item", "department", "clerk", "agent")
#: the breakdowns of the board (department is folded from item; agent counts the steps people hold)
BREAKDOWNS = ("unit", "item", "department", "clerk", "agent")


def _bad_filter(key: str, value: Any) -> InvalidInput:
    shown = str(value)[:40]
    return InvalidInput(f"筛选条件 {key}={shown!r} 无效 / bad filter {key}={shown!r}", reason="report.filter_invalid",
                        key=key, value=shown)


def department_codes(depts: Mapping[str, str | None], department: str) -> list[str]:
    """The service codes of a department (`NONE`: of no department)."""
    wanted = None if department == NONE else department
    return sorted(code for code, dept in depts.items() if dept == wanted)


@dataclass(frozen=True)
class Filters:
    """A drill-down's filters, checked: their values (for links) and their conditions."""
    values: Mapping[str, str]
    conditions: tuple[ColumnElement[bool], ...]
    agent_id: int | None  # the steps (and cards) of one holder


def filters(session: Session, sub: scope.Subtree, given: Mapping[str, Any]) -> Filters:
    """Check a drill-down's filters (the keys of its board row) and build their conditions on the cases
    (the holder's on the steps and cards). Unknown keys and bad values are `InvalidInput`; a unit outside
    the subtree is `NotFound`."""
    values: dict[str, str] = {}
    conds: list[ColumnElement[bool]] = []
    agent_id = None
    for key, raw in given.items():
        if raw is None or raw == "":
            continue
        if key not in FILTER_KEYS:
            raise _bad_filter(key, raw)
        if not isinstance(raw, str) or len(raw) > 40:
            raise _bad_filter(key, raw)
        values[key] = raw
        if key == "unit":
            conds.append(scope.unit_condition(scope.within(session, sub, raw)))
        elif key == "item":
            if not SERVICE_CODE.fullmatch(raw):
                raise _bad_filter(key, raw)
            conds.append(Case.service_code == raw)
        elif key == "department":
            codes = department_codes(departments(session), raw)
            conds.append(Case.service_code.in_(codes) if codes else false())
        elif key == "clerk":
            if raw == NONE:
                conds.append(Case.first_clerk_id.is_(None))
            elif _USER_ID.fullmatch(raw):
                conds.append(Case.first_clerk_id == int(raw))
            else:
                raise _bad_filter(key, raw)
        else:  # agent
            if not _USER_ID.fullmatch(raw):
                raise _bad_filter(key, raw)
            agent_id = int(raw)
    return Filters(values, tuple(conds), agent_id)


def holder_condition(subject: Subject, agent_id: int) -> ColumnElement[bool]:
    """The rows of one holder: the steps they hold, the cards naming them as the step's assignee."""
    return TaskRow.assignee_id == agent_id if subject is Subject.TASK else Card.assignee_id == agent_id
