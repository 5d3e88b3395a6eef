"""The only writer of case state: start, claim, unclaim, reassign, complete, withdraw, fire timers.

Each service runs inside the caller's :func:`engine.db.transaction` and follows DESIGN.md §1: lock the
case → restore the workflow (cached spec + instance JSON) → act → sync the projections (task rows,
timer rows) → audit → save the instance with a version check. Any exception rolls all of it back.
The write path uses set-based Core statements: it is the hot path measured by
``benchmarks/engine_step.py``.
"""
from __future__ import annotations

import copy
import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Mapping

from sqlalchemy import bindparam, insert, literal_column, select, update
from sqlalchemy.orm import Session

from . import clock, db, deadlines, forms, runtime, settings
from .errors import Conflict, Forbidden, InvalidInput, NotFound, ProcessCrashed, WorkflowError
from .expressions import ExpressionRejected, time_budget
from .models import AuditEvent, Case, CaseSequence, OrgUnit, Pause, ProcessVersion, TaskRow, TimerRow, User
from .processes import LoadedSpec, latest_version, load_spec
from .workdays import default_calendar

log = logging.getLogger(__name__)

T_CASE, T_TASK, T_TIMER, T_AUDIT = Case.__table__, TaskRow.__table__, TimerRow.__table__, AuditEvent.__table__
T_PV = ProcessVersion.__table__

# Prebuilt statements for the write path. SQLAlchemy caches the compiled form of a statement object,
# so building these once (with bindparams) instead of per call makes each execution ~5× cheaper;
# the engine step budget (benchmarks/engine_step.py) depends on it.
_CASE_COLUMNS = (T_CASE.c.id, T_CASE.c.number, T_CASE.c.status, T_CASE.c.version, T_CASE.c.instance_json,
                 T_CASE.c.village_id, T_CASE.c.township_id, T_CASE.c.county_id, T_CASE.c.first_clerk_id,
                 T_CASE.c.process_version_id, T_CASE.c.paused_at, T_PV.c.sha256, T_PV.c.process_id)
_TASK_COLUMNS = tuple(T_TASK.c[name].label(f"task_{name}") for name in (
    "id", "case_id", "spiff_task_id", "bpmn_id", "name", "unit_id", "candidate_group", "assignee_id", "state",
    "warning_level"))
_SEL_CASE = (select(*_CASE_COLUMNS).join(T_PV, T_PV.c.id == T_CASE.c.process_version_id)
             .where(T_CASE.c.id == bindparam("case_id")))
_SEL_TASK_CASE = (select(*_TASK_COLUMNS, *_CASE_COLUMNS)
                  .join(T_CASE, T_CASE.c.id == T_TASK.c.case_id)
                  .join(T_PV, T_PV.c.id == T_CASE.c.process_version_id)
                  .where(T_TASK.c.id == bindparam("task_id")))
_LOCKED = {id(stmt): stmt.with_for_update(of=T_CASE) for stmt in (_SEL_CASE, _SEL_TASK_CASE)}
_UPD_TASK_DONE = (update(T_TASK).where(T_TASK.c.id == bindparam("b_id"), T_TASK.c.state == "ready")
                  .values(state="completed", completed_at=bindparam("b_now"), completed_by_id=bindparam("b_actor"),
                          assignee_id=bindparam("b_actor"), warning_check_at=None))  # nothing left to check
_UPD_TASKS_CANCEL = (update(T_TASK).where(T_TASK.c.case_id == bindparam("b_case"),
                                          T_TASK.c.spiff_task_id.in_(bindparam("b_ids", expanding=True)),
                                          T_TASK.c.state == "ready")
                     .values(state="cancelled", completed_at=bindparam("b_now"), warning_check_at=None)
                     .returning(T_TASK.c.id, T_TASK.c.name, T_TASK.c.warning_level))
_INS_TASK = insert(T_TASK).returning(T_TASK.c.id)
_INS_TIMER = insert(T_TIMER)
_INS_AUDIT = insert(T_AUDIT)
_UPD_TIMERS_DISARM = (update(T_TIMER).where(T_TIMER.c.case_id == bindparam("b_case"),
                                            T_TIMER.c.spiff_task_id.in_(bindparam("b_ids", expanding=True)),
                                            T_TIMER.c.state.in_(("armed", "paused")))
                      .values(state=bindparam("b_state"), fired_at=bindparam("b_fired")))
_UPD_CASE = (update(T_CASE).where(T_CASE.c.id == bindparam("b_id"), T_CASE.c.version == bindparam("b_version"))
             .values(instance_json=bindparam("b_json"), version=bindparam("b_version") + 1,
                     updated_at=bindparam("b_now"), status=bindparam("b_status"),
                     closed_at=bindparam("b_closed"), outcome=bindparam("b_outcome")))



@dataclass
class StepResult:
    """What a service did, for the caller to show; reading the full case is `inbox.case_detail`."""
    case_number: str
    status: str
    outcome: str | None = None
    opened_tasks: list[int] = field(default_factory=list)
    closed_tasks: list[int] = field(default_factory=list)
    fired_timers: list[str] = field(default_factory=list)


@dataclass
class _Loaded:
    case: Mapping[str, Any]
    spec: LoadedSpec
    workflow: Any


# ------------------------------------------------------------------------------------------- helpers
def _conn(session: Session) -> Any:
    """The session's connection: Core statements on it skip the ORM layer (the hot path is all Core)."""
    return session.connection()


def _audit(session: Session, rows: list[dict[str, Any]]) -> None:
    if rows:
        _conn(session).execute(_INS_AUDIT, rows)


