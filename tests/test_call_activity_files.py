"""Processes that span files (issue 11 §3): a call activity calls a process deployed from another file,
resolved at deploy by id and pinned by version, so running cases keep their callee; a file set deploys
together, callees first, all or nothing. On SQLite and PostgreSQL (the database tests)."""
from __future__ import annotations

import contextlib
import hashlib
import io
import json
import re
from pathlib import Path

import pytest
from sqlalchemy import select

from engine import bpmn, db, processes
from engine.cli import main
from engine.errors import BpmnRejected
from engine.models import AuditEvent, Case, ProcessVersion, TaskRow

from .conftest import AGENT, CLERK, ROOT, complete, ready_tasks, snapshot, start

CALLS = Path(__file__).parent / "fixtures" / "calls"
CALLER, CALLEE = (CALLS / "caller.bpmn").read_bytes(), (CALLS / "callee.bpmn").read_bytes()
#: the callee's second version: a re-check step after the review
CALLEE_V2 = CALLEE.replace(
    b'<bpmn:sequenceFlow id="R2" sourceRef="Task_Review" targetRef="End_Reviewed"/>',
    b'<bpmn:sequenceFlow id="R2" sourceRef="Task_Review" targetRef="Task_Recheck"/>\n'
    b'    <bpmn:userTask id="Task_Recheck" name="\xe5\xa4\x8d\xe6\xa0\xb8"/>\n'
    b'    <bpmn:sequenceFlow id="R3" sourceRef="Task_Recheck" targetRef="End_Reviewed"/>').replace(
    b"<bpmn:flowNodeRef>Task_Review</bpmn:flowNodeRef>",
    b"<bpmn:flowNodeRef>Task_Review</bpmn:flowNodeRef><bpmn:flowNodeRef>Task_Recheck</bpmn:flowNodeRef>")
CONFORMANCE = ROOT / "tests" / "conformance" / "spiffworkflow" / "bpmn"


def deploy(engine, *files: tuple[bytes, str]) -> list[processes.DeployResult]:
    with db.transaction(engine) as s:
        return processes.deploy_files(s, list(files))


def refused(engine, *files: tuple[bytes, str]) -> list:
    before = snapshot(engine)
    with pytest.raises(BpmnRejected) as exc:
        deploy(engine, *files)
    assert snapshot(engine) == before  # all or nothing: not one row written
    return exc.value.findings


def pins(engine, process_id: str) -> dict[int, dict | None]:
    with db.read(engine) as s:
        return dict(s.execute(select(ProcessVersion.version, ProcessVersion.calls)
                              .where(ProcessVersion.process_id == process_id)).all())


def drive(engine, number: str) -> list[str]:
    """Complete every step as it comes (village steps by the clerk, township steps by the agent)."""
    done = []
    for _ in range(10):
        tasks = ready_tasks(engine, number)
        if not tasks:
            return done
        (task,) = tasks
        complete(engine, task.id, AGENT if task.level == "township" else CLERK)
        done.append(task.bpmn_id)
    raise AssertionError(f"case {number} did not close: {done}")


def case_of(engine, number: str) -> Case:
    with db.read(engine) as s:
        return s.scalar(select(Case).where(Case.number == number))


# ------------------------------------------------------------------------------------------ deploy
def test_the_caller_alone_is_refused_naming_the_missing_process(db_engine):
    (finding,) = refused(db_engine, (CALLER, "caller.bpmn"))
    assert (finding.element_id, finding.line, finding.file) == ("Call_Review", 28, "caller.bpmn")
    assert "'TEST-CALLEE'" in finding.message and "deploy the file defining" in finding.message
    assert processes.dry_run(CALLER, "caller.bpmn")["outcome"] == "refused"


