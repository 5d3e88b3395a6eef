"""What users may submit and back-date: declared form fields only, decisions made by their own step,
case fields read-only, bounded pauses and 补录, clean text (issue 7, classes 2, 4 and 6)."""
from __future__ import annotations

import json
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from engine import cases, db, forms, processes, settings
from engine.clock import SHANGHAI
from engine.errors import Forbidden, InvalidInput
from engine.models import AuditEvent, Case
from engine.policy import Actor

from .conftest import (
    AGENT,
    CLERK,
    COUNTY_MZ,
    COUNTY_RS,
    FIXTURES,
    TOWNSHIP,
    VILLAGE,
    complete,
    form_for,
    ready_tasks,
    snapshot,
    start,
    user,
    worker_for,
)
from .test_deadlines import case_row, sh


def audit_actions(engine, number):
    with db.read(engine) as s:
        return [a.action for a in s.scalars(select(AuditEvent).join(Case).where(Case.number == number)
                                            .order_by(AuditEvent.id))]


def refused_fields(call) -> dict[str, str]:
    with pytest.raises(InvalidInput) as info:
        call()
    return info.value.details.get("fields", {})


# ---------------------------------------------------------------------------------------- class 4: forms
def intake(engine, decision="approve", **extra):
    r = start(engine, service="FX-DIBAO")
    (task,) = ready_tasks(engine, r.case_number)
    data = dict(form_for(engine, task, decision), **extra)
    return r, task, data


def test_a_step_cannot_submit_a_later_steps_decision(seeded):
    r, task, data = intake(seeded, township_decision="approve")
    before = snapshot(seeded)
    fields = refused_fields(lambda: complete(seeded, task.id, CLERK, data))
    assert "township_decision" in fields and "not a field of" in fields["township_decision"]
    assert snapshot(seeded) == before  # refused: nothing written


@pytest.mark.parametrize("extra", [{"county_decision": "approve"}, {"monthly_allowance": 900},
                                   {"anything_else": 1}, {"len": 3}, {"True": 1}])
def test_undeclared_and_reserved_names_are_refused(seeded, extra):
    r, task, data = intake(seeded, **extra)
    (key,) = extra
    assert key in refused_fields(lambda: complete(seeded, task.id, CLERK, data))


@pytest.mark.parametrize("key", ["case_number", "service_code", "village_code", "village_name", "applicant_name"])
def test_case_fields_are_never_writable_from_a_form(seeded, key):
    r, task, data = intake(seeded, **{key: "伪造"})
    assert "cannot change" in refused_fields(lambda: complete(seeded, task.id, CLERK, data))[key]
    with pytest.raises(InvalidInput):  # nor at acceptance
        start(seeded, service="FX-DIBAO", data={key: "伪造"})


def test_a_read_only_case_field_posted_back_unchanged_is_accepted(seeded):
    r, task, data = intake(seeded, applicant_name="符建英")  # the form shows it; the browser sends it back
    complete(seeded, task.id, CLERK, data)
    assert case_row(seeded, r.case_number).applicant_name == "符建英"


def test_the_township_review_needs_its_own_decision(seeded):
    """The review must say approve/reject itself: an empty form is refused even though the field is in
    the process's vocabulary (the reported attack completed it with {})."""
    r, task, data = intake(seeded)
    complete(seeded, task.id, CLERK, data)
    for _ in range(3):
        (task,) = ready_tasks(seeded, r.case_number)
        if task.bpmn_id == "Task_TownshipReview":
            break
        complete(seeded, task.id, worker_for(seeded, task), form_for(seeded, task))
    assert task.bpmn_id == "Task_TownshipReview"
    assert "township_decision" in refused_fields(lambda: complete(seeded, task.id, AGENT, {}))


