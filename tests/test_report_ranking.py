"""Issue #10 §4: the monthly ranking of townships and villages (on-time rate, 好差评) and the service-day digests
of the counties and the city — on SQLite and PostgreSQL, on a world the engine made (cases started, worked to
their end on the manual clock, rated by their applicants through `cases.rate_case`), never rows written by hand.

What must hold: competition ranks with ties, and units short of the minimum sample listed unranked; every
on-time number equals the board's for that month and the total of the drill-down list it links to; the 好差评
numbers are those of the ratings given; a bad month is refused with nothing changed; a township supervisor gets
404 for another township's ranking and for the county's digest; the county and city digests hold the board's
numbers of that morning and are seen by the county and city supervisors; the Excel file has the page's rows.
"""
from __future__ import annotations

import csv
import html as htmllib
import io
import re
from datetime import date, datetime
from fractions import Fraction
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from sqlalchemy import select

from engine import cases, db, reports, service_day, timers
from engine.clock import SHANGHAI, ManualClock
from engine.errors import InvalidInput, NotFound
from engine.models import Case, OrgUnit, ServiceDayDigest
from engine.reports import ranking
from engine.reports.measures import Measure, Month

from .conftest import CLERK, OTHER_CLERK, complete, form_for, ready_tasks, snapshot, start, user, worker_for
from .test_reports import (
    CITY,
    NANXIAN,
    QINGSHAN,
    SHATOU,
    SHITANG,
    TOWN_SUPERVISOR,
    YINGFENG,
    ZHOU,
    ZIYANG,
    ZOU,
    _town_supervisor,
    reader,
)
from .webtools import login

NANZHOU = "430921101"  # 南洲镇, 南县
ZHOU_CLERK, SHITANG_CLERK = "clerk-430902102202-1", "clerk-430902103201-1"
COUNTY_SUPERVISOR = "supervisor-430902"
NOW = datetime(2026, 11, 18, 10, 0, tzinfo=SHANGHAI)
SERVICE_DAY = date(2026, 11, 10)
MORNING = datetime(2026, 11, 10, 6, 0, tzinfo=SHANGHAI)
RANKING_SHOT = Path("/tmp/yicun_ranking.png")
DIGEST_SHOT = Path("/tmp/yicun_digest_county.png")
PHONE_SHOT = Path("/tmp/yicun_ranking_phone.png")

#: October 2026, per village: (its clerk, cases completed on time, completed late, the ratings of its completed ones)
PLAN = {ZOU: (CLERK, 4, 1, (5, 5, 4, 3, 1)), ZHOU: (ZHOU_CLERK, 4, 1, (5, 4, 4, 4, 3)),
        SHITANG: (SHITANG_CLERK, 6, 0, (5, 5, 5)), QINGSHAN: (OTHER_CLERK, 2, 0, ())}


def sh(*args: int) -> datetime:
    return datetime(*args, tzinfo=SHANGHAI)


def _username(engine: Any, user_id: int) -> str:
    from engine.models import User
    with db.read(engine) as s:
        return s.get(User, user_id).username


def finish(engine: Any, number: str) -> None:
    """Complete whatever is ready until the case closes (at the clock's instant)."""
    for _ in range(8):
        open_tasks = ready_tasks(engine, number)
        if not open_tasks:
            return
        task = open_tasks[0]
        who = worker_for(engine, task) if task.assignee_id is None else _username(engine, task.assignee_id)
        complete(engine, task.id, who, form_for(engine, task))
    raise AssertionError(f"{number} did not finish")


def rate(engine: Any, number: str, score: int, when: datetime) -> None:
    """The applicant rates the case with its number and 查询码, as the public page does."""
    with db.transaction(engine) as s:
        code = s.scalar(select(Case.query_code).where(Case.number == number))
        cases.rate_case(s, number, code, score, now=when)


