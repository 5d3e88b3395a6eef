"""Migration of running cases to a newer version of their process (issue 11 §6, §8): the dry run says per case
whether it can move and why not; a bulk migration moves the rest with their due instants unchanged (the
clock moved on between arming and migrating, which is where SpiffWorkflow's own migration re-arms from
"now"); a migrated case finishes on the new version; a rollback restores a case exactly and it finishes on
the old one; only designers may do it. On SQLite and PostgreSQL (database tests)."""
from __future__ import annotations

import json
import re
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from engine import db, processes, timers
from engine.bpmn import Instance, compile_bpmn, spec_from_json, spec_to_json
from engine.bpmn.upgrade import Blocked, Upgrade
from engine.cases import migration
from engine.cli import main
from engine.errors import Forbidden, NotFound
from engine.models import AuditEvent, Case, CaseMigration, MigrationBatch, ProcessVersion, TaskRow, TimerRow

from .conftest import (
    AGENT,
    CLERK,
    COUNTY_MZ,
    VILLAGE,
    complete,
    form_for,
    ready_tasks,
    snapshot,
    start,
    user,
    worker_for,
)

FIXTURES = Path(__file__).parent / "fixtures"
RELAY = (FIXTURES / "relay.bpmn").read_bytes()
#: version 2 of TEST-RELAY: the township review renamed (乡镇审核 → 乡镇初审), the delivery step removed
#: (county approval ends the case)
RELAY_V2 = re.sub(
    rb'    <bpmn:sequenceFlow id="F8" sourceRef="Task_Approve" targetRef="Task_Deliver"/>\n'
    rb'    <bpmn:userTask id="Task_Deliver"[^\n]*\n'
    rb'    <bpmn:sequenceFlow id="F9" sourceRef="Task_Deliver" targetRef="End_Done"/>\n',
    b'    <bpmn:sequenceFlow id="F8" sourceRef="Task_Approve" targetRef="End_Done"/>\n',
    RELAY.replace('name="乡镇审核" camunda:formKey'.encode(), 'name="乡镇初审" camunda:formKey'.encode())
    .replace(b"        <bpmn:flowNodeRef>Task_Deliver</bpmn:flowNodeRef>\n", b""))
VILLAGE2 = "430902102202"
CLERK_V2 = "clerk-430902102202-1"
DESIGNER = "designer"


def test_the_second_version_renames_one_step_and_drops_another():
    assert b"Task_Deliver" not in RELAY_V2 and "乡镇初审".encode() in RELAY_V2
    assert compile_bpmn(RELAY_V2, "relay.bpmn").processes[0].executable


def deploy_v2(engine) -> int:
    with db.transaction(engine) as s:
        (result,) = processes.deploy(s, RELAY_V2, "relay.bpmn", user(engine, DESIGNER))
    assert (result.version, result.created) == (2, True)
    return result.version_id


def step(engine, number: str, bpmn_id: str, worker: str, data: dict | None = None) -> None:
    (task,) = [t for t in ready_tasks(engine, number) if t.bpmn_id == bpmn_id]
    complete(engine, task.id, worker, data)


INTAKE = {"documents_complete": True}
APPROVE = {"township_decision": "approve"}


def advance(engine, number: str, to: str) -> None:
    """Drive a TEST-RELAY case from intake to the step `to`."""
    order = [("Task_Intake", CLERK, INTAKE), ("Task_Review", AGENT, APPROVE), ("Task_Approve", COUNTY_MZ, None)]
    for bpmn_id, worker, data in order:
        if bpmn_id == to:
            return
        step(engine, number, bpmn_id, worker, data)


def dues(engine, number: str) -> dict[str, object]:
    """Everything a case's deadlines are: its timer rows, its steps' dues, its case dues and limits."""
    with db.read(engine) as s:
        case = s.scalar(select(Case).where(Case.number == number))
        return {
            "timers": sorted((t.spiff_task_id, t.bpmn_id, t.due_at, t.state, t.workdays) for t in
                             s.scalars(select(TimerRow).where(TimerRow.case_id == case.id))),
            "tasks": sorted((t.spiff_task_id, t.bpmn_id, t.due_at, t.limit_workdays, t.state) for t in
                            s.scalars(select(TaskRow).where(TaskRow.case_id == case.id))),
            "case": (case.legal_due_at, case.promised_due_at, case.legal_limit_workdays,
                     case.promised_limit_workdays, case.due_estimated),
        }


