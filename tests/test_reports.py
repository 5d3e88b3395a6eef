"""Issue #10 §1, §2, §8: the supervisor's board, its drill-down lists, the overdue report and their Excel/CSV
files, on SQLite and PostgreSQL — on a world built through the engine (cases in every state, time moved by
the manual clock and the sweep), never by writing rows by hand.

What must hold: every number on the board equals the total of the list it links to, and walking that list
page by page meets exactly that many rows (every measure, every breakdown, several units); a township
supervisor never sees another township's numbers (404 on its URLs); the files hold the page's rows, with
real date cells; a closed case carries whether it was on time and the working days it took.
"""
from __future__ import annotations

import csv
import io
from datetime import date, datetime
from typing import Any

import openpyxl
import pytest
import sqlalchemy as sa
from sqlalchemy import insert, select

from engine import cases, db, orgs, reports, timers
from engine.clock import SHANGHAI, ManualClock
from engine.errors import Forbidden, InvalidInput, NotFound
from engine.models import Card, Case, User
from engine.policy import Actor
from engine.reports import export, overdue
from engine.reports.measures import Measure

from .conftest import AGENT, CLERK, OTHER_CLERK, TOWNSHIP, complete, form_for, ready_tasks, start, user, worker_for
from .webtools import login

ZOU = "430902102201"    # 邹家村, 迎风桥镇
ZHOU = "430902102202"   # 周家村, 迎风桥镇
SHITANG = "430902103201"  # 石塘村, 沙头镇
QINGSHAN = "430921101201"  # 青山村, 南县
YINGFENG, SHATOU, ZIYANG, NANXIAN, CITY = "430902102", "430902103", "430902", "430921", "4309"
TOWN_SUPERVISOR = "supervisor-430902102"


def sh(*args: int) -> datetime:
    return datetime(*args, tzinfo=SHANGHAI)


NOW = sh(2026, 11, 18, 10, 0)  # a Wednesday; "this month" is November 2026


def case_row(engine: Any, number: str) -> Case:
    with db.read(engine) as s:
        return s.scalar(select(Case).where(Case.number == number))


def _username(engine: Any, user_id: int) -> str:
    with db.read(engine) as s:
        return s.get(User, user_id).username


def finish(engine: Any, number: str, decision: str = "approve") -> None:
    """Complete whatever is ready until the case closes (at the clock's instant)."""
    for _ in range(12):
        open_tasks = ready_tasks(engine, number)
        if not open_tasks:
            return
        task = open_tasks[0]
        who = worker_for(engine, task) if task.assignee_id is None else _username(engine, task.assignee_id)
        complete(engine, task.id, who, form_for(engine, task, decision))
    raise AssertionError(f"{number} did not finish")


def at(clock: ManualClock, *when: int) -> datetime:
    clock.set(sh(*when))
    return clock.now()


# ------------------------------------------------------------------------------------------- closing facts
def test_a_closed_case_knows_whether_it_was_on_time_and_the_working_days_it_took(seeded, manual_clock):
    at(manual_clock, 2026, 11, 2, 9, 0)  # Monday
    paused = start(seeded, service="FX-DIBAO", now=manual_clock.now()).case_number  # promised 20 working days
    late = start(seeded, service="FX-PENSION", now=manual_clock.now()).case_number  # promised 5: due 24:00 11-09
    relay = start(seeded, now=manual_clock.now()).case_number  # no promised due at all
    at(manual_clock, 2026, 11, 3, 10, 0)
    with db.transaction(seeded) as s:
        cases.pause_case(s, paused, user(seeded, CLERK), "等待补正材料")
    at(manual_clock, 2026, 11, 6, 16, 0)  # Tue 10:00 → Fri 16:00: Wed, Thu and Fri are given back
    with db.transaction(seeded) as s:
        cases.resume_case(s, paused, user(seeded, CLERK))
    open_row = case_row(seeded, paused)
    assert (open_row.on_time, open_row.workdays_taken) == (None, None)  # open: nothing to say yet
    at(manual_clock, 2026, 11, 10, 10, 0)  # Tuesday: Tue 3, Fri 6 (given back: 4, 5), Mon 9, Tue 10
    finish(seeded, paused)
    at(manual_clock, 2026, 11, 12, 10, 0)  # Thursday, three days after the promised due
    finish(seeded, late)
    finish(seeded, relay)
    done = case_row(seeded, paused)
    assert done.status == "completed" and done.closed_at == sh(2026, 11, 10, 10, 0)
    assert (done.on_time, done.workdays_taken) == (True, 3)
    overdue_row = case_row(seeded, late)
    assert (overdue_row.on_time, overdue_row.workdays_taken) == (False, 8)  # 11-03 … 11-12, eight working days
    no_promise = case_row(seeded, relay)
    assert no_promise.promised_due_at is None
    assert (no_promise.on_time, no_promise.workdays_taken) == (None, 8)


