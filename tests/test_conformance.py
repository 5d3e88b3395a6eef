"""Public BPMN files by others (tests/conformance: MIWG, SpiffWorkflow, Camunda, bpmn-js) go through
deploy: each deploys, is kept as a model only, or is refused with a message naming the element —
never a crash, a hang or a case that stalls. The outcomes are recorded in docs/conformance.md; this test
keeps the record true. Regenerate it with:  python -m tests.test_conformance --write
"""
from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

from engine import bpmn, processes
from engine.bpmn import compile_bpmn

HERE = Path(__file__).parent / "conformance"
DOC = Path(__file__).resolve().parent.parent / "docs" / "conformance.md"
FILES = sorted(HERE.rglob("*.bpmn"))


def outcome(path: Path) -> dict:
    return processes.dry_run(path.read_bytes(), str(path.relative_to(HERE)))


def recorded() -> dict[str, tuple[str, str]]:
    rows = {}
    for line in DOC.read_text(encoding="utf-8").splitlines():
        m = re.match(r"^\| `([^`]+)` \| (deploys|model only|refused) \| `?([^|`]*)`? \|", line)
        if m:
            rows[m.group(1)] = (m.group(2), m.group(3).strip())
    return rows


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(HERE)))
def test_each_public_file_has_its_recorded_outcome(path):
    got = outcome(path)
    name = str(path.relative_to(HERE))
    assert recorded().get(name) == (got["outcome"], got["element"] or ""), got
    if got["outcome"] == "refused":
        assert got["message"] and "Traceback" not in got["message"]
    if got["outcome"] == "deploys":  # and a case of it runs to a wait state without stalling
        for proc in compile_bpmn(path.read_bytes(), name).processes:
            if proc.executable:
                wf = bpmn.new_workflow(proc.spec, proc.subprocess_specs)
                try:
                    bpmn.run_until_waiting(wf)
                except Exception as exc:  # noqa: BLE001 - a process needing start data may stop at a condition
                    assert type(exc).__name__ in ("WorkflowTaskException", "WorkflowException"), exc
                    continue
                assert not bpmn.stalled_at(wf)


def test_a_non_interrupting_cycle_timer_keeps_the_steps_it_opened():
    """Camunda's BoundaryTimerNonInterruptingEventTest.testTimerWithCycle (R/PT1H on a user task, its branch a
    user task): each round opens `timerFiredTask`, and those steps stay when the guarded task completes —
    SpiffWorkflow 3.2 alone dropped them and closed the case (issue 11 §4, engine/bpmn/boundary.py)."""
    from datetime import datetime, timedelta

    from engine import clock
    path = HERE / "camunda-bpm-platform" / "BoundaryTimerNonInterruptingEventTest.testTimerWithCycle.bpmn"
    (proc,) = compile_bpmn(path.read_bytes(), path.name).processes
    wf = bpmn.new_workflow(proc.spec, proc.subprocess_specs)
    t0 = datetime.fromisoformat("2026-11-02T09:00:00+08:00")

    def at(hours: float, action=lambda: None) -> list[str]:
        nonlocal wf
        with clock.using(clock.ManualClock(t0 + timedelta(hours=hours))):
            action()
            bpmn.run_until_waiting(wf)
        wf = bpmn.load_instance(bpmn.dump_instance(wf), proc.spec, proc.subprocess_specs)  # as every save does
        return sorted(t.task_spec.bpmn_id for t in bpmn.ready_user_tasks(wf))

    assert at(0) == ["task"]
    assert at(1.01, wf.refresh_timers) == ["task", "timerFiredTask"]
    assert at(2.01, wf.refresh_timers) == ["task", "timerFiredTask", "timerFiredTask"]
    main = next(t for t in bpmn.ready_user_tasks(wf) if t.task_spec.bpmn_id == "task")
    assert at(2.5, main.run) == ["timerFiredTask", "timerFiredTask"] and not bpmn.armed_timers(wf)
    assert at(9, wf.refresh_timers) == ["timerFiredTask", "timerFiredTask"]  # the cycle stopped with the task
    for _ in range(2):
        fired = bpmn.ready_user_tasks(wf)[0]
        at(9, fired.run)
    assert bpmn.reached_end(wf) and bpmn.final_end_event(wf)[0] == "end"


def test_every_file_is_recorded():
    assert set(recorded()) == {str(p.relative_to(HERE)) for p in FILES}


def write() -> None:
    lines = [
        "# Conformance: public BPMN files through `yicun deploy`",
        "",
        "Third-party models (MIWG reference models, SpiffWorkflow's and Camunda's test processes, bpmn-js",
        "fixtures; sources and licences in `tests/conformance/`) checked with `yicun deploy --dry-run`.",
        "**deploys**: every executable process compiles and a new case runs to a wait state (a user task or",
        "a timer); **model only**: no executable process — stored and viewable, not startable; **refused**:",
        "the first of the reasons, with the element and line (the CLI and the web list all of them).",
        "Kept true by `tests/test_conformance.py`; regenerate with `python -m tests.test_conformance --write`.",
        "Each file is judged alone, with no database: a call activity calling a process of another file is",
        "refused here; deployed together (`yicun deploy top.bpmn sub.bpmn`) or after its callee, it deploys",
        "(SpiffWorkflow's resetworkflowA pair: tests/test_call_activity_files.py). The non-interrupting",
        "cycle timer of `BoundaryTimerNonInterruptingEventTest.testTimerWithCycle.bpmn` is also run through",
        "its rounds: the steps it opens stay after the guarded task completes (SpiffWorkflow 3.2 alone drops",
        "them; engine/bpmn/boundary.py).",
        "",
        "| file | outcome | element | line | reason / processes |",
        "|---|---|---|---|---|",
    ]
    for path in FILES:
        o = outcome(path)
        message = (o["message"] or "").replace("|", "\\\\|").replace("\n", " ")
        lines.append(f"| `{o['file']}` | {o['outcome']} | {('`' + o['element'] + '`') if o['element'] else ''} | "
                     f"{o['line'] or ''} | {message[:160]} |")
    DOC.write_text("\n".join(lines) + "\n", encoding="utf-8")


if __name__ == "__main__" and "--write" in sys.argv:
    write()