def test_callee_first_then_the_caller_deploys_and_pins_the_callee(db_engine):
    (callee,) = deploy(db_engine, (CALLEE, "callee.bpmn"))
    (caller,) = deploy(db_engine, (CALLER, "caller.bpmn"))
    assert (callee.process_id, callee.version, callee.calls) == ("TEST-CALLEE", 1, {})
    pin = {"TEST-CALLEE": {"version": 1, "sha256": callee_sha(CALLEE)}}
    assert (caller.process_id, caller.version, caller.created, caller.calls) == ("TEST-CALLER", 1, True, pin)
    assert pins(db_engine, "TEST-CALLER") == {1: pin} and pins(db_engine, "TEST-CALLEE") == {1: None}
    with db.read(db_engine) as s:
        spec = processes.load_spec(s, caller.version_id)
        audit = s.scalar(select(AuditEvent.details).where(AuditEvent.action == "process.deployed")
                         .order_by(AuditEvent.id.desc()).limit(1))
    assert set(spec.subprocess_specs) == {"TEST-CALLEE"}
    assert {"Task_Intake", "Task_Review", "Task_Deliver"} <= set(spec.task_meta)  # the callee's step routes too
    assert spec.task_meta["Task_Review"]["level"] == "township" and "first" not in spec.task_meta["Task_Review"]
    assert audit["calls"] == {"TEST-CALLEE": 1}


def callee_sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.mark.parametrize("order", ["caller first", "callee first"])
def test_a_file_set_deploys_in_either_order_callees_first(db_engine, order):
    files = [(CALLER, "caller.bpmn"), (CALLEE, "callee.bpmn")]
    results = deploy(db_engine, *(files if order == "caller first" else files[::-1]))
    assert [(r.process_id, r.version, r.created) for r in results] == [("TEST-CALLEE", 1, True),
                                                                      ("TEST-CALLER", 1, True)]
    assert results[1].calls == {"TEST-CALLEE": {"version": 1, "sha256": callee_sha(CALLEE)}}
    again = deploy(db_engine, *files)  # the same set again: nothing new
    assert [(r.process_id, r.version, r.created) for r in again] == [("TEST-CALLEE", 1, False),
                                                                    ("TEST-CALLER", 1, False)]


def test_a_set_with_a_new_callee_pins_that_new_version(db_engine):
    deploy(db_engine, (CALLEE, "callee.bpmn"), (CALLER, "caller.bpmn"))
    callee, caller = deploy(db_engine, (CALLER, "caller.bpmn"), (CALLEE_V2, "callee.bpmn"))
    assert (callee.version, callee.created, caller.version, caller.created) == (2, True, 2, True)
    assert pins(db_engine, "TEST-CALLER")[2] == {"TEST-CALLEE": {"version": 2, "sha256": callee_sha(CALLEE_V2)}}


def test_calls_in_a_cycle_across_files_are_refused(db_engine):
    a = CALLER.replace(b'id="TEST-CALLER"', b'id="TEST-A"').replace(b'calledElement="TEST-CALLEE"',
                                                                      b'calledElement="TEST-B"')
    b = CALLER.replace(b'id="TEST-CALLER"', b'id="TEST-B"').replace(b'calledElement="TEST-CALLEE"',
                                                                      b'calledElement="TEST-A"').replace(
        b'id="Task_Intake"', b'id="Task_IntakeB"').replace(b'id="Task_Deliver"', b'id="Task_DeliverB"')
    b = b.replace(b'targetRef="Task_Intake"', b'targetRef="Task_IntakeB"').replace(
        b'sourceRef="Task_Intake"', b'sourceRef="Task_IntakeB"').replace(
        b'targetRef="Task_Deliver"', b'targetRef="Task_DeliverB"').replace(
        b'sourceRef="Task_Deliver"', b'sourceRef="Task_DeliverB"').replace(
        b"<bpmn:flowNodeRef>Task_Intake<", b"<bpmn:flowNodeRef>Task_IntakeB<").replace(
        b"<bpmn:flowNodeRef>Task_Deliver<", b"<bpmn:flowNodeRef>Task_DeliverB<")
    (finding,) = refused(db_engine, (a, "a.bpmn"), (b, "b.bpmn"))
    assert finding.element_id == "Call_Review" and finding.line == 28
    assert "call each other across files" in finding.message
    assert "TEST-A (a.bpmn)" in finding.message and "TEST-B (b.bpmn)" in finding.message
    # the same cycle through a version deployed earlier: B pins A v1 (which calls nothing), then A calls B
    a_alone = re.sub(rb'<bpmn:callActivity id="Call_Review"[^>]*/>', b'<bpmn:task id="Call_Review"/>', a)
    deploy(db_engine, (a_alone, "a.bpmn"))
    deploy(db_engine, (b, "b.bpmn"))
    (finding,) = refused(db_engine, (a, "a.bpmn"))
    assert finding.element_id == "Call_Review" and "which calls 'TEST-A' back" in finding.message


