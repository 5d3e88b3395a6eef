"""Where the clock stops and starts: pauses (补正, 特别程序), publicity (公示), deadlines armed while
the clock stands still, and moving armed timers with their rows.

Each deadline keeps the working days it had left when the clock stopped and gets them back, counted
again, when it restarts (DESIGN.md §5) — never the calendar time that passed.
"""
from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import and_, bindparam, insert, or_, update
from sqlalchemy.orm import Session

from ..bpmn import Instance, Step, TimerInfo
from ..models import T_CASE, T_PAUSE, T_TASK, T_TIMER, Pause
from ..workdays import default_calendar
from . import store

if TYPE_CHECKING:
    from . import projection

def step_deadline(step: Step, timers: dict[str, TimerInfo]) -> TimerInfo | None:
    """A step's deadline: the timer boundary event guarding it, a workdays() one first."""
    guards = [timers[t] for t in step.guards if t in timers]
    return min(guards, key=lambda info: (info.workdays is None, info.due)) if guards else None


def publicity_interval(session: Session, case: Mapping[str, Any], info: TimerInfo, now: datetime,
                        audit: list[dict[str, Any]]) -> None:
    """A publicity wait (公示, calendar days) just began: the clock stands still from now until it ends,
    so each case due keeps the working days it had left, counted again from the end of the publicity."""
    sla = store.sla_row(session, case["id"])
    if sla["paused_at"] is not None:
        return  # already stopped; the running pause covers it
    cal = default_calendar()
    left = dues_left(cal, sla, now)
    moved, estimated = dues_after(cal, info.due, left)
    estimated = estimated or sla["due_estimated"]
    store.conn(session).execute(insert(T_PAUSE).values(
        case_id=case["id"], kind="publicity", reason=f"公示 ({info.bpmn_id})", started_at=now, ended_at=info.due,
        started_by_id=None, ended_by_id=None, left=left))
    if moved:
        store.conn(session).execute(update(T_CASE).where(T_CASE.c.id == case["id"])
                               .values(warning_check_at=now, due_estimated=estimated, **moved))
    audit.append(dict(case_id=case["id"], actor_id=None, at=now, action="case.publicity",
                      details={"until": info.due.isoformat(), **{k: v.isoformat() for k, v in moved.items()}},
                      old_value=store.iso_or_none(sla["legal_due_at"]),
                      new_value=store.iso_or_none(moved.get("legal_due_at"))))


def hold_new_timers(session: Session, case_id: int, instance: Instance, before: projection.Snapshot,
                    after: projection.Snapshot, now: datetime) -> None:
    """The clock is stopped: a deadline armed now (a step opened during 补正) waits for the resume with
    its whole limit left."""
    fresh = {tid: info for tid, info in after.timers.items() if tid not in before.timers and not info.paused}
    if not fresh:
        return
    pause = store.open_pause(session, case_id)
    if pause is None:
        return
    cal = default_calendar()
    left = dict(pause["left"])
    timers_left = dict(left.get("timers", {}))
    for tid, info in fresh.items():
        timers_left[tid] = time_left(cal, info, now)  # armed just now: its whole limit
        after.timers[tid] = TimerInfo(info.bpmn_id, info.due, info.workdays, True)
    instance.move_timers(dict.fromkeys(fresh), paused=True)
    left["timers"] = timers_left
    store.conn(session).execute(update(T_PAUSE).where(Pause.id == pause["id"]).values(left=left))


# Built once, run with one parameter set per timer or step (executemany): moving several deadlines is
# one statement each for timers and steps, however many there are.
_LIVE_TIMER = and_(T_TIMER.c.case_id == bindparam("b_case"), T_TIMER.c.spiff_task_id == bindparam("b_tid"),
                   or_(T_TIMER.c.state == "armed", T_TIMER.c.state == "paused"))  # IN () cannot executemany
_UPD_TIMER_PAUSED = update(T_TIMER).where(_LIVE_TIMER).values(state="paused")
_UPD_TIMER_MOVED = update(T_TIMER).where(_LIVE_TIMER).values(state="armed", due_at=bindparam("b_due"))
_UPD_STEP_DUE = (update(T_TASK).where(T_TASK.c.case_id == bindparam("b_case"),
                                      T_TASK.c.spiff_task_id == bindparam("b_tid"), T_TASK.c.state == "ready")
                 .values(due_at=bindparam("b_due"), warning_check_at=bindparam("b_now")))


def retime(session: Session, instance: Instance, case_id: int, moves: dict[str, datetime | None], now: datetime,
           *, pause: bool = False) -> None:
    """Move armed timers (None = stop them for a pause) in the workflow and their rows, and re-derive the
    dues of the open steps from them. The caller saves the workflow."""
    instance.move_timers(moves, paused=pause)
    if moves:
        store.conn(session).execute(_UPD_TIMER_PAUSED if pause else _UPD_TIMER_MOVED,
                                    [{"b_case": case_id, "b_tid": tid, "b_due": due} for tid, due in moves.items()])
    if pause:
        store.conn(session).execute(update(T_TASK).where(T_TASK.c.case_id == case_id, T_TASK.c.state == "ready")
                                    .values(warning_check_at=None))
        return
    timers = {tid: info for tid, info in instance.armed_timers().items() if not info.paused}
    steps = [{"b_case": case_id, "b_tid": tid, "b_due": deadline.due, "b_now": now}
             for tid, step in instance.ready_steps().items()  # a step's due is its deadline timer's due
             if (deadline := step_deadline(step, timers))]
    if steps:
        store.conn(session).execute(_UPD_STEP_DUE, steps)


PAUSE_KINDS = {"supplement": "补正", "special": "特别程序", "publicity": "公示"}