def test_working_days_taken_count_a_stop_the_way_the_dues_move():
    from engine.cases.projection import workdays_taken
    accepted, closed = sh(2026, 11, 2, 9, 0), sh(2026, 11, 13, 17, 0)  # Mon → Fri of the next week: 9 days
    assert workdays_taken(accepted, closed, []) == 9
    short = ("supplement", sh(2026, 11, 3, 16, 0), sh(2026, 11, 4, 10, 0))  # under a day: moves no due
    assert workdays_taken(accepted, closed, [short]) == 9
    assert workdays_taken(accepted, closed, [("publicity", short[1], short[2])]) == 8  # 公示 always counts
    week = ("special", sh(2026, 11, 6, 9, 0), None)  # still running at closure: ends there
    assert workdays_taken(accepted, closed, [week]) == 4  # Mon 9 … Fri 13 given back
    overlapping = [("supplement", sh(2026, 11, 3, 9, 0), sh(2026, 11, 6, 9, 0)),
                   ("publicity", sh(2026, 11, 5, 9, 0), sh(2026, 11, 10, 9, 0))]
    assert workdays_taken(accepted, closed, overlapping) == 9 - 5  # 11-04 … 11-10 given back once
    assert workdays_taken(closed, closed, []) == 0  # 即办: closed the day it was accepted


# ------------------------------------------------------------------------------------------- the world
def _town_supervisor(engine: Any) -> None:
    """A township's supervisor (the seed has the city's and the counties'): a user row like the seed's."""
    with db.transaction(engine) as s:
        unit_id = orgs.unit_by_code(s, YINGFENG).id
        password = s.scalar(select(User.password_hash).where(User.username == "supervisor"))
        s.execute(insert(User).values(username=TOWN_SUPERVISOR, display_name="迎风桥镇监察员", role="supervisor",
                                      unit_id=unit_id, password_hash=password, active=True,
                                      must_change_password=False, failed_logins=0))