def test_one_process_in_two_files_of_a_set_is_refused(db_engine):
    (finding,) = refused(db_engine, (CALLEE, "callee.bpmn"), (CALLEE_V2, "callee2.bpmn"), (CALLER, "caller.bpmn"))
    assert finding.file == "callee2.bpmn" and "defined in both callee.bpmn and callee2.bpmn" in finding.message


def test_a_model_only_callee_cannot_be_called(db_engine):
    model = CALLEE.replace(b'isExecutable="true"', b'isExecutable="false"')
    deploy(db_engine, (model, "callee.bpmn"))
    (finding,) = refused(db_engine, (CALLER, "caller.bpmn"))
    assert finding.element_id == "Call_Review" and "model only" in finding.message


def test_a_step_id_of_the_caller_that_is_another_step_of_the_callee_is_refused(db_engine):
    deploy(db_engine, (CALLEE, "callee.bpmn"))
    clash = CALLER.replace(b"Task_Deliver", b"Task_Review")  # the caller's delivery step named like the review
    (finding,) = refused(db_engine, (clash, "caller.bpmn"))
    assert finding.element_id == "Call_Review" and "'Task_Review'" in finding.message


# ------------------------------------------------------------------------------------------ cases
@pytest.mark.parametrize("order", ["together", "callee first"])
def test_a_case_runs_through_both_processes_steps(seeded, order):
    if order == "together":
        deploy(seeded, (CALLER, "caller.bpmn"), (CALLEE, "callee.bpmn"))
    else:
        deploy(seeded, (CALLEE, "callee.bpmn"))
        deploy(seeded, (CALLER, "caller.bpmn"))
    r = start(seeded, service="TEST-CALLER")
    (intake,) = ready_tasks(seeded, r.case_number)
    complete(seeded, intake.id, CLERK, {"household_size": 3})
    (review,) = ready_tasks(seeded, r.case_number)  # the called process's step, in its own lane
    assert (review.bpmn_id, review.name, review.level) == ("Task_Review", "乡镇审核", "township")
    complete(seeded, review.id, AGENT, {"review_note": "同意"})
    assert drive(seeded, r.case_number) == ["Task_Deliver"]
    case = case_of(seeded, r.case_number)
    assert (case.status, case.outcome) == ("completed", "办结")


def test_a_newer_callee_does_not_change_a_running_case(seeded):
    deploy(seeded, (CALLEE, "callee.bpmn"), (CALLER, "caller.bpmn"))
    running = start(seeded, service="TEST-CALLER").case_number
    (intake,) = ready_tasks(seeded, running)
    complete(seeded, intake.id, CLERK)  # now in the callee's review (version 1)
    (callee2,) = deploy(seeded, (CALLEE_V2, "callee.bpmn"))
    assert (callee2.version, callee2.created) == (2, True)
    assert drive(seeded, running) == ["Task_Review", "Task_Deliver"]  # no re-check: version 1 runs on
    # the caller's version 1 still pins callee version 1, also for cases started now
    assert drive(seeded, start(seeded, service="TEST-CALLER").case_number) == ["Task_Intake", "Task_Review",
                                                                               "Task_Deliver"]
    # the same caller file deployed again now pins the newer callee: a new version; again: unchanged
    (caller2,) = deploy(seeded, (CALLER, "caller.bpmn"))
    assert (caller2.version, caller2.created, caller2.calls["TEST-CALLEE"]["version"]) == (2, True, 2)
    (again,) = deploy(seeded, (CALLER, "caller.bpmn"))
    assert (again.version, again.created) == (2, False)
    newer = start(seeded, service="TEST-CALLER").case_number
    assert drive(seeded, newer) == ["Task_Intake", "Task_Review", "Task_Recheck", "Task_Deliver"]
    with db.read(seeded) as s:
        versions = dict(s.execute(select(Case.number, ProcessVersion.version)
                                  .join(ProcessVersion, ProcessVersion.id == Case.process_version_id)).all())
        steps = s.scalars(select(TaskRow.bpmn_id).join(Case).where(Case.number == running)
                          .order_by(TaskRow.id)).all()
    assert versions[running] == 1 and versions[newer] == 2
    assert steps == ["Task_Intake", "Task_Review", "Task_Deliver"]