def stop_clock(session: Session, instance: Instance, case: Mapping[str, Any], sla: Mapping[str, Any], *, at: datetime,
                now: datetime, kind: str, reason: str, actor_id: int | None,
                by_task: str | None = None, keep: frozenset[str] = frozenset()) -> dict[str, Any]:
    """Pause the clock in place: each deadline keeps the working days (or, for calendar-time timers, the
    seconds) it had left at `at`. Timers in `keep` go on (a 补正 step's own deadline for the applicant).
    Returns the audit row; the caller saves the workflow."""
    cal = default_calendar()
    left: dict[str, Any] = {"timers": {}}
    if by_task:
        left["task"] = by_task  # started by this step: it ends when the step does
    moves: dict[str, datetime | None] = {}
    for tid, info in instance.armed_timers().items():
        if info.paused or tid in keep:
            continue
        left["timers"][tid] = time_left(cal, info, at)
        moves[tid] = None
    left.update(dues_left(cal, sla, at))
    retime(session, instance, case["id"], moves, now, pause=True)
    store.conn(session).execute(update(T_CASE).where(T_CASE.c.id == case["id"])
                                .values(paused_at=at, warning_check_at=None))
    store.conn(session).execute(insert(T_PAUSE).values(case_id=case["id"], kind=kind, reason=reason, started_at=at,
                                                          ended_at=None, started_by_id=actor_id, ended_by_id=None,
                                                          left=left))
    return dict(case_id=case["id"], actor_id=actor_id, at=now, action="case.paused",
                details={"kind": kind, "reason": reason, "at": at.isoformat(), "automatic": bool(by_task),
                         "workdays_left": {k: v for k, v in left.items() if k in ("legal", "promised")}},
                old_value="running", new_value=f"paused ({PAUSE_KINDS[kind]})")


def time_left(cal: Any, info: TimerInfo, at: datetime) -> dict[str, float]:
    """What an armed timer has left at `at`: working days for a workdays() timer, else seconds."""
    if info.workdays is not None:
        return {"workdays": cal.workdays_left(at, info.due)[0]}
    return {"seconds": max(0.0, (info.due - at).total_seconds())}


def dues_left(cal: Any, sla: Mapping[str, Any], at: datetime) -> dict[str, int]:
    """Working days the case's legal and promised dues have left at `at` (strictly after its date)."""
    return {key: cal.workdays_left(at, sla[f"{key}_due_at"])[0]
            for key in ("legal", "promised") if sla[f"{key}_due_at"] is not None}


def dues_after(cal: Any, at: datetime, left: Mapping[str, Any]) -> tuple[dict[str, datetime], bool]:
    """The legal/promised due columns when what was left restarts at `at`, and whether any is estimated."""
    dues, estimated = {}, False
    for key in ("legal", "promised"):
        if key in left:
            due = cal.due(at, left[key])
            dues[f"{key}_due_at"], estimated = due.end_instant, estimated or due.estimated
    return dues, estimated


#: a pause shorter than this moves no working-day due (see start_clock)
MIN_EFFECTIVE_PAUSE = timedelta(hours=24)


def start_clock(session: Session, instance: Instance, case: Mapping[str, Any], sla: Mapping[str, Any],
                pause: Mapping[str, Any], *, at: datetime, now: datetime, actor_id: int | None,
                case_values: dict[str, Any] | None = None) -> dict[str, Any]:
    """With `case_values` the case row's new clock columns are put there for the caller's own save of
    the row (one UPDATE instead of two) instead of being written here.
    Restart the clock in place: each deadline becomes what it had left, counted from `at`. Returns the
    audit row; the caller saves the workflow and re-evaluates the warnings."""
    cal = default_calendar()
    moves: dict[str, datetime | None] = {}
    estimated = sla["due_estimated"]
    live = instance.armed_timers()
    # Working days are whole days: what was left counts from the day after the pause began, and again from
    # the day after it ends, so any pause that crosses midnight gives a day back. A pause shorter than a
    # day therefore moves no working-day due (the dues count on from where they stood), or a clerk's
    # one-minute pause across midnight, repeated daily, would push the legal due on for ever.
    short = at - pause["started_at"] < MIN_EFFECTIVE_PAUSE
    restart = pause["started_at"] if short else at
    for tid, rest in pause["left"].get("timers", {}).items():
        if tid not in live:
            continue  # its step closed meanwhile
        if "workdays" in rest:
            due = cal.due(restart, rest["workdays"])
            moves[tid], estimated = due.end_instant, estimated or due.estimated
        else:  # calendar time is credited exactly
            moves[tid] = at + timedelta(seconds=rest["seconds"])
    new_dues, dues_estimated = dues_after(cal, restart, pause["left"])
    estimated = estimated or dues_estimated
    retime(session, instance, case["id"], moves, now)
    clock_columns = dict(paused_at=None, due_estimated=estimated, warning_check_at=now, **new_dues)
    if case_values is not None:
        case_values.update(clock_columns)
    else:
        store.conn(session).execute(update(T_CASE).where(T_CASE.c.id == case["id"]).values(**clock_columns))
    store.conn(session).execute(update(T_PAUSE).where(Pause.id == pause["id"])
                           .values(ended_at=at, ended_by_id=actor_id))
    return dict(case_id=case["id"], actor_id=actor_id, at=now, action="case.resumed",
                details={"at": at.isoformat(), "paused_at": sla["paused_at"].isoformat(),
                         "automatic": "task" in pause["left"], "shorter_than_a_day": short,
                         **{k: v.isoformat() for k, v in new_dues.items()}},
                old_value=store.iso_or_none(sla["legal_due_at"]),
                new_value=store.iso_or_none(new_dues.get("legal_due_at")))