def case_row(engine, number: str) -> Case:
    with db.read(engine) as s:
        return s.scalar(select(Case).where(Case.number == number))


def version_of(engine, number: str) -> int:
    with db.read(engine) as s:
        return s.scalar(select(ProcessVersion.version).join(Case, Case.process_version_id == ProcessVersion.id)
                        .where(Case.number == number))


def run_to_end(engine, number: str) -> list[str]:
    """Complete whatever the case waits at (by a worker of the step, its form filled to approve) until it
    closes; the steps done, in order."""
    done = []
    for _ in range(8):
        tasks = ready_tasks(engine, number)
        if not tasks:
            break
        complete(engine, tasks[0].id, worker_for(engine, tasks[0]), form_for(engine, tasks[0]))
        done.append(tasks[0].bpmn_id)
    return done


@pytest.fixture
def scene(seeded, manual_clock):
    """TEST-RELAY v1 cases at each step: A at the intake, B at the township review (its 72 h timer armed on day
    0), C at the county approval (its 3-day warning armed on day 1), D at the delivery (a step v2 removes), and
    E at the intake in another village; then v2 deployed on day 2 and the clock moved to day 2 + 5 h."""
    a = start(seeded).case_number
    b = start(seeded).case_number
    advance(seeded, b, "Task_Review")  # day 0: Timer_Review due day 3
    manual_clock.advance(days=1)
    c = start(seeded).case_number
    advance(seeded, c, "Task_Approve")  # day 1: Timer_Approve_Warn due day 4
    d = start(seeded).case_number
    advance(seeded, d, "Task_Approve")
    step(seeded, d, "Task_Approve", COUNTY_MZ)  # waits at Task_Deliver
    e = start(seeded, actor=CLERK_V2, village=VILLAGE2).case_number
    manual_clock.advance(days=1)
    deploy_v2(seeded)
    manual_clock.advance(hours=5)
    return {"A": a, "B": b, "C": c, "D": d, "E": e}


def test_dry_run_names_the_case_that_cannot_move_and_changes_nothing(seeded, scene):
    before = snapshot(seeded)
    with db.read(seeded) as s:
        plan = migration.plan(s, user(seeded, DESIGNER), "TEST-RELAY", 2, from_version=1)
    assert snapshot(seeded) == before
    assert plan.total == 5 and plan.next_after is None and plan.name == "测试接力"
    verdicts = {v.case_number: v for v in plan.items}
    assert set(verdicts) == set(scene.values())
    assert {k for k, n in scene.items() if verdicts[n].movable} == {"A", "B", "C", "E"}
    d = verdicts[scene["D"]]
    assert (d.reason, d.params["element"], d.params["version"], d.steps) == ("step.missing", "Task_Deliver", "v2",
                                                                              ("送达结果",))
    assert "Task_Deliver" in d.message and "not in v2" in d.message
    assert plan.movable == 4 == sum(v.movable for v in plan.items)
    # the page's parts: a page of 2 and the rest after its cursor are the same cases in the same order
    with db.read(seeded) as s:
        first = migration.plan(s, user(seeded, DESIGNER), "TEST-RELAY", 2, limit=2)
        rest = migration.plan(s, user(seeded, DESIGNER), "TEST-RELAY", 2, after_id=first.next_after, limit=10)
    assert [v.case_number for v in first.items + rest.items] == [v.case_number for v in plan.items]
    assert first.total == rest.total == 5 and rest.next_after is None


