"""From workflow snapshots to projections: what changed between two moments of a workflow (tasks
opened and closed, timers armed, fired, moved; the end reached) written as task, timer and case rows.

The pages and reports read only these rows (never the workflow), so this diff is what keeps them true.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import date, datetime
from typing import Any

from sqlalchemy import Connection, bindparam, func, literal_column, select, text, update
from sqlalchemy.orm import Session

from .. import deadlines
from ..bpmn import Instance
from ..clock import local
from ..errors import Conflict, WorkflowError
from ..models import T_CASE, T_PAUSE, T_TASK, T_TIMER, Pause
from ..workdays import (
    DayCalendar,
    MemoCalendar,
    WorkCalendar,
    default_calendar,
    file_calendar,
    published_years,
    work_hundredths,
)
from . import clock_stops, store, warnings


class Snapshot:
    """Open user tasks, armed timers and finished end events of a workflow at one moment."""

    def __init__(self, instance: Instance) -> None:
        self.ready = instance.ready_steps()
        self.timers = instance.armed_timers()


def route(case: Mapping[str, Any], level: str | None) -> int:
    return {"township": case["township_id"], "county": case["county_id"]}.get(level or "", case["village_id"])


def sync(session: Session, loaded: store.Loaded, before: Snapshot, now: datetime, actor_id: int | None,
          *, completed: str | None = None, withdrawn: bool = False, carded_tasks: tuple[int, ...] = (),
          assign_new_village_tasks_to: int | None = None) -> tuple[store.StepResult, list[dict[str, Any]]]:
    """Write the difference between `before` and the workflow now into the projections and the case row.

    Returns the result and the audit rows describing the workflow's own moves (task opened, timer
    fired…); the service adds its own audit row for the user's action.
    """
    instance, case, meta = loaded.instance, loaded.case, loaded.spec.task_meta
    after = Snapshot(instance)
    case_id, audit = case["id"], []
    carded = list(carded_tasks)  # closed steps that hold cards to resolve
    if not after.ready and not after.timers and not instance.finished and not withdrawn:
        stuck = instance.stalled_at()
        if stuck:  # refuse the step rather than leave a case that nobody and nothing can move
            raise WorkflowError(f"the process would stall at {', '.join(stuck)}: nothing in Yicun can continue it",
                                reason="workflow.stalled", element=stuck[0])
    if not withdrawn and (instance.finished or not (after.ready or after.timers)) and not instance.reached_end():
        # never close a case (办结) that did not reach its end
        raise WorkflowError(instance.why_not_ended(), reason="workflow.no_end")
    paused, resumed = case.get("paused_at") is not None, False
    if paused and not withdrawn and not instance.finished:
        pause = store.open_pause(session, case_id)
        if pause is not None and pause["left"].get("task") in before.ready and \
                pause["left"]["task"] not in after.ready:
            # the step that stopped the clock is done (the documents came in): the clock runs again
            sla = store.sla_row(session, case_id)
            audit.append(clock_stops.start_clock(session, instance, case, sla, pause, at=now, now=now,
                                      actor_id=actor_id))
            after.timers = instance.armed_timers()
            paused, resumed = False, True
    if paused:
        clock_stops.hold_new_timers(session, case_id, instance, before, after, now)

    # tasks that left the READY set without being the one completed were cancelled (timer, withdrawal)
    gone = [tid for tid in before.ready if tid not in after.ready and tid != completed]
    closed_ids: list[int] = []
    if gone:
        res = store.conn(session).execute(store.UPD_TASKS_CANCEL, {"b_case": case_id, "b_ids": gone, "b_now": now})
        for row in res:
            closed_ids.append(row.id)
            if row.warning_level != "green":
                carded.append(row.id)
            audit.append(dict(case_id=case_id, actor_id=actor_id, at=now, action="task.cancelled",
                              details={"task_id": row.id, "task": row.name}, old_value="ready",
                              new_value="cancelled"))

    new_rows = []
    for tid, step in after.ready.items():
        if tid in before.ready:
            continue
        m = meta.get(step.bpmn_id, {})
        groups = m.get("candidate_groups") or []
        deadline = clock_stops.step_deadline(step, after.timers)
        due_at = deadline.due if deadline and not deadline.paused else None
        limit = deadline.workdays if deadline else None
        check = deadlines.yellow_at(due_at, limit, now) if due_at else None
        level = m.get("level")
        new_rows.append(dict(
            case_id=case_id, spiff_task_id=tid, bpmn_id=step.bpmn_id, name=m.get("name") or step.name,
            lane=m.get("lane_name") or step.lane, level=level, unit_id=route(case, level),
            candidate_group=groups[0] if groups else None,
            assignee_id=assign_new_village_tasks_to if level in ("village", None) else None,
            state="ready", created_at=now, completed_at=None, completed_by_id=None,
            due_at=due_at, limit_workdays=limit, warning_level="green", warning_check_at=check))
    opened_ids: list[int] = []
    if new_rows:
        # one statement per row: executemany with RETURNING is not portable across drivers (1–2 rows a step)
        opened_ids = [store.conn(session).execute(store.INS_TASK, row).scalar_one() for row in new_rows]
        for row_id, row in zip(opened_ids, new_rows, strict=True):
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
        store.conn(session).execute(store.INS_TIMER, new_timers)
    stopping = [(tid, step) for tid, step in after.ready.items()
                if tid not in before.ready and meta.get(step.bpmn_id, {}).get("pauses_clock")]
    if stopping and not paused and not withdrawn:  # e.g. 补正: the time the applicant takes does not count
        tid, step = stopping[0]
        m = meta[step.bpmn_id]
        audit.append(clock_stops.stop_clock(session, instance, case, store.sla_row(session, case_id), at=now, now=now,
                                 kind=m["pauses_clock"], reason=m.get("name") or step.bpmn_id,
                                 actor_id=actor_id, by_task=tid, keep=frozenset(step.guards)))
        after.timers = instance.armed_timers()
        paused = True
    publicity = set(loaded.spec.properties.get("publicityEvents", ()))
    for tid, info in after.timers.items():
        if info.bpmn_id in publicity and tid not in before.timers and not info.paused:
            clock_stops.publicity_interval(session, case, info, now, audit)
    fired: list[str] = []
    disarmed: dict[str, list[str]] = {"fired": [], "cancelled": []}
    for tid, info in before.timers.items():
        if tid in after.timers:
            moved = after.timers[tid]
            if moved.due != info.due and not (moved.paused or info.paused):  # a cycle timer's next round
                store.conn(session).execute(update(T_TIMER).where(T_TIMER.c.case_id == case_id,
                                                             T_TIMER.c.spiff_task_id == tid)
                                       .values(due_at=moved.due, fired_at=now))
                fired.append(info.bpmn_id)
            continue
        did_fire = instance.timer_fired(tid)
        disarmed["fired" if did_fire else "cancelled"].append(tid)
        if did_fire:
            fired.append(info.bpmn_id)
    for state, tids in disarmed.items():
        if tids:
            store.conn(session).execute(store.UPD_TIMERS_DISARM, {"b_case": case_id, "b_ids": tids, "b_state": state,
                                                        "b_fired": now if state == "fired" else None})
    for bpmn_id in fired:
        audit.append(dict(case_id=case_id, actor_id=None, at=now, action="timer.fired",
                          details={"timer": bpmn_id}, old_value="armed", new_value="fired"))

    # case row
    status, outcome = case["status"], None
    if withdrawn:
        status = "withdrawn"
    elif instance.finished:
        end = instance.final_end_event()
        status = loaded.spec.properties.get("endStatus", {}).get(end[0], "completed") if end else "completed"
        outcome = end[1] if end else None
    closed = status != case["status"]  # services only act on open cases, so this is open → closed
    if closed:
        warnings.resolve_cards(store.conn(session), case_id, now)
        # the closing facts the reports count (DESIGN §7): closed by the promised due (NULL without one)
        # and the working days the case took, its clock's stops not counted
        store.conn(session).execute(update(T_CASE).where(T_CASE.c.id == case_id).values(
            warning_check_at=None, paused_at=None, on_time=T_CASE.c.promised_due_at >= now,
            workdays_taken=closing_workdays(session, case_id, now)))
        if case.get("paused_at") is not None:  # closed while its clock stood still: the pause ends too
            store.conn(session).execute(update(T_PAUSE).where(Pause.case_id == case_id,
                                                                 Pause.ended_at.is_(None)).values(ended_at=now))
        audit.append(dict(case_id=case_id, actor_id=actor_id, at=now, action="case.closed",
                          details={"outcome": outcome}, old_value=case["status"], new_value=status))
    elif carded:
        warnings.resolve_cards(store.conn(session), case_id, now, carded)
    if not closed:
        instance.keep_bounded()  # loops: keep the task tree shallow enough for SpiffWorkflow to walk
    res = store.conn(session).execute(store.UPD_CASE, {
        "b_id": case_id, "b_version": case["version"], "b_now": now,
        "b_json": instance.dump_closed() if closed else store.dump(instance, case["number"]),
        "b_status": status, "b_closed": now if closed else None, "b_outcome": outcome})
    if res.rowcount != 1:
        raise Conflict(f"case {case['number']} was changed by someone else; reload and try again",
                       reason="case.changed", case=case["number"])
    if resumed and not closed:
        warnings.evaluate_case(session, case_id, now)
    return store.StepResult(case["number"], status, outcome, opened_ids, closed_ids, fired), audit


# ------------------------------------------------------------------------------------------- closing facts
#: a case's acceptance and the intervals its clock stood still: the one statement closing adds
_SEL_CLOCK_STOPS = (select(func.coalesce(T_CASE.c.accepted_at, T_CASE.c.created_at), T_PAUSE.c.kind,
                           T_PAUSE.c.started_at, T_PAUSE.c.ended_at)
                    .select_from(T_CASE.outerjoin(T_PAUSE, T_PAUSE.c.case_id == T_CASE.c.id))
                    .where(T_CASE.c.id == bindparam("b_case")))


def closing_workdays(session: Session, case_id: int, closed_at: datetime) -> int | None:
    """The working days a case closing at `closed_at` took (`workdays_taken`), read in one statement."""
    rows = store.conn(session).execute(_SEL_CLOCK_STOPS, {"b_case": case_id}).all()
    accepted = rows[0][0]
    stops = [(kind, began, ended) for _, kind, began, ended in rows if began is not None]
    return workdays_taken(accepted, closed_at, stops)


def workdays_taken(accepted_at: datetime, closed_at: datetime,
                   stops: Iterable[tuple[str, datetime, datetime | None]],
                   cal: WorkCalendar | None = None) -> int | None:
    """Working days from acceptance to closure with the clock's stops taken out, counted the way the
    dues move (`clock_stops.start_clock`, `publicity_interval`): the acceptance day does not count; a stop
    gives back the working days after the day it began up to the day it ended — a 补正/特别程序 pause only
    when it lasted at least `MIN_EFFECTIVE_PAUSE`, 公示 always. So a case closed by its promised due took
    at most its promised limit (plus any extension). A stop still open at closure ends there; None when
    the span is beyond the calendar's range (a corrupt row must not stop the case from closing)."""
    cal = cal or default_calendar()
    spans: list[tuple[date, date]] = []
    for kind, began, ended in stops:
        began, ended = max(began, accepted_at), min(ended or closed_at, closed_at)
        if ended <= began or (kind != "publicity" and ended - began < clock_stops.MIN_EFFECTIVE_PAUSE):
            continue
        spans.append((local(began).date(), local(ended).date()))
    try:
        taken = cal.count_workdays(local(accepted_at).date(), local(closed_at).date())[0]
        # stops never overlap (sla._earliest_pause); merged anyway, so that no day is given back twice
        last: date | None = None
        for first, end in sorted(spans):
            first = max(first, last) if last is not None else first
            if end > first:
                taken -= cal.count_workdays(first, end)[0]
                last = end
    except ValueError:
        return None
    return max(0, taken)


