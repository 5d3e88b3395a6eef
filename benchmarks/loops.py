"""Long-running loops: instance size, tree depth and step time stay flat (engine.bpmn.compaction).

(a) an hourly reminder loop (tests/fixtures/loops/remind.bpmn: an interrupting PT1H boundary timer on
    the open step → a script → back to the step) fired for a year, 8,760 rounds, through the real
    sweep `timers.sweep` with `now` advancing an hour a round;
(b) a rework loop (tests/fixtures/loops/rework.bpmn: township sends back → village intake again) run
    through `cases.complete_task`, two completions a round;
(c) for contrast, the same reminder loop with compaction switched off, as far as SpiffWorkflow lets it.

At the listed rounds it prints the instance JSON stored in `cases`, the deepest task tree level, the
number of tasks, the median time of the whole steps since the previous mark (sweep or completion with
its transaction; it also carries the case's growing history rows: timers, tasks, audit), and the
SpiffWorkflow part of a step on the stored instance. SQLite (WAL) in a temp dir.

    python benchmarks/loops.py [--hours 8760] [--rework 500]
"""
from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from common import CLERK, prepare_database
from sqlalchemy import select

from engine import bpmn, cases, clock, db, orgs, processes, timers
from engine.bpmn import compaction as bpmn_compaction
from engine.bpmn import workflow as bpmn_workflow
from engine.models import Case, TaskRow

START = "2026-11-02T09:00:00+08:00"
VILLAGE = "430902102201"
TOWNSHIP_OFFICER = "officer-430902102"
MARKS = (10, 100, 1000, 8760)


def _case_state(engine: Any, number: str) -> tuple[int, int, int, float, str]:
    """(JSON bytes, deepest level, task count, workflow ms, status) of a stored case; workflow ms is the
    median of 20 × (restore the JSON → run the engine to its wait → serialize), the SpiffWorkflow part
    of a step, which the database tables growing with the case's history do not touch."""
    with db.read(engine) as s:
        case = s.scalar(select(Case).where(Case.number == number))
        spec = processes.load_spec(s, case.process_version_id)
        text, status = case.instance_json, case.status
    if status != "open":
        return len(text.encode()), 0, 0, 0.0, status
    wf = bpmn.load_instance(text, spec.spec, spec.subprocess_specs)
    times = []
    for _ in range(20):
        t0 = time.perf_counter()
        again = bpmn.load_instance(text, spec.spec, spec.subprocess_specs)
        bpmn.run_until_waiting(again)
        bpmn.dump_instance(again)
        times.append((time.perf_counter() - t0) * 1000)
    tasks = sum(len(f.tasks) for f in bpmn_workflow.flows(wf))
    return len(text.encode()), bpmn.tree_depth(wf), tasks, statistics.median(times), status


def _start(engine: Any, code: str) -> str:
    with db.transaction(engine) as s:
        return cases.start_case(s, service_code=code, village_code=VILLAGE, applicant_name="符建英",
                                actor=orgs.actor_by_name(s, CLERK)).case_number


def _run(title: str, engine: Any, number: str, rounds: int, step: Callable[[int], None], marks: tuple[int, ...]) -> None:
    print(f"\n{title}")
    print(f"{'round':>7} {'JSON bytes':>11} {'depth':>6} {'tasks':>6} {'step median ms':>15} {'workflow ms':>12}"
          "  status")
    times: list[float] = []
    for n in range(1, rounds + 1):
        t0 = time.perf_counter()
        try:
            step(n)
        except Exception as exc:  # noqa: BLE001 - the contrast run ends in SpiffWorkflow's own failure
            print(f"{n:>7} stopped: {type(exc).__name__}: {str(exc)[:90]}")
            return
        times.append((time.perf_counter() - t0) * 1000)
        status = None
        if n in marks or n == rounds:
            size, depth, tasks, wf_ms, status = _case_state(engine, number)
            print(f"{n:>7} {size:>11,} {depth:>6} {tasks:>6} {statistics.median(times):>15.2f} {wf_ms:>12.2f}"
                  f"  {status}")
            times = []
            if status != "open":
                print(f"{'':>7} the case was closed as {status} although no end event was reached")
                return


def reminder_year(url: str, hours: int, compaction: bool) -> None:
    engine = db.make_engine(url)
    number = _start(engine, "TEST-LOOP-REMIND")
    base = datetime.fromisoformat(START)
    original = bpmn_compaction.keep_bounded

    def step(n: int) -> None:
        report = timers.sweep(engine, base + timedelta(hours=n, seconds=1))
        if report.fired != 1:
            raise RuntimeError(f"round {n}: {report.to_dict()}")

    if not compaction:
        bpmn_compaction.keep_bounded = lambda *a, **k: 0  # type: ignore[assignment]
    try:
        marks = MARKS if compaction else (10, 100, 200, 300, 320, 330, 340, 400)
        title = ("(a) hourly reminder, timers.sweep, compaction on" if compaction else
                 "(c) the same with compaction off (SpiffWorkflow alone)")
        _run(title, engine, number, hours, step, marks)
    finally:
        bpmn_compaction.keep_bounded = original
        engine.dispose()


def rework(url: str, rounds: int) -> None:
    engine = db.make_engine(url)
    number = _start(engine, "TEST-LOOP-REWORK")
    with db.read(engine) as s:
        clerk, officer = orgs.actor_by_name(s, CLERK), orgs.actor_by_name(s, TOWNSHIP_OFFICER)

    def ready(bpmn_id: str) -> int:
        with db.read(engine) as s:
            return s.scalar(select(TaskRow.id).join(Case).where(Case.number == number, TaskRow.state == "ready",
                                                                TaskRow.bpmn_id == bpmn_id))

    def step(n: int) -> None:
        with db.transaction(engine) as s:
            cases.complete_task(s, ready("Task_Intake"), clerk, {"note": f"round {n}"})
        with db.transaction(engine) as s:
            cases.complete_task(s, ready("Task_Review"), officer, {"review_decision": "rework"})

    _run("(b) rework loop, cases.complete_task (two completions a round)", engine, number, rounds, step,
         tuple(m for m in (10, 100, 250, 500, 1000) if m <= rounds))
    engine.dispose()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hours", type=int, default=8760)
    ap.add_argument("--rework", type=int, default=500)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp, clock.using(clock.ManualClock(START)):
        for name in ("remind", "rework"):
            url = f"sqlite:///{tmp}/{name}.db"
            prepare_database(url, f"loops/{name}.bpmn", START)
        reminder_year(f"sqlite:///{tmp}/remind.db", args.hours, compaction=True)
        rework(f"sqlite:///{tmp}/rework.db", args.rework)
        url = f"sqlite:///{tmp}/contrast.db"
        prepare_database(url, "loops/remind.bpmn", START)
        reminder_year(url, 400, compaction=False)


if __name__ == "__main__":
    main()