def test_decision_fields_count_as_missing_when_an_earlier_step_left_them():
    decision = {"id": "township_decision", "label": "结论", "type": "enum", "required": True,
                "options": [["approve", "同意"], ["reject", "不同意"]]}
    with pytest.raises(InvalidInput):
        forms.validate({}, [decision], {"township_decision": "approve"}, decisions={"township_decision"})
    optional = dict(decision, required=False)
    assert forms.validate({}, [optional], {"township_decision": "approve"},
                          decisions={"township_decision"}) == {"township_decision": None}
    # an applicant's fact (not read by a gateway) held from intake still counts as given
    fact = {"id": "household_size", "label": "人数", "type": "long", "required": True}
    assert forms.validate({}, [fact], {"household_size": 3}) == {}


def test_decision_fields_are_read_from_the_gateways(seeded):
    with db.read(seeded) as s:
        pv = processes.latest_version(s, "FX-DIBAO")
        spec = processes.load_spec(s, pv.id)
    assert {"township_decision", "county_decision"} <= spec.decision_fields
    assert "household_size" not in spec.decision_fields
    assert "township_decision" not in {f["id"] for f in spec.intake_fields()}


def test_start_data_may_carry_intake_facts_but_no_decision(seeded):
    r = start(seeded, service="FX-DIBAO", data={"household_size": 3})
    assert r.status == "open"
    with pytest.raises(InvalidInput):
        start(seeded, service="FX-DIBAO", data={"township_decision": "approve"})
    with pytest.raises(InvalidInput):
        start(seeded, service="FX-DIBAO", data={"not_a_field": "x"})


@pytest.mark.parametrize("value, ok", [
    ("430902196601020023", True),
    ("43090219660102002x", False),           # wrong check digit (X where 3 belongs)
    ("430902196601020024", False),           # wrong check digit
    ("４３０９０２１９６６０１０２００２３", False),  # full-width digits
    ("430902196613020023", False),           # month 13
    ("43090219660102002", False),            # 17 characters
    ("430902 96601020023", False),
])
def test_id_numbers_are_checked_by_gb11643(value, ok):
    assert (forms.id_card_problem(value) is None) is ok


@pytest.mark.parametrize("field, value", [
    ({"type": "long"}, "１２"),                   # full-width digits
    ({"type": "long"}, "1_000"),
    ({"type": "long"}, float("inf")),
    ({"type": "long"}, float("nan")),
    ({"type": "long"}, 10 ** 30),
    ({"type": "date"}, "０２０６-01-01"),
    ({"type": "date"}, "0001-01-01"),
    ({"type": "date"}, "9999-12-31"),
    ({"type": "date"}, "2026-02-30"),
    ({"type": "string"}, "符建\x00英"),
    ({"type": "string"}, "abc\u202edef"),          # right-to-left override
    ({"type": "string"}, "x" * 5000),
    ({"type": "string"}, float("inf")),
    ({"type": "boolean"}, "maybe"),
    ({"type": "enum", "options": [["a", "A"]]}, ["a"]),
])
def test_bad_values_are_refused_with_the_field_named(field, value):
    f = dict({"id": "v", "label": "v"}, **field)
    with pytest.raises(InvalidInput) as info:
        forms.validate({"v": value}, [f])
    assert "v" in info.value.details["fields"]


def test_deep_or_huge_form_data_is_refused_without_a_traceback():
    deep: object = "x"
    for _ in range(100_000):
        deep = [deep]
    with pytest.raises(InvalidInput, match="nested"):
        forms.validate({"v": deep}, [{"id": "v", "label": "v"}])
    with pytest.raises(InvalidInput, match="larger"):
        forms.validate({"v": "字" * 70_000}, [{"id": "v", "label": "v", "constraints": {"maxlength": "100000"}}])


@pytest.mark.parametrize("name", ["符\x00建英", "符建英\x1b[31m", "符\u2028建英", "  ", "x" * 101, "符\u200b建英",
                                  "符\u00ad建英", "\ufeff符建英", "符建英\u200f", "符\u061c建英", "ab\udced"])
