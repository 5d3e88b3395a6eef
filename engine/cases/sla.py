"""The SLA clock's own services: pause (补正, 特别程序, 公示), resume and extension (延期).

Like every writer of case state they run in the caller's transaction, lock the case, restore its
workflow and save it with the version check (the shared steps live in `store` and `clock_stops`); the arithmetic is in
`deadlines` and `workdays`.
"""
from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from .. import clock, deadlines, forms, policy, settings
from ..errors import Conflict, InvalidInput
from ..models import T_CASE, Pause, User
from ..policy import Actor, Approver, Chain, as_actor
from ..processes import LoadedSpec, case_spec_key, load_spec
from ..workdays import default_calendar
from . import clock_stops, store, warnings


def pause_case(session: Session, case_number: str, actor: Actor | User, reason: str, kind: str = "supplement",
               at: datetime | None = None, now: datetime | None = None) -> store.StepResult:
    """Stop the case's clock (补正 / 特别程序 / 公示): every deadline keeps the working days it had left.

    A pause moves every due date, so it is bounded: it may start no earlier than the acceptance, the end
    of the last pause (pauses never overlap) and a short grace window before now (a pause noted on paper
    and entered late; `YICUN_PAUSE_GRACE_WORKDAYS`). Without these bounds a back-dated pause followed by
    a resume handed the case all its "remaining" days again — a due date moved by months with no
    extension. 特别程序 and 公示 stop the legal clock on the authority's side, so only an officer of the
    approving level may start them; 补正 (waiting for the applicant) is for whoever works on the case.
    """
    actor = as_actor(actor)
    now = now or clock.now()
    at = at or now
    reason = forms.clean_text(reason, "the reason for the pause", 500)
    if kind not in clock_stops.PAUSE_KINDS:
        raise InvalidInput(f"pause kind must be one of {', '.join(clock_stops.PAUSE_KINDS)}",
                           reason="pause.kind_unknown", kind=kind)
    if at > now:
        raise InvalidInput("a pause cannot start in the future", reason="pause.in_future", at=at.isoformat())
    case = store.case_by_number(session, case_number)
    if case["status"] != "open":
        raise Conflict(f"case {case_number} is {case['status']}", reason="case.not_open", case=case_number,
                       status=case["status"])
    sla = case  # the whole row, read with the lock
    if sla["paused_at"] is not None:
        raise Conflict(f"case {case_number} is already paused", reason="case.already_paused", case=case_number)
    chain = Chain.of(case)
    policy.require(policy.works_on_case(actor, chain), "case.pause",
                   f"{actor.username} may not pause case {case_number}", case=case_number)
    loaded = store.restore(session, case)
    approver = _approver(case, loaded.spec)
    policy.require(policy.may_pause(actor, kind, chain, approver), "case.pause_stops_legal_clock",
                   f"a {clock_stops.PAUSE_KINDS[kind]} pause stops the legal clock: only {approver.describe()} "
                   "(the approving level) may start it", case=case_number, kind=kind)
    earliest, why, bound = _earliest_pause(session, case, sla, now)
    if at < earliest:
        message = f"this pause may start no earlier than {clock.local(earliest):%Y-%m-%d %H:%M} ({why})"
        first = earliest.isoformat()
        if bound == "acceptance":
            raise InvalidInput(message, reason="pause.before_acceptance", case=case_number, earliest=first)
        if bound == "last_pause":
            raise InvalidInput(message, reason="pause.overlaps", case=case_number, earliest=first)
        raise InvalidInput(message, reason="pause.too_far_back", case=case_number, earliest=first,
                           workdays=settings.get().pause_grace_workdays)
    row = clock_stops.stop_clock(session, loaded.instance, case, sla, at=at, now=now, kind=kind, reason=reason,
                      actor_id=actor.id)
    row["details"].update(actor.audit_details)
    if at < now:
        row["details"].update(backdated=True, recorded_at=now.isoformat())
        row["action"] = "case.paused_backdated"
    store.save_instance(session, loaded, now)
    store.write_audit(session, [row])
    return store.StepResult(case["number"], case["status"])


