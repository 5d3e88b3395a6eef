"""The `yicun` command drives the whole lifecycle, with JSON output and clear errors."""
from __future__ import annotations

import contextlib
import io
import json
import shutil

import pytest

from engine.cli import main

from .conftest import ROOT, freeze_sqlite

DEMO_NOW = "2026-11-02T09:00:00"


def _cli(url: str, *args: str) -> None:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = main(["--json", "--db", url, *args])
    assert rc == 0, (args, rc, out.getvalue(), err.getvalue())


@pytest.fixture(scope="module")
def demo_database(tmp_path_factory):
    """`init --demo` (all of Yiyang, bpmn/ deployed, demo cases) and two fixture processes, built once for
    the module: it takes seconds, and every test used to build it for itself."""
    folder = tmp_path_factory.mktemp("cli-demo")
    url = f"sqlite:///{folder / 'built.db'}"
    _cli(url, "--now", DEMO_NOW, "init", "--demo")
    _cli(url, "deploy", *(str(ROOT / "tests" / "fixtures" / f) for f in ("dibao.bpmn", "pension.bpmn")))
    freeze_sqlite(folder / "built.db", folder / "demo.db")
    return folder / "demo.db"


@pytest.fixture
def yicun(demo_database, tmp_path, capsys):
    shutil.copyfile(demo_database, tmp_path / "cli.db")
    url = f"sqlite:///{tmp_path / 'cli.db'}"

    def run(*args: str, code: int = 0):
        rc = main(["--json", "--db", url, *args])
        out, err = capsys.readouterr()
        assert rc == code, (rc, out, err)
        return json.loads(out) if rc == 0 else json.loads(err)

    run("--now", DEMO_NOW, "init")  # a no-op on the copy, but it sets the CLI's clock as `init --demo` did
    return run


def test_demo_seed_matches_the_article(yicun):
    assert len(yicun("units", "list", "--level", "county")) == 8
    assert len(yicun("units", "list", "--level", "township")) == 93
    assert len(yicun("units", "list", "--level", "village")) == 1184
    assert len(yicun("users", "list", "--role", "clerk")) == 2769
    assert len(yicun("users", "list", "--role", "agent")) == 295
    clerks = yicun("users", "list", "--unit", "430902102201")
    assert [c["name"] for c in clerks][0] == "盛巧云"
    deployed = {p["process_id"] for p in yicun("processes", "list")}
    assert {"MZ-01", "RS-02", "ZR-01", "FX-DIBAO", "FX-PENSION"} <= deployed


def test_full_lifecycle_from_the_shell(yicun):
    now = ["--now", "2026-11-02T09:00:00"]
    demo_cases = [c["number"] for c in yicun("case", "list")]
    started = yicun(*now, "case", "start", "--service", "FX-PENSION", "--village", "430902102201",
                    "--applicant", "符建英", "--as", "clerk-430902102201-1",
                    "--data", json.dumps({"applicant_id_number": "430902195901010025"}))
    number = started["case_number"]
    assert number.startswith("YY-2026-")
    listed = yicun("case", "list")  # newest first: the new case once, at the top, then the demo's as they were
    assert [c["number"] for c in listed] == [number, *demo_cases]
    assert listed[0] == {"number": number, "service_code": "FX-PENSION", "service_name": "城乡居民养老保险待遇申领",
                         "process_version": 1, "village": "邹家村", "applicant_name": "符建英", "status": "open",
                         "outcome": None, "created_at": "2026-11-02T09:00:00+08:00",
                         "updated_at": "2026-11-02T09:00:00+08:00", "accepted_at": "2026-11-02T09:00:00+08:00"}
    decisions = {"village": {}, "township": {"township_decision": "approve"}, "county": {"county_decision": "approve"}}
    users = {"village": "clerk-430902102201-1", "township": "agent-430902102-1", "county": "officer-430902-rs"}
    for _ in range(4):
        (task,) = yicun("task", "list", "--case", number)
        who = users[task["level"]]
        assert any(t["id"] == task["id"] for t in yicun("task", "list", "--as", who))
        yicun(*now, "task", "claim", str(task["id"]), "--as", who)
        form = yicun("task", "show", str(task["id"]))["fields"]
        filled = {"boolean": True, "long": 1, "date": "2026-11-02", "string": "已核实"}
        data = {f["id"]: f["options"][0][0] if f["options"] else filled[f["type"]] for f in form
                if f["required"] and not f.get("readonly")}
        if "applicant_id_number" in data:
            data["applicant_id_number"] = "430902195901010025"
        data.update(decisions[task["level"]])
        yicun(*now, "task", "complete", str(task["id"]), "--as", who, "--data", json.dumps(data))
    shown = yicun("case", "show", number)
    assert shown["status"] == "completed" and shown["outcome"] == "办结"
    assert [t["state"] for t in shown["tasks"]] == ["completed"] * 4
    assert yicun("task", "list", "--case", number) == []


