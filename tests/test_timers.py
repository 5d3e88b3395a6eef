"""Timer rows and the sweep: armed on the engine clock, fired exactly once, in due order."""
from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select

from engine import db, timers
from engine.clock import SHANGHAI
from engine.models import AuditEvent, Case, TimerRow

from .conftest import CLERK, ready_tasks, start


def _armed(engine):
    with db.read(engine) as s:
        return s.scalars(select(TimerRow).where(TimerRow.state == "armed").order_by(TimerRow.id)).all()


# MZ-01 intake, accepted Monday 2026-11-02 09:00: the workdays(5) step deadline ends 24:00 of the 5th
# working day after it (Monday 11-09); the bare ISO P15D 补正 timeout is calendar time.
STEP_DUE = datetime(2026, 11, 10, 0, 0, tzinfo=SHANGHAI)


def test_timer_rows_use_the_engine_clock_workdays_and_bare_iso(seeded, manual_clock):
    r = start(seeded, service="FX-DIBAO")
    due = {t.bpmn_id: (t.due_at, t.workdays) for t in _armed(seeded)}
    now = manual_clock.now()
    assert due == {"Timer_VillageIntake_Warn": (STEP_DUE, 5),
                   "Timer_VillageIntake_Withdraw": (now + timedelta(days=15), None)}
    (task,) = ready_tasks(seeded, r.case_number)
    assert (task.due_at, task.limit_workdays) == (STEP_DUE, 5)


def test_warning_timer_fires_once_and_the_task_stays(seeded, manual_clock):
    r = start(seeded, service="FX-DIBAO")
    assert timers.sweep(seeded, STEP_DUE - timedelta(seconds=1)).fired == 0
    report = timers.sweep(seeded, STEP_DUE)
    assert report.fired == 1 and report.cases == 1
    assert timers.sweep(seeded, STEP_DUE + timedelta(days=1)).fired == 0  # never twice
    (task,) = ready_tasks(seeded, r.case_number)
    assert task.bpmn_id == "Task_VillageIntake"
    with db.read(seeded) as s:
        states = dict(s.execute(select(TimerRow.bpmn_id, TimerRow.state)).all())
        fired = s.scalar(select(func.count()).select_from(AuditEvent).where(AuditEvent.action == "timer.fired"))
    assert states == {"Timer_VillageIntake_Warn": "fired", "Timer_VillageIntake_Withdraw": "armed"}
    assert fired == 1


def test_missed_interrupting_timer_fires_after_downtime(seeded, manual_clock):
    """The server was down for 20 days: on the first sweep both overdue timers of the case fire, in one
    transaction, and the interrupting one closes the case."""
    r = start(seeded, service="FX-DIBAO")
    report = timers.sweep(seeded, manual_clock.now() + timedelta(days=20))
    assert report.cases == 1 and report.fired == 2
    with db.read(seeded) as s:
        case = s.scalar(select(Case).where(Case.number == r.case_number))
        assert (case.status, case.outcome) == ("completed", "逾期未补正，视为撤回")
        assert s.scalar(select(func.count()).select_from(TimerRow).where(TimerRow.state == "armed")) == 0
    assert ready_tasks(seeded, r.case_number) == []


def test_overlapping_sweeps_fire_each_timer_once(seeded, manual_clock):
    numbers = [start(seeded, service="FX-DIBAO").case_number for _ in range(12)]
    at = STEP_DUE + timedelta(minutes=1)  # every step deadline timer is due
    reports = []

    def run() -> None:
        reports.append(timers.sweep(seeded, at))

    threads = [threading.Thread(target=run) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sum(r.fired for r in reports) == len(numbers)
    with db.read(seeded) as s:
        per_case = s.execute(select(AuditEvent.case_id, func.count()).where(AuditEvent.action == "timer.fired")
                             .group_by(AuditEvent.case_id)).all()
    assert len(per_case) == len(numbers) and all(n == 1 for _, n in per_case)


def test_sweep_isolates_a_failing_case(seeded, manual_clock):
    """A timer whose branch fails is parked as failed with the error; other cases still fire."""
    from engine.models import Case as C
    good = start(seeded, service="FX-DIBAO").case_number
    bad = start(seeded, service="FX-DIBAO").case_number
    with db.transaction(seeded) as s:  # corrupt one case's stored state
        s.execute(C.__table__.update().where(C.number == bad).values(instance_json='{"tasks": {}}'))
    report = timers.sweep(seeded, STEP_DUE)
    assert report.fired == 1 and len(report.failed) == 1
    with db.read(seeded) as s:
        failed = s.scalars(select(TimerRow).where(TimerRow.state == "failed")).all()
    assert [(t.bpmn_id, "could not be restored" in t.error) for t in failed] == [("Timer_VillageIntake_Warn", True)]
    assert timers.sweep(seeded, STEP_DUE + timedelta(seconds=1)).failed == []
    assert ready_tasks(seeded, good)


def test_scheduler_fires_missed_timers_on_start(seeded):
    """A server that was down: the scheduler's first sweep runs at start, on the real clock."""
    import time

    from engine import cases

    from .conftest import user
    real_now = datetime.now(UTC)
    with db.transaction(seeded) as s:
        r = cases.start_case(s, service_code="FX-DIBAO", village_code="430902102201", applicant_name="符建英",
                             actor=user(seeded, CLERK), now=real_now - timedelta(days=20))  # then the server went down
    scheduler = timers.start_scheduler(seeded, interval_seconds=3600)
    try:
        for _ in range(100):
            with db.read(seeded) as s:
                case = s.scalar(select(Case).where(Case.number == r.case_number))
            if case.status != "open":
                break
            time.sleep(0.1)
    finally:
        scheduler.shutdown(wait=True)
    assert (case.status, case.outcome) == ("completed", "逾期未补正，视为撤回")
