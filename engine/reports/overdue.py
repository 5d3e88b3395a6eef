"""The overdue report (超期报告): the steps running late in a subtree — the ready steps of open cases whose
clock runs, due before now (or, with warning=yellow, due soon) — filtered, sorted and paged by keyset.

Filters: `level` (the step's: village, township, county), `warning` (red: overdue, the default; yellow: due
soon), `unit` (a unit of the reader's subtree: the report becomes that unit's), `item`, `department` (the
item's), `step` (its name), `days` (at least N working days overdue), `person` (a username: the step's
holder or the case's first-responsibility clerk), `card` (none: no card yet; unexplained: a card without its
情况说明; explained: every card explained). Sorts: `overdue` (most working days overdue first = earliest
due), `recent` (latest due first), `unit` (by the step's unit, then due).

"At least N working days overdue" is one range on the due instant: a step due on day d is N working days
late on day t when (d, t] holds N working days, i.e. when it was due by the start of the N-th working day
counted back from today — so the filter runs on `ix_tasks_ready_due`, never day by day per step.
"""
from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, false, func, or_, select
from sqlalchemy.orm import Session, aliased

from .. import clock
from ..clock import due_date
from ..errors import InvalidInput
from ..models import Card, CardExplanation, Case, OrgUnit, ProcessVersion, TaskRow, User
from ..queries.pages import Page, check_limit
from ..queries.scope import Who
from ..queries.serialize import JsonModel
from ..workdays import WorkCalendar, default_calendar
from . import measures, scope
from .measures import OPEN, READY, SERVICE_CODE

SORTS = ("overdue", "recent", "unit")
CARD_STATES = ("none", "unexplained", "explained")
WARNINGS = ("red", "yellow")
LEVELS = ("village", "township", "county")
FILTER_KEYS = ("level", "warning", "unit", "item", "department", "step", "days", "person", "card")
#: "at least N working days overdue": N up to a year of working days
MAX_DAYS = 366
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


@dataclass(frozen=True)
class OverdueRow(JsonModel):
    """A step running late, with its case and who answers for it."""
    task_id: int
    case_number: str
    service_code: str
    service_name: str
    applicant_name: str
    department: str | None
    step: str
    level: str | None
    unit_code: str
    unit: str  # the unit the step sits at
    village: str  # the case's village
    assignee: str | None  # display name of who holds the step (None: in its unit's queue)
    assignee_username: str | None
    first_clerk: str | None
    due_at: datetime
    days_overdue: int  # working days after the due date up to today (0 while due soon)
    warning_level: str
    case_warning_level: str
    card_color: str | None  # the step's strongest card (red over yellow)
    explained: bool  # it has cards, and each has its 情况说明


@dataclass(frozen=True)
class OverdueReport(JsonModel):
    unit: scope.ReportUnit
    chain: tuple[scope.ReportUnit, ...]
    filters: Mapping[str, str]
    sort: str
    total: int
    page: Page[OverdueRow]
    generated_at: datetime


def _bad(key: str, value: Any) -> InvalidInput:
    shown = str(value)[:40]
    return InvalidInput(f"筛选条件 {key}={shown!r} 无效 / bad filter {key}={shown!r}", reason="report.filter_invalid",
                        key=key, value=shown)


def cutoff(now: datetime, days: int, cal: WorkCalendar | None = None) -> datetime:
    """The latest due instant of a step at least `days` working days overdue at `now` (0: overdue at all)."""
    if days <= 0:
        return now
    cal = cal or default_calendar()
    day, found = clock.local(now).date(), 0
    for _ in range(4 * MAX_DAYS):
        if cal.is_workday(day)[0]:
            found += 1
            if found == days:
                return min(now, datetime.combine(day, time(0), clock.SHANGHAI).astimezone(UTC))
        day -= timedelta(days=1)
    raise _bad("days", days)


def days_overdue(due_at: datetime, now: datetime, cal: WorkCalendar | None = None) -> int:
    """Working days after a step's due date up to today (0 when it is not overdue)."""
    if due_at > now:
        return 0
    cal = cal or default_calendar()
    try:
        return cal.count_workdays(due_date(due_at), clock.local(now).date())[0]
    except ValueError:  # beyond the calendar's span: a decade late
        return cal.count_workdays(clock.local(now).date() - timedelta(days=3600), clock.local(now).date())[0]


_UNIT = aliased(OrgUnit, name="step_unit")
_VILLAGE = aliased(OrgUnit, name="village")
_HOLDER = aliased(User, name="holder")
_CLERK = aliased(User, name="clerk")


