"""The holiday schedule in the database: which years the working-day calendar knows, and an admin
publishing next year's State Council schedule (国务院办公厅关于××年部分节假日安排的通知, out each November)
in the browser or with `yicun calendar publish` instead of editing `calendar.yaml`.

Why a module of its own: `workdays` is the arithmetic, used deep in the engine with no session; this is
the administrative side of it — a rule (`policy.may_administer_calendar`: admins and the operator), input
checks with a message per line, an audit row (`calendar.published`), and then the dues that were
estimated for that year counted again, case by case, by the case writer (`cases.recompute`), each case in
a transaction of its own. Web pages and the CLI share these functions.

Decisions written down here (README "Deadlines"):
- A published year **replaces** calendar.yaml and chinese-calendar for that year: list the whole schedule
  (every holiday period, weekend days inside it included, and every 调休 working day).
- A year that chinese-calendar, calendar.yaml or an earlier publication already knows is refused
  (`calendar.year_known`) unless the publication says it is a **correction** (the State Council amends a
  schedule now and then, or a typo slipped through): then it replaces that year's days and every open
  case whose dues count days of that year is counted again — not only the estimated ones.
- At most `MAX_DAYS` days; names required (≤ 50 characters); every day inside the year, none twice;
  调休 working days are Saturdays or Sundays; a holiday on a weekend only inside a holiday period that
  has a weekday (a weekend is a rest day anyway). A schedule with no holiday is refused. Anything wrong
  refuses the whole publication with one message per line, and nothing is saved.
- The years offered: from last year to two years ahead (a schedule for 2019 helps no open case).
"""
from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

import chinese_calendar
from sqlalchemy import Engine, delete, event, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from . import clock, db, workdays
from .cases import audit, recompute
from .errors import Conflict, InvalidInput, YicunError
from .forms import control_characters
from .models import T_CAL_DAY, T_CAL_YEAR, T_USER
from .policy import Actor, may_administer_calendar, require

log = logging.getLogger(__name__)

HOLIDAY, WORKDAY = "holiday", "workday"
KINDS = (HOLIDAY, WORKDAY)
MAX_DAYS = 60  # a real schedule has 30–40 days (7 festivals with their weekends, 5–7 调休 days)
NAME_MAX = 50  # the column's size
SOURCE_MAX = 200  # the column's size: 国办发明电〔2026〕N号 and a note
TEXT_MAX = 6000  # the schedule as typed in the browser
LINES_MAX = 100
RANGE_MAX = 31  # one line's period: the longest festival is 9 days; a month is a typo
#: cases recounted in the request that publishes (the rest: the page's "continue", or the CLI)
RECOMPUTE_BATCH = 200
#: a name that marks a 调休 make-up working day in the typed schedule ("2027-02-14 调休上班")
WORKDAY_WORDS = ("上班", "调休", "workday")
YEARS_BACK, YEARS_AHEAD = 1, 2


# ------------------------------------------------------------------------------------------- values
@dataclass(frozen=True)
class DayEntry:
    """One day of a schedule: off (`holiday`) or a weekend day worked (`workday`), with its festival."""
    day: date
    kind: str
    name: str


@dataclass(frozen=True)
class Period:
    """Consecutive days of one kind and name, as a schedule is read ("2027-02-06~2027-02-13 春节")."""
    first: date
    last: date
    kind: str
    name: str

    @property
    def days(self) -> int:
        return (self.last - self.first).days + 1

    def text(self) -> str:
        span = self.first.isoformat() if self.first == self.last else f"{self.first}~{self.last}"
        return f"{span} {self.name}"


@dataclass(frozen=True)
class Schedule:
    """A schedule as typed (one line per period), read into days: `lines[i]` is the line day `i` came
    from; `problems` the lines that could not be read (publishing refuses them with the others)."""
    days: list[DayEntry]
    lines: list[int]
    problems: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True)
class YearInfo:
    """A year as the calendar knows it. `source`: "yicun" (published here), "calendar.yaml",
    "chinese-calendar", or None — not known: counted Monday–Friday, dues estimated."""
    year: int
    source: str | None
    holidays: int  # days off in holiday periods (weekend days inside them included)
    workdays: int  # 调休 weekend days worked
    document: str | None = None  # what the publication names (国办发明电〔2026〕N号), Yicun years only
    published_by: str | None = None
    published_at: datetime | None = None
    overrides: str | None = None  # a published correction: the source it replaces for that year

    @property
    def complete(self) -> bool:
        """The whole year's schedule is known: dues counted in it are exact, not estimates."""
        return self.source is not None


