"""The timer sweep: fire due timers exactly once, indexed by due instant, and the scheduler around it.

A sweep never loads every case: it asks the `timers` index for the next armed timer that is due and
fires the timers of that one case in one transaction, then asks again. On PostgreSQL the query takes
the case row ``FOR UPDATE SKIP LOCKED``, so several sweepers (and the web, which locks the case row
first too) never fire the same timer twice and never wait on each other; on SQLite ``BEGIN IMMEDIATE``
serialises them.

One failure stays one failure (DESIGN.md invariant 8): whatever a case raises (short of an interrupt),
its transaction rolls back, `engine.incidents` records it in a transaction of its own and parks the
case's timers out of the due index, and the sweep goes on with the next case. Retries that are due run
first, each in its own transaction too; the warning sweep works the same way.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Engine

from . import cases, clock, incidents
from .cases import parking
from .db import transaction

log = logging.getLogger(__name__)


@dataclass
class SweepReport:
    fired: int = 0
    cases: int = 0
    cards: int = 0
    failed: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"fired": self.fired, "cases": self.cases, "cards": self.cards, "failed": self.failed}


def sweep(engine: Engine, now: datetime | None = None, max_cases: int | None = None) -> SweepReport:
    """Fire every timer due at `now` (default: the clock), one case per transaction; then the warnings."""
    now = now or clock.now()
    report = SweepReport()
    _retry(engine, "timer", now, report, _retry_timers, max_cases)
    skip: set[int] = set()
    while max_cases is None or report.cases < max_cases:
        if not _fire_next(engine, now, skip, report, max_cases):
            break
    _sweep_warnings(engine, now, report)
    return report


# A savepoint set by hand rather than Session.begin_nested(): the firing is all Core statements on the
# session's connection (no ORM state to rewind), and COMMIT releases the savepoints by itself, so a
# successful firing — nearly every one — pays one statement for it instead of two.
#
# On PostgreSQL a transaction fires up to FIRE_BATCH cases, each in its own savepoint: the cases are found
# and locked (SKIP LOCKED) by one query, and BEGIN, that query and COMMIT are paid once per batch instead
# of once per case — a third of a firing's round trips. A case that fails is rolled back to its savepoint
# alone and recorded as an incident while the others go on. SQLite serialises every writer on one lock,
# so there a transaction fires one case and holds that lock no longer than a clerk's step would.
#
# The same transaction's COMMIT is asynchronous on PostgreSQL (synchronous_commit off for it only): the
# commit no longer waits for the WAL flush, which was the largest single cost of a firing (≈1.5 ms of ≈3).
# That is safe for a firing and for nothing a person does: the transaction is still atomic and ordered in
# the WAL, so a crash can only lose the last fraction of a second of firings *whole* — their timers are
# still armed and the next sweep fires them again — and any later synchronous commit (a clerk completing
# the escalated task) flushes the WAL up to and past it, so nobody can act on a firing that is then lost.
# Firings have no effect outside the database.
FIRE_BATCH = 16
_ASYNC_COMMIT = "SET LOCAL synchronous_commit TO OFF"
_SAVEPOINT = "SAVEPOINT yicun_fire"
_ROLLBACK_TO_SAVEPOINT = "ROLLBACK TO SAVEPOINT yicun_fire"


def _fire_next(engine: Engine, now: datetime, skip: set[int], report: SweepReport,
               max_cases: int | None = None) -> bool:
    """Fire the next due cases (a batch on PostgreSQL, one on SQLite) in one transaction, each in its own
    savepoint; False when none is due. Any Exception of a case (RecursionError, MemoryError, OverflowError,
    a bug of ours…) becomes its incident; an interrupt (BaseException) still stops the sweep. A failure
    to *find* the next cases is the database's, not a case's: it ends the sweep.

    A failed firing's work is undone while the case row stays locked and the incident is recorded (timers
    parked) in the same transaction: a second sweeper never picks the case up between the rollback and the
    parking and fails on it again. Should that recording fail too, the whole batch rolls back (its timers
    stay armed for the next loop) and the incident is recorded in a transaction of its own.
    """
    case_id, failure = None, None
    done: list[tuple[int, int, BaseException | None, int | None]] = []  # case, fired, failure, incident
    try:
        with transaction(engine) as session:
            connection = session.connection()
            postgres = connection.dialect.name == "postgresql"
            limit = FIRE_BATCH if postgres else 1
            if max_cases is not None:
                limit = max(1, min(limit, max_cases - report.cases))
            due = cases.next_due_cases(session, now, skip, limit)
            if not due:
                return False
            if postgres:
                connection.exec_driver_sql(_ASYNC_COMMIT)
            for case in due:
                case_id, failure = case["id"], None
                connection.exec_driver_sql(_SAVEPOINT)
                try:
                    fired = cases.fire_timers(session, case_id, now, case)
                    if not fired:
                        incidents.require_timer_progress(session, case_id, now)
                except Exception as exc:
                    failure = exc
                    connection.exec_driver_sql(_ROLLBACK_TO_SAVEPOINT)
                    incident_id = incidents.record_in(session, kind="timer", exc=exc, now=now, case_id=case_id)
                    done.append((case_id, 0, exc, incident_id))
                else:
                    done.append((case_id, fired, None, None))
    except Exception as exc:
        if case_id is None:
            raise
        _failed(engine, "timer", case_id, failure or exc, now, report, skip)
        return True
    for fired_case, fired, failed, recorded in done:
        if failed is not None:
            skip.add(fired_case)
            etype, message = incidents.describe(failed)  # the recording logged it
            report.failed.append({"case_id": fired_case, "kind": "timer", "error": f"{etype}: {message}",
                                  "incident_id": recorded})
            continue
        report.fired += fired
        report.cases += 1
    return True


def _retry_timers(session: Any, incident: Any, now: datetime) -> int:
    """A due retry: put the parked timers back as the workflow has them, fire what is due, and resolve
    the incident — all in this one transaction, so a failure leaves everything parked as it was."""
    parking.rearm_timers(session, incident["case_id"])
    fired = cases.fire_timers(session, incident["case_id"], now)
    if not fired:
        incidents.require_timer_progress(session, incident["case_id"], now)
    incidents.resolve_automatically(session, incident["id"], incident["case_id"], now)
    return fired


def _retry_warnings(session: Any, incident: Any, now: datetime) -> int:
    cards = cases.evaluate_case(session, incident["case_id"], now)
    incidents.require_warning_progress(session, incident["case_id"], now)
    incidents.resolve_automatically(session, incident["id"], incident["case_id"], now)
    return cards


def _retry(engine: Engine, kind: str, now: datetime, report: SweepReport, attempt: Any,
           max_cases: int | None = None) -> None:
    """Run every retry of `kind` that is due, each in its own transaction (found by the partial index
    over open incidents; on PostgreSQL incident and case rows taken SKIP LOCKED)."""
    skip: set[int] = set()
    while max_cases is None or report.cases < max_cases:
        incident = None
        try:
            with transaction(engine) as session:
                incident = incidents.next_due(session, kind, now, skip)
                if incident is None:
                    return
                done = attempt(session, incident, now)
        except Exception as exc:
            if incident is None:
                raise
            skip.add(incident["id"])
            _failed(engine, kind, incident["case_id"], exc, now, report, set())
            continue
        if kind == "timer":
            report.fired += done
            report.cases += 1
        else:
            report.cards += done


def _failed(engine: Engine, kind: str, case_id: int, exc: Exception, now: datetime, report: SweepReport,
            skip: set[int]) -> None:
    """Record the incident (its own transaction) and leave the case out of the rest of this sweep, even
    if the recording itself fails (then the next sweep tries the case again)."""
    skip.add(case_id)
    etype, message = incidents.describe(exc)
    entry: dict[str, Any] = {"case_id": case_id, "kind": kind, "error": f"{etype}: {message}", "incident_id": None}
    try:
        entry["incident_id"] = incidents.record(engine, kind=kind, exc=exc, now=now, case_id=case_id)
    except Exception:
        log.exception("the %s failure of case %s could not be recorded as an incident", kind, case_id)
    report.failed.append(entry)


def _sweep_warnings(engine: Engine, now: datetime, report: SweepReport) -> None:
    """Yellow/red levels and cards, one case per transaction, found through the warning_check_at indexes;
    a case that fails (or whose check does not move past `now`) becomes an incident like a timer."""
    _retry(engine, "warning", now, report, _retry_warnings)
    skip: set[int] = set()
    last = None
    while True:
        case_id = None
        try:
            with transaction(engine) as session:
                case_id = cases.next_case_to_check(session, now, skip)
                if case_id is None:
                    return
                if case_id == last:  # evaluating it did not move its next check past `now`: do not spin
                    raise incidents.NoProgress(f"the warning check of case {case_id} does not move past "
                                               f"{now.isoformat()}")
                cards = cases.evaluate_case(session, case_id, now)
        except Exception as exc:
            if case_id is None:
                raise
            _failed(engine, "warning", case_id, exc, now, report, skip)
            last = None
            continue
        report.cards += cards
        last = case_id


def start_scheduler(engine: Engine, interval_seconds: int = 30, blocking: bool = False) -> Any:
    """Run the sweep every `interval_seconds` and the service-day job daily (in `yicun serve`, or alone
    in `yicun scheduler`). Both run once at start, so what fell due while nothing ran happens now."""
    from apscheduler.schedulers.background import BackgroundScheduler
    from apscheduler.schedulers.blocking import BlockingScheduler

    logging.getLogger("apscheduler").setLevel(logging.WARNING)  # one INFO line per run is noise
    scheduler = (BlockingScheduler if blocking else BackgroundScheduler)(timezone="Asia/Shanghai")
    start = datetime.now(clock.SHANGHAI)
    scheduler.add_job(_logged_sweep, "interval", args=[engine], seconds=interval_seconds, id="timer-sweep",
                      max_instances=1, coalesce=True, next_run_time=start)
    scheduler.add_job(_logged_service_day, "cron", args=[engine], hour=6, minute=0, id="service-day",
                      max_instances=1, coalesce=True, next_run_time=start)
    scheduler.start()
    return scheduler


def _logged_service_day(engine: Engine) -> None:
    from . import service_day
    result = service_day.run(engine)
    if result["digests"]:
        log.info("service day %s: %s digests", result["date"], result["digests"])


def _logged_sweep(engine: Engine) -> None:
    from . import service_day
    report = sweep(engine)
    service_day.retry_due(engine)  # a unit's digest that failed is retried on the sweep's rhythm
    if report.fired or report.failed or report.cards:
        log.info("timer sweep: %s", report.to_dict())
