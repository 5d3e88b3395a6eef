"""The SLA clock's own services: pause (补正, 特别程序, 公示), resume and extension (延期).

Like every writer of case state they run in the caller's transaction, lock the case, restore its
workflow and save it with the version check (the shared steps live in `cases`); the arithmetic is in
`deadlines` and `workdays`.
"""
from __future__ import annotations

from datetime import datetime
from typing import Any, Mapping

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from . import clock, deadlines, forms, runtime, settings
from .cases import (PAUSE_KINDS, T_CASE, StepResult, _audit, _case_by_number, _conn, _iso_or_none, _open_pause,
                    _restore, _retime, _save_instance, _sla_row, _start_clock, _stop_clock, _works_on_case)
from .errors import Conflict, Forbidden, InvalidInput
from .models import Pause, User
from .workdays import default_calendar


def pause_case(session: Session, case_number: str, actor: User | None, reason: str, kind: str = "supplement",
               at: datetime | None = None, now: datetime | None = None) -> StepResult:
    """Stop the case's clock (补正 / 特别程序 / 公示): every deadline keeps the working days it had left.

    A pause moves every due date, so it is bounded: it may start no earlier than the acceptance, the end
    of the last pause (pauses never overlap) and a short grace window before now (a pause noted on paper
    and entered late; `YICUN_PAUSE_GRACE_WORKDAYS`). Without these bounds a back-dated pause followed by
    a resume handed the case all its "remaining" days again — a due date moved by months with no
    extension. 特别程序 and 公示 stop the legal clock on the authority's side, so only an officer of the
    approving level may start them; 补正 (waiting for the applicant) is for whoever works on the case.
    """
    now = now or clock.now()
    at = at or now
    reason = forms.clean_text(reason, "the reason for the pause", 500)
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
    if kind != "supplement" and actor is not None:
        ok, who = _is_approver(actor, case, loaded.spec)
        if not ok:
            raise Forbidden(f"a {PAUSE_KINDS[kind]} pause stops the legal clock: only {who} "
                            "(the approving level) may start it")
    earliest, why = _earliest_pause(session, case, sla, now)
    if at < earliest:
        raise InvalidInput(f"this pause may start no earlier than {clock.local(earliest):%Y-%m-%d %H:%M} ({why})",
                           earliest=earliest.isoformat())
    row = _stop_clock(session, loaded.workflow, case, sla, at=at, now=now, kind=kind, reason=reason,
                      actor_id=actor and actor.id)
    if at < now:
        row["details"].update(backdated=True, recorded_at=now.isoformat())
        row["action"] = "case.paused_backdated"
    _save_instance(session, loaded, now)
    _audit(session, [row])
    return StepResult(case["number"], case["status"])


def _earliest_pause(session: Session, case: Mapping[str, Any], sla: Mapping[str, Any],
                    now: datetime) -> tuple[datetime, str]:
    """The earliest instant a pause recorded `now` may name, and what sets it. A pause (公示) still running
    into the future is a Conflict: the clock already stands still."""
    last_end = _conn(session).execute(select(func.max(Pause.ended_at)).where(Pause.case_id == case["id"])).scalar()
    if last_end is not None and last_end > now:
        raise Conflict(f"case {case['number']}'s clock already stands still until "
                       f"{clock.local(last_end):%Y-%m-%d %H:%M} (公示)")
    grace = settings.get().pause_grace_workdays
    bounds = [(default_calendar().workdays_before(now, grace), f"at most {grace} working day(s) back")]
    if sla["accepted_at"] is not None:
        bounds.append((sla["accepted_at"], "the acceptance of the case"))
    if last_end is not None:
        bounds.append((last_end, "the end of its last pause; pauses never overlap"))
    return max(bounds, key=lambda b: b[0])


def _approver(case: Mapping[str, Any], spec: Any) -> tuple[str, int, str, frozenset[str]]:
    """(role, unit id, level, departments) of the officers who decide for this case: the process's
    approving level and, where its steps there name candidate groups (县民政局…), those departments."""
    level = spec.properties.get("approveLevel") or max(
        (m.get("level") for m in spec.task_meta.values() if m.get("level")),
        key=("village", "township", "county").index, default="county")
    role, unit = {"county": ("county_officer", case["county_id"]),
                  "township": ("township_officer", case["township_id"]),
                  "village": ("clerk", case["village_id"])}[level]
    groups = frozenset(g for m in spec.task_meta.values() if m.get("level") == level
                       for g in m.get("candidate_groups") or ())
    return role, unit, level, groups


def _is_approver(actor: User, case: Mapping[str, Any], spec: Any) -> tuple[bool, str]:
    role, unit, level, groups = _approver(case, spec)
    ok = actor.role == role and actor.unit_id == unit and (not groups or actor.department in groups)
    return ok, f"a {role} of the case's {level}" + (f" ({'/'.join(sorted(groups))})" if groups else "")


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
    pause = _open_pause(session, case["id"])
    if pause is not None and pause["kind"] != "supplement" and actor is not None:
        ok, who = _is_approver(actor, case, loaded.spec)
        if not ok:  # the officer who ordered the 特别程序 ends it
            raise Forbidden(f"a {PAUSE_KINDS[pause['kind']]} pause is ended by {who}")
    row = _start_clock(session, loaded.workflow, case, sla, pause, at=at, now=now, actor_id=actor and actor.id)
    if at < now:  # recorded late: it shortens the pause (never lengthens it), and says so
        row["details"].update(backdated=True, recorded_at=now.isoformat())
    _save_instance(session, loaded, now)
    deadlines.evaluate_case(session, case["id"], now)
    _audit(session, [row])
    return StepResult(case["number"], case["status"])


def extend_case(session: Session, case_number: str, actor: User, workdays: int, reason: str,
                now: datetime | None = None) -> StepResult:
    """延期: once per case, at most the item's cap, asked before the legal due, approved by an officer of
    the approving level. Every deadline (legal, promised, armed timers, steps) moves by `workdays`."""
    now = now or clock.now()
    reason = forms.clean_text(reason, "the reason for the extension (it is told to the applicant)", 500)
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
    ok, who = _is_approver(actor, case, loaded.spec)
    if not ok:
        raise Forbidden(f"an extension of this item is approved by {who}")
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