@dataclass(frozen=True)
class Checked:
    """A schedule that passed every check (what the preview shows and the publication writes)."""
    year: int
    source: str
    correction: bool
    days: list[DayEntry]
    replaces: str | None  # who knew the year before ("chinese-calendar", "calendar.yaml", "yicun")

    @property
    def holidays(self) -> int:
        return sum(d.kind == HOLIDAY for d in self.days)

    @property
    def workdays(self) -> int:
        return sum(d.kind == WORKDAY for d in self.days)

    @property
    def periods(self) -> list[Period]:
        return periods(self.days)


@dataclass
class RecomputeReport:
    """How many open cases one run looked at and how many it changed; `next_after` is where to go on
    (the last case id looked at) when it stopped at its limit with more to do, else None."""
    year: int
    checked: int = 0
    changed: int = 0
    still_estimated: int = 0
    failed: list[dict[str, Any]] = field(default_factory=list)
    next_after: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"year": self.year, "checked": self.checked, "changed": self.changed,
                "still_estimated": self.still_estimated, "failed": self.failed, "next_after": self.next_after}


# ------------------------------------------------------------------------------------------- reading
def known_years(session: Session, now: datetime | None = None, *, everything: bool = False) -> list[YearInfo]:
    """The years the working-day calendar knows, newest first: from last year to next year always (an
    unknown one says so), every year published in Yicun or listed in calendar.yaml, and with `everything`
    every year chinese-calendar holds too. Readable by anyone signed in: it is the State Council's
    published schedule, and a clerk too may wonder why a due date is marked estimated."""
    today = clock.local(now or clock.now()).date()
    base = workdays.file_calendar()
    published = {row.year: row for row in session.execute(
        select(T_CAL_YEAR, T_USER.c.display_name).outerjoin(T_USER, T_USER.c.id == T_CAL_YEAR.c.published_by_id))}
    counts = {(row.year, row.kind): row.n for row in session.execute(
        select(T_CAL_DAY.c.year, T_CAL_DAY.c.kind, func.count().label("n"))
        .group_by(T_CAL_DAY.c.year, T_CAL_DAY.c.kind))}
    years = set(range(today.year - YEARS_BACK, today.year + 2)) | set(published)
    years |= base.listed_years()
    if everything:
        years |= {d.year for d in chinese_calendar.holidays}
    out = []
    for year in sorted(years, reverse=True):
        if year in published:
            row = published[year]
            out.append(YearInfo(year, workdays.SOURCE_YICUN, counts.get((year, HOLIDAY), 0),
                                counts.get((year, WORKDAY), 0), row.source, row.display_name, row.published_at,
                                base.source_of(year)))
            continue
        source = base.source_of(year)
        holidays, worked = _counts(base, year, source)
        out.append(YearInfo(year, source, holidays, worked))
    return out


def year_schedule(session: Session, year: int) -> list[Period]:
    """A known year's schedule as periods, from whoever answers for it (names from chinese-calendar in
    Chinese; calendar.yaml has none: "—"); [] for a year nobody knows."""
    if _published(session, year):
        rows = session.execute(select(T_CAL_DAY.c.day, T_CAL_DAY.c.kind, T_CAL_DAY.c.name)
                               .where(T_CAL_DAY.c.year == year).order_by(T_CAL_DAY.c.day)).all()
        return periods([DayEntry(r.day, r.kind, r.name) for r in rows])
    base = workdays.file_calendar()
    known = base.year_days(year)
    if known is not None:
        return periods([DayEntry(d, HOLIDAY, "—") for d in known[0]] + [DayEntry(d, WORKDAY, "—") for d in known[1]])
    if workdays.package_knows(year):
        return periods([DayEntry(d, kind, _festival(name)) for kind, table in (
            (HOLIDAY, chinese_calendar.holidays), (WORKDAY, chinese_calendar.workdays))
            for d, name in table.items() if d.year == year])
    return []


def periods(days: Iterable[DayEntry]) -> list[Period]:
    """Days grouped into runs of consecutive dates of the same kind and name, in date order."""
    out: list[Period] = []
    for d in sorted(days, key=lambda e: e.day):
        last = out[-1] if out else None
        if last and last.kind == d.kind and last.name == d.name and last.last + timedelta(days=1) == d.day:
            out[-1] = Period(last.first, d.day, d.kind, d.name)
        else:
            out.append(Period(d.day, d.day, d.kind, d.name))
    return out


