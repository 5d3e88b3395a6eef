"""Costs that must not grow with the database (issue 7 §7), as behaviour: what leaves the live set leaves
the sweep and inbox indexes; inboxes and lists read only what they show; closed cases are compacted and
still show everything. The figures themselves are in benchmarks/scale.py."""
from __future__ import annotations

import json
from datetime import timedelta

import pytest
from sqlalchemy import and_, event, or_, select, text

from engine import bpmn, cases, cli, db, orgs, processes, queries, timers
from engine.errors import Conflict
from engine.models import Card, Case, TaskRow, User
from web import create_app

from .conftest import (
    AGENT,
    AGENT2,
    CLERK,
    COUNTY_MZ,
    COUNTY_RS,
    OTHER_CLERK,
    TOWNSHIP,
    complete,
    form_for,
    ready_tasks,
    start,
    user,
    worker_for,
)

HEAVY = ("spec_json", "bpmn_xml", "instance_json")


def _row(engine, model, **where):
    with db.read(engine) as s:
        return s.scalars(select(model).filter_by(**where)).all()


def _case(engine, number):
    with db.read(engine) as s:
        return s.scalar(select(Case).where(Case.number == number))


def _drive(engine, number, decision="approve"):
    for _ in range(20):
        tasks = ready_tasks(engine, number)
        if not tasks:
            return
        t = tasks[0]
        who = worker_for(engine, t) if t.assignee_id is None else _username(engine, t.assignee_id)
        complete(engine, t.id, who, form_for(engine, t, decision))
    raise AssertionError("the case did not finish")


def _username(engine, uid):
    with db.read(engine) as s:
        return s.get(User, uid).username


def _to_review(engine):
    r = start(engine)
    (intake,) = ready_tasks(engine, r.case_number)
    complete(engine, intake.id, CLERK, {"documents_complete": True, "household_size": 3})
    (review,) = ready_tasks(engine, r.case_number)
    return r.case_number, review


# ------------------------------------------------------------------------------------------ warning checks
def test_completed_task_leaves_the_warning_index(seeded):
    number, review = _to_review(seeded)
    assert review.warning_check_at is not None  # the review has a PT72H deadline: it will be checked
    complete(seeded, review.id, AGENT, {"township_decision": "approve"})
    done = _row(seeded, TaskRow, id=review.id)[0]
    assert done.state == "completed" and done.warning_check_at is None
    (approve,) = ready_tasks(seeded, number)
    assert approve.warning_check_at is not None  # the next step (P3D warning timer) is checked instead


def test_task_cancelled_by_a_timer_leaves_the_warning_index(seeded, manual_clock):
    number, review = _to_review(seeded)
    timers.sweep(seeded, manual_clock.now() + timedelta(hours=73))  # PT72H interrupting: review cancelled
    cancelled = _row(seeded, TaskRow, id=review.id)[0]
    assert cancelled.state == "cancelled" and cancelled.warning_check_at is None
    (head,) = ready_tasks(seeded, number)
    assert head.bpmn_id == "Task_HeadReview"


def test_withdrawn_case_and_its_tasks_leave_the_warning_indexes(seeded):
    number, review = _to_review(seeded)
    with db.transaction(seeded) as s:
        cases.withdraw_case(s, number, user(seeded, CLERK), "申请人撤回")
    case = _case(seeded, number)
    assert case.status == "withdrawn" and case.warning_check_at is None
    assert [(t.state, t.warning_check_at) for t in _row(seeded, TaskRow, case_id=case.id)] == [
        ("completed", None), ("cancelled", None)]


@pytest.mark.parametrize("decision, outcome", [("approve", "办结"), ("reject", "不予办理")])
def test_closed_case_leaves_the_warning_indexes(seeded, decision, outcome):
    r = start(seeded, service="FX-DIBAO")
    assert _case(seeded, r.case_number).warning_check_at is not None
    _drive(seeded, r.case_number, decision)
    case = _case(seeded, r.case_number)
    assert case.status != "open" and case.outcome == outcome and case.warning_check_at is None
    assert all(t.warning_check_at is None for t in _row(seeded, TaskRow, case_id=case.id))


def test_warning_sweep_still_cards_open_steps(seeded, manual_clock):
    number, review = _to_review(seeded)
    report = timers.sweep(seeded, manual_clock.now() + timedelta(hours=50))  # inside the review's last day
    assert report.cards >= 1
    with db.read(seeded) as s:
        cards = s.execute(select(Card.subject, Card.color).join(Case).where(Case.number == number)).all()
        task = s.get(TaskRow, review.id)
    assert (f"task:{review.id}", "yellow") in cards
    assert task.state == "ready" and task.warning_level == "yellow" and task.warning_check_at == task.due_at


