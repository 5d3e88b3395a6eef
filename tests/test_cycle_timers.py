"""Timers SpiffWorkflow 3.2 gets wrong (issue 11 §4), and their neighbours.

A non-interrupting repeating boundary timer (`R3/PT1H`) whose branch is a user task: SpiffWorkflow drops the
steps it opened when the guarded step completes and the case closes as completed. Yicun keeps them
(engine/bpmn/boundary.py): each stays until done and the case closes after the last, with the main path's
outcome. The neighbours — a duration timer, a repeating timer with a script-only branch, a message or
signal the case throws itself, an event subprocess with a repeating timer start — run correctly; the
constructs SpiffWorkflow runs wrongly with no cure here (an interrupting, intermediate or start timer with
a cycle; a message or signal nothing sends) are refused at deploy with the element and the reason.
Database tests run on SQLite and PostgreSQL.
"""
from __future__ import annotations

import re
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from SpiffWorkflow.bpmn.specs.control import BoundaryEventJoin
from sqlalchemy import func, select

from engine import bpmn, clock, db, processes, timers
from engine.bpmn.boundary import KeepBranchesJoin
from engine.errors import BpmnRejected
from engine.models import AuditEvent, Case, TimerRow

from .conftest import AGENT, CLERK, FIXTURES, START, complete, ready_tasks, start

T0 = datetime.fromisoformat(START)
CHASE = (FIXTURES / "cycle_chase.bpmn").read_bytes()
SIGNAL = (FIXTURES / "signal_extra.bpmn").read_bytes()
MESSAGE = SIGNAL.replace(b'<bpmn:signalEventDefinition id="ED_Catch" signalRef="Signal_Flag"/>',
                         b'<bpmn:messageEventDefinition id="ED_Catch" messageRef="Message_Flag"/>').replace(
    b'<bpmn:signalEventDefinition id="ED_Throw" signalRef="Signal_Flag"/>',
    b'<bpmn:messageEventDefinition id="ED_Throw" messageRef="Message_Flag"/>')
CONFORMANCE = Path(__file__).parent / "conformance"


def variant(timer: str) -> bytes:
    return CHASE.replace(b"<bpmn:timeCycle>R3/PT1H</bpmn:timeCycle>", timer.encode())


def deploy(engine, data: bytes, name: str = "x.bpmn") -> None:
    with db.transaction(engine) as s:
        processes.deploy(s, data, name)


def steps(engine, number: str) -> list[str]:
    return [t.bpmn_id for t in ready_tasks(engine, number)]


def task(engine, number: str, bpmn_id: str):
    return next(t for t in ready_tasks(engine, number) if t.bpmn_id == bpmn_id)


def case_row(engine, number: str) -> Case:
    with db.read(engine) as s:
        return s.scalar(select(Case).where(Case.number == number))


def timer_rows(engine, number: str) -> list[tuple[str, str]]:
    with db.read(engine) as s:
        return [tuple(r) for r in s.execute(select(TimerRow.bpmn_id, TimerRow.state).join(Case)
                                            .where(Case.number == number).order_by(TimerRow.id)).all()]


def fired_audits(engine, number: str) -> int:
    with db.read(engine) as s:
        return s.scalar(select(func.count()).select_from(AuditEvent).join(Case, Case.id == AuditEvent.case_id)
                        .where(Case.number == number, AuditEvent.action == "timer.fired"))


def sweep(engine, hours: float) -> int:
    return timers.sweep(engine, T0 + timedelta(hours=hours)).fired


# ------------------------------------------------------------------------------ the bug, on the workflow object
def _run_rounds(spec, subs, rounds: int) -> object:
    wf = bpmn.new_workflow(spec, subs)
    with clock.using(clock.ManualClock(T0)):
        bpmn.run_until_waiting(wf)
    for n in range(1, rounds + 1):
        with clock.using(clock.ManualClock(T0 + timedelta(hours=n, seconds=1))):
            wf.refresh_timers()
            bpmn.run_until_waiting(wf)
    handle = next(t for t in bpmn.ready_user_tasks(wf) if t.task_spec.bpmn_id == "Task_Handle")
    with clock.using(clock.ManualClock(T0 + timedelta(hours=rounds, minutes=30))):
        handle.run()
        bpmn.run_until_waiting(wf)
    return wf


