"""Parking a failing case's work and putting it back (DESIGN.md invariant 8): the writes an incident makes
to the case's own rows. The incident itself (what failed, retries, backoff) is `engine.incidents`' record;
what it does to timers, steps and the case row is case state, so it is written here.

Parked work leaves the sweep's hot indexes at no cost to them: a case's armed timers become ``failed``
(the due ones, with the error) or ``held`` (the later ones); a case's warning checks are cleared.
"""
from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from ..models import T_CASE, T_TASK, T_TIMER
from . import store

PARKED = ("failed", "held")  # timer states of a case with an open timer incident


def park_timers(session: Session, case_id: int, now: datetime, message: str) -> str | None:
    """Take the case's armed timers out of the sweep: the due ones become `failed` (with the error), the
    later ones `held`. Returns the BPMN id of the first due one, the element that failed."""
    first = session.scalar(select(T_TIMER.c.bpmn_id).where(T_TIMER.c.case_id == case_id, T_TIMER.c.state == "armed",
                                                           T_TIMER.c.due_at <= now)
                           .order_by(T_TIMER.c.due_at, T_TIMER.c.id).limit(1))
    session.execute(update(T_TIMER).where(T_TIMER.c.case_id == case_id, T_TIMER.c.state == "armed",
                                          T_TIMER.c.due_at <= now)
                    .values(state="failed", error=message))
    session.execute(update(T_TIMER).where(T_TIMER.c.case_id == case_id, T_TIMER.c.state == "armed")
                    .values(state="held"))
    return first


def park_warnings(session: Session, case_id: int, now: datetime, message: str) -> str | None:
    """Take the case and its open steps out of the warning sweep (their next-check instants)."""
    step = session.scalar(select(T_TASK.c.bpmn_id).where(T_TASK.c.case_id == case_id, T_TASK.c.state == "ready",
                                                         T_TASK.c.warning_check_at <= now)
                          .order_by(T_TASK.c.warning_check_at).limit(1))
    session.execute(update(T_CASE).where(T_CASE.c.id == case_id).values(warning_check_at=None))
    session.execute(update(T_TASK).where(T_TASK.c.case_id == case_id, T_TASK.c.state == "ready")
                    .values(warning_check_at=None))
    return step


def park_nothing(_session: Session, _case_id: int, _now: datetime, _message: str) -> str | None:
    return None


PARK: dict[str, Callable[[Session, int, datetime, str], str | None]] = {
    "timer": park_timers, "warning": park_warnings, "service_day": park_nothing}


def rearm_timers(session: Session, case_id: int, strict: bool = True) -> None:
    """Put a case's parked timers back in the sweep, as the workflow has them now: still waiting → armed
    (or paused, with the workflow's due); gone meanwhile → fired or cancelled; case closed → cancelled.

    The workflow is the truth because users went on working on the case while its timers were parked
    (a step completed cancels its deadline timer; a pause moves them). `strict` (a retry) lets a case that
    cannot be restored fail the retry; otherwise (a person resolving) the timers go back as they were, and
    the sweep will find out.
    """

    parked = session.execute(select(T_TIMER.c.id, T_TIMER.c.spiff_task_id).where(
        T_TIMER.c.case_id == case_id, T_TIMER.c.state.in_(PARKED))).all()
    if not parked:
        return
    case = store.lock_case(session, case_id)
    ids = [row.id for row in parked]
    if case["status"] != "open":
        session.execute(update(T_TIMER).where(T_TIMER.c.id.in_(ids)).values(state="cancelled"))
        return
    try:
        instance = store.restore(session, case).instance
    except Exception:
        if strict:
            raise
        session.execute(update(T_TIMER).where(T_TIMER.c.id.in_(ids)).values(state="armed", error=None))
        return
    armed = instance.armed_timers()
    for row in parked:
        info = armed.get(row.spiff_task_id)
        if info is None:
            state = "fired" if instance.timer_fired(row.spiff_task_id) else "cancelled"
            session.execute(update(T_TIMER).where(T_TIMER.c.id == row.id).values(state=state))
        elif info.paused:  # a pause keeps the row's due for the resume to move
            session.execute(update(T_TIMER).where(T_TIMER.c.id == row.id).values(state="paused", error=None))
        else:
            session.execute(update(T_TIMER).where(T_TIMER.c.id == row.id)
                            .values(state="armed", due_at=info.due, error=None))


def recheck_warnings(session: Session, case_id: int, now: datetime) -> None:
    """Put a case's warning checks back in the sweep: it re-derives every level and next check at `now`."""
    session.execute(update(T_CASE).where(T_CASE.c.id == case_id, T_CASE.c.status == "open",
                                         or_(T_CASE.c.promised_due_at.is_not(None),
                                             T_CASE.c.legal_due_at.is_not(None)))
                    .values(warning_check_at=now))
    session.execute(update(T_TASK).where(T_TASK.c.case_id == case_id, T_TASK.c.state == "ready",
                                         T_TASK.c.due_at.is_not(None)).values(warning_check_at=now))