# ------------------------------------------------------------------------------------------- the typed schedule
_LINE = re.compile(r"^(?P<first>\S+?)(?:\s*(?:~|～|\.\.|至)\s*(?P<last>\S+?))?(?:\s+(?P<name>.*))?$")
_DATE = re.compile(r"^(\d{4})[-/年.](\d{1,2})[-/月.](\d{1,2})日?$")


def parse_schedule(text: Any) -> Schedule:
    """Read a schedule typed one period a line — ``2027-01-01 元旦``, ``2027-02-06~2027-02-13 春节``,
    ``2027-02-14 调休上班`` (a name with 上班 or 调休 is a make-up working day); blank lines and ``#``
    comments are skipped. Ranges with ~, ～, .. or 至; dates also as 2027/2/6 or 2027年2月6日. Lines that
    cannot be read become problems (with their line number), never an exception; the text is bounded."""
    if not isinstance(text, str):
        raise InvalidInput("节假日安排须为文字 / the schedule must be text", reason="calendar.text_invalid",
                           field="schedule")
    if len(text) > TEXT_MAX:
        raise InvalidInput(f"节假日安排超过 {TEXT_MAX} 个字 / the schedule is longer than {TEXT_MAX} characters",
                           reason="calendar.text_too_long", max_length=TEXT_MAX, field="schedule")
    lines = text.splitlines()
    if len(lines) > LINES_MAX:
        raise InvalidInput(f"节假日安排超过 {LINES_MAX} 行 / the schedule has more than {LINES_MAX} lines",
                           reason="calendar.too_many_lines", max_lines=LINES_MAX, field="schedule")
    days: list[DayEntry] = []
    numbers: list[int] = []
    problems: list[dict[str, Any]] = []
    for number, raw in enumerate(lines, start=1):
        line = raw.strip().replace("\u3000", " ")
        if not line or line.startswith("#"):
            continue
        match = _LINE.match(line)
        if match is None:
            problems.append(_problem(number, "calendar.line_unreadable", f"cannot read {line[:40]!r}"))
            continue
        first, last = _date(match["first"]), _date(match["last"] or match["first"])
        if first is None or last is None:
            shown = match["first"] if first is None else match["last"]
            problems.append(_problem(number, "calendar.date_invalid", f"{shown[:20]!r} is not a date (YYYY-MM-DD)",
                                     text=shown[:20]))
            continue
        if last < first:
            problems.append(_problem(number, "calendar.range_invalid", "the period ends before it begins"))
            continue
        if (last - first).days + 1 > RANGE_MAX:
            problems.append(_problem(number, "calendar.range_too_long", f"a period of more than {RANGE_MAX} days",
                                     max_days=RANGE_MAX))
            continue
        name = (match["name"] or "").strip()
        kind = WORKDAY if any(w in name.lower() for w in WORKDAY_WORDS) else HOLIDAY
        for offset in range((last - first).days + 1):
            days.append(DayEntry(first + timedelta(days=offset), kind, name))
            numbers.append(number)
        if len(days) > MAX_DAYS * 2:  # far too many: stop reading (the check says how many are allowed)
            break
    return Schedule(days, numbers, problems)


def _date(text: str) -> date | None:
    match = _DATE.match(text.strip())
    if match is None:
        return None
    try:
        return date(int(match[1]), int(match[2]), int(match[3]))
    except ValueError:
        return None


def schedule_text(days: Iterable[DayEntry]) -> str:
    """The schedule written back one period a line, as `parse_schedule` reads it."""
    return "\n".join(p.text() for p in periods(days))