@pytest.fixture
def world(seeded: Any, manual_clock: ManualClock) -> dict[str, str]:
    """Cases in every state on 2026-11-18 10:00, as the engine makes them."""
    w: dict[str, str] = {}
    at(manual_clock, 2026, 10, 12, 9, 0)  # last month: completed, not counted this month
    w["october"] = start(seeded, service="FX-PENSION", now=manual_clock.now()).case_number
    at(manual_clock, 2026, 10, 14, 10, 0)
    finish(seeded, w["october"])
    now = at(manual_clock, 2026, 11, 2, 9, 0)
    w["red"] = start(seeded, service="FX-PENSION", now=now).case_number
    w["paused_done"] = start(seeded, service="FX-DIBAO", now=now).case_number
    w["shatou_red"] = start(seeded, service="FX-PENSION", actor="clerk-430902103201-1", village=SHITANG,
                            now=now).case_number
    w["nanxian_done"] = start(seeded, service="FX-PENSION", actor=OTHER_CLERK, village=QINGSHAN, now=now).case_number
    w["late"] = start(seeded, service="FX-PENSION", actor="clerk-430902102202-1", village=ZHOU, now=now).case_number
    at(manual_clock, 2026, 11, 2, 10, 0)
    (intake,) = ready_tasks(seeded, w["red"])
    complete(seeded, intake.id, CLERK, form_for(seeded, intake))
    (review,) = ready_tasks(seeded, w["red"])
    with db.transaction(seeded) as s:  # the township's step, held by an agent: it will run late in his hands
        cases.claim_task(s, review.id, user(seeded, AGENT))
    at(manual_clock, 2026, 11, 3, 10, 0)
    with db.transaction(seeded) as s:
        cases.pause_case(s, w["paused_done"], user(seeded, CLERK), "等待补正材料")
    now = at(manual_clock, 2026, 11, 5, 10, 0)
    finish(seeded, w["nanxian_done"])
    w["withdrawn"] = start(seeded, now=now).case_number
    with db.transaction(seeded) as s:
        cases.withdraw_case(s, w["withdrawn"], user(seeded, CLERK), "申请人撤回")
    at(manual_clock, 2026, 11, 6, 16, 0)
    with db.transaction(seeded) as s:
        cases.resume_case(s, w["paused_done"], user(seeded, CLERK))
    now = at(manual_clock, 2026, 11, 9, 9, 0)
    w["paused"] = start(seeded, service="FX-DIBAO", now=now).case_number
    at(manual_clock, 2026, 11, 10, 9, 0)
    with db.transaction(seeded) as s:
        cases.pause_case(s, w["paused"], user(seeded, CLERK), "等待补正材料")
    at(manual_clock, 2026, 11, 10, 10, 0)
    finish(seeded, w["paused_done"])
    now = at(manual_clock, 2026, 11, 12, 9, 0)
    w["yellow"] = start(seeded, service="FX-PENSION", now=now).case_number  # promised due 24:00 11-19
    at(manual_clock, 2026, 11, 12, 10, 0)
    finish(seeded, w["late"])
    now = at(manual_clock, 2026, 11, 13, 9, 0)
    w["green"] = start(seeded, service="FX-HOMESTEAD", now=now).case_number
    now = at(manual_clock, 2026, 11, 18, 10, 0)
    timers.sweep(seeded, now)
    _town_supervisor(seeded)
    return w


def reader(engine: Any, username: str) -> Actor:
    with db.read(engine) as s:
        return orgs.actor_by_name(s, username)


def walk_list(s: Any, actor: Actor, code: str | None, measure: Measure, **filters: str) -> tuple[int, list[Any]]:
    """A drill-down's total and every row met walking its pages (a small page, to cross several)."""
    first = reports.cases_for(s, actor, code, measure, limit=2, now=NOW, **filters)
    rows, page = list(first.page.items), first.page
    while page.next_cursor:
        page = reports.cases_for(s, actor, code, measure, limit=2, cursor=page.next_cursor, now=NOW, **filters).page
        rows += page.items
    assert len({r.id for r in rows}) == len(rows), "a row was met twice"
    return first.total, rows


def numbers(w: dict[str, str], rows: list[Any]) -> set[str]:
    names = {v: k for k, v in w.items()}
    return {names.get(r.case_number, r.case_number) for r in rows}


def test_the_board_counts_the_cases_in_every_state(world, seeded):
    supervisor = reader(seeded, "supervisor-430902")
    with db.read(seeded) as s:
        board = reports.board(s, supervisor, None, "unit", now=NOW)
        assert board.unit.code == ZIYANG and [u.code for u in board.chain] == [CITY, ZIYANG]
        assert board.month == date(2026, 11, 1)
        o = board.overall
        assert (o.open, o.due_soon, o.overdue, o.paused) == (5, 1, 2, 1)
        assert (o.completed, o.on_time, o.late, o.timed, o.workdays) == (2, 1, 1, 2, 3 + 8)
        assert o.on_time_rate == 0.5 and o.average_workdays == 5.5
        assert o.cards > 0
        by_town = {r.key: r.counts for r in board.rows}
        assert set(by_town) == {YINGFENG, SHATOU}
        assert (by_town[YINGFENG].open, by_town[YINGFENG].overdue, by_town[YINGFENG].completed) == (4, 1, 2)
        assert (by_town[SHATOU].open, by_town[SHATOU].overdue, by_town[SHATOU].completed) == (1, 1, 0)
        expected = {Measure.OPEN: {"red", "shatou_red", "paused", "yellow", "green"},
                    Measure.DUE_SOON: {"yellow"}, Measure.OVERDUE: {"red", "shatou_red"}, Measure.PAUSED: {"paused"},
                    Measure.COMPLETED: {"paused_done", "late"}, Measure.ON_TIME: {"paused_done"},
                    Measure.LATE: {"late"}, Measure.TIMED: {"paused_done", "late"}}
        for measure, names in expected.items():
            assert numbers(world, walk_list(s, supervisor, None, measure)[1]) == names, measure
        city = reports.board(s, reader(seeded, "supervisor"), None, "unit", now=NOW)
        assert (city.overall.open, city.overall.completed, city.overall.on_time) == (5, 3, 2)
        assert {r.key: r.counts.completed for r in city.rows} == {ZIYANG: 2, NANXIAN: 1}
        holders = {r.code: r.counts for r in reports.board(s, supervisor, None, "agent", now=NOW).rows}
        assert (holders[AGENT].open, holders[AGENT].overdue, holders[AGENT].cards) == (1, 1, 2)
        assert (holders[CLERK].open, holders[CLERK].paused, holders[CLERK].overdue) == (3, 1, 1)  # the yellow
        # case's intake step (2 working days from 11-12) is already overdue: a step runs late on its own