def test_choosing_cases_by_step_and_unit(seeded, scene):
    designer = user(seeded, DESIGNER)
    with db.read(seeded) as s:
        at_intake = migration.plan(s, designer, "TEST-RELAY", 2, step="Task_Intake")
        in_village = migration.plan(s, designer, "TEST-RELAY", 2, unit=VILLAGE)
        in_township = migration.plan(s, designer, "TEST-RELAY", 2, unit="430902102")
        elsewhere = migration.plan(s, designer, "TEST-RELAY", 2, unit="430921")
        named = migration.plan(s, designer, "TEST-RELAY", 2, case_numbers=[scene["A"]])
        choices = migration.choices(s, designer, "TEST-RELAY")
    assert {v.case_number for v in at_intake.items} == {scene["A"], scene["E"]} and at_intake.total == 2
    assert {v.case_number for v in in_village.items} == {scene[k] for k in "ABCD"}
    assert in_township.total == 5 and elsewhere.total == 0
    assert [v.case_number for v in named.items] == [scene["A"]]
    assert [(c.version, c.open_cases) for c in choices.versions] == [(2, 0), (1, 5)]
    assert {(c.bpmn_id, c.open_cases) for c in choices.steps} == {
        ("Task_Intake", 2), ("Task_Review", 1), ("Task_Approve", 1), ("Task_Deliver", 1)}
    with db.read(seeded) as s, pytest.raises(NotFound) as missing:
        migration.plan(s, designer, "TEST-RELAY", 7)
    assert missing.value.reason == "migration.version_not_found"
    with db.read(seeded) as s, pytest.raises(NotFound) as unit:
        migration.plan(s, designer, "TEST-RELAY", 2, unit="999999")
    assert unit.value.reason == "unit.not_found"


def test_bulk_migration_keeps_every_due_instant_and_the_cases_finish_on_v2(seeded, scene, manual_clock):
    movable = [scene[k] for k in "ABC"]
    before = {n: dues(seeded, n) for n in scene.values()}
    armed = {t[1]: t[2] for n in movable for t in before[n]["timers"] if t[3] == "armed"}
    assert set(armed) == {"Timer_Review", "Timer_Approve_Warn"}
    now = manual_clock.now()
    with db.transaction(seeded) as s:
        report = migration.migrate(s, user(seeded, DESIGNER), "TEST-RELAY", 2, unit=VILLAGE)
    assert sorted(v.case_number for v in report.moved) == sorted(movable)
    assert [(v.case_number, v.reason) for v in report.refused] == [(scene["D"], "step.missing")]
    assert report.next_after is None
    for n in movable:
        assert version_of(seeded, n) == 2
        assert dues(seeded, n) == before[n]  # timers, steps' dues and the case's dues: not one instant moved
    assert version_of(seeded, scene["D"]) == 1 and dues(seeded, scene["D"]) == before[scene["D"]]
    assert version_of(seeded, scene["E"]) == 1  # another village: not chosen
    (review,) = ready_tasks(seeded, scene["B"])
    assert (review.bpmn_id, review.name) == ("Task_Review", "乡镇初审")  # renamed by v2
    with db.read(seeded) as s:
        audits = s.execute(select(AuditEvent.case_id, AuditEvent.old_value, AuditEvent.new_value, AuditEvent.details)
                           .where(AuditEvent.action == "case.migrated")).all()
        batch = s.get(MigrationBatch, report.batch_id)
        kept = s.scalars(select(CaseMigration).where(CaseMigration.batch_id == report.batch_id)).all()
    assert sorted((a.old_value, a.new_value) for a in audits) == [("v1", "v2")] * 3
    assert all(a.details["batch"] == report.batch_id and a.details["from_version"] == 1 for a in audits)
    assert (batch.moved, batch.refused, batch.rolled_back) == (3, 1, 0)
    assert batch.refusals[0]["case"] == scene["D"] and batch.refusals[0]["reason"] == "step.missing"
    assert len(kept) == 3 and {k.state for k in kept} == {"migrated"}
    # the kept past is the case as it was: its workflow as stored then, its steps' rows
    b_kept = next(k for k in kept if k.case_id == case_row(seeded, scene["B"]).id)
    assert [t["name"] for t in b_kept.tasks] == ["乡镇审核"]
    assert b_kept.after_sha256 != "" and json.loads(b_kept.instance_json)["tasks"]

    # the deadlines fire when they were always due, not counted again from the migration: B's interrupting
    # 72 h review deadline (day 3 09:00, escalating to the head's review) and C's 3-day warning (day 4)
    due_b, due_c = armed["Timer_Review"], armed["Timer_Approve_Warn"]
    assert now < due_b < due_c < now + timedelta(hours=48)
    assert timers.sweep(seeded, due_b - timedelta(minutes=1)).fired == 0
    assert timers.sweep(seeded, due_b).fired == 1
    assert [t.bpmn_id for t in ready_tasks(seeded, scene["B"])] == ["Task_HeadReview"]
    assert timers.sweep(seeded, due_c - timedelta(minutes=1)).fired == 0
    assert timers.sweep(seeded, due_c).fired == 1
    assert [t.bpmn_id for t in ready_tasks(seeded, scene["C"])] == ["Task_Approve"]  # a warning: the step stays
    manual_clock.set(due_c + timedelta(minutes=5))
    # the migrated cases finish on v2: no delivery step any more
    assert run_to_end(seeded, scene["C"]) == ["Task_Approve"]
    assert run_to_end(seeded, scene["A"]) == ["Task_Intake", "Task_Review", "Task_Approve"]
    for n in (scene["A"], scene["C"]):
        assert (case_row(seeded, n).status, case_row(seeded, n).outcome) == ("completed", "办结")
    # the case never migrated still runs on v1, delivery step and all
    assert run_to_end(seeded, scene["E"]) == ["Task_Intake", "Task_Review", "Task_Approve", "Task_Deliver"]
    assert run_to_end(seeded, scene["D"]) == ["Task_Deliver"]
    assert case_row(seeded, scene["E"]).status == "completed" == case_row(seeded, scene["D"]).status


