"""The read side (engine.queries): typed read models holding datetimes, keyset pages that walk every row
once even when due instants tie, refused cursors, the form data of each step on the case page, access
by the org tree, and the one rendering of a deadline as 24:00."""
from __future__ import annotations

import base64
import dataclasses
import json
from datetime import UTC, datetime, timedelta

import pytest

from engine import cases, clock, db, orgs, queries, timers
from engine.errors import InvalidInput, NotFound
from engine.policy import Actor
from engine.queries.pages import MAX_CURSOR, case_cursor
from web import api

from .conftest import AGENT, AGENT2, CLERK, OTHER_CLERK, TOWNSHIP, complete, ready_tasks, start, user
from .webtools import login


def sh(text: str) -> datetime:
    return clock.to_utc(text)


def _relay_to_review(engine, data=None):
    """A TEST-RELAY case accepted with `data`, its village intake completed by the clerk: at the review."""
    r = start(engine, data=data)
    (intake,) = ready_tasks(engine, r.case_number)
    complete(engine, intake.id, CLERK, {"documents_complete": True})
    return r.case_number


def _walk(fetch, limit):
    """Every page of a list, first to last, as (ids of each page)."""
    pages, cursor = [], None
    for _ in range(100):
        page = fetch(limit, cursor)
        pages.append([item.id if hasattr(item, "id") else item.number for item in page])
        if page.next_cursor is None:
            return pages
        cursor = page.next_cursor
    raise AssertionError("the walk did not end")


def _due_order(tasks):
    return [t.id for t in sorted(tasks, key=lambda t: (t.due_at is None, t.due_at, t.id))]


# ------------------------------------------------------------------------------------------ read models
def test_read_models_hold_aware_datetimes_and_the_json_keeps_its_format(seeded):
    r = start(seeded, service="FX-DIBAO")  # Mon 11-02 09:00; the intake step: 5 working days → 24:00 11-09
    with db.read(seeded) as s:
        clerk = orgs.actor_by_name(s, CLERK)
        (task,) = queries.list_tasks(s, clerk).items
        (summary,) = queries.list_cases(s, clerk).items
        detail = queries.case_detail(s, r.case_number, clerk)
        form = queries.task_detail(s, task.id, clerk)
        (version,) = [v for v in queries.process_items(_versions(s)) if v.process_id == "FX-DIBAO"]
    assert isinstance(task, queries.TaskItem) and dataclasses.is_dataclass(task)
    with pytest.raises(dataclasses.FrozenInstanceError):
        task.name = "改"
    for instant in (task.created_at, task.due_at, summary.created_at, summary.updated_at, detail.accepted_at,
                    detail.sla.promised_due_at, detail.sla.legal_due_at, detail.audit[0].at, detail.steps[0].at,
                    form.due_at, version.deployed_at):
        assert isinstance(instant, datetime) and instant.utcoffset() == timedelta(0)
    assert task.due_at == sh("2026-11-10T00:00:00+08:00") and task.case_number == r.case_number
    assert detail.sla.legal_due_at is not None and detail.sla.legal_due_at >= detail.sla.promised_due_at > task.due_at
    # the JSON is what the API and the CLI have always printed: Asia/Shanghai ISO 8601 to the second
    shown = task.to_json()
    assert shown["due_at"] == "2026-11-10T00:00:00+08:00" and shown["created_at"] == "2026-11-02T09:00:00+08:00"
    assert list(shown) == ["id", "case_id", "bpmn_id", "name", "lane", "level", "unit_id", "unit", "candidate_group",
                           "assignee", "assignee_display_name", "state", "created_at", "completed_at", "due_at",
                           "limit_workdays", "warning_level", "case_number", "service_code", "service_name",
                           "applicant_name"]
    assert shown["service_name"] == "最低生活保障申请"  # the inbox names the item, not only its code
    assert set(summary.to_json()) == {"number", "service_code", "service_name", "process_version", "village",
                                      "applicant_name", "status", "outcome", "created_at", "updated_at",
                                      "accepted_at"}
    case_json = detail.to_json()
    assert case_json["accepted_at"] == "2026-11-02T09:00:00+08:00"
    assert case_json["sla"]["promised_due_at"] == clock.local(detail.sla.promised_due_at).isoformat(timespec="seconds")
    assert case_json["audit"][0]["at"] == "2026-11-02T09:00:00+08:00" and case_json["tasks"][0]["id"] == task.id
    assert json.loads(json.dumps(case_json, ensure_ascii=False)) == case_json  # plain JSON all the way down
    fields = form.to_json()["fields"]
    assert {f["id"] for f in fields} >= {"applicant_name", "household_size"}
    assert next(f for f in fields if f["id"] == "applicant_name")["readonly"] is True  # a case field
    hardship = next(f for f in fields if f["id"] == "hardship_reason")
    assert hardship["type"] == "enum" and all(isinstance(o, list) and len(o) == 2 for o in hardship["options"])
    assert version.to_json()["deployed_at"] == "2026-11-02T09:00:00+08:00" and len(version.sha256) == 12


