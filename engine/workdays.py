"""The working-day calendar (工作日) that every legal time limit is counted in.

Sources, in order, each replacing the next for the years it names: the holiday schedules an admin
published in Yicun (tables `calendar_years` / `calendar_days`, `engine.calendar_admin`; /admin/calendar,
`yicun calendar publish`), the project-owned override file (``calendar.yaml`` at the repository root, or
``$YICUN_CALENDAR``: `settings.get().calendar_file`), then `chinese-calendar` (2004–2026 in 1.11.0). A date
in a year none knows falls back to Monday–Friday and every result built on it is marked **estimated**:
never an exception, but a visible warning (logged here once per process and year, flagged on the case for
supervisors).

How the database's schedules reach code that has no session (a `workdays(N)` timer deep in the
workflow, `deadlines`): `db.transaction` binds the unit of work to its database (`bind_database`), and
`default_calendar()` returns, inside it, the file's calendar with that database's published years laid
over it. Each process keeps, per database engine, what it last read of those tables and asks again — one
small statement on a connection of its own, committed data only — at most every `CHECK_SECONDS`, or at
the next use after `calendar_changed()` (which a publish calls when it commits). A unit of work sees one
calendar from its first deadline to its commit. So another process (the scheduler, a second web node)
counts with a newly published year within `CHECK_SECONDS`; `yicun calendar recompute YEAR` (idempotent)
catches any deadline it counted in between. Outside a unit of work (`yicun calendar due` without a
database) the calendar is the file's and chinese-calendar's.

Counting follows Chinese legal practice (DOMAIN.md §3): the acceptance day is not counted, so an N-day
limit ends on the N-th working day strictly after acceptance (an acceptance on a holiday counts from
the next working day automatically), and a deadline ends at 24:00 Asia/Shanghai of its due date.
"""
from __future__ import annotations

import contextlib
import contextvars
import functools
import logging
import threading
import time as monotonic_time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any, Protocol

import chinese_calendar
import yaml
from sqlalchemy import Connection, Engine, func, select
from sqlalchemy.exc import SQLAlchemyError

from . import settings
from .clock import SHANGHAI, due_date
from .models import T_CAL_DAY, T_CAL_YEAR

log = logging.getLogger(__name__)
#: the years already warned about in this process: every command, request and calendar object shares it,
#: so an operator reads "calendar unknown for 2027" once, not once per command run in a process
_warned_years: set[int] = set()
_warned_lock = threading.Lock()
_MAX_SPAN = 3660  # no limit in this domain reaches ten years; a bigger request is a bug


@dataclass(frozen=True)
class DueDate:
    """A date computed on the calendar; `estimated` when any day in the span came from the fallback."""
    date: date
    estimated: bool = False

    @property
    def end_instant(self) -> datetime:
        """24:00 Asia/Shanghai of the due date (= 00:00 of the next day), as an aware datetime."""
        return datetime.combine(self.date + timedelta(days=1), time(0), SHANGHAI)


#: One year's schedule: the days off (法定节假日, weekend days inside a holiday period included) and the
#: weekend days worked (调休上班); every other day follows Monday–Friday.
YearDays = tuple[frozenset[date], frozenset[date]]
#: Where a year's schedule comes from (`WorkCalendar.source_of`).
SOURCE_YICUN, SOURCE_FILE, SOURCE_PACKAGE = "yicun", "calendar.yaml", "chinese-calendar"