def can_work_on(user: User, unit_id: int, candidate_group: str | None) -> bool:
    """May `user` claim/complete a task sitting in `unit_id`'s inbox for `candidate_group`?"""
    if not user.active or user.unit_id != unit_id:
        return False
    if user.role in ("clerk", "agent", "township_officer"):
        return True
    if user.role == "county_officer":
        return candidate_group is None or user.department == candidate_group
    return False


def _locked(session: Session, stmt: Any) -> Any:
    """Take the case row lock on PostgreSQL; SQLite's write transaction (BEGIN IMMEDIATE) already holds it."""
    return stmt if db.is_sqlite(session) else _LOCKED[id(stmt)]


def _lock_case(session: Session, case_id: int) -> Mapping[str, Any]:
    row = _conn(session).execute(_locked(session, _SEL_CASE), {"case_id": case_id}).mappings().first()
    if row is None:
        raise NotFound(f"no case with id {case_id}")
    return row


def _restore(session: Session, case: Mapping[str, Any]) -> _Loaded:
    spec = load_spec(session, case["process_version_id"], key=(case["sha256"], case["process_id"]))
    try:
        wf = runtime.load_instance(case["instance_json"], spec.spec, spec.subprocess_specs)
    except Exception as exc:  # a corrupt row must not take the caller down with a stack trace
        raise WorkflowError(f"case {case['number']} could not be restored: {exc}") from exc
    return _Loaded(case, spec, wf)


#: all expressions and scripts one engine step evaluates, together (each alone has its own 0.5 s)
STEP_BUDGET_SECONDS = 2.0


def _run_engine(wf: Any, action: Any) -> None:
    """Run workflow code, turning SpiffWorkflow's and the evaluator's failures into a WorkflowError."""
    try:
        with time_budget(STEP_BUDGET_SECONDS):  # every evaluation of one step shares it (the write lock is held)
            action()
            runtime.run_until_waiting(wf)
    except (ExpressionRejected, PermissionError) as exc:
        raise WorkflowError(f"refused by the restricted evaluator: {exc}") from exc
    except runtime.EndlessLoop as exc:
        raise WorkflowError(str(exc)) from exc
    except Exception as exc:
        # Whatever the process's run raised — SpiffWorkflow's errors, a bad condition, a resource limit,
        # RecursionError/MemoryError/OverflowError, or a bug in SpiffWorkflow or in our glue — this step
        # is refused and nothing is written; the user sees why, the log keeps the traceback.
        expected = type(exc).__module__.startswith("SpiffWorkflow") or isinstance(
            exc, (NameError, TypeError, ValueError, KeyError, ZeroDivisionError))
        kind = getattr(exc, "error_type", type(exc).__name__)
        if kind == ExpressionRejected.__name__:
            raise WorkflowError(f"refused by the restricted evaluator: {exc}") from exc
        notes = " ".join(getattr(exc, "__notes__", []))
        message = f"the process failed ({kind}): {str(exc)[:500]} {notes[:500]}".strip()
        if not expected:
            log.exception("the process failed with an unexpected %s", type(exc).__name__)
            raise ProcessCrashed(message, cause_type=type(exc).__name__) from exc
        raise WorkflowError(message) from exc


class _Snapshot:
    """Open user tasks, armed timers and finished end events of a workflow at one moment."""

    def __init__(self, wf: Any) -> None:
        self.ready = {str(t.id): t for t in runtime.ready_user_tasks(wf)}
        self.timers = runtime.armed_timers(wf)


def _step_deadline(task: Any, timers: dict[str, runtime.TimerInfo]) -> runtime.TimerInfo | None:
    """A step's deadline: the timer boundary event guarding it, a workdays() one first."""
    guards = [timers[t] for t in runtime.attached_timer_ids(task) if t in timers]
    return min(guards, key=lambda info: (info.workdays is None, info.due)) if guards else None


def _route(case: Mapping[str, Any], level: str | None) -> int:
    return {"township": case["township_id"], "county": case["county_id"]}.get(level or "", case["village_id"])


