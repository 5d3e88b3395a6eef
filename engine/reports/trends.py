"""The charts' numbers (issue #10 §3): for a unit's subtree, week by week over the last weeks, the cases
opened, the cases closed (completed, not granted, withdrawn) and the overdue trend (red cards issued, cases
completed late); this month's on-time rate by the units below (and, for the city, by township); the open
cards by service item, red and yellow — each with the list of rows behind every number.

Weeks are Asia/Shanghai calendar weeks from Monday 00:00; the last is the current week, counted up to now
(`Week.partial`). Their boundaries are computed here, in Python, and each series set is **one** aggregate
statement over its rows of the whole span — a range on the instant it counts by (`created_at`, `closed_at`,
`issued_at`) with the subtree's condition, which the report indexes lead with — holding one
`sum(case when <series in week i> …)` column per week and series: no per-case loop, nothing
database-specific, so it runs alike on SQLite and PostgreSQL.

Each weekly number is the count of one predicate (`series_predicate`), and the list behind it (`cases_for`)
selects with the very same predicate, so its total is the number by construction (the red cards' statement
narrows its rows to the cards of cases open in the span first: `carded_cases`). The on-time rates are the
board's closed part (`boards.closed_part`: the statement whose rows the board sums, `boards.Counts`), and the
cards by item count with the board's predicate of an open card: their totals are the board's item
breakdown, their lists the board's drill-downs.
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import ColumnElement, and_, case, func, literal_column, or_, select, true
from sqlalchemy.orm import Session

from .. import clock
from ..errors import InvalidInput
from ..models import Card, Case, OrgUnit
from ..queries.pages import Page, check_limit, page_of, read_case_cursor
from ..queries.process_versions import service_choices
from ..queries.scope import Who
from ..queries.serialize import JsonModel
from ..vocab import Level
from . import boards, export, lists, scope
from .boards import BoardRow, Counts
from .measures import OPEN, SERVICE_CODE, Measure, Month, Subject, case_predicate, predicate

#: weeks a chart shows unless asked otherwise, and at most (a year)
WEEKS = 12
MAX_WEEKS = 53
WITHDRAWN: ColumnElement[str] = literal_column("'withdrawn'")
REJECTED: ColumnElement[str] = literal_column("'rejected'")
RED: ColumnElement[str] = literal_column("'red'")
YELLOW: ColumnElement[str] = literal_column("'yellow'")
COLOURS = ("red", "yellow")
_WEEK = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


class Series(StrEnum):
    """What a chart counts. The weekly ones count the rows whose instant falls in a week; CARDS counts the
    cards open now (the board's), by item and colour."""
    OPENED = "opened"        # 新收: cases created in the week
    COMPLETED = "completed"  # 办结: completed in the week
    REJECTED = "rejected"    # 不予办理: closed in the week without being granted
    WITHDRAWN = "withdrawn"  # 撤回: withdrawn in the week
    LATE = "late"            # 超时办结: completed in the week after the promised due
    RED_CARDS = "red_cards"  # 红牌: red cards issued in the week (resolved since or not)
    CARDS = "cards"          # open yellow/red cards now


#: the weekly series over closed cases (one statement), and what each is a series of
CLOSED_SERIES = (Series.COMPLETED, Series.REJECTED, Series.WITHDRAWN, Series.LATE)
WEEKLY_SERIES = (Series.OPENED, *CLOSED_SERIES, Series.RED_CARDS)
SUBJECTS = {s: Subject.CARD if s in (Series.RED_CARDS, Series.CARDS) else Subject.CASE for s in Series}


@dataclass(frozen=True)
class Week(JsonModel):
    """An Asia/Shanghai calendar week: its Monday, and its instants [start, end) in UTC. `partial`: the
    current week, whose numbers run up to now."""
    first_day: date
    start: datetime
    end: datetime
    partial: bool = False

    @property
    def last_day(self) -> date:
        return self.first_day + timedelta(days=6)

    def as_month(self) -> Month:
        """The week as the period the board's predicates take (they read only its start and end)."""
        return Month(self.first_day, self.start, self.end)


@dataclass(frozen=True)
class WeekCounts(JsonModel):
    """The numbers of one week."""
    week: Week
    opened: int
    completed: int
    rejected: int
    withdrawn: int
    late: int
    red_cards: int

    def count(self, series: Series | str) -> int:
        return int(getattr(self, Series(series).value))


@dataclass(frozen=True)
class OnTimeGroup(JsonModel):
    """This month's closures and on-time rate by the units of one level (the board's rows and counts)."""
    level: str
    rows: tuple[BoardRow, ...]


@dataclass(frozen=True)
class ItemCards(JsonModel):
    """The open cards of one service item, with how many are red and yellow."""
    code: str
    name: str
    cards: int
    red: int
    yellow: int


@dataclass(frozen=True)
class Trends(JsonModel):
    unit: scope.ReportUnit
    chain: tuple[scope.ReportUnit, ...]
    month: date  # the first day of "this month" (Asia/Shanghai), as the board's
    weeks: tuple[WeekCounts, ...]
    on_time: tuple[OnTimeGroup, ...]
    cards: tuple[ItemCards, ...]
    generated_at: datetime


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time(0), clock.SHANGHAI).astimezone(UTC)