def _versions(s):
    from engine import processes
    return processes.list_versions(s)


# ------------------------------------------------------------------------------------------ keyset pages
@pytest.fixture
def tied(seeded, manual_clock):
    """Tasks whose dues tie: three FX-DIBAO intakes due 24:00 11-09 and two TEST-RELAY intakes with no due
    (the clerk's, all accepted at one instant); three township reviews due at one instant and one an hour
    later, one of the first three claimed by AGENT (so AGENT's inbox merges the queue and the claimed)."""
    for _ in range(3):
        start(seeded, service="FX-DIBAO")
    for _ in range(2):
        start(seeded)
    numbers = [_relay_to_review(seeded) for _ in range(3)]
    manual_clock.advance(hours=1)
    numbers.append(_relay_to_review(seeded))
    (review,) = ready_tasks(seeded, numbers[1])
    with db.transaction(seeded) as s:
        cases.claim_task(s, review.id, user(seeded, AGENT))
    return seeded


@pytest.mark.parametrize("username", [CLERK, AGENT, AGENT2, TOWNSHIP])
def test_inbox_pages_walk_every_task_once_when_dues_tie(tied, username):
    with db.read(tied) as s:
        actor = orgs.actor_by_name(s, username)
        everything = queries.inbox(s, actor, limit=1000)
        assert everything.next_cursor is None and len(everything) >= 3
        expected = _due_order(everything.items)
        assert [t.id for t in everything] == expected
        dues = [t.due_at for t in everything]
        assert len(set(dues)) < len(dues)  # ties, or this test proves nothing
        for limit in (1, 2, 3, len(expected) - 1, len(expected)):
            pages = _walk(lambda n, c: queries.inbox(s, actor, limit=n, cursor=c), limit)
            walked = [i for page in pages for i in page]
            assert walked == expected, (limit, pages)
            assert all(len(page) == limit for page in pages[:-1]) and 1 <= len(pages[-1]) <= limit


def test_a_full_list_of_tasks_pages_through_null_dues_too(tied):
    """The operator's list of every ready task holds dated and undated ones (TEST-RELAY's intake has no
    deadline): the cursor of a task without a due continues among those, after every dated one."""
    with db.read(tied) as s:
        operator = Actor.operator("test")
        everything = queries.list_tasks(s, operator, limit=1000).items
        assert any(t.due_at is None for t in everything) and any(t.due_at is not None for t in everything)
        expected = _due_order(everything)
        assert [t.id for t in everything] == expected
        for limit in (1, 2, 4):
            pages = _walk(lambda n, c: queries.list_tasks(s, operator, limit=n, cursor=c), limit)
            assert [i for page in pages for i in page] == expected
        number = everything[0].case_number
        on_case = queries.list_tasks(s, operator, number, state=None, limit=1)
        assert [t.case_number for t in on_case] == [number]


def test_case_pages_walk_newest_first_once(tied):
    with db.read(tied) as s:
        clerk = orgs.actor_by_name(s, CLERK)
        everything = [c.number for c in queries.list_cases(s, clerk, None, limit=1000)]
        assert len(everything) == 9 and everything == sorted(everything, reverse=True)
        for limit in (1, 2, 4, 9):
            pages = _walk(lambda n, c: queries.list_cases(s, clerk, None, limit=n, cursor=c), limit)
            assert [number for page in pages for number in page] == everything
        assert [c.number for c in queries.list_cases(s, orgs.actor_by_name(s, OTHER_CLERK), None)] == []


def _b64(text: str | bytes) -> str:
    raw = text.encode() if isinstance(text, str) else text
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


BAD_CURSORS = [
    "", "garbage!!", "a", "x" * (MAX_CURSOR + 1), _b64(b"\xff\xfe\xfd"), _b64("[1, 2]"), _b64("{}"),
    _b64('{"k":"task","d":null,"i":-1}'), _b64('{"k":"task","d":null,"i":true}'),
    _b64('{"k":"task","d":null,"i":99999999999999999999}'), _b64('{"k":"task","d":"yesterday","i":1}'),
    _b64('{"k":"task","d":"99999-01-01T00:00:00","i":1}'), _b64('{"k":"task","d":7,"i":1}'),
    case_cursor(5),  # a cursor of another list
]


