"""Cases end to end through the engine services, on SQLite and PostgreSQL (`make test` runs both)."""
from __future__ import annotations

import threading

import pytest
from sqlalchemy import select

from engine import bpmn, cases, db, orgs, processes
from engine.errors import Conflict, Forbidden, InvalidInput, NotFound, WorkflowError
from engine.models import AuditEvent, Case, OrgUnit, TaskRow, TimerRow

from .conftest import (
    AGENT,
    AGENT2,
    CLERK,
    COUNTY_MZ,
    COUNTY_RS,
    OTHER_CLERK,
    ROOT,
    TOWNSHIP,
    complete,
    form_for,
    ready_tasks,
    snapshot,
    start,
    user,
    worker_for,
)


def assert_projection_matches(engine, number: str) -> None:
    """Task and timer rows are exactly what the stored workflow says."""
    with db.read(engine) as s:
        case = s.scalar(select(Case).where(Case.number == number))
        spec = processes.load_spec(s, case.process_version_id)
        wf = bpmn.load_instance(case.instance_json, spec.spec, spec.subprocess_specs)
        rows = s.scalars(select(TaskRow).where(TaskRow.case_id == case.id, TaskRow.state == "ready")).all()
        timers = s.scalars(select(TimerRow).where(TimerRow.case_id == case.id,
                                                  TimerRow.state.in_(("armed", "paused")))).all()
    assert {r.spiff_task_id: r.bpmn_id for r in rows} == {
        str(t.id): t.task_spec.bpmn_id for t in bpmn.ready_user_tasks(wf)}
    assert {t.spiff_task_id: (t.bpmn_id, t.state == "paused", t.workdays) for t in timers} == {
        tid: (i.bpmn_id, i.paused, i.workdays) for tid, i in bpmn.armed_timers(wf).items()}
    assert {t.spiff_task_id: t.due_at for t in timers if t.state == "armed"} == {
        tid: i.due for tid, i in bpmn.armed_timers(wf).items() if not i.paused}
    assert (case.status == "open") == (not wf.is_completed())


def drive(engine, number: str, decision: str = "approve", max_steps: int = 20) -> list[str]:
    """Complete whatever is ready until the case closes; returns the task BPMN ids in order."""
    done = []
    for _ in range(max_steps):
        open_tasks = ready_tasks(engine, number)
        if not open_tasks:
            return done
        task = open_tasks[0]
        who = worker_for(engine, task) if task.assignee_id is None else _username(engine, task.assignee_id)
        complete(engine, task.id, who, form_for(engine, task, decision))
        done.append(task.bpmn_id)
        assert_projection_matches(engine, number)
    raise AssertionError("case did not finish")


def _username(engine, user_id: int) -> str:
    with db.read(engine) as s:
        from engine.models import User
        return s.get(User, user_id).username


def status_of(engine, number: str) -> tuple[str, str | None]:
    with db.read(engine) as s:
        case = s.scalar(select(Case).where(Case.number == number))
        return case.status, case.outcome


def test_relay_case_runs_start_to_end(seeded):
    r = start(seeded, data={"household_size": 3})
    assert r.case_number.startswith("YY-2026-") and r.status == "open"
    assert_projection_matches(seeded, r.case_number)
    (intake,) = ready_tasks(seeded, r.case_number)
    assert intake.level == "village" and intake.assignee_id == user(seeded, CLERK).id  # 首问责任
    steps = drive(seeded, r.case_number)
    assert steps == ["Task_Intake", "Task_Review", "Task_Approve", "Task_Deliver"]
    assert status_of(seeded, r.case_number) == ("completed", "办结")
    with db.read(seeded) as s:
        actions = [a for (a,) in s.execute(select(AuditEvent.action).join(Case).where(
            Case.number == r.case_number).order_by(AuditEvent.id))]
        timers = s.scalars(select(TimerRow).join(Case).where(Case.number == r.case_number)).all()
    assert actions[0] == "case.started" and actions[-1] == "case.closed"
    assert actions.count("task.completed") == 4
    assert {t.state for t in timers} == {"cancelled"}  # deadlines disarmed as each step finished


@pytest.mark.parametrize("service", ["FX-DIBAO", "FX-PENSION", "FX-HOMESTEAD"])
@pytest.mark.parametrize("decision, outcome", [("approve", "办结"), ("reject", "不予办理")])
def test_example_processes_run_to_their_end(seeded, service, decision, outcome):
    r = start(seeded, service=service)
    drive(seeded, r.case_number, decision)
    assert status_of(seeded, r.case_number) == ("completed", outcome)


def test_routing_follows_lanes_and_departments(seeded):
    r = start(seeded, service="FX-DIBAO")
    with db.read(seeded) as s:
        units = {u.code: u.id for u in s.scalars(select(OrgUnit))}
    seen = {}
    for _ in range(4):
        (task,) = ready_tasks(seeded, r.case_number)
        seen[task.level] = (task.unit_id, task.candidate_group)
        complete(seeded, task.id, worker_for(seeded, task), form_for(seeded, task))
    assert seen["village"] == (units["430902102201"], None)
    assert seen["township"] == (units["430902102"], None)
    assert seen["county"] == (units["430902"], "民政")