class WorkCalendar:
    def __init__(self, overrides: dict[int, dict[str, Any]] | None = None,
                 published: Mapping[int, YearDays] | None = None) -> None:
        """`overrides`: the file's years (`load_overrides`); `published`: the years published in Yicun's
        database, which replace the file's and chinese-calendar's for those years."""
        self._years: dict[int, YearDays] = {}
        self._sources: dict[int, str] = {}
        for year, spec in (overrides or {}).items():
            holidays = frozenset(_dates(spec.get("holidays", [])))
            workdays = frozenset(_dates(spec.get("workdays", [])))
            if holidays & workdays:
                raise ValueError(f"calendar {year}: {sorted(holidays & workdays)} are both holiday and workday")
            self._years[int(year)] = (holidays, workdays)
            self._sources[int(year)] = SOURCE_FILE
        for year, days in (published or {}).items():
            self._years[year] = days
            self._sources[year] = SOURCE_YICUN

    def with_published(self, published: Mapping[int, YearDays]) -> WorkCalendar:
        """This calendar with the database's published years laid over it (they win for their years)."""
        if not published:
            return self
        merged = WorkCalendar()
        merged._years = {**self._years, **published}
        merged._sources = {**self._sources, **dict.fromkeys(published, SOURCE_YICUN)}
        return merged

    def source_of(self, year: int) -> str | None:
        """Who knows `year`: "yicun" (published in the database), "calendar.yaml", "chinese-calendar", or
        None (nobody: counted Monday–Friday, estimated)."""
        if year in self._sources:
            return self._sources[year]
        return SOURCE_PACKAGE if package_knows(year) else None

    def listed_years(self) -> set[int]:
        """The years this calendar holds a schedule of its own for (Yicun's and the file's)."""
        return set(self._years)

    def year_days(self, year: int) -> YearDays | None:
        """The holidays and 调休 workdays this calendar holds for `year` from Yicun or the file (None when
        chinese-calendar or nobody answers for it)."""
        return self._years.get(year)

    # ------------------------------------------------------------------ single days
    def is_workday(self, day: date) -> tuple[bool, bool]:
        """(is a working day, estimated)."""
        override = self._years.get(day.year)
        if override is not None:
            holidays, workdays = override
            if day in holidays:
                return False, False
            if day in workdays:
                return True, False
            return day.weekday() < 5, False
        try:
            return chinese_calendar.is_workday(day), False
        except NotImplementedError:
            if day.year not in _warned_years:
                _warn_unknown_year(day.year)
            return day.weekday() < 5, True

    def known_year(self, year: int) -> bool:
        return year in self._years or package_knows(year)

    # ------------------------------------------------------------------ arithmetic
    def add_workdays(self, start: date, n: int) -> DueDate:
        """The n-th working day strictly after `start` (n ≥ 1); n = 0 gives `start` itself."""
        if n < 0:
            raise ValueError("a time limit cannot be negative")
        day, estimated, found = start, False, 0
        for _ in range(_MAX_SPAN):
            if found == n:
                return DueDate(day, estimated)
            day += timedelta(days=1)
            ok, est = self.is_workday(day)
            estimated |= est
            found += ok
        raise ValueError(f"{n} working days after {start} is beyond the calendar's range")

    def count_workdays(self, start: date, end: date) -> tuple[int, bool]:
        """Working days strictly after `start` up to and including `end` (0 when end ≤ start)."""
        count, estimated, day = 0, False, start
        if (end - start).days > _MAX_SPAN:
            raise ValueError("span too long")
        while day < end:
            day += timedelta(days=1)
            ok, est = self.is_workday(day)
            count += ok
            estimated |= est
        return count, estimated

    def first_workday_on_or_after(self, day: date) -> DueDate:
        estimated = False
        for _ in range(_MAX_SPAN):
            ok, est = self.is_workday(day)
            estimated |= est
            if ok:
                return DueDate(day, estimated)
            day += timedelta(days=1)
        raise ValueError("no working day found")

    def workdays_before(self, instant: datetime, n: int) -> datetime:
        """The same wall time (Asia/Shanghai) `n` working days before `instant`: the earliest moment a
        late entry may name when `n` working days of grace are allowed (a Monday's one day → Friday)."""
        local = instant.astimezone(SHANGHAI)
        day, found = local.date(), 0
        for _ in range(_MAX_SPAN):
            if found == n:
                return datetime.combine(day, local.timetz()).astimezone(instant.tzinfo)
            day -= timedelta(days=1)
            found += self.is_workday(day)[0]
        raise ValueError(f"{n} working days before {instant} is beyond the calendar's range")

    def due(self, accepted_at: datetime, workdays: int) -> DueDate:
        """Due date of a limit of `workdays` for something accepted at the instant `accepted_at`."""
        return self.add_workdays(accepted_at.astimezone(SHANGHAI).date(), workdays)

    def workdays_left(self, at: datetime, due_end: datetime) -> tuple[int, bool]:
        """Working days strictly after the local date of `at` up to the due date (whose end is `due_end`)."""
        return self.count_workdays(at.astimezone(SHANGHAI).date(), due_date(due_end))


# ------------------------------------------------------------------ the working time of a step
class DayCalendar(Protocol):
    """What `work_hundredths` asks of a calendar (a `WorkCalendar`, or a memo of one for a backfill)."""
    def is_workday(self, day: date) -> tuple[bool, bool]: ...


#: a day in hundredths: 86,400 s / 100
_HUNDREDTH = 864