@pytest.mark.parametrize("username, unit", [("supervisor", None), ("supervisor-430902", None),
                                            ("supervisor-430902", YINGFENG), (TOWN_SUPERVISOR, None),
                                            ("supervisor", ZOU), (TOWNSHIP, None), ("admin", SHATOU)])
def test_every_number_on_the_board_is_the_total_of_its_list(world, seeded, username, unit):
    actor = reader(seeded, username)
    with db.read(seeded) as s:
        for board in reports.all_breakdowns(s, actor, unit, now=NOW):
            for measure in Measure:
                total, rows = walk_list(s, actor, unit, measure)
                assert total == len(rows) == board.overall.count(measure), (board.by, measure)
            sums = {m: 0 for m in board.measures}
            for row in board.rows:
                for measure in board.measures:
                    total, rows = walk_list(s, actor, unit, measure, **{board.by: row.key})
                    assert total == len(rows) == row.counts.count(measure), (board.by, row.key, measure)
                    sums[measure] += total
            if board.by in ("unit", "item", "department", "clerk"):  # every case sits in exactly one row
                assert sums == {m: board.overall.count(m) for m in board.measures}, board.by


def test_a_township_supervisor_sees_only_the_township(world, seeded):
    town, county = reader(seeded, TOWN_SUPERVISOR), reader(seeded, "supervisor-430902")
    theirs = {ZOU: "邹家村", ZHOU: "周家村"}
    with db.read(seeded) as s:
        own = reports.board(s, town, None, "unit", now=NOW)
        assert own.unit.code == YINGFENG and {r.key for r in own.rows} == set(theirs)
        from_above = {r.key: r.counts for r in reports.board(s, county, None, "unit", now=NOW).rows}
        assert own.overall == from_above[YINGFENG]  # the township's numbers, none of 沙头镇's
        for measure in Measure:
            _, rows = walk_list(s, town, None, measure)
            assert {r.village for r in rows} <= set(theirs.values()), measure
            assert world["shatou_red"] not in {r.case_number for r in rows}
        for code in (SHATOU, SHITANG, ZIYANG, CITY, NANXIAN, "999999999"):
            with pytest.raises(NotFound):
                reports.board(s, town, code, "item", now=NOW)
            with pytest.raises(NotFound):
                reports.cases_for(s, town, code, Measure.OPEN, now=NOW)
            with pytest.raises(NotFound):
                reports.overdue_report(s, town, {"unit": code}, now=NOW)
        with pytest.raises(NotFound):  # a filter naming a unit outside is no way round it
            reports.cases_for(s, town, None, Measure.OPEN, unit=SHITANG, now=NOW)
        with pytest.raises(NotFound):
            reports.cases_for(s, reader(seeded, TOWNSHIP), ZOU, Measure.OPEN, now=NOW)  # officers: own unit only
        assert reports.cases_for(s, reader(seeded, TOWNSHIP), None, Measure.OPEN, unit=ZOU, now=NOW).total == 4
        with pytest.raises(Forbidden):  # a clerk is told no, not "not found": reports exist for everyone to know
            reports.board(s, reader(seeded, CLERK), now=NOW)
        with pytest.raises(InvalidInput):
            reports.cases_for(s, town, None, "everything", now=NOW)
        with pytest.raises(InvalidInput):
            reports.cases_for(s, town, None, Measure.COMPLETED, agent="1", now=NOW)  # steps are held, not closures
        with pytest.raises(InvalidInput):
            reports.cases_for(s, town, None, Measure.OPEN, clerk="x' OR 1=1", now=NOW)
        with pytest.raises(InvalidInput):
            reports.board(s, town, None, "colour", now=NOW)


