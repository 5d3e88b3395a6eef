"""The verbs of a case: accept, claim, release, reassign, complete, withdraw, fire timers.

Each follows one skeleton (DESIGN.md §1): lock the case → policy → restore the workflow (cached spec +
instance JSON) → act → diff the snapshots into projections (`projection.sync`) → clock stops → one
versioned save → audit. They run inside the caller's `engine.db.transaction`; any exception rolls all
of it back. The pause/resume/extend verbs of the SLA clock are in `sla`.
"""
from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.orm import Session

from .. import clock, deadlines, forms, policy, settings
from ..bpmn import SERIALIZER, EndlessLoop, Instance, StepNotReady
from ..bpmn.failures import locate
from ..errors import Conflict, Forbidden, InvalidInput, NotFound, ProcessCrashed, WorkflowError
from ..expressions import ExpressionRejected, time_budget
from ..models import T_CASE, T_TASK, T_TIMER, Case, OrgUnit, User
from ..policy import Actor, Chain, as_actor
from ..processes import latest_version, load_spec
from ..vocab import Role
from ..workdays import default_calendar, work_hundredths
from . import projection, store, warnings

log = logging.getLogger("engine.cases")

#: an acceptance dated earlier than its entry by more than this is 补录 and audited as such; less is the
#: time a browser's form took to arrive (the intake page sends the moment 受理 was pressed)
BACKDATE_NOTED = timedelta(minutes=5)
#: all expressions and scripts one engine step evaluates, together (each alone has its own 0.5 s)
STEP_BUDGET_SECONDS = 2.0


def run_engine(instance: Instance, action: Callable[[], None] | None = None) -> None:
    """Run workflow code, turning SpiffWorkflow's and the evaluator's failures into a WorkflowError that
    names the element, the line and SpiffWorkflow's error type (`bpmn.failures.locate`)."""
    try:
        with time_budget(STEP_BUDGET_SECONDS):  # every evaluation of one step shares it (the write lock is held)
            instance.run(action)
    except (ExpressionRejected, PermissionError) as exc:
        raise WorkflowError(f"refused by the restricted evaluator: {exc}", reason="workflow.refused",
                            **locate(exc).details()) from exc
    except EndlessLoop as exc:
        raise WorkflowError(str(exc), reason="workflow.endless_loop", **locate(exc).details()) from exc
    except Exception as exc:
        # Whatever the process's run raised — SpiffWorkflow's errors, a bad condition, a resource limit,
        # RecursionError/MemoryError/OverflowError, or a bug in SpiffWorkflow or in our glue — this step
        # is refused and nothing is written; the user sees why, the log keeps the traceback.
        expected = type(exc).__module__.startswith("SpiffWorkflow") or isinstance(
            exc, (NameError, TypeError, ValueError, KeyError, ZeroDivisionError))
        where = locate(exc)
        kind = getattr(exc, "error_type", type(exc).__name__)
        if kind == ExpressionRejected.__name__:
            raise WorkflowError(f"refused by the restricted evaluator: {exc}", reason="workflow.refused",
                                **where.details()) from exc
        notes = " ".join(getattr(exc, "__notes__", []))
        message = f"the process failed ({kind}): {str(exc)[:500]} {notes[:500]}".strip()
        if not expected:
            log.exception("the process failed with an unexpected %s", type(exc).__name__)
            raise ProcessCrashed(message, cause_type=type(exc).__name__, **where.details()) from exc
        raise WorkflowError(message, reason="workflow.failed", **where.details()) from exc


def require_open(task: Mapping[str, Any]) -> None:
    if task["state"] != "ready":
        raise Conflict(f"task {task['id']} ({task['name']}) is {task['state']}, not open; it cannot be acted on",
                       reason="task.not_open", task_id=task["id"], step=task["name"], state=task["state"])


