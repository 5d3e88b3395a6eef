"""The one source of engine time.

Every engine service and every SpiffWorkflow timer reads the time through :func:`now`, so a test or a
demo can swap in a :class:`ManualClock` and move time by hand. Instants are always timezone-aware UTC.
"""
from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from typing import Protocol
from zoneinfo import ZoneInfo

SHANGHAI = ZoneInfo("Asia/Shanghai")


class Clock(Protocol):
    def now(self) -> datetime: ...


class SystemClock:
    """Wall-clock time in UTC."""

    def now(self) -> datetime:
        return datetime.now(UTC)


class ManualClock:
    """A clock that only moves when told to; for tests, demos and replays."""

    def __init__(self, start: datetime | str | None = None) -> None:
        self._now = to_utc(start) if start is not None else datetime.now(UTC)

    def now(self) -> datetime:
        return self._now

    def set(self, instant: datetime | str) -> None:
        self._now = to_utc(instant)

    def advance(self, delta: timedelta | None = None, **kwargs: float) -> datetime:
        self._now += delta if delta is not None else timedelta(**kwargs)
        return self._now


# the default is shared by every context, which is right: the system clock holds no state
_current: contextvars.ContextVar[Clock] = contextvars.ContextVar("yicun_clock", default=SystemClock())  # noqa: B039


def now() -> datetime:
    """The current instant of the clock in force."""
    return _current.get().now()


def current() -> Clock:
    return _current.get()


def set_clock(clock: Clock) -> None:
    """Install a clock for the rest of this context (the CLI and `serve` call it once at start)."""
    _current.set(clock)


@contextlib.contextmanager
def using(clock: Clock) -> Iterator[Clock]:
    """Run a block under another clock, e.g. a sweep at a given instant."""
    token = _current.set(clock)
    try:
        yield clock
    finally:
        _current.reset(token)


#: Instants a user may type: the calendar arithmetic (and PostgreSQL's timestamptz round trip) is only
#: meaningful well inside datetime's range, and no case of this system lies outside these years.
FIRST_YEAR, LAST_YEAR = 1970, 2199


def to_utc(value: datetime | str) -> datetime:
    """Parse/normalise an instant; a naive value is read as Asia/Shanghai wall time, as users write it.
    Text (what users type) must name a year from 1970 to 2199; anything else is a ValueError."""
    if isinstance(value, str):
        text = value.strip().replace("Z", "+00:00")
        if len(text) > 40:
            raise ValueError("not an ISO 8601 date-time")
        value = datetime.fromisoformat(text)
        if not FIRST_YEAR <= value.year <= LAST_YEAR:
            raise ValueError(f"{text} is out of range: give a date-time from {FIRST_YEAR} to {LAST_YEAR}")
    if value.tzinfo is None:
        value = value.replace(tzinfo=SHANGHAI)
    return value.astimezone(UTC)


def local(value: datetime) -> datetime:
    """An instant as Asia/Shanghai wall time, for display."""
    return value.astimezone(SHANGHAI)


def due_date(instant: datetime) -> date:
    """The date a deadline stands for. A working-day deadline ends at 24:00 Asia/Shanghai of its due date,
    which is stored as 00:00 of the next day; the instant just before it is still on the due date."""
    return (instant.astimezone(SHANGHAI) - timedelta(microseconds=1)).date()


def due_text(instant: datetime) -> str:
    """A deadline as limits are stated (…日24时): 'YYYY-MM-DD 24:00' for one that ends a day, otherwise
    (a calendar-time deadline, e.g. 72 hours) its local 'YYYY-MM-DD HH:MM'. The one place that says it:
    the web's `when` filter shows every instant through it (so a deadline among other instants reads right)."""
    shown = local(instant)
    if shown.time() == time(0):
        return f"{due_date(instant):%Y-%m-%d} 24:00"
    return f"{shown:%Y-%m-%d %H:%M}"