def test_rollback_restores_a_case_exactly_and_it_finishes_on_v1(seeded, scene, manual_clock):
    a, b = scene["A"], scene["B"]
    before_a, before_b = case_row(seeded, a), case_row(seeded, b)
    tasks_b = [(t.id, t.name, t.lane, t.due_at) for t in ready_tasks(seeded, b)]
    dues_b = dues(seeded, b)
    with db.transaction(seeded) as s:
        report = migration.migrate(s, user(seeded, DESIGNER), "TEST-RELAY", 2, case_numbers=[a, b, scene["C"]])
    assert len(report.moved) == 3
    manual_clock.advance(hours=1)
    with db.transaction(seeded) as s:
        back = migration.rollback(s, user(seeded, DESIGNER), report.batch_id, case_number=b)
    assert back.restored == (b,) and back.refused == ()
    after_b = case_row(seeded, b)
    assert (after_b.process_version_id, after_b.instance_json) == (before_b.process_version_id, before_b.instance_json)
    assert after_b.version == before_b.version + 2  # moved, moved back: two saves
    assert [(t.id, t.name, t.lane, t.due_at) for t in ready_tasks(seeded, b)] == tasks_b  # 乡镇审核 again
    assert dues(seeded, b) == dues_b
    with db.read(seeded) as s:
        mig = s.scalar(select(CaseMigration).where(CaseMigration.case_id == after_b.id))
        audit = s.scalar(select(AuditEvent).where(AuditEvent.action == "case.migration_rolled_back"))
        batch = s.get(MigrationBatch, report.batch_id)
    assert (mig.state, mig.rolled_back_at is not None, batch.rolled_back) == ("rolled_back", True, 1)
    assert (audit.case_id, audit.old_value, audit.new_value) == (after_b.id, "v2", "v1")
    # a second rollback of the same case is refused; the batch's other cases stay on v2
    with db.transaction(seeded) as s:
        again = migration.rollback(s, user(seeded, DESIGNER), report.batch_id, case_number=b)
    assert again.restored == () and again.refused[0]["reason"] == "migration.rolled_back"
    assert version_of(seeded, a) == 2 == version_of(seeded, scene["C"])
    # the restored case finishes on v1: through the delivery step v2 dropped
    assert run_to_end(seeded, b) == ["Task_Review", "Task_Approve", "Task_Deliver"]
    assert case_row(seeded, b).status == "completed"

    # A moves on on v2 (its intake is completed): rolling the batch back now leaves A alone and says why
    step(seeded, a, "Task_Intake", CLERK, INTAKE)
    moved_on = case_row(seeded, a)
    with db.transaction(seeded) as s:
        rest = migration.rollback(s, user(seeded, DESIGNER), report.batch_id)
    assert rest.restored == (scene["C"],)
    assert [(r["case"], r["reason"]) for r in rest.refused] == [(a, "migration.moved_on")]
    now_a = case_row(seeded, a)
    assert (now_a.version, now_a.instance_json, now_a.process_version_id) == (
        moved_on.version, moved_on.instance_json, moved_on.process_version_id)
    assert before_a.process_version_id != now_a.process_version_id