def start_case(session: Session, *, service_code: str, village_code: str, applicant_name: str, actor: Actor | User,
               data: dict[str, Any] | None = None, now: datetime | None = None,
               accepted_at: datetime | None = None, applicant: Mapping[str, str | None] | None = None,
               intake_key: str | None = None) -> store.StepResult:
    """Accept an application at a village: the accepting clerk becomes the first-responsibility owner.

    `accepted_at` is the real acceptance (受理) when an application taken offline is entered later
    (补录): the legal and promised dues and the first step's deadlines all count from it. `applicant`
    holds the checked id_number/phone/address the receipt prints (see `cases.intake`); `intake_key` is the
    browser's idempotency key, unique over cases, so a retried submit cannot make a second case.
    """
    actor = as_actor(actor)
    now = now or clock.now()
    accepted_at = accepted_at or now
    if accepted_at > now:
        raise InvalidInput("the acceptance time cannot be in the future", reason="acceptance.in_future",
                           accepted_at=accepted_at.isoformat())
    back = settings.get().accept_backdate_workdays
    earliest = default_calendar().workdays_before(now, back)
    if accepted_at < earliest:  # every due counts from it: an old date would make a case overdue on entry
        raise InvalidInput(f"an application taken offline is entered within {back} working days: the acceptance "
                           f"time may not be before {clock.local(earliest):%Y-%m-%d %H:%M}",
                           reason="acceptance.too_early", earliest=earliest.isoformat(), workdays=back)
    applicant_name = forms.clean_text(applicant_name, "the applicant's name", 100)
    village, chain = village_chain(session, village_code)
    policy.require(policy.may_accept_at(actor, village.id, chain), "case.accept",
                   f"{actor.username} may not accept applications for {village.name}", village=village.code)
    pv = latest_version(session, service_code)
    spec = load_spec(session, pv.id)
    form = forms.validate(data, spec.intake_fields(), decisions=spec.decision_fields, step="受理 (intake)")
    number = store.next_number(session, now)

    initial = {**form, "case_number": number, "service_code": service_code, "applicant_name": applicant_name,
               "village_code": village.code, "village_name": village.name}  # case fields last: never a form's
    instance = Instance.start(spec.spec, spec.subprocess_specs, initial)
    before = projection.Snapshot(instance)
    with clock.using(clock.ManualClock(accepted_at)):
        run_engine(instance)

    sla = deadlines.case_dues(spec.properties, accepted_at)
    case_id = store.conn(session).execute(insert(T_CASE).returning(T_CASE.c.id).values(
        number=number, service_code=service_code, process_version_id=pv.id, village_id=village.id,
        township_id=chain.township_id, county_id=chain.county_id, applicant_name=applicant_name,
        query_code=store.new_query_code(), intake_key=intake_key,
        applicant_id_number=(applicant or {}).get("id_number"), applicant_phone=(applicant or {}).get("phone"),
        applicant_address=(applicant or {}).get("address"),
        first_clerk_id=actor.id if actor.role == Role.CLERK else None, status="open", outcome=None,
        instance_json="{}", serializer_version=SERIALIZER.VERSION, version=0, created_at=now,
        updated_at=now, closed_at=None, accepted_at=accepted_at, **sla)).scalar_one()
    case = dict(id=case_id, number=number, status="open", version=0, village_id=village.id,
                township_id=chain.township_id, county_id=chain.county_id, first_clerk_id=actor.id,
                process_version_id=pv.id)
    result, audit = projection.sync(session, store.Loaded(case, spec, instance), before, now, actor.id,
                          assign_new_village_tasks_to=actor.id if actor.role == Role.CLERK else None)
    if accepted_at < now:  # entered late: warnings may already be due
        warnings.evaluate_case(session, case_id, now)
    store.write_audit(session, [dict(case_id=case_id, actor_id=actor.id, at=now, action="case.started",
                          details={"service_code": service_code, "process_version": pv.version,
                                   "village": village.code, "applicant": applicant_name,
                                   "accepted_at": accepted_at.isoformat(),
                                   "legal_due_at": sla["legal_due_at"] and sla["legal_due_at"].isoformat(),
                                   "promised_due_at": sla["promised_due_at"] and sla["promised_due_at"].isoformat(),
                                   "data": form},  # what the application carried: the case page's first step
                          old_value=None, new_value="open")] + audit)
    if now - accepted_at > BACKDATE_NOTED:  # 补录: the acceptance is back-dated, which the audit says on its own line
        store.write_audit(session, [dict(case_id=case_id, actor_id=actor.id, at=now, action="case.backdated",
                              details={"accepted_at": accepted_at.isoformat(), "recorded_at": now.isoformat()},
                              old_value=store.iso_or_none(now), new_value=store.iso_or_none(accepted_at))])
    return result