def test_sweep_and_warning_lookups_skip_finished_rows(seeded, manual_clock):
    """Rows that left the live set are not candidates any more, however their columns look."""
    number, review = _to_review(seeded)
    complete(seeded, review.id, AGENT, {"township_decision": "approve"})
    later = manual_clock.now() + timedelta(days=30)
    with db.transaction(seeded) as s:
        found = cases.next_case_to_check(s, later, set())
    assert found == _case(seeded, number).id  # the open approval step is due for a check
    with db.transaction(seeded) as s:
        cases.withdraw_case(s, number, user(seeded, CLERK), "申请人撤回")
    with db.transaction(seeded) as s:
        assert cases.next_case_to_check(s, later, set()) is None
        assert cases.next_due_case(s, later, set()) is None


# ------------------------------------------------------------------------------------------ the migration
def test_migration_clears_finished_checks_and_compacts_closed_cases(db_url, seeded_at_0002):
    engine = seeded_at_0002
    db.migrate(engine)
    with engine.connect() as conn:
        tasks = dict(conn.execute(text("SELECT id, warning_check_at FROM tasks")).all())
        cases_ = {r.id: r for r in conn.execute(text("SELECT id, warning_check_at, instance_json FROM cases"))}
        indexes = _index_names(conn, engine)
    assert tasks[1] is not None and tasks[2] is None and tasks[3] is None  # ready kept; completed/cancelled cleared
    assert cases_[1].warning_check_at is not None and cases_[2].warning_check_at is None
    assert cases_[1].instance_json == FULL_INSTANCE  # an open case keeps its workflow
    small = json.loads(cases_[2].instance_json)
    assert small["compacted"] == {"tasks": 3, "bytes": len(FULL_INSTANCE)} and list(small["tasks"]) == [ROOT]
    assert small["data"] == {"outcome": "x"} and small["tasks"][ROOT]["children"] == []
    assert {"ix_tasks_ready_queue", "ix_tasks_ready_claimed", "ix_tasks_ready_warning_check",
            "ix_cases_open_warning_check", "ix_cases_open_village", "ix_cases_open_township", "ix_cases_open_county",
            "ix_timers_armed_due"} <= indexes
    assert not {"ix_tasks_inbox", "ix_tasks_warning_check_at", "ix_cases_warning_check_at", "ix_timers_due"} & indexes
    db.migrate(engine)  # idempotent: running it again changes nothing
    with engine.connect() as conn:
        assert conn.execute(text("SELECT instance_json FROM cases WHERE id = 2")).scalar_one() == cases_[2].instance_json


def test_migration_downgrade_restores_the_full_indexes(db_url, seeded_at_0002):
    engine = seeded_at_0002
    db.migrate(engine)
    from pathlib import Path

    from alembic import command
    from alembic.config import Config
    cfg = Config()
    cfg.set_main_option("script_location", str(Path(db.__file__).parent / "migrations"))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0002")
    with engine.connect() as conn:
        indexes = _index_names(conn, engine)
    assert {"ix_tasks_inbox", "ix_tasks_warning_check_at", "ix_cases_warning_check_at", "ix_timers_due"} <= indexes
    assert not {"ix_tasks_ready_queue", "ix_timers_armed_due"} & indexes


ROOT = "9e191798-c910-4ef7-a447-9fffa9eee9bd"
FULL_INSTANCE = json.dumps({
    "data": {"outcome": "x"}, "correlations": {}, "last_task": "b", "success": True, "completed": True,
    "tasks": {ROOT: {"id": ROOT, "parent": None, "children": ["b"], "state": 64, "task_spec": "Start",
                     "data": {}, "delta": {}, "internal_data": {}, "triggered": False, "last_state_change": 1.0,
                     "typename": "Task"},
              "b": {"id": "b", "parent": ROOT, "children": ["c"], "state": 64}, "c": {"id": "c", "parent": "b"}},
    "root": ROOT, "subprocesses": {}, "bpmn_events": [], "typename": "SafeBpmnWorkflow", "serializer_version": "1.5"})


