"""Issue #10 §3: the charts' numbers and their page, on SQLite and PostgreSQL — the world of
tests/test_reports.py (cases in every state on 2026-11-18, built through the engine) and a few cases placed
on both sides of a week's boundary in Asia/Shanghai time.

What must hold: the weekly counts are exact, and in Asia/Shanghai weeks (Monday 00:00–08:00 there is still
Sunday in UTC); every weekly number is the total of the list it links to; the on-time rates are the board's;
the open cards by item are the board's item breakdown, and their red and yellow split the totals of their
lists; a township supervisor gets 404 for another township's charts; the page carries the chart data and the
same numbers in its tables, loads the vendored ECharts (fingerprinted, served by the app) and stays under the
first-load budget; the Excel file holds a sheet per chart.
"""
from __future__ import annotations

import csv
import gzip
import hashlib
import html as htmllib
import io
import json
import re
from datetime import date, datetime
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from sqlalchemy import func, select

from engine import cases, db, reports, timers
from engine.clock import ManualClock
from engine.errors import InvalidInput, NotFound
from engine.models import Card
from engine.reports import trends
from engine.reports.measures import Measure
from engine.reports.trends import Series

from .conftest import CLERK, start, user
from .test_reports import (  # noqa: F401  (world: the fixture)
    CITY,
    NANXIAN,
    NOW,
    SHATOU,
    SHITANG,
    TOWN_SUPERVISOR,
    YINGFENG,
    ZIYANG,
    ZOU,
    _page_numbers,
    at,
    finish,
    reader,
    walk_list,
    world,
)
from .webtools import login

COUNTY = "supervisor-430902"
STATIC = Path(__file__).resolve().parent.parent / "web" / "static"
ECHARTS = "vendor/echarts/dist/echarts.common.min.js"
FINGERPRINTED = re.compile(r'/static/([^"?]+)\?v=([0-9a-f]{16})"')
GZIP = {"Accept-Encoding": "gzip"}


def walk_trend(s: Any, actor: Any, code: str | None, series: Series | str, week: str | None = None,
               **filters: str) -> tuple[int, list[Any]]:
    """A chart list's total and every row met walking its pages (a small page, to cross several)."""
    first = trends.cases_for(s, actor, code, series, week, limit=2, now=NOW, **filters)
    rows, page = list(first.page.items), first.page
    while page.next_cursor:
        page = trends.cases_for(s, actor, code, series, week, limit=2, cursor=page.next_cursor, now=NOW,
                                **filters).page
        rows += page.items
    assert len({r.id for r in rows}) == len(rows), "a row was met twice"
    return first.total, rows


def by_week(found: trends.Trends) -> dict[date, trends.WeekCounts]:
    return {w.week.first_day: w for w in found.weeks}


# ------------------------------------------------------------------------------------------- weeks
def test_the_weeks_are_asia_shanghai_weeks_from_monday():
    weeks = trends.last_weeks(NOW)  # Wednesday 2026-11-18 10:00
    assert len(weeks) == trends.WEEKS == 12
    assert [w.first_day for w in weeks[-2:]] == [date(2026, 11, 9), date(2026, 11, 16)]
    assert weeks[0].first_day == date(2026, 8, 31) and all(w.first_day.weekday() == 0 for w in weeks)
    assert [w.partial for w in weeks] == [False] * 11 + [True]  # the current week, counted up to now
    last = weeks[-1]
    assert last.start.isoformat() == "2026-11-15T16:00:00+00:00"  # Monday 00:00 in Shanghai
    assert last.end.isoformat() == "2026-11-22T16:00:00+00:00" and last.last_day == date(2026, 11, 22)
    assert all(a.end == b.start for a, b in zip(weeks, weeks[1:], strict=False))  # no gap, no overlap
    assert len(trends.last_weeks(NOW, 1)) == 1 and len(trends.last_weeks(NOW, 53)) == 53
    for bad in (0, 54, -1, True, "12"):
        with pytest.raises(InvalidInput):
            trends.last_weeks(NOW, bad)  # type: ignore[arg-type]
    assert trends.parse_weeks("") == 12 and trends.parse_weeks("26") == 26
    for bad in ("0", "54", "x", "1e2", "-3", "9999"):
        with pytest.raises(InvalidInput):
            trends.parse_weeks(bad)
    assert trends.parse_week("2026-11-16", NOW).partial and not trends.parse_week("2026-11-09", NOW).partial
    for bad in ("2026-11-17", "2026-13-02", "16/11/2026", "", None, "2026-11-16T00:00", "0001-01-01"):
        with pytest.raises(InvalidInput):
            trends.parse_week(bad, NOW)