def test_spiffworkflows_own_join_drops_the_opened_steps_and_ours_keeps_them():
    """The reproduction: with SpiffWorkflow's BoundaryEventJoin the two 催办 steps opened at +1 h and +2 h
    vanish when the guarded step completes, and the workflow reports itself completed."""
    proc = bpmn.compile_bpmn(CHASE, "chase.bpmn").processes[0]
    join = proc.spec.task_specs["Task_Handle.BoundaryEventJoin"]
    assert type(join) is KeepBranchesJoin  # put in place by the parser (keep_spawned_branches)
    ours = _run_rounds(proc.spec, proc.subprocess_specs, 2)
    assert [t.task_spec.bpmn_id for t in bpmn.ready_user_tasks(ours)] == ["Task_Chase", "Task_Chase"]
    assert not ours.is_completed() and not bpmn.reached_end(ours)
    join.__class__ = BoundaryEventJoin  # SpiffWorkflow 3.2 as it is
    try:
        theirs = _run_rounds(proc.spec, proc.subprocess_specs, 2)
    finally:
        join.__class__ = KeepBranchesJoin
    assert bpmn.ready_user_tasks(theirs) == [] and theirs.is_completed()


def test_the_join_class_survives_the_stored_spec_and_reaches_older_versions():
    proc = bpmn.compile_bpmn(CHASE, "chase.bpmn").processes[0]
    stored = bpmn.spec_to_json(proc.spec, proc.subprocess_specs)
    assert '"typename": "KeepBranchesJoin"' in stored
    spec, _subs = bpmn.spec_from_json(stored)
    assert type(spec.task_specs["Task_Handle.BoundaryEventJoin"]) is KeepBranchesJoin
    # a version stored before the fix, with SpiffWorkflow's join: restored with ours, for its running cases
    older = stored.replace('"typename": "KeepBranchesJoin"', '"typename": "BoundaryEventJoin"')
    spec, _subs = bpmn.spec_from_json(older)
    assert type(spec.task_specs["Task_Handle.BoundaryEventJoin"]) is KeepBranchesJoin
    plain = bpmn.compile_bpmn(variant("<bpmn:timeDuration>PT1H</bpmn:timeDuration>"), "d.bpmn").processes[0]
    assert type(plain.spec.task_specs["Task_Handle.BoundaryEventJoin"]) is BoundaryEventJoin  # only where needed


# ------------------------------------------------------------------------------------------ through the engine
def test_steps_a_repeating_timer_opened_stay_until_done(seeded):
    deploy(seeded, CHASE)
    number = start(seeded, service="TEST-CYCLE-CHASE").case_number
    assert steps(seeded, number) == ["Task_Handle"] and timer_rows(seeded, number) == [("Timer_Chase", "armed")]
    assert sweep(seeded, 1 + 1 / 3600) == 1 and sweep(seeded, 2 + 1 / 3600) == 1
    assert steps(seeded, number) == ["Task_Handle", "Task_Chase", "Task_Chase"]
    assert {t.level for t in ready_tasks(seeded, number) if t.bpmn_id == "Task_Chase"} == {"township"}
    result = complete(seeded, task(seeded, number, "Task_Handle").id, CLERK, {"note": "办好了"})
    assert result.status == "open"  # SpiffWorkflow alone: "completed", the two 催办 steps gone
    assert steps(seeded, number) == ["Task_Chase", "Task_Chase"]
    assert timer_rows(seeded, number) == [("Timer_Chase", "cancelled")]  # its third round will not come
    assert sweep(seeded, 5) == 0 and steps(seeded, number) == ["Task_Chase", "Task_Chase"]
    first, second = ready_tasks(seeded, number)
    assert complete(seeded, first.id, AGENT, {"chase_note": "已催"}).status == "open"
    last = complete(seeded, second.id, AGENT, {"chase_note": "已催"})
    assert (last.status, last.outcome) == ("completed", "办结")  # the main path's end, not 已催办
    assert fired_audits(seeded, number) == 2


