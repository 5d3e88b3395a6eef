"""Issue #10 §6, "where cases wait": the working time of each step (set with its completion, backfilled by
migration 0009), its median and 90th percentile per step, unit and person this month against the last, the
steps where the overdue work sits (each number the total of the overdue report it links to), a predicted
finish date beside the promised due, and the list of cases predicted to run late — on SQLite and PostgreSQL,
on a world the engine builds (cases started and steps completed at chosen instants on the manual clock).

The world's step times are chosen so the medians can be worked out by hand (comments give the arithmetic).
"""
from __future__ import annotations

import csv
import io
from datetime import date, datetime, timedelta
from typing import Any

import openpyxl
import pytest
from sqlalchemy import select, update

from engine import db, orgs, timers
from engine.clock import SHANGHAI, ManualClock
from engine.errors import InvalidInput, NotFound
from engine.models import Case, TaskRow
from engine.policy import Actor
from engine.reports import histogram, overdue, predict, waits
from engine.workdays import WorkCalendar, file_calendar, work_hundredths, work_start

from .conftest import CLERK, OTHER_CLERK, TOWNSHIP, complete, form_for, ready_tasks, snapshot, start, worker_for
from .test_reports import TOWN_SUPERVISOR, _town_supervisor, _username, finish
from .webtools import login

CLERK2 = "clerk-430902102201-2"
ZHOU_CLERK = "clerk-430902102202-1"
SHITANG_CLERK = "clerk-430902103201-1"
ZOU, ZHOU, SHITANG, QINGSHAN = "430902102201", "430902102202", "430902103201", "430921101201"
YINGFENG, SHATOU, ZIYANG = "430902102", "430902103", "430902"
INTAKE, REVIEW = "Task_VillageIntake", "Task_TownshipReview"


def sh(*args: int) -> datetime:
    return datetime(*args, tzinfo=SHANGHAI)


NOW = sh(2026, 11, 18, 10, 0)  # a Wednesday: "this month" is November 2026, compared with October


# ------------------------------------------------------------------------------------------- working time
def test_the_working_time_of_a_step_counts_working_days_hours_only():
    cal = file_calendar()
    assert work_hundredths(sh(2026, 11, 2, 9, 0), sh(2026, 11, 2, 11, 24), cal) == 10  # 2.4 h of a Monday
    assert work_hundredths(sh(2026, 11, 2, 20, 0), sh(2026, 11, 3, 8, 0), cal) == 50  # across midnight: 4 h + 8 h
    # Friday 16:00 → Monday 10:00: 8 h + 10 h, the weekend not counted
    assert work_hundredths(sh(2026, 11, 6, 16, 0), sh(2026, 11, 9, 10, 0), cal) == 75
    # 2026-10-10 is a 调休 Saturday (worked), 10-11 a Sunday: Friday noon → Sunday noon = 12 h + 24 h
    assert work_hundredths(sh(2026, 10, 9, 12, 0), sh(2026, 10, 11, 12, 0), cal) == 150
    # National Day: 09-30 noon → 10-09 noon = 12 h (09-30) + 24 h (10-08) + 12 h (10-09); 10-01 … 10-07 off
    assert work_hundredths(sh(2026, 9, 30, 12, 0), sh(2026, 10, 9, 12, 0), cal) == 200
    assert work_hundredths(sh(2026, 10, 3, 9, 0), sh(2026, 10, 4, 18, 0), cal) == 0  # a holiday weekend
    assert work_hundredths(sh(2026, 11, 2, 9, 0), sh(2026, 11, 2, 9, 0), cal) == 0
    assert work_hundredths(sh(2026, 11, 3, 9, 0), sh(2026, 11, 2, 9, 0), cal) == 0  # never negative
    assert work_hundredths(sh(2026, 11, 2, 9, 0), sh(2026, 11, 2, 9, 7), cal) == 0  # 7 minutes: 0.005, rounds to 0
    assert work_hundredths(sh(2026, 11, 2, 9, 0), sh(2026, 11, 2, 9, 8), cal) == 1  # 8 minutes: 0.0056, to 0.01
    # the calendar decides: a schedule publishing Friday 11-06 as a holiday takes its 8 hours out
    published = WorkCalendar(published={2026: (frozenset({date(2026, 11, 6)}), frozenset())})
    assert work_hundredths(sh(2026, 11, 6, 16, 0), sh(2026, 11, 9, 10, 0), published) == 42
    # the inverse: the latest start from which a given working time has passed
    assert work_start(sh(2026, 11, 9, 10, 0), 75, cal) == sh(2026, 11, 6, 16, 0)
    assert work_start(sh(2026, 11, 9, 10, 0), 25, cal) == sh(2026, 11, 9, 4, 0)  # 6 h back within Monday


def test_work_start_inverts_the_working_time():
    cal = file_calendar()
    end = sh(2026, 10, 9, 12, 0)
    for hundredths in (0, 10, 50, 100, 150, 200, 1000):
        begin = work_start(end, hundredths, cal)
        assert work_hundredths(begin, end, cal) == hundredths, hundredths
        assert work_hundredths(begin + timedelta(minutes=30), end, cal) < hundredths or hundredths == 0
    assert work_start(end, 200, cal) == sh(2026, 9, 30, 12, 0)  # back over National Day