def _sync(session: Session, loaded: _Loaded, before: _Snapshot, now: datetime, actor_id: int | None,
          *, completed: str | None = None, withdrawn: bool = False, carded_tasks: tuple[int, ...] = (),
          assign_new_village_tasks_to: int | None = None) -> tuple[StepResult, list[dict[str, Any]]]:
    """Write the difference between `before` and the workflow now into the projections and the case row.

    Returns the result and the audit rows describing the workflow's own moves (task opened, timer
    fired…); the service adds its own audit row for the user's action.
    """
    wf, case, meta = loaded.workflow, loaded.case, loaded.spec.task_meta
    after = _Snapshot(wf)
    case_id, audit = case["id"], []
    carded = list(carded_tasks)  # closed steps that hold cards to resolve
    if not after.ready and not after.timers and not wf.is_completed() and not withdrawn:
        stuck = runtime.stalled_at(wf)
        if stuck:  # refuse the step rather than leave a case that nobody and nothing can move
            raise WorkflowError(f"the process would stall at {', '.join(stuck)}: nothing in Yicun can continue it")
    if not withdrawn and (wf.is_completed() or not (after.ready or after.timers)) and not runtime.reached_end(wf):
        raise WorkflowError(runtime.unreached_end(wf))  # never close a case (办结) that did not reach its end
    paused, resumed = case.get("paused_at") is not None, False
    if paused and not withdrawn and not wf.is_completed():
        pause = _open_pause(session, case_id)
        if pause is not None and pause["left"].get("task") in before.ready and \
                pause["left"]["task"] not in after.ready:
            # the step that stopped the clock is done (the documents came in): the clock runs again
            audit.append(_start_clock(session, wf, case, _sla_row(session, case_id), pause, at=now, now=now,
                                      actor_id=actor_id))
            after.timers = runtime.armed_timers(wf)
            paused, resumed = False, True
    if paused:
        _hold_new_timers(session, case_id, wf, before, after, now)

    # tasks that left the READY set without being the one completed were cancelled (timer, withdrawal)
    gone = [tid for tid in before.ready if tid not in after.ready and tid != completed]
    closed_ids: list[int] = []
    if gone:
        res = _conn(session).execute(_UPD_TASKS_CANCEL, {"b_case": case_id, "b_ids": gone, "b_now": now})
        for row in res:
            closed_ids.append(row.id)
            if row.warning_level != "green":
                carded.append(row.id)
            audit.append(dict(case_id=case_id, actor_id=actor_id, at=now, action="task.cancelled",
                              details={"task_id": row.id, "task": row.name}, old_value="ready",
                              new_value="cancelled"))

    new_rows = []
    for tid, task in after.ready.items():
        if tid in before.ready:
            continue
        m = meta.get(task.task_spec.bpmn_id, {})
        groups = m.get("candidate_groups") or []
        deadline = _step_deadline(task, after.timers)
        due_at = deadline.due if deadline and not deadline.paused else None
        limit = deadline.workdays if deadline else None
        check = deadlines.yellow_at(due_at, limit, now) if due_at else None
        level = m.get("level")
        new_rows.append(dict(
            case_id=case_id, spiff_task_id=tid, bpmn_id=task.task_spec.bpmn_id,
            name=m.get("name") or task.task_spec.bpmn_name or task.task_spec.bpmn_id,
            lane=m.get("lane_name") or task.task_spec.lane, level=level, unit_id=_route(case, level),
            candidate_group=groups[0] if groups else None,
            assignee_id=assign_new_village_tasks_to if level in ("village", None) else None,
            state="ready", created_at=now, completed_at=None, completed_by_id=None,
            due_at=due_at, limit_workdays=limit, warning_level="green", warning_check_at=check))
    opened_ids: list[int] = []
    if new_rows:
        # one statement per row: executemany with RETURNING is not portable across drivers (1–2 rows a step)
        opened_ids = [_conn(session).execute(_INS_TASK, row).scalar_one() for row in new_rows]
        for row_id, row in zip(opened_ids, new_rows):
            audit.append(dict(case_id=case_id, actor_id=actor_id, at=now, action="task.opened",
                              details={"task_id": row_id, "task": row["name"], "level": row["level"],
                                       "unit_id": row["unit_id"]}, old_value=None, new_value="ready"))

    # timers: newly armed → rows; disarmed → fired or cancelled; a cycle timer that fired moves its due.
    # Paused timers are moved by pause/resume/extend themselves, which write their rows.
    new_timers = [dict(case_id=case_id, spiff_task_id=tid, bpmn_id=info.bpmn_id, due_at=info.due,
                       state="paused" if info.paused else "armed", fired_at=None, created_at=now, error=None,
                       workdays=info.workdays)
                  for tid, info in after.timers.items() if tid not in before.timers]
    if new_timers:
        _conn(session).execute(_INS_TIMER, new_timers)
    stopping = [(tid, task) for tid, task in after.ready.items()
                if tid not in before.ready and meta.get(task.task_spec.bpmn_id, {}).get("pauses_clock")]
    if stopping and not paused and not withdrawn:  # e.g. 补正: the time the applicant takes does not count
        tid, task = stopping[0]
        m = meta[task.task_spec.bpmn_id]
        audit.append(_stop_clock(session, wf, case, _sla_row(session, case_id), at=now, now=now,
                                 kind=m["pauses_clock"], reason=m.get("name") or task.task_spec.bpmn_id,
                                 actor_id=actor_id, by_task=tid, keep=frozenset(runtime.attached_timer_ids(task))))
        after.timers = runtime.armed_timers(wf)
        paused = True
    publicity = set(loaded.spec.properties.get("publicityEvents", ()))
    for tid, info in after.timers.items():
        if info.bpmn_id in publicity and tid not in before.timers and not info.paused:
            _publicity_interval(session, case, info, now, audit)
    fired: list[str] = []
    disarmed: dict[str, list[str]] = {"fired": [], "cancelled": []}
    for tid, info in before.timers.items():
        if tid in after.timers:
            moved = after.timers[tid]
            if moved.due != info.due and not (moved.paused or info.paused):  # a cycle timer's next round
                _conn(session).execute(update(T_TIMER).where(T_TIMER.c.case_id == case_id,
                                                             T_TIMER.c.spiff_task_id == tid)
                                       .values(due_at=moved.due, fired_at=now))
                fired.append(info.bpmn_id)
            continue
        did_fire = runtime.timer_fired(wf, tid)
        disarmed["fired" if did_fire else "cancelled"].append(tid)
        if did_fire:
            fired.append(info.bpmn_id)
    for state, tids in disarmed.items():
        if tids:
            _conn(session).execute(_UPD_TIMERS_DISARM, {"b_case": case_id, "b_ids": tids, "b_state": state,
                                                        "b_fired": now if state == "fired" else None})
    for bpmn_id in fired:
        audit.append(dict(case_id=case_id, actor_id=None, at=now, action="timer.fired",
                          details={"timer": bpmn_id}, old_value="armed", new_value="fired"))

    # case row
    status, outcome = case["status"], None
    if withdrawn:
        status = "withdrawn"
    elif wf.is_completed():
        end = runtime.final_end_event(wf)
        status = loaded.spec.properties.get("endStatus", {}).get(end[0], "completed") if end else "completed"
        outcome = end[1] if end else None
    closed = status != case["status"]  # services only act on open cases, so this is open → closed
    if closed:
        deadlines.resolve_cards(_conn(session), case_id, now)
        _conn(session).execute(update(T_CASE).where(T_CASE.c.id == case_id)
                               .values(warning_check_at=None, paused_at=None))
        if case.get("paused_at") is not None:  # closed while its clock stood still: the pause ends too
            _conn(session).execute(update(Pause.__table__).where(Pause.case_id == case_id,
                                                                 Pause.ended_at.is_(None)).values(ended_at=now))
        audit.append(dict(case_id=case_id, actor_id=actor_id, at=now, action="case.closed",
                          details={"outcome": outcome}, old_value=case["status"], new_value=status))
    elif carded:
        deadlines.resolve_cards(_conn(session), case_id, now, carded)
    if not closed:
        runtime.keep_bounded(wf)  # loops: keep the task tree shallow enough for SpiffWorkflow to walk
    res = _conn(session).execute(_UPD_CASE, {
        "b_id": case_id, "b_version": case["version"], "b_now": now,
        "b_json": runtime.dump_closed_instance(wf) if closed else _dump(wf, case["number"]),
        "b_status": status, "b_closed": now if closed else None, "b_outcome": outcome})
    if res.rowcount != 1:
        raise Conflict(f"case {case['number']} was changed by someone else; reload and try again")
    if resumed and not closed:
        deadlines.evaluate_case(session, case_id, now)
    return StepResult(case["number"], status, outcome, opened_ids, closed_ids, fired), audit