def week_of(day: date, today: date | None = None) -> Week:
    """The week whose Monday is `day` (partial when it holds `today`)."""
    following = day + timedelta(days=7)
    return Week(day, _midnight(day), _midnight(following),
                today is not None and day <= today < following)


def last_weeks(now: datetime, count: int = WEEKS) -> tuple[Week, ...]:
    """The `count` weeks up to the one holding `now`, oldest first (the last partial)."""
    if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= MAX_WEEKS:
        raise _bad("weeks", count)
    today = clock.local(now).date()
    monday = today - timedelta(days=today.weekday())
    return tuple(week_of(monday - timedelta(weeks=count - 1 - i), today) for i in range(count))


def _bad(key: str, value: Any) -> InvalidInput:
    shown = str(value)[:40]
    return InvalidInput(f"筛选条件 {key}={shown!r} 无效 / bad filter {key}={shown!r}", reason="report.filter_invalid",
                        key=key, value=shown)


def parse_weeks(value: Any) -> int:
    """How many weeks a chart shows, as a query string gives it (default `WEEKS`)."""
    if value is None or value == "":
        return WEEKS
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, str) and value.isdigit() and len(value) <= 3:
        number = int(value)
    else:
        raise _bad("weeks", value)
    if not 1 <= number <= MAX_WEEKS:
        raise _bad("weeks", value)
    return number


def parse_week(value: Any, now: datetime) -> Week:
    """A week named by its Monday (YYYY-MM-DD), as a chart links to it; not a Monday, or not a date: bad."""
    if not isinstance(value, str) or not _WEEK.fullmatch(value):
        raise _bad("week", value)
    try:
        day = date.fromisoformat(value)
    except ValueError:
        raise _bad("week", value) from None
    if day.weekday() != 0 or not clock.FIRST_YEAR <= day.year <= clock.LAST_YEAR:
        raise _bad("week", value)
    return week_of(day, clock.local(now).date())


def parse_series(value: Any) -> Series:
    try:
        return Series(value)
    except ValueError:
        raise _bad("series", value) from None


# ------------------------------------------------------------------------------------------- predicates
def series_predicate(series: Series, week: Week) -> ColumnElement[bool]:
    """The rows one weekly series counts in `week`: cases for all but RED_CARDS (cards, joined with their
    cases). Completed and late are the board's own predicates over the week instead of the month."""
    if series is Series.OPENED:
        return and_(Case.created_at >= week.start, Case.created_at < week.end)
    if series is Series.COMPLETED:
        return case_predicate(Measure.COMPLETED, week.as_month())
    if series is Series.LATE:
        return case_predicate(Measure.LATE, week.as_month())
    if series in (Series.REJECTED, Series.WITHDRAWN):
        status = REJECTED if series is Series.REJECTED else WITHDRAWN
        return and_(Case.closed_at >= week.start, Case.closed_at < week.end, Case.status == status)
    if series is Series.RED_CARDS:
        return and_(Card.issued_at >= week.start, Card.issued_at < week.end, Card.color == RED)
    raise _bad("series", series)