def test_errors_go_to_stderr_with_exit_codes(yicun, tmp_path):
    err = yicun("case", "show", "YY-2026-999999", code=4)
    assert err["error"] == "not_found"
    err = yicun("case", "start", "--service", "FX-DIBAO", "--village", "430902102201", "--applicant", "x",
                "--as", "clerk-430921102201-1", code=5)
    assert err["error"] == "forbidden"
    err = yicun("case", "start", "--service", "FX-DIBAO", "--village", "430902102201", "--applicant", "x",
                "--as", "clerk-430902102201-1", "--data", "[1,2]", code=3)
    assert "JSON object" in err["message"]
    evil = tmp_path / "evil.bpmn"
    evil.write_text('<?xml version="1.0"?>\n<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>\n<x>&e;</x>')
    err = yicun("deploy", str(evil), code=3)
    assert err["error"] == "bpmn_rejected" and err["findings"][0]["line"] == 2
    err = yicun("deploy", str(ROOT / "bpmn" / "MZ-01.bpmn"), "--as", "clerk-430902102201-1", code=5)
    assert err["error"] == "forbidden"
    (res,) = yicun("deploy", str(ROOT / "bpmn" / "MZ-01.bpmn"), "--as", "designer")
    assert res["created"] is False and res["version"] == 1


def test_demo_cases_are_at_several_stages(yicun):
    listed = yicun("case", "list", "--status", "all")
    assert len(listed) >= 5
    levels = {t["level"] for c in listed for t in yicun("task", "list", "--case", c["number"])}
    assert levels == {"village", "township", "county"}


def test_timers_sweep_from_the_shell(yicun):
    number = yicun("--now", "2026-11-02T09:00:00", "case", "start", "--service", "FX-DIBAO", "--village",
                   "430902102201", "--applicant", "符建英", "--as", "clerk-430902102201-1")["case_number"]

    def timer_states():
        return {t["bpmn_id"]: t["state"] for t in yicun("case", "show", number)["timers"]}

    yicun("timers", "sweep", "--now", "2026-11-03T09:00:00")
    assert set(timer_states().values()) == {"armed"}
    yicun("timers", "sweep", "--now", "2026-11-09T23:59:59")  # 24:00 of the 5th working day is the end
    assert set(timer_states().values()) == {"armed"}
    assert yicun("timers", "sweep", "--now", "2026-11-10T00:00:00")["fired"] == 1  # this case's step warning
    assert timer_states() == {"Timer_VillageIntake_Warn": "fired", "Timer_VillageIntake_Withdraw": "armed"}
    assert yicun("timers", "sweep", "--now", "2026-11-10T10:00:00")["fired"] == 0