def _publicity_interval(session: Session, case: Mapping[str, Any], info: runtime.TimerInfo, now: datetime,
                        audit: list[dict[str, Any]]) -> None:
    """A publicity wait (公示, calendar days) just began: the clock stands still from now until it ends,
    so each case due keeps the working days it had left, counted again from the end of the publicity."""
    sla = _sla_row(session, case["id"])
    if sla["paused_at"] is not None:
        return  # already stopped; the running pause covers it
    cal = default_calendar()
    left = _dues_left(cal, sla, now)
    moved, estimated = _dues_after(cal, info.due, left)
    estimated = estimated or sla["due_estimated"]
    _conn(session).execute(insert(Pause.__table__).values(
        case_id=case["id"], kind="publicity", reason=f"公示 ({info.bpmn_id})", started_at=now, ended_at=info.due,
        started_by_id=None, ended_by_id=None, left=left))
    if moved:
        _conn(session).execute(update(T_CASE).where(T_CASE.c.id == case["id"])
                               .values(warning_check_at=now, due_estimated=estimated, **moved))
    audit.append(dict(case_id=case["id"], actor_id=None, at=now, action="case.publicity",
                      details={"until": info.due.isoformat(), **{k: v.isoformat() for k, v in moved.items()}},
                      old_value=_iso_or_none(sla["legal_due_at"]), new_value=_iso_or_none(moved.get("legal_due_at"))))


def _hold_new_timers(session: Session, case_id: int, wf: Any, before: _Snapshot, after: _Snapshot,
                     now: datetime) -> None:
    """The clock is stopped: a deadline armed now (a step opened during 补正) waits for the resume with
    its whole limit left."""
    fresh = {tid: info for tid, info in after.timers.items() if tid not in before.timers and not info.paused}
    if not fresh:
        return
    pause = _open_pause(session, case_id)
    if pause is None:
        return
    cal = default_calendar()
    left = dict(pause["left"])
    timers_left = dict(left.get("timers", {}))
    for task in runtime.timer_tasks(wf, fresh):
        info = fresh[str(task.id)]
        timers_left[str(task.id)] = _time_left(cal, info, now)  # armed just now: its whole limit
        runtime.set_timer_due(task, None, paused=True)
        after.timers[str(task.id)] = runtime.TimerInfo(info.bpmn_id, info.due, info.workdays, True)
    left["timers"] = timers_left
    _conn(session).execute(update(Pause.__table__).where(Pause.id == pause["id"]).values(left=left))


def _task_with_case(session: Session, task_id: int) -> tuple[dict[str, Any], Mapping[str, Any]]:
    """The task and its case, case row locked, in one round trip (the hot path's first statement).

    On PostgreSQL the task columns may predate a concurrent writer that held the lock; every write
    below re-checks them (`state = 'ready'` in the WHERE, the spiff task's own state), so a stale read
    can only turn into a Conflict, never a double completion.
    """
    row = _conn(session).execute(_locked(session, _SEL_TASK_CASE), {"task_id": task_id}).mappings().first()
    if row is None:
        raise NotFound(f"no task {task_id}")
    task = {k[5:]: v for k, v in row.items() if k.startswith("task_")}
    return task, row


def _require_open(task: Mapping[str, Any]) -> None:
    if task["state"] != "ready":
        raise Conflict(f"task {task['id']} ({task['name']}) is {task['state']}, not open; it cannot be acted on")


# ------------------------------------------------------------------------------------------- services
def _next_number(session: Session, now: datetime) -> str:
    """YY-<year>-<6 digits>, counted per Asia/Shanghai year; an upsert, so the first cases of a new year
    started at the same moment cannot collide."""
    from sqlalchemy.dialects import postgresql, sqlite

    year = clock.local(now).year
    table = CaseSequence.__table__
    dialect_insert = sqlite.insert if db.is_sqlite(session) else postgresql.insert
    stmt = dialect_insert(table).values(year=year, last_value=1)
    stmt = stmt.on_conflict_do_update(index_elements=[table.c.year],
                                      set_={"last_value": table.c.last_value + 1}).returning(table.c.last_value)
    value = _conn(session).execute(stmt).scalar_one()
    return f"YY-{year}-{value:06d}"