def work_hundredths(start: datetime, end: datetime, cal: DayCalendar) -> int | None:
    """The working time from `start` to `end`, in hundredths of a working day: each Asia/Shanghai calendar
    day the interval touches counts the hours of the interval that fall in it / 24 if it is a working day
    (调休 Saturdays included), nothing otherwise (weekends, 法定节假日). So a step opened on Friday 16:00
    and done on Monday 10:00 took 0.33 + 0.42 = 0.75 working days, the weekend not counted; one opened and
    done within the same hour of a working day took 0.04. Why not whole working days, the way limits count:
    most steps take less than a day, and the supervisor wants to see which take hours and which take days.
    Rounded half up; 0 when `end` ≤ `start`; None when the span is beyond the calendar's range (a corrupt
    row must not stop a completion). The case's clock stops (补正…) are *not* taken out: waiting for the
    applicant's documents is time the case spends in that step."""
    if end <= start:
        return 0
    first, last = start.astimezone(SHANGHAI), end.astimezone(SHANGHAI)
    if (last.date() - first.date()).days > _MAX_SPAN:
        return None
    seconds, day = 0.0, first.date()
    while day <= last.date():
        if cal.is_workday(day)[0]:
            begin = max(first, datetime.combine(day, time(0), SHANGHAI))
            finish = min(last, datetime.combine(day + timedelta(days=1), time(0), SHANGHAI))
            seconds += (finish - begin).total_seconds()
        day += timedelta(days=1)
    return int((seconds + _HUNDREDTH / 2) // _HUNDREDTH)


def work_start(end: datetime, hundredths: int, cal: DayCalendar) -> datetime:
    """The latest instant from which at least `hundredths` of working time have passed by `end` (the
    inverse of `work_hundredths`, walking back over the working days): a step opened before it has been
    held longer than `hundredths`. Beyond the calendar's range: the earliest instant it counts."""
    local, wanted = end.astimezone(SHANGHAI), float(hundredths * _HUNDREDTH)
    day = local.date()
    for _ in range(_MAX_SPAN):
        midnight = datetime.combine(day, time(0), SHANGHAI)
        if cal.is_workday(day)[0]:
            span = (min(local, midnight + timedelta(days=1)) - midnight).total_seconds()
            if span >= wanted:
                return (midnight + timedelta(seconds=span - wanted)).astimezone(end.tzinfo)
            wanted -= span
        day -= timedelta(days=1)
    return datetime.combine(day, time(0), SHANGHAI).astimezone(end.tzinfo)


class MemoCalendar:
    """A calendar's `is_workday` remembered day by day: what a loop over many steps asks again and again
    (the backfill of `tasks.work_hundredths`, the rows of a report)."""

    def __init__(self, cal: DayCalendar) -> None:
        self._cal = cal
        self._days: dict[date, tuple[bool, bool]] = {}

    def is_workday(self, day: date) -> tuple[bool, bool]:
        found = self._days.get(day)
        if found is None:
            found = self._days[day] = self._cal.is_workday(day)
        return found


def _dates(values: list[Any]) -> list[date]:
    out = []
    for v in values:
        if isinstance(v, date):
            out.append(v)
        elif isinstance(v, str) and ".." in v:  # a range "2027-02-06..2027-02-13"
            a, b = (date.fromisoformat(p.strip()) for p in v.split(".."))
            out += [a + timedelta(days=i) for i in range((b - a).days + 1)]
        else:
            out.append(date.fromisoformat(str(v)))
    return out


def _warn_unknown_year(year: int) -> None:
    with _warned_lock:
        if year in _warned_years:
            return
        _warned_years.add(year)
    log.warning("calendar unknown for %s: counting Monday–Friday; deadlines are estimated until the State "
                "Council schedule is published (/admin/calendar, yicun calendar publish) or added to %s", year,
                settings.get().calendar_file.name)


def load_overrides(path: Path | None = None) -> dict[int, dict[str, Any]]:
    path = Path(path or settings.get().calendar_file)
    if not path.exists():
        return {}
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    years = data.get("years") or {}
    if not isinstance(years, dict):
        raise ValueError(f"{path}: 'years' must map a year to its holidays and workdays")
    return {int(y): (spec or {}) for y, spec in years.items()}


def package_knows(year: int) -> bool:
    """Whether chinese-calendar holds `year`'s schedule."""
    try:
        chinese_calendar.is_workday(date(year, 6, 1))
        return True
    except NotImplementedError:
        return False


def default_calendar() -> WorkCalendar:
    """The calendar deadlines are counted in: the configured override file's (built once per file), with
    the published years of the database this unit of work is bound to (`bind_database`) laid over it."""
    base = file_calendar()
    binding = _bound.get()
    if binding is None:
        return base
    if binding.calendar is None or binding.base is not base:
        binding.base, binding.calendar = base, _published_of(binding.engine).calendar(binding.engine, base)
    return binding.calendar


def file_calendar() -> WorkCalendar:
    """The calendar without the database: chinese-calendar and the configured override file (built once
    per file)."""
    return _calendar_of(settings.get().calendar_file)


@functools.lru_cache(maxsize=4)
def _calendar_of(path: Path) -> WorkCalendar:
    return WorkCalendar(load_overrides(path))


# ------------------------------------------------------------------ the database's published years
#: The longest a process counts with what it last read of a database's published years before asking
#: again (one small statement). A publish in this process is seen at once (`calendar_changed`).
CHECK_SECONDS = 10.0
_generation = 0  # bumped by calendar_changed(): every database's cache asks again at its next use
_generation_lock = threading.Lock()


@dataclass
class _Binding:
    """A unit of work's database, and the calendar it counted with once it first needed one."""
    engine: Engine
    base: WorkCalendar | None = None
    calendar: WorkCalendar | None = None


_bound: contextvars.ContextVar[_Binding | None] = contextvars.ContextVar("yicun_calendar_db", default=None)


class _Published:
    """What this process last read of one database's published years (one per engine object)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        # (stamp, years), replaced as one value: a reader never pairs one read's stamp with another's years
        self.read: tuple[tuple[Any, ...] | None, dict[int, YearDays]] = (None, {})
        self.checked = float("-inf")  # monotonic seconds
        self.generation = -1
        self.merged: tuple[WorkCalendar, tuple[Any, ...] | None, WorkCalendar] | None = None

    def calendar(self, engine: Engine, base: WorkCalendar) -> WorkCalendar:
        if self.generation != _generation or monotonic_time.monotonic() - self.checked >= CHECK_SECONDS:
            # the first read waits for the lock; a later check never does (the others count with what
            # was read a moment ago), so at most one extra connection per database is ever taken for it
            if self.lock.acquire(blocking=self.read[0] is None):
                try:
                    self._refresh(engine)
                finally:
                    self.lock.release()
        stamp, years = self.read
        merged = self.merged
        if merged is not None and merged[0] is base and merged[1] == stamp:
            return merged[2]
        calendar = base.with_published(years)
        self.merged = (base, stamp, calendar)
        return calendar

    def _refresh(self, engine: Engine) -> None:
        generation = _generation
        try:
            with engine.connect() as conn:
                stamp = tuple(conn.execute(select(
                    select(func.count()).select_from(T_CAL_YEAR).scalar_subquery(),
                    select(func.max(T_CAL_YEAR.c.published_at)).scalar_subquery(),
                    select(func.count()).select_from(T_CAL_DAY).scalar_subquery())).one())
                if stamp != self.read[0]:
                    self.read = (stamp, published_years(conn))
        except SQLAlchemyError as exc:  # never a crash in deadline arithmetic: count with what we had
            log.warning("could not read the holiday schedules published in the database (%s); counting with "
                        "what was read before", str(exc).splitlines()[0][:200])
        self.checked = monotonic_time.monotonic()
        self.generation = generation


def published_years(conn: Connection) -> dict[int, YearDays]:
    """The holiday schedules published in the database `conn` is connected to (complete years only)."""
    rows = conn.execute(select(T_CAL_DAY.c.day, T_CAL_DAY.c.kind, T_CAL_DAY.c.year)
                        .where(T_CAL_DAY.c.year.in_(select(T_CAL_YEAR.c.year)))).all()
    years: dict[int, tuple[set[date], set[date]]] = {
        int(y): (set(), set()) for y in conn.execute(select(T_CAL_YEAR.c.year)).scalars()}
    for day, kind, year in rows:
        years[int(year)][0 if kind == "holiday" else 1].add(day)
    return {y: (frozenset(h), frozenset(w)) for y, (h, w) in years.items()}


_published_lock = threading.Lock()


def _published_of(engine: Engine) -> _Published:
    """The cache of `engine`'s database (kept on the engine object, like `db`'s write engine)."""
    state = engine.__dict__.get("_yicun_calendar")
    if state is None:
        with _published_lock:
            state = engine.__dict__.setdefault("_yicun_calendar", _Published())
    return state


def bind_database(engine: Engine) -> contextvars.Token[_Binding | None]:
    """Count deadlines in this unit of work (this thread or task) with `engine`'s published years too;
    `db.transaction` calls it and `unbind` when the unit of work ends."""
    return _bound.set(_Binding(engine))


def unbind(token: contextvars.Token[_Binding | None]) -> None:
    _bound.reset(token)


@contextlib.contextmanager
def using_database(engine: Engine) -> Iterator[WorkCalendar]:
    """`default_calendar()` with `engine`'s published years for the block (a command that counts without
    a transaction, `yicun calendar due`); yields that calendar."""
    token = bind_database(engine)
    try:
        yield default_calendar()
    finally:
        unbind(token)


def reload_database(engine: Engine) -> None:
    """Read `engine`'s published years now, waiting for a read already under way: what a recount needs
    (counting with what another thread read a moment before the publication committed would leave the
    cases as they were, and a recount that found them unchanged would not look again)."""
    calendar_changed()
    state = _published_of(engine)
    with state.lock:
        state._refresh(engine)


def calendar_changed() -> None:
    """A holiday schedule was published (and committed): every database's cache in this process asks
    again at its next use (one small statement each) instead of waiting `CHECK_SECONDS`."""
    global _generation
    with _generation_lock:
        _generation += 1
