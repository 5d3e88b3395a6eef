"""The board (监督看板): for a unit's subtree, its open, due-soon, overdue and paused cases, those completed
this month with their on-time rate and average working days, and its open cards — overall, and broken
down by the units below, by service item, by department, by first-responsibility clerk (首问责任人) and by
the person holding the steps (经办人).

Each breakdown is **one** aggregate statement: a UNION ALL of the open cases (`ix_cases_open_report`, migration
0011: it holds every column the open part reads, so on PostgreSQL it is an index-only scan — of a range of it for
a county, a township or a village, whose conditions name the units from the county down), the cases closed this
month (`ix_cases_closed_at`, or `ix_cases_closed_county` / `ix_cases_closed_township`) and the open cards
(`ix_cards_open`, joined to their open cases in the same index), each grouped by the breakdown's column, summed
per key and joined to the names (units, people). The overall numbers are the sum of every key's (a case has one
unit right below, one item, one first clerk or none), so a board is that one statement; only by holder, whose
steps a case may have several of, do they take a statement of their own. The department breakdown is the item
breakdown folded by the catalogue's departments, so it costs no statement of its own. Nothing here reads a
workflow or loops over cases.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import ColumnElement, Select, case, func, literal_column, select, union_all
from sqlalchemy.orm import Session

from .. import clock
from ..errors import InvalidInput
from ..models import Card, Case, OrgUnit, TaskRow, User
from ..queries.process_versions import service_choices
from ..queries.scope import Who
from ..queries.serialize import JsonModel
from . import scope
from .measures import (
    BREAKDOWNS,
    CLOSED_MEASURES,
    NONE,
    OPEN_MEASURES,
    Measure,
    Month,
    Subject,
    case_predicate,
    departments,
    predicate,
    task_predicate,
)

#: the columns every part of a board statement yields, after its key
COLUMNS = ("open", "due_soon", "overdue", "paused", "completed", "on_time", "late", "timed", "workdays", "cards")


@dataclass(frozen=True)
class Counts(JsonModel):
    """The numbers of one row of the board. `workdays` is the sum of the working days taken by the `timed`
    cases; the rate and the average are derived (None when nothing was judged)."""
    open: int = 0
    due_soon: int = 0
    overdue: int = 0
    paused: int = 0
    completed: int = 0
    on_time: int = 0
    late: int = 0
    timed: int = 0
    workdays: int = 0
    cards: int = 0
    on_time_rate: float | None = None
    average_workdays: float | None = None

    @classmethod
    def of(cls, values: Mapping[str, Any]) -> Counts:
        v = {c: int(values.get(c) or 0) for c in COLUMNS}
        judged = v["on_time"] + v["late"]
        return cls(**v, on_time_rate=v["on_time"] / judged if judged else None,
                   average_workdays=round(v["workdays"] / v["timed"], 2) if v["timed"] else None)

    def count(self, measure: Measure | str) -> int:
        return int(getattr(self, Measure(measure).value))

    def plus(self, other: Counts) -> Counts:
        return Counts.of({c: getattr(self, c) + getattr(other, c) for c in COLUMNS})


@dataclass(frozen=True)
class BoardRow(JsonModel):
    """One row of a breakdown. `key` is the value of its drill-down filter (a unit or item code, a
    department, a user id, or "none"); `code` what the row shows beside its name (code, username)."""
    key: str
    name: str
    code: str | None
    counts: Counts


@dataclass(frozen=True)
class Board(JsonModel):
    unit: scope.ReportUnit
    chain: tuple[scope.ReportUnit, ...]
    month: date  # the first day of "this month" (Asia/Shanghai)
    by: str
    #: the measures the rows count (by holder: the open ones and the cards, which count their steps)
    measures: tuple[Measure, ...]
    overall: Counts
    rows: tuple[BoardRow, ...]
    generated_at: datetime


def breakdowns(unit: scope.ReportUnit) -> tuple[str, ...]:
    """The breakdowns a unit's board offers (a village has no units below it)."""
    return tuple(b for b in BREAKDOWNS if b != "unit" or unit.level != "village")


def measures_of(by: str) -> tuple[Measure, ...]:
    return (*OPEN_MEASURES, Measure.CARDS) if by == "agent" else tuple(Measure)


def _sum(cond: ColumnElement[bool]) -> ColumnElement[Any]:
    return func.sum(case((cond, 1), else_=0))


_ZERO: ColumnElement[Any] = literal_column("0")