@pytest.fixture
def world(seeded: Any, manual_clock: ManualClock) -> dict[str, Any]:
    """October's closures as PLAN says (accepted Mon 10-12 with 5 promised working days; on time: closed Tue
    10-13, 1 working day; late: Mon 10-26, 10), a withdrawn case of 邹家村 rated 2, a 周家村 case closed in
    November rated 1; open cases for the service day of 11-10 (two overdue, one young, one paused); the
    sweep run on 11-10 at 06:00, where the clock is left."""
    w: dict[str, Any] = {"on_time": {}, "late": {}}
    manual_clock.set(sh(2026, 10, 12, 9, 0))
    started: dict[str, list[str]] = {}
    for village, (clerk, on_time, late, _) in PLAN.items():
        started[village] = [start(seeded, service="FX-PENSION", actor=clerk, village=village,
                                  now=manual_clock.now()).case_number for _ in range(on_time + late)]
    w["withdrawn"] = start(seeded, service="FX-PENSION", now=manual_clock.now()).case_number
    manual_clock.set(sh(2026, 10, 13, 10, 0))
    for village, (_, on_time, _, _) in PLAN.items():
        w["on_time"][village] = started[village][:on_time]
        for number in w["on_time"][village]:
            finish(seeded, number)
    manual_clock.set(sh(2026, 10, 20, 9, 0))
    with db.transaction(seeded) as s:
        cases.withdraw_case(s, w["withdrawn"], user(seeded, CLERK), "申请人撤回")
    manual_clock.set(sh(2026, 10, 26, 10, 0))
    for village, (_, on_time, _, _) in PLAN.items():
        w["late"][village] = started[village][on_time:]
        for number in w["late"][village]:
            finish(seeded, number)
    w["november"] = start(seeded, service="FX-PENSION", actor=ZHOU_CLERK, village=ZHOU,
                          now=manual_clock.now()).case_number
    w["open_zou"] = start(seeded, service="FX-PENSION", now=manual_clock.now()).case_number  # due 24:00 11-02
    w["open_shitang"] = start(seeded, service="FX-PENSION", actor=SHITANG_CLERK, village=SHITANG,
                              now=manual_clock.now()).case_number
    for village, (_, _, _, scores) in PLAN.items():
        rated = started[village][:len(scores)]  # the on-time ones first, then the late
        for number, score in zip(rated, scores, strict=True):
            rate(seeded, number, score, sh(2026, 10, 28, 15, 0))
    rate(seeded, w["withdrawn"], 2, sh(2026, 10, 28, 15, 0))
    manual_clock.set(sh(2026, 11, 2, 9, 0))
    w["paused"] = start(seeded, service="FX-DIBAO", actor=OTHER_CLERK, village=QINGSHAN,
                        now=manual_clock.now()).case_number
    manual_clock.set(sh(2026, 11, 3, 10, 0))
    finish(seeded, w["november"])
    rate(seeded, w["november"], 1, sh(2026, 11, 4, 9, 0))
    with db.transaction(seeded) as s:
        cases.pause_case(s, w["paused"], user(seeded, OTHER_CLERK), "等待补正材料")
    manual_clock.set(sh(2026, 11, 9, 9, 0))
    w["young"] = start(seeded, service="FX-PENSION", actor=ZHOU_CLERK, village=ZHOU,
                       now=manual_clock.now()).case_number
    manual_clock.set(MORNING)
    timers.sweep(seeded, MORNING)
    _town_supervisor(seeded)
    return w


def rows_of(r: ranking.Ranking, level: str) -> dict[str, ranking.RankingRow]:
    return {row.code: row for lv in r.levels if lv.level == level for row in lv.rows}


def walk(s: Any, actor: Any, code: str, measure: Measure, month: str, **filters: str) -> tuple[int, int]:
    """A drill-down's total and the rows met walking its pages (small pages, to cross several)."""
    first = reports.cases_for(s, actor, code, measure, limit=2, now=NOW, month=month, **filters)
    seen, page = len(first.page.items), first.page
    while page.next_cursor:
        page = reports.cases_for(s, actor, code, measure, limit=2, cursor=page.next_cursor, now=NOW, month=month,
                                 **filters).page
        seen += len(page.items)
    return first.total, seen


# ------------------------------------------------------------------------------------------- ranks
def test_competition_ranks_tie_and_skip():
    third = Fraction(1, 3)
    assert ranking.ranks([Fraction(1), Fraction(4, 5), Fraction(8, 10), third, None]) == [1, 2, 2, 4, None]
    assert ranking.ranks([Fraction(2, 3), Fraction(2, 3), Fraction(2, 3)]) == [1, 1, 1]
    assert ranking.ranks([Fraction(667, 1000), Fraction(2, 3)]) == [1, 2]  # exact values, not rounded ones
    assert ranking.ranks([]) == []


