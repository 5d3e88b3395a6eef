"""The drill-down: the rows behind one number of the board — `cases_for(session, actor, unit_code, measure,
**filters)` — newest first, a keyset page at a time, with their total.

The WHERE of a list is the measure's predicate (`measures.predicate`, the one the board counts with), the
subtree's condition and the filters of the board row the number sits in; its total is `count(*)` under the
same WHERE. So a list's total is the number on the board by construction (tests/test_reports.py checks it
for every measure and breakdown).
"""
from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import ColumnElement, Select, func, select
from sqlalchemy.orm import Session, aliased

from .. import clock
from ..models import Card, Case, OrgUnit, ProcessVersion, TaskRow, User
from ..queries.pages import Page, case_cursor, check_limit, page_of, read_case_cursor
from ..queries.scope import Who
from ..queries.serialize import JsonModel
from . import measures, scope
from .measures import Measure, Month, Subject


@dataclass(frozen=True)
class ReportRow(JsonModel):
    """A row of a drill-down list: a case, with the step (for the steps someone holds) or the card (for
    the open cards) the row stands for. `id` is the row's own (case, task or card id)."""
    id: int
    case_number: str
    service_code: str
    service_name: str
    applicant_name: str
    village: str
    status: str
    warning_level: str
    paused_at: datetime | None
    accepted_at: datetime | None
    promised_due_at: datetime | None
    closed_at: datetime | None
    on_time: bool | None
    workdays_taken: int | None
    first_clerk: str | None  # display name
    step: str | None = None
    step_due_at: datetime | None = None
    step_warning_level: str | None = None
    assignee: str | None = None  # display name of who holds the step / whom the card names
    card_color: str | None = None
    card_issued_at: datetime | None = None
    card_reason: str | None = None


@dataclass(frozen=True)
class ReportList(JsonModel):
    unit: scope.ReportUnit
    chain: tuple[scope.ReportUnit, ...]
    measure: Measure
    subject: Subject
    filters: Mapping[str, str]
    total: int
    page: Page[ReportRow]
    #: the month its closed measures count, when the list was asked for one (None: this month)
    month: date | None = None


_VILLAGE = aliased(OrgUnit, name="village")
_CLERK = aliased(User, name="clerk")
_HOLDER = aliased(User, name="holder")
_CASE_COLUMNS = (Case.number, Case.service_code, ProcessVersion.name.label("service_name"), Case.applicant_name,
                 _VILLAGE.name.label("village"), Case.status, Case.warning_level, Case.paused_at, Case.accepted_at,
                 Case.promised_due_at, Case.closed_at, Case.on_time, Case.workdays_taken,
                 _CLERK.display_name.label("first_clerk"))


@dataclass(frozen=True)
class Query:
    """A list's rows as SQL: its subject's id column (the keyset), the WHERE, and how to select the rows."""
    subject: Subject
    id_column: Any
    where: tuple[ColumnElement[bool], ...]

    def count(self) -> Select[Any]:
        stmt = select(func.count()).select_from(_FROM[self.subject])
        if self.subject is not Subject.CASE:
            stmt = stmt.join(Case, Case.id == _CASE_OF[self.subject])
        return stmt.where(*self.where)

    def rows(self, limit: int, after: int | None) -> Select[Any]:
        """A page of rows, newest first, after the row id `after`: chosen on the subject (and its case) alone,
        the names (item, village, people) joined to the page's rows only."""
        page = select(self.id_column.label("row_id")).select_from(_FROM[self.subject])
        if self.subject is not Subject.CASE:
            page = page.join(Case, Case.id == _CASE_OF[self.subject])
        page = page.where(*self.where).order_by(self.id_column.desc()).limit(limit + 1)
        p = (page.where(self.id_column < after) if after is not None else page).subquery("page")
        extra: tuple[Any, ...] = ()
        stmt: Select[Any]
        if self.subject is Subject.TASK:
            extra = (TaskRow.name.label("step"), TaskRow.due_at.label("step_due_at"),
                     TaskRow.warning_level.label("step_warning_level"), _HOLDER.display_name.label("assignee"))
            stmt = (select(p.c.row_id, *extra, *_CASE_COLUMNS).select_from(p).join(TaskRow, TaskRow.id == p.c.row_id)
                    .join(Case, Case.id == TaskRow.case_id).outerjoin(_HOLDER, _HOLDER.id == TaskRow.assignee_id))
        elif self.subject is Subject.CARD:
            extra = (Card.color.label("card_color"), Card.issued_at.label("card_issued_at"),
                     Card.reason.label("card_reason"), _HOLDER.display_name.label("assignee"))
            stmt = (select(p.c.row_id, *extra, *_CASE_COLUMNS).select_from(p).join(Card, Card.id == p.c.row_id)
                    .join(Case, Case.id == Card.case_id).outerjoin(_HOLDER, _HOLDER.id == Card.assignee_id))
        else:
            stmt = select(p.c.row_id, *_CASE_COLUMNS).select_from(p).join(Case, Case.id == p.c.row_id)
        return (stmt.join(_VILLAGE, _VILLAGE.id == Case.village_id)
                .join(ProcessVersion, ProcessVersion.id == Case.process_version_id)
                .outerjoin(_CLERK, _CLERK.id == Case.first_clerk_id)
                .order_by(p.c.row_id.desc()))


