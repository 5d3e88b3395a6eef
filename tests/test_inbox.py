"""Issue #9 §3: the inbox of each role — my unit's queue (my department's at county level) and the tasks I
claimed; filters by item, level and warning colour; a search by case number or applicant; due order, paged
by keyset cursors both ways; one indexed statement a page (checked with EXPLAIN on SQLite and PostgreSQL);
counts for the navigation; claim, release and reassign (within the unit, with a reason) through the web
with CSRF; 办件查询 over every case one may see, closed ones too; the notifications page."""
from __future__ import annotations

import re
from datetime import date, datetime

import pytest
from sqlalchemy import event, select

from engine import cases, db, orgs, queries, timers
from engine.clock import SHANGHAI
from engine.errors import InvalidInput, NotFound
from engine.models import AuditEvent, Notification, TaskRow, User
from engine.queries.search import MAX_SEARCH

from .conftest import (
    AGENT,
    AGENT2,
    CLERK,
    CLERK2,
    COUNTY_MZ,
    COUNTY_RS,
    OTHER_CLERK,
    TOWNSHIP,
    VILLAGE,
    complete,
    form_for,
    ready_tasks,
    snapshot,
    user,
    worker_for,
)
from .webtools import csrf_token, login, post_form

NAMES = ["符建英", "盛巧云", "符小红", "曹建国", "刘建英", "周梅", "夏雨", "符安"]


def sh(*args: int) -> datetime:
    return datetime(*args, tzinfo=SHANGHAI)


def accept(engine, service: str, applicant: str, actor: str = CLERK) -> str:
    with db.transaction(engine) as s:
        return cases.start_case(s, service_code=service, village_code=VILLAGE, applicant_name=applicant,
                                actor=user(engine, actor)).case_number


def advance(engine, number: str, levels: int) -> TaskRow:
    """Complete the case's steps until `levels` steps are done; the ready one it reaches."""
    for _ in range(levels):
        (task,) = ready_tasks(engine, number)
        complete(engine, task.id, worker_for(engine, task), form_for(engine, task))
    (task,) = ready_tasks(engine, number)
    return task


def act(engine, verb, task_id: int, who: str, *more):
    with db.transaction(engine) as s:
        return verb(s, task_id, user(engine, who), *more)


@pytest.fixture
def world(seeded, manual_clock):
    """Mon 11-02 09:00 at 邹家村: five FX-DIBAO intakes (clerk 1 holds them as their acceptor; two given back
    to the village queue), two TEST-RELAY intakes without a due (one given back); four FX-PENSION cases at
    the township (agent 1 holds one), two at the county's 人社 and one FX-DIBAO at the county's 民政."""
    numbers: dict[str, list[str]] = {"dibao": [], "relay": [], "township": [], "county": []}
    for name in NAMES[:5]:
        numbers["dibao"].append(accept(seeded, "FX-DIBAO", name))
    for name in NAMES[5:7]:
        numbers["relay"].append(accept(seeded, "TEST-RELAY", name))
    for number in (numbers["dibao"][1], numbers["dibao"][3], numbers["relay"][0]):
        (task,) = ready_tasks(seeded, number)
        act(seeded, cases.unclaim_task, task.id, CLERK)
    manual_clock.advance(hours=1)
    for name in NAMES[:4]:
        number = accept(seeded, "FX-PENSION", name)
        advance(seeded, number, 1)
        numbers["township"].append(number)
    (held,) = ready_tasks(seeded, numbers["township"][2])
    act(seeded, cases.claim_task, held.id, AGENT)
    manual_clock.advance(hours=1)
    for name in NAMES[4:6]:
        number = accept(seeded, "FX-PENSION", name)
        advance(seeded, number, 2)
        numbers["county"].append(number)
    number = accept(seeded, "FX-DIBAO", NAMES[7])
    assert advance(seeded, number, 3).candidate_group == "民政"
    numbers["county"].append(number)
    seeded.numbers = numbers  # type: ignore[attr-defined]
    return seeded