@dataclass(frozen=True)
class OverdueQuery:
    sub: scope.Subtree
    filters: Mapping[str, str]
    where: tuple[ColumnElement[bool], ...]
    depts: Mapping[str, str | None]

    def count(self) -> Select[Any]:
        return (select(func.count()).select_from(TaskRow).join(Case, Case.id == TaskRow.case_id)
                .where(*self.where))

    def rows(self, sort: str, limit: int, after: tuple[Any, ...] | None) -> Select[Any]:
        """A page of rows in `sort` order after the keyset `after` (due, id, unit code). The page is chosen on
        the steps and their cases alone; names (item, units, people) are joined to its rows only."""
        due, tid, code = TaskRow.due_at, TaskRow.id, _UNIT.code
        page = (select(tid.label("tid"), due.label("due"), *([code.label("ucode")] if sort == "unit" else []))
                .select_from(TaskRow).join(Case, Case.id == TaskRow.case_id).where(*self.where).limit(limit + 1))
        if sort == "recent":
            page = page.order_by(due.desc(), tid.desc())
            if after is not None:
                page = page.where(or_(due < after[0], and_(due == after[0], tid < after[1])))
        elif sort == "unit":
            page = page.join(_UNIT, _UNIT.id == TaskRow.unit_id).order_by(code, due, tid)
            if after is not None:
                page = page.where(or_(code > after[2], and_(code == after[2], or_(
                    due > after[0], and_(due == after[0], tid > after[1])))))
        else:
            page = page.order_by(due, tid)
            if after is not None:
                page = page.where(or_(due > after[0], and_(due == after[0], tid > after[1])))
        p = page.subquery("page")
        order = (p.c.due.desc(), p.c.tid.desc()) if sort == "recent" else \
            (p.c.ucode, p.c.due, p.c.tid) if sort == "unit" else (p.c.due, p.c.tid)
        return (select(TaskRow.id, TaskRow.name, TaskRow.level, TaskRow.due_at, TaskRow.warning_level,
                       _HOLDER.display_name.label("assignee"), _HOLDER.username.label("assignee_username"),
                       _UNIT.code.label("unit_code"), _UNIT.name.label("unit_name"), Case.number, Case.service_code,
                       ProcessVersion.name.label("service_name"), Case.applicant_name,
                       _VILLAGE.name.label("village"), Case.warning_level.label("case_warning_level"),
                       _CLERK.display_name.label("first_clerk"))
                .select_from(p).join(TaskRow, TaskRow.id == p.c.tid).join(Case, Case.id == TaskRow.case_id)
                .join(_UNIT, _UNIT.id == TaskRow.unit_id).join(_VILLAGE, _VILLAGE.id == Case.village_id)
                .join(ProcessVersion, ProcessVersion.id == Case.process_version_id)
                .outerjoin(_HOLDER, _HOLDER.id == TaskRow.assignee_id)
                .outerjoin(_CLERK, _CLERK.id == Case.first_clerk_id)
                .order_by(*order))


def overdue_query(session: Session, actor: Who, given: Mapping[str, Any] | None, now: datetime) -> OverdueQuery:
    """Check the filters and build the report's WHERE (the subtree is the reader's unit, or `unit`)."""
    values: dict[str, str] = {}
    for key, raw in (given or {}).items():
        if raw is None or raw == "":
            continue
        if key not in FILTER_KEYS or not isinstance(raw, str) or len(raw) > 200 or _CONTROL.search(raw):
            raise _bad(key, raw)
        values[key] = raw
    sub = scope.subtree(session, actor, values.get("unit"))
    warning = values.get("warning", "red")
    if warning not in WARNINGS:
        raise InvalidInput(f"warning must be one of {', '.join(WARNINGS)}", reason="inbox.warning_invalid")
    where: list[ColumnElement[bool]] = [TaskRow.state == READY, Case.status == OPEN, Case.paused_at.is_(None),
                                        sub.condition()]
    if warning == "yellow":
        where += [TaskRow.warning_level == "yellow", TaskRow.due_at > now]
    else:
        days = values.get("days", "0")
        if not days.isdigit() or int(days) > MAX_DAYS:
            raise _bad("days", days)
        where.append(TaskRow.due_at <= cutoff(now, int(days)))
    if "level" in values:
        if values["level"] not in LEVELS:
            raise InvalidInput("level must be village, township or county", reason="inbox.level_invalid")
        where.append(TaskRow.level == values["level"])
    if "item" in values:
        if not SERVICE_CODE.fullmatch(values["item"]):
            raise InvalidInput(f"not a service item code: {values['item'][:40]!r}", reason="inbox.service_invalid")
        where.append(Case.service_code == values["item"])
    depts = measures.departments(session)
    if "department" in values:
        codes = measures.department_codes(depts, values["department"])
        where.append(Case.service_code.in_(codes) if codes else false())
    if "step" in values:
        where.append(TaskRow.name == values["step"])
    if "person" in values:
        person = session.scalar(select(User.id).where(User.username == values["person"]))
        if person is None:
            raise InvalidInput(f"no user {values['person'][:64]}", reason="user.not_found",
                               username=values["person"][:64])
        where.append(or_(TaskRow.assignee_id == person, Case.first_clerk_id == person))
    if "card" in values:
        state = values["card"]
        if state not in CARD_STATES:
            raise _bad("card", state)
        carded = select(Card.id).where(Card.task_id == TaskRow.id).exists()
        open_card = (select(Card.id).outerjoin(CardExplanation, CardExplanation.card_id == Card.id)
                     .where(Card.task_id == TaskRow.id, CardExplanation.id.is_(None)).exists())
        where.append({"none": ~carded, "unexplained": open_card, "explained": and_(carded, ~open_card)}[state])
    return OverdueQuery(sub, values, tuple(where), depts)