# ------------------------------------------------------------------------------------------- step facts
#: completed steps read and written per statement by the backfill
BACKFILL_BATCH = 5000


def backfill_work_hundredths(conn: Connection, cal: DayCalendar | None = None, batch: int = BACKFILL_BATCH,
                             progress: Callable[[int], None] | None = None) -> int:
    """Set the working time (`tasks.work_hundredths`) of every completed step that has none, as the
    completion would have (`workdays.work_hundredths`); returns how many steps it set. Migration 0009 runs
    it on the steps completed before the column existed; a copied database can run it again (it only
    touches rows still without a value).

    Keyset by id, `batch` steps a round: one SELECT on the primary key, the times computed in Python (the
    calendar asked once per day, `MemoCalendar`), one UPDATE — on PostgreSQL `UPDATE … FROM unnest(ids,
    values)`, one statement per batch; on SQLite an executemany, which stays in-process. `cal`: the default
    calendar (the override file and chinese-calendar) with the years published in this database laid over."""
    if cal is None:
        cal = file_calendar().with_published(published_years(conn))
    memo = MemoCalendar(cal)
    pg = conn.dialect.name == "postgresql"
    todo = (select(T_TASK.c.id, T_TASK.c.created_at, T_TASK.c.completed_at)
            .where(T_TASK.c.state == literal_column("'completed'"), T_TASK.c.work_hundredths.is_(None),
                   T_TASK.c.completed_at.is_not(None), T_TASK.c.id > bindparam("b_after"))
            .order_by(T_TASK.c.id).limit(batch))
    done, after = 0, 0
    while True:
        rows = conn.execute(todo, {"b_after": after}).all()
        if not rows:
            return done
        values = [(r.id, work_hundredths(r.created_at, r.completed_at, memo)) for r in rows]
        if pg:
            conn.execute(text("UPDATE tasks SET work_hundredths = v.w FROM unnest(CAST(:ids AS integer[]), "
                              "CAST(:ws AS integer[])) AS v(id, w) WHERE tasks.id = v.id"),
                         {"ids": [i for i, _ in values], "ws": [w for _, w in values]})
        else:
            conn.execute(_UPD_WORK, [{"b_id": i, "b_work": w} for i, w in values])
        done += len(values)
        after = rows[-1].id
        if progress is not None:
            progress(done)


_UPD_WORK = update(T_TASK).where(T_TASK.c.id == bindparam("b_id")).values(work_hundredths=bindparam("b_work"))