def test_the_city_ranks_its_townships_and_villages_by_on_time_rate(world, seeded):
    city = reader(seeded, "supervisor")
    with db.read(seeded) as s:
        found = ranking.ranking(s, city, None, now=NOW)
        assert (found.unit.code, found.month, found.month_complete, found.order) == (CITY, date(2026, 10, 1), True,
                                                                                  "on_time")
        assert [lv.level for lv in found.levels] == ["township", "village"]
        towns, villages = found.levels
        assert [(r.code, r.on_time_rank) for r in towns.rows] == [(SHATOU, 1), (YINGFENG, 2), (NANZHOU, None)]
        assert towns.ranked == 2
        assert [(r.code, r.on_time_rank) for r in villages.rows] == [(SHITANG, 1), (ZOU, 2), (ZHOU, 2),
                                                                    (QINGSHAN, None)]  # 样本不足: 2 judged
        zou = rows_of(found, "village")[ZOU].counts
        assert (zou.completed, zou.on_time, zou.late, zou.timed, zou.workdays) == (5, 4, 1, 5, 4 * 1 + 10)
        assert zou.on_time_rate == 0.8 and zou.average_workdays == 2.8 and zou.closed == 6  # the withdrawn one
        assert rows_of(found, "village")[ZOU].parent == "迎风桥镇"
        yingfeng = rows_of(found, "township")[YINGFENG].counts
        assert (yingfeng.completed, yingfeng.on_time, yingfeng.late) == (10, 8, 2)
        assert rows_of(found, "township")[YINGFENG].parent == "资阳区"
        # a smaller minimum: 青山村 (2 of 2) ties 石塘村 at the top, and the next rank is 3
        small = ranking.ranking(s, city, None, now=NOW, min_sample=2)
        assert [(r.code, r.on_time_rank) for r in small.levels[1].rows] == [(SHITANG, 1), (QINGSHAN, 1), (ZOU, 3),
                                                                            (ZHOU, 3)]
        county = ranking.ranking(s, reader(seeded, COUNTY_SUPERVISOR), None, now=NOW)
        assert [r.code for r in county.levels[0].rows] == [SHATOU, YINGFENG]
        assert [r.code for r in county.levels[1].rows] == [SHITANG, ZOU, ZHOU]
        town = ranking.ranking(s, reader(seeded, TOWN_SUPERVISOR), None, now=NOW)
        assert [lv.level for lv in town.levels] == ["village"]
        assert [(r.code, r.on_time_rank) for r in town.levels[0].rows] == [(ZOU, 1), (ZHOU, 1)]
        village = ranking.ranking(s, city, ZOU, now=NOW)
        assert village.levels == ()  # nothing below a village to rank
        november = ranking.ranking(s, city, None, "2026-11", now=NOW)  # the current month, up to now
        assert november.month_complete is False
        zhou = rows_of(november, "village")[ZHOU].counts
        assert (zhou.completed, zhou.late, zhou.rated, zhou.score_sum) == (1, 1, 1, 1)  # due 11-02, closed 11-03
        assert all(r.on_time_rank is None for lv in november.levels for r in lv.rows)


def test_the_on_time_numbers_are_the_boards_and_their_lists_of_that_month(world, seeded):
    city, county = reader(seeded, "supervisor"), reader(seeded, COUNTY_SUPERVISOR)
    october_end = sh(2026, 10, 31, 23, 0)  # the board seen at the end of October counts October's closures
    with db.read(seeded) as s:
        for actor, unit in ((city, None), (county, None), (county, YINGFENG), (reader(seeded, TOWN_SUPERVISOR), None)):
            found = ranking.ranking(s, actor, unit, "2026-10", now=NOW)
            boards = {found.unit.code: reports.board(s, actor, found.unit.code, "unit", now=october_end)}
            for lv in found.levels:
                for row in lv.rows:
                    c = row.counts
                    for measure, number in ((Measure.COMPLETED, c.completed), (Measure.ON_TIME, c.on_time),
                                            (Measure.LATE, c.late), (Measure.TIMED, c.timed)):
                        assert walk(s, actor, found.unit.code, measure, "2026-10", unit=row.code) == (number, number), (
                            unit, row.code, measure)
                    parent = row.path.rstrip("/").split("/")[-2]
                    if parent not in boards:
                        boards[parent] = reports.board(s, city, parent, "unit", now=october_end)
                    board_row = next(r for r in boards[parent].rows if r.key == row.code).counts
                    assert (board_row.completed, board_row.on_time, board_row.late, board_row.timed,
                            board_row.workdays, board_row.on_time_rate, board_row.average_workdays) == (
                        c.completed, c.on_time, c.late, c.timed, c.workdays, c.on_time_rate, c.average_workdays)
        # the list without a month is this month's, as before
        assert reports.cases_for(s, county, None, Measure.COMPLETED, unit=ZOU, now=NOW).total == 0
        assert reports.cases_for(s, county, None, Measure.COMPLETED, unit=ZOU, now=october_end).total == 5
        assert reports.cases_for(s, county, None, Measure.ON_TIME, unit=ZOU, now=NOW, month="2026-10").month == date(
            2026, 10, 1)