def test_a_repeating_timer_that_ran_its_rounds_is_spent_not_due(seeded):
    """R2/PT1H: after its second round it has no due (SpiffWorkflow would keep one at +3 h and then record a
    third "fired" round that opens nothing); its row says fired, and the steps it opened stay."""
    deploy(seeded, variant("<bpmn:timeCycle>R2/PT1H</bpmn:timeCycle>"))
    number = start(seeded, service="TEST-CYCLE-CHASE").case_number
    assert sweep(seeded, 1.01) == 1 and timer_rows(seeded, number) == [("Timer_Chase", "armed")]
    assert sweep(seeded, 2.01) == 1 and timer_rows(seeded, number) == [("Timer_Chase", "fired")]
    assert sweep(seeded, 3.01) == 0 and fired_audits(seeded, number) == 2
    assert steps(seeded, number) == ["Task_Handle", "Task_Chase", "Task_Chase"]
    assert complete(seeded, task(seeded, number, "Task_Handle").id, CLERK).status == "open"
    for chase in ready_tasks(seeded, number):
        result = complete(seeded, chase.id, AGENT)
    assert (result.status, result.outcome) == ("completed", "办结")


def test_a_duration_timers_step_stays_after_the_guarded_step(seeded):
    """Neighbour: a non-interrupting duration timer fires once and completes; SpiffWorkflow leaves the branch
    under a finished task, so its step stays — and the outcome is the main path's."""
    deploy(seeded, variant("<bpmn:timeDuration>PT1H</bpmn:timeDuration>"))
    number = start(seeded, service="TEST-CYCLE-CHASE").case_number
    assert sweep(seeded, 1.01) == 1 and sweep(seeded, 9) == 0
    assert steps(seeded, number) == ["Task_Handle", "Task_Chase"]
    assert complete(seeded, task(seeded, number, "Task_Handle").id, CLERK).status == "open"
    assert steps(seeded, number) == ["Task_Chase"]
    result = complete(seeded, task(seeded, number, "Task_Chase").id, AGENT)
    assert (result.status, result.outcome) == ("completed", "办结")


def test_a_repeating_timer_with_a_script_branch_closes_with_its_step(seeded):
    """Neighbour: each round's script branch finishes at once, so nothing is left when the step completes."""
    deploy(seeded, (FIXTURES / "loops" / "cycle.bpmn").read_bytes(), "cycle.bpmn")
    number = start(seeded, service="TEST-LOOP-CYCLE").case_number
    assert [sweep(seeded, h + 0.01) for h in (1, 2, 3)] == [1, 1, 1]
    assert steps(seeded, number) == ["Task_Handle"]
    result = complete(seeded, task(seeded, number, "Task_Handle").id, CLERK, {"note": "done"})
    assert (result.status, result.outcome) == ("completed", "办结")
    assert timer_rows(seeded, number) == [("Timer_Cycle", "cancelled")] and fired_audits(seeded, number) == 3


@pytest.mark.parametrize("data", [SIGNAL, MESSAGE], ids=["signal", "message"])
def test_a_signal_or_message_the_case_throws_opens_a_step_that_stays(seeded, data):
    """Neighbour: a non-interrupting signal/message boundary fires once when the case throws it and
    completes, so its step stays after the guarded step — correct as it is."""
    deploy(seeded, data)
    number = start(seeded, service="TEST-SIGNAL-EXTRA").case_number
    assert steps(seeded, number) == ["Task_Handle", "Task_Flag"]
    complete(seeded, task(seeded, number, "Task_Flag").id, AGENT)
    assert steps(seeded, number) == ["Task_Handle", "Task_Extra"]
    assert complete(seeded, task(seeded, number, "Task_Handle").id, CLERK).status == "open"
    assert steps(seeded, number) == ["Task_Extra"]
    result = complete(seeded, task(seeded, number, "Task_Extra").id, CLERK)
    assert (result.status, result.outcome) == ("completed", "办结")


# ------------------------------------------------------------------------------------------ refused at deploy
def refusal(data: bytes) -> tuple[str, int, str]:
    with pytest.raises(BpmnRejected) as exc:
        bpmn.compile_bpmn(data, "x.bpmn")
    (finding,) = exc.value.findings
    return finding.element_id, finding.line, finding.message