def _part(key: Any, values: Mapping[str, ColumnElement[Any]]) -> Select[Any]:
    """A part of the UNION: its key and every column (0 where the part has nothing to say)."""
    cols = [(key if key is not None else _ZERO).label("key")]
    cols += [values.get(c, _ZERO).label(c) for c in COLUMNS]
    return select(*cols)


def _grouped(stmt: Select[Any], key: Any) -> Select[Any]:
    return stmt.group_by(key) if key is not None else stmt


def case_parts(sub: scope.Subtree, month: Month, key: Any) -> list[Select[Any]]:
    """Open cases, the month's completed cases and the open cards of the subtree, grouped by `key` (None:
    one row for the whole subtree)."""
    where = sub.condition()
    opened = _part(key, {"open": func.count(),
                         **{m.value: _sum(case_predicate(m, month)) for m in OPEN_MEASURES[1:]}})
    opened = _grouped(opened.select_from(Case).where(case_predicate(Measure.OPEN, month), where), key)
    cards = _part(key, {"cards": func.count()}).select_from(Card).join(Case, Case.id == Card.case_id)
    cards = _grouped(cards.where(predicate(Measure.CARDS, month, Subject.CARD), where), key)
    return [opened, closed_part(sub, month, key), cards]


def closed_part(sub: scope.Subtree, month: Month, key: Any) -> Select[Any]:
    """The month's completed cases of the subtree, grouped by `key`: the closed measures and the working
    days (alone, what the on-time charts of engine.reports.trends read — a month's closures, not the open
    work)."""
    timed = case_predicate(Measure.TIMED, month)
    closed = _part(key, {"completed": func.count(),
                         **{m.value: _sum(case_predicate(m, month)) for m in CLOSED_MEASURES[1:]},
                         "workdays": func.sum(case((timed, Case.workdays_taken), else_=0))})
    return _grouped(closed.select_from(Case).where(case_predicate(Measure.COMPLETED, month), sub.condition()), key)


def holder_parts(sub: scope.Subtree, month: Month) -> list[Select[Any]]:
    """The steps people hold in the subtree and the open cards naming them, grouped by the person."""
    where = sub.condition()
    held = _part(TaskRow.assignee_id, {"open": func.count(),
                                       **{m.value: _sum(task_predicate(m)) for m in OPEN_MEASURES[1:]}})
    held = (held.select_from(TaskRow).join(Case, Case.id == TaskRow.case_id)
            .where(task_predicate(Measure.OPEN), where).group_by(TaskRow.assignee_id))
    cards = (_part(Card.assignee_id, {"cards": func.count()}).select_from(Card).join(Case, Case.id == Card.case_id)
             .where(predicate(Measure.CARDS, month, Subject.CARD), Card.assignee_id.is_not(None), where)
             .group_by(Card.assignee_id))
    return [held, cards]


def tally(parts: Sequence[Select[Any]]) -> Any:
    """The parts' rows summed per key: a subquery (key, *COLUMNS)."""
    u = union_all(*parts).subquery("parts")
    return (select(u.c.key, *[func.sum(u.c[c]).label(c) for c in COLUMNS])
            .group_by(u.c.key).subquery("tally"))


def _counts(row: Any) -> Counts:
    return Counts.of({c: getattr(row, c) for c in COLUMNS})


def overall(session: Session, sub: scope.Subtree, month: Month) -> Counts:
    """The subtree's numbers: one statement."""
    t = tally(case_parts(sub, month, None))
    row = session.execute(select(*[t.c[c] for c in COLUMNS])).first()
    return _counts(row) if row is not None else Counts.of({})


def item_counts(session: Session, sub: scope.Subtree, month: Month) -> list[tuple[str, Counts]]:
    """The numbers of each service item: one statement (the item and the department breakdowns)."""
    t = tally(case_parts(sub, month, Case.service_code))
    return [(r.key, _counts(r)) for r in session.execute(select(t))]


def rows_by(session: Session, sub: scope.Subtree, month: Month, by: str,
            items: list[tuple[str, Counts]] | None = None) -> tuple[BoardRow, ...]:
    """One breakdown's rows: one statement (department: the item statement, folded; `items` if it ran)."""
    return breakdown(session, sub, month, by, items)[0]


def _total(counts: Iterable[Counts]) -> Counts:
    total = Counts.of({})
    for c in counts:
        total = total.plus(c)
    return total