def village_chain(session: Session, village_code: str) -> tuple[OrgUnit, Chain]:
    """The village with `village_code` and its chain of units (village, township, county)."""
    village = session.scalar(select(OrgUnit).where(OrgUnit.code == village_code))
    if village is None or village.level != "village":
        raise NotFound(f"no village with code {village_code!r}", reason="village.not_found", village=village_code)
    codes = village.path.strip("/").split("/")
    ids = dict(store.conn(session).execute(select(OrgUnit.code, OrgUnit.id).where(OrgUnit.code.in_(codes[1:3]))).all())
    return village, Chain(village.id, ids[codes[2]], ids[codes[1]])


def claim_task(session: Session, task_id: int, actor: Actor | User, now: datetime | None = None) -> store.StepResult:
    actor = as_actor(actor)
    now = now or clock.now()
    task, case = store.task_with_case(session, task_id)
    require_open(task)
    if task["assignee_id"] == actor.id:
        return store.StepResult(case["number"], case["status"])
    if task["assignee_id"] is not None:
        raise Conflict(f"task {task_id} is already claimed by someone else", reason="task.claimed_by_other",
                       task_id=task_id)
    policy.require(policy.may_work_on(actor, task["unit_id"], task["candidate_group"]), "task.work",
                   f"{actor.username} may not work on task {task_id}", task_id=task_id)
    _set_assignee(session, task, case, actor, actor.id, now, "task.claimed")
    return store.StepResult(case["number"], case["status"])


def unclaim_task(session: Session, task_id: int, actor: Actor | User, now: datetime | None = None) -> store.StepResult:
    actor = as_actor(actor)
    now = now or clock.now()
    task, case = store.task_with_case(session, task_id)
    require_open(task)
    if task["assignee_id"] is None:
        raise Conflict(f"task {task_id} is not claimed", reason="task.not_claimed", task_id=task_id)
    policy.require(policy.may_release(actor, task["assignee_id"], task["unit_id"], Chain.of(case)), "task.release",
                   f"{actor.username} may not release a task claimed by someone else", task_id=task_id)
    _set_assignee(session, task, case, actor, None, now, "task.unclaimed")
    return store.StepResult(case["number"], case["status"])


#: The longest reason a reassignment records (转办原因; the audit keeps it whole).
REASSIGN_REASON_MAX = 500


def reassign_task(session: Session, task_id: int, actor: Actor | User, to_username: str, reason: str,
                  now: datetime | None = None) -> store.StepResult:
    """Hand a step to a colleague (转办), saying why: only within the step's unit and, for a county step,
    to an officer of its department (`policy.may_receive`); by its holder or a lead of the unit
    (`policy.may_release`). The reason and the new holder's name are in the audit."""
    actor = as_actor(actor)
    now = now or clock.now()
    reason = forms.clean_text(reason, "the reason for reassigning", REASSIGN_REASON_MAX, field="reason")
    to_username = forms.clean_text(to_username, "the colleague to hand it to", 64, field="to")
    task, case = store.task_with_case(session, task_id)
    require_open(task)
    target = session.scalar(select(User).where(User.username == to_username))
    if target is None:
        raise NotFound(f"no user {to_username!r}", reason="user.not_found", username=to_username)
    policy.require(policy.may_release(actor, task["assignee_id"], task["unit_id"], Chain.of(case)), "task.reassign",
                   f"{actor.username} may not reassign task {task_id}", task_id=task_id)
    if not policy.may_receive(Actor.of(target), task["unit_id"], task["candidate_group"]):
        raise InvalidInput(f"{to_username} cannot work on this task (wrong unit or department)",
                           reason="task.reassign_target", username=to_username)
    if target.id == task["assignee_id"]:
        raise InvalidInput(f"task {task_id} is already {to_username}'s", reason="task.reassign_same",
                           username=to_username)
    _set_assignee(session, task, case, actor, target.id, now, "task.reassigned", reason=reason, to=to_username)
    return store.StepResult(case["number"], case["status"])


