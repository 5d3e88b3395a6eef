"""The timer sweep: fire due timers exactly once, indexed by due instant, and the scheduler around it.

A sweep never loads every case: it asks the `timers` index for the next armed timer that is due and
fires the timers of that one case in one transaction, then asks again. On PostgreSQL the query takes
the case row ``FOR UPDATE SKIP LOCKED``, so several sweepers (and the web, which locks the case row
first too) never fire the same timer twice and never wait on each other; on SQLite ``BEGIN IMMEDIATE``
serialises them.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, insert, select, update

from . import clock, deadlines
from .cases import T_CASE, T_TIMER, fire_timers
from .db import is_sqlite, transaction
from .errors import WorkflowError
from .models import AuditEvent

log = logging.getLogger(__name__)


@dataclass
class SweepReport:
    fired: int = 0
    cases: int = 0
    cards: int = 0
    failed: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"fired": self.fired, "cases": self.cases, "cards": self.cards, "failed": self.failed}


def _next_due_case(session: Any, now: datetime, skip: set[int]) -> int | None:
    stmt = (select(T_TIMER.c.case_id)
            .join(T_CASE, T_CASE.c.id == T_TIMER.c.case_id)
            .where(T_TIMER.c.state == "armed", T_TIMER.c.due_at <= now)
            .order_by(T_TIMER.c.due_at)  # exactly the (state, due_at) index: no sort, stops at the first row
            .limit(1))
    if skip:
        stmt = stmt.where(T_TIMER.c.case_id.not_in(skip))
    if not is_sqlite(session):
        stmt = stmt.with_for_update(of=T_CASE, skip_locked=True)
    return session.scalar(stmt)


def sweep(engine: Engine, now: datetime | None = None, max_cases: int | None = None) -> SweepReport:
    """Fire every timer due at `now` (default: the clock), one case per transaction."""
    now = now or clock.now()
    report, skip = SweepReport(), set()
    while max_cases is None or report.cases < max_cases:
        failed_case = None
        try:
            with transaction(engine) as session:
                case_id = _next_due_case(session, now, skip)
                if case_id is None:
                    break
                failed_case = case_id
                fired = fire_timers(session, case_id, now)
                report.fired += fired
                report.cases += 1
        except WorkflowError as exc:
            log.error("timer of case %s failed: %s", failed_case, exc)
            _mark_failed(engine, failed_case, now, str(exc))
            report.failed.append({"case_id": failed_case, "error": str(exc)})
            skip.add(failed_case)
    _sweep_warnings(engine, now, report)
    return report


def _sweep_warnings(engine: Engine, now: datetime, report: SweepReport) -> None:
    """Yellow/red levels and cards, one case per transaction, found through the warning_check_at indexes."""
    skip: set[int] = set()
    last = None
    while True:
        with transaction(engine) as session:
            case_id = deadlines.next_case_to_check(session, now, skip)
            if case_id is None:
                return
            if case_id == last:  # evaluating it did not move its next check past `now`: do not spin
                log.error("warning check of case %s does not advance; skipped", case_id)
                skip.add(case_id)
                continue
            report.cards += deadlines.evaluate_case(session, case_id, now)
            last = case_id


def _mark_failed(engine: Engine, case_id: int, now: datetime, message: str) -> None:
    """Park the due timers of a case whose process fails, so one bad case cannot stall the sweep."""
    with transaction(engine) as session:
        session.execute(update(T_TIMER).where(T_TIMER.c.case_id == case_id, T_TIMER.c.state == "armed",
                                              T_TIMER.c.due_at <= now).values(state="failed", error=message))
        session.execute(insert(AuditEvent).values(case_id=case_id, actor_id=None, at=now, action="timer.failed",
                                                  details={"error": message}, old_value="armed",
                                                  new_value="failed"))


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
    report = sweep(engine)
    if report.fired or report.failed or report.cards:
        log.info("timer sweep: %s", report.to_dict())