def box(engine, username: str, limit: int = 1000, **filters) -> list[queries.TaskItem]:
    with db.read(engine) as s:
        page = queries.inbox(s, orgs.actor_by_name(s, username), limit, **filters)
    assert page.next_cursor is None
    return list(page.items)


def _due_order(tasks) -> list[int]:
    return [t.id for t in sorted(tasks, key=lambda t: (t.due_at is None, t.due_at, t.id))]


def _ready(engine) -> list[TaskRow]:
    with db.read(engine) as s:
        return list(s.scalars(select(TaskRow).where(TaskRow.state == "ready")))


# ------------------------------------------------------------------------------------------ the read model
def test_queue_claimed_and_department_scoping(world):
    ready = _ready(world)
    with db.read(world) as s:
        ids = {u.username: u.id for u in s.scalars(select(User))}
    village = {t.id for t in ready if t.level == "village"}
    township = {t.id for t in ready if t.level == "township"}
    for username, tab, expected in [
        (CLERK, "claimed", {t.id for t in ready if t.assignee_id == ids[CLERK]}),
        (CLERK, "queue", {t.id for t in ready if t.level == "village" and t.assignee_id is None}),
        (CLERK, "all", village),
        (CLERK2, "claimed", set()),
        (CLERK2, "all", {t.id for t in ready if t.level == "village" and t.assignee_id is None}),
        (AGENT, "claimed", {t.id for t in ready if t.assignee_id == ids[AGENT]}),
        (AGENT, "all", township),
        (AGENT2, "all", {t.id for t in ready if t.level == "township" and t.assignee_id is None}),
        (TOWNSHIP, "queue", {t.id for t in ready if t.level == "township" and t.assignee_id is None}),
        (COUNTY_RS, "all", {t.id for t in ready if t.candidate_group == "人社"}),
        (COUNTY_MZ, "all", {t.id for t in ready if t.candidate_group == "民政"}),
        ("officer-430902-zr", "all", set()),
        (OTHER_CLERK, "all", set()),
        ("supervisor", "all", set()),
    ]:
        got = box(world, username, tab=tab)
        assert {t.id for t in got} == expected, (username, tab)
        assert [t.id for t in got] == _due_order(got), (username, tab)  # due order, undated last
    assert len(box(world, CLERK, tab="queue")) == 3 and len(box(world, COUNTY_RS)) == 2
    assert len(box(world, COUNTY_MZ)) == 1 and len(box(world, AGENT, tab="claimed")) == 1
    assert any(t.due_at is None for t in box(world, CLERK)) and box(world, CLERK)[-1].due_at is None


def test_filters_and_search(world):
    numbers = world.numbers
    assert {t.service_code for t in box(world, CLERK, service_code="TEST-RELAY")} == {"TEST-RELAY"}
    assert len(box(world, CLERK, service_code="TEST-RELAY")) == 2
    assert box(world, CLERK, service_code="MZ-99") == []
    assert box(world, AGENT, level="village") == [] and len(box(world, AGENT, level="township")) == 4
    assert len(box(world, CLERK, warning="green")) == 7 and box(world, CLERK, warning="red") == []
    first = numbers["dibao"][0]
    assert [t.case_number for t in box(world, CLERK, search=first)] == [first]
    assert [t.case_number for t in box(world, CLERK, search=first.lower())] == [first]  # as typed
    assert [t.case_number for t in box(world, CLERK, search=str(int(first[-6:])))] == [first]  # 1 → …000001
    assert len(box(world, CLERK, search=first[:-1])) == len([n for n in numbers["dibao"] + numbers["relay"]
                                                               if n.startswith(first[:-1])])
    assert sorted(t.applicant_name for t in box(world, CLERK, search="建英")) == ["刘建英", "符建英"]  # any part
    assert sorted(t.applicant_name for t in box(world, AGENT, search="建")) == ["曹建国", "符建英"]
    assert sorted(t.applicant_name for t in box(world, AGENT, search="符")) == ["符小红", "符建英"]
    assert box(world, CLERK, search="１００%") == []  # full-width digits read as ASCII; % matches itself
    assert len(box(world, CLERK, search="  ")) == 7  # an empty search is no search
    combined = box(world, AGENT, tab="queue", service_code="FX-PENSION", search="符")
    assert {t.applicant_name for t in combined} <= {"符建英", "符小红"} and all(t.assignee is None for t in combined)
    with db.read(world) as s:
        clerk = orgs.actor_by_name(s, CLERK)
        for kwargs, reason in [({"tab": "mine"}, "inbox.tab_invalid"), ({"level": "city"}, "inbox.level_invalid"),
                               ({"warning": "purple"}, "inbox.warning_invalid"),
                               ({"service_code": "MZ 01; --"}, "inbox.service_invalid"),
                               ({"search": "x" * (MAX_SEARCH + 1)}, "search.too_long"),
                               ({"search": "符\x00"}, "search.invalid")]:
            with pytest.raises(InvalidInput) as info:
                queries.inbox(s, clerk, **kwargs)
            assert info.value.reason == reason