@pytest.fixture
def seeded_at_0002(db_url):
    """Rows as 0002 left them: warning checks on finished tasks and a closed case, a full closed workflow."""
    engine = db.make_engine(db_url)
    db.migrate(engine, "0002")
    at = "'2026-11-01 00:00:00'"
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO org_units (id, code, name, level, parent_id, path) "
                          "VALUES (1, '4309', '益阳市', 'city', NULL, '/4309/')"))
        conn.execute(text("INSERT INTO process_versions (id, process_id, version, name, filename, bpmn_xml, sha256, "
                          f"task_meta, findings, executable, deployed_at) VALUES (1, 'MZ-01', 1, 'x', 'x.bpmn', "
                          f"'<x/>', 'abc', '{{}}', '[]', true, {at})"))
        for cid, status in ((1, "open"), (2, "completed")):
            conn.execute(text("INSERT INTO cases (id, number, service_code, process_version_id, village_id, "
                              "township_id, county_id, applicant_name, status, instance_json, serializer_version, "
                              f"version, created_at, updated_at, warning_check_at) VALUES ({cid}, 'YY-2026-00000{cid}', "
                              f"'MZ-01', 1, 1, 1, 1, '符建英', '{status}', :j, '1.5', 3, {at}, {at}, {at})"),
                         {"j": FULL_INSTANCE})
        for tid, cid, state in ((1, 1, "ready"), (2, 1, "completed"), (3, 2, "cancelled")):
            conn.execute(text("INSERT INTO tasks (id, case_id, spiff_task_id, bpmn_id, name, unit_id, state, "
                              f"created_at, warning_check_at) VALUES ({tid}, {cid}, 's{tid}', 'T', 'T', 1, "
                              f"'{state}', {at}, {at})"))
    yield engine
    engine.dispose()


def _index_names(conn, engine):
    if engine.dialect.name == "sqlite":
        return {r[0] for r in conn.exec_driver_sql("SELECT name FROM sqlite_master WHERE type = 'index'")}
    return {r[0] for r in conn.exec_driver_sql("SELECT indexname FROM pg_indexes WHERE schemaname = current_schema()")}


# ------------------------------------------------------------------------------------------ inboxes
def _reference_inbox(s, u):
    """The inbox as one condition, as it was before the split (the reference for the same answer)."""
    mine = TaskRow.assignee_id == u.id
    if u.role in ("supervisor", "designer", "admin"):
        cond = and_(TaskRow.state == "ready", mine)
    else:
        queue = and_(TaskRow.unit_id == u.unit_id, or_(TaskRow.assignee_id.is_(None), mine))
        if u.role == "county_officer":
            queue = and_(queue, or_(TaskRow.candidate_group.is_(None), TaskRow.candidate_group == u.department))
        cond = and_(TaskRow.state == "ready", or_(queue, mine))
    return list(s.scalars(select(TaskRow.id).where(cond).order_by(TaskRow.due_at.is_(None), TaskRow.due_at,
                                                                   TaskRow.id)))


@pytest.fixture
def busy(seeded):
    """Tasks at every level: township reviews unclaimed / claimed by AGENT / by AGENT2, county approvals of
    民政 (FX-DIBAO, relay) and 人社 (FX-PENSION), village intakes, one closed case."""
    for service in ("TEST-RELAY", "FX-DIBAO", "FX-PENSION"):
        for _ in range(3):
            r = start(seeded, service=service)
            for _step in range({"TEST-RELAY": 2, "FX-DIBAO": 3, "FX-PENSION": 2}[service]):  # up to the county
                tasks = ready_tasks(seeded, r.case_number)
                t = tasks[0]
                who = worker_for(seeded, t) if t.assignee_id is None else _username(seeded, t.assignee_id)
                complete(seeded, t.id, who, form_for(seeded, t))
    for _ in range(3):
        number, review = _to_review(seeded)
    reviews = [t for t in _row(seeded, TaskRow, state="ready") if t.bpmn_id == "Task_Review"]
    with db.transaction(seeded) as s:
        cases.claim_task(s, reviews[0].id, user(seeded, AGENT))
    with db.transaction(seeded) as s:
        cases.claim_task(s, reviews[1].id, user(seeded, AGENT2))
    start(seeded, actor=OTHER_CLERK, village="430921101201")
    r = start(seeded, service="FX-DIBAO")
    _drive(seeded, r.case_number)
    return seeded, reviews


@pytest.mark.parametrize("username", [AGENT, AGENT2, TOWNSHIP, COUNTY_MZ, COUNTY_RS, CLERK, OTHER_CLERK,
                                      "supervisor", "admin"])
def test_inbox_split_returns_what_the_single_query_did(busy, username):
    engine, _ = busy
    with db.read(engine) as s:
        u = orgs.user_by_name(s, username)
        expected = _reference_inbox(s, u)
        got = [t.id for t in queries.list_tasks(s, u)]
        limited = [t.id for t in queries.list_tasks(s, u, limit=2)]
    assert got == expected
    assert limited == expected[:2]


