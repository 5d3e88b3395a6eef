"""The SLA clock's own services: pause (补正, 特别程序, 公示), resume and extension (延期).

Like every writer of case state they run in the caller's transaction, lock the case, restore its
workflow and save it with the version check (the shared steps live in `cases`); the arithmetic is in
`deadlines` and `workdays`.
"""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import update
from sqlalchemy.orm import Session

from . import clock, deadlines, runtime
from .cases import (PAUSE_KINDS, T_CASE, StepResult, _audit, _case_by_number, _conn, _iso_or_none, _open_pause,
                    _restore, _retime, _save_instance, _sla_row, _start_clock, _stop_clock, _works_on_case)
from .errors import Conflict, Forbidden, InvalidInput
from .models import User
from .workdays import default_calendar


def pause_case(session: Session, case_number: str, actor: User | None, reason: str, kind: str = "supplement",
               at: datetime | None = None, now: datetime | None = None) -> StepResult:
    """Stop the case's clock (补正 / 特别程序 / 公示): every deadline keeps the working days it had left."""
    now = now or clock.now()
    at = at or now
    reason = (reason or "").strip()
    if not reason:
        raise InvalidInput("a reason is required to pause a case")
    if kind not in PAUSE_KINDS:
        raise InvalidInput(f"pause kind must be one of {', '.join(PAUSE_KINDS)}")
    if at > now:
        raise InvalidInput("a pause cannot start in the future")
    case = _case_by_number(session, case_number)
    if case["status"] != "open":
        raise Conflict(f"case {case_number} is {case['status']}")
    sla = _sla_row(session, case["id"])
    if sla["paused_at"] is not None:
        raise Conflict(f"case {case_number} is already paused")
    if not _works_on_case(session, actor, case):
        raise Forbidden(f"{actor.username if actor else 'operator'} may not pause case {case_number}")
    loaded = _restore(session, case)
    row = _stop_clock(session, loaded.workflow, case, sla, at=at, now=now, kind=kind, reason=reason,
                      actor_id=actor and actor.id)
    _save_instance(session, loaded, now)
    _audit(session, [row])
    return StepResult(case["number"], case["status"])


def resume_case(session: Session, case_number: str, actor: User | None, at: datetime | None = None,
                now: datetime | None = None) -> StepResult:
    """Restart the clock: each deadline becomes the working days it had left, counted from `at`."""
    now = now or clock.now()
    at = at or now
    case = _case_by_number(session, case_number)
    sla = _sla_row(session, case["id"])
    if case["status"] != "open" or sla["paused_at"] is None:
        raise Conflict(f"case {case_number} is not paused")
    if not sla["paused_at"] <= at <= now:
        raise InvalidInput("the resume time must lie between the pause and now")
    if not _works_on_case(session, actor, case):
        raise Forbidden(f"{actor.username if actor else 'operator'} may not resume case {case_number}")
    loaded = _restore(session, case)
    row = _start_clock(session, loaded.workflow, case, sla, _open_pause(session, case["id"]), at=at, now=now,
                       actor_id=actor and actor.id)
    _save_instance(session, loaded, now)
    deadlines.evaluate_case(session, case["id"], now)
    _audit(session, [row])
    return StepResult(case["number"], case["status"])


def extend_case(session: Session, case_number: str, actor: User, workdays: int, reason: str,
                now: datetime | None = None) -> StepResult:
    """延期: once per case, at most the item's cap, asked before the legal due, approved by an officer of
    the approving level. Every deadline (legal, promised, armed timers, steps) moves by `workdays`."""
    now = now or clock.now()
    reason = (reason or "").strip()
    if not reason:
        raise InvalidInput("an extension needs a reason (it is told to the applicant)")
    case = _case_by_number(session, case_number)
    sla = _sla_row(session, case["id"])
    if case["status"] != "open":
        raise Conflict(f"case {case_number} is {case['status']}")
    if sla["paused_at"] is not None:
        raise Conflict(f"case {case_number} is paused; resume it before extending")
    if sla["extension_workdays"] is not None:
        raise Conflict(f"case {case_number} was already extended by {sla['extension_workdays']} working days; "
                       "an extension is granted once")
    loaded = _restore(session, case)
    props = loaded.spec.properties
    cap = int(props.get("extensionMaxWorkdays", 10))
    if isinstance(workdays, bool) or not isinstance(workdays, int) or not 1 <= workdays <= cap:
        raise InvalidInput(f"an extension is 1 to {cap} working days for this item")
    due = sla["legal_due_at"] or sla["promised_due_at"]
    if due is None:
        raise InvalidInput("this case has no time limit to extend")
    if now >= due:
        raise Conflict(f"the due date has passed ({clock.local(due):%Y-%m-%d %H:%M}); an extension must be "
                       "requested before it — the case is overdue")
    level = props.get("approveLevel") or max(
        (m.get("level") for m in loaded.spec.task_meta.values() if m.get("level")),
        key=("village", "township", "county").index, default="county")
    approver_role, approver_unit = {"county": ("county_officer", case["county_id"]),
                                    "township": ("township_officer", case["township_id"]),
                                    "village": ("clerk", case["village_id"])}[level]
    if actor.role != approver_role or actor.unit_id != approver_unit:
        raise Forbidden(f"an extension of this item is approved by a {approver_role} of the case's {level}")
    cal = default_calendar()
    moves = {tid: deadlines.shift_workdays(info.due, workdays, info.workdays is not None, cal)
             for tid, info in runtime.armed_timers(loaded.workflow).items() if not info.paused}
    new_dues = {f"{k}_due_at": deadlines.shift_workdays(sla[f"{k}_due_at"], workdays, True, cal)
                for k in ("legal", "promised") if sla[f"{k}_due_at"] is not None}
    _retime(session, loaded.workflow, case["id"], moves, now)
    _save_instance(session, loaded, now)
    estimated = sla["due_estimated"] or any(not cal.known_year(clock.local(d).year) for d in new_dues.values())
    _conn(session).execute(update(T_CASE).where(T_CASE.c.id == case["id"]).values(
        extension_workdays=workdays, warning_check_at=now, due_estimated=estimated, **new_dues))
    deadlines.evaluate_case(session, case["id"], now)
    _audit(session, [dict(case_id=case["id"], actor_id=actor.id, at=now, action="case.extended",
                          details={"workdays": workdays, "reason": reason, "approved_by": actor.username,
                                   **{k: v.isoformat() for k, v in new_dues.items()}},
                          old_value=_iso_or_none(due), new_value=_iso_or_none(
                              new_dues.get("legal_due_at") or new_dues.get("promised_due_at")))])
    return StepResult(case["number"], case["status"])