def test_percentiles_by_nearest_rank_and_the_buckets():
    assert histogram.percentile({}, 50) is None
    assert histogram.percentile({3: 1, 4: 1, 6: 1, 7: 1, 8: 1}, 50) == 6
    assert histogram.percentile({3: 1, 4: 1, 6: 1, 7: 1, 8: 1}, 90) == 8
    assert histogram.percentile({1: 2, 2: 2}, 50) == 1  # an even count: the lower middle value
    assert histogram.percentile({1: 9, 5: 1}, 90) == 1 and histogram.percentile({1: 8, 5: 2}, 90) == 5
    for w in (0, 9, 10, 99, 999, 1000, 1099, 1100, 5999, 6000, 99999):
        b = histogram.bucket_of(w)
        assert histogram.bucket_floor(b) <= w
        ceiling = histogram.bucket_ceiling(b)
        assert ceiling is None or w < ceiling
    assert histogram.bucket_floor(histogram.bucket_of(1234)) == 1200  # whole days from 10 on
    stat = histogram.Stat.of({histogram.bucket_of(w): 1 for w in (10, 20, 30, 100, 300)})
    assert (stat.count, stat.median, stat.p90, stat.open_ended) == (5, 0.3, 3.0, False)
    assert histogram.Stat.of({histogram.bucket_of(7000): 1}).open_ended


