"""SLA arithmetic, pure: due instants, yellow thresholds, warning levels, shifting by working days.

Levels (DESIGN.md §5): green; yellow when at most max(1, ⌈20 % of the limit⌉) working days are left
(the ratio is `settings.get().yellow_ratio`, $YICUN_YELLOW_RATIO); red when overdue. Nothing here touches
the database: the cards and notifications these levels issue are written by `engine.cases.warnings`.
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from . import settings
from .clock import SHANGHAI, due_date
from .workdays import WorkCalendar, default_calendar


def yellow_ratio() -> float:
    return settings.get().yellow_ratio


def yellow_threshold(limit_workdays: int) -> int:
    """Working days left at which a limit turns yellow: max(1, ⌈ratio × limit⌉)."""
    return max(1, math.ceil(yellow_ratio() * limit_workdays))


def yellow_at(due_at: datetime, limit_workdays: int | None, opened_at: datetime,
              cal: WorkCalendar | None = None) -> datetime:
    """The instant a deadline turns yellow.

    In working days: 00:00 of the first day on which at most `threshold` working days are left
    (counted strictly after that day, up to the due date): the `threshold`-th working day before it.
    In calendar time (an ISO timer): when the last max(1 day, ratio × duration) begins.
    """
    if limit_workdays == 0:
        return due_at  # 即办: due the same day, no yellow phase
    if limit_workdays is None:
        span = max(due_at - opened_at, timedelta(0))
        return max(opened_at, due_at - max(timedelta(days=1), span * yellow_ratio()))
    cal = cal or default_calendar()
    k = yellow_threshold(limit_workdays)
    day = due_date(due_at)
    seen = 0
    while seen < k:
        day -= timedelta(days=1)
        seen += cal.is_workday(day)[0]
    # on `day`, the working days strictly after it up to the due date are exactly k
    start = datetime.combine(day, datetime.min.time(), SHANGHAI)
    return max(opened_at, start)


#: The cards a deadline has earned at each level (jumping from green to red earns both).
CARDS_AT = {"green": (), "yellow": ("yellow",), "red": ("yellow", "red")}


def level_at(now: datetime, due_at: datetime | None, yellow: datetime | None) -> str:
    if due_at is None:
        return "green"
    if now >= due_at:
        return "red"
    if yellow is not None and now >= yellow:
        return "yellow"
    return "green"


def next_check(level: str, due_at: datetime | None, yellow: datetime | None) -> datetime | None:
    """When a deadline at `level` must be looked at again (None: nothing further can happen)."""
    if due_at is None or level == "red":
        return None
    return yellow if level == "green" and yellow is not None else due_at


def shift_workdays(instant: datetime, workdays: int, end_of_day: bool, cal: WorkCalendar | None = None) -> datetime:
    """Move a deadline by `workdays` working days: a working-day deadline (24:00 of its due date) to 24:00
    of the date `workdays` later; a calendar-time one to the same local time on that date."""
    cal = cal or default_calendar()
    local = instant.astimezone(SHANGHAI)
    if end_of_day:
        return cal.add_workdays(due_date(instant), workdays).end_instant
    moved = cal.add_workdays(local.date(), workdays).date
    return datetime.combine(moved, local.timetz())


def case_dues(properties: Mapping[str, Any], accepted_at: datetime,
              cal: WorkCalendar | None = None) -> dict[str, Any]:
    """The SLA columns of a case accepted at `accepted_at`: legal and promised limits and due instants."""
    cal = cal or default_calendar()
    legal, promised = properties.get("legalLimitWorkdays"), properties.get("promisedLimitWorkdays")
    out: dict[str, Any] = {"legal_limit_workdays": legal, "promised_limit_workdays": promised,
                           "legal_due_at": None, "promised_due_at": None, "due_estimated": False,
                           "warning_level": "green", "warning_check_at": None}
    for key, limit in (("legal_due_at", legal), ("promised_due_at", promised)):
        if limit is not None:
            due = cal.due(accepted_at, limit)
            out[key] = due.end_instant
            out["due_estimated"] |= due.estimated
    target, limit = (out["promised_due_at"], promised) if promised is not None else (out["legal_due_at"], legal)
    if target is not None:
        out["warning_check_at"] = yellow_at(target, limit, accepted_at, cal)
    return out
