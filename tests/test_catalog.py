"""The whole catalogue: catalog.yaml checks clean, bpmn/ lints clean, and a generic simulator drives every
one of the 176 processes end to end on SQLite — happy path, rejection, 补正 with its timeout, and a
deadline path with a manual clock — each to its expected end state and audit trail."""
from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from engine import cases, catalog, clock, db, orgs, processes, timers
from engine.bpmn import conventions as lint
from engine.demo import eligible_worker, sample_form
from engine.models import AuditEvent, Card, Case, ProcessVersion, TaskRow, User

from .conftest import ROOT, SMALL_TREE, START

ITEMS = catalog.load(ROOT / "catalog.yaml") if (ROOT / "catalog.yaml").exists() else []
CODES = [i["code"] for i in ITEMS]
VILLAGE = "430902102201"


def test_catalog_checks_clean():
    assert catalog.check(ITEMS) == []
    assert len(ITEMS) == 176
    assert sum(i["accept_level"] == "village" for i in ITEMS) == 130
    assert sum(i["delegated_to_township"] for i in ITEMS) == 22


def test_catalog_check_names_code_and_field():
    broken = [dict(ITEMS[0], promised_limit_workdays=ITEMS[0]["legal_limit_workdays"] + 1,
                   name="事项001", bpmn="bpmn/x.bpmn")]
    errors = {(e.code, e.field) for e in catalog.check(broken, expected_total=None)}
    code = ITEMS[0]["code"]
    assert {(code, "promised_limit_workdays"), (code, "name"), (code, "bpmn")} <= errors


@pytest.mark.slow
def test_bpmn_folder_lints_clean():
    findings = lint.lint_tree(ROOT / "bpmn", ITEMS)
    assert [str(f) for f in findings if f.severity == "error"] == []


def test_lint_catches_missing_files_entries_lanes_and_deadlines(tmp_path):
    item = ITEMS[0]
    source = (ROOT / item["bpmn"]).read_text(encoding="utf-8")
    folder = tmp_path / "bpmn"
    folder.mkdir()
    (folder / "ZZ-99.bpmn").write_text(source.replace(f'"{item["code"]}"', '"ZZ-99"'), encoding="utf-8")
    broken = source.replace('<bpmn:lane id="county" name="县">', '<bpmn:lane id="province" name="省">') \
        .replace('bpmnElement="county"', 'bpmnElement="province"')
    # the intake's deadline timer moved onto the 补正 task: the intake is left without a deadline
    broken = broken.replace('attachedToRef="Task_VillageIntake"', 'attachedToRef="Task_Supplement"')
    (folder / f"{item['code']}.bpmn").write_text(broken, encoding="utf-8")
    messages = [f.message for f in lint.lint_tree(folder, ITEMS[:2]) if f.severity == "error"]
    text = "\n".join(messages)
    assert f"{ITEMS[1]['code']}" in text and "has no BPMN file" in text       # entry without a file
    assert "no catalogue entry" in text                                         # file without an entry
    assert "lane 'province' does not exist" in text                            # a lane that does not exist
    assert "no deadline" in text                                                # a user task without deadline


# ------------------------------------------------------------------------------------------ simulator
@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """One SQLite database with the small Yiyang tree and every catalogue process deployed."""
    engine = db.make_engine(f"sqlite:///{tmp_path_factory.mktemp('catalog') / 'yicun.db'}")
    db.migrate(engine)
    with clock.using(clock.ManualClock(START)):
        with db.transaction(engine) as s:
            orgs.seed_org_tree(s, SMALL_TREE)
            orgs.seed_staff(s, SMALL_TREE)
        for code in CODES:
            with db.transaction(engine) as s:
                processes.deploy(s, (ROOT / "bpmn" / f"{code}.bpmn").read_bytes(), f"{code}.bpmn")
    yield engine
    engine.dispose()


def _starter(s: Any, item: dict[str, Any]) -> User:
    level = item["accept_level"]
    if level == "village":
        return orgs.list_users(s, "clerk", VILLAGE, limit=1)[0]
    if level == "township":
        return orgs.list_users(s, "agent", "430902102", limit=1)[0]
    dept = orgs.DEPARTMENTS.get(item["department"])
    return orgs.user_by_name(s, f"officer-430902-{dept}") if dept else orgs.list_users(s, "county_officer", "430902")[0]