def _earliest_pause(session: Session, case: Mapping[str, Any], sla: Mapping[str, Any],
                    now: datetime) -> tuple[datetime, str, str]:
    """The earliest instant a pause recorded `now` may name, what sets it (in words, and as "grace",
    "acceptance" or "last_pause" for the refusal's reason). A pause (公示) still running into the future
    is a Conflict: the clock already stands still."""
    last_end = store.conn(session).execute(select(func.max(Pause.ended_at)).where(Pause.case_id == case["id"])).scalar()
    if last_end is not None and last_end > now:
        raise Conflict(f"case {case['number']}'s clock already stands still until "
                       f"{clock.local(last_end):%Y-%m-%d %H:%M} (公示)", reason="pause.publicity_running",
                       case=case["number"], until=last_end.isoformat())
    grace = settings.get().pause_grace_workdays
    bounds = [(default_calendar().workdays_before(now, grace), f"at most {grace} working day(s) back", "grace")]
    if sla["accepted_at"] is not None:
        bounds.append((sla["accepted_at"], "the acceptance of the case", "acceptance"))
    if last_end is not None:
        bounds.append((last_end, "the end of its last pause; pauses never overlap", "last_pause"))
    return max(bounds, key=lambda b: b[0])


def _approver(case: Mapping[str, Any], spec: Any) -> Approver:
    """The officers who decide for this case (`policy.approver_for` on its process's stored metadata)."""
    return policy.approver_for(spec.properties, spec.task_meta, Chain.of(case))


def resume_case(session: Session, case_number: str, actor: Actor | User, at: datetime | None = None,
                now: datetime | None = None) -> store.StepResult:
    """Restart the clock: each deadline becomes the working days it had left, counted from `at`."""
    actor = as_actor(actor)
    now = now or clock.now()
    at = at or now
    case = store.case_by_number(session, case_number)
    sla = case  # the whole row, read with the lock
    if case["status"] != "open" or sla["paused_at"] is None:
        raise Conflict(f"case {case_number} is not paused", reason="case.not_paused", case=case_number)
    if not sla["paused_at"] <= at <= now:
        raise InvalidInput("the resume time must lie between the pause and now", reason="resume.out_of_range",
                           case=case_number, paused_at=sla["paused_at"].isoformat(), at=at.isoformat())
    chain = Chain.of(case)
    policy.require(policy.works_on_case(actor, chain), "case.resume",
                   f"{actor.username} may not resume case {case_number}", case=case_number)
    loaded = store.restore(session, case)
    pause = store.open_pause(session, case["id"])
    if pause is None:  # paused_at without its interval: nothing to take the time left from
        raise Conflict(f"case {case_number} is marked paused but has no open pause", reason="case.pause_missing")
    if pause["kind"] != "supplement":  # the officer who ordered the 特别程序 ends it
        approver = _approver(case, loaded.spec)
        policy.require(policy.may_resume(actor, pause["kind"], chain, approver), "case.resume_legal_clock",
                       f"a {clock_stops.PAUSE_KINDS[pause['kind']]} pause is ended by {approver.describe()}",
                       case=case_number, kind=pause["kind"])
    clock_columns: dict[str, Any] = {}
    row = clock_stops.start_clock(session, loaded.instance, case, sla, pause, at=at, now=now, actor_id=actor.id,
                                  case_values=clock_columns)
    row["details"].update(actor.audit_details)
    if at < now:  # recorded late: it shortens the pause (never lengthens it), and says so
        row["details"].update(backdated=True, recorded_at=now.isoformat())
    store.save_instance(session, loaded, now, **clock_columns)
    warnings.evaluate_case(session, case["id"], now)
    store.write_audit(session, [row])
    return store.StepResult(case["number"], case["status"])


def extend_case(session: Session, case_number: str, actor: Actor | User, workdays: int, reason: str,
                now: datetime | None = None) -> store.StepResult:
    """延期: once per case, at most the item's cap, asked before the legal due, approved by an officer of
    the approving level. Every deadline (legal, promised, armed timers, steps) moves by `workdays`."""
    actor = as_actor(actor)
    now = now or clock.now()
    reason = forms.clean_text(reason, "the reason for the extension (it is told to the applicant)", 500)
    case = store.case_by_number(session, case_number)
    spec = check_extension(session, case, workdays, asked_at=now)
    approver = _approver(case, spec)
    policy.require(policy.may_extend(actor, approver), "case.extend",
                   f"an extension of this item is approved by {approver.describe()}", case=case_number)
    grant_extension(session, case, actor, workdays, reason, now)
    return store.StepResult(case["number"], case["status"])