def _sum(cond: ColumnElement[bool]) -> ColumnElement[Any]:
    return func.sum(case((cond, 1), else_=0))


def carded_cases(sub: scope.Subtree, since: datetime) -> ColumnElement[bool]:
    """The cards of the subtree that may have been issued since `since`, as a condition on the cards: those
    of its cases open now or closed since (a card is issued only on an open case — engine.cases.warnings —
    so a case closed before `since` has none issued after it). A county's or a township's open cases and
    recent closures are two ranges of its indexes, and their cards are found by case: never the whole
    city's cards of the span, joined to their cases one by one. The city: every card."""
    if sub.unit.level == Level.CITY:
        return true()
    return Card.case_id.in_(select(Case.id).where(sub.condition(), or_(Case.status == OPEN, Case.closed_at >= since)))


def _weekly(session: Session, sub: scope.Subtree, weeks: tuple[Week, ...], series: tuple[Series, ...],
            instant: Any, subject: Subject) -> dict[tuple[Series, int], int]:
    """One statement: the rows of the whole span (a range on `instant`, the subtree's condition), with a
    column per series and week."""
    cols = [_sum(series_predicate(s, w)).label(f"{s.value}_{i}") for i, w in enumerate(weeks) for s in series]
    stmt = select(*cols)
    if subject is Subject.CARD:
        stmt = stmt.select_from(Card).where(Card.color == RED, carded_cases(sub, weeks[0].start))
    else:
        stmt = stmt.select_from(Case).where(sub.condition())
    row = session.execute(stmt.where(instant >= weeks[0].start, instant < weeks[-1].end)).first()
    values = row._mapping if row is not None else {}
    return {(s, i): int(values.get(f"{s.value}_{i}") or 0) for i in range(len(weeks)) for s in series}


def weekly_counts(session: Session, sub: scope.Subtree, weeks: tuple[Week, ...]) -> tuple[WeekCounts, ...]:
    """The weekly series of the subtree: three statements (opened, closed, red cards)."""
    found = {**_weekly(session, sub, weeks, (Series.OPENED,), Case.created_at, Subject.CASE),
             **_weekly(session, sub, weeks, CLOSED_SERIES, Case.closed_at, Subject.CASE),
             **_weekly(session, sub, weeks, (Series.RED_CARDS,), Card.issued_at, Subject.CARD)}
    return tuple(WeekCounts(w, *(found[s, i] for s in WEEKLY_SERIES)) for i, w in enumerate(weeks))


# ------------------------------------------------------------------------------------------- on time, cards
def _closed_rows(session: Session, sub: scope.Subtree, month: Month, key: Any,
                 units: ColumnElement[bool]) -> tuple[BoardRow, ...]:
    """The month's closures of the subtree by the units `units` selects, each unit's cases found by the case
    column `key`: the board's closed part (`boards.closed_part`, the very statement its rows sum), joined
    to the units' names, in the tree's order — one statement, over the month's closures only."""
    part = boards.closed_part(sub, month, key).subquery("closed")
    found = session.execute(select(OrgUnit.code, OrgUnit.name, *[part.c[c] for c in boards.COLUMNS])
                            .select_from(OrgUnit).outerjoin(part, part.c.key == OrgUnit.id)
                            .where(units).order_by(OrgUnit.path))
    return tuple(BoardRow(r.code, r.name, r.code, Counts.of({c: getattr(r, c) for c in boards.COLUMNS}))
                 for r in found)


def on_time_groups(session: Session, sub: scope.Subtree, month: Month) -> tuple[OnTimeGroup, ...]:
    """This month's on-time rate by the units right below (the rows of the board's unit breakdown); for the
    city also by township, grouped on the cases' own township column; for a village, its own row. The rows
    hold the board's closed measures (completed, on time, late, timed, working days); their open measures
    and cards are not read here (zero)."""
    child, column = sub.child_level, sub.child_column()
    if child is None or column is None:
        part = boards.closed_part(sub, month, None).subquery("closed")
        row = session.execute(select(*[part.c[c] for c in boards.COLUMNS])).first()
        counts = Counts.of({c: getattr(row, c) for c in boards.COLUMNS} if row is not None else {})
        return (OnTimeGroup(sub.unit.level, (BoardRow(sub.unit.code, sub.unit.name, sub.unit.code, counts),)),)
    groups = [OnTimeGroup(child, _closed_rows(session, sub, month, column, OrgUnit.parent_id == sub.unit.id))]
    if sub.unit.level == Level.CITY:
        groups.append(OnTimeGroup(Level.TOWNSHIP.value, _closed_rows(
            session, sub, month, Case.township_id,
            and_(OrgUnit.level == Level.TOWNSHIP.value, OrgUnit.path.startswith(sub.unit.path)))))
    return tuple(groups)


