"""10,000 timers due at once on PostgreSQL, swept by two processes in parallel.

Creates a fresh schema, starts 10,000 cases of the relay test process and completes their intake so
each has one armed timer (the review's PT72H), then runs two `timers.sweep` processes at once at an
instant when all are due. Prints fired/s, how the work split between the sweepers, and how many timers
fired more than once (must be 0: the case row is taken FOR UPDATE SKIP LOCKED).

    python benchmarks/timer_sweep.py [--timers 10000] [--url postgresql://postgres@127.0.0.1:5432/test]
"""
from __future__ import annotations

import argparse
import os
import sys
import time
import uuid

from common import CLERK, prepare_database, run_sweepers
from sqlalchemy import func, select, text

from engine import cases, clock, db, orgs
from engine.models import AuditEvent, TaskRow, TimerRow

START = "2026-11-02T09:00:00+08:00"
DUE = "2026-11-06T09:00:00+08:00"  # every PT72H review timer is due by then



def prepare(url: str, n: int) -> None:
    prepare_database(url, "relay.bpmn", START)
    engine = db.make_engine(url)
    with clock.using(clock.ManualClock(START)):
        with db.read(engine) as s:
            clerk = orgs.actor_by_name(s, CLERK)
        t0 = time.perf_counter()
        for i in range(n):
            with db.transaction(engine) as s:
                r = cases.start_case(s, service_code="TEST-RELAY", village_code="430902102201",
                                     applicant_name=f"申请人{i}", actor=clerk)
                cases.complete_task(s, r.opened_tasks[0], clerk, {"documents_complete": True})
            if (i + 1) % 2000 == 0:
                print(f"  prepared {i + 1} cases ({time.perf_counter() - t0:.0f} s)", file=sys.stderr)
    engine.dispose()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--timers", type=int, default=10_000)
    ap.add_argument("--url", default=os.environ.get("YICUN_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test"))
    args = ap.parse_args()

    schema = f"bench_{uuid.uuid4().hex[:8]}"
    admin = db.make_engine(args.url)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    url = args.url + ("&" if "?" in args.url else "?") + f"options=-csearch_path%3D{schema}"
    try:
        prepare(url, args.timers)
        engine = db.make_engine(url)
        with db.read(engine) as s:
            armed = s.scalar(select(func.count()).select_from(TimerRow).where(TimerRow.state == "armed"))
        results, wall = run_sweepers(url, clock.to_utc(DUE))
        with db.read(engine) as s:
            fired_rows = s.scalar(select(func.count()).select_from(TimerRow).where(TimerRow.state == "fired"))
            per_case = s.execute(select(AuditEvent.case_id, func.count()).where(AuditEvent.action == "timer.fired")
                                 .group_by(AuditEvent.case_id)).all()
            head_reviews = s.scalar(select(func.count()).select_from(TaskRow).where(
                TaskRow.bpmn_id == "Task_HeadReview"))
        engine.dispose()
        fired = sum(r[1] for r in results)
        twice = sum(1 for _, k in per_case if k > 1)
        print(f"timers armed          {armed}")
        for pid, n, c, failed, secs in results:
            print(f"sweeper {pid:<7}       fired {n:>6} in {secs:6.1f} s ({failed} failed)")
        print(f"fired in total        {fired} (rows marked fired: {fired_rows}; escalation tasks opened: {head_reviews})")
        print(f"wall time             {wall:.1f} s  →  {fired / wall:.0f} timers fired/s with 2 sweepers")
        print(f"fired more than once  {twice}   (must be 0)")
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


if __name__ == "__main__":
    main()