def test_the_rating_score_is_that_of_the_ratings_given(world, seeded):
    city = reader(seeded, "supervisor")
    with db.read(seeded) as s:
        found = ranking.ranking(s, city, None, "2026-10", "rating", now=NOW)
        zou, zhou, shitang = (rows_of(found, "village")[v].counts for v in (ZOU, ZHOU, SHITANG))
        # 邹家村: 5, 5, 4, 3, 1 and its withdrawn case's 2; 周家村's November rating (1) is November's
        assert (zou.rated, zou.score_sum, zou.good, zou.bad) == (6, 20, 4, 2)
        assert zou.average_score == 3.33 and zou.good_share == 4 / 6
        assert (zhou.rated, zhou.score_sum, zhou.good, zhou.average_score, zhou.good_share) == (5, 20, 5, 4.0, 1.0)
        assert (shitang.rated, shitang.average_score) == (3, 5.0)
        assert [(r.code, r.rating_rank) for r in found.levels[1].rows] == [(ZHOU, 1), (ZOU, 2), (SHITANG, None),
                                                                          (QINGSHAN, None)]
        assert [(r.code, r.rating_rank) for r in found.levels[0].rows] == [(YINGFENG, 1), (SHATOU, None),
                                                                          (NANZHOU, None)]
        yingfeng = rows_of(found, "township")[YINGFENG].counts
        assert (yingfeng.rated, yingfeng.score_sum, yingfeng.good) == (11, 40, 9)
        three = ranking.ranking(s, city, None, "2026-10", "rating", now=NOW, min_sample=3)
        assert [(r.code, r.rating_rank) for r in three.levels[1].rows] == [(SHITANG, 1), (ZHOU, 2), (ZOU, 3),
                                                                          (QINGSHAN, None)]


def test_a_bad_month_or_order_is_refused_and_nothing_changes(world, seeded, client, manual_clock):
    city = reader(seeded, "supervisor")
    with db.read(seeded) as s:
        for bad, reason in (("2026-12", "report.month_future"), ("2027-01", "report.month_future"),
                            ("2026-13", "report.month_invalid"), ("2026-1", "report.month_invalid"),
                            ("1969-12", "report.month_invalid"), ("abc", "report.month_invalid"),
                            (" 2026-10", "report.month_invalid"), ("2026-10-01", "report.month_invalid"),
                            (202610, "report.month_invalid")):
            with pytest.raises(InvalidInput) as refused:
                ranking.ranking(s, city, None, bad, now=NOW)
            assert refused.value.reason == reason, bad
            with pytest.raises(InvalidInput):
                reports.cases_for(s, city, None, Measure.COMPLETED, now=NOW, month=bad)
        with pytest.raises(InvalidInput) as refused:
            ranking.ranking(s, city, None, "2026-10", "name", now=NOW)
        assert refused.value.reason == "report.order_invalid"
        assert Month.parse("2026-11", NOW).first_day == date(2026, 11, 1)  # the current month may be chosen
    manual_clock.set(NOW)
    before = snapshot(seeded)
    login(client, "supervisor")
    for url in (f"/reports/{CITY}/ranking?month=2026-12", f"/reports/{CITY}/ranking?month=xx",
                f"/reports/{CITY}/ranking?order=best", f"/reports/{CITY}/ranking?month=2027-01&format=xlsx",
                f"/reports/{CITY}/cases?measure=completed&month=2026-13",
                f"/reports/{CITY}/cases?measure=completed&month=2030-01&format=csv"):
        got = client.get(url)
        assert got.status_code == 422, url
    page = client.get(f"/reports/{CITY}/ranking?month=2026-12").get_data(as_text=True)
    assert "还没有到" in page
    login_rows = {"users"}  # signing in records the login on the user's row, nothing else
    after = snapshot(seeded)
    assert {t for t in before if before[t] != after[t]} <= login_rows