def start_case(session: Session, *, service_code: str, village_code: str, applicant_name: str, actor: User,
               data: dict[str, Any] | None = None, now: datetime | None = None,
               accepted_at: datetime | None = None) -> StepResult:
    """Accept an application at a village: the accepting clerk becomes the first-responsibility owner.

    `accepted_at` is the real acceptance (受理) when an application taken offline is entered later
    (补录): the legal and promised dues and the first step's deadlines all count from it.
    """
    now = now or clock.now()
    accepted_at = accepted_at or now
    if accepted_at > now:
        raise InvalidInput("the acceptance time cannot be in the future")
    back = settings.get().accept_backdate_workdays
    earliest = default_calendar().workdays_before(now, back)
    if accepted_at < earliest:  # every due counts from it: an old date would make a case overdue on entry
        raise InvalidInput(f"an application taken offline is entered within {back} working days: the acceptance "
                           f"time may not be before {clock.local(earliest):%Y-%m-%d %H:%M}",
                           earliest=earliest.isoformat())
    applicant_name = forms.clean_text(applicant_name, "the applicant's name", 100)
    village = session.scalar(select(OrgUnit).where(OrgUnit.code == village_code))
    if village is None or village.level != "village":
        raise NotFound(f"no village with code {village_code!r}")
    actor_unit = session.get(OrgUnit, actor.unit_id)
    # the village clerk, or the window of the applicant's township or county (items accepted there)
    allowed = (actor.role == "clerk" and actor.unit_id == village.id) or \
              (actor.role in ("agent", "township_officer", "county_officer") and actor_unit is not None
               and village.path.startswith(actor_unit.path)) or actor.role == "admin"
    if not allowed:
        raise Forbidden(f"{actor.username} may not accept applications for {village.name}")
    pv = latest_version(session, service_code)
    spec = load_spec(session, pv.id)
    form = forms.validate(data, spec.intake_fields(), decisions=spec.decision_fields, step="受理 (intake)")
    codes = village.path.strip("/").split("/")
    ids = dict(_conn(session).execute(select(OrgUnit.code, OrgUnit.id).where(OrgUnit.code.in_(codes[1:3]))).all())
    number = _next_number(session, now)

    wf = runtime.new_workflow(spec.spec, spec.subprocess_specs)
    initial = {**form, "case_number": number, "service_code": service_code, "applicant_name": applicant_name,
               "village_code": village.code, "village_name": village.name}  # case fields last: never a form's
    for task in wf.get_tasks(state=runtime.TaskState.READY):
        task.data.update(copy.deepcopy(initial))
    before = _Snapshot(wf)
    with clock.using(clock.ManualClock(accepted_at)):
        _run_engine(wf, lambda: None)

    sla = deadlines.case_dues(spec.properties, accepted_at)
    case_id = _conn(session).execute(insert(T_CASE).returning(T_CASE.c.id).values(
        number=number, service_code=service_code, process_version_id=pv.id, village_id=village.id,
        township_id=ids[codes[2]], county_id=ids[codes[1]], applicant_name=applicant_name,
        first_clerk_id=actor.id if actor.role == "clerk" else None, status="open", outcome=None,
        instance_json="{}", serializer_version=runtime.SERIALIZER.VERSION, version=0, created_at=now,
        updated_at=now, closed_at=None, accepted_at=accepted_at, **sla)).scalar_one()
    case = dict(id=case_id, number=number, status="open", version=0, village_id=village.id,
                township_id=ids[codes[2]], county_id=ids[codes[1]], first_clerk_id=actor.id,
                process_version_id=pv.id)
    result, audit = _sync(session, _Loaded(case, spec, wf), before, now, actor.id,
                          assign_new_village_tasks_to=actor.id if actor.role == "clerk" else None)
    if accepted_at < now:  # entered late: warnings may already be due
        deadlines.evaluate_case(session, case_id, now)
    _audit(session, [dict(case_id=case_id, actor_id=actor.id, at=now, action="case.started",
                          details={"service_code": service_code, "process_version": pv.version,
                                   "village": village.code, "applicant": applicant_name,
                                   "accepted_at": accepted_at.isoformat(),
                                   "legal_due_at": sla["legal_due_at"] and sla["legal_due_at"].isoformat(),
                                   "promised_due_at": sla["promised_due_at"] and sla["promised_due_at"].isoformat()},
                          old_value=None, new_value="open")] + audit)
    if accepted_at < now:  # 补录: the acceptance is back-dated, which the audit says on its own line
        _audit(session, [dict(case_id=case_id, actor_id=actor.id, at=now, action="case.backdated",
                              details={"accepted_at": accepted_at.isoformat(), "recorded_at": now.isoformat()},
                              old_value=_iso_or_none(now), new_value=_iso_or_none(accepted_at))])
    return result


def claim_task(session: Session, task_id: int, actor: User, now: datetime | None = None) -> StepResult:
    now = now or clock.now()
    task, case = _task_with_case(session, task_id)
    _require_open(task)
    if task["assignee_id"] == actor.id:
        return StepResult(case["number"], case["status"])
    if task["assignee_id"] is not None:
        raise Conflict(f"task {task_id} is already claimed by someone else")
    if not can_work_on(actor, task["unit_id"], task["candidate_group"]):
        raise Forbidden(f"{actor.username} may not work on task {task_id}")
    _set_assignee(session, task, case, actor, actor.id, now, "task.claimed")
    return StepResult(case["number"], case["status"])