def test_weekly_counts_are_exact_across_a_week_boundary_in_shanghai_time(seeded, manual_clock: ManualClock):
    """Sunday 2026-11-15 23:50 and Monday 11-16 00:10 in Shanghai are the same UTC day (Sunday): they fall
    in two weeks here."""
    clerk = user(seeded, CLERK)
    now = at(manual_clock, 2026, 11, 2, 9, 0)  # a Monday, in the week before last
    overdue = start(seeded, service="FX-PENSION", now=now).case_number  # its step overdue by 11-05
    now = at(manual_clock, 2026, 11, 9, 0, 0)  # Monday 00:00 exactly: the first instant of a week
    first_instant = start(seeded, now=now).case_number
    now = at(manual_clock, 2026, 11, 15, 23, 30)  # Sunday night
    sunday = start(seeded, now=now).case_number
    at(manual_clock, 2026, 11, 15, 23, 50)
    with db.transaction(seeded) as s:
        cases.withdraw_case(s, sunday, clerk, "申请人撤回")
    finish(seeded, first_instant)  # completed on Sunday 23:50
    now = at(manual_clock, 2026, 11, 16, 0, 10)  # Monday 00:10 (Sunday 16:10 in UTC)
    timers.sweep(seeded, now)  # the overdue case's red cards: issued in the new week
    monday = start(seeded, now=now).case_number
    at(manual_clock, 2026, 11, 16, 0, 20)
    with db.transaction(seeded) as s:
        cases.withdraw_case(s, monday, clerk, "申请人撤回")
    now = at(manual_clock, 2026, 11, 18, 10, 0)
    county = reader(seeded, COUNTY)
    with db.read(seeded) as s:
        red_cards = s.scalar(select(func.count()).select_from(Card).where(Card.color == "red"))
        found = trends.trends(s, county, None, now=now)
        weeks = by_week(found)
        before, last, this = weeks[date(2026, 11, 2)], weeks[date(2026, 11, 9)], weeks[date(2026, 11, 16)]
        assert (before.opened, before.completed, before.withdrawn, before.red_cards) == (1, 0, 0, 0)
        assert (last.opened, last.completed, last.withdrawn, last.late, last.red_cards) == (2, 1, 1, 0, 0)
        assert (this.opened, this.completed, this.withdrawn, this.red_cards) == (1, 0, 1, red_cards)
        assert red_cards >= 2 and this.week.partial  # the case's own red card and its step's
        assert sum(w.opened for w in found.weeks) == 4 and sum(w.rejected for w in found.weeks) == 0
        opened = {w: {r.case_number for r in walk_trend(s, county, None, Series.OPENED, w)[1]}
                  for w in ("2026-11-02", "2026-11-09", "2026-11-16")}
        assert opened == {"2026-11-02": {overdue}, "2026-11-09": {first_instant, sunday}, "2026-11-16": {monday}}
        assert {r.case_number for r in walk_trend(s, county, None, Series.WITHDRAWN, "2026-11-09")[1]} == {sunday}
        assert {r.case_number for r in walk_trend(s, county, None, Series.WITHDRAWN, "2026-11-16")[1]} == {monday}
        total, rows = walk_trend(s, county, None, Series.RED_CARDS, "2026-11-16")
        assert total == len(rows) == red_cards and {r.case_number for r in rows} == {overdue}
        assert {r.card_color for r in rows} == {"red"}
        assert walk_trend(s, county, None, Series.RED_CARDS, "2026-11-09")[0] == 0
        # the other county's supervisor sees none of it
        other = trends.trends(s, reader(seeded, "supervisor"), NANXIAN, now=now)
        assert all(w.opened == w.completed == w.withdrawn == w.red_cards == 0 for w in other.weeks)