def test_inbox_queue_claimed_and_departments(busy):
    engine, (mine, colleagues, free) = busy
    with db.read(engine) as s:
        agent = [t.id for t in queries.list_tasks(s, orgs.user_by_name(s, AGENT))]
        mz = queries.list_tasks(s, orgs.user_by_name(s, COUNTY_MZ)).items
        rs = queries.list_tasks(s, orgs.user_by_name(s, COUNTY_RS)).items
    assert mine.id in agent and free.id in agent and colleagues.id not in agent  # a colleague's claim is theirs
    assert mz and {t.candidate_group for t in mz} <= {"民政", None}
    assert rs and {t.candidate_group for t in rs} <= {"人社", None}
    assert {t.state for t in mz + rs} == {"ready"}
    assert set(mz[0].to_json()) >= {"id", "case_number", "service_code", "applicant_name", "unit", "assignee",
                                    "due_at", "warning_level"}  # the shape the web and the CLI print


# ------------------------------------------------------------------------------------------ lists read little
@pytest.fixture
def statements(seeded):
    seen: list[str] = []

    def record(_conn, _cursor, statement, *_args):
        seen.append(statement)
    event.listen(seeded, "before_cursor_execute", record)
    yield seen
    event.remove(seeded, "before_cursor_execute", record)


def _heavy(seen):
    return [st for st in seen if any(h in st for h in HEAVY)]


def test_web_pages_and_lists_read_no_specs_or_workflow_state(seeded):
    r = start(seeded, service="FX-DIBAO")
    closed = start(seeded, service="FX-PENSION")
    _drive(seeded, closed.case_number)
    app = create_app({"DATABASE_URL": seeded.url.render_as_string(hide_password=False), "TESTING": True,
                      "SECRET_KEY": "test"})
    seen: list[str] = []
    event.listen(app.extensions["yicun_engine"], "before_cursor_execute", lambda _c, _k, st, *_a: seen.append(st))
    client = app.test_client()
    for username in (CLERK, COUNTY_MZ, "admin"):
        with client.session_transaction() as sess:
            sess["uid"], sess["stamp"] = user(seeded, username).id, orgs.credential_stamp(user(seeded, username))
        for path in ("/", "/processes", "/api/processes", "/api/cases", f"/cases/{r.case_number}",
                     f"/cases/{closed.case_number}"):
            resp = client.get(path)
            assert resp.status_code in (200, 404), path
    assert seen and _heavy(seen) == []
    with client.session_transaction() as sess:
        sess["uid"], sess["stamp"] = user(seeded, "admin").id, orgs.credential_stamp(user(seeded, "admin"))
    home = client.get("/").get_data(as_text=True)
    assert "已部署流程" in home and '<span class="count">4</span>' in home  # relay + 3 FX processes, counted


def test_engine_lists_read_no_specs_or_workflow_state(seeded, statements):
    r = start(seeded, service="FX-DIBAO")
    statements.clear()
    with db.read(seeded) as s:
        u = orgs.user_by_name(s, CLERK)
        versions = processes.list_versions(s, latest_only=False)
        rows = queries.process_items(versions)
        queries.list_cases(s, u, None)
        queries.list_tasks(s, u)
        queries.list_tasks(s, u, r.case_number, state=None)
        queries.case_detail(s, r.case_number, u)
        queries.task_detail(s, ready_tasks(seeded, r.case_number)[0].id, u)
        assert processes.count_processes(s) == 4
        assert not {"spec_json", "bpmn_xml", "task_meta"} & set(versions[0]._fields)  # a list has no way to
    assert {row.process_id for row in rows} == {"TEST-RELAY", "FX-DIBAO", "FX-PENSION", "FX-HOMESTEAD"}
    assert {row.process_id: row.user_tasks for row in rows if row.version == 1} == {
        "TEST-RELAY": 5, "FX-DIBAO": 6, "FX-PENSION": 5, "FX-HOMESTEAD": 5}
    assert statements and _heavy(statements) == []