def unclaim_task(session: Session, task_id: int, actor: User, now: datetime | None = None) -> StepResult:
    now = now or clock.now()
    task, case = _task_with_case(session, task_id)
    _require_open(task)
    if task["assignee_id"] is None:
        raise Conflict(f"task {task_id} is not claimed")
    if task["assignee_id"] != actor.id and not _is_lead_of(session, actor, task["unit_id"]):
        raise Forbidden(f"{actor.username} may not release a task claimed by someone else")
    _set_assignee(session, task, case, actor, None, now, "task.unclaimed")
    return StepResult(case["number"], case["status"])


def reassign_task(session: Session, task_id: int, actor: User, to_username: str,
                  now: datetime | None = None) -> StepResult:
    now = now or clock.now()
    task, case = _task_with_case(session, task_id)
    _require_open(task)
    target = session.scalar(select(User).where(User.username == to_username))
    if target is None:
        raise NotFound(f"no user {to_username!r}")
    if task["assignee_id"] != actor.id and not _is_lead_of(session, actor, task["unit_id"]):
        raise Forbidden(f"{actor.username} may not reassign task {task_id}")
    if not can_work_on(target, task["unit_id"], task["candidate_group"]):
        raise InvalidInput(f"{to_username} cannot work on this task (wrong unit or department)")
    _set_assignee(session, task, case, actor, target.id, now, "task.reassigned")
    return StepResult(case["number"], case["status"])


def _is_lead_of(session: Session, actor: User, unit_id: int) -> bool:
    """Officers lead their own unit; supervisors and admins lead their subtree."""
    if actor.role in ("township_officer", "county_officer"):
        return actor.unit_id == unit_id
    if actor.role in ("supervisor", "admin"):
        mine, theirs = session.get(OrgUnit, actor.unit_id), session.get(OrgUnit, unit_id)
        return bool(mine and theirs and theirs.path.startswith(mine.path))
    return False


def _set_assignee(session: Session, task: Mapping[str, Any], case: Mapping[str, Any], actor: User,
                  assignee_id: int | None, now: datetime, action: str) -> None:
    res = _conn(session).execute(update(T_TASK).where(T_TASK.c.id == task["id"], T_TASK.c.state == "ready",
                                               T_TASK.c.assignee_id.is_(task["assignee_id"])
                                               if task["assignee_id"] is None
                                               else T_TASK.c.assignee_id == task["assignee_id"])
                          .values(assignee_id=assignee_id))
    if res.rowcount != 1:
        raise Conflict(f"task {task['id']} changed meanwhile; reload and try again")
    res = _conn(session).execute(update(T_CASE).where(T_CASE.c.id == case["id"], T_CASE.c.version == case["version"])
                          .values(version=case["version"] + 1, updated_at=now))
    if res.rowcount != 1:
        raise Conflict(f"case {case['number']} was changed by someone else; reload and try again")
    _audit(session, [dict(case_id=case["id"], actor_id=actor.id, at=now, action=action,
                          details={"task_id": task["id"], "task": task["name"]},
                          old_value=str(task["assignee_id"]) if task["assignee_id"] else None,
                          new_value=str(assignee_id) if assignee_id else None)])


def complete_task(session: Session, task_id: int, actor: User, form_data: dict[str, Any] | None = None,
                  now: datetime | None = None) -> StepResult:
    """Complete a ready user task with its form data and run the process on to its next wait state."""
    now = now or clock.now()
    task, case = _task_with_case(session, task_id)
    _require_open(task)
    if case["status"] != "open":
        raise Conflict(f"case {case['number']} is {case['status']}")
    if task["assignee_id"] not in (None, actor.id):
        raise Forbidden(f"task {task_id} is claimed by someone else")
    if not can_work_on(actor, task["unit_id"], task["candidate_group"]):
        raise Forbidden(f"{actor.username} may not work on task {task_id}")
    loaded = _restore(session, case)
    spiff_task = runtime.find_task(loaded.workflow, task["spiff_task_id"])
    if spiff_task is None or spiff_task.state != runtime.TaskState.READY:
        raise Conflict(f"task {task_id} is no longer ready in the process")
    data = forms.validate(form_data, loaded.spec.fields_of(task["bpmn_id"]), spiff_task.data,
                          decisions=loaded.spec.decision_fields, step=task["name"])
    before = _Snapshot(loaded.workflow)

    def act() -> None:
        spiff_task.data.update(data)
        spiff_task.run()

    with clock.using(clock.ManualClock(now)):
        _run_engine(loaded.workflow, act)
    res = _conn(session).execute(_UPD_TASK_DONE, {"b_id": task_id, "b_now": now, "b_actor": actor.id})
    if res.rowcount != 1:
        raise Conflict(f"task {task_id} was completed by someone else")
    result, audit = _sync(session, loaded, before, now, actor.id, completed=task["spiff_task_id"],
                          carded_tasks=(task_id,) if task["warning_level"] != "green" else ())
    result.closed_tasks.insert(0, task_id)
    _audit(session, [dict(case_id=case["id"], actor_id=actor.id, at=now, action="task.completed",
                          details={"task_id": task_id, "task": task["name"], "data": data},
                          old_value="ready", new_value="completed")] + audit)
    return result


def withdraw_case(session: Session, case_number: str, actor: User, reason: str,
                  now: datetime | None = None) -> StepResult:
    """The applicant withdraws (撤回): every open task and timer is cancelled, the case closes."""
    now = now or clock.now()
    reason = forms.clean_text(reason, "the reason for withdrawing", 500)
    case_id = session.scalar(select(Case.id).where(Case.number == case_number))
    if case_id is None:
        raise NotFound(f"no case {case_number}")
    case = _lock_case(session, case_id)
    if case["status"] != "open":
        raise Conflict(f"case {case_number} is already {case['status']}")
    if not (actor.id == case["first_clerk_id"] or (actor.role == "clerk" and actor.unit_id == case["village_id"])
            or _is_lead_of(session, actor, case["village_id"])):
        raise Forbidden(f"{actor.username} may not withdraw case {case_number}")
    loaded = _restore(session, case)
    before = _Snapshot(loaded.workflow)
    loaded.workflow.cancel()
    result, audit = _sync(session, loaded, before, now, actor.id, withdrawn=True)
    _audit(session, [dict(case_id=case_id, actor_id=actor.id, at=now, action="case.withdrawn",
                          details={"reason": reason}, old_value="open", new_value="withdrawn")] + audit)
    return result