# ------------------------------------------------------------------------------------------- the world
def test_the_weekly_series_of_the_world(world, seeded):  # noqa: F811
    county = reader(seeded, COUNTY)
    with db.read(seeded) as s:
        found = trends.trends(s, county, None, now=NOW)
        assert found.unit.code == ZIYANG and found.month == date(2026, 11, 1)
        weeks = by_week(found)
        expected = {  # opened, completed, rejected, withdrawn, late, red cards
            date(2026, 10, 12): (1, 1, 0, 0, 0, 0),  # last month's case, opened and completed on time
            date(2026, 11, 2): (5, 0, 0, 1, 0, 0),   # red, paused_done, shatou_red, late, withdrawn (南县's: not ours)
            date(2026, 11, 9): (3, 2, 0, 0, 1, 0),   # paused, yellow, green; paused_done on time, late late
        }
        for day, w in weeks.items():
            counts = (w.opened, w.completed, w.rejected, w.withdrawn, w.late)
            if day == date(2026, 11, 16):  # the sweep of 11-18 issued the red cards
                assert counts == (0, 0, 0, 0, 0) and w.red_cards > 0 and w.week.partial
            else:
                assert (*counts, w.red_cards) == expected.get(day, (0, 0, 0, 0, 0, 0)), day
        assert {r.case_number for r in walk_trend(s, county, None, Series.LATE, "2026-11-09")[1]} == {world["late"]}
        assert {r.case_number for r in walk_trend(s, county, None, Series.COMPLETED, "2026-11-09")[1]} == {
            world["paused_done"], world["late"]}
        city = by_week(trends.trends(s, reader(seeded, "supervisor"), None, now=NOW))
        assert (city[date(2026, 11, 2)].opened, city[date(2026, 11, 2)].completed) == (6, 1)  # 南县's too


@pytest.mark.parametrize("username, unit", [("supervisor", None), (COUNTY, None), (COUNTY, YINGFENG),
                                            (TOWN_SUPERVISOR, None), ("supervisor", ZOU), ("admin", SHATOU)])
def test_every_number_of_the_charts_is_the_total_of_its_list(world, seeded, username, unit):  # noqa: F811
    actor = reader(seeded, username)
    with db.read(seeded) as s:
        found = trends.trends(s, actor, unit, now=NOW)
        for w in found.weeks:
            for series in trends.WEEKLY_SERIES:
                total, rows = walk_trend(s, actor, unit, series, w.week.first_day.isoformat())
                assert total == len(rows) == w.count(series), (series, w.week.first_day)
        for c in found.cards:
            assert walk_trend(s, actor, unit, Series.CARDS, item=c.code)[0] == c.cards
            assert walk_trend(s, actor, unit, Series.CARDS, item=c.code, color="red")[0] == c.red
            assert walk_trend(s, actor, unit, Series.CARDS, item=c.code, color="yellow")[0] == c.yellow
            assert c.red + c.yellow == c.cards
        assert sum(c.cards for c in found.cards) == walk_trend(s, actor, unit, Series.CARDS)[0]


CLOSED = ("completed", "on_time", "late", "timed", "workdays", "on_time_rate", "average_workdays")


def closed(rows: Any) -> list[tuple[Any, ...]]:
    """The rows' units and closed measures (what the on-time charts read of the board's rows)."""
    return [(r.key, r.name, *(getattr(r.counts, c) for c in CLOSED)) for r in rows]


def test_the_on_time_rates_are_the_boards(world, seeded):  # noqa: F811
    county, city, admin = reader(seeded, COUNTY), reader(seeded, "supervisor"), reader(seeded, "admin")
    with db.read(seeded) as s:
        (towns,) = trends.trends(s, county, None, now=NOW).on_time
        board = reports.board(s, county, None, "unit", now=NOW)
        assert towns.level == "township" and closed(towns.rows) == closed(board.rows)  # the board's rows
        assert [(r.key, r.counts.completed, r.counts.on_time, r.counts.late, r.counts.on_time_rate)
                for r in towns.rows] == [(YINGFENG, 2, 1, 1, 0.5), (SHATOU, 0, 0, 0, None)]
        for r in towns.rows:
            for measure in (Measure.ON_TIME, Measure.LATE, Measure.COMPLETED):
                assert walk_list(s, county, None, measure, unit=r.key)[0] == r.counts.count(measure)

        by_county, by_town = trends.trends(s, city, None, now=NOW).on_time
        assert by_county.level == "county"
        assert closed(by_county.rows) == closed(reports.board(s, city, None, "unit", now=NOW).rows)
        assert by_town.level == "township" and [r.key for r in by_town.rows] == [YINGFENG, SHATOU, "430921101"]
        for code in (ZIYANG, NANXIAN):  # each township's numbers are its row on its county's board
            rows = {r[0]: r for r in closed(reports.board(s, admin, code, "unit", now=NOW).rows)}
            for r in by_town.rows:
                if r.key in rows:
                    assert closed([r]) == [rows[r.key]], r.key
                    for measure in (Measure.ON_TIME, Measure.LATE):
                        assert walk_list(s, city, None, measure, unit=r.key)[0] == r.counts.count(measure)
        assert {r.key: r.counts.on_time_rate for r in by_town.rows} == {YINGFENG: 0.5, SHATOU: None,
                                                                        "430921101": 1.0}

        (villages,) = trends.trends(s, county, YINGFENG, now=NOW).on_time
        assert villages.level == "village"
        assert closed(villages.rows) == closed(reports.board(s, county, YINGFENG, "unit", now=NOW).rows)
        (own,) = trends.trends(s, city, ZOU, now=NOW).on_time
        assert own.level == "village" and own.rows[0].key == ZOU
        whole = reports.board(s, city, ZOU, "item", now=NOW).overall
        assert [getattr(own.rows[0].counts, c) for c in CLOSED] == [getattr(whole, c) for c in CLOSED]
        assert whole.completed == 1  # paused_done (the late case is 周家村's)