@pytest.mark.parametrize("username,tab", [(CLERK, "all"), (CLERK, "claimed"), (AGENT, "all"), (AGENT2, "queue"),
                                          (COUNTY_RS, "all")])
def test_pages_walk_every_task_once_both_ways(world, username, tab):
    everything = box(world, username, tab=tab)
    expected = [t.id for t in everything]
    assert len(expected) >= 2
    with db.read(world) as s:
        actor = orgs.actor_by_name(s, username)
        for limit in (1, 2, 3):
            pages, cursor = [], None
            while True:
                page = queries.inbox(s, actor, limit, cursor, tab=tab)
                pages.append(page)
                if page.next_cursor is None:
                    break
                cursor = page.next_cursor
            assert [t.id for p in pages for t in p] == expected, limit  # no row twice, none skipped
            assert all(len(p) == limit for p in pages[:-1]) and pages[0].prev_cursor is None
            back, seen = pages[-1], []  # 上一页 from the last page back to the first: the same pages
            while back.prev_cursor is not None:
                back = queries.inbox(s, actor, limit, before=back.prev_cursor, tab=tab)
                seen.insert(0, [t.id for t in back])
            assert seen == [[t.id for t in p] for p in pages[:-1]], limit
            if len(pages) > 1:  # and 下一页 of a page reached backwards is the page after it again
                assert queries.inbox(s, actor, limit, cursor=back.next_cursor, tab=tab).items == pages[1].items


def test_counts_equal_the_lists(world, manual_clock):
    at = sh(2026, 11, 6, 0, 1)  # the township's and the county's steps are over (red), the village's green
    manual_clock.set(at)
    timers.sweep(world, at)
    for username in (CLERK, CLERK2, AGENT, AGENT2, TOWNSHIP, COUNTY_RS, COUNTY_MZ, OTHER_CLERK, "supervisor"):
        with db.read(world) as s:
            actor = orgs.actor_by_name(s, username)
            counts = queries.inbox_counts(s, actor)
            unread = len(queries.list_notifications(s, actor, unread_only=True, limit=1000))
        assert counts.claimed == len(box(world, username, tab="claimed")), username
        assert counts.queue == len(box(world, username, tab="queue")), username
        assert counts.tasks == len(box(world, username)), username
        assert counts.overdue == len(box(world, username, warning="red")), username
        assert counts.unread == unread, username
    with db.read(world) as s:
        agent = queries.inbox_counts(s, orgs.actor_by_name(s, AGENT))
    assert agent.overdue == 4 and agent.unread >= 1  # the township's unclaimed steps told the agent