def cards_by_item(session: Session, sub: scope.Subtree, month: Month) -> tuple[ItemCards, ...]:
    """The open cards of the subtree by service item, red and yellow (the board's predicate of an open
    card): one statement, most cards first."""
    cond = predicate(Measure.CARDS, month, Subject.CARD)
    rows = session.execute(select(Case.service_code, func.count().label("cards"), _sum(Card.color == RED).label("red"),
                                  _sum(Card.color == YELLOW).label("yellow"))
                           .select_from(Card).join(Case, Case.id == Card.case_id)
                           .where(cond, sub.condition()).group_by(Case.service_code)).all()
    names = dict(service_choices(session)) if rows else {}
    found = [ItemCards(r.service_code, names.get(r.service_code, r.service_code), int(r.cards), int(r.red or 0),
                       int(r.yellow or 0)) for r in rows]
    return tuple(sorted(found, key=lambda c: (-c.cards, -c.red, c.name, c.code)))


def trends(session: Session, actor: Who, unit_code: str | None = None, weeks: int = WEEKS,
           now: datetime | None = None) -> Trends:
    """The charts of `unit_code` (default: the reader's unit): the last `weeks` weeks, this month's on-time
    rates, the open cards by item. Five or six statements, whatever the size of the subtree."""
    sub = scope.subtree(session, actor, unit_code)
    now = now or clock.now()
    month = Month.of(now)
    return Trends(sub.unit, sub.chain, month.first_day, weekly_counts(session, sub, last_weeks(now, weeks)),
                  on_time_groups(session, sub, month), cards_by_item(session, sub, month), now)


# ------------------------------------------------------------------------------------------- the lists behind
@dataclass(frozen=True)
class TrendList(JsonModel):
    """The rows behind one number of a chart: `measure` names its series (the drill-down page's title),
    `week` the week it counts (None for the open cards)."""
    unit: scope.ReportUnit
    chain: tuple[scope.ReportUnit, ...]
    measure: Series
    subject: Subject
    week: Week | None
    filters: Mapping[str, str]
    total: int
    page: Page[lists.ReportRow]


def list_query(session: Session, sub: scope.Subtree, series: Series, week: str | None, given: Mapping[str, Any],
               now: datetime) -> tuple[lists.Query, Week | None, dict[str, str]]:
    """The SQL of the rows behind a number: a weekly series in a week, or the open cards (of an item, of a
    colour). Filters other than those are refused, as are a week for the open cards and none for a week's."""
    values: dict[str, str] = {}
    for key, raw in given.items():
        if raw is None or raw == "":
            continue
        if key not in ("item", "color") or series is not Series.CARDS or not isinstance(raw, str):
            raise _bad(key, raw)
        if key == "item" and not SERVICE_CODE.fullmatch(raw):
            raise _bad(key, raw)
        if key == "color" and raw not in COLOURS:
            raise _bad(key, raw)
        values[key] = raw
    subject = SUBJECTS[series]
    where: list[ColumnElement[bool]] = [sub.condition()]
    found_week = None
    if series is Series.CARDS:
        if week:
            raise _bad("week", week)
        where.append(predicate(Measure.CARDS, Month.of(now), Subject.CARD))
        if "item" in values:
            where.append(Case.service_code == values["item"])
        if "color" in values:
            where.append(Card.color == (RED if values["color"] == "red" else YELLOW))
    else:
        found_week = parse_week(week, now)
        where.append(series_predicate(series, found_week))
    id_column = Card.id if subject is Subject.CARD else Case.id
    return lists.Query(subject, id_column, tuple(where)), found_week, values