def test_inbox_visibility(seeded):
    from engine import queries
    r = start(seeded)
    (intake,) = ready_tasks(seeded, r.case_number)
    complete(seeded, intake.id, CLERK, {"documents_complete": True})
    (review,) = ready_tasks(seeded, r.case_number)
    with db.read(seeded) as s:
        def box(name):
            u = orgs.user_by_name(s, name)
            return [t.id for t in queries.list_tasks(s, u)]
        assert box(AGENT) == [review.id] and box(AGENT2) == [review.id] and box(TOWNSHIP) == [review.id]
        assert box(CLERK) == [] and box(COUNTY_MZ) == [] and box("agent-430902103-1") == []
        with pytest.raises(NotFound):  # a case outside one's subtree does not exist for that user
            queries.case_detail(s, r.case_number, orgs.user_by_name(s, OTHER_CLERK))
        assert queries.case_detail(s, r.case_number, orgs.user_by_name(s, "supervisor")).number == r.case_number


def test_county_department_gate(seeded):
    r = start(seeded)
    for who in (CLERK, AGENT):
        (t,) = ready_tasks(seeded, r.case_number)
        complete(seeded, t.id, who, form_for(seeded, t))
    (approve,) = ready_tasks(seeded, r.case_number)
    assert approve.candidate_group == "民政"
    with pytest.raises(Forbidden):
        complete(seeded, approve.id, COUNTY_RS)
    complete(seeded, approve.id, COUNTY_MZ)


def test_claim_unclaim_reassign(seeded):
    r = start(seeded)
    (t,) = ready_tasks(seeded, r.case_number)
    complete(seeded, t.id, CLERK, {"documents_complete": True})
    (review,) = ready_tasks(seeded, r.case_number)
    with pytest.raises(Forbidden):  # a village clerk cannot take a township task
        with db.transaction(seeded) as s:
            cases.claim_task(s, review.id, user(seeded, CLERK))
    with db.transaction(seeded) as s:
        cases.claim_task(s, review.id, user(seeded, AGENT))
    with pytest.raises(Conflict):
        with db.transaction(seeded) as s:
            cases.claim_task(s, review.id, user(seeded, AGENT2))
    with pytest.raises(Forbidden):
        complete(seeded, review.id, AGENT2, {"township_decision": "approve"})
    with pytest.raises(InvalidInput):  # nor be given one
        with db.transaction(seeded) as s:
            cases.reassign_task(s, review.id, user(seeded, AGENT), CLERK, "请村里办")
    with pytest.raises(InvalidInput):  # nor without a reason
        with db.transaction(seeded) as s:
            cases.reassign_task(s, review.id, user(seeded, AGENT), AGENT2, "  ")
    with db.transaction(seeded) as s:
        cases.reassign_task(s, review.id, user(seeded, AGENT), AGENT2, "下乡入户调查，由同事接办")
    with db.transaction(seeded) as s:
        cases.unclaim_task(s, review.id, user(seeded, TOWNSHIP))  # the township's lead may release it
    complete(seeded, review.id, AGENT2, {"township_decision": "approve"})
    with db.read(seeded) as s:
        actions = [a for (a,) in s.execute(select(AuditEvent.action).where(
            AuditEvent.action.like("task.%")).order_by(AuditEvent.id))]
    assert actions.count("task.claimed") == 1 and "task.reassigned" in actions and "task.unclaimed" in actions


def test_bad_input_is_refused_and_changes_nothing(seeded):
    r = start(seeded)
    (t,) = ready_tasks(seeded, r.case_number)
    before = snapshot(seeded)
    for data in ({}, {"documents_complete": "maybe"}, {"documents_complete": True, "household_size": "two"},
                 {"documents_complete": True, "__class__": 1}, ["not", "an", "object"]):
        with pytest.raises(InvalidInput):
            complete(seeded, t.id, CLERK, data)
    with pytest.raises(Forbidden):
        complete(seeded, t.id, OTHER_CLERK, {"documents_complete": True})
    with pytest.raises(NotFound):
        complete(seeded, 99999, CLERK, {})
    with pytest.raises(NotFound):
        start(seeded, service="NO-SUCH")
    with pytest.raises(Forbidden):
        start(seeded, actor=OTHER_CLERK)
    assert snapshot(seeded) == before


def test_failure_mid_service_leaves_database_as_before(seeded, monkeypatch):
    r = start(seeded)
    (t,) = ready_tasks(seeded, r.case_number)
    before = snapshot(seeded)

    def boom(session, rows):  # the last write of the service: everything before it must roll back
        raise RuntimeError("disk full")

    monkeypatch.setattr(cases.store, "write_audit", boom)
    with pytest.raises(RuntimeError):
        complete(seeded, t.id, CLERK, {"documents_complete": True})
    with pytest.raises(RuntimeError):
        start(seeded)
    monkeypatch.undo()
    assert snapshot(seeded) == before
    complete(seeded, t.id, CLERK, {"documents_complete": True})  # and the case still works
    assert_projection_matches(seeded, r.case_number)