def test_names_and_reasons_are_clean_text(seeded, name):
    with pytest.raises(InvalidInput):
        with db.transaction(seeded) as s:
            cases.start_case(s, service_code="FX-DIBAO", village_code=VILLAGE, applicant_name=name,
                             actor=user(seeded, CLERK))
    r = start(seeded, service="FX-DIBAO")
    reason = name * 5 if len(name) > 100 else name  # reasons may be 500 characters
    with pytest.raises(InvalidInput):
        with db.transaction(seeded) as s:
            cases.pause_case(s, r.case_number, user(seeded, CLERK), reason)


# ---------------------------------------------------------------------------------------- class 2: pauses
def pause(engine, number, who=CLERK, at=None, kind="supplement", now=None):
    with db.transaction(engine) as s:
        return cases.pause_case(s, number, user(engine, who) if who else Actor.operator(), "等待补正材料", kind,
                                at=at, now=now)


def resume(engine, number, who=CLERK, at=None, now=None):
    with db.transaction(engine) as s:
        return cases.resume_case(s, number, user(engine, who) if who else Actor.operator(), at=at, now=now)


def test_the_reported_attack_a_year_back_is_refused(seeded, manual_clock):
    manual_clock.set(sh(2026, 11, 2, 9))
    r = start(seeded, service="FX-DIBAO", now=manual_clock.now())
    due = case_row(seeded, r.case_number).legal_due_at
    manual_clock.set(sh(2026, 11, 20, 9))
    before = snapshot(seeded)
    for at in (sh(2025, 11, 20, 9), sh(2026, 11, 1, 9), sh(2026, 11, 2, 8, 59), sh(2026, 11, 18, 9)):
        with pytest.raises(InvalidInput, match="no earlier than"):
            pause(seeded, r.case_number, at=at)
    assert snapshot(seeded) == before
    assert case_row(seeded, r.case_number).legal_due_at == due


def test_a_pause_may_be_recorded_one_working_day_late_and_says_so(seeded, manual_clock):
    manual_clock.set(sh(2026, 11, 2, 9))
    r = start(seeded, service="FX-DIBAO", now=manual_clock.now())
    manual_clock.set(sh(2026, 11, 9, 9))  # Monday: the grace reaches back to Friday 09:00
    with pytest.raises(InvalidInput):
        pause(seeded, r.case_number, at=sh(2026, 11, 6, 8, 59))
    pause(seeded, r.case_number, at=sh(2026, 11, 6, 9))
    assert "case.paused_backdated" in audit_actions(seeded, r.case_number)
    with db.read(seeded) as s:
        row = s.scalar(select(AuditEvent).where(AuditEvent.action == "case.paused_backdated"))
        assert row.details["backdated"] is True and row.details["recorded_at"]


def test_pauses_never_overlap(seeded, manual_clock):
    manual_clock.set(sh(2026, 11, 2, 9))
    r = start(seeded, service="FX-DIBAO", now=manual_clock.now())
    manual_clock.set(sh(2026, 11, 3, 9))
    pause(seeded, r.case_number)
    manual_clock.set(sh(2026, 11, 3, 15))
    resume(seeded, r.case_number)
    manual_clock.set(sh(2026, 11, 4, 10))  # within the grace, but before the last resume
    with pytest.raises(InvalidInput, match="pauses never overlap"):
        pause(seeded, r.case_number, at=sh(2026, 11, 3, 14))
    pause(seeded, r.case_number, at=sh(2026, 11, 3, 15))


def test_a_special_procedure_is_started_by_an_officer_of_the_approving_level(seeded, manual_clock):
    r = start(seeded, service="FX-DIBAO")
    for who in (CLERK, AGENT, TOWNSHIP, COUNTY_RS):  # FX-DIBAO is approved by the county 民政
        with pytest.raises(Forbidden, match="approving level"):
            pause(seeded, r.case_number, who=who, kind="special")
    pause(seeded, r.case_number, who=COUNTY_MZ, kind="special")
    assert case_row(seeded, r.case_number).paused_at is not None
    with pytest.raises(Forbidden, match="ended by"):
        resume(seeded, r.case_number, who=CLERK)
    resume(seeded, r.case_number, who=COUNTY_MZ)
    assert case_row(seeded, r.case_number).paused_at is None