def check_extension(session: Session, case: Mapping[str, Any], workdays: Any, asked_at: datetime) -> LoadedSpec:
    """The rules of 延期 that do not depend on who grants it, on the locked case row: the case is open, not
    paused and never extended; `workdays` is 1 to the item's cap; it was asked for (`asked_at`) before the
    due. One place for them: `extend_case` checks them, and so do a worker's request
    (`casework.request_extension`) and the officer's approval of it, which passes the request's time — the
    law asks that an extension be *applied for* before the limit runs out, not that the officer decide
    before it. Returns the process's spec (its approver is the caller's to check)."""
    case_number = case["number"]
    sla = case  # the whole row, read with the lock
    if case["status"] != "open":
        raise Conflict(f"case {case_number} is {case['status']}", reason="case.not_open", case=case_number,
                       status=case["status"])
    if sla["paused_at"] is not None:
        raise Conflict(f"case {case_number} is paused; resume it before extending", reason="extension.while_paused",
                       case=case_number)
    if sla["extension_workdays"] is not None:
        raise Conflict(f"case {case_number} was already extended by {sla['extension_workdays']} working days; "
                       "an extension is granted once", reason="extension.already_granted", case=case_number,
                       workdays=sla["extension_workdays"])
    spec = load_spec(session, case["process_version_id"], key=case_spec_key(case))
    cap = policy.extension_cap(spec.properties)
    if isinstance(workdays, bool) or not isinstance(workdays, int) or not 1 <= workdays <= cap:
        raise InvalidInput(f"an extension is 1 to {cap} working days for this item",
                           reason="extension.workdays_invalid", case=case_number, max_workdays=cap)
    due = sla["legal_due_at"] or sla["promised_due_at"]
    if due is None:
        raise InvalidInput("this case has no time limit to extend", reason="extension.no_time_limit", case=case_number)
    if asked_at >= due:
        raise Conflict(f"the due date has passed ({clock.local(due):%Y-%m-%d %H:%M}); an extension must be "
                       "requested before it — the case is overdue", reason="extension.overdue", case=case_number,
                       due=due.isoformat())
    return spec


def grant_extension(session: Session, case: Mapping[str, Any], actor: Actor, workdays: int, reason: str,
                    now: datetime, **details: Any) -> None:
    """Move every deadline of the case (legal, promised, armed timers, steps) by `workdays` and audit it
    as `case.extended` (with `details`, e.g. the request it grants). The caller has run `check_extension`
    and the approver's check on the locked row, in this transaction."""
    sla = case
    due = sla["legal_due_at"] or sla["promised_due_at"]
    loaded = store.restore(session, case)
    cal = default_calendar()
    moves: dict[str, datetime | None] = {
        tid: deadlines.shift_workdays(info.due, workdays, info.workdays is not None, cal)
             for tid, info in loaded.instance.armed_timers().items() if not info.paused}
    new_dues = {f"{k}_due_at": deadlines.shift_workdays(sla[f"{k}_due_at"], workdays, True, cal)
                for k in ("legal", "promised") if sla[f"{k}_due_at"] is not None}
    clock_stops.retime(session, loaded.instance, case["id"], moves, now)
    store.save_instance(session, loaded, now)
    estimated = sla["due_estimated"] or any(not cal.known_year(clock.local(d).year) for d in new_dues.values())
    store.conn(session).execute(update(T_CASE).where(T_CASE.c.id == case["id"]).values(
        extension_workdays=workdays, warning_check_at=now, due_estimated=estimated, **new_dues))
    warnings.evaluate_case(session, case["id"], now)
    store.write_audit(session, [dict(case_id=case["id"], actor_id=actor.id, at=now, action="case.extended",
                          details={"workdays": workdays, "reason": reason, "approved_by": actor.username, **details,
                                   **{k: v.isoformat() for k, v in new_dues.items()}},
                          old_value=store.iso_or_none(due), new_value=store.iso_or_none(
                              new_dues.get("legal_due_at") or new_dues.get("promised_due_at")))])