# ------------------------------------------------------------------------------------------ closed cases
def test_closed_case_is_compacted_and_still_shows_everything(seeded, capsys):
    r = start(seeded, service="FX-DIBAO")
    with db.read(seeded) as s:
        open_size = len(s.scalar(select(Case.instance_json).where(Case.number == r.case_number)))
    _drive(seeded, r.case_number)
    case = _case(seeded, r.case_number)
    small = json.loads(case.instance_json)
    assert case.status == "completed" and small["compacted"]["tasks"] > 10 and list(small["tasks"]) == [small["root"]]
    assert len(case.instance_json) < open_size / 2 < small["compacted"]["bytes"]
    with db.read(seeded) as s:
        detail = queries.case_detail(s, r.case_number, orgs.user_by_name(s, CLERK))
    assert detail.status == "completed" and detail.outcome == "办结"
    assert [t.state for t in detail.tasks] == ["completed"] * len(detail.tasks) and len(detail.tasks) >= 3
    assert [e.action for e in detail.audit].count("task.completed") == len(detail.tasks)
    assert detail.audit[-1].action == "case.closed" and detail.timers
    assert cli.main(["--db", seeded.url.render_as_string(hide_password=False), "case", "show", r.case_number]) == 0
    shown = capsys.readouterr().out
    assert "办结" in shown and all(t.name in shown for t in detail.tasks)


def test_a_compacted_case_restores_as_finished_and_every_service_refuses_it(seeded):
    r = start(seeded)
    _drive(seeded, r.case_number)
    case = _case(seeded, r.case_number)
    with db.read(seeded) as s:
        spec = processes.load_spec(s, case.process_version_id)
    wf = bpmn.load_instance(case.instance_json, spec.spec, spec.subprocess_specs)
    assert wf.is_completed() and bpmn.ready_user_tasks(wf) == [] and bpmn.armed_timers(wf) == {}
    clerk, mz = user(seeded, CLERK), user(seeded, COUNTY_MZ)
    refusals = [
        lambda s: cases.withdraw_case(s, r.case_number, clerk, "撤回"),
        lambda s: cases.pause_case(s, r.case_number, clerk, "补正"),
        lambda s: cases.resume_case(s, r.case_number, clerk),
        lambda s: cases.extend_case(s, r.case_number, mz, 2, "延期"),
    ]
    for act in refusals:
        with pytest.raises(Conflict), db.transaction(seeded) as s:
            act(s)
    task = _row(seeded, TaskRow, case_id=case.id)[-1]
    for act in (lambda s: cases.complete_task(s, task.id, clerk, {}), lambda s: cases.claim_task(s, task.id, clerk)):
        with pytest.raises(Conflict), db.transaction(seeded) as s:
            act(s)
    with db.transaction(seeded) as s:
        assert cases.fire_timers(s, case.id, case.updated_at + timedelta(days=400)) == 0
    assert _case(seeded, r.case_number).instance_json == case.instance_json


# ------------------------------------------------------------------------------------------ index use
def test_sqlite_plans_use_the_partial_indexes(seeded, db_kind):
    """The queries repeat the indexes' predicates as literals, so the planner can use them (on PostgreSQL
    the plans at 1M cases are printed by `benchmarks/scale.py --explain`)."""
    if db_kind != "sqlite":
        pytest.skip("SQLite's plan; PostgreSQL's depends on statistics (see benchmarks/scale.py --explain)")
    number, _review = _to_review(seeded)
    plans: list[str] = []

    def explain(conn, _cursor, statement, parameters, _context, _many):
        if statement.lstrip().upper().startswith("SELECT") and any(f"FROM {t}" in statement
                                                                   for t in ("tasks", "timers", "cases")):
            rows = conn.connection.driver_connection.execute("EXPLAIN QUERY PLAN " + statement, parameters)
            plans.append(" ".join(str(r[-1]) for r in rows))
    event.listen(seeded, "before_cursor_execute", explain)
    try:
        with db.read(seeded) as s:
            queries.list_tasks(s, orgs.user_by_name(s, AGENT))
            queries.list_tasks(s, orgs.user_by_name(s, COUNTY_MZ))
            queries.list_cases(s, orgs.user_by_name(s, AGENT))
            queries.count_open_cases(s, orgs.user_by_name(s, CLERK))
        with db.transaction(seeded) as s:
            cases.next_case_to_check(s, _case(seeded, number).created_at, set())
            cases.next_due_case(s, _case(seeded, number).created_at, set())
    finally:
        event.remove(seeded, "before_cursor_execute", explain)
    joined = "\n".join(plans)
    for index in ("ix_tasks_ready_queue", "ix_tasks_ready_claimed", "ix_timers_armed_due", "ix_cases_open_township",
                  "ix_cases_open_village"):
        assert index in joined, joined
    # the warning lookup: SQLite without statistics starts from the open cases (ix_cases_status) — also
    # bounded by the live rows; either way no full index over all tasks is left to walk
    assert "SCAN tasks" not in joined and "SCAN timers" not in joined, joined