def test_a_township_supervisor_gets_404_on_another_townships_pages(world, seeded, client):
    login(client, TOWN_SUPERVISOR)
    page = client.get("/reports").get_data(as_text=True)
    assert "迎风桥镇" in page and "邹家村" in page and "沙头镇" not in page and "石塘村" not in page
    assert f'href="/reports/{ZOU}"' in page  # a supervisor drills into the villages' own boards
    for url in (f"/reports/{SHATOU}", f"/reports/{SHITANG}", f"/reports/{ZIYANG}", f"/reports/{SHATOU}?format=xlsx",
                f"/reports/{SHATOU}/cases?measure=open", f"/reports/{YINGFENG}/cases?measure=open&unit={SHITANG}",
                f"/reports/{SHATOU}/cases?measure=open&format=csv", f"/reports/overdue?unit={SHATOU}",
                f"/reports/overdue?unit={SHATOU}&format=xlsx", f"/reports/{CITY}"):
        assert client.get(url).status_code == 404, url
    assert client.get(f"/reports/{ZOU}").status_code == 200
    client.post("/logout", data={})
    login(client, CLERK)
    assert client.get("/reports").status_code == 403
    assert "/reports" not in client.get("/").get_data(as_text=True)  # no 报表 in a clerk's navigation


def _links(html: str, measure: str) -> list[str]:
    import html as htmllib
    import re
    return [htmllib.unescape(u) for u in re.findall(r'href="(/reports/[0-9]+/cases\?[^"]*measure=' + measure
                                                      + r'[^"]*)"', html)]


def _page_numbers(client: Any, url: str) -> list[str]:
    """The case numbers a drill-down list shows, page after page."""
    import html as htmllib
    import re
    found: list[str] = []
    while url:
        html = client.get(url).get_data(as_text=True)
        found += re.findall(r'<a href="/cases/(YY-[0-9-]+)"><b>', html)
        more = re.search(r'<a href="([^"]+)" rel="next">', html)
        url = htmllib.unescape(more.group(1)) if more else ""
    return found