_SEL_DUE_CASE = (select(*_CASE_COLUMNS).select_from(T_TIMER)
                 .join(T_CASE, T_CASE.c.id == T_TIMER.c.case_id)
                 .join(T_PV, T_PV.c.id == T_CASE.c.process_version_id)
                 .where(T_TIMER.c.state == literal_column("'armed'"),  # a literal, or the partial index is unused
                        T_TIMER.c.due_at <= bindparam("now"))
                 .order_by(T_TIMER.c.due_at)  # exactly the armed-timers index: no sort, stops at the first row
                 .limit(1))
# Built once (a statement built per call costs more to compile than to run); on PostgreSQL the case row is
# taken FOR UPDATE SKIP LOCKED, so sweepers on several nodes never wait for each other or fire twice.
_DUE_CASE_STATEMENTS = {
    (locking, skipping): (stmt.with_for_update(of=T_CASE, skip_locked=True) if locking else stmt)
    for locking in (False, True)
    for skipping, stmt in ((False, _SEL_DUE_CASE),
                           (True, _SEL_DUE_CASE.where(T_TIMER.c.case_id.not_in(bindparam("skip", expanding=True)))))}


def next_due_case(session: Session, now: datetime, skip: set[int]) -> Mapping[str, Any] | None:
    """The case of the next armed timer due at `now` (not in `skip`), its row locked: what
    :func:`fire_timers` needs, in the one query that finds it."""
    stmt = _DUE_CASE_STATEMENTS[(not db.is_sqlite(session), bool(skip))]
    params = {"now": now, **({"skip": list(skip)} if skip else {})}
    return _conn(session).execute(stmt, params).mappings().first()


def fire_timers(session: Session, case_id: int, now: datetime, case: Mapping[str, Any] | None = None) -> int:
    """Let one case's workflow see the time `now` and run the timers that are due; returns how many fired.

    Called by the sweep with the case row already locked (and read, as `case`, by `next_due_case`); the
    timer rows are updated in this same transaction, which is what makes a timer fire exactly once.
    """
    case = case if case is not None else _lock_case(session, case_id)
    if case["status"] != "open":
        _conn(session).execute(update(T_TIMER).where(T_TIMER.c.case_id == case_id, T_TIMER.c.state == "armed")
                        .values(state="cancelled"))
        return 0
    loaded = _restore(session, case)
    before = _Snapshot(loaded.workflow)
    with clock.using(clock.ManualClock(now)):
        _run_engine(loaded.workflow, loaded.workflow.refresh_timers)
    result, audit = _sync(session, loaded, before, now, None)
    _audit(session, audit)
    return len(result.fired_timers)


# ------------------------------------------------------------------------------------------- the SLA clock
def _case_by_number(session: Session, case_number: str) -> Mapping[str, Any]:
    case_id = session.scalar(select(Case.id).where(Case.number == case_number))
    if case_id is None:
        raise NotFound(f"no case {case_number}")
    return _lock_case(session, case_id)


def _sla_row(session: Session, case_id: int) -> Mapping[str, Any]:
    return _conn(session).execute(select(T_CASE).where(T_CASE.c.id == case_id)).mappings().one()


def _works_on_case(session: Session, actor: User | None, case: Mapping[str, Any]) -> bool:
    """Staff of the case's village, township or county, or a supervisor/admin above it (None: the
    operator at the command line)."""
    if actor is None:
        return True
    if actor.role in ("clerk", "agent", "township_officer", "county_officer"):
        return actor.unit_id in (case["village_id"], case["township_id"], case["county_id"])
    return _is_lead_of(session, actor, case["village_id"])


def _retime(session: Session, wf: Any, case_id: int, moves: dict[str, datetime | None], now: datetime,
            *, pause: bool = False) -> None:
    """Move armed timers (None = stop them for a pause) in the workflow and their rows, and re-derive the
    dues of the open steps from them. The caller saves the workflow."""
    for task in runtime.timer_tasks(wf, moves):
        runtime.set_timer_due(task, moves[str(task.id)], paused=pause)
    for tid, due in moves.items():
        _conn(session).execute(update(T_TIMER).where(T_TIMER.c.case_id == case_id, T_TIMER.c.spiff_task_id == tid,
                                                     T_TIMER.c.state.in_(("armed", "paused")))
                               .values(state="paused" if pause else "armed", **({} if pause else {"due_at": due})))
    if pause:
        _conn(session).execute(update(T_TASK).where(T_TASK.c.case_id == case_id, T_TASK.c.state == "ready")
                               .values(warning_check_at=None))
        return
    timers = {tid: info for tid, info in runtime.armed_timers(wf).items() if not info.paused}
    for task in runtime.ready_user_tasks(wf):  # a step's due is its deadline timer's due
        deadline = _step_deadline(task, timers)
        if deadline:
            _conn(session).execute(update(T_TASK).where(T_TASK.c.case_id == case_id,
                                                        T_TASK.c.spiff_task_id == str(task.id),
                                                        T_TASK.c.state == "ready")
                                   .values(due_at=deadline.due, warning_check_at=now))


