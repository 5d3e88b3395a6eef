"""Process tests (issue #11 §7): scenario files run in a throwaway database, recorded from a finished case,
run by `yicun bpmn test`, in the browser, and before every deploy (a failure blocks it unless overridden with
a reason, audited)."""
from __future__ import annotations

import json
import shutil
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from engine import cases, db, processes, scenarios
from engine.cli import main
from engine.errors import BpmnRejected, InvalidInput
from engine.models import AuditEvent, Case, ProcessVersion

from .conftest import CLERK, ROOT, complete, form_for, ready_tasks, snapshot, start, user, worker_for
from .webtools import login, post_form

BPMN = ROOT / "bpmn"
RS02 = BPMN / "RS-02.bpmn"
DESIGNER = "designer"


def _renamed(data: bytes, old: str, new: str) -> bytes:
    """The same process with one step's id renamed everywhere (flows, diagram, form key): still valid."""
    return data.replace(old.encode(), new.encode())


def test_the_hand_written_scenarios_of_the_bpmn_examples_pass():
    for code in ("MZ-01", "RS-02"):
        sf = scenarios.load(code, BPMN / "scenarios")
        outcome = scenarios.run([((BPMN / f"{code}.bpmn").read_bytes(), f"{code}.bpmn")], sf)
        assert outcome.error is None and outcome.passed, outcome.to_dict()
        assert len(outcome.scenarios) == len(sf.scenarios) >= 2
        for result, scenario in zip(outcome.scenarios, sf.scenarios, strict=True):
            assert [s.number for s in result.steps] == [s.number for s in scenario.steps]  # every step ran
            assert all(s.ok for s in result.steps)


def test_a_wrong_expectation_fails_at_its_step_with_the_first_difference():
    text = (BPMN / "scenarios" / "MZ-01.yaml").read_text(encoding="utf-8")
    assert "outcome: 办结}" in text and "promised: 2026-12-07" in text
    broken = scenarios.parse(text.replace("outcome: 办结}", "outcome: 不予办理}"), "MZ-01.yaml")
    outcome = scenarios.run([((BPMN / "MZ-01.bpmn").read_bytes(), "MZ-01.bpmn")], broken)
    assert not outcome.passed
    first, second = outcome.scenarios
    assert second.passed and not first.passed
    failure = first.failure
    assert failure is not None and failure.number == len(broken.scenarios[0].steps) == first.total_steps
    assert (failure.action, failure.expected, failure.actual) == ("expect_end", "不予办理", "办结")
    late = scenarios.parse(text.replace("promised: 2026-12-07", "promised: 2026-12-08"), "MZ-01.yaml")
    failure = scenarios.run([((BPMN / "MZ-01.bpmn").read_bytes(), "MZ-01.bpmn")], late).scenarios[0].failure
    assert failure is not None and (failure.number, failure.expected, failure.actual) == (11, "2026-12-08",
                                                                                          "2026-12-07")
    assert len(outcome.findings()) == 1 and "step 18" in outcome.findings()[0].message


BAD_FILES = [
    ("process: MZ-01\nscenarios: []\n", "MZ-01.yaml: `scenarios` must be a non-empty list"),
    ("process: [\n", "MZ-01.yaml: not valid YAML"),
    ("process: RS-02\nscenarios: [{name: a, steps: [{start: {}}]}]\n", "the file is for process RS-02, not MZ-01"),
    ("process: MZ-01\nscenarios:\n- name: a\n  steps:\n  - complete: Task_VillageIntake\n",
     "MZ-01.yaml, scenario 'a', step 1: the first step, and only the first, is `start`"),
    ("process: MZ-01\nscenarios:\n- name: a\n  steps:\n  - start: {}\n  - advance: 3 weeks\n",
     "MZ-01.yaml, scenario 'a', step 2: `advance` is `N workdays`"),
    ("process: MZ-01\nscenarios:\n- name: a\n  steps:\n  - start: {}\n  - complete: T\n    as: mayor\n",
     "scenario 'a', step 2: `as` is one of clerk, agent, township_officer, county_officer"),
    ("process: MZ-01\nscenarios:\n- name: a\n  steps:\n  - start: {}\n  - expect_ready: T\n",
     "step 2: `expect_ready` is a list of BPMN ids"),
    ("process: MZ-01\nscenarios:\n- name: a\n  steps:\n  - start: {}\n  - {complete: T, expect_end: done}\n",
     "step 2: a step has exactly one of"),
    ("process: MZ-01\nscenarios:\n- name: a\n  steps:\n  - start: {}\n  - expect_due: {promised: next week}\n",
     "step 2: 'next week' is not a due date"),
    ("process: MZ-01\nscenarios:\n- name: a\n  steps:\n  - start: {}\n- name: a\n  steps:\n  - start: {}\n",
     "MZ-01.yaml, scenario 'a': two scenarios have this name"),
]


@pytest.mark.parametrize(("text", "message"), BAD_FILES)
def test_invalid_scenario_files_are_refused_with_the_file_scenario_and_step(text, message):
    with pytest.raises(InvalidInput) as caught:
        scenarios.parse(text, "MZ-01.yaml", "MZ-01")
    assert message in caught.value.message and caught.value.reason == "scenario.invalid"