def release_claims_of(session: Session, holder: Actor | None, holder_id: int, actor: Actor, now: datetime,
                      why: str) -> list[int]:
    """Give back to their unit's queue the ready tasks `holder_id` claimed but can no longer work on — the
    account was disabled (`holder` None) or moved to another unit, role or department — so no task waits
    on someone who cannot open it. Each release is audited as `task.unclaimed` with `why`; returns the
    task ids. Called by the account verbs in their own transaction."""
    ids = session.scalars(select(T_TASK.c.id).where(T_TASK.c.state == "ready", T_TASK.c.assignee_id == holder_id)
                          .order_by(T_TASK.c.case_id, T_TASK.c.id)).all()  # case order: no lock cycles
    released = []
    for task_id in ids:
        task, case = store.task_with_case(session, task_id)
        if task["state"] != "ready" or task["assignee_id"] != holder_id:
            continue
        if holder is not None and policy.may_work_on(holder, task["unit_id"], task["candidate_group"]):
            continue
        _set_assignee(session, task, case, actor, None, now, "task.unclaimed", why=why)
        released.append(task_id)
    return released


def _set_assignee(session: Session, task: Mapping[str, Any], case: Mapping[str, Any], actor: Actor,
                  assignee_id: int | None, now: datetime, action: str, **details: Any) -> None:
    res = store.conn(session).execute(update(T_TASK).where(T_TASK.c.id == task["id"], T_TASK.c.state == "ready",
                                               T_TASK.c.assignee_id.is_(task["assignee_id"])
                                               if task["assignee_id"] is None
                                               else T_TASK.c.assignee_id == task["assignee_id"])
                          .values(assignee_id=assignee_id))
    if res.rowcount != 1:
        raise Conflict(f"task {task['id']} changed meanwhile; reload and try again", reason="task.changed",
                       task_id=task["id"])
    res = store.conn(session).execute(update(T_CASE)
                                      .where(T_CASE.c.id == case["id"], T_CASE.c.version == case["version"])
                          .values(version=case["version"] + 1, updated_at=now))
    if res.rowcount != 1:
        raise Conflict(f"case {case['number']} was changed by someone else; reload and try again",
                       reason="case.changed", case=case["number"])
    store.write_audit(session, [dict(case_id=case["id"], actor_id=actor.id, at=now, action=action,
                          details={"task_id": task["id"], "task": task["name"], **actor.audit_details, **details},
                          old_value=str(task["assignee_id"]) if task["assignee_id"] else None,
                          new_value=str(assignee_id) if assignee_id else None)])
    if assignee_id is None and task["warning_level"] in warnings.UNCLAIMED_KINDS:
        # back in the queue while due soon or overdue: the unit is told, as if nobody had held it
        warnings.notify_unclaimed_step(session, task["id"], case["id"], case["number"], now, besides=actor.id)


