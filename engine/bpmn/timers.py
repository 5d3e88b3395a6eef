"""Timers on the engine clock (SPIFFWORKFLOW.md §3): SpiffWorkflow's timer event definitions subclassed
so they read `clock.now()` instead of `datetime.now`, accept bare ISO 8601 text and `workdays(N)`, and
refuse values out of range (a typo such as P99999999999999D) with a `TimerValueError` naming the timer.

A repeating (timeCycle) timer fires at most once per sweep however many rounds were missed, and a
non-interrupting boundary one that ran its last round is *spent*: it no longer reports a due
(`spent_cycle`) and never fires again, where SpiffWorkflow would complete it one interval later as if it
had fired. What happens to the branches it opened when its task ends is `boundary.py`'s business.
"""
from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

from SpiffWorkflow.bpmn.specs.event_definitions.timer import (
    CycleTimerEventDefinition,
    DurationTimerEventDefinition,
    TimeDateEventDefinition,
    TimerEventDefinition,
)
from SpiffWorkflow.bpmn.specs.mixins.events.intermediate_event import BoundaryEvent

from .. import clock
from ..expressions import is_iso_literal
from ..workdays import default_calendar

# --------------------------------------------------------------------------------------------- timers
#: No timer may be due further ahead than this (a typo such as P99999999999999D overflows datetime, and
#: SpiffWorkflow adds a year's months one by one, so P99999999999Y would spin for hours).
MAX_TIMER_HORIZON = timedelta(days=3653)
#: The shortest interval of a timeCycle timer that repeats without a count (R/…): a sweep fires every
#: missed round at once. A counted cycle (R3/…) needs an interval above zero.
MIN_CYCLE_INTERVAL = timedelta(minutes=1)
_APPROX_DAYS = {"years": 366, "months": 31, "weeks": 7, "days": 1, "hours": 1 / 24, "minutes": 1 / 1440,
                "seconds": 1 / 86400}


class TimerValueError(ValueError):
    """A timer's value cannot be armed: not ISO 8601, or out of range. A ValueError, so the engine turns
    it into a WorkflowError naming the step instead of a traceback."""

    #: the timer's BPMN id, once known (see _armed; incidents blame that element)
    element_id: str | None = None


def _timer_text(my_task: Any, expression: str) -> str:
    """Bare ISO 8601 (as Camunda Modeler writes it) is taken literally; anything else is an expression."""
    if is_iso_literal(expression):
        return expression.strip()
    value = my_task.workflow.script_engine.evaluate(my_task, expression)
    if not isinstance(value, str):
        raise TimerValueError(f"timer {my_task.task_spec.bpmn_id}: {expression!r} gave {str(value)[:60]!r}, "
                              "not an ISO 8601 text or workdays(N)")
    return value


def timer_delta(text: str, start: datetime) -> timedelta:
    """An ISO 8601 duration from `start`, as SpiffWorkflow computes it (calendar months), or
    TimerValueError — checked against MAX_TIMER_HORIZON before SpiffWorkflow's month loop runs."""
    try:
        if len(text) < 3 or text[0] not in "Pp":
            raise ValueError(text)
        parsed = TimerEventDefinition.parse_iso_duration(text)
    except Exception:  # SpiffWorkflow raises a bare Exception('Invalid duration'); int() a ValueError
        raise TimerValueError(f"{text[:60]!r} is not an ISO 8601 duration") from None
    if sum(float(value) * _APPROX_DAYS.get(unit, 0) for unit, value in parsed.items()) > MAX_TIMER_HORIZON.days + 31:
        raise TimerValueError(f"duration {text[:60]!r} is longer than {MAX_TIMER_HORIZON.days} days")
    try:
        delta = TimerEventDefinition.get_timedelta_from_start(parsed, start)
        start + delta
    except (OverflowError, ValueError):
        raise TimerValueError(f"duration {text[:60]!r} is out of range") from None
    if delta > MAX_TIMER_HORIZON:
        raise TimerValueError(f"duration {text[:60]!r} is longer than {MAX_TIMER_HORIZON.days} days")
    return delta


def timer_instant(text: str, now: datetime) -> datetime:
    """An ISO 8601 date-time (timeDate) or TimerValueError; no further ahead than MAX_TIMER_HORIZON."""
    try:
        due = TimerEventDefinition.parse_time_or_duration(text)
    except Exception:
        raise TimerValueError(f"{text[:60]!r} is not an ISO 8601 date-time") from None
    if not isinstance(due, datetime):
        raise TimerValueError(f"{text[:60]!r} is a duration; a timeDate needs a date-time")
    if due - now > MAX_TIMER_HORIZON:
        raise TimerValueError(f"{text[:60]!r} is more than {MAX_TIMER_HORIZON.days} days ahead")
    return due


def _armed(my_task: Any, compute: Any) -> Any:
    """Run a timer's arming computation; a bad value names the timer."""
    try:
        return compute()
    except TimerValueError as exc:
        named = TimerValueError(f"timer {my_task.task_spec.bpmn_id}: {exc}")
        named.element_id = my_task.task_spec.bpmn_id
        raise named from None