def test_one_statement_a_page_walking_the_partial_indexes(world, db_kind):
    """EXPLAIN of the inbox's page queries (forwards, backwards, filtered) and of the counts: every branch
    walks a partial index over ready tasks, none scans the table; on SQLite no branch sorts its range
    (only the ≤ 2 × parts × limit rows found are sorted, once); on PostgreSQL, with the planner told to
    avoid scans and sorts wherever it can, the same indexes serve them."""
    statements: list[tuple[str, object]] = []

    def capture(_conn, _cursor, statement, parameters, _context, _many):
        if "FROM tasks" in statement or "JOIN tasks" in statement:
            statements.append((statement, parameters))
    event.listen(world, "before_cursor_execute", capture)
    try:
        with db.read(world) as s:
            for username in (AGENT, COUNTY_RS, CLERK):
                actor = orgs.actor_by_name(s, username)
                before = len(statements)
                page = queries.inbox(s, actor, 1)
                assert len(statements) == before + 1  # ONE statement a page
                later = queries.inbox(s, actor, 1, page.next_cursor)
                queries.inbox(s, actor, 1, before=later.prev_cursor)
                queries.inbox(s, actor, 2, service_code="FX-PENSION", warning="green", search="符")
                before = len(statements)
                queries.inbox_counts(s, actor)
                assert len(statements) == before + 1  # the navigation's numbers: one statement
    finally:
        event.remove(world, "before_cursor_execute", capture)
    plans = []
    with world.connect() as conn:
        raw = conn.connection.driver_connection
        for statement, parameters in statements:
            if db_kind == "sqlite":
                rows = raw.execute("EXPLAIN QUERY PLAN " + statement, parameters).fetchall()
                plans.append("\n".join(str(r[-1]) for r in rows))
            else:
                cur = raw.cursor()
                cur.execute("SET enable_seqscan = off")
                cur.execute("SET enable_sort = off")
                cur.execute("EXPLAIN " + statement, parameters)
                plans.append("\n".join(r[0] for r in cur.fetchall()))
                cur.execute("RESET ALL")
    joined = "\n".join(plans)
    # every branch walks a partial index over ready tasks (never the history). On PostgreSQL with a few test
    # rows the planner may serve the claimed branch from the other ready-only index in due order
    # (ix_tasks_ready_due, the overdue report's) — as cheap and as blind to history; SQLite names them all.
    if db_kind == "sqlite":
        for index in ("ix_tasks_ready_queue", "ix_tasks_ready_claimed", "ix_tasks_ready_group"):
            assert index in joined, joined
    else:
        used = re.findall(r"Index (?:Only )?Scan(?: Backward)? using (\w+) on tasks", joined)
        assert used and all(name.startswith("ix_tasks_ready_") or name == "pk_tasks" for name in used), joined
        assert "Seq Scan on tasks" not in joined, joined
    assert "ix_notifications_inbox" in joined or "ix_notifications_user_id_id" in joined, joined  # (user, …)
    if db_kind == "sqlite":
        assert "SCAN tasks" not in joined, joined
        for plan in plans:
            if "COMPOUND QUERY" in plan:  # a page: its branches walk in order; one sort, of the found rows
                assert plan.count("USE TEMP B-TREE") == 1, plan
                assert plan.rstrip().endswith("USE TEMP B-TREE FOR ORDER BY"), plan
    else:
        assert "Seq Scan on tasks" not in joined, joined


# ------------------------------------------------------------------------------------------ the web
def _row_form(page: str, task_id: int, action: str) -> bool:
    return f'action="/inbox/tasks/{task_id}/{action}"' in page


def _assignee(engine, task_id: int) -> str | None:
    with db.read(engine) as s:
        return s.scalar(select(User.username).join(TaskRow, TaskRow.assignee_id == User.id)
                        .where(TaskRow.id == task_id))