def test_acceptance_time_bounds(seeded, manual_clock):
    manual_clock.set(sh(2026, 11, 20, 9))  # Friday
    now = manual_clock.now()
    with pytest.raises(InvalidInput, match="future"):
        with db.transaction(seeded) as s:
            cases.start_case(s, service_code="FX-DIBAO", village_code=VILLAGE, applicant_name="符建英",
                             actor=user(seeded, CLERK), now=now, accepted_at=sh(2026, 11, 20, 10))
    for at in (sh(2025, 11, 20, 9), sh(2026, 11, 5, 9)):  # a year; 11 working days
        with pytest.raises(InvalidInput, match="within 10 working days"):
            with db.transaction(seeded) as s:
                cases.start_case(s, service_code="FX-DIBAO", village_code=VILLAGE, applicant_name="符建英",
                                 actor=user(seeded, CLERK), now=now, accepted_at=at)
    with db.transaction(seeded) as s:
        r = cases.start_case(s, service_code="FX-DIBAO", village_code=VILLAGE, applicant_name="符建英",
                             actor=user(seeded, CLERK), now=now, accepted_at=sh(2026, 11, 6, 9))
    assert "case.backdated" in audit_actions(seeded, r.case_number)


def test_the_grace_window_is_configurable(seeded, manual_clock, monkeypatch):
    monkeypatch.setenv("YICUN_PAUSE_GRACE_WORKDAYS", "0")
    settings.get.cache_clear()
    try:
        manual_clock.set(sh(2026, 11, 2, 9))
        r = start(seeded, service="FX-DIBAO", now=manual_clock.now())
        manual_clock.set(sh(2026, 11, 3, 9))
        with pytest.raises(InvalidInput):
            pause(seeded, r.case_number, at=sh(2026, 11, 3, 8))
        monkeypatch.setenv("YICUN_PAUSE_GRACE_WORKDAYS", "99")
        settings.get.cache_clear()
        with pytest.raises(ValueError, match="between 0 and 5"):
            settings.get()
    finally:
        monkeypatch.delenv("YICUN_PAUSE_GRACE_WORKDAYS")
        settings.get.cache_clear()


# ---------------------------------------------------------------------------------------- class 6: the shell
def test_bad_command_line_input_gets_exit_codes_not_tracebacks(seeded, db_url, capsys):
    from engine.cli import main

    def run(*argv: str) -> tuple[int, str]:
        code = main(["--db", db_url, *argv])
        return code, capsys.readouterr().err

    base = ["case", "start", "--service", "FX-DIBAO", "--village", VILLAGE, "--applicant", "符建英", "--as", CLERK]
    for data in ("{not json", "[1, 2]", "[" * 100_000 + "]" * 100_000, json.dumps({"a": 1}) * 2):
        code, err = run(*base, "--data", data)
        assert code == 3 and "Traceback" not in err, (data[:20], err)
    for now in ("0001-01-01T00:00", "9999-12-31T23:59", "2026-13-01T00:00"):
        code, err = run("--now", now, "case", "list")
        assert code == 3 and "Traceback" not in err
    code, err = run("service-day", "run", "--date", "0001-01-10")
    assert code == 3
    with pytest.raises(SystemExit) as info:
        main(["--db", db_url, "case", "list", "--status", "bogus"])
    assert info.value.code == 2