def test_the_90th_percentile_read_in_sql_is_the_histograms_nearest_rank(db_engine):
    """`histogram._p90_part` reads the 90th percentile off each (step, unit) pair's buckets in SQL (a running
    sum): it must be `percentile(…, 90)` of the same buckets, every pair with fewer steps than asked left out
    — here on histograms made to sit on the rank's edges (n = 10: rank 9; n = 11 and 20: rank 10 and 18;
    everything in one bucket; the top bucket alone past 90 %)."""
    import random

    from sqlalchemy import Integer, String, literal, union_all
    rng = random.Random(5)
    pairs: dict[tuple[str, str, int], dict[int, int]] = {
        ("A", "s1", 1): {3: 9, 7: 1}, ("A", "s1", 2): {3: 8, 7: 2}, ("A", "s2", 1): {0: 10, 150: 1},
        ("B", "s1", 1): {5: 20}, ("B", "s1", 3): {1: 17, 2: 1, 3: 2}, ("B", "s2", 3): {4: 2, 9: 1},  # 3 < 5
        ("B", "s2", 4): {1: 1, 2: 1, 3: 1, 4: 1, 5: 1},
    }
    for i in range(12):  # and some at random
        pairs[("C", f"r{i}", i)] = {rng.randrange(151): rng.randint(1, 4) for _ in range(rng.randint(1, 9))}
    # the steps counted by unit, month and bucket (`unit_buckets`), a bucket's steps split between the months
    rows = [select(literal(item, String).label("item"), literal(step, String).label("step"),
                   literal(unit, Integer).label("key"), literal(this, Integer).label("this"),
                   literal(bucket, Integer).label("bucket"), literal(part, Integer).label("n"))
            for (item, step, unit), h in pairs.items() for bucket, n in h.items()
            for this, part in ((0, n // 2), (1, n - n // 2)) if part]
    units = union_all(*rows).cte("unit_buckets")
    with db.read(db_engine) as s:
        got = {(r.item, r.step, int(r.key)): (int(r.bucket), int(r.n))
               for r in s.execute(histogram._p90_part(units, 5))}
    want = {k: (histogram.percentile(h, 90), sum(h.values())) for k, h in pairs.items() if sum(h.values()) >= 5}
    assert got == want
    assert got[("A", "s1", 1)] == (3, 10) and got[("A", "s1", 2)] == (7, 10) and got[("A", "s2", 1)] == (0, 11)
    assert ("B", "s2", 3) not in got


# ------------------------------------------------------------------------------------------- the world
def _at(clock: ManualClock, when: datetime) -> datetime:
    clock.set(when)
    return when


def _intake(engine: Any, number: str) -> None:
    """Complete the case's first ready step (its intake, held by the clerk who started it) now."""
    task = ready_tasks(engine, number)[0]
    who = _username(engine, task.assignee_id) if task.assignee_id else worker_for(engine, task)
    complete(engine, task.id, who, form_for(engine, task))


@pytest.fixture
def waits_world(seeded: Any, manual_clock: ManualClock) -> dict[str, str]:
    """Cases on 2026-11-18 10:00, every step at a chosen instant, in time order (then the sweep)."""
    w: dict[str, str] = {}
    clk = manual_clock

    def begin(name: str, when: datetime, service: str = "FX-PENSION", actor: str = CLERK, village: str = ZOU) -> None:
        w[name] = start(seeded, service=service, actor=actor, village=village, now=_at(clk, when)).case_number

    def intake(name: str, when: datetime) -> None:
        _at(clk, when)
        _intake(seeded, w[name])

    # September, the history: five FX-PENSION cases of 周家村 (迎风桥镇) closed after 3, 4, 6, 7, 8 working days
    for i in range(5):
        begin(f"h{i}", sh(2026, 9, 7, 9, 0), actor=ZHOU_CLERK, village=ZHOU)
    for i in range(5):
        intake(f"h{i}", sh(2026, 9, 7, 9, 30))
    for i, day in enumerate((10, 11, 15, 16, 17)):
        _at(clk, sh(2026, 9, day, 10, 0))
        finish(seeded, w[f"h{i}"])
    # October (last month): three intakes at 邹家村 taking 0.5, 1.0 and 2.0 working days
    for i in range(3):
        begin(f"o{i}", sh(2026, 10, 12, 9, 0))
    intake("o0", sh(2026, 10, 12, 21, 0))
    intake("o1", sh(2026, 10, 13, 9, 0))
    intake("o2", sh(2026, 10, 14, 9, 0))
    # November: 邹家村's five intakes 0.1, 0.2, 0.3, 1.0, 3.0 (by two clerks), 周家村's 0.5; 石塘村's FX-DIBAO 0.1
    for name, actor in (("a1", CLERK), ("a2", CLERK2), ("a3", CLERK), ("a4", CLERK2), ("a5", CLERK)):
        begin(name, sh(2026, 11, 2, 9, 0), actor=actor)
    begin("z1", sh(2026, 11, 2, 9, 0), actor=ZHOU_CLERK, village=ZHOU)
    for i in range(5):
        begin(f"d{i}", sh(2026, 11, 2, 9, 0), service="FX-DIBAO", actor=SHITANG_CLERK, village=SHITANG)
    intake("a1", sh(2026, 11, 2, 11, 24))
    for i in range(5):
        intake(f"d{i}", sh(2026, 11, 2, 11, 24))
    intake("a2", sh(2026, 11, 2, 13, 48))
    intake("a3", sh(2026, 11, 2, 16, 12))
    intake("z1", sh(2026, 11, 2, 21, 0))
    intake("a4", sh(2026, 11, 3, 9, 0))
    intake("a5", sh(2026, 11, 5, 9, 0))
    # open cases whose promised due is still ahead on 11-18
    begin("held", sh(2026, 11, 13, 9, 0), service="FX-DIBAO", actor=SHITANG_CLERK, village=SHITANG)  # intake waits
    begin("soon", sh(2026, 11, 16, 9, 0))  # its intake waits; promised due 11-23
    begin("yellow", sh(2026, 11, 16, 9, 0), actor=ZHOU_CLERK, village=ZHOU)  # at the township from 10:00
    intake("yellow", sh(2026, 11, 16, 10, 0))
    begin("county_basis", sh(2026, 11, 18, 9, 0), actor=SHITANG_CLERK, village=SHITANG)
    begin("city_basis", sh(2026, 11, 18, 9, 0), actor=OTHER_CLERK, village=QINGSHAN)
    begin("no_history", sh(2026, 11, 18, 9, 0), service="FX-DIBAO")
    timers.sweep(seeded, _at(clk, NOW))
    _town_supervisor(seeded)
    return w


def reader(engine: Any, username: str) -> Actor:
    with db.read(engine) as s:
        return orgs.actor_by_name(s, username)


def _row(rows: tuple[waits.WaitRow, ...], item: str, step: str, key: str | None = None) -> waits.WaitRow:
    (found,) = [r for r in rows if r.service_code == item and r.bpmn_id == step and r.key == key]
    return found


def _stat(s: histogram.Stat) -> tuple[int, float | None, float | None]:
    return s.count, s.median, s.p90


def test_a_completed_step_carries_its_working_time_and_the_backfill_agrees(waits_world, seeded):
    with db.read(seeded) as s:
        intakes = dict(s.execute(select(Case.number, TaskRow.work_hundredths).join(Case, Case.id == TaskRow.case_id)
                                 .where(TaskRow.bpmn_id == INTAKE, TaskRow.state == "completed")).all())
        kept = dict(s.execute(select(TaskRow.id, TaskRow.work_hundredths).where(TaskRow.state == "completed")).all())
        others = s.execute(select(TaskRow.state, TaskRow.work_hundredths).where(TaskRow.state != "completed")).all()
    w = waits_world
    assert [intakes[w[n]] for n in ("o0", "o1", "o2", "a1", "a2", "a3", "a4", "a5", "z1", "yellow")] == [
        50, 100, 200, 10, 20, 30, 100, 300, 50, 4]
    assert others and all(h is None for _, h in others)  # ready and cancelled steps have none
    # migration 0009's backfill computes the same numbers from created/completed alone
    with seeded.begin() as conn:
        conn.execute(update(TaskRow).values(work_hundredths=None))
        from engine.cases.projection import backfill_work_hundredths
        assert backfill_work_hundredths(conn, batch=7) == len(kept)
        assert backfill_work_hundredths(conn) == 0  # nothing left without a value
    with db.read(seeded) as s:
        assert dict(s.execute(select(TaskRow.id, TaskRow.work_hundredths)
                              .where(TaskRow.state == "completed")).all()) == kept


def test_medians_and_90th_percentiles_per_step_unit_and_person(waits_world, seeded):
    with db.read(seeded) as s:
        town = waits.waits_report(s, reader(seeded, TOWN_SUPERVISOR), None, now=NOW)
        assert town.unit.code == YINGFENG and (town.month, town.previous) == (date(2026, 11, 1), date(2026, 10, 1))
        intake = _row(town.steps, "FX-PENSION", INTAKE)
        assert (intake.step, intake.level, intake.service_name) == (
            "受理待遇申领材料", "village", "城乡居民养老保险待遇申领")
        # November: 0.04 (yellow), 0.1, 0.2, 0.3, 0.5, 1.0, 3.0 → the 4th of 7 and the 7th (⌈6.3⌉)
        assert _stat(intake.this) == (7, 0.3, 3.0)
        assert _stat(intake.last) == (3, 1.0, 2.0)  # October: 0.5, 1.0, 2.0
        assert intake.change == -0.7
        by_unit = {r.key: r for r in town.by_unit if r.bpmn_id == INTAKE}
        assert set(by_unit) == {ZOU, ZHOU} and by_unit[ZOU].who == "邹家村"
        assert _stat(by_unit[ZOU].this) == (5, 0.3, 3.0) and _stat(by_unit[ZOU].last) == (3, 1.0, 2.0)
        assert _stat(by_unit[ZHOU].this) == (2, 0.0, 0.5) and _stat(by_unit[ZHOU].last) == (0, None, None)
        by_person = {r.key: r for r in town.by_person if r.bpmn_id == INTAKE}
        assert _stat(by_person[CLERK].this) == (3, 0.3, 3.0)  # 0.1, 0.3, 3.0
        assert _stat(by_person[CLERK2].this) == (2, 0.2, 1.0)  # 0.2, 1.0
        assert _stat(by_person[ZHOU_CLERK].this) == (2, 0.0, 0.5) and by_person[CLERK].last.count == 3
        # each breakdown holds every step once: its counts add up to the step's
        for rows in (town.by_unit, town.by_person):
            assert sum(r.this.count for r in rows if r.bpmn_id == INTAKE and r.service_code == "FX-PENSION") == 7
        # the county's report adds 沙头镇: 石塘村's FX-DIBAO intakes (0.1 each)
        county = waits.waits_report(s, reader(seeded, "supervisor-430902"), None, now=NOW)
        assert _stat(_row(county.steps, "FX-DIBAO", INTAKE).this) == (5, 0.1, 0.1)
        assert _stat(_row(county.steps, "FX-PENSION", INTAKE).this) == (7, 0.3, 3.0)
        # the counts are those of the completed steps, one by one
        this, last = waits.month_of(None, NOW), waits.month_of("2026-10", NOW)
        sub = waits.scope.subtree(s, reader(seeded, "supervisor-430902"), None)
        n = s.scalar(select(waits.func.count()).select_from(TaskRow).join(Case, Case.id == TaskRow.case_id)
                     .where(*waits.completed_where(sub, this, last)))
        assert n == sum(r.this.count + r.last.count for r in county.steps)


def test_last_month_against_the_month_before(waits_world, seeded):
    with db.read(seeded) as s:
        october = waits.waits_report(s, reader(seeded, TOWN_SUPERVISOR), None, "2026-10", now=NOW)
        assert (october.month, october.previous) == (date(2026, 10, 1), date(2026, 9, 1))
        intake = _row(october.steps, "FX-PENSION", INTAKE)
        assert _stat(intake.this) == (3, 1.0, 2.0)
        assert _stat(intake.last) == (5, 0.0, 0.0)  # September's history cases: half an hour each
        review = _row(october.steps, "FX-PENSION", REVIEW)
        # September's reviews: 09-07 09:30 → 09-10/11/15/16/17 10:00 = 3.02, 4.02, 6.02, 7.02, 8.02 working days
        assert (review.this.count, _stat(review.last)) == (0, (5, 6.0, 8.0))
        january = waits.waits_report(s, reader(seeded, TOWN_SUPERVISOR), None, "2026-01", now=NOW)
        assert january.steps == () and january.by_person == ()


def test_a_bad_month_is_refused_and_nothing_changes(waits_world, seeded, client):
    town = reader(seeded, TOWN_SUPERVISOR)
    with db.read(seeded) as s:
        for bad in ("2026-13", "2026-12", "2027-01", "26-11", "2026-1", "november", "1969-12", "2026-11-01"):
            with pytest.raises(InvalidInput) as refused:
                waits.waits_report(s, town, None, bad, now=NOW)
            assert refused.value.reason in waits.MONTH_REASONS, bad
    login(client, TOWN_SUPERVISOR)
    before = snapshot(seeded)  # after logging in (which notes the login)
    page = client.get(f"/reports/{YINGFENG}/waits?month=2026-13")
    html = page.get_data(as_text=True)
    assert page.status_code == 400 and 'aria-invalid="true"' in html and 'role="alert"' in html
    assert "2026-13" in html and "预计将超期" not in html  # the message, not a half-read report
    assert client.get(f"/reports/{YINGFENG}/waits?month=2026-12").status_code == 400  # not yet begun
    assert client.get(f"/reports/{YINGFENG}/waits?month=x&format=xlsx").status_code in (400, 422)
    assert client.get(f"/reports/{YINGFENG}/waits?format=pdf").status_code in (400, 422)
    assert client.get(f"/reports/{YINGFENG}/waits?format=csv&table=secrets").status_code in (400, 422)
    assert snapshot(seeded) == before


# ------------------------------------------------------------------------------------------- overdue steps
def _overdue_total(s: Any, actor: Actor, filters: dict[str, str], warning: str | None = None) -> int:
    given = {**filters, **({"warning": warning} if warning else {})}
    return overdue.overdue_report(s, actor, given, now=NOW, limit=1).total


@pytest.mark.parametrize("username, unit", [("supervisor-430902", None), (TOWN_SUPERVISOR, None),
                                            ("supervisor", None), ("supervisor", ZOU), (TOWNSHIP, None),
                                            ("admin", SHATOU)])
def test_each_overdue_step_number_is_the_total_of_the_overdue_report_it_links_to(waits_world, seeded, username,
                                                                                 unit):
    actor = reader(seeded, username)
    with db.read(seeded) as s:
        report = waits.waits_report(s, actor, unit, now=NOW)
        assert report.hot
        for h in report.hot:
            assert _overdue_total(s, actor, dict(h.filters)) == h.red, h
            assert _overdue_total(s, actor, dict(h.filters), "yellow") == h.yellow, h
        own = {"unit": report.unit.code}
        assert sum(h.red for h in report.hot) == _overdue_total(s, actor, own)
        assert sum(h.yellow for h in report.hot) == _overdue_total(s, actor, own, "yellow")
        assert [(h.red, h.yellow) for h in report.hot] == sorted(((h.red, h.yellow) for h in report.hot),
                                                                reverse=True)


def test_the_steps_holding_the_overdue_work(waits_world, seeded):
    with db.read(seeded) as s:
        town = waits.waits_report(s, reader(seeded, TOWN_SUPERVISOR), None, now=NOW)
        top = town.hot[0]
        # o0…o2, a1…a5 and z1 wait at the township's review (due 3 working days after their intakes)
        assert (top.service_code, top.step, top.level, top.unit_code, top.red, top.yellow) == (
            "FX-PENSION", "乡镇社保所审核", "township", YINGFENG, 9, 1)
        assert dict(top.filters) == {"unit": YINGFENG, "item": "FX-PENSION", "step": "乡镇社保所审核",
                                     "level": "township"}
        village = [h for h in town.hot if h.step == "受理待遇申领材料"]
        assert [(h.unit_code, h.red, h.yellow, h.combined) for h in village] == [(ZOU, 0, 1, False)]  # "soon"
        # an officer may not open a village's report: the villages' steps are counted at the township, together
        officer = waits.waits_report(s, reader(seeded, TOWNSHIP), None, now=NOW)
        village = [h for h in officer.hot if h.step == "受理待遇申领材料"]
        assert [(h.unit_code, h.yellow, h.combined) for h in village] == [(YINGFENG, 1, True)]


# ------------------------------------------------------------------------------------------- predictions
def _predictions(s: Any, w: dict[str, str], *names: str) -> dict[str, predict.Prediction]:
    ids = {s.scalar(select(Case.id).where(Case.number == w[n])): n for n in names}
    subjects = predict._subjects(s, list(ids))
    return {ids[k]: v for k, v in predict.predict(s, subjects, NOW).items()}


def test_a_predicted_finish_date_from_the_history_of_the_item_and_its_units(waits_world, seeded):
    w = waits_world
    with db.read(seeded) as s:
        p = _predictions(s, w, "soon", "yellow", "county_basis", "city_basis", "no_history", "held", "a1")
    soon = p["soon"]
    # 迎风桥镇's history: 3, 4, 6, 7, 8 working days → T = 6; promised 5 from 11-16 → due 11-23, 3 days left on
    # 11-18 → E = 2; its intake (held 2.04 days) is expected to take 3.0 like the one intake that took longer
    assert (soon.basis, soon.history, soon.typical_workdays, soon.elapsed_workdays) == ("township", 5, 6, 2)
    assert (soon.step, soon.step_workdays, soon.step_typical) == ("受理待遇申领材料", 2.04, 0.5)
    assert (soon.remaining_workdays, soon.predicted, soon.promised, soon.late) == (
        4, date(2026, 11, 24), date(2026, 11, 23), True)
    # its township review has no history within STEP_HISTORY_DAYS (September's are older): T − E alone
    assert (p["yellow"].predicted, p["yellow"].late, p["yellow"].step) == (date(2026, 11, 24), True, None)
    county = p["county_basis"]  # 沙头镇 has no history of its own: 资阳区's
    assert (county.basis, county.history, county.typical_workdays, county.elapsed_workdays) == ("county", 5, 6, 0)
    assert (county.predicted, county.promised, county.late) == (date(2026, 11, 26), date(2026, 11, 25), True)
    assert (p["city_basis"].basis, p["city_basis"].predicted) == ("city", date(2026, 11, 26))  # 南县: the city's
    assert (p["no_history"].basis, p["no_history"].predicted, p["no_history"].late) == ("none", None, False)
    assert (p["held"].basis, p["held"].predicted) == ("none", None)  # FX-DIBAO: no case completed
    # a case already past its promised due: predicted from where it stands (its step alone here)
    assert p["a1"].late and p["a1"].promised == date(2026, 11, 9) and p["a1"].predicted >= NOW.date()


def test_a_paused_or_closed_case_gets_no_prediction(waits_world, seeded):
    from engine import cases
    w = waits_world
    with db.transaction(seeded) as s:
        cases.pause_case(s, w["soon"], orgs.actor_by_name(s, CLERK), "等待补正材料")
    with db.read(seeded) as s:
        assert _predictions(s, w, "soon")["soon"].basis == "paused"
        assert predict.for_case(s, w["h0"], reader(seeded, ZHOU_CLERK), NOW) is None  # closed in September
        with pytest.raises(NotFound):  # another county's clerk may not see the case, nor its prediction
            predict.for_case(s, w["soon"], reader(seeded, OTHER_CLERK), NOW)


def test_the_case_page_shows_the_predicted_finish_beside_the_promised_due(waits_world, seeded, client):
    login(client, CLERK)
    html = client.get(f"/cases/{waits_world['soon']}").get_data(as_text=True)
    assert "预计办结" in html and "2026-11-24" in html and "将超期" in html
    closed = client.get(f"/cases/{waits_world['o0']}").get_data(as_text=True)  # open, no promise left
    assert "预计办结" in closed
    none = client.get(f"/cases/{waits_world['no_history']}").get_data(as_text=True)
    assert "无历史，无法预计" in none


# ------------------------------------------------------------------------------------------- the list
def _walk(s: Any, actor: Actor, unit: str | None = None) -> tuple[int, list[predict.AtRiskRow]]:
    first = predict.at_risk(s, actor, unit, limit=1, now=NOW)
    rows, page = list(first.page.items), first.page
    while page.next_cursor:
        page = predict.at_risk(s, actor, unit, page.next_cursor, limit=1, now=NOW).page
        rows += page.items
    assert len({r.case_number for r in rows}) == len(rows)
    return first.total, rows


def test_the_cases_predicted_late(waits_world, seeded):
    w = waits_world
    names = {v: k for k, v in w.items()}
    with db.read(seeded) as s:
        total, rows = _walk(s, reader(seeded, "supervisor-430902"))
        assert total == len(rows) == 4
        assert [names[r.case_number] for r in rows] == ["soon", "yellow", "county_basis", "held"]  # by promised due
        by = {names[r.case_number]: r for r in rows}
        assert [(r.kind, r.typical, r.limit) for r in by["soon"].reasons] == [("typical", 6, 5)]
        assert by["soon"].prediction.predicted == date(2026, 11, 24) and by["soon"].prediction.late
        assert by["soon"].steps == (("受理待遇申领材料", "邹家村"),) and by["soon"].holders == ("盛巧云",)
        # 石塘村's FX-DIBAO intake: held 3.04 working days (Fri 15 h, Mon, Tue, Wed 10 h) — its five others took 0.1
        (held,) = by["held"].reasons
        assert (held.kind, held.step, held.held, held.p90) == ("held", "受理并核查申请材料", 3.04, 0.1)
        assert by["held"].prediction.basis == "none"  # a warning, not a prediction: no FX-DIBAO case has closed
        town_total, town_rows = _walk(s, reader(seeded, TOWN_SUPERVISOR))
        assert [names[r.case_number] for r in town_rows] == ["soon", "yellow"]
        _, city_rows = _walk(s, reader(seeded, "supervisor"))
        assert {names[r.case_number] for r in city_rows} == {"soon", "yellow", "county_basis", "held", "city_basis"}
        # nothing late, paused, closed or without a promise is listed: the running, promised, not yet due ones
        for r in city_rows:
            row = s.scalar(select(Case).where(Case.number == r.case_number))
            assert row.status == "open" and row.paused_at is None and row.promised_due_at > NOW
        with pytest.raises(InvalidInput):
            predict.at_risk(s, reader(seeded, TOWN_SUPERVISOR), None, "bad-cursor", now=NOW)
        with pytest.raises(NotFound):
            predict.at_risk(s, reader(seeded, TOWN_SUPERVISOR), SHATOU, now=NOW)


# ------------------------------------------------------------------------------------------- the page
def test_a_township_supervisor_gets_404_for_another_townships_waits(waits_world, seeded, client):
    login(client, TOWN_SUPERVISOR)
    assert client.get(f"/reports/{YINGFENG}/waits").status_code == 200
    assert client.get(f"/reports/{ZOU}/waits").status_code == 200
    for url in (f"/reports/{SHATOU}/waits", f"/reports/{SHITANG}/waits", f"/reports/{ZIYANG}/waits",
                f"/reports/{SHATOU}/waits?format=xlsx", f"/reports/{SHATOU}/waits?format=csv&table=late",
                f"/reports/{SHATOU}/waits?month=2026-13", "/reports/999999999/waits"):
        assert client.get(url).status_code == 404, url
    with db.read(seeded) as s:
        with pytest.raises(NotFound):
            waits.waits_report(s, reader(seeded, TOWN_SUPERVISOR), SHATOU, now=NOW)
    client.post("/logout", data={})
    login(client, TOWNSHIP)  # a township officer: the township's own page, not its villages'
    page = client.get(f"/reports/{YINGFENG}/waits")
    assert page.status_code == 200 and "（所辖各单位合计）" in page.get_data(as_text=True)
    assert client.get(f"/reports/{ZOU}/waits").status_code == 404
    client.post("/logout", data={})
    login(client, CLERK)
    assert client.get(f"/reports/{YINGFENG}/waits").status_code == 403


def test_the_page_and_its_files_hold_the_same_rows(waits_world, seeded, client):
    login(client, "supervisor-430902")
    page = client.get(f"/reports/{ZIYANG}/waits")
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    for text in ("等待分析", "各环节用时", "按单位", "按经办人", "超期集中的环节", "预计将超期", "受理待遇申领材料",
                 "2026-11-24", "同类办件通常需 6 个工作日，承诺 5 个"):
        assert text in html, text
    assert f'href="/reports/overdue?unit={YINGFENG}&amp;item=FX-PENSION&amp;step=' in html  # numbers link
    assert 'href="/reports/430902/waits"' in client.get(f"/reports/{ZIYANG}").get_data(as_text=True)  # the tab
    with db.read(seeded) as s:
        report = waits.waits_report(s, reader(seeded, "supervisor-430902"), None, now=NOW)
        _, late = _walk(s, reader(seeded, "supervisor-430902"))
    book = openpyxl.load_workbook(io.BytesIO(client.get(f"/reports/{ZIYANG}/waits?format=xlsx").data))
    assert book.sheetnames == ["各环节用时", "按单位", "按经办人", "超期集中的环节", "预计将超期"]
    steps = list(book["各环节用时"].iter_rows(min_row=2, values_only=True))
    assert [(r[0], r[2], r[4], r[5], r[6]) for r in steps] == [
        (x.service_code, x.step, x.this.count, x.this.median, x.this.p90) for x in report.steps]
    units = list(book["按单位"].iter_rows(min_row=2, values_only=True))
    assert [(r[0], r[5], r[6]) for r in units] == [(x.service_code, x.key, x.this.count) for x in report.by_unit]
    people = list(book["按经办人"].iter_rows(min_row=2, values_only=True))
    assert [(r[5], r[6]) for r in people] == [(x.key or "", x.this.count) for x in report.by_person]
    hot = list(book["超期集中的环节"].iter_rows(min_row=2, values_only=True))
    assert [(r[2], r[5], r[6]) for r in hot] == [(h.step, h.red, h.yellow) for h in report.hot]
    sheet = book["预计将超期"]
    header = [c.value for c in sheet[1]]
    rows = list(sheet.iter_rows(min_row=2, values_only=True))
    assert [r[0] for r in rows] == [r.case_number for r in late]
    assert sheet.cell(row=2, column=header.index("预计办结") + 1).is_date
    assert rows[0][header.index("预计办结")] == datetime(2026, 11, 24)
    text = client.get(f"/reports/{ZIYANG}/waits?format=csv&table=late").get_data(as_text=True)
    lines = list(csv.reader(io.StringIO(text[1:])))
    assert [line[0] for line in lines[1:]] == [r.case_number for r in late]
    text = client.get(f"/reports/{ZIYANG}/waits?format=csv").get_data(as_text=True)  # the steps by default
    assert len(list(csv.reader(io.StringIO(text[1:])))) == len(report.steps) + 1


def test_the_page_reads_only_its_first_units_and_people_and_the_same_thresholds(waits_world, seeded):
    """The page asks SQL for only the rows its tables show (the first units and people, ranked there) and
    the list's thresholds from the same statement: its tables are the first rows of the whole report's, its
    list the one `at_risk` builds on its own."""
    for who, unit in (("supervisor-430902", None), ("supervisor", None), (TOWN_SUPERVISOR, YINGFENG)):
        with db.read(seeded) as s:
            actor = reader(seeded, who)
            whole = waits.waits_report(s, actor, unit, now=NOW)
            report, late = waits.page(s, actor, unit, None, None, limits={"units": 1, "people": 1, "steps": 50},
                                      now=NOW)
            alone = predict.at_risk(s, actor, unit, now=NOW)
            this = waits.month_of(None, NOW)
            found = waits.histograms(s, waits.scope.subtree(s, actor, unit), this, this.previous(), p90_min=1)
        assert len(whole.by_unit) > 1 and len(whole.by_person) > 1 and found.p90, who  # the cut cuts
        assert report.by_unit == whole.by_unit[:1] and report.by_person == whole.by_person[:1], who
        assert report.steps == whole.steps and report.totals == whole.totals, who
        assert [r.case_number for r in late.page.items] == [r.case_number for r in alone.page.items], who
        assert late.total == alone.total, who
        # the thresholds are the percentiles of the units' own histograms
        for (item, step, unit_id), h in found["unit"].items():
            merged = histogram.merged((h.this, h.last))
            assert found.p90[(item, step, unit_id)] == histogram.percentile(merged, 90)
        assert len(found.p90) == len(found["unit"])


def test_the_page_shows_a_page_of_the_list_at_a_time(waits_world, seeded, client, monkeypatch):
    from web.supervise import pages as view  # the report pages' page size
    monkeypatch.setattr(view, "PAGE_SIZE", 3)
    login(client, "supervisor-430902")
    html = client.get(f"/reports/{ZIYANG}/waits").get_data(as_text=True)
    import re
    more = re.search(r'<a href="([^"]+)" rel="next">', html)
    assert more is not None
    import html as htmllib
    second = client.get(htmllib.unescape(more.group(1))).get_data(as_text=True)
    assert waits_world["held"] in second and waits_world["soon"] not in second



# ------------------------------------------------------------------------------------------- in the browser
WAITS_SHOT = "/tmp/yicun_waits.png"
WAITS_PHONE_SHOT = "/tmp/yicun_waits_phone.png"


@pytest.mark.browser
def test_the_waits_page_in_chromium_at_1366_and_on_a_phone(waits_world, seeded, tmp_path):
    """The county supervisor opens 等待分析 from the board's tabs (the app served on the world's clock), follows
    an overdue number to the overdue report it counts, and the page fits a 1366×768 screen and a 360-px phone."""
    import contextlib
    import os

    from engine import clock
    from web import create_app

    from . import test_browser as tb
    if os.environ.get("YICUN_REQUIRE_BROWSER") is None and not tb.CHROMIUM.exists():
        pytest.skip(f"{tb.CHROMIUM} is missing")
    from playwright.sync_api import sync_playwright

    app = create_app({"DATABASE_URL": seeded.url.render_as_string(hide_password=False), "DEMO": True,
                      "INSTANCE_DIR": str(tmp_path / "instance")})
    inner = app.wsgi_app

    def on_the_worlds_clock(environ: Any, start_response: Any) -> Any:  # every request at NOW
        with clock.using(ManualClock(NOW)):
            return list(inner(environ, start_response))

    app.wsgi_app = on_the_worlds_clock  # type: ignore[method-assign]
    with contextlib.ExitStack() as stack:
        web = stack.enter_context(tb._Server(app))
        pw = stack.enter_context(sync_playwright())
        browser = pw.chromium.launch(executable_path=str(tb.CHROMIUM), args=tb.CHROMIUM_ARGS)
        stack.callback(browser.close)
        base = f"http://127.0.0.1:{web.port}"
        errors: list[str] = []
        page = browser.new_page(viewport={"width": 1366, "height": 768}, locale="zh-CN")
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.on("response", lambda r: errors.append(f"{r.status} {r.url}")
                if r.status >= 400 and not r.url.endswith("/favicon.ico") else None)
        tb.sign_in(page, base, "supervisor-430902")
        page.goto(f"{base}/reports")
        page.click("nav.report-nav >> text=等待分析")
        page.wait_for_url(f"{base}/reports/{ZIYANG}/waits")
        assert "等待分析" in page.inner_text("h1")
        first = page.locator("table.hot tbody tr").first
        assert "乡镇社保所审核" in first.inner_text()
        red = first.locator("td.num a").first
        assert red.inner_text().strip() == "9"
        assert page.evaluate("document.documentElement.scrollWidth") <= 1366  # no sideways scrolling
        late = page.locator("table.late tbody tr")
        assert late.count() == 4 and "2026-11-24" in late.first.inner_text()
        page.screenshot(path=WAITS_SHOT, full_page=False)
        page.screenshot(path=WAITS_SHOT.replace(".png", "_full.png"), full_page=True)
        red.click()
        page.wait_for_url("**/reports/overdue?**")
        assert "共 9 个环节" in page.inner_text("p.report-links")
        phone = browser.new_page(viewport={"width": 360, "height": 740}, locale="zh-CN")
        tb.sign_in(phone, base, "supervisor-430902")
        phone.goto(f"{base}/reports/{ZIYANG}/waits")
        assert phone.evaluate("document.documentElement.scrollWidth") <= 360 + 1
        phone.screenshot(path=WAITS_PHONE_SHOT, full_page=False)
        phone.goto(f"{base}/reports/{ZIYANG}/waits#late")
        phone.screenshot(path=WAITS_PHONE_SHOT.replace(".png", "_late.png"), full_page=False)
        assert errors == []