@pytest.mark.parametrize("cursor", BAD_CURSORS)
def test_a_bad_cursor_is_invalid_input_with_a_reason(seeded, cursor):
    start(seeded)
    with db.read(seeded) as s:
        clerk = orgs.actor_by_name(s, CLERK)
        with pytest.raises(InvalidInput) as info:
            queries.list_tasks(s, clerk, cursor=cursor)
        assert info.value.reason == "page.cursor_invalid" and "翻页标记无效" in info.value.message
        with pytest.raises(InvalidInput) as info:
            queries.list_tasks(s, Actor.operator("test"), cursor=cursor)
        assert info.value.reason == "page.cursor_invalid"
        if cursor != case_cursor(5):
            with pytest.raises(InvalidInput) as info:
                queries.list_cases(s, clerk, cursor=cursor)
            assert info.value.reason == "page.cursor_invalid"


def test_limits_and_filters_outside_their_sets_are_refused(seeded):
    with db.read(seeded) as s:
        clerk = orgs.actor_by_name(s, CLERK)
        for limit in (0, -1, queries.MAX_PAGE + 1, True, "10"):
            with pytest.raises(InvalidInput) as info:
                queries.list_tasks(s, clerk, limit=limit)
            assert info.value.reason == "page.limit_invalid"
        with pytest.raises(InvalidInput):
            queries.list_tasks(s, Actor.operator("test"), state="done")
        with pytest.raises(InvalidInput):
            queries.list_cases(s, clerk, status="opened")


def test_the_api_pages_by_link_header_and_refuses_a_bad_cursor(client, seeded, monkeypatch):
    numbers = {start(seeded).case_number for _ in range(3)}
    monkeypatch.setattr(api.cases, "PAGE", 2)
    login(client, CLERK)
    seen, url = [], "/api/v1/cases"
    while url:
        resp = client.get(url)
        assert resp.status_code == 200 and len(resp.get_json()) <= 2
        seen += [c["number"] for c in resp.get_json()]
        link = resp.headers.get("Link")
        url = link[1:link.index(">")] if link else None
    assert sorted(seen) == sorted(numbers) and len(seen) == 3
    legacy = client.get("/api/cases")
    assert 'rel="next"' in legacy.headers["Link"] and 'rel="successor-version"' in legacy.headers["Link"]
    bad = client.get("/api/v1/cases?cursor=not-a-cursor")
    assert bad.status_code == 422 and bad.get_json()["reason"] == "page.cursor_invalid"


# ------------------------------------------------------------------------------------------ the case page
def test_case_detail_shows_the_form_data_of_every_step(seeded, manual_clock):
    r = start(seeded, data={"household_size": 3})
    (intake,) = ready_tasks(seeded, r.case_number)
    complete(seeded, intake.id, CLERK, {"documents_complete": True})
    manual_clock.advance(hours=2)
    (review,) = ready_tasks(seeded, r.case_number)
    complete(seeded, review.id, AGENT, {"township_decision": "approve"})
    with db.read(seeded) as s:
        detail = queries.case_detail(s, r.case_number, orgs.actor_by_name(s, "supervisor"))
        clerk, agent = orgs.actor_by_name(s, CLERK), orgs.actor_by_name(s, AGENT)
    accepted, village, township = detail.steps
    assert (accepted.task_id, accepted.name, accepted.level, accepted.unit) == (None, "受理", "village", "邹家村")
    assert (accepted.actor, accepted.actor_name) == (CLERK, clerk.display_name)
    assert [(f.id, f.label, f.value, f.text) for f in accepted.fields] == [("household_size", "家庭人口", 3, "3")]
    assert (village.task_id, village.bpmn_id, village.name, village.level) == (intake.id, "Task_Intake", "村级受理",
                                                                               "village")
    assert [(f.label, f.value, f.text) for f in village.fields] == [("材料齐全", True, "是")]
    assert (township.name, township.level, township.unit, township.actor) == ("乡镇审核", "township", "迎风桥镇", AGENT)
    assert township.actor_name == agent.display_name and township.at == sh("2026-11-02T11:00:00+08:00")
    assert [(f.id, f.label, f.value, f.choice, f.text) for f in township.fields] == [
        ("township_decision", "审核结果", "approve", "同意", "同意")]
    steps = detail.to_json()["steps"]
    assert steps[2]["fields"] == [
        {"id": "township_decision", "label": "审核结果", "value": "approve", "choice": "同意"}]
    assert steps[2]["at"] == "2026-11-02T11:00:00+08:00"


def test_case_page_and_cli_show_the_steps(client, seeded, capsys):
    r = start(seeded, data={"household_size": 4})
    (intake,) = ready_tasks(seeded, r.case_number)
    complete(seeded, intake.id, CLERK, {"documents_complete": False})
    login(client, CLERK)
    page = client.get(f"/cases/{r.case_number}").get_data(as_text=True)
    assert "办理记录" in page and "家庭人口" in page and "材料齐全" in page and "否" in page
    from engine import cli
    assert cli.main(["--db", seeded.url.render_as_string(hide_password=False), "case", "show", r.case_number]) == 0
    out = capsys.readouterr().out
    assert "step 受理" in out and "家庭人口=4" in out and "step 村级受理" in out and "材料齐全=False" in out