def test_nul_bytes_are_refused_on_every_database(seeded):
    from engine import orgs
    with pytest.raises(InvalidInput, match="NUL"):
        with db.read(seeded) as s:
            orgs.user_by_name(s, "clerk\x00")
    with pytest.raises(InvalidInput):
        with db.transaction(seeded) as s:
            cases.withdraw_case(s, "YY-2026\x00", user(seeded, CLERK), "撤回")


def test_the_nul_guard_reads_every_shape_of_parameters(seeded):
    """Several rows of one table in one ORM flush go out as one batch whose parameters are a flat tuple on
    SQLite ("insertmanyvalues") although `executemany` is set: the guard must neither crash on them nor
    miss a NUL among them."""
    from engine.models import OrgUnit
    with db.transaction(seeded) as s:
        parent = s.scalar(select(OrgUnit).where(OrgUnit.level == "township"))
        top = s.scalar(select(func.max(OrgUnit.id)))
        # on PostgreSQL ids are given (the seed's explicit ids leave the sequence behind); on SQLite they are
        # not, which is what makes SQLAlchemy batch the rows into one flat parameter tuple
        given = (lambda n: {"id": top + n}) if seeded.dialect.name == "postgresql" else (lambda n: {})
        s.add_all([OrgUnit(**given(1 + i), code=f"9999990000{i}", name=f"新村{i}", level="village",
                           parent_id=parent.id,
                           path=f"{parent.path}9999990000{i}/") for i in range(3)])
    with db.read(seeded) as s:
        assert s.scalar(select(func.count()).select_from(OrgUnit).where(OrgUnit.code.like("9999990000%"))) == 3
    with pytest.raises(InvalidInput, match="NUL"):
        with db.transaction(seeded) as s:
            s.add_all([OrgUnit(**given(10 + i), code=f"9999991000{i}", name="坏\x00村" if i == 2 else "好村",
                               level="village", parent_id=parent.id, path=f"{parent.path}9999991000{i}/")
                       for i in range(3)])


def test_an_officer_of_another_department_neither_extends_nor_stops_the_clock(seeded):
    r = start(seeded, service="FX-DIBAO")  # approved by the county 民政 (candidate group of its approval)
    with pytest.raises(Forbidden, match="民政"):
        with db.transaction(seeded) as s:
            cases.extend_case(s, r.case_number, user(seeded, COUNTY_RS), 3, "材料复杂")
    with db.transaction(seeded) as s:
        cases.extend_case(s, r.case_number, user(seeded, COUNTY_MZ), 3, "材料复杂")


def _deploy_at_once(engine, files: list[bytes]) -> list:
    import threading

    barrier, results, errors = threading.Barrier(len(files)), [], []

    def deploy(data: bytes) -> None:
        barrier.wait()
        try:
            with db.transaction(engine) as s:
                results.extend(processes.deploy(s, data, "relay.bpmn"))
        except Exception as exc:  # noqa: BLE001 - the test reports whatever escaped
            errors.append(exc)

    threads = [threading.Thread(target=deploy, args=(f,)) for f in files]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    return results


def test_concurrent_deploys_have_one_winner_per_content(db_engine):
    """Several designers deploying at once: the same file gives one new version and "unchanged" for the
    rest; different files give consecutive versions — never a duplicate-key traceback."""
    relay = (FIXTURES / "relay.bpmn").read_bytes()
    results = _deploy_at_once(db_engine, [relay] * 4)
    assert sorted((r.created, r.version) for r in results) == [(False, 1)] * 3 + [(True, 1)]
    variants = [relay.replace(b"</bpmn:definitions>", f"<!-- v{i} --></bpmn:definitions>".encode())
                for i in range(3)]
    results = _deploy_at_once(db_engine, variants)
    assert sorted(r.version for r in results) == [2, 3, 4] and all(r.created for r in results)


