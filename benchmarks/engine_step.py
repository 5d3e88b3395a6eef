"""Cost of one user action: the engine's complete-task service vs. the bare SpiffWorkflow floor.

(a) floor: load the instance JSON (spec cached, by reference) → complete the first user task →
    run the engine to the next wait state → save the JSON. No database.
(b) engine: `cases.complete_task` inside `db.transaction` on a SQLite file (WAL): lock, restore,
    validate the form, complete, sync task/timer rows, audit, save with the version check, commit.

Both complete the same task (the village intake of the pension process, a fixed copy of an early
RS-02 in tests/fixtures so the figure stays comparable) of the same number of fresh cases, in
interleaved rounds; the script prints the medians and engine ÷ floor (target ≤ 2.5).

    python benchmarks/engine_step.py [--cases 300] [--rounds 3]
"""
from __future__ import annotations

import argparse
import statistics
import tempfile
import time

from common import CLERK, prepare_database
from sqlalchemy import select

from engine import bpmn, cases, clock, db, orgs, processes
from engine.models import Case, TaskRow

FORM = {"applicant_id_number": "430902195901010025", "birth_date": "1966-11-02", "bank_account": "6217001234",
        "documents_complete": True}
START = "2026-11-02T09:00:00+08:00"


def prepare(engine, n: int) -> tuple[list[int], list[str], processes.LoadedSpec]:
    """n fresh cases waiting at the village intake; their task ids and instance JSON."""
    with db.transaction(engine) as s:
        for _ in range(n):
            cases.start_case(s, service_code="FX-PENSION", village_code="430902102201", applicant_name="符建英",
                             actor=orgs.actor_by_name(s, CLERK))
    with db.read(engine) as s:
        rows = s.execute(select(TaskRow.id, Case.instance_json, Case.process_version_id)
                         .join(Case, Case.id == TaskRow.case_id)
                         .where(TaskRow.state == "ready", TaskRow.bpmn_id == "Task_VillageIntake")
                         .order_by(TaskRow.id).limit(n)).all()
        spec = processes.load_spec(s, rows[0].process_version_id)
    return [r.id for r in rows], [r.instance_json for r in rows], spec


def floor_step(instance_json: str, spec: processes.LoadedSpec) -> str:
    wf = bpmn.load_instance(instance_json, spec.spec, spec.subprocess_specs)
    task = bpmn.ready_user_tasks(wf)[0]
    task.data.update(FORM)
    task.run()
    bpmn.run_until_waiting(wf)
    return bpmn.dump_instance(wf)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", type=int, default=300)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()

    floor_ms: list[float] = []
    engine_ms: list[float] = []
    with tempfile.TemporaryDirectory() as tmp, clock.using(clock.ManualClock(START)):
        prepare_database(f"sqlite:///{tmp}/bench.db", "pension.bpmn", START)
        engine = db.make_engine(f"sqlite:///{tmp}/bench.db")
        with db.read(engine) as s:
            actor = orgs.actor_by_name(s, CLERK)
        for _ in range(args.rounds):
            task_ids, states, spec = prepare(engine, args.cases)
            floor_step(states[0], spec)  # warm caches
            for state in states:
                t0 = time.perf_counter()
                floor_step(state, spec)
                floor_ms.append((time.perf_counter() - t0) * 1000)
            for task_id in task_ids:
                t0 = time.perf_counter()
                with db.transaction(engine) as s:
                    cases.complete_task(s, task_id, actor, FORM)
                engine_ms.append((time.perf_counter() - t0) * 1000)
        engine.dispose()

    f, e = statistics.median(floor_ms), statistics.median(engine_ms)
    q = lambda xs: statistics.quantiles(xs, n=20)[18]  # noqa: E731 - p95
    print(f"steps measured        {len(engine_ms)} ({args.rounds} rounds × {args.cases} cases, pension village intake)")
    print(f"floor  (SpiffWorkflow) median {f:.3f} ms   p95 {q(floor_ms):.3f} ms")
    print(f"engine (complete_task) median {e:.3f} ms   p95 {q(engine_ms):.3f} ms   (SQLite WAL, commit included)")
    print(f"engine / floor         {e / f:.2f}   (target ≤ 2.5)")


if __name__ == "__main__":
    main()