def complete_task(session: Session, task_id: int, actor: Actor | User, form_data: dict[str, Any] | None = None,
                  now: datetime | None = None) -> store.StepResult:
    """Complete a ready user task with its form data and run the process on to its next wait state."""
    actor = as_actor(actor)
    now = now or clock.now()
    task, case = store.task_with_case(session, task_id)
    require_open(task)
    if case["status"] != "open":
        raise Conflict(f"case {case['number']} is {case['status']}", reason="case.not_open", case=case["number"],
                       status=case["status"])
    if task["assignee_id"] not in (None, actor.id):
        raise Forbidden(f"task {task_id} is claimed by someone else", reason="task.claimed_by_other", task_id=task_id)
    policy.require(policy.may_work_on(actor, task["unit_id"], task["candidate_group"]), "task.work",
                   f"{actor.username} may not work on task {task_id}", task_id=task_id)
    loaded = store.restore(session, case)
    try:
        seen = loaded.instance.step_data(task["spiff_task_id"])
    except StepNotReady:
        raise Conflict(f"task {task_id} is no longer ready in the process", reason="task.not_ready",
                       task_id=task_id) from None
    data = forms.validate(form_data, loaded.spec.fields_of(task["bpmn_id"]), seen,
                          decisions=loaded.spec.decision_fields, step=task["name"])
    before = projection.Snapshot(loaded.instance)
    with clock.using(clock.ManualClock(now)):
        run_engine(loaded.instance, loaded.instance.complete(task["spiff_task_id"], data))
    res = store.conn(session).execute(store.UPD_TASK_DONE, {
        "b_id": task_id, "b_now": now, "b_actor": actor.id,
        "b_work": work_hundredths(task["created_at"], now, default_calendar())})
    if res.rowcount != 1:
        raise Conflict(f"task {task_id} was completed by someone else", reason="task.completed_by_other",
                       task_id=task_id)
    result, audit = projection.sync(session, loaded, before, now, actor.id, completed=task["spiff_task_id"],
                          carded_tasks=(task_id,) if task["warning_level"] != "green" else ())
    result.closed_tasks.insert(0, task_id)
    store.write_audit(session, [dict(case_id=case["id"], actor_id=actor.id, at=now, action="task.completed",
                          details={"task_id": task_id, "task": task["name"], "data": data},
                          old_value="ready", new_value="completed")] + audit)
    return result


def withdraw_case(session: Session, case_number: str, actor: Actor | User, reason: str,
                  now: datetime | None = None) -> store.StepResult:
    """The applicant withdraws (撤回): every open task and timer is cancelled, the case closes."""
    actor = as_actor(actor)
    now = now or clock.now()
    reason = forms.clean_text(reason, "the reason for withdrawing", 500)
    case_id = session.scalar(select(Case.id).where(Case.number == case_number))
    if case_id is None:
        raise NotFound(f"no case {case_number}", reason="case.not_found", case=case_number)
    case = store.lock_case(session, case_id)
    if case["status"] != "open":
        raise Conflict(f"case {case_number} is already {case['status']}", reason="case.not_open", case=case_number,
                       status=case["status"])
    policy.require(policy.may_withdraw(actor, case["first_clerk_id"], Chain.of(case)), "case.withdraw",
                   f"{actor.username} may not withdraw case {case_number}", case=case_number)
    loaded = store.restore(session, case)
    before = projection.Snapshot(loaded.instance)
    loaded.instance.cancel()
    result, audit = projection.sync(session, loaded, before, now, actor.id, withdrawn=True)
    store.write_audit(session, [dict(case_id=case_id, actor_id=actor.id, at=now, action="case.withdrawn",
                          details={"reason": reason, **actor.audit_details}, old_value="open",
                          new_value="withdrawn")] + audit)
    return result


def fire_timers(session: Session, case_id: int, now: datetime, case: Mapping[str, Any] | None = None) -> int:
    """Let one case's workflow see the time `now` and run the timers that are due; returns how many fired.

    Called by the sweep with the case row already locked (and read, as `case`, by `store.next_due_case`); the
    timer rows are updated in this same transaction, which is what makes a timer fire exactly once.
    """
    case = case if case is not None else store.lock_case(session, case_id)
    if case["status"] != "open":
        store.conn(session).execute(update(T_TIMER).where(T_TIMER.c.case_id == case_id, T_TIMER.c.state == "armed")
                        .values(state="cancelled"))
        return 0
    loaded = store.restore(session, case)
    before = projection.Snapshot(loaded.instance)
    with clock.using(clock.ManualClock(now)):
        run_engine(loaded.instance, loaded.instance.fire_due_timers)
    result, audit = projection.sync(session, loaded, before, now, None)
    store.write_audit(session, audit)
    return len(result.fired_timers)