# ------------------------------------------------------------------------------------------- checking
def check_schedule(session: Session, actor: Actor, year: Any, days: Schedule | Sequence[Any], source: Any,
                   now: datetime | None = None, *, correction: bool = False) -> Checked:
    """Every check of a publication, nothing written (the preview, and the first half of `publish_year`).
    `days`: a typed `Schedule`, or (date, kind, name) triples (their problems are numbered from 1 in that
    order). Raises InvalidInput or Conflict with a stable reason; the per-day problems come together in
    one `calendar.days_invalid` whose `problems` name the line, the day, a reason and its parameters."""
    _require_admin(actor)
    today = clock.local(now or clock.now()).date()
    low, high = today.year - YEARS_BACK, today.year + YEARS_AHEAD
    if isinstance(year, bool) or not isinstance(year, int) or not low <= year <= high:
        raise InvalidInput(f"年份须为 {low}–{high} / the year must be {low}–{high}", reason="calendar.year_invalid",
                           min=low, max=high, field="year")
    text = _clean_source(source)
    schedule = days if isinstance(days, Schedule) else _schedule_of(days)
    problems = list(schedule.problems)
    if not schedule.days and not problems:
        raise InvalidInput("请填写节假日安排 / the schedule has no days", reason="calendar.days_empty",
                           field="schedule")
    if len(schedule.days) > MAX_DAYS:
        raise InvalidInput(f"节假日安排最多 {MAX_DAYS} 天 / at most {MAX_DAYS} days", reason="calendar.too_many_days",
                           max_days=MAX_DAYS, count=len(schedule.days), field="schedule")
    entries = _check_days(year, schedule, problems)
    if problems:
        problems.sort(key=lambda p: (p["line"], p.get("day") or ""))
        listed = "\n".join(f"  line {p['line']}{' ' + p['day'] if p.get('day') else ''}: {p['message']}"
                           for p in problems)
        raise InvalidInput(f"节假日安排有 {len(problems)} 处问题，未保存 / the schedule has {len(problems)} "
                           f"problem(s); nothing was saved:\n{listed}", reason="calendar.days_invalid",
                           count=len(problems), problems=problems, field="schedule")
    if not any(e.kind == HOLIDAY for e in entries):
        raise InvalidInput("节假日安排中没有节假日 / a schedule with no holiday", reason="calendar.no_holidays",
                           field="schedule")
    replaces = _known_by(session, year)
    if replaces is not None and not correction:
        raise Conflict(f"{year} 年的安排已由 {replaces} 提供；确需更正请注明更正 / {year} is already known "
                       f"({replaces}); publish it as a correction to replace it", reason="calendar.year_known",
                       year=year, source=replaces)
    return Checked(year, text, correction and replaces is not None, sorted(entries, key=lambda e: e.day), replaces)


def _check_days(year: int, schedule: Schedule, problems: list[dict[str, Any]]) -> list[DayEntry]:
    """The schedule's days, each checked on its own and against the others; problems appended."""
    seen: dict[date, int] = {}
    good: list[DayEntry] = []
    holidays = {e.day for e in schedule.days if e.kind == HOLIDAY}
    for entry, line in zip(schedule.days, schedule.lines, strict=True):
        day = entry.day.isoformat()
        found = len(problems)
        name = entry.name.strip() if isinstance(entry.name, str) else ""
        if entry.kind not in KINDS:
            problems.append(_problem(line, "calendar.kind_unknown", "kind must be holiday or workday", day=day,
                                     kind=str(entry.kind)[:20]))
        if entry.day.year != year:
            problems.append(_problem(line, "calendar.day_outside_year", f"not in {year}", day=day, year=year))
        if entry.day in seen:
            problems.append(_problem(line, "calendar.day_duplicate", f"already on line {seen[entry.day]}", day=day,
                                     first_line=seen[entry.day]))
        else:
            seen[entry.day] = line
        if not name:
            problems.append(_problem(line, "calendar.name_missing", "a name is required (春节, 调休上班…)", day=day))
        elif len(name) > NAME_MAX:
            problems.append(_problem(line, "calendar.name_too_long", f"a name is at most {NAME_MAX} characters",
                                     day=day, max_length=NAME_MAX))
        elif control_characters(name):
            problems.append(_problem(line, "calendar.name_invalid", "the name has control characters", day=day))
        weekend = entry.day.weekday() >= 5
        if entry.kind == WORKDAY and not weekend:
            problems.append(_problem(line, "calendar.workday_not_weekend",
                                     "a make-up working day (调休) is a Saturday or a Sunday", day=day))
        if entry.kind == HOLIDAY and weekend and not _in_period_with_weekday(entry.day, holidays):
            problems.append(_problem(line, "calendar.holiday_on_weekend", "a weekend day is off anyway: only "
                                     "inside a holiday period that has a weekday", day=day))
        if len(problems) == found:
            good.append(DayEntry(entry.day, entry.kind, name))
    return good


def _in_period_with_weekday(day: date, holidays: set[date]) -> bool:
    """Whether `day` lies in a run of consecutive holidays that has a weekday in it."""
    run = [day]
    for step in (-1, 1):
        d = day + timedelta(days=step)
        while d in holidays:
            run.append(d)
            d += timedelta(days=step)
    return any(d.weekday() < 5 for d in run)