def test_the_county_board_drills_down_to_the_cases_and_downloads_them(world, seeded, client):
    login(client, "supervisor-430902")
    board = client.get("/reports")
    assert board.status_code == 200
    html = board.get_data(as_text=True)
    assert "资阳区" in html and 'href="/reports"' in html  # the navigation's 报表
    overdue_links = _links(html, "overdue")
    assert overdue_links[0] == f"/reports/{ZIYANG}/cases?measure=overdue"
    assert sorted(_page_numbers(client, overdue_links[0])) == sorted([world["red"], world["shatou_red"]])
    town = next(u for u in overdue_links if f"unit={YINGFENG}" in u)
    assert _page_numbers(client, town) == [world["red"]]
    township = client.get(f"/reports/{YINGFENG}").get_data(as_text=True)
    assert "资阳区" in township and f'href="/reports/{ZOU}"' in township  # breadcrumbs up, villages down
    assert _page_numbers(client, f"/reports/{ZOU}/cases?measure=open") == [
        world[k] for k in ("green", "yellow", "paused", "red")]  # newest first
    for tab in ("item", "department", "clerk", "agent"):
        assert client.get(f"/reports?by={tab}").status_code == 200, tab
    assert client.get("/reports?by=colour").status_code == 422
    assert client.get(f"/reports/{ZIYANG}/cases?measure=everything").status_code == 422

    # the list as Excel: the page's rows, real date cells, frozen header
    url = f"/reports/{ZIYANG}/cases?measure=open"
    shown = _page_numbers(client, url)
    got = client.get(url + "&format=xlsx")
    assert got.status_code == 200 and got.mimetype.endswith("spreadsheetml.sheet")
    assert "attachment" in got.headers["Content-Disposition"]
    sheet = openpyxl.load_workbook(io.BytesIO(got.data)).worksheets[0]
    header = [c.value for c in sheet[1]]
    assert header[:3] == ["办件号", "事项编码", "事项"] and sheet.freeze_panes == "A2"
    assert sheet.column_dimensions["A"].width == 16
    rows = list(sheet.iter_rows(min_row=2, values_only=True))
    assert [r[0] for r in rows] == shown
    accepted = header.index("受理时间")
    first = sheet.cell(row=2, column=accepted + 1)
    assert first.is_date and first.value == case_row(seeded, shown[0]).accepted_at.astimezone(SHANGHAI).replace(
        tzinfo=None)
    due = sheet.cell(row=2, column=header.index("承诺期限") + 1)
    assert due.is_date and due.number_format == "yyyy-mm-dd"
    # … and as CSV: the same rows
    got = client.get(url + "&format=csv")
    assert got.status_code == 200 and got.mimetype == "text/csv"
    text = got.get_data(as_text=True)
    assert text.startswith("\ufeff")
    lines = list(csv.reader(io.StringIO(text[1:])))
    assert lines[0] == header and [line[0] for line in lines[1:]] == shown
    assert lines[1][accepted] == f"{case_row(seeded, shown[0]).accepted_at.astimezone(SHANGHAI):%Y-%m-%d %H:%M}"

    # the board as Excel: a sheet per breakdown, each with the page's rows
    got = client.get("/reports?format=xlsx")
    book = openpyxl.load_workbook(io.BytesIO(got.data))
    assert book.sheetnames == ["总览", "按单位", "按事项", "按部门", "按首问责任人", "按经办人"]
    assert [r[0] for r in book["按单位"].iter_rows(min_row=2, values_only=True)] == ["迎风桥镇", "沙头镇"]
    summary = next(book["总览"].iter_rows(min_row=2, values_only=True))
    assert summary[:2] == ("资阳区", ZIYANG) and book["总览"].cell(row=2, column=3).is_date
    headers = [c.value for c in book["总览"][1]]
    assert summary[headers.index("在办")] == 5 and summary[headers.index("按时办结率")] == 0.5
    assert book["总览"].cell(row=2, column=headers.index("按时办结率") + 1).number_format == "0.0%"
    got = client.get("/reports?by=item&format=csv")
    lines = list(csv.reader(io.StringIO(got.get_data(as_text=True)[1:])))
    with db.read(seeded) as s:
        items = reports.board(s, reader(seeded, "supervisor-430902"), None, "item")
    assert [line[1] for line in lines[1:]] == [r.code for r in items.rows]