@pytest.mark.parametrize("bad", ["sum", "workdays", "True", "_secret", "1abc", "a-b"])
def test_deploy_refuses_form_fields_named_like_the_language(bad):
    from engine.bpmn import compile_bpmn
    from engine.errors import BpmnRejected

    data = (FIXTURES / "dibao.bpmn").read_bytes().replace(b'formField id="remarks"', f'formField id="{bad}"'.encode())
    with pytest.raises(BpmnRejected) as info:
        compile_bpmn(data, "dibao.bpmn")
    assert any(bad in f.message and f.line for f in info.value.findings)


@pytest.mark.parametrize("boom", [RecursionError("deep"), MemoryError(), OverflowError("big"), AttributeError("x")])
def test_a_crashing_process_refuses_the_step_and_writes_nothing(seeded, monkeypatch, boom):
    """Whatever the run raises, the user gets a WorkflowError (exit 7 / HTTP 422), not a traceback."""
    from engine.bpmn import workflow
    from engine.errors import WorkflowError

    r, task, data = intake(seeded)
    before = snapshot(seeded)

    def crash(_wf, **_kw):
        raise boom
    monkeypatch.setattr(workflow, "run_until_waiting", crash)
    with pytest.raises(WorkflowError) as info:
        complete(seeded, task.id, CLERK, data)
    assert type(boom).__name__ in str(info.value)
    assert snapshot(seeded) == before


@pytest.mark.parametrize("began, ended, moved", [
    ((2026, 12, 2, 23, 59), (2026, 12, 3, 0, 0), 0),     # one minute across midnight: nothing
    ((2026, 12, 2, 9, 0), (2026, 12, 3, 8, 59), 0),      # 23 h 59 min
    ((2026, 12, 2, 9, 0), (2026, 12, 3, 9, 0), 1),       # a full day
    ((2026, 12, 2, 16, 0), (2026, 12, 4, 10, 0), 2),
])
def test_a_pause_shorter_than_a_day_moves_no_due(seeded, manual_clock, began, ended, moved):
    """Whole working days: a pause crossing midnight used to give a day back however short it was — a
    one-minute pause, repeated daily, kept the legal due from ever arriving."""
    from engine.workdays import default_calendar
    manual_clock.set(sh(2026, 12, 1, 9))
    r = start(seeded, service="FX-DIBAO", now=manual_clock.now())
    due = case_row(seeded, r.case_number).legal_due_at
    manual_clock.set(sh(*began))
    pause(seeded, r.case_number)
    manual_clock.set(sh(*ended))
    resume(seeded, r.case_number)
    after = case_row(seeded, r.case_number).legal_due_at
    cal = default_calendar()
    due_date = (due.astimezone(SHANGHAI) - timedelta(microseconds=1)).date()  # 24:00 is the end of that day
    assert after == (due if not moved else cal.add_workdays(due_date, moved).end_instant)


def test_the_manual_clock_needs_the_test_switch(db_url, monkeypatch, capsys):
    from engine.cli import main
    monkeypatch.delenv("YICUN_MANUAL_CLOCK")
    settings.get.cache_clear()
    for argv in (["--now", "2026-11-02T09:00", "case", "list"], ["timers", "sweep", "--now", "2027-01-01T00:00"]):
        assert main(["--db", db_url, *argv]) == 3
        assert "YICUN_MANUAL_CLOCK" in capsys.readouterr().err


def test_start_data_carries_only_the_intake_steps_fields(seeded):
    """A later step's field (even one no gateway reads) cannot ride in with the application: the reported
    variant put the township's decision in the start data and a script turned it into the approval."""
    with db.read(seeded) as s:
        spec = processes.load_spec(s, processes.latest_version(s, "FX-DIBAO").id)
    assert spec.first_steps == {"Task_VillageIntake"}
    for later in ({"township_opinion": "同意"}, {"county_opinion": "同意"}, {"monthly_allowance": 900}):
        with pytest.raises(InvalidInput):
            start(seeded, service="FX-DIBAO", data=later)