def start_item(engine: Any, item: dict[str, Any], now: Any) -> str:
    """Accept an application for `item` at the test village, by whoever takes it there."""
    with db.transaction(engine) as s:
        return cases.start_case(s, service_code=item["code"], village_code=VILLAGE, applicant_name="符建英",
                                actor=_starter(s, item), now=now).case_number


def _open(s: Any, number: str) -> list[TaskRow]:
    return list(s.scalars(select(TaskRow).join(Case).where(Case.number == number, TaskRow.state == "ready")
                          .order_by(TaskRow.id)))


def run_case(engine: Any, item: dict[str, Any], plan: dict[str, Any], now: Any,
             number: str | None = None) -> tuple[Case, list[str]]:
    """Start a case (or take `number`) and complete tasks by `plan` until it closes: `reject_at` = the
    n-th decision to refuse, `incomplete_once` = first intake without documents, `stop_at_supplement` =
    leave 补正 open."""
    number = number or start_item(engine, item, now)
    decisions, intakes, done = 0, 0, []
    for _ in range(40):
        with db.read(engine) as s:
            waiting = not _open(s, number) and s.scalar(select(Case.status).where(Case.number == number)) == "open"
        if waiting:  # a 公示 wait: let its calendar days pass
            now += timedelta(days=item["publicity_days"], hours=1)
            timers.sweep(engine, now)
        with db.transaction(engine) as s:
            open_tasks = _open(s, number)
            if not open_tasks:
                break
            task = open_tasks[0]
            if task.bpmn_id == "Task_Supplement" and plan.get("stop_at_supplement"):
                break
            meta = s.scalar(select(ProcessVersion.task_meta).join(Case).where(Case.number == number))
            fields = meta[task.bpmn_id]["fields"]
            decision = "approve"
            if any(f["id"].endswith("_decision") for f in fields):
                decisions += 1
                if plan.get("reject_at") == decisions:
                    decision = "reject"
            form = sample_form(fields, decision)
            if "documents_complete" in form:
                intakes += 1
                form["documents_complete"] = not (plan.get("incomplete_once") and intakes == 1)
            cases.complete_task(s, task.id, eligible_worker(s, task), form, now=now)
            done.append(task.bpmn_id)
        now += timedelta(hours=1)
    with db.read(engine) as s:
        return s.scalar(select(Case).where(Case.number == number)), done


def actions(engine: Any, case: Case) -> list[str]:
    with db.read(engine) as s:
        return list(s.scalars(select(AuditEvent.action).where(AuditEvent.case_id == case.id).order_by(AuditEvent.id)))


@pytest.mark.slow
@pytest.mark.parametrize("code", CODES)
def test_simulate_every_process(world, code):
    item = next(i for i in ITEMS if i["code"] == code)
    start = clock.to_utc(START)
    n_stages = len(item["stages"])

    # happy path: every stage once, to 办结
    case, done = run_case(world, item, {}, start)
    assert (case.status, case.outcome) == ("completed", "办结"), done
    assert len(done) == n_stages
    trail = actions(world, case)
    assert trail[0] == "case.started" and trail[-1] == "case.closed"
    assert trail.count("task.completed") == n_stages

    # rejection at the first decision: told to the applicant, closed as rejected
    case, done = run_case(world, item, {"reject_at": 1}, start)
    assert (case.status, case.outcome) == ("rejected", "不予办理")
    assert done[-1] == "Task_VillageNotifyReject"

    # 补正: documents incomplete → supplement → intake again → … → 办结
    case, done = run_case(world, item, {"incomplete_once": True}, start)
    assert case.status == "completed" and done[:3] == [done[0], "Task_Supplement", done[0]]

    # 补正 not supplied in time: the interrupting timeout closes the case as withdrawn
    case, done = run_case(world, item, {"incomplete_once": True, "stop_at_supplement": True}, start)
    assert case.status == "open"
    timers.sweep(world, start + timedelta(days=item["supplement_days"], hours=2))
    with db.read(world) as s:
        case = s.get(Case, case.id)
    assert (case.status, case.outcome) == ("withdrawn", "逾期未补正，视为撤回")

    # deadline path: the intake lies untouched past its step limit → its warning timer fires and
    # yellow and red cards are issued; then the case still runs to its end, the cards resolved
    number = start_item(world, item, start)
    with db.read(world) as s:
        case_id = s.scalar(select(Case.id).where(Case.number == number))
    late = start + timedelta(days=30)
    report = timers.sweep(world, late)
    with db.read(world) as s:
        colours = {c.color for c in s.scalars(select(Card).where(Card.case_id == case_id, Card.task_id.is_not(None)))}
        fired = s.scalar(select(AuditEvent.id).where(AuditEvent.case_id == case_id, AuditEvent.action == "timer.fired"))
    assert colours == {"yellow", "red"} and fired is not None and report.cards >= 2
    case, done = run_case(world, item, {}, late + timedelta(hours=1), number)
    assert (case.status, case.outcome) == ("completed", "办结") and len(done) == n_stages
    trail = actions(world, case)
    assert {"card.yellow", "card.red", "timer.fired"} <= set(trail) and trail[-1] == "case.closed"
    with db.read(world) as s:
        assert all(c.resolved_at for c in s.scalars(select(Card).where(Card.case_id == case_id)))