def cases_for(session: Session, actor: Who, unit_code: str | None, series: Any, week: str | None = None, *,
              limit: int = 25, cursor: str | None = None, now: datetime | None = None, **filters: Any) -> TrendList:
    """The rows behind one number of the charts of `unit_code`: `series` in the week whose Monday is `week`
    (or, for `cards`, the open cards, by `item` and `color`), newest first, `limit` a page from `cursor`,
    with their total."""
    sub = scope.subtree(session, actor, unit_code)
    s = parse_series(series)
    limit = check_limit(limit)
    query, found_week, values = list_query(session, sub, s, week, filters, now or clock.now())
    total = session.scalar(query.count()) or 0
    after = read_case_cursor(cursor) if cursor is not None else None
    rows = session.execute(query.rows(limit, after)).all()
    # the drill-down lists' own row and keyset (engine.reports.lists): the same rows, the same pages
    page = page_of(rows, limit, lists.report_row, lists.row_key, after_cursor=cursor is not None)
    return TrendList(sub.unit, sub.chain, s, query.subject, found_week, values, total, page)


# ------------------------------------------------------------------------------------------- files
SERIES_NAMES = {Series.OPENED: "新收", Series.COMPLETED: "办结", Series.REJECTED: "不予办理", Series.WITHDRAWN: "撤回",
                Series.LATE: "超时办结", Series.RED_CARDS: "红牌", Series.CARDS: "未销黄红牌"}
LEVEL_NAMES = {"city": "市", "county": "县（区）", "township": "乡镇", "village": "村"}


def list_table(session: Session, actor: Who, unit_code: str | None, series: Any, week: str | None = None, *,
               now: datetime | None = None, **filters: Any) -> export.Table:
    """Every row behind a number of the charts, as the drill-down lists' files are (bounded)."""
    sub = scope.subtree(session, actor, unit_code)
    s = parse_series(series)
    query, _, _ = list_query(session, sub, s, week, filters, now or clock.now())
    export.bounded(session.scalar(query.count()) or 0)
    rows = (export.list_row(r, query.subject) for r in lists.walk(session, query))
    return export.Table(SERIES_NAMES[s], export.CASE_COLUMNS + export.SUBJECT_COLUMNS[query.subject], rows)


#: the sheets of the charts' file, in the page's order (their titles)
CHART_TABLES = ("每周新收与办结", "超期趋势", "按时办结率", "黄红牌按事项")


def chart_tables(found: Trends) -> list[export.Table]:
    """The numbers of every chart, a sheet each (Chinese headers, like the board's file)."""
    C = export.Column
    week_cols = (C("周一", "date", 12), C("周日", "date", 12), C("本周（未满）", "bool", 12))

    def week_cells(w: WeekCounts) -> list[Any]:
        return [w.week.first_day, w.week.last_day, w.week.partial]

    weekly = export.Table(CHART_TABLES[0], (*week_cols, *(C(SERIES_NAMES[s], "int", 10) for s in WEEKLY_SERIES[:4])),
                          [[*week_cells(w), w.opened, w.completed, w.rejected, w.withdrawn] for w in found.weeks])
    overdue = export.Table(CHART_TABLES[1], (*week_cols, C("红牌", "int", 10), C("超时办结", "int", 10)),
                           [[*week_cells(w), w.red_cards, w.late] for w in found.weeks])
    rate_cols = (C("层级", width=10), C("单位", width=24), C("代码", width=16), C("本月办结", "int", 10),
                 C("按时办结", "int", 10), C("超时办结", "int", 10), C("按时办结率", "percent", 11))
    rates = export.Table(CHART_TABLES[2], rate_cols, [
        [LEVEL_NAMES.get(g.level, g.level), r.name, r.code or "", r.counts.completed, r.counts.on_time,
         r.counts.late, r.counts.on_time_rate] for g in found.on_time for r in g.rows])
    cards = export.Table(CHART_TABLES[3], (C("事项", width=28), C("事项编码", width=12), C("未销黄红牌", "int", 11),
                                           C("红牌", "int", 8), C("黄牌", "int", 8)),
                         [[c.name, c.code, c.cards, c.red, c.yellow] for c in found.cards])
    return [weekly, overdue, rates, cards]