#: the most a case's stored workflow may take. An ordinary case is 6–30 kB however long it runs (loops are
#: compacted); the bound stops a process whose scripts copy large values into many fields (each value
#: within the expression limits, together megabytes) from filling the database case by case.
MAX_INSTANCE_BYTES = 2 * 1024 * 1024


def _dump(wf: Any, number: str) -> str:
    text = runtime.dump_instance(wf)
    if len(text) > MAX_INSTANCE_BYTES:
        raise WorkflowError(f"case {number}'s data grew to {len(text):,} characters, more than the "
                            f"{MAX_INSTANCE_BYTES:,} a case may hold: its process copies too much data")
    return text


def _save_instance(session: Session, loaded: _Loaded, now: datetime) -> None:
    case = loaded.case
    runtime.keep_bounded(loaded.workflow)
    res = _conn(session).execute(update(T_CASE).where(T_CASE.c.id == case["id"], T_CASE.c.version == case["version"])
                                 .values(instance_json=_dump(loaded.workflow, case["number"]),
                                         version=case["version"] + 1, updated_at=now))
    if res.rowcount != 1:
        raise Conflict(f"case {case['number']} was changed by someone else; reload and try again")


PAUSE_KINDS = {"supplement": "补正", "special": "特别程序", "publicity": "公示"}


def _stop_clock(session: Session, wf: Any, case: Mapping[str, Any], sla: Mapping[str, Any], *, at: datetime,
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
    for tid, info in runtime.armed_timers(wf).items():
        if info.paused or tid in keep:
            continue
        left["timers"][tid] = _time_left(cal, info, at)
        moves[tid] = None
    left.update(_dues_left(cal, sla, at))
    _retime(session, wf, case["id"], moves, now, pause=True)
    _conn(session).execute(update(T_CASE).where(T_CASE.c.id == case["id"]).values(paused_at=at, warning_check_at=None))
    _conn(session).execute(insert(Pause.__table__).values(case_id=case["id"], kind=kind, reason=reason, started_at=at,
                                                          ended_at=None, started_by_id=actor_id, ended_by_id=None,
                                                          left=left))
    return dict(case_id=case["id"], actor_id=actor_id, at=now, action="case.paused",
                details={"kind": kind, "reason": reason, "at": at.isoformat(), "automatic": bool(by_task),
                         "workdays_left": {k: v for k, v in left.items() if k in ("legal", "promised")}},
                old_value="running", new_value=f"paused ({PAUSE_KINDS[kind]})")


def _time_left(cal: Any, info: runtime.TimerInfo, at: datetime) -> dict[str, float]:
    """What an armed timer has left at `at`: working days for a workdays() timer, else seconds."""
    if info.workdays is not None:
        return {"workdays": cal.workdays_left(at, info.due)[0]}
    return {"seconds": max(0.0, (info.due - at).total_seconds())}


def _dues_left(cal: Any, sla: Mapping[str, Any], at: datetime) -> dict[str, int]:
    """Working days the case's legal and promised dues have left at `at` (strictly after its date)."""
    return {key: cal.workdays_left(at, sla[f"{key}_due_at"])[0]
            for key in ("legal", "promised") if sla[f"{key}_due_at"] is not None}


def _dues_after(cal: Any, at: datetime, left: Mapping[str, Any]) -> tuple[dict[str, datetime], bool]:
    """The legal/promised due columns when what was left restarts at `at`, and whether any is estimated."""
    dues, estimated = {}, False
    for key in ("legal", "promised"):
        if key in left:
            due = cal.due(at, left[key])
            dues[f"{key}_due_at"], estimated = due.end_instant, estimated or due.estimated
    return dues, estimated


def _open_pause(session: Session, case_id: int) -> Mapping[str, Any] | None:
    return _conn(session).execute(select(Pause.__table__).where(Pause.case_id == case_id, Pause.ended_at.is_(None))
                                  .order_by(Pause.id.desc()).limit(1)).mappings().first()


#: a pause shorter than this moves no working-day due (see _start_clock)
MIN_EFFECTIVE_PAUSE = timedelta(hours=24)


def _start_clock(session: Session, wf: Any, case: Mapping[str, Any], sla: Mapping[str, Any],
                 pause: Mapping[str, Any], *, at: datetime, now: datetime, actor_id: int | None) -> dict[str, Any]:
    """Restart the clock in place: each deadline becomes what it had left, counted from `at`. Returns the
    audit row; the caller saves the workflow and re-evaluates the warnings."""
    cal = default_calendar()
    moves: dict[str, datetime | None] = {}
    estimated = sla["due_estimated"]
    live = runtime.armed_timers(wf)
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
    new_dues, dues_estimated = _dues_after(cal, restart, pause["left"])
    estimated = estimated or dues_estimated
    _retime(session, wf, case["id"], moves, now)
    _conn(session).execute(update(T_CASE).where(T_CASE.c.id == case["id"]).values(
        paused_at=None, due_estimated=estimated, warning_check_at=now, **new_dues))
    _conn(session).execute(update(Pause.__table__).where(Pause.id == pause["id"])
                           .values(ended_at=at, ended_by_id=actor_id))
    return dict(case_id=case["id"], actor_id=actor_id, at=now, action="case.resumed",
                details={"at": at.isoformat(), "paused_at": sla["paused_at"].isoformat(),
                         "automatic": "task" in pause["left"], "shorter_than_a_day": short,
                         **{k: v.isoformat() for k, v in new_dues.items()}},
                old_value=_iso_or_none(sla["legal_due_at"]), new_value=_iso_or_none(new_dues.get("legal_due_at")))


def _iso_or_none(value: datetime | None) -> str | None:
    return clock.local(value).isoformat(timespec="minutes") if value else None