def test_the_cards_by_item_are_the_boards_item_breakdown(world, seeded):  # noqa: F811
    for username in ("supervisor", COUNTY, TOWN_SUPERVISOR):
        actor = reader(seeded, username)
        with db.read(seeded) as s:
            found = trends.trends(s, actor, None, now=NOW).cards
            items = {r.key: r.counts.cards for r in reports.board(s, actor, None, "item", now=NOW).rows
                     if r.counts.cards}
            assert {c.code: c.cards for c in found} == items and items, username
            for c in found:
                assert reports.cases_for(s, actor, None, Measure.CARDS, item=c.code, now=NOW).total == c.cards
            red = s.scalar(select(func.count()).select_from(Card).where(Card.color == "red",
                                                                        Card.resolved_at.is_(None)))
            if username == "supervisor":
                assert sum(c.red for c in found) == red  # every open card of the world is in the city
            assert [c.cards for c in found] == sorted((c.cards for c in found), reverse=True)


def test_a_township_supervisor_gets_404_for_another_townships_charts(world, seeded, client):  # noqa: F811
    town = reader(seeded, TOWN_SUPERVISOR)
    with db.read(seeded) as s:
        own = trends.trends(s, town, None, now=NOW)
        assert own.unit.code == YINGFENG and [r.key for r in own.on_time[0].rows] == [ZOU, "430902102202"]
        for code in (SHATOU, SHITANG, ZIYANG, CITY, NANXIAN, "999999999", "x'1"):
            with pytest.raises(NotFound):
                trends.trends(s, town, code, now=NOW)
            with pytest.raises(NotFound):
                trends.cases_for(s, town, code, Series.OPENED, "2026-11-02", now=NOW)
        for bad in ({"series": "everything", "week": "2026-11-02"}, {"series": "opened", "week": "2026-11-03"},
                    {"series": "opened"}, {"series": "cards", "week": "2026-11-02"},
                    {"series": "opened", "week": "2026-11-02", "item": "FX-PENSION"},
                    {"series": "cards", "color": "blue"}, {"series": "cards", "item": "../x"},
                    {"series": "cards", "unit": SHITANG}):
            with pytest.raises(InvalidInput):
                trends.cases_for(s, town, None, now=NOW, **bad)
        assert trends.cases_for(s, town, None, "opened", "2026-11-02", now=NOW).total == 4  # not shatou_red
    login(client, TOWN_SUPERVISOR)
    assert client.get(f"/reports/{YINGFENG}/charts").status_code == 200
    for url in (f"/reports/{SHATOU}/charts", f"/reports/{SHITANG}/charts", f"/reports/{ZIYANG}/charts",
                f"/reports/{CITY}/charts?format=xlsx", f"/reports/{SHATOU}/charts?format=csv&chart=cards",
                f"/reports/{SHATOU}/charts/cases?series=opened&week=2026-11-02",
                f"/reports/{SHATOU}/charts/cases?series=cards&format=csv"):
        assert client.get(url).status_code == 404, url
    for url in (f"/reports/{YINGFENG}/charts?weeks=99", f"/reports/{YINGFENG}/charts?format=pdf",
                f"/reports/{YINGFENG}/charts?format=csv&chart=pie",
                f"/reports/{YINGFENG}/charts/cases?series=opened&week=2026-11-03"):
        assert client.get(url).status_code == 422, url
    client.post("/logout", data={})
    login(client, CLERK)
    assert client.get(f"/reports/{YINGFENG}/charts").status_code == 403