def test_timeline_names_people_the_operator_and_the_system(seeded, manual_clock):
    number = _relay_to_review(seeded)
    with db.transaction(seeded) as s:
        cases.pause_case(s, number, Actor.operator("alice"), "等待补正材料", "supplement")
    manual_clock.advance(hours=1)
    with db.transaction(seeded) as s:
        cases.resume_case(s, number, Actor.operator("alice"))
    timers.sweep(seeded, manual_clock.now() + timedelta(hours=80))  # the review's PT72H timer fires
    with db.read(seeded) as s:
        entries = queries.case_detail(s, number, Actor.operator("bob")).audit
        clerk = orgs.actor_by_name(s, CLERK)
    by_action = {}
    for e in entries:
        by_action.setdefault(e.action, (e.actor, e.actor_name))
    assert by_action["case.started"] == (CLERK, clerk.display_name)
    assert by_action["case.paused"] == ("operator:alice", "服务器操作员（alice）")
    assert by_action["timer.fired"] == ("system", "系统")
    assert all(isinstance(e, queries.TimelineEntry) and e.at.tzinfo is not None for e in entries)
    assert [e.at for e in entries] == sorted(e.at for e in entries)


def test_a_user_of_another_unit_sees_not_found(client, seeded):
    number = _relay_to_review(seeded)
    (review,) = ready_tasks(seeded, number)
    with db.read(seeded) as s:
        other = orgs.actor_by_name(s, OTHER_CLERK)
        for read in (lambda: queries.case_detail(s, number, other),
                     lambda: queries.task_detail(s, review.id, other),
                     lambda: queries.list_tasks(s, other, number, state=None)):
            with pytest.raises(NotFound):
                read()
        assert queries.inbox(s, other).items == ()
        township = orgs.actor_by_name(s, TOWNSHIP)  # the case's township sees it, with its review
        assert queries.case_detail(s, number, township).number == number
        assert [t.id for t in queries.list_tasks(s, township, number)] == [review.id]
    login(client, OTHER_CLERK)
    assert client.get(f"/cases/{number}").status_code == 404
    assert client.get(f"/api/v1/cases/{number}").status_code == 404


# ------------------------------------------------------------------------------------------ 24:00
def test_a_deadline_is_shown_as_24_00_of_its_due_date():
    midnight = sh("2026-11-10T00:00:00+08:00")
    assert clock.due_date(midnight).isoformat() == "2026-11-09"
    assert clock.due_text(midnight) == "2026-11-09 24:00"
    assert clock.due_text(datetime(2026, 11, 9, 16, 0, tzinfo=UTC)) == "2026-11-09 24:00"  # the same, in UTC
    assert clock.due_text(sh("2026-11-05T09:00:00+08:00")) == "2026-11-05 09:00"  # a calendar-time deadline
    assert clock.due_date(sh("2026-11-05T09:00:00+08:00")).isoformat() == "2026-11-05"
    assert clock.due_text(sh("2027-01-01T00:00:00+08:00")) == "2026-12-31 24:00"  # across a year


def test_the_case_page_renders_dues_from_datetimes(client, seeded):
    from web.filters import when  # (the app, made by the fixture, has loaded the web package in its order)
    # the filter shows read models' datetimes and stored ISO text (digests) alike, through the one helper
    assert when(sh("2026-11-10T00:00:00+08:00")) == when("2026-11-10T00:00:00+08:00") == "2026-11-09 24:00"
    assert when(datetime(2026, 12, 1, 7, 6, 15, tzinfo=UTC)) == "2026-12-01 15:06"
    assert when(None) == "—"
    number = start(seeded, service="FX-DIBAO").case_number
    login(client, CLERK)
    page = client.get(f"/cases/{number}").get_data(as_text=True)
    assert "2026-11-09 24:00" in page  # the intake step's due
    assert "2026-11-02 09:00" in page  # accepted
    assert "+08:00" not in page and "T09:00" not in page  # no raw ISO text


def test_a_step_overdue_before_its_case_is_shown_as_such(seeded, client):
    """A step has days, its case weeks: the case's own level may still be green while the step is red, and
    the case page must then not say only 正常."""
    number = start(seeded, service="FX-PENSION").case_number
    timers.sweep(seeded, sh("2026-11-05T09:00:00+08:00"))
    with db.read(seeded) as s:
        detail = queries.case_detail(s, number, orgs.actor_by_name(s, CLERK))
    assert (detail.sla.warning_level, detail.step_warning_level) == ("green", "red")
    login(client, CLERK)
    page = client.get(f"/cases/{number}").get_data(as_text=True)
    assert "当前环节：超期" in page