def test_only_designers_migrate_and_roll_back_and_a_refusal_changes_nothing(seeded, scene):
    with db.transaction(seeded) as s:
        report = migration.migrate(s, user(seeded, DESIGNER), "TEST-RELAY", 2, case_numbers=[scene["A"]])
    before = snapshot(seeded)
    for who in (CLERK, "admin", "supervisor", COUNTY_MZ):
        with pytest.raises(Forbidden) as refused, db.transaction(seeded) as s:
            migration.migrate(s, user(seeded, who), "TEST-RELAY", 2)
        assert refused.value.reason == "process.migrate"
        with pytest.raises(Forbidden), db.transaction(seeded) as s:
            migration.rollback(s, user(seeded, who), report.batch_id)
        with pytest.raises(Forbidden), db.read(seeded) as s:
            migration.plan(s, user(seeded, who), "TEST-RELAY", 2)
    assert snapshot(seeded) == before


def test_a_case_inside_a_call_activity_whose_pinned_callee_changed_cannot_move(seeded, manual_clock):
    from .test_call_activity_files import CALLEE, CALLEE_V2, CALLER
    with db.transaction(seeded) as s:
        processes.deploy_files(s, [(CALLEE, "callee.bpmn"), (CALLER, "caller.bpmn")])
    inside = start(seeded, service="TEST-CALLER").case_number
    step(seeded, inside, "Task_Intake", CLERK)  # now in the callee's review
    waiting = start(seeded, service="TEST-CALLER").case_number
    with db.transaction(seeded) as s:
        processes.deploy_files(s, [(CALLEE_V2, "callee.bpmn"), (CALLER, "caller.bpmn")])  # caller v2 pins callee v2
    with db.read(seeded) as s:
        plan = migration.plan(s, user(seeded, DESIGNER), "TEST-CALLER", 2)
    verdicts = {v.case_number: v for v in plan.items}
    assert verdicts[waiting].movable
    blocked = verdicts[inside]
    assert (blocked.movable, blocked.reason, blocked.params["process"]) == (False, "call.changed", "TEST-CALLEE")
    with db.transaction(seeded) as s:
        report = migration.migrate(s, user(seeded, DESIGNER), "TEST-CALLER", 2)
    assert [v.case_number for v in report.moved] == [waiting]
    # the moved case runs the callee its new version pins (callee v2 adds a re-check step)
    assert run_to_end(seeded, waiting) == ["Task_Intake", "Task_Review", "Task_Recheck", "Task_Deliver"]
    assert case_row(seeded, waiting).status == "completed"


def test_spiffworkflows_own_migration_rearms_timers_from_now_and_ours_does_not(manual_clock):
    """Why the due instants are restored (SPIFFWORKFLOW.md §4): the same case moved with `migrate_workflow`
    alone gets its 72 h deadline counted again from the moment of the migration."""
    from SpiffWorkflow.bpmn.util.diff import WorkflowDiff, migrate_workflow

    def specs(data: bytes):
        proc = compile_bpmn(data, "relay.bpmn").processes[0]
        return spec_from_json(spec_to_json(proc.spec, proc.subprocess_specs))

    (s1, subs1), (s2, subs2) = specs(RELAY), specs(RELAY_V2)
    instance = Instance.start(s1, subs1, {})
    instance.run()
    (intake,) = instance.ready_steps().values()
    instance.run(instance.complete(intake.id, INTAKE))
    ((tid, armed),) = instance.armed_timers().items()
    assert armed.due == manual_clock.now() + timedelta(hours=72)
    text = instance.dump()
    manual_clock.advance(days=2)
    upgrade = Upgrade(s1, subs1, s2, subs2, "v2")
    theirs = Instance.load(text, s1, subs1)
    migrate_workflow(WorkflowDiff(theirs.workflow, upgrade.diff), theirs.workflow, s2)
    assert theirs.armed_timers()[tid].due == manual_clock.now() + timedelta(hours=72)  # re-armed from now
    ours = upgrade.apply(Instance.load(text, s1, subs1), {tid: armed.due}, manual_clock.now())
    assert ours.armed_timers()[tid].due == armed.due
    assert [s.name for s in ours.ready_steps().values()] == ["乡镇初审"]
    # a case at the removed step is refused before anything moves
    for name, data in (("Task_Review", APPROVE), ("Task_Approve", None)):
        (ready,) = [s for s in instance.ready_steps().values() if s.bpmn_id == name]
        instance.run(instance.complete(ready.id, data or {}))
    with pytest.raises(Blocked) as blocked:
        upgrade.apply(instance, {}, manual_clock.now())
    assert [b.reason for b in blocked.value.blockers] == ["step.missing"]