def test_a_scenario_naming_a_village_outside_the_seed_tree_cannot_run():
    sf = scenarios.parse("process: RS-02\nscenarios: [{name: a, steps: [{start: {village: '999999999999'}}]}]\n",
                         "RS-02.yaml")
    outcome = scenarios.run([(RS02.read_bytes(), RS02.name)], sf)
    assert not outcome.passed and "999999999999 is not a village" in (outcome.error or "")


def _finish_a_real_case(engine, manual_clock) -> str:
    """An RS-02 case worked through the services as people would, a working day between some steps."""
    number = start(engine, "RS-02", data=None).case_number
    for gap in (timedelta(hours=2), timedelta(days=1), timedelta(hours=3), timedelta(days=1)):
        manual_clock.advance(gap)
        (task,) = ready_tasks(engine, number)
        complete(engine, task.id, worker_for(engine, task), form_for(engine, task))
    with db.read(engine) as s:
        assert s.scalar(select(Case.status).where(Case.number == number)) == "completed"
    return number


def test_a_recorded_case_replays_green_and_turns_red_when_the_process_breaks(seeded, manual_clock):
    with db.transaction(seeded) as s:
        processes.deploy(s, RS02.read_bytes(), RS02.name)
    number = _finish_a_real_case(seeded, manual_clock)
    with db.read(seeded) as s:
        doc = scenarios.record(s, number)
    text = scenarios.dump(doc)
    sf = scenarios.parse(text, "RS-02.yaml", "RS-02")
    steps = [dict(s.options, **{s.action: s.value}) for s in sf.scenarios[0].steps]
    assert [s.action for s in sf.scenarios[0].steps] == [
        "start", "advance", "complete", "advance", "complete", "advance", "complete", "advance",
        "complete", "expect_ready", "expect_due", "expect_end"]
    assert steps[0]["start"]["village"] == "430902102201" and steps[0]["start"]["as"] == "clerk"
    assert steps[1] == {"advance": "PT2H"} and steps[3] == {"advance": "1 workdays", "time": "11:00"}
    assert [(s["complete"], s["as"], s.get("department")) for s in steps if "complete" in s] == [
        ("Task_VillageIntake", "clerk", None), ("Task_TownshipReview", "agent", None),
        ("Task_CountyApproval", "county_officer", "人社"), ("Task_VillageDeliver", "clerk", None)]
    assert steps[2]["data"]["documents_complete"] is True  # the form data as the clerk sent it
    assert steps[-2] == {"expect_due": {"promised": "2026-11-09", "legal": "2026-11-09"}}
    assert steps[-1] == {"expect_end": {"status": "completed", "outcome": "办结"}}

    green = scenarios.run([(RS02.read_bytes(), RS02.name)], sf)
    assert green.passed, green.to_dict()

    broken = _renamed(RS02.read_bytes(), "Task_TownshipReview", "Task_TownshipCheck")
    red = scenarios.run([(broken, RS02.name)], sf)
    failure = red.scenarios[0].failure
    assert not red.passed and failure is not None
    assert (failure.number, failure.action, failure.target) == (5, "complete", "Task_TownshipReview")
    assert failure.actual == "Task_TownshipCheck"

    with db.read(seeded) as s:  # the live database holds the one real case: the runs wrote nothing here
        assert s.scalar(select(func.count()).select_from(Case).where(Case.service_code == "RS-02")) == 1
    with db.transaction(seeded) as s:  # an open case is not recorded
        open_number = cases.start_case(s, service_code="RS-02", village_code="430902102201",
                                       applicant_name="符建英", actor=user(seeded, CLERK)).case_number
    with db.read(seeded) as s, pytest.raises(InvalidInput) as caught:
        scenarios.record(s, open_number)
    assert caught.value.reason == "scenario.case_open"


def test_a_failing_scenario_blocks_the_deploy_unless_overridden_with_a_reason(seeded, tmp_path, monkeypatch):
    (tmp_path / "scenarios").mkdir()
    shutil.copy(BPMN / "scenarios" / "RS-02.yaml", tmp_path / "scenarios" / "RS-02.yaml")
    monkeypatch.setenv("YICUN_BPMN_DIR", str(tmp_path))
    designer = user(seeded, DESIGNER)
    with db.transaction(seeded) as s:  # the file as it is passes its tests: deployed, nothing overridden
        (first,) = processes.deploy(s, RS02.read_bytes(), RS02.name, designer)
    assert first.created and first.version == 1

    broken = _renamed(RS02.read_bytes(), "Task_CountyApproval", "Task_CountyDecision")
    before = snapshot(seeded)
    with pytest.raises(BpmnRejected) as caught, db.transaction(seeded) as s:
        processes.deploy(s, broken, RS02.name, designer)
    assert snapshot(seeded) == before  # refused: nothing written, not even an audit row
    (finding,) = caught.value.findings
    assert finding.element_id == "Task_CountyApproval" and "乡镇社保所同意、县人社局批准、告知办结" in finding.message
    assert "step 7" in finding.message and "Task_CountyApproval is not ready" in finding.message

    with db.transaction(seeded) as s:
        (second,) = processes.deploy_files(s, [(broken, RS02.name)], designer,
                                           override_reason="县局要求先上线，场景另行修改")
    assert second.created and second.version == 2
    with db.read(seeded) as s:
        events = s.execute(select(AuditEvent.action, AuditEvent.actor_id, AuditEvent.details)
                           .where(AuditEvent.action.in_(("process.scenarios_overridden", "process.deployed")))
                           .where(AuditEvent.details["process_id"].as_string() == "RS-02")
                           .order_by(AuditEvent.id)).all()
    assert [e.action for e in events] == ["process.deployed", "process.scenarios_overridden", "process.deployed"]
    override = events[1]
    assert override.actor_id == designer.id and override.details["reason"] == "县局要求先上线，场景另行修改"
    assert len(override.details["failures"]) == 1 and "Task_CountyApproval" in override.details["failures"][0]