def test_the_overdue_report_filters_sorts_and_pages(world, seeded, manual_clock):
    county, town = reader(seeded, "supervisor-430902"), reader(seeded, TOWN_SUPERVISOR)
    red, shatou, yellow = world["red"], world["shatou_red"], world["yellow"]
    with db.read(seeded) as s:
        def report(actor: Actor = county, sort: str = "overdue", **filters: str) -> list[str]:
            found = overdue.overdue_report(s, actor, filters, sort, now=NOW, limit=1)
            rows, page = list(found.page.items), found.page
            while page.next_cursor:
                page = overdue.overdue_report(s, actor, filters, sort, page.next_cursor, now=NOW, limit=1).page
                rows += page.items
            assert found.total == len(rows)
            return [r.case_number for r in rows]

        assert report() == [shatou, red, yellow]  # the earliest due first: the most working days overdue
        assert report(sort="recent") == [yellow, red, shatou]
        assert report(sort="unit") == [red, yellow, shatou]  # 迎风桥镇, its 邹家村, then 沙头镇's 石塘村
        first = overdue.overdue_report(s, county, now=NOW)
        assert [(r.step, r.level, r.unit, r.days_overdue) for r in first.page] == [
            ("受理待遇申领材料", "village", "石塘村", 10), ("乡镇社保所审核", "township", "迎风桥镇", 9),
            ("受理待遇申领材料", "village", "邹家村", 2)]
        assert first.page.items[1].assignee_username == AGENT and first.page.items[1].department == "人社"
        assert report(days="3") == [shatou, red] and report(days="10") == [shatou] and report(days="11") == []
        assert report(level="township") == [red] and report(level="village") == [shatou, yellow]
        assert report(person=AGENT) == [red]
        assert report(person=CLERK) == [red, yellow]  # the first-responsibility clerk of one, holder of the other
        assert report(item="FX-PENSION") == [shatou, red, yellow] and report(item="FX-DIBAO") == []
        assert report(department="人社") == [shatou, red, yellow] and report(department="民政") == []
        assert report(step="乡镇社保所审核") == [red]
        assert report(unit=SHATOU) == [shatou] and report(town) == [red, yellow]
        assert report(warning="yellow") == []  # no step is within its last day and not yet due
        assert report(card="unexplained") == [shatou, red, yellow] and report(card="explained") == []
        assert report(card="none") == []
        for bad in ({"level": "city"}, {"warning": "green"}, {"days": "-1"}, {"days": "9999"}, {"card": "blue"},
                    {"item": "../x"}, {"colour": "red"}, {"person": "nobody"}, {"step": "a\x00b"}):
            with pytest.raises(InvalidInput):
                overdue.overdue_report(s, county, bad, now=NOW)
        with pytest.raises(InvalidInput):
            overdue.overdue_report(s, county, {}, "name", now=NOW)
        with pytest.raises(InvalidInput):
            overdue.overdue_report(s, county, {}, "overdue", "not-a-cursor", now=NOW)
        cards = [(c.id, c.color) for c in s.scalars(select(Card).where(Card.task_id == first.page.items[1].task_id))]
    assert sorted(color for _, color in cards) == ["red", "yellow"]
    with db.transaction(seeded) as s:  # the agent explains both cards of his step
        for card_id, _ in cards:
            cases.explain_card(s, card_id, user(seeded, AGENT), "入户核查，申请人外出务工")
    with db.read(seeded) as s:
        found = overdue.overdue_report(s, county, {"card": "explained"}, now=NOW)
        assert [(r.case_number, r.card_color, r.explained) for r in found.page] == [(red, "red", True)]
        assert [r.case_number for r in overdue.overdue_report(s, county, {"card": "unexplained"}, now=NOW).page] == [
            shatou, yellow]


def test_the_overdue_report_page_and_its_files(world, seeded, client):
    login(client, "supervisor-430902")
    html = client.get("/reports/overdue").get_data(as_text=True)
    assert "超期报告" in html and world["red"] in html and world["shatou_red"] in html
    shown = _page_numbers(client, "/reports/overdue?sort=unit")
    assert shown == [world["red"], world["yellow"], world["shatou_red"]]
    bad = client.get("/reports/overdue?level=city")
    assert bad.status_code == 200 and 'aria-invalid="true"' in bad.get_data(as_text=True)
    book = openpyxl.load_workbook(io.BytesIO(client.get("/reports/overdue?sort=unit&format=xlsx").data))
    sheet = book.worksheets[0]
    header = [c.value for c in sheet[1]]
    assert [r[0] for r in sheet.iter_rows(min_row=2, values_only=True)] == shown
    assert sheet.cell(row=2, column=header.index("环节期限") + 1).is_date
    assert [r[header.index("超期（工作日）")] for r in sheet.iter_rows(min_row=2, values_only=True)] == [9, 2, 10]
    text = client.get("/reports/overdue?sort=unit&format=csv").get_data(as_text=True)
    lines = list(csv.reader(io.StringIO(text[1:])))
    assert [line[0] for line in lines[1:]] == shown


def test_an_export_too_long_is_refused_before_a_row_is_read(world, seeded, monkeypatch):
    monkeypatch.setattr(export, "MAX_EXPORT_ROWS", 4)
    county = reader(seeded, "supervisor-430902")
    with db.read(seeded) as s:
        with pytest.raises(InvalidInput) as refused:
            export.list_table(s, county, None, Measure.OPEN)
        assert refused.value.reason == "report.too_many_rows" and refused.value.details["rows"] == 5
        table = export.list_table(s, county, None, Measure.OVERDUE)
        assert len(list(table.rows)) == 2