def test_the_command_line_dry_run_migrate_and_rollback(seeded, scene, db_url, capsys):
    def yicun(*args: str, code: int = 0):
        rc = main(["--json", "--db", db_url, *args])
        out, err = capsys.readouterr()
        assert rc == code, (rc, out, err)
        return json.loads(out if rc == 0 else err)

    before = snapshot(seeded)
    plan = yicun("processes", "migrate", "TEST-RELAY", "--to", "2", "--from", "1", "--dry-run", "--as", DESIGNER)
    assert snapshot(seeded) == before
    assert (plan["total"], plan["movable"]) == (5, 4)
    assert [v["reason"] for v in plan["items"] if not v["movable"]] == ["step.missing"]
    refused = yicun("processes", "migrate", "TEST-RELAY", "--to", "2", "--as", CLERK, code=5)
    assert refused["reason"] == "process.migrate" and snapshot(seeded) == before
    done = yicun("processes", "migrate", "TEST-RELAY", "--to", "2", "--step", "Task_Intake", "--as", DESIGNER)
    assert sorted(v["case_number"] for v in done["moved"]) == sorted([scene["A"], scene["E"]])
    assert done["refused"] == []
    back = yicun("processes", "rollback", str(done["batch"]), "--case", scene["E"], "--as", DESIGNER)
    assert back == {"batch": done["batch"], "restored": [scene["E"]], "refused": []}
    assert version_of(seeded, scene["E"]) == 1 and version_of(seeded, scene["A"]) == 2
    missing = yicun("processes", "rollback", "99999", "--as", DESIGNER, code=4)
    assert missing["reason"] == "migration.batch_not_found"


def test_the_pages_dry_run_migrate_and_roll_back_for_designers_only(seeded, scene, client):
    from .webtools import login, post_form

    page = "/processes/TEST-RELAY/migrate"

    def state() -> dict:  # everything but the accounts (a login records itself there)
        return {k: v for k, v in snapshot(seeded).items() if k not in ("users", "login_failures")}

    login(client, CLERK)
    assert client.get(page).status_code == 403
    before = state()
    assert post_form(client, page, {"to": "2"}).status_code == 403
    assert state() == before
    client.post("/logout", data={"csrf_token": ""})
    client.delete_cookie("session")
    login(client, DESIGNER)
    html = client.get(page).get_data(as_text=True)
    assert "迁移在办案件" in html and "Task_Deliver" in html  # the steps its cases wait at are offered
    dry = client.get(page + "?run=1&to=2&from=1&step=&unit=" + VILLAGE)
    text = dry.get_data(as_text=True)
    assert dry.status_code == 200 and state() == before
    assert "共 4 件符合条件" in text and "3 件可以迁移" in text
    assert re.search(r"不能迁移</span> <span class=\"why\">所在环节“<bdi>送达结果</bdi>”（<bdi>Task_Deliver</bdi>）"
                     r"在 v2 中已删除。", text)
    bad = client.get(page + "?run=1&to=2&unit=430921999")
    assert bad.status_code == 400 and "没有代码为 430921999 的单位" in bad.get_data(as_text=True)
    assert client.post(page, data={"to": "2"}).status_code == 400  # no CSRF token: refused, nothing moved
    assert state() == before
    done = post_form(client, page, {"to": "2", "from": "1", "step": "", "unit": VILLAGE}, page=page)
    assert done.status_code == 302
    batch_url = done.headers["Location"]
    batch = client.get(batch_url).get_data(as_text=True)
    assert "已迁移 3 件，不能迁移 1 件，已撤销 0 件。" in batch and scene["D"] in batch
    assert [version_of(seeded, scene[k]) for k in "ABCDE"] == [2, 2, 2, 1, 1]
    back = post_form(client, batch_url + "/rollback", {}, page=batch_url)
    assert back.status_code == 302
    assert [version_of(seeded, scene[k]) for k in "ABCDE"] == [1, 1, 1, 1, 1]
    assert "已撤销 3 件" in client.get(batch_url).get_data(as_text=True)
    assert client.get("/processes/OTHER/migrations/" + batch_url.rsplit("/", 1)[1]).status_code == 404