def test_a_township_supervisor_gets_404_for_another_townships_ranking_and_the_countys_digest(world, seeded, client):
    town = reader(seeded, TOWN_SUPERVISOR)
    with db.read(seeded) as s:
        for code in (SHATOU, ZIYANG, CITY, NANXIAN, SHITANG, "999999999", "x'--"):
            with pytest.raises(NotFound):
                ranking.ranking(s, town, code, now=NOW)
    service_day.run(seeded, SERVICE_DAY, now=MORNING)
    login(client, TOWN_SUPERVISOR)
    for url in (f"/reports/{SHATOU}/ranking", f"/reports/{ZIYANG}/ranking", f"/reports/{CITY}/ranking?format=xlsx",
                f"/reports/{SHATOU}/ranking?month=2026-10&format=csv", f"/service-day/{ZIYANG}",
                f"/service-day/{CITY}", f"/service-day/{SHATOU}"):
        assert client.get(url).status_code == 404, url
    own = client.get(f"/reports/{YINGFENG}/ranking?month=2026-10")
    assert own.status_code == 200
    html = own.get_data(as_text=True)
    assert "邹家村" in html and "石塘村" not in html and "村排名" in html and "乡镇排名" not in html
    assert client.get(f"/service-day/{YINGFENG}").status_code == 200


def test_the_service_day_builds_county_and_city_digests_with_the_boards_numbers(world, seeded, monkeypatch):
    out = service_day.run(seeded, SERVICE_DAY, now=MORNING)
    with db.read(seeded) as s:
        stored = s.scalar(select(ServiceDayDigest.id).where(ServiceDayDigest.service_date == SERVICE_DAY).limit(1))
        assert stored is not None
        units = s.execute(select(OrgUnit.level)).scalars().all()
        assert out["digests"] == len(units)  # every unit, the county and city ones too
        county = service_day.get_digest(s, ZIYANG)
        city = service_day.get_digest(s, CITY)
        board = reports.board(s, reader(seeded, COUNTY_SUPERVISOR), None, "unit", now=MORNING)
        october = ranking.ranking(s, reader(seeded, COUNTY_SUPERVISOR), None, "2026-10", now=MORNING)
        city_board = reports.board(s, reader(seeded, "supervisor"), None, "unit", now=MORNING)
    assert county["kind"] == "summary" and county["month"] == "2026-10" and county["service_date"] == "2026-11-10"
    assert [c["code"] for c in county["children"]] == [YINGFENG, SHATOU]
    by_town = {r.key: r.counts for r in board.rows}
    towns = rows_of(october, "township")
    for child in county["children"]:
        now_counts = by_town[child["code"]]
        assert (child["open"], child["due_soon"], child["overdue"], child["paused"], child["cards"]) == (
            now_counts.open, now_counts.due_soon, now_counts.overdue, now_counts.paused, now_counts.cards)
        last = towns[child["code"]].counts
        assert (child["completed"], child["on_time"], child["late"], child["on_time_rate"]) == (
            last.completed, last.on_time, last.late, last.on_time_rate)
    yingfeng = next(c for c in county["children"] if c["code"] == YINGFENG)
    assert (yingfeng["open"], yingfeng["overdue"], yingfeng["completed"], yingfeng["on_time_rate"]) == (2, 1, 10, 0.8)
    assert county["totals"]["open"] == board.overall.open == 3 and county["counts"]["overdue"] == 2
    assert [e["number"] for e in county["most_overdue"]] == [world["open_zou"], world["open_shitang"]]
    first = county["most_overdue"][0]
    assert (first["unit"], first["village"], first["days_overdue"]) == ("迎风桥镇", "邹家村", 6)
    assert [c["code"] for c in city["children"]] == [ZIYANG, NANXIAN]
    nanxian = next(c for c in city["children"] if c["code"] == NANXIAN)
    city_rows = {r.key: r.counts for r in city_board.rows}
    assert (nanxian["paused"], nanxian["completed"], nanxian["on_time_rate"]) == (1, 2, 1.0)
    assert nanxian["paused"] == city_rows[NANXIAN].paused
    assert city["totals"]["completed"] == 18 and city["totals"]["on_time"] == 16 and city["totals"]["open"] == 4
    from engine.cli.schedule import _summary_text  # `yicun service-day show --unit 430902` without --json
    lines = _summary_text(county).splitlines()
    assert lines[0] == "资阳区 便民集中服务日 2026-11-10: overdue 2, due soon 0, paused 0"
    assert lines[1].split() == ["迎风桥镇", "open", "2,", "due", "soon", "0,", "overdue", "1,", "paused", "0,",
                                "completed", "in", "2026-10", "10", "(on", "time", "80.0%)"]
    assert lines[-2].startswith(f"  overdue  {world['open_zou']} FX-PENSION")
    assert lines[-2].endswith("6 working days late")
    # the list is bounded, whatever the county holds
    monkeypatch.setattr(service_day, "MOST_OVERDUE", 1)
    with db.read(seeded) as s:
        unit = s.scalar(select(OrgUnit).where(OrgUnit.code == ZIYANG))
        again = service_day.build_digest(s, unit, MORNING)
    assert [e["number"] for e in again["most_overdue"]] == [world["open_zou"]] and again["most_overdue_limit"] == 1
    assert service_day.run(seeded, SERVICE_DAY, now=MORNING)["digests"] == 0  # once per unit and day