def test_same_day_items_are_due_at_the_end_of_the_acceptance_day(world):
    """即办 (CW-02 水电费/话费代缴, promised 0 working days, DOMAIN §2): due 24:00 the same day."""
    item = next(i for i in ITEMS if i["code"] == "CW-02")
    assert item["promised_limit_workdays"] == 0
    accepted = clock.to_utc("2026-11-03T10:00:00+08:00")
    number = start_item(world, item, accepted)
    with db.read(world) as s:
        case = s.scalar(select(Case).where(Case.number == number))
        (task,) = _open(s, number)
    end_of_day = clock.to_utc("2026-11-04T00:00:00+08:00")
    assert case.promised_due_at == end_of_day and task.due_at == end_of_day


def test_supplement_stops_the_clock_until_the_documents_come_in(world):
    """补正: from the moment the applicant is told what is missing until the documents arrive, the case's
    clock stands still (automatically: the 补正 step carries pausesClock=supplement); the applicant's own
    补正 deadline keeps running."""
    from engine.models import Pause, TimerRow
    item = next(i for i in ITEMS if i["code"] == "MZ-01")  # legal 25, promised 20 working days
    t0 = clock.to_utc("2026-11-02T09:00:00+08:00")
    number = start_item(world, item, t0)
    with db.read(world) as s:
        before = s.scalar(select(Case).where(Case.number == number))
        (intake,) = _open(s, number)
        meta = s.scalar(select(ProcessVersion.task_meta).join(Case).where(Case.number == number))
    form = sample_form(meta[intake.bpmn_id]["fields"])
    form["documents_complete"] = False
    with db.transaction(world) as s:
        cases.complete_task(s, intake.id, eligible_worker(s, intake), form, now=t0 + timedelta(hours=1))
    with db.read(world) as s:
        case = s.get(Case, before.id)
        timers_now = {t.bpmn_id: t.state for t in s.scalars(select(TimerRow).where(TimerRow.case_id == case.id))}
        (supplement,) = _open(s, number)
    assert case.paused_at == t0 + timedelta(hours=1)
    assert timers_now["Timer_Supplement_Withdraw"] == "armed"  # the applicant's deadline runs on
    friday = clock.to_utc("2026-11-06T15:00:00+08:00")
    with db.transaction(world) as s:
        cases.complete_task(s, supplement.id, eligible_worker(s, supplement),
                            sample_form(meta["Task_Supplement"]["fields"]), now=friday)
    with db.read(world) as s:
        case = s.get(Case, before.id)
        pause = s.scalar(select(Pause).where(Pause.case_id == case.id))
    assert case.paused_at is None and (pause.kind, pause.ended_at) == ("supplement", friday)
    # 11-03 … 11-06 did not count: both dues are 4 working days later
    assert before.legal_due_at == clock.to_utc("2026-12-08T00:00:00+08:00")  # 24:00 Mon 12-07
    assert case.legal_due_at == clock.to_utc("2026-12-12T00:00:00+08:00")  # 24:00 Fri 12-11