# ------------------------------------------------------------------------------------------- cursors
def _cursor(sort: str, row: Any) -> str:
    text = json.dumps({"k": "overdue", "s": sort, "d": row.due_at.isoformat(), "i": row.id, "u": row.unit_code},
                      separators=(",", ":"))
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def _read_cursor(cursor: Any, sort: str) -> tuple[datetime, int, str]:
    bad = InvalidInput("翻页标记无效，请从第一页重新开始 / bad page cursor", reason="page.cursor_invalid")
    if not isinstance(cursor, str) or not cursor or len(cursor) > 300:
        raise bad
    try:
        value = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode("utf-8"))
        if not isinstance(value, dict) or value.get("k") != "overdue" or value.get("s") != sort:
            raise ValueError
        ident, code = value.get("i"), value.get("u")
        if isinstance(ident, bool) or not isinstance(ident, int) or not 0 <= ident < 2 ** 63:
            raise ValueError
        if not isinstance(code, str) or len(code) > 20:
            raise ValueError
        return clock.to_utc(str(value.get("d"))), ident, code
    except (binascii.Error, ValueError, UnicodeDecodeError, TypeError):
        raise bad from None


# ------------------------------------------------------------------------------------------- rows
def _cards(session: Session, task_ids: list[int]) -> dict[int, tuple[str, bool]]:
    """The strongest card of each step and whether each of its cards is explained: one statement a page."""
    found: dict[int, tuple[str, bool]] = {}
    if not task_ids:
        return found
    for task_id, color, explanation in session.execute(
            select(Card.task_id, Card.color, CardExplanation.id).outerjoin(
                CardExplanation, CardExplanation.card_id == Card.id).where(Card.task_id.in_(task_ids))):
        strongest, explained = found.get(task_id, (color, True))
        found[task_id] = ("red" if "red" in (strongest, color) else color, explained and explanation is not None)
    return found


def _rows(session: Session, query: OverdueQuery, raw: list[Any], now: datetime) -> list[OverdueRow]:
    cards = _cards(session, [r.id for r in raw])
    cal = default_calendar()
    return [OverdueRow(r.id, r.number, r.service_code, r.service_name, r.applicant_name,
                       query.depts.get(r.service_code), r.name, r.level, r.unit_code, r.unit_name, r.village,
                       r.assignee, r.assignee_username, r.first_clerk, r.due_at, days_overdue(r.due_at, now, cal),
                       r.warning_level, r.case_warning_level, *cards.get(r.id, (None, False)))
            for r in raw]


def overdue_report(session: Session, actor: Who, filters: Mapping[str, Any] | None = None, sort: str = "overdue",
                   cursor: str | None = None, *, limit: int = 25, now: datetime | None = None) -> OverdueReport:
    """A page of the overdue report of the reader's unit (or of the unit the filters name), with its total."""
    now = now or clock.now()
    limit = check_limit(limit)
    if sort not in SORTS:
        raise InvalidInput(f"sort must be one of {', '.join(SORTS)}", reason="report.sort_invalid",
                           sort=str(sort)[:20])
    query = overdue_query(session, actor, filters, now)
    after = _read_cursor(cursor, sort) if cursor is not None else None
    total = session.scalar(query.count()) or 0
    raw = session.execute(query.rows(sort, limit, after)).all()
    shown = list(raw[:limit])  # fetched with LIMIT limit + 1: the extra row says there is a next page
    page = Page(tuple(_rows(session, query, shown, now)), _cursor(sort, shown[-1]) if len(raw) > limit else None)
    return OverdueReport(query.sub.unit, query.sub.chain, query.filters, sort, total, page, now)


def walk(session: Session, query: OverdueQuery, sort: str, now: datetime, batch: int = 1000) -> Iterator[OverdueRow]:
    """Every row of the report in its order, a keyset page at a time (the exports)."""
    after: tuple[Any, ...] | None = None
    while True:
        raw = session.execute(query.rows(sort, batch, after)).all()
        yield from _rows(session, query, list(raw[:batch]), now)
        if len(raw) <= batch:
            return
        last = raw[batch - 1]
        after = (last.due_at, last.id, last.unit_code)