def test_calendar_due(yicun):
    assert yicun("calendar", "due", "--from", "2026-09-28", "--workdays", "5") == {
        "from": "2026-09-28", "workdays": 5, "due_date": "2026-10-10", "ends_at": "2026-10-11T00:00:00+08:00",
        "estimated": False}
    assert yicun("calendar", "due", "--from", "2026-12-25", "--workdays", "10")["estimated"] is True
    yicun("calendar", "due", "--from", "2026-13-01", "--workdays", "1", code=3)


def test_sla_commands(yicun):
    number = yicun("--now", "2026-09-22T10:00:00", "case", "start", "--service", "FX-PENSION", "--village",
                   "430902102201", "--applicant", "盛秋兰", "--as", "clerk-430902102201-1",
                   "--accepted-at", "2026-09-21T09:30:00")["case_number"]
    shown = yicun("case", "show", number)
    assert shown["accepted_at"] == "2026-09-21T09:30:00+08:00"
    assert shown["sla"]["legal_due_at"] == "2026-09-30T00:00:00+08:00"  # 5 wd after 09-21 (中秋 off) → 09-29
    yicun("--now", "2026-09-23T09:00:00", "case", "pause", number, "--reason", "等待申请人补正", "--at",
          "2026-09-22T15:00:00")
    assert yicun("case", "show", number)["sla"]["paused_at"] == "2026-09-22T15:00:00+08:00"
    yicun("--now", "2026-10-09T09:00:00", "case", "resume", number)
    shown = yicun("case", "show", number)
    assert shown["sla"]["paused_at"] is None
    assert shown["sla"]["legal_due_at"] == "2026-10-15T00:00:00+08:00"  # 4 wd left after 09-22 → 10-14
    assert [p["workdays_left"]["legal"] for p in shown["pauses"]] == [4]
    err = yicun("--now", "2026-10-09T10:00:00", "case", "extend", number, "--workdays", "3", "--reason", "复核",
                "--as", "clerk-430902102201-1", code=5)
    assert err["error"] == "forbidden"
    yicun("--now", "2026-10-09T10:00:00", "case", "extend", number, "--workdays", "3", "--reason", "复核",
          "--as", "officer-430902-rs")
    shown = yicun("case", "show", number)
    assert shown["sla"]["legal_due_at"] == "2026-10-20T00:00:00+08:00" and shown["sla"]["extension_workdays"] == 3
    assert [a["action"] for a in shown["audit"]].count("case.extended") == 1


@pytest.mark.slow
def test_service_day_digest(yicun):
    yicun("--now", "2026-11-02T09:00:00", "case", "start", "--service", "FX-PENSION", "--village", "430902102201",
          "--applicant", "盛秋兰", "--as", "clerk-430902102201-1")
    assert yicun("service-day", "run", "--date", "2026-11-09")["service_day"] is False
    out = yicun("--now", "2026-11-10T08:00:00", "service-day", "run", "--date", "2026-11-10")
    assert out == {"date": "2026-11-10", "service_day": True, "digests": 1 + 8 + 93 + 1184}  # city, counties, …
    assert yicun("service-day", "run", "--date", "2026-11-10")["digests"] == 0  # once per day
    village = yicun("service-day", "show", "--unit", "430902102201")
    assert village["service_date"] == "2026-11-10" and village["counts"]["overdue"] >= 1
    assert any(e["service_code"] == "FX-PENSION" for e in village["overdue"])
    township = yicun("service-day", "show", "--unit", "430902102")
    assert township["counts"]["overdue"] >= village["counts"]["overdue"]
    yicun("service-day", "show", "--unit", "430921102201", "--date", "2026-12-10", code=4)
    county = yicun("service-day", "show", "--unit", "430902")  # a summary of its townships
    assert county["kind"] == "summary" and county["month"] == "2026-10"
    assert sum(c["open"] for c in county["children"]) == county["totals"]["open"] >= 1
    assert sum(c["overdue"] for c in county["children"]) == county["counts"]["overdue"] >= len(county["most_overdue"])
    city = yicun("service-day", "show", "--unit", "4309")
    assert len(city["children"]) == 8 and city["totals"]["open"] >= 1