def test_a_process_without_scenarios_deploys_without_running_any(seeded, tmp_path, monkeypatch):
    monkeypatch.setenv("YICUN_BPMN_DIR", str(tmp_path))  # no scenarios/ folder at all
    calls = []
    monkeypatch.setattr(scenarios, "run", lambda *a, **k: calls.append(a))
    with db.transaction(seeded) as s:
        (result,) = processes.deploy(s, _renamed(RS02.read_bytes(), "Task_CountyApproval", "Task_X"), RS02.name)
    assert result.created and calls == []


def test_the_command_line_runs_the_tests_and_records_a_case(seeded, db_url, manual_clock, tmp_path, capsys):
    def run(*args: str) -> tuple[int, str]:
        rc = main(["--json", "--db", db_url, *args])
        out, _err = capsys.readouterr()
        return rc, out

    rc, out = run("bpmn", "test", "MZ-01", "RS-02")
    assert rc == 0 and [(o["process_id"], o["passed"]) for o in json.loads(out)] == [("MZ-01", True),
                                                                                      ("RS-02", True)]
    shutil.copytree(BPMN / "scenarios", tmp_path / "scenarios")
    (tmp_path / "RS-02.bpmn").write_bytes(_renamed(RS02.read_bytes(), "Task_VillageDeliver", "Task_Deliver"))
    rc, out = run("bpmn", "test", "--dir", str(tmp_path), "RS-02")
    assert rc == 3
    (result,) = json.loads(out)
    assert not result["passed"] and [s["passed"] for s in result["scenarios"]] == [False, True]

    with db.transaction(seeded) as s:
        processes.deploy(s, RS02.read_bytes(), RS02.name)
    rc, out = run("bpmn", "test", "--deployed", "RS-02")
    assert rc == 0 and json.loads(out)[0]["against"] == "v1"
    number = _finish_a_real_case(seeded, manual_clock)
    out_file = tmp_path / "scenarios" / "recorded.yaml"
    rc, _out = run("bpmn", "record", number, "--out", str(out_file))
    assert rc == 0
    recorded = scenarios.parse(out_file.read_bytes(), out_file.name, "RS-02")
    assert scenarios.run([(RS02.read_bytes(), RS02.name)], recorded).passed


def test_the_tests_page_of_a_process_deployed_only_as_a_model_shows_its_scenarios(seeded, client):
    """Nothing to run them against (no executable version): the page still shows the scenario file, and a
    run is refused as a bad request, not as the engine's conflict page."""
    with db.transaction(seeded) as s:
        processes.deploy(s, RS02.read_bytes().replace(b'isExecutable="true"', b'isExecutable="false"'), RS02.name)
    login(client, DESIGNER)
    page = client.get("/processes/RS-02/tests")
    assert page.status_code == 200 and "乡镇社保所同意、县人社局批准、告知办结" in page.get_data(as_text=True)
    assert post_form(client, "/processes/RS-02/tests", page="/processes/RS-02/tests").status_code == 422


def test_designers_run_a_process_s_tests_in_the_browser(seeded, client):
    with db.transaction(seeded) as s:
        processes.deploy(s, RS02.read_bytes(), RS02.name)
    login(client, CLERK)
    assert client.get("/processes/RS-02/tests").status_code == 403
    client.get("/logout")
    login(client, DESIGNER)
    page = client.get("/processes/RS-02/tests").get_data(as_text=True)
    assert "乡镇社保所同意、县人社局批准、告知办结" in page and "对当前版本 v1 运行测试" in page
    assert "/processes/RS-02/tests" in client.get("/processes/RS-02").get_data(as_text=True)  # linked
    done = post_form(client, "/processes/RS-02/tests", page="/processes/RS-02/tests")
    body = done.get_data(as_text=True)
    assert done.status_code == 200 and "全部通过" in body and body.count(">通过<") == 2 + 17
    assert client.get("/processes/NO-SUCH/tests").status_code == 404
    with db.read(seeded) as s:
        assert s.scalar(select(func.count()).select_from(ProcessVersion).where(
            ProcessVersion.process_id == "RS-02")) == 1
        assert s.scalar(select(func.count()).select_from(Case).where(Case.service_code == "RS-02")) == 0