def test_claim_release_and_reassign_through_the_web(world, client):
    (queued,) = ready_tasks(world, world.numbers["dibao"][1])  # in the village's queue
    login(client, CLERK2)
    page = client.get("/inbox?tab=queue").get_data(as_text=True)
    assert world.numbers["dibao"][1] in page and _row_form(page, queued.id, "claim")
    assert not _row_form(page, queued.id, "reassign")  # a clerk reassigns only what they hold
    token = csrf_token(client, "/inbox")
    assert client.post(f"/inbox/tasks/{queued.id}/claim", data={"next": "/inbox?tab=queue"}).status_code == 400
    assert _assignee(world, queued.id) is None  # no token: refused, nothing changed
    resp = client.post(f"/inbox/tasks/{queued.id}/claim", data={"csrf_token": token, "next": "/inbox?tab=queue"})
    assert resp.status_code == 303 and resp.headers["Location"] == "/inbox?tab=queue"
    assert _assignee(world, queued.id) == CLERK2
    page = client.get("/inbox?tab=queue").get_data(as_text=True)
    assert "已领取" in page and not _row_form(page, queued.id, "claim")  # out of the queue
    mine = client.get("/inbox?tab=claimed").get_data(as_text=True)
    assert _row_form(mine, queued.id, "unclaim") and _row_form(mine, queued.id, "reassign")
    assert 'value="clerk-430902102201-1"' in mine  # the colleague it may go to …
    assert f'value="{AGENT}"' not in mine and f'value="{OTHER_CLERK}"' not in mine  # … never anyone else

    # reassign: a reason is required; the audit keeps it and the new holder
    before = snapshot(world)
    resp = client.post(f"/inbox/tasks/{queued.id}/reassign", data={"csrf_token": token, "to": CLERK, "reason": " "})
    assert resp.status_code == 303 and snapshot(world) == before
    assert "转办原因：此项必填。" in client.get(resp.headers["Location"]).get_data(as_text=True)
    client.post(f"/inbox/tasks/{queued.id}/reassign",
                data={"csrf_token": token, "to": CLERK, "reason": "本人下乡入户，请盛巧云接办"})
    assert _assignee(world, queued.id) == CLERK
    with db.read(world) as s:
        event_ = s.scalars(select(AuditEvent).where(AuditEvent.action == "task.reassigned")
                           .order_by(AuditEvent.id.desc())).first()
    assert event_.details["reason"] == "本人下乡入户，请盛巧云接办" and event_.details["to"] == CLERK
    assert event_.actor_id == user(world, CLERK2).id

    # the holder gives it back to the queue
    login(client, CLERK)
    token = csrf_token(client, "/inbox")
    client.post(f"/inbox/tasks/{queued.id}/unclaim", data={"csrf_token": token})
    assert _assignee(world, queued.id) is None
    assert "已退回本单位待办池" in client.get("/inbox").get_data(as_text=True)
    # a refusal is a message, not an error page: someone else's claim cannot be released by a clerk
    act(world, cases.claim_task, queued.id, CLERK2)
    resp = client.post(f"/inbox/tasks/{queued.id}/unclaim", data={"csrf_token": token})
    assert resp.status_code == 303 and _assignee(world, queued.id) == CLERK2
    assert "别人签收的环节，您不能退回。" in client.get("/inbox").get_data(as_text=True)


def test_reassigning_outside_the_unit_or_department_is_refused_and_changes_nothing(world, client):
    (held,) = ready_tasks(world, world.numbers["dibao"][0])  # CLERK holds it
    login(client, CLERK)
    token = csrf_token(client, "/inbox")
    before = snapshot(world)
    for target in (OTHER_CLERK, AGENT, COUNTY_MZ, "nobody-at-all"):
        resp = client.post(f"/inbox/tasks/{held.id}/reassign",
                           data={"csrf_token": token, "to": target, "reason": "试试"})
        assert resp.status_code == 303
        assert snapshot(world) == before, target
    page = client.get("/inbox").get_data(as_text=True)
    assert "不能办理这个环节（单位或部门不符）" in page or "没有用户" in page
    # county: a 人社 step goes to a 人社 officer only — the engine says so whatever the page offered
    (county,) = ready_tasks(world, world.numbers["county"][0])
    act(world, cases.claim_task, county.id, COUNTY_RS)
    with pytest.raises(InvalidInput) as info:
        act(world, cases.reassign_task, county.id, COUNTY_RS, COUNTY_MZ, "请民政局办")
    assert info.value.reason == "task.reassign_target"
    with pytest.raises(InvalidInput) as info:
        act(world, cases.reassign_task, county.id, COUNTY_RS, COUNTY_RS, "自己")
    assert info.value.reason == "task.reassign_same"
    assert snapshot(world) != before and _assignee(world, county.id) == COUNTY_RS