def test_an_interrupting_repeating_boundary_timer_is_refused():
    element, line, message = refusal(CHASE.replace(b'attachedToRef="Task_Handle" cancelActivity="false"',
                                                   b'attachedToRef="Task_Handle" cancelActivity="true"'))
    assert (element, line) == ("Timer_Chase", 31)
    assert "interrupting boundary timer with a timeCycle" in message and "timeDuration" in message


def test_a_repeating_intermediate_or_start_timer_is_refused():
    cycle = b"<bpmn:timerEventDefinition><bpmn:timeCycle>R2/PT1H</bpmn:timeCycle></bpmn:timerEventDefinition>"
    waits = CHASE.replace(b'<bpmn:sequenceFlow id="F1" sourceRef="StartEvent_1" targetRef="Task_Handle"/>',
                          b'<bpmn:sequenceFlow id="F1" sourceRef="StartEvent_1" targetRef="Wait"/>'
                          b'<bpmn:intermediateCatchEvent id="Wait">' + cycle + b'</bpmn:intermediateCatchEvent>'
                          b'<bpmn:sequenceFlow id="F0" sourceRef="Wait" targetRef="Task_Handle"/>')
    element, _line, message = refusal(waits)
    assert element == "Wait" and "runs the path after it once per round" in message
    starts = re.sub(rb'<bpmn:startEvent id="StartEvent_1"[^>]*/>',
                    b'<bpmn:startEvent id="StartEvent_1">' + cycle + b"</bpmn:startEvent>", CHASE)
    element, _line, message = refusal(starts)
    assert element == "StartEvent_1" and "runs the whole process again every round" in message


@pytest.mark.parametrize("data", [SIGNAL, MESSAGE], ids=["signal", "message"])
def test_a_signal_or_message_nothing_sends_is_refused(data):
    unsent = data.replace(b'<bpmn:signalEventDefinition id="ED_Throw" signalRef="Signal_Flag"/>', b"").replace(
        b'<bpmn:messageEventDefinition id="ED_Throw" messageRef="Message_Flag"/>', b"")
    element, line, message = refusal(unsent)
    assert (element, line) == ("Event_Flagged", 34)
    assert "which nothing sends" in message and "flagged" in message


def test_the_public_message_boundary_that_stalled_its_case_is_refused():
    """SpiffWorkflow's noninterrupting-MessageBoundary.bpmn: the message is thrown by another process of
    the file (another case in Yicun), so the branch never ran and the parallel join behind it waited for
    ever (it used to deploy)."""
    path = CONFORMANCE / "spiffworkflow" / "camunda" / "noninterrupting-MessageBoundary.bpmn"
    outcome = processes.dry_run(path.read_bytes(), path.name)
    assert (outcome["outcome"], outcome["element"]) == ("refused", "Event_InterruptBoundary")


def test_an_event_subprocess_with_a_repeating_start_keeps_its_steps_and_ends(seeded):
    """Neighbour: the same 催办 as an event subprocess. SpiffWorkflow runs it right (each round an instance
    beside the step, kept when the step completes); the case used to stop as an incident when the last
    instance finished after the main path (the EndJoin is entered from the event subprocess, not from an
    end event: `bpmn.reached_end`)."""
    deploy(seeded, (FIXTURES / "esp_chase.bpmn").read_bytes())
    number = start(seeded, service="TEST-ESP-CHASE").case_number
    assert sweep(seeded, 1.01) == 1 and sweep(seeded, 2.01) == 1
    assert sweep(seeded, 3.01) == 0 and timer_rows(seeded, number) == [("Start_Chase", "fired")]
    assert fired_audits(seeded, number) == 2
    assert steps(seeded, number) == ["Task_Handle", "Task_Chase", "Task_Chase"]
    assert complete(seeded, task(seeded, number, "Task_Handle").id, CLERK).status == "open"
    first, second = ready_tasks(seeded, number)
    assert first.level == "township" and complete(seeded, first.id, AGENT).status == "open"
    result = complete(seeded, second.id, AGENT)
    assert (result.status, result.outcome) == ("completed", "办结")
    with db.read(seeded) as s:
        incidents = s.scalar(select(func.count()).select_from(AuditEvent).where(AuditEvent.action.like("incident%")))
    assert incidents == 0