class ClockTimeDateEventDefinition(TimeDateEventDefinition):
    def has_fired(self, my_task: Any) -> bool:
        event_value = my_task._get_internal_data("event_value")
        if event_value is None:
            event_value = _timer_text(my_task, self.expression)
            _armed(my_task, lambda: timer_instant(event_value, clock.now()))
            my_task._set_internal_data(event_value=event_value)
        if TimerEventDefinition.parse_time_or_duration(event_value) <= clock.now():
            my_task._set_internal_data(event_fired=True)
        return my_task._get_internal_data("event_fired", False)


WORKDAYS_MARKER = re.compile(r"^P(\d+)WD$")
PAUSED_VALUE = "9999-12-31T00:00:00+00:00"  # the due of a timer whose case clock is stopped


class ClockDurationTimerEventDefinition(DurationTimerEventDefinition):
    def has_fired(self, my_task: Any) -> bool:
        event_value = my_task._get_internal_data("event_value")
        if event_value is None:
            text = _timer_text(my_task, self.expression)
            start = clock.now()
            marker = WORKDAYS_MARKER.match(text)
            if marker:  # workdays(N): the end of the N-th working day after today (Asia/Shanghai)
                due = default_calendar().due(start, int(marker.group(1)))
                event_value = due.end_instant.astimezone(UTC).isoformat()
                my_task._set_internal_data(workdays=int(marker.group(1)), estimated=due.estimated)
            else:
                event_value = (start + _armed(my_task, lambda: timer_delta(text, start))).isoformat()
            my_task._set_internal_data(event_value=event_value)
        if TimerEventDefinition.get_datetime(event_value) <= clock.now():
            my_task._set_internal_data(event_fired=True)
        return my_task._get_internal_data("event_fired", False)


class ClockCycleTimerEventDefinition(CycleTimerEventDefinition):
    def cycle_complete(self, my_task: Any) -> bool:
        event_value = my_task._get_internal_data("event_value")
        if event_value is None:
            text = _timer_text(my_task, self.expression)
            cycles, start, duration = _armed(my_task, lambda: _parse_cycle(text))
            event_value = {"cycles": cycles, "next": start.isoformat(), "duration": duration.total_seconds()}
        ready = False
        if event_value["cycles"] != 0:
            next_event = datetime.fromisoformat(event_value["next"])
            now = clock.now()
            if next_event <= now:
                # Fire once, and let the rounds whose time passed while nothing swept (server down, a case
                # parked by an incident, a start date in the past) go: firing each of them in one step
                # would never end for a long backlog (SpiffWorkflow's own loop fires one per call).
                interval = timedelta(seconds=event_value["duration"])
                passed = (now - next_event) // interval + 1
                event_value["next"] = (next_event + passed * interval).isoformat()
                if event_value["cycles"] > 0:
                    event_value["cycles"] = max(0, event_value["cycles"] - passed)
                ready = True
        elif _non_interrupting_boundary(my_task.task_spec):
            # Spent (its last round fired): it stays waiting, never firing again, until its task ends and the
            # join retires or cancels it (boundary.py). SpiffWorkflow would mark it fired and complete it one
            # interval later: a phantom due, and a "fired" round that opened nothing.
            return False
        else:
            my_task.internal_data.pop("event_value", None)
            my_task.internal_data["event_fired"] = True
        my_task._set_internal_data(event_value=event_value)
        return ready


def _non_interrupting_boundary(task_spec: Any) -> bool:
    return isinstance(task_spec, BoundaryEvent) and not task_spec.cancel_activity


def spent_cycle(value: Any) -> bool:
    """Is this a timer's `event_value` of a repeating timer that ran all its rounds (R3/… after the third)?"""
    return isinstance(value, dict) and value.get("cycles") == 0


def _parse_cycle(text: str) -> tuple[int, datetime, timedelta]:
    """Spiff's recurring-interval parser, but a duration-only cycle starts from the engine clock; every
    part is range-checked first (TimerValueError), and the interval must be at least MIN_CYCLE_INTERVAL."""
    components = text.upper().replace("--", "/").strip("R").split("/")
    now = clock.now()
    if len(components) not in (2, 3) or not components[0].isdigit() and components[0]:
        raise TimerValueError(f"{text[:60]!r} is not an ISO 8601 repeating interval (R3/PT1H)")
    for part in components[1:]:  # SpiffWorkflow's month loop must never see an unchecked duration
        if part.startswith("P"):
            timer_delta(part, now)
        else:
            timer_instant(part, now)
    if len(components) == 2 and components[1].startswith("P"):
        cycles = int(components[0]) if components[0] else -1
        duration = timer_delta(components[1], now)
        start = now + duration
    else:
        try:
            cycles, start, duration = TimerEventDefinition.parse_iso_recurring_interval(text)
        except Exception:
            raise TimerValueError(f"{text[:60]!r} is not an ISO 8601 repeating interval (R3/PT1H)") from None
    if duration < MIN_CYCLE_INTERVAL:
        raise TimerValueError(f"a repeating timer needs an interval of at least {MIN_CYCLE_INTERVAL}, not {duration}")
    return cycles, start, duration


_CLOCKED = {
    TimeDateEventDefinition: ClockTimeDateEventDefinition,
    DurationTimerEventDefinition: ClockDurationTimerEventDefinition,
    CycleTimerEventDefinition: ClockCycleTimerEventDefinition,
}