def test_a_village_or_township_digest_lists_its_first_cases_and_counts_them_all(world, seeded, monkeypatch,
                                                                                   client):
    """A busy township holds thousands of overdue steps: its digest lists each kind's first LISTED (soonest
    due first) and counts all of them — the same counts and the same first rows as an uncut digest; the page
    says how many are not listed."""
    monkeypatch.setattr(service_day, "LISTED", 10_000)
    with db.read(seeded) as s:
        units = list(s.scalars(select(OrgUnit).where(OrgUnit.level.in_(("township", "village")))))
        whole = {u.code: service_day.build_digest(s, u, NOW) for u in units}
    monkeypatch.setattr(service_day, "LISTED", 1)
    cut_somewhere = False
    with db.read(seeded) as s:
        for u in units:
            cut = service_day.build_digest(s, u, NOW)
            assert cut["counts"] == whole[u.code]["counts"], u.code
            for kind in ("overdue", "due_soon", "paused"):
                assert cut["counts"][kind] == len(whole[u.code][kind]), (u.code, kind)
                assert cut[kind] == whole[u.code][kind][:1], (u.code, kind)
                cut_somewhere |= cut["counts"][kind] > 1
    assert cut_somewhere  # the world has a unit with more than one case of a kind: the cut was tested
    service_day.run(seeded, SERVICE_DAY, now=NOW)  # stored by the service day's run (cut at LISTED), then shown
    code = next(c for c, d in whole.items() if any(d["counts"][k] > 1 for k in ("overdue", "due_soon", "paused")))
    login(client, COUNTY_SUPERVISOR)
    html = client.get(f"/service-day/{code}").get_data(as_text=True)
    kind = next(k for k in ("overdue", "due_soon", "paused") if whole[code]["counts"][k] > 1)
    assert f"共 {whole[code]['counts'][kind]} 件，这里列出期限最早的 1 件。" in html


def test_county_and_city_digests_are_seen_by_their_supervisors(world, seeded, client):
    service_day.run(seeded, SERVICE_DAY, now=MORNING)
    login(client, COUNTY_SUPERVISOR)
    got = client.get(f"/service-day/{ZIYANG}")
    assert got.status_code == 200
    html = got.get_data(as_text=True)
    assert "资阳区" in html and "迎风桥镇" in html and "沙头镇" in html and "超期最久的办件" in html
    assert world["open_zou"] in html and "2026年10月办结" in html and "80.0%" in html
    assert f'href="/service-day/{YINGFENG}"' in html  # down to a township's own digest
    assert "服务日摘要" in html and f'href="/reports/{ZIYANG}/ranking"' in html  # the reports' tabs
    assert client.get(f"/service-day/{CITY}").status_code == 404
    assert client.get(f"/service-day/{NANXIAN}").status_code == 404
    board = client.get("/reports").get_data(as_text=True)
    assert f'href="/service-day/{ZIYANG}"' in board and "月度排名" in board
    client.post("/logout", data={})
    login(client, "supervisor")
    html = client.get(f"/service-day/{CITY}").get_data(as_text=True)
    assert "益阳市" in html and "资阳区" in html and "南县" in html and "各县（市、区）" in html
    assert client.get(f"/service-day/{ZIYANG}").status_code == 200
    from .webtools import csrf_token
    client.post("/language", data={"lang": "en", "next": "/", "csrf_token": csrf_token(client, "/")})
    assert "南县" in client.get(f"/service-day/{CITY}").get_data(as_text=True)  # renders in English too
    client.post("/language", data={"lang": "zh_CN", "next": "/", "csrf_token": csrf_token(client, "/")})
    assert "各县（市、区）" in client.get(f"/service-day/{CITY}").get_data(as_text=True)
    client.post("/logout", data={})
    login(client, CLERK)  # a clerk sees the village's digest, as before, and no reports' tabs
    html = client.get("/service-day").get_data(as_text=True)
    assert "邹家村" in html and "月度排名" not in html
    assert client.get(f"/service-day/{ZIYANG}").status_code == 404