def test_names_read_by_scripts_are_decisions_too():
    """A script can turn a field into what a gateway reads (approved = township_decision == "approve"):
    every name the process's logic reads is a decision, not only those of gateway conditions."""
    from engine.bpmn import compile_bpmn, decision_names
    tick = compile_bpmn((FIXTURES / "loops" / "tick.bpmn").read_bytes(), "tick.bpmn").processes[0]
    names = decision_names(tick.spec, tick.subprocess_specs)
    assert "reminders" in names  # read by the script `reminders = reminders + 1`
    dibao = compile_bpmn((FIXTURES / "dibao.bpmn").read_bytes(), "dibao.bpmn").processes[0]
    assert {"township_decision", "county_decision"} <= decision_names(dibao.spec, dibao.subprocess_specs)


def test_numbers_the_database_cannot_hold_are_usage_errors(db_url, capsys):
    from engine.cli import main
    for argv in (["task", "show", "9223372036854775808"], ["incidents", "show", "2147483648"],
                 ["users", "list", "--limit", "-1"], ["task", "claim", "0", "--as", CLERK],
                 ["case", "list", "--limit", "99999999999999999999"]):
        with pytest.raises(SystemExit) as info:
            main(["--db", db_url, *argv])
        assert info.value.code == 2 and "must be" in capsys.readouterr().err


def test_a_timer_value_too_big_for_a_float_is_refused_with_its_element():
    import re as regex

    from engine.bpmn import compile_bpmn
    from engine.errors import BpmnRejected
    xml = (FIXTURES / "relay.bpmn").read_text(encoding="utf-8")
    bad = regex.sub(r"<bpmn:timeDuration([^>]*)>[^<]*</bpmn:timeDuration>",
                    r'<bpmn:timeDuration\1>"PT" + "1" * 999 + "S"</bpmn:timeDuration>', xml, count=1)
    with pytest.raises(BpmnRejected) as info:
        compile_bpmn(bad.encode(), "relay.bpmn")
    (finding,) = info.value.findings
    assert finding.element_id and finding.line


def test_an_element_with_too_many_attributes_is_refused_at_once():
    from engine.bpmn import compile_bpmn
    from engine.errors import BpmnRejected
    attrs = " ".join(f'a{i}=""' for i in range(100_000)).encode()
    xml = (FIXTURES / "relay.bpmn").read_bytes().replace(b'<bpmn:startEvent id="', b'<bpmn:startEvent ' + attrs + b' id="', 1)
    with pytest.raises(BpmnRejected, match="attributes"):
        compile_bpmn(xml, "relay.bpmn")


def _two_processes(first: str, second: str, mark: int) -> bytes:
    def process(pid: str) -> str:
        return (f'<bpmn:process id="{pid}" name="{pid}" isExecutable="true">'
                f'<bpmn:startEvent id="{pid}_s"/><bpmn:sequenceFlow id="{pid}_f1" sourceRef="{pid}_s" '
                f'targetRef="{pid}_t"/><bpmn:userTask id="{pid}_t" name="办理"/><bpmn:sequenceFlow id="{pid}_f2" '
                f'sourceRef="{pid}_t" targetRef="{pid}_e"/><bpmn:endEvent id="{pid}_e"/></bpmn:process>')
    return ('<?xml version="1.0" encoding="UTF-8"?><bpmn:definitions '
            'xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" id="d" targetNamespace="http://x">'
            f'{process(first)}{process(second)}<!-- {mark} --></bpmn:definitions>').encode()


def test_deploys_of_files_sharing_processes_in_any_order_do_not_deadlock(db_engine):
    """Files holding processes A and B in opposite orders, deployed at once: each deploy locks its
    process ids in one order (PostgreSQL reported a deadlock otherwise)."""
    for round_ in range(3):
        files = [_two_processes(*(("TEST-A", "TEST-B") if n % 2 else ("TEST-B", "TEST-A")), 10 * round_ + n)
                 for n in range(4)]
        results = _deploy_at_once(db_engine, files)
        assert len(results) == 8 and all(r.created for r in results)