def _problem(line: int, reason: str, message: str, **params: Any) -> dict[str, Any]:
    return {"line": line, "reason": reason, "message": message, **params}


def _schedule_of(days: Sequence[Any]) -> Schedule:
    """(date, kind, name) triples (or DayEntry) as a Schedule, numbered 1, 2, … in the given order."""
    entries, numbers, problems = [], [], []
    for number, item in enumerate(days, start=1):
        if isinstance(item, (tuple, list)) and len(item) == 3 and isinstance(item[0], date):
            item = DayEntry(item[0], item[1], item[2])
        if isinstance(item, DayEntry):
            entries.append(item)
            numbers.append(number)
        else:
            problems.append(_problem(number, "calendar.line_unreadable", "expected (date, kind, name)"))
    return Schedule(entries, numbers, problems)


def _clean_source(source: Any) -> str:
    if not isinstance(source, (str, type(None))):
        raise InvalidInput("来源须为文字 / the source must be text", reason="text.not_text", field="source")
    text = (source or "").strip()
    if not text:
        raise InvalidInput("请填写来源（如 国办发明电〔2026〕N号） / name the source (the State Council notice)",
                           reason="text.required", field="source")
    if len(text) > SOURCE_MAX:
        raise InvalidInput(f"来源最多 {SOURCE_MAX} 个字 / the source is longer than {SOURCE_MAX} characters",
                           reason="text.too_long", max_length=SOURCE_MAX, field="source")
    if control_characters(text):
        raise InvalidInput("来源含有控制字符 / the source contains control characters",
                           reason="text.control_characters", field="source")
    return text


def _known_by(session: Session, year: int) -> str | None:
    """Who already knows `year`: published in Yicun, calendar.yaml, chinese-calendar, or None."""
    if _published(session, year):
        return workdays.SOURCE_YICUN
    return workdays.file_calendar().source_of(year)


def _published(session: Session, year: int) -> bool:
    return session.execute(select(T_CAL_YEAR.c.year).where(T_CAL_YEAR.c.year == year)).first() is not None


# ------------------------------------------------------------------------------------------- publishing
def publish_year(session: Session, actor: Actor, year: Any, days: Schedule | Sequence[Any], source: Any,
                 now: datetime | None = None, *, correction: bool = False) -> Checked:
    """Publish `year`'s holiday schedule in the caller's transaction: checked (`check_schedule`), the days
    written, audited (`calendar.published`, old → new). When the transaction commits, every process
    counts with it (this one at once, others within `workdays.CHECK_SECONDS`); the dues estimated for it
    are then counted again by `recompute_year` (`publish` does both)."""
    now = now or clock.now()
    checked = check_schedule(session, actor, year, days, source, now, correction=correction)
    year = checked.year
    before: Any = None
    old_days: list[Any] = []
    if checked.replaces == workdays.SOURCE_YICUN:
        lock = select(T_CAL_YEAR).where(T_CAL_YEAR.c.year == year)
        before = session.execute(lock if db.is_sqlite(session) else lock.with_for_update()).mappings().one()
        old_days = list(session.execute(select(T_CAL_DAY.c.day, T_CAL_DAY.c.kind, T_CAL_DAY.c.name)
                                        .where(T_CAL_DAY.c.year == year).order_by(T_CAL_DAY.c.day)).all())
        session.execute(delete(T_CAL_DAY).where(T_CAL_DAY.c.year == year))
        session.execute(update(T_CAL_YEAR).where(T_CAL_YEAR.c.year == year).values(
            source=checked.source, published_by_id=actor.id, published_at=now))
    try:
        if before is None:
            session.execute(insert(T_CAL_YEAR).values(year=year, source=checked.source, published_by_id=actor.id,
                                                      published_at=now))
        session.execute(insert(T_CAL_DAY), [dict(day=d.day, kind=d.kind, name=d.name, year=year,
                                                 created_by_id=actor.id, created_at=now) for d in checked.days])
    except IntegrityError:  # published by someone else a moment ago (PostgreSQL; SQLite serialises writers)
        raise Conflict(f"{year} 年的安排刚刚已由他人发布 / {year} was just published by someone else",
                       reason="calendar.year_known", year=year, source=workdays.SOURCE_YICUN) from None
    old = (f"{before['source']} ({len(old_days)} days)" if before is not None
           else checked.replaces or "unknown: Monday–Friday (estimated)")
    details: dict[str, Any] = {
        "year": year, "source": checked.source, "correction": checked.correction, "replaces": checked.replaces,
        "holidays": checked.holidays, "workdays": checked.workdays, "periods": [p.text() for p in checked.periods],
        "previous": [f"{d} {k} {n}" for d, k, n in old_days] if before is not None else None, **actor.audit_details}
    audit.record(session, "calendar.published", at=now, actor_id=actor.id, old=old,
                 new=f"{checked.source} ({len(checked.days)} days)", **details)
    event.listen(session, "after_commit", _changed, once=True)
    return checked