# ------------------------------------------------------------------------------------------- the page and files
def _page_codes(html: str) -> list[tuple[str, str]]:
    """(rank cell, unit code) of the rows of each table of the ranking page, in order."""
    rows = re.findall(r'<td class="num rank"[^>]*>(.*?)</td>\s*<th scope="row"[^>]*>(?:<a href="/reports/([0-9]+)">|'
                      r'<bdi>)', html, re.S)
    return [(re.sub(r"<[^>]+>", "", rank), code) for rank, code in rows]


def test_the_ranking_page_links_each_number_to_its_list_and_downloads_its_rows(world, seeded, client, manual_clock):
    manual_clock.set(NOW)
    login(client, COUNTY_SUPERVISOR)
    got = client.get(f"/reports/{ZIYANG}/ranking")
    assert got.status_code == 200
    html = got.get_data(as_text=True)
    assert "2026年10月" in html and "乡镇排名" in html and "村排名" in html
    assert _page_codes(html) == [("1", SHATOU), ("2", YINGFENG), ("1", SHITANG), ("2", ZOU), ("2", ZHOU)]
    links = [htmllib.unescape(u) for u in re.findall(r'href="(/reports/[0-9]+/cases\?[^"]+)"', html)]
    zou_on_time = f"/reports/{ZIYANG}/cases?measure=on_time&unit={ZOU}&month=2026-10"
    assert zou_on_time in links
    listed = client.get(zou_on_time).get_data(as_text=True)
    assert sorted(re.findall(r'<a href="/cases/(YY-[0-9-]+)"><b>', listed)) == sorted(world["on_time"][ZOU])
    assert "2026年10月" in listed
    for link in links:  # every number's list holds as many cases as the number says
        total = re.search(r'共 ([0-9]+) 件', client.get(link).get_data(as_text=True))
        assert total is not None, link
    by_rating = client.get(f"/reports/{ZIYANG}/ranking?order=rating&month=2026-10").get_data(as_text=True)
    assert _page_codes(by_rating)[2:] == [("1", ZHOU), ("2", ZOU), ("样本不足", SHITANG)]
    assert client.get(f"/reports/{ZIYANG}/ranking?month=2026-11").status_code == 200

    book = openpyxl.load_workbook(io.BytesIO(client.get(f"/reports/{ZIYANG}/ranking?month=2026-10&format=xlsx").data))
    assert book.sheetnames == ["乡镇排名", "村排名"]
    sheet = book["村排名"]
    header = [c.value for c in sheet[1]]
    assert header[:4] == ["名次", "单位", "代码", "所属乡镇"] and sheet.freeze_panes == "A2"
    rows = list(sheet.iter_rows(min_row=2, values_only=True))
    assert [(r[0], r[2]) for r in rows] == [(1, SHITANG), (2, ZOU), (2, ZHOU)]  # the page's rows, in its order
    zou = rows[1]
    assert zou[header.index("办结")] == 5 and zou[header.index("按时办结率")] == 0.8
    assert sheet.cell(row=3, column=header.index("按时办结率") + 1).number_format == "0.0%"
    assert zou[header.index("评价数")] == 6 and zou[header.index("差评")] == 2
    city_book = openpyxl.load_workbook(io.BytesIO(client.get(f"/reports/{ZIYANG}/ranking?format=xlsx&order=rating")
                                                  .data))
    assert [r[1] for r in city_book["村排名"].iter_rows(min_row=2, values_only=True)] == ["周家村", "邹家村", "石塘村"]
    assert [r[-1] for r in city_book["村排名"].iter_rows(min_row=2, values_only=True)] == [None, None, "样本不足"]
    text = client.get(f"/reports/{ZIYANG}/ranking?month=2026-10&format=csv&level=township").get_data(as_text=True)
    lines = list(csv.reader(io.StringIO(text[1:])))
    assert lines[0][:2] == ["名次", "单位"] and [line[2] for line in lines[1:]] == [SHATOU, YINGFENG]
    assert client.get(f"/reports/{ZIYANG}/ranking?format=csv&level=county").status_code == 422
    from .webtools import csrf_token
    client.post("/language", data={"lang": "en", "next": "/", "csrf_token": csrf_token(client, "/")})
    english = client.get(f"/reports/{ZIYANG}/ranking?month=2026-10&order=rating")
    assert english.status_code == 200 and _page_codes(english.get_data(as_text=True))[2:4] == [("1", ZHOU), ("2", ZOU)]