#: version 3 of TEST-RELAY: no village intake step (the township reviews first)
RELAY_NO_INTAKE = re.sub(rb'    <bpmn:userTask id="Task_Intake".*?</bpmn:userTask>\n', b'', RELAY.replace(
    b'<bpmn:sequenceFlow id="F1" sourceRef="StartEvent_1" targetRef="Task_Intake"/>',
    b'<bpmn:sequenceFlow id="F1" sourceRef="StartEvent_1" targetRef="Task_Review"/>').replace(
    b'    <bpmn:sequenceFlow id="F2" sourceRef="Task_Intake" targetRef="Task_Review"/>\n', b'').replace(
    b"        <bpmn:flowNodeRef>Task_Intake</bpmn:flowNodeRef>\n", b""), flags=re.S)
#: ... and one whose intake gets a deadline (a boundary timer it did not have)
RELAY_INTAKE_DEADLINE = RELAY.replace(
    b'    <bpmn:sequenceFlow id="F2" sourceRef="Task_Intake"',
    b'    <bpmn:boundaryEvent id="Timer_Intake" attachedToRef="Task_Intake" cancelActivity="false">\n'
    b'      <bpmn:timerEventDefinition id="TD0"><bpmn:timeDuration>P2D</bpmn:timeDuration>'
    b'</bpmn:timerEventDefinition>\n'
    b'    </bpmn:boundaryEvent>\n'
    b'    <bpmn:sequenceFlow id="F0" sourceRef="Timer_Intake" targetRef="End_Warned"/>\n'
    b'    <bpmn:sequenceFlow id="F2" sourceRef="Task_Intake"').replace(
    b"<bpmn:flowNodeRef>Task_Intake</bpmn:flowNodeRef>",
    b"<bpmn:flowNodeRef>Task_Intake</bpmn:flowNodeRef><bpmn:flowNodeRef>Timer_Intake</bpmn:flowNodeRef>")


def test_a_step_the_case_passed_may_be_gone_but_a_waiting_step_may_not_gain_a_deadline(manual_clock):
    def specs(data: bytes):
        proc = compile_bpmn(data, "relay.bpmn").processes[0]
        return spec_from_json(spec_to_json(proc.spec, proc.subprocess_specs))

    (s1, subs1) = specs(RELAY)
    assert b"Task_Intake" not in RELAY_NO_INTAKE
    at_intake = Instance.start(s1, subs1, {})
    at_intake.run()
    at_review = Instance.start(s1, subs1, {})
    at_review.run()
    (intake,) = at_review.ready_steps().values()
    at_review.run(at_review.complete(intake.id, INTAKE))
    dues = {tid: info.due for tid, info in at_review.armed_timers().items()}
    manual_clock.advance(days=1)
    no_intake = Upgrade(s1, subs1, *specs(RELAY_NO_INTAKE), "v3")
    moved = no_intake.apply(at_review, dues, manual_clock.now())  # its finished intake is history it no longer needs
    assert {i.due for i in moved.armed_timers().values()} == set(dues.values())
    assert "Task_Intake" not in {t.task_spec.name for t in moved.workflow.tasks.values()}
    for data in (APPROVE, {}, {}):
        (ready,) = moved.ready_steps().values()
        moved.run(moved.complete(ready.id, data))
    assert moved.finished and moved.reached_end() and moved.final_end_event() == ("End_Done", "办结")
    with pytest.raises(Blocked) as gone:
        no_intake.apply(at_intake, {}, manual_clock.now())
    assert gone.value.blockers[0].reason == "step.missing"
    deadline = Upgrade(s1, subs1, *specs(RELAY_INTAKE_DEADLINE), "v4")
    assert deadline.check(at_intake)[0].reason == "step.boundary_changed"
    assert deadline.check(at_intake)[0].params["added"] == "Timer_Intake"