def _changed(_session: Session) -> None:
    workdays.calendar_changed()


def recompute_year(engine: Engine, actor: Actor, year: int, now: datetime | None = None, *, after_id: int = 0,
                   limit: int | None = None) -> RecomputeReport:
    """Count again the dues of the open cases that may count days of `year` (`cases.recompute`), each
    case in its own transaction, in id order after `after_id`, at most `limit` (None: all). Idempotent: a
    case already right is left untouched. One case that fails is reported and the others go on."""
    _require_admin(actor)
    now = now or clock.now()
    workdays.reload_database(engine)  # count with what the database holds now, not what this process last read
    report = RecomputeReport(year)
    cursor = after_id
    while limit is None or report.checked < limit:
        size = min(recompute.LIST_MAX, RECOMPUTE_BATCH if limit is None else limit - report.checked)
        with db.read(engine) as s:
            batch = recompute.affected_cases(s, year, after_id=cursor, limit=size)
        if not batch:
            return report
        for case_id, number in batch:
            report.checked += 1
            cursor = case_id
            try:
                with db.transaction(engine) as s:
                    done = recompute.recompute_case(s, number, actor, now, year=year)
            except YicunError as exc:
                report.failed.append({"case": number, "reason": exc.reason, "error": str(exc)[:200]})
                continue
            except Exception as exc:  # one failure stays one failure: the case stays as it was, the rest go on
                log.exception("recounting the dues of case %s failed", number)
                report.failed.append({"case": number, "reason": "internal", "error": f"{type(exc).__name__}: "
                                      f"{str(exc)[:160]}"})
                continue
            report.changed += done.changed
            report.still_estimated += done.due_estimated
    with db.read(engine) as s:
        more = recompute.affected_cases(s, year, after_id=cursor, limit=1)
    report.next_after = cursor if more else None
    return report


def publish(engine: Engine, actor: Actor, year: Any, days: Schedule | Sequence[Any], source: Any,
            now: datetime | None = None, *, correction: bool = False,
            recompute_limit: int | None = RECOMPUTE_BATCH) -> tuple[Checked, RecomputeReport]:
    """Publish (one transaction), then count again the dues of up to `recompute_limit` affected cases
    (None: all); the report's `next_after` says where to go on."""
    now = now or clock.now()
    with db.transaction(engine) as s:
        checked = publish_year(s, actor, year, days, source, now, correction=correction)
    return checked, recompute_year(engine, actor, checked.year, now, limit=recompute_limit)


def affected_count(session: Session, year: int, cap: int = 10_000) -> int:
    """How many open cases a publication of `year` would have counted again (at most `cap` + 1)."""
    found, cursor = 0, 0
    while found <= cap:
        batch = recompute.affected_cases(session, year, after_id=cursor, limit=recompute.LIST_MAX)
        if not batch:
            break
        found += len(batch)
        cursor = batch[-1][0]
    return found


# ------------------------------------------------------------------------------------------- helpers
def _require_admin(actor: Actor) -> None:
    require(may_administer_calendar(actor), "calendar.administer",
            "只有系统管理员可以发布节假日安排 / only administrators may publish holiday schedules")


def _counts(base: workdays.WorkCalendar, year: int, source: str | None) -> tuple[int, int]:
    if source == workdays.SOURCE_FILE:
        known = base.year_days(year) or (frozenset(), frozenset())
        return len(known[0]), len(known[1])
    if source == workdays.SOURCE_PACKAGE:
        return (sum(d.year == year for d in chinese_calendar.holidays),
                sum(d.year == year for d in chinese_calendar.workdays))
    return 0, 0


def _festival(english: str) -> str:
    """chinese-calendar's festival name in Chinese (its enum carries both)."""
    try:
        return str(chinese_calendar.Holiday(english).chinese)
    except ValueError:
        return english