def test_a_long_level_shows_its_top_and_bottom():
    from web.supervise.ranking import LONG_LEVEL, SHOWN, shown_rows
    counts = ranking.RankCounts.of(type("R", (), {"on_time": 5, "late": 0})())

    def level(ranked: int, unranked: int) -> ranking.RankingLevel:
        rows = [ranking.RankingRow(f"{i:04d}", "", "", "", counts, i + 1, None) for i in range(ranked)]
        rows += [ranking.RankingRow(f"9{i:03d}", "", "", "", counts, None, None) for i in range(unranked)]
        return ranking.RankingLevel("village", tuple(rows), ranked)

    top, gap, bottom, hidden = shown_rows(level(10, 3))
    assert (len(top), gap, bottom, hidden) == (13, 0, [], 0)  # short: every row
    top, gap, bottom, hidden = shown_rows(level(1000, 184))
    assert (len(top), gap, len(bottom), hidden) == (SHOWN, 1000 - 2 * SHOWN, SHOWN, 184)
    assert top[0].code == "0000" and bottom[-1].code == "0999"
    top, gap, bottom, hidden = shown_rows(level(30, LONG_LEVEL))
    assert (len(top), gap, bottom, hidden) == (30, 0, [], LONG_LEVEL)


# ------------------------------------------------------------------------------------------- in Chromium
@pytest.mark.browser
def test_the_ranking_and_the_county_digest_in_chromium(world, seeded, tmp_path, db_kind):
    from .test_browser import _MAY_SKIP, CHROMIUM, served_browser, sign_in
    if db_kind != "sqlite":
        pytest.skip("the browser pages are checked on SQLite")
    if _MAY_SKIP and not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing")
    pytest.importorskip("playwright")
    service_day.run(seeded, SERVICE_DAY, now=MORNING)
    with served_browser(seeded, tmp_path) as (base, browser):
        page = browser.new_page(viewport={"width": 1366, "height": 768})
        sign_in(page, base, COUNTY_SUPERVISOR)
        page.goto(f"{base}/reports/{ZIYANG}/ranking?month=2026-10")
        assert page.locator("h1").inner_text().startswith("资阳区")
        assert page.locator("table.ranking").count() == 2
        assert page.evaluate("document.documentElement.scrollWidth") <= 1366
        page.screenshot(path=str(RANKING_SHOT), full_page=True)
        page.click("nav.report-nav >> text=服务日摘要")
        page.wait_for_url(f"{base}/service-day/{ZIYANG}")
        assert page.locator("table.digest tbody tr").count() == 3  # two townships and the total
        assert page.evaluate("document.documentElement.scrollWidth") <= 1366
        page.screenshot(path=str(DIGEST_SHOT), full_page=True)
        phone = browser.new_page(viewport={"width": 360, "height": 740})
        sign_in(phone, base, COUNTY_SUPERVISOR)
        phone.goto(f"{base}/reports/{ZIYANG}/ranking?month=2026-10")
        assert phone.evaluate("document.documentElement.scrollWidth") <= 360
        phone.screenshot(path=str(PHONE_SHOT), full_page=True)
        phone.goto(f"{base}/service-day/{ZIYANG}")
        assert phone.evaluate("document.documentElement.scrollWidth") <= 360


def test_a_cut_township_digest_in_chromium(world, seeded, tmp_path, db_kind, monkeypatch):
    """The township's digest, its lists cut (LISTED 1 here), says how many it holds and links its live board."""
    from .test_browser import _MAY_SKIP, CHROMIUM, served_browser, sign_in
    if db_kind != "sqlite":
        pytest.skip("the browser pages are checked on SQLite")
    if _MAY_SKIP and not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing")
    pytest.importorskip("playwright")
    monkeypatch.setattr(service_day, "LISTED", 1)
    service_day.run(seeded, SERVICE_DAY, now=NOW)
    with db.read(seeded) as s:
        digest = service_day.get_digest(s, YINGFENG)
    kind = next(k for k in ("overdue", "due_soon", "paused") if digest["counts"][k] > 1)
    with served_browser(seeded, tmp_path) as (base, browser):
        page = browser.new_page(viewport={"width": 1366, "height": 768})
        sign_in(page, base, COUNTY_SUPERVISOR)
        page.goto(f"{base}/service-day/{YINGFENG}")
        hint = page.locator("p.hint", has_text=f"共 {digest['counts'][kind]} 件")
        assert hint.count() == 1 and "这里列出期限最早的 1 件" in hint.inner_text()
        hint.locator("a").click()
        page.wait_for_url(f"{base}/reports/{YINGFENG}")
        page.go_back()
        page.screenshot(path="/tmp/yicun_digest_township.png", full_page=True)