_FROM = {Subject.CASE: Case.__table__, Subject.TASK: TaskRow.__table__, Subject.CARD: Card.__table__}
_ID = {Subject.CASE: Case.id, Subject.TASK: TaskRow.id, Subject.CARD: Card.id}
_CASE_OF = {Subject.TASK: TaskRow.case_id, Subject.CARD: Card.case_id}


def list_query(session: Session, sub: scope.Subtree, measure: Measure, given: Mapping[str, Any],
               now: datetime, month: Month | None = None) -> tuple[Query, measures.Filters]:
    """The SQL of the rows behind `measure` in the subtree under the filters `given` (the closed measures:
    in `month`, default the month of `now`)."""
    checked = measures.filters(session, sub, given)
    subject = measures.subject_of(measure, checked.agent_id is not None)
    where = [measures.predicate(measure, month or Month.of(now), subject), sub.condition(), *checked.conditions]
    if checked.agent_id is not None:
        where.append(measures.holder_condition(subject, checked.agent_id))
    return Query(subject, _ID[subject], tuple(where)), checked


def report_row(r: Any) -> ReportRow:
    m = r._mapping
    return ReportRow(
        r.row_id, r.number, r.service_code, r.service_name, r.applicant_name, r.village, r.status, r.warning_level,
        r.paused_at, r.accepted_at, r.promised_due_at, r.closed_at,
        None if r.on_time is None else bool(r.on_time), r.workdays_taken, r.first_clerk,
        m.get("step"), m.get("step_due_at"), m.get("step_warning_level"), m.get("assignee"),
        m.get("card_color"), m.get("card_issued_at"), m.get("card_reason"))


def row_key(row: Any) -> str:
    return case_cursor(row.row_id)  # a row id: the case's, the step's or the card's


def cases_for(session: Session, actor: Who, unit_code: str | None, measure: Any, *, limit: int = 25,
              cursor: str | None = None, now: datetime | None = None, month: Any = None,
              **filters: Any) -> ReportList:
    """The rows behind the number `measure` of the board of `unit_code` (default: the reader's unit), in
    the board row given by `filters` (unit=<code>, item=<code>, department=<name>, clerk=<user id|none>,
    agent=<user id>): newest first, `limit` a page from `cursor`, with their total. `month` (YYYY-MM, not
    after the current month) makes the closed measures count that month instead of this one — the lists
    behind the monthly ranking's numbers (engine.reports.ranking)."""
    sub = scope.subtree(session, actor, unit_code)
    m = measures.parse_measure(measure)
    limit = check_limit(limit)
    now = now or clock.now()
    chosen = measures.month_of(month, now) if month not in (None, "") else None
    query, checked = list_query(session, sub, m, filters, now, chosen)
    total = session.scalar(query.count()) or 0
    after = read_case_cursor(cursor) if cursor is not None else None
    rows = session.execute(query.rows(limit, after)).all()
    return ReportList(sub.unit, sub.chain, m, query.subject, dict(checked.values), total,
                      page_of(rows, limit, report_row, row_key, after_cursor=cursor is not None),
                      chosen.first_day if chosen else None)


def walk(session: Session, query: Query, batch: int = 1000) -> Iterator[ReportRow]:
    """Every row of a list, a keyset page at a time (the exports)."""
    after = None
    while True:
        rows = session.execute(query.rows(batch, after)).all()
        yield from (report_row(r) for r in rows[:batch])
        if len(rows) <= batch:
            return
        after = rows[batch - 1].row_id