# ------------------------------------------------------------------------------------------- the page
def _chart_data(html: str) -> list[dict[str, Any]]:
    found = re.search(r'<script type="application/json" id="chart-data">(.*?)</script>', html, re.S)
    assert found, "the page carries its charts as JSON"
    return json.loads(found.group(1))


def _tables(html: str) -> dict[str, list[list[str]]]:
    """Each chart's table as text: its rows' cells (the row's label first)."""
    out: dict[str, list[list[str]]] = {}
    for chart_id, body in re.findall(r'<figure class="chart[^"]*" id="chart-([a-z_]+)".*?<tbody>(.*?)</tbody>', html,
                                     re.S):
        rows = re.findall(r"<tr>(.*?)</tr>", body, re.S)
        out[chart_id] = [[htmllib.unescape(re.sub(r"<[^>]+>", "", cell)).strip()
                          for cell in re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", row, re.S)] for row in rows]
    return out


def _shown(col: dict[str, Any], value: Any) -> str:
    if value is None:
        return "—"
    return f"{value * 100:.1f}%" if col["kind"] == "percent" else str(value)


def test_the_charts_page_holds_each_charts_numbers_and_their_lists(world, seeded, client):  # noqa: F811
    login(client, COUNTY)
    board = client.get("/reports").get_data(as_text=True)
    assert f'href="/reports/{ZIYANG}/charts"' in board  # the report pages' tabs lead here
    page = client.get(f"/reports/{ZIYANG}/charts")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "图表" in html and "每周新收与办结" in html and "超期趋势" in html and "各乡镇按时办结率" in html
    data = _chart_data(html)
    assert [c["id"] for c in data] == ["weekly", "overdue", "on_time_township", "cards"]
    tables = _tables(html)
    for chart in data:  # the table under each chart: the chart's numbers, row by row
        rows = tables[chart["id"]]
        assert [r[0] for r in rows] == chart["rows"], chart["id"]
        for i, row in enumerate(rows):
            assert row[1:] == [_shown(col, col["values"][i]) for col in chart["columns"]], (chart["id"], i)
    weekly = data[0]
    opened = next(c for c in weekly["columns"] if c["name"] == "新收")
    assert opened["values"][-3:] == [5, 3, 0] and weekly["categories"][-1] == "本周"
    assert weekly["rows"][-1].startswith("2026-11-16 至 11-22")
    # every number's link: a list whose total is the number
    for chart in data:
        for col in chart["columns"]:
            for value, link in zip(col["values"], col["links"], strict=True):
                if link and col["kind"] == "int" and value:
                    assert len(_page_numbers(client, htmllib.unescape(link))) == value, (chart["id"], col["name"])
    rate = data[2]
    links = {c["name"]: c["links"] for c in rate["columns"]}
    assert links["按时办结"][0] == f"/reports/{ZIYANG}/cases?measure=on_time&unit={YINGFENG}"
    assert links["超时办结"][0] == f"/reports/{ZIYANG}/cases?measure=late&unit={YINGFENG}"
    assert [_shown(c, c["values"][0]) for c in rate["columns"]] == ["2", "1", "1", "50.0%"]
    cards = data[3]
    totals = next(c for c in cards["columns"] if c["name"] == "合计")
    assert totals["links"][0] == f"/reports/{ZIYANG}/cases?measure=cards&item=FX-PENSION"
    red = next(c for c in cards["columns"] if c["name"] == "红牌")
    assert red["links"][0] == f"/reports/{ZIYANG}/charts/cases?series=cards&item=FX-PENSION&color=red"
    listed = client.get(red["links"][0]).get_data(as_text=True)
    assert "红牌" in listed and f"共 {red['values'][0]} 张" in listed and 'href="/reports/430902/charts"' in listed
    week = client.get(opened["links"][-2]).get_data(as_text=True)
    assert "新收" in week and "2026-11-09 至 11-15" in week and "共 3 件" in week
    assert client.get(f"/reports/{ZIYANG}/charts?weeks=26").status_code == 200
    assert len(_chart_data(client.get(f"/reports/{ZIYANG}/charts?weeks=26").get_data(as_text=True))[0]["rows"]) == 26

    # the city: by county and by township; in English, the same numbers under English names
    login(client, "supervisor")
    city = _chart_data(client.get(f"/reports/{CITY}/charts").get_data(as_text=True))
    assert [c["id"] for c in city] == ["weekly", "overdue", "on_time_county", "on_time_township", "cards"]
    client.set_cookie("yicun_lang", "en")
    english = client.get(f"/reports/{CITY}/charts").get_data(as_text=True)
    assert '<html lang="en">' in english and "Overdue report" in english  # (the new names: en-charts.txt)
    assert [[col["values"] for col in c["columns"]] for c in _chart_data(english)] == [
        [col["values"] for col in c["columns"]] for c in city]


def test_the_charts_numbers_download_as_excel_and_csv(world, seeded, client):  # noqa: F811
    login(client, COUNTY)
    got = client.get(f"/reports/{ZIYANG}/charts?format=xlsx")
    assert got.status_code == 200 and got.mimetype.endswith("spreadsheetml.sheet")
    book = openpyxl.load_workbook(io.BytesIO(got.data))
    assert book.sheetnames == list(trends.CHART_TABLES)
    weekly = list(book["每周新收与办结"].iter_rows(values_only=True))
    assert weekly[0] == ("周一", "周日", "本周（未满）", "新收", "办结", "不予办理", "撤回") and len(weekly) == 13
    assert weekly[-2][:2] == (datetime(2026, 11, 9), datetime(2026, 11, 15))  # date cells (read as datetimes)
    assert weekly[-2][3:] == (3, 2, 0, 0) and weekly[-1][2] == "是"
    assert book["每周新收与办结"].cell(row=2, column=1).is_date
    rates = list(book["按时办结率"].iter_rows(values_only=True))
    assert rates[1] == ("乡镇", "迎风桥镇", YINGFENG, 2, 1, 1, 0.5)
    assert book["按时办结率"].cell(row=2, column=7).number_format == "0.0%"
    cards = list(book["黄红牌按事项"].iter_rows(values_only=True))
    assert cards[1][:2] == ("城乡居民养老保险待遇申领", "FX-PENSION") and cards[1][2] == cards[1][3] + cards[1][4]
    text = client.get(f"/reports/{ZIYANG}/charts?format=csv&chart=overdue").get_data(as_text=True)
    lines = list(csv.reader(io.StringIO(text[1:])))
    assert lines[0] == ["周一", "周日", "本周（未满）", "红牌", "超时办结"] and lines[-2][3:] == ["0", "1"]
    listed = client.get(f"/reports/{ZIYANG}/charts/cases?series=opened&week=2026-11-09&format=csv")
    rows = list(csv.reader(io.StringIO(listed.get_data(as_text=True)[1:])))
    assert rows[0][0] == "办件号" and sorted(r[0] for r in rows[1:]) == sorted(
        world[k] for k in ("paused", "yellow", "green"))


# ------------------------------------------------------------------------------------------- the library
def test_echarts_is_served_locally_fingerprinted_and_only_on_the_charts_page(world, seeded, client):  # noqa: F811
    assert (STATIC / ECHARTS).is_file(), f"web/static/{ECHARTS} is missing: run `make assets` (npm ci + copy)"
    login(client, COUNTY)
    page = client.get(f"/reports/{ZIYANG}/charts", headers=GZIP)
    html = gzip.decompress(page.data).decode()
    urls = dict(FINGERPRINTED.findall(html))
    assert ECHARTS in urls and "charts.js" in urls and "charts.css" in urls
    assert urls[ECHARTS] == hashlib.sha256((STATIC / ECHARTS).read_bytes()).hexdigest()[:16]
    assert "http://" not in html.replace("http://www.w3.org", "") and "//cdn" not in html  # never from a CDN
    resp = client.get(f"/static/{ECHARTS}?v={urls[ECHARTS]}", headers=GZIP)
    assert resp.status_code == 200 and resp.headers["Content-Encoding"] == "gzip"
    assert "immutable" in resp.headers["Cache-Control"]
    body = gzip.decompress(resp.data)
    assert body == (STATIC / ECHARTS).read_bytes() and b"Apache" in body[:400]
    lock = json.loads((STATIC.parent / "frontend" / "package-lock.json").read_text())
    assert lock["packages"]["node_modules/echarts"]["version"] == "6.1.0"  # pinned exactly
    assert "vendor/echarts" not in client.get("/reports").get_data(as_text=True)  # other pages stay light
    # the first load of the charts page, compressed, under the 300-KB budget of issue #9 §8
    total = len(page.data)
    for ref in re.findall(r'<link rel="stylesheet" href="([^"]+)"', html) + re.findall(r'<script src="([^"]+)"',
                                                                                          html):
        got = client.get(ref, headers=GZIP)
        assert got.status_code == 200, ref
        total += len(got.data)
    print(f"charts page, first load: {total / 1024:.1f} KB gzip")
    assert total < 300 * 1024, total