def test_the_spec_cache_tells_two_versions_of_one_file_apart(seeded):
    """The caller's file is the same in versions 1 and 2; only the pinned callee differs."""
    deploy(seeded, (CALLEE, "callee.bpmn"), (CALLER, "caller.bpmn"))
    deploy(seeded, (CALLEE_V2, "callee.bpmn"), (CALLER, "caller.bpmn"))
    with db.read(seeded) as s:
        rows = s.execute(select(ProcessVersion.id, ProcessVersion.version, ProcessVersion.sha256,
                                ProcessVersion.calls).where(ProcessVersion.process_id == "TEST-CALLER")
                         .order_by(ProcessVersion.version)).all()
        assert rows[0].sha256 == rows[1].sha256
        loaded = [processes.load_spec(s, row.id) for row in rows]
        keyed = [processes.load_spec(s, row.id, key=processes.spec_key(row.sha256, "TEST-CALLER", row.calls))
                 for row in rows]
    assert ["Task_Recheck" in spec.task_meta for spec in loaded] == [False, True]
    assert [a is b for a, b in zip(loaded, keyed, strict=True)] == [True, True]


# ------------------------------------------------------------------------------------------ the command line
def _yicun(url: str, *args: str) -> tuple[int, object]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = main(["--json", "--db", url, *args])
    return rc, json.loads(out.getvalue() if rc == 0 else err.getvalue())


def test_the_command_line_deploys_a_file_set(db_engine, db_url):
    caller, callee = str(CALLS / "caller.bpmn"), str(CALLS / "callee.bpmn")
    rc, err = _yicun(db_url, "deploy", caller)
    assert rc == 3 and err["findings"][0]["element_id"] == "Call_Review"
    rc, outcomes = _yicun(db_url, "deploy", "--dry-run", caller, callee)
    assert rc == 0 and [o["outcome"] for o in outcomes] == ["deploys", "deploys"]
    rc, results = _yicun(db_url, "deploy", caller, callee)
    assert rc == 0 and [(r["process_id"], r["version"]) for r in results] == [("TEST-CALLEE", 1), ("TEST-CALLER", 1)]
    rc, outcomes = _yicun(db_url, "deploy", "--dry-run", caller)  # the callee is deployed now
    assert rc == 0 and outcomes[0]["outcome"] == "deploys"


def test_the_public_pair_of_files_deploys_together():
    """tests/conformance: SpiffWorkflow's resetworkflowA-toplevel.bpmn calls SubProcessA of
    resetworkflowA-sublevel.bpmn; before issue 11 the pair could not be deployed in either order."""
    top, sub = ((CONFORMANCE / name).read_bytes() for name in ("resetworkflowA-toplevel.bpmn",
                                                                "resetworkflowA-sublevel.bpmn"))
    assert [o["outcome"] for o in processes.dry_run_files([(top, "top.bpmn"), (sub, "sub.bpmn")])] == [
        "deploys", "deploys"]
    alone = processes.dry_run(top, "top.bpmn")
    assert (alone["outcome"], alone["element"]) == ("refused", "SubProcess")


def test_the_public_pair_runs_a_case_through_both(db_engine):
    sub, top = ((CONFORMANCE / name).read_bytes() for name in ("resetworkflowA-sublevel.bpmn",
                                                                "resetworkflowA-toplevel.bpmn"))
    deploy(db_engine, (sub, "sub.bpmn"))
    (res,) = deploy(db_engine, (top, "top.bpmn"))
    with db.read(db_engine) as s:
        spec = processes.load_spec(s, res.version_id)
    wf = bpmn.new_workflow(spec.spec, spec.subprocess_specs)
    done = []
    bpmn.run_until_waiting(wf)
    while bpmn.ready_user_tasks(wf):
        task = bpmn.ready_user_tasks(wf)[0]
        done.append(task.task_spec.bpmn_id)
        task.run()
        bpmn.run_until_waiting(wf)
    assert done == ["Task1", "SubTask2", "Task2"] and bpmn.reached_end(wf)


def test_bpmn_lint_finds_a_call_to_a_file_the_directory_lacks(tmp_path):
    from engine.bpmn import conventions
    (tmp_path / "TEST-CALLER.bpmn").write_bytes(CALLER)

    def calls() -> list[tuple[str | None, str | None]]:
        return [(f.file, f.element_id) for f in conventions.lint_tree(tmp_path, None) if "call activity" in f.message]

    assert calls() == [("TEST-CALLER.bpmn", "Call_Review")]
    (tmp_path / "TEST-CALLEE.bpmn").write_bytes(CALLEE)
    assert calls() == []