def test_another_villages_clerk_sees_nothing_and_gets_404(world, client):
    (held,) = ready_tasks(world, world.numbers["dibao"][0])
    (queued,) = ready_tasks(world, world.numbers["dibao"][1])
    login(client, OTHER_CLERK)
    page = client.get("/inbox").get_data(as_text=True)
    assert "没有待办" in page and "<b>YY-" not in page
    token = csrf_token(client, "/inbox")
    before = snapshot(world)
    for task, verb in ((queued, "claim"), (held, "unclaim"), (held, "reassign")):
        resp = client.post(f"/inbox/tasks/{task.id}/{verb}", data={"csrf_token": token, "to": OTHER_CLERK,
                                                                    "reason": "x"})
        assert resp.status_code == 404, verb
    assert client.post("/inbox/tasks/999999/claim", data={"csrf_token": token}).status_code == 404
    assert snapshot(world) == before
    listing = client.get("/cases").get_data(as_text=True)
    assert "没有符合条件的办件" in listing
    assert "没有符合条件的办件" in client.get(f"/cases?q={world.numbers['dibao'][0]}").get_data(as_text=True)


def test_the_inbox_page_filters_pages_and_marks(world, client, manual_clock):
    at = sh(2026, 11, 6, 0, 1)
    manual_clock.set(at)
    timers.sweep(world, at)
    login(client, AGENT)
    page = client.get("/inbox").get_data(as_text=True)
    assert page.count('class="warn-red"') == 4 and "超期" in page  # the township's steps are over
    header = re.search(r'<nav class="main">(.*?)</nav>', page, re.S).group(1)
    assert re.search(r'待办 <span class="badge red"[^>]*>4</span>', header) and "办件" in header
    assert re.search(r'通知 <span class="badge red">\d+</span>', header)
    assert client.get("/inbox?warning=green").get_data(as_text=True).count("<tr class=") == 0
    one = client.get("/inbox?q=" + world.numbers["township"][1]).get_data(as_text=True)
    assert one.count('<tr class="warn-') == 1 and world.numbers["township"][1] in one
    bad = client.get("/inbox?q=" + "长" * 50)
    assert bad.status_code == 200 and "搜索内容不能超过 40 个字" in bad.get_data(as_text=True)
    assert "翻页位置无效" in client.get("/inbox?cursor=garbage").get_data(as_text=True)
    # pages of the web list: 下一页 and 上一页 links carry the keyset cursors (and the filters)
    from web.workbench import inbox as view
    view_size, view.PAGE_SIZE = view.PAGE_SIZE, 3
    try:
        first = client.get("/inbox?tab=all").get_data(as_text=True)
        link = re.search(r'href="([^"]+)" rel="next"', first).group(1).replace("&amp;", "&")
        assert "tab=all" in link and "cursor=" in link and 'rel="prev"' not in first
        second = client.get(link).get_data(as_text=True)
        back = re.search(r'href="([^"]+)" rel="prev"', second).group(1).replace("&amp;", "&")
        assert re.findall(r"YY-\d{4}-\d{6}", client.get(back).get_data(as_text=True)) == \
            re.findall(r"YY-\d{4}-\d{6}", first)
        shown, then = set(re.findall(r"<b>(YY-[\d-]+)</b>", first)), set(re.findall(r"<b>(YY-[\d-]+)</b>", second))
        assert len(shown) == 3 and len(then) == 1 and not shown & then  # 4 tasks: 3 + 1, none twice
    finally:
        view.PAGE_SIZE = view_size


