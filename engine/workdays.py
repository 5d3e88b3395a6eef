"""The working-day calendar (工作日) that every legal time limit is counted in.

Sources, in order: the project-owned override file (``calendar.yaml`` at the repository root, or
``$YICUN_CALENDAR``: `settings.get().calendar_file`) — each year's State Council schedule can be added
there without a release — then `chinese-calendar` (2004–2026 in 1.11.0). A date in a year neither knows
falls back to Monday–Friday and every result built on it is marked **estimated**: never an exception, but
a visible warning (logged here once per process and year, flagged on the case for supervisors).

Counting follows Chinese legal practice (DOMAIN.md §3): the acceptance day is not counted, so an N-day
limit ends on the N-th working day strictly after acceptance (an acceptance on a holiday counts from
the next working day automatically), and a deadline ends at 24:00 Asia/Shanghai of its due date.
"""
from __future__ import annotations

import functools
import logging
import threading
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any

import chinese_calendar
import yaml

from . import settings
from .clock import SHANGHAI, due_date

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


class WorkCalendar:
    def __init__(self, overrides: dict[int, dict[str, Any]] | None = None) -> None:
        self._years: dict[int, tuple[frozenset[date], frozenset[date]]] = {}
        for year, spec in (overrides or {}).items():
            holidays = frozenset(_dates(spec.get("holidays", [])))
            workdays = frozenset(_dates(spec.get("workdays", [])))
            if holidays & workdays:
                raise ValueError(f"calendar {year}: {sorted(holidays & workdays)} are both holiday and workday")
            self._years[int(year)] = (holidays, workdays)

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
        if year in self._years:
            return True
        try:
            chinese_calendar.is_workday(date(year, 6, 1))
            return True
        except NotImplementedError:
            return False

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
                "Council schedule is added to %s", year, settings.get().calendar_file.name)


def load_overrides(path: Path | None = None) -> dict[int, dict[str, Any]]:
    path = Path(path or settings.get().calendar_file)
    if not path.exists():
        return {}
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    years = data.get("years") or {}
    if not isinstance(years, dict):
        raise ValueError(f"{path}: 'years' must map a year to its holidays and workdays")
    return {int(y): (spec or {}) for y, spec in years.items()}


def default_calendar() -> WorkCalendar:
    """The calendar of the configured override file, built once per file."""
    return _calendar_of(settings.get().calendar_file)


@functools.lru_cache(maxsize=4)
def _calendar_of(path: Path) -> WorkCalendar:
    return WorkCalendar(load_overrides(path))