def test_completing_a_task_cancelled_by_its_timer_is_refused(seeded, manual_clock):
    from engine import timers
    r = start(seeded)
    (t,) = ready_tasks(seeded, r.case_number)
    complete(seeded, t.id, CLERK, {"documents_complete": True})
    (review,) = ready_tasks(seeded, r.case_number)
    report = timers.sweep(seeded, manual_clock.advance(hours=73))  # interrupting PT72H timer
    assert report.fired == 1
    (head,) = ready_tasks(seeded, r.case_number)
    assert head.bpmn_id == "Task_HeadReview"
    with db.read(seeded) as s:
        assert s.get(TaskRow, review.id).state == "cancelled"
    before = snapshot(seeded)
    with pytest.raises(Conflict):
        complete(seeded, review.id, AGENT, {"township_decision": "approve"})
    assert snapshot(seeded) == before
    assert_projection_matches(seeded, r.case_number)
    with db.read(seeded) as s:
        case = s.scalar(select(Case).where(Case.number == r.case_number))
        spec = processes.load_spec(s, case.process_version_id)
        wf = bpmn.load_instance(case.instance_json, spec.spec, spec.subprocess_specs)
    assert wf.get_tasks(spec_name="Task_HeadReview")[0].data["escalated"] is True
    # the head review has no form; without a decision the gateway fails: reported, nothing written
    with pytest.raises(WorkflowError, match="township_decision"):
        complete(seeded, head.id, AGENT, {})
    assert snapshot(seeded) == before


def test_withdraw_cancels_tasks_and_timers(seeded):
    r = start(seeded)
    (t,) = ready_tasks(seeded, r.case_number)
    complete(seeded, t.id, CLERK, {"documents_complete": True})
    with pytest.raises(InvalidInput):
        with db.transaction(seeded) as s:
            cases.withdraw_case(s, r.case_number, user(seeded, CLERK), "  ")
    with db.transaction(seeded) as s:
        res = cases.withdraw_case(s, r.case_number, user(seeded, CLERK), "申请人撤回申请")
    assert res.status == "withdrawn"
    assert ready_tasks(seeded, r.case_number) == []
    with db.read(seeded) as s:
        assert [t.state for t in s.scalars(select(TimerRow))] == ["cancelled"]
    with pytest.raises(Conflict):
        with db.transaction(seeded) as s:
            cases.withdraw_case(s, r.case_number, user(seeded, CLERK), "again")


def test_concurrent_completion_exactly_one_wins(seeded):
    r = start(seeded)
    (t,) = ready_tasks(seeded, r.case_number)
    complete(seeded, t.id, CLERK, {"documents_complete": True})
    (review,) = ready_tasks(seeded, r.case_number)
    agents = [user(seeded, AGENT), user(seeded, AGENT2)]
    barrier = threading.Barrier(2)
    outcomes: list[object] = [None, None]

    def worker(i: int) -> None:
        barrier.wait()
        try:
            with db.transaction(seeded) as s:
                outcomes[i] = cases.complete_task(s, review.id, agents[i], {"township_decision": "approve"})
        except Exception as exc:  # noqa: BLE001 - recorded for the assertion
            outcomes[i] = exc

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(2)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(30)
    wins = [o for o in outcomes if isinstance(o, cases.StepResult)]
    losses = [o for o in outcomes if isinstance(o, Conflict)]
    assert len(wins) == 1 and len(losses) == 1, outcomes
    (approve,) = ready_tasks(seeded, r.case_number)
    assert approve.bpmn_id == "Task_Approve"
    with db.read(seeded) as s:
        assert s.scalar(select(Case.version).where(Case.number == r.case_number)) == 3
        completed = s.scalars(select(AuditEvent).where(AuditEvent.action == "task.completed")).all()
    assert len(completed) == 2  # intake + exactly one review
    assert_projection_matches(seeded, r.case_number)


def test_new_version_does_not_touch_running_cases(seeded):
    r = start(seeded)
    data = (ROOT / "tests" / "fixtures" / "relay.bpmn").read_bytes().replace(
        "乡镇审核".encode(), "乡镇审核（新版）".encode())
    with db.transaction(seeded) as s:
        (res,) = processes.deploy(s, data, "relay.bpmn")
    assert res.version == 2 and res.created
    with db.transaction(seeded) as s:
        (again,) = processes.deploy(s, data, "relay.bpmn")
    assert again.version == 2 and not again.created
    r2 = start(seeded)
    for number, name in ((r.case_number, "乡镇审核"), (r2.case_number, "乡镇审核（新版）")):
        (t,) = ready_tasks(seeded, number)
        complete(seeded, t.id, CLERK, {"documents_complete": True})
        (review,) = ready_tasks(seeded, number)
        assert review.name == name


def test_case_numbers_are_sequential_per_year(seeded, manual_clock):
    numbers = [start(seeded).case_number for _ in range(3)]
    assert numbers == ["YY-2026-000001", "YY-2026-000002", "YY-2026-000003"]
    manual_clock.set("2027-01-04T09:00:00+08:00")
    assert start(seeded).case_number == "YY-2027-000001"