def test_case_search_finds_closed_cases(world, client):
    numbers = world.numbers
    with db.transaction(world) as s:  # the applicant withdraws one: it stays findable
        cases.withdraw_case(s, numbers["dibao"][4], user(world, CLERK), "申请人撤回")
    login(client, CLERK)
    everything = client.get("/cases").get_data(as_text=True)
    assert numbers["dibao"][4] in everything and "撤回" in everything
    assert all(n in everything for ns in numbers.values() for n in ns)
    withdrawn = client.get("/cases?status=withdrawn").get_data(as_text=True)
    assert re.findall(r"<b>(YY-\d{4}-\d{6})</b>", withdrawn) == [numbers["dibao"][4]]
    assert numbers["township"][3] in client.get("/cases?q=曹建国").get_data(as_text=True)
    assert client.get("/cases?from=2026-11-03").get_data(as_text=True).count("<b>YY-") == 0
    assert client.get("/cases?from=2026-11-02&to=2026-11-02").get_data(as_text=True).count("<b>YY-") == 14
    assert "结束日期（2026-11-01）早于开始日期（2026-11-02）" in client.get(
        "/cases?from=2026-11-02&to=2026-11-01").get_data(as_text=True)
    assert "日期须为" in client.get("/cases?from=yesterday").get_data(as_text=True)
    with db.read(world) as s:
        clerk = orgs.actor_by_name(s, CLERK)
        walked, cursor = [], None
        while True:
            page = queries.list_cases(s, clerk, None, 4, cursor, accepted_from=date(2026, 11, 2))
            walked += [c.number for c in page]
            if page.next_cursor is None:
                break
            cursor = page.next_cursor
        assert walked == sorted(walked, reverse=True) and len(walked) == len(set(walked)) == 14
        back = queries.list_cases(s, clerk, None, 4, before=page.prev_cursor)  # 上一页 from the last page
        assert [c.number for c in back] == walked[-len(page) - 4:-len(page)] and back.prev_cursor is not None
        with pytest.raises(NotFound):
            queries.visible_task(s, ready_tasks(world, numbers["dibao"][0])[0].id,
                                 orgs.actor_by_name(s, OTHER_CLERK))


def test_notifications_page_lists_and_marks_read(world, client, manual_clock):
    at = sh(2026, 11, 6, 0, 1)
    manual_clock.set(at)
    timers.sweep(world, at)
    login(client, AGENT2)
    page = client.get("/notifications").get_data(as_text=True)
    assert "无人领取" in page and "已超时" in page and 'class="card-red' in page
    with db.read(world) as s:
        mine = s.scalars(select(Notification).where(Notification.user_id == user(world, AGENT2).id)
                         .order_by(Notification.id)).all()
    assert mine and all(n.task_id for n in mine if n.kind)
    assert f'href="/tasks/{mine[-1].task_id}"' in page or "/cases/" in page  # to the step, where it exists
    token = csrf_token(client, "/notifications")
    client.post("/notifications/mark", data={"csrf_token": token, "id": str(mine[0].id), "next": "/notifications"})
    with db.read(world) as s:
        read = {n.id: n.read_at is not None for n in s.scalars(select(Notification).where(
            Notification.user_id == user(world, AGENT2).id))}
    assert read[mine[0].id] and not all(read.values())
    other = client.post("/notifications/mark", data={"csrf_token": token, "id": "999999"})  # not theirs: nothing
    assert other.status_code == 303
    assert client.post("/notifications/mark", data={"csrf_token": token, "id": "x"}).status_code == 422
    unread = client.get("/notifications?show=unread").get_data(as_text=True)
    assert unread.count("<li class=") == len(mine) - 1
    post_form(client, "/notifications/mark", {"next": "/notifications?show=unread"}, page="/notifications")
    assert "没有未读通知" in client.get("/notifications?show=unread").get_data(as_text=True)
    home = client.get("/").get_data(as_text=True)
    assert 'href="/inbox"' in home and "更多" not in home.split("我的待办")[1].split("</h2>")[0]


def test_the_command_line_reassigns_with_a_reason(world, capsys):
    from engine.cli import main
    (held,) = ready_tasks(world, world.numbers["dibao"][0])
    url = world.url.render_as_string(hide_password=False)
    base = ["--json", "--db", url, "task", "reassign", str(held.id), "--to", CLERK2, "--as", CLERK]
    with pytest.raises(SystemExit):  # --reason is required
        main(base)
    assert _assignee(world, held.id) == CLERK
    assert main([*base, "--reason", "   "]) != 0 and _assignee(world, held.id) == CLERK
    capsys.readouterr()
    assert main([*base, "--reason", "休假，请同事接办"]) == 0
    assert _assignee(world, held.id) == CLERK2
    with db.read(world) as s:
        details = s.scalars(select(AuditEvent.details).where(AuditEvent.action == "task.reassigned")).one()
    assert details["reason"] == "休假，请同事接办" and details["to"] == CLERK2