def test_what_people_typed_never_becomes_a_formula():
    table = export.Table("t", (export.Column("申请人"), export.Column("受理时间", "datetime", 17)),
                         [["=HYPERLINK(\"http://x\")", sh(2026, 11, 2, 9, 0)], ["-1+2", None]])
    rows = list(table.rows)
    sheet = openpyxl.load_workbook(io.BytesIO(export.xlsx([export.Table("t", table.columns, rows)]))).worksheets[0]
    assert sheet["A2"].data_type == "s" and sheet["A2"].value == "=HYPERLINK(\"http://x\")"
    assert sheet["B2"].value == datetime(2026, 11, 2, 9, 0)  # Asia/Shanghai wall time, no zone
    lines = list(csv.reader(io.StringIO("".join(export.csv_lines(export.Table("t", table.columns, rows)))[1:])))
    assert lines[1:] == [["'=HYPERLINK(\"http://x\")", "2026-11-02 09:00"], ["'-1+2", ""]]


def test_the_reports_can_be_read_from_a_replica(world, seeded):
    """DESIGN §7: given REPORTS_DATABASE_URL (a read replica), the report pages read there — here the same
    database under a second engine, which is what a replica looks like to the app."""
    from .webtools import make_app
    app = make_app(seeded, REPORTS_DATABASE_URL=seeded.url.render_as_string(hide_password=False))
    client = app.test_client()
    login(client, "supervisor-430902")
    assert client.get("/reports").status_code == 200
    replica = app.extensions["yicun_reports_engine"]
    assert replica is not app.extensions["yicun_engine"]
    assert client.get(f"/reports/{ZIYANG}/cases?measure=open&format=csv").status_code == 200
    # opened read-only: a report that tried to write would fail, not write to the replica
    with pytest.raises(sa.exc.DBAPIError, match="read-only|readonly|read only"), replica.begin() as conn:
        conn.execute(sa.text("UPDATE org_units SET phone = 'x'"))
    with seeded.connect() as conn:
        assert conn.scalar(sa.text("SELECT count(*) FROM org_units WHERE phone = 'x'")) == 0
    replica.dispose()


def test_the_reports_database_is_an_operator_setting(monkeypatch, seeded):
    """YICUN_REPORTS_DATABASE_URL names the replica (checked when the app starts, like every setting)."""
    from engine import settings

    from .webtools import make_app
    url = seeded.url.render_as_string(hide_password=False)
    monkeypatch.setenv("YICUN_REPORTS_DATABASE_URL", url)
    settings.get.cache_clear()
    assert make_app(seeded).config["REPORTS_DATABASE_URL"] == url
    monkeypatch.setenv("YICUN_REPORTS_DATABASE_URL", "mysql://replica/yicun")
    settings.get.cache_clear()
    with pytest.raises(settings.SettingError, match="YICUN_REPORTS_DATABASE_URL"):
        settings.get()
    monkeypatch.delenv("YICUN_REPORTS_DATABASE_URL")
    settings.get.cache_clear()
    assert make_app(seeded).config["REPORTS_DATABASE_URL"] is None



def test_a_report_reads_without_jit_and_the_other_reads_keep_it(seeded):
    """A report's transaction (`db.read(…, reports=True)`, what the report pages and the benchmark read
    through) runs with PostgreSQL's JIT off — compiling a sub-second aggregate costs more than it saves —
    for that transaction only: the app's other reads, on the very same connection afterwards, keep the
    server's setting (here forced on). SQLite has no JIT: the same call just reads."""
    if seeded.dialect.name != "postgresql":
        with db.read(seeded, reports=True) as s:
            assert s.scalar(sa.text("SELECT count(*) FROM org_units")) > 0
        return
    url = seeded.url.render_as_string(hide_password=False)
    engine = db.make_engine(url, pool_size=1, max_overflow=0, connect_args={"options": "-c jit=on"})
    try:
        seen = []
        for reports_read in (False, True, False):
            with db.read(engine, reports=reports_read) as s:
                seen.append((s.scalar(sa.text("SHOW jit")), s.connection().connection.dbapi_connection,
                             s.scalar(sa.text("SHOW work_mem"))))
        assert [jit for jit, _, _ in seen] == ["on", "off", "on"]
        # and its sorts and hashes get REPORT_WORK_MEM, the others keep the server's (4MB by default here)
        assert seen[1][2] == db.REPORT_WORK_MEM and seen[0][2] == seen[2][2] != db.REPORT_WORK_MEM
        assert seen[0][1] is seen[1][1] is seen[2][1]  # one connection: the setting did not outlive its transaction
    finally:
        engine.dispose()