def breakdown(session: Session, sub: scope.Subtree, month: Month, by: str,
              items: list[tuple[str, Counts]] | None = None) -> tuple[tuple[BoardRow, ...], Counts | None]:
    """One breakdown's rows (one statement; department: the item statement, folded, `items` if it ran) and,
    when its keys partition the subtree's cases — every breakdown but the holder's: a case has one unit right
    below, one item, one department, one first clerk or none — the sum of every key's numbers, which *is* the
    overall statement's result (the same rows, grouped, then added up), so the board needs no statement of
    its own for it. None for the holder's (a case's steps have several holders, or none)."""
    if by == "unit":
        column = sub.child_column()
        if column is None:
            return (), None
        found = {r.key: _counts(r) for r in session.execute(select(tally(case_parts(sub, month, column))))}
        units = session.execute(select(OrgUnit.id, OrgUnit.code, OrgUnit.name)
                                .where(OrgUnit.parent_id == sub.unit.id).order_by(OrgUnit.code))
        return (tuple(BoardRow(u.code, u.name, u.code, found.get(u.id) or Counts.of({})) for u in units),
                _total(found.values()))
    if by in ("item", "department"):
        items = item_counts(session, sub, month) if items is None else items
        total = _total(counts for _, counts in items)
        names = dict(service_choices(session))
        if by == "item":
            return _ranked(BoardRow(code, names.get(code, code), code, counts) for code, counts in items), total
        depts = departments(session)
        folded: dict[str, Counts] = {}
        for code, counts in items:
            name = depts.get(code) or NONE
            folded[name] = folded[name].plus(counts) if name in folded else counts
        return (_ranked(BoardRow(name, "" if name == NONE else name, None, counts) for name, counts in folded.items()),
                total)
    if by in ("clerk", "agent"):
        t = tally(case_parts(sub, month, Case.first_clerk_id) if by == "clerk" else holder_parts(sub, month))
        people = session.execute(select(t, User.username, User.display_name).select_from(t)
                                 .outerjoin(User, User.id == t.c.key)).all()
        rows = _ranked(BoardRow(NONE if r.key is None else str(r.key), r.display_name or "", r.username, _counts(r))
                       for r in people)
        return rows, _total(r.counts for r in rows) if by == "clerk" else None
    raise InvalidInput(f"没有这种分类 / no breakdown {str(by)[:20]!r}: one of {', '.join(BREAKDOWNS)}",
                       reason="report.breakdown_invalid", by=str(by)[:20])


def _ranked(rows: Any) -> tuple[BoardRow, ...]:
    """Where the trouble is first: most overdue, then due soon, then open, then by name."""
    return tuple(sorted(rows, key=lambda r: (-r.counts.overdue, -r.counts.due_soon, -r.counts.cards,
                                             -r.counts.open, -r.counts.completed, r.name, r.key)))


def board(session: Session, actor: Who, unit_code: str | None = None, by: str = "unit",
          now: datetime | None = None) -> Board:
    """The board of `unit_code` (default: the reader's unit) broken down `by` one of BREAKDOWNS: one aggregate
    statement, the breakdown, whose keys' sum is the overall numbers (`breakdown`); by holder, two (the
    overall numbers have a statement of their own)."""
    sub = scope.subtree(session, actor, unit_code)
    if by not in breakdowns(sub.unit):
        raise InvalidInput(f"没有这种分类 / no breakdown {str(by)[:20]!r}: one of {', '.join(breakdowns(sub.unit))}",
                           reason="report.breakdown_invalid", by=str(by)[:20])
    now = now or clock.now()
    month = Month.of(now)
    rows, total = breakdown(session, sub, month, by)
    return Board(sub.unit, sub.chain, month.first_day, by, measures_of(by),
                 total if total is not None else overall(session, sub, month), rows, now)


def all_breakdowns(session: Session, actor: Who, unit_code: str | None = None,
                   now: datetime | None = None) -> tuple[Board, ...]:
    """Every breakdown of a unit's board (the Excel file's sheets): one statement per breakdown (department
    folded from item), the overall numbers the sum of the items'."""
    sub = scope.subtree(session, actor, unit_code)
    now = now or clock.now()
    month = Month.of(now)
    items = item_counts(session, sub, month)
    total = _total(counts for _, counts in items)  # the overall numbers: the sum of the items' (`breakdown`)
    return tuple(Board(sub.unit, sub.chain, month.first_day, by, measures_of(by), total,
                       rows_by(session, sub, month, by, items), now) for by in breakdowns(sub.unit))
