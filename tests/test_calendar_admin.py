"""Issue #10 §7: an admin publishes next year's holiday schedule (validated, audited) and the dues that
were estimated Monday–Friday for it are counted again — legal, promised, step timers — case by case.

The State Council's real 2027 schedule is not known yet (it comes out in November 2026). `SCHEDULE_2027`
below is a plausible **test** schedule (the festivals on their 2027 dates, invented periods and 调休 days);
the expected dues are counted independently of engine.workdays (`_independent_due`).
"""
from __future__ import annotations

import subprocess
import sys
import textwrap
from datetime import date, datetime, timedelta
from typing import Any

import chinese_calendar
import pytest
from sqlalchemy import func, select

from engine import calendar_admin, cases, clock, db, orgs, queries, workdays
from engine.calendar_admin import parse_schedule
from engine.cases import recompute
from engine.cli import main
from engine.errors import Conflict, Forbidden, InvalidInput
from engine.models import AuditEvent, CalendarDay, CalendarYear, Case, Pause, TaskRow, TimerRow
from engine.policy import Actor

from .conftest import CLERK, COUNTY_MZ, ROOT, ready_tasks, snapshot, start, user

pytestmark = pytest.mark.db

SH = clock.SHANGHAI
ADMIN = "admin"
SUPERVISOR = "supervisor"

#: a TEST schedule for 2027 (not the State Council's: that is published in November 2026)
SCHEDULE_2027 = textwrap.dedent("""\
    # 2027 test schedule
    2027-01-01~2027-01-03 元旦
    2027-02-06~2027-02-13 春节
    2027-02-14 春节调休上班
    2027-04-03~2027-04-05 清明节
    2027-04-25 劳动节调休上班
    2027-05-01~2027-05-05 劳动节
    2027-05-08 劳动节调休上班
    2027-06-09 端午节
    2027-09-15 中秋节
    2027-09-26 国庆节调休上班
    2027-10-01~2027-10-07 国庆节
    2027-10-09 国庆节调休上班
    """)
OFF_2027 = {date(2027, 1, 1) + timedelta(days=i) for i in range(3)} \
    | {date(2027, 2, 6) + timedelta(days=i) for i in range(8)} \
    | {date(2027, 4, 3) + timedelta(days=i) for i in range(3)} \
    | {date(2027, 5, 1) + timedelta(days=i) for i in range(5)} \
    | {date(2027, 6, 9), date(2027, 9, 15)} | {date(2027, 10, 1) + timedelta(days=i) for i in range(7)}
WORKED_2027 = {date(2027, 2, 14), date(2027, 4, 25), date(2027, 5, 8), date(2027, 9, 26), date(2027, 10, 9)}
SOURCE = "测试用 2027 年节假日安排（非国务院正式通知）"


def sh(*args: int) -> datetime:
    return datetime(*args, tzinfo=SH)


def _is_working(day: date, off: set[date] = OFF_2027, worked: set[date] = WORKED_2027) -> bool:
    """The test's own calendar: chinese-calendar's data tables for 2026, SCHEDULE_2027 for 2027."""
    if day.year == 2027:
        return day in worked or (day.weekday() < 5 and day not in off)
    if day in chinese_calendar.holidays:
        return False
    return day in chinese_calendar.workdays or day.weekday() < 5


def _independent_due(start: date, n: int, **schedule: set[date]) -> date:
    """The n-th working day strictly after `start`, counted here, not by engine.workdays."""
    day, found = start, 0
    while found < n:
        day += timedelta(days=1)
        found += _is_working(day, **schedule)
    return day


def _end(day: date) -> datetime:
    return datetime.combine(day + timedelta(days=1), datetime.min.time(), SH)


def _actor(engine: Any, username: str) -> Actor:
    with db.read(engine) as s:
        return orgs.actor_by_name(s, username)


def _case(engine: Any, number: str) -> Case:
    with db.read(engine) as s:
        return s.scalars(select(Case).where(Case.number == number)).one()


def _timers(engine: Any, number: str) -> dict[str, TimerRow]:
    with db.read(engine) as s:
        return {t.bpmn_id: t for t in s.scalars(select(TimerRow).join(Case, Case.id == TimerRow.case_id).where(
            Case.number == number, TimerRow.state.in_(("armed", "paused"))))}


def _audits(engine: Any, action: str) -> list[AuditEvent]:
    with db.read(engine) as s:
        return list(s.scalars(select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id)))


def _publish(engine: Any, text: str = SCHEDULE_2027, *, year: int = 2027, who: str = ADMIN, **kw: Any):
    return calendar_admin.publish(engine, _actor(engine, who), year, parse_schedule(text), SOURCE, clock.now(), **kw)


# ------------------------------------------------------------------------------------------- recompute
def test_publishing_2027_makes_a_late_december_case_exact(seeded, manual_clock):
    manual_clock.set(sh(2026, 12, 29, 10, 0))  # a Tuesday: the 25 working days run deep into 2027
    r = start(seeded, service="FX-DIBAO", now=manual_clock.now())
    before = _case(seeded, r.case_number)
    step_before = _timers(seeded, r.case_number)["Timer_VillageIntake_Warn"]
    withdraw_before = _timers(seeded, r.case_number)["Timer_VillageIntake_Withdraw"].due_at
    assert before.due_estimated  # counted Monday–Friday through 2027
    assert before.legal_due_at == _end(date(2027, 2, 2))  # the estimate: 1 January counted as a working day
    assert step_before.due_at == _end(date(2027, 1, 5))
    with db.read(seeded) as s:
        assert queries.estimated_open_cases(s, orgs.actor_by_name(s, ADMIN)) == 1

    manual_clock.advance(hours=1)
    checked, report = _publish(seeded)
    assert (checked.holidays, checked.workdays) == (len(OFF_2027), len(WORKED_2027))
    assert (report.checked, report.changed, report.failed, report.next_after) == (1, 1, [], None)

    after = _case(seeded, r.case_number)
    assert not after.due_estimated
    assert after.legal_due_at == _end(_independent_due(date(2026, 12, 29), 25)) == _end(date(2027, 2, 3))
    assert after.promised_due_at == _end(_independent_due(date(2026, 12, 29), 20)) == _end(date(2027, 1, 27))
    step = _timers(seeded, r.case_number)["Timer_VillageIntake_Warn"]
    assert step.due_at == _end(_independent_due(date(2026, 12, 29), 5)) == _end(date(2027, 1, 6))
    assert _timers(seeded, r.case_number)["Timer_VillageIntake_Withdraw"].due_at == withdraw_before  # P15D: untouched
    (intake,) = ready_tasks(seeded, r.case_number)
    assert intake.due_at == step.due_at  # the step's due follows its deadline timer
    with db.read(seeded) as s:
        assert queries.estimated_open_cases(s, orgs.actor_by_name(s, ADMIN)) == 0
    (published,) = _audits(seeded, "calendar.published")
    assert published.details["year"] == 2027 and published.details["holidays"] == len(OFF_2027)
    assert published.old_value.startswith("unknown") and SOURCE in published.new_value
    (recounted,) = _audits(seeded, "case.dues_recomputed")
    assert recounted.details["year"] == 2027
    assert recounted.details["changes"]["legal"] == ["2027-02-03T00:00+08:00", "2027-02-04T00:00+08:00"]
    assert recounted.details["changes"]["estimated"] == ["true", "false"]
    assert "timer:Timer_VillageIntake_Warn" in recounted.details["changes"]
    assert (recounted.old_value, recounted.new_value) == ("2027-01-27T00:00+08:00", "2027-01-28T00:00+08:00")

    # counting again changes nothing (idempotent): a second run, the CLI, a retry
    again = calendar_admin.recompute_year(seeded, _actor(seeded, ADMIN), 2027, clock.now())
    assert (again.checked, again.changed) == (1, 0) and len(_audits(seeded, "case.dues_recomputed")) == 1
    # and a case accepted now is counted on the published year from the start
    r2 = start(seeded, service="FX-DIBAO", now=manual_clock.now())
    assert not _case(seeded, r2.case_number).due_estimated
    assert _case(seeded, r2.case_number).legal_due_at == after.legal_due_at


def test_a_paused_and_an_extended_case_are_replayed_with_their_moves(seeded, manual_clock):
    manual_clock.set(sh(2026, 12, 21, 9, 0))  # Monday
    paused = start(seeded, service="FX-DIBAO", now=manual_clock.now())
    extended = start(seeded, service="FX-DIBAO", now=manual_clock.now())
    manual_clock.set(sh(2026, 12, 22, 9, 0))
    with db.transaction(seeded) as s:
        cases.extend_case(s, extended.case_number, user(seeded, COUNTY_MZ), 5, "需实地核查")
    manual_clock.set(sh(2026, 12, 23, 9, 0))
    with db.transaction(seeded) as s:
        cases.pause_case(s, paused.case_number, user(seeded, CLERK), "等待补正材料")
    manual_clock.set(sh(2026, 12, 28, 9, 0))
    assert _case(seeded, paused.case_number).due_estimated and _case(seeded, extended.case_number).due_estimated
    _, report = _publish(seeded)
    assert report.changed == 2 and report.failed == []

    # extended: 25 + 5 working days from 12-21, the 2027 holidays skipped
    ext = _case(seeded, extended.case_number)
    assert ext.legal_due_at == _end(_independent_due(date(2026, 12, 21), 30)) and not ext.due_estimated
    # paused on 12-23: its dues stand as they stood then; what it keeps is counted on the new calendar
    p = _case(seeded, paused.case_number)
    assert p.legal_due_at == _end(_independent_due(date(2026, 12, 21), 25)) and not p.due_estimated
    with db.read(seeded) as s:
        pause = s.scalars(select(Pause).where(Pause.case_id == p.id)).one()
    due = _independent_due(date(2026, 12, 21), 25)
    paused_on = date(2026, 12, 23)
    kept = sum(_is_working(paused_on + timedelta(days=i)) for i in range(1, (due - paused_on).days + 1))
    assert pause.left["legal"] == kept == 23  # was 22 when 1 January counted as a working day
    # resumed on 01-04 2027 (the first working day after 元旦): 23 working days counted from there
    manual_clock.set(sh(2027, 1, 4, 9, 0))
    with db.transaction(seeded) as s:
        cases.resume_case(s, paused.case_number, user(seeded, CLERK))
    resumed = _case(seeded, paused.case_number)
    assert resumed.legal_due_at == _end(_independent_due(date(2027, 1, 4), 23)) and not resumed.due_estimated


def test_a_publication_after_the_year_began_credits_the_days_already_counted(seeded, manual_clock):
    manual_clock.set(sh(2026, 12, 30, 9, 0))
    r = start(seeded, service="FX-DIBAO", now=manual_clock.now())
    manual_clock.set(sh(2027, 1, 8, 9, 0))  # the admin was late: 1 January was counted as a working day
    _publish(seeded)
    c = _case(seeded, r.case_number)
    assert c.legal_due_at == _end(_independent_due(date(2026, 12, 30), 25)) and not c.due_estimated


def test_a_case_reaching_a_year_still_unknown_stays_estimated(seeded, manual_clock):
    manual_clock.set(sh(2026, 12, 29, 9, 0))
    r = start(seeded, service="FX-DIBAO", now=manual_clock.now())
    with db.transaction(seeded) as s:  # a limit of 260 working days (set by hand) reaches 2028
        s.execute(Case.__table__.update().where(Case.number == r.case_number).values(legal_limit_workdays=260))
    _publish(seeded)
    c = _case(seeded, r.case_number)
    assert c.due_estimated and clock.local(c.legal_due_at).year == 2028  # 2028 is still counted Monday–Friday


def test_only_admins_publish_and_recount(seeded, manual_clock):
    manual_clock.set(sh(2026, 12, 29, 9, 0))
    start(seeded, service="FX-DIBAO", now=manual_clock.now())
    before = snapshot(seeded)
    for who in (SUPERVISOR, CLERK, COUNTY_MZ):
        with pytest.raises(Forbidden) as refused:
            _publish(seeded, who=who)
        assert refused.value.reason == "calendar.administer"
        with pytest.raises(Forbidden):
            calendar_admin.recompute_year(seeded, _actor(seeded, who), 2027)
    assert snapshot(seeded) == before
    checked, _ = calendar_admin.publish(seeded, Actor.operator("root"), 2027, parse_schedule(SCHEDULE_2027),
                                        SOURCE, clock.now())  # the server's operator may
    assert checked.year == 2027 and _audits(seeded, "calendar.published")[0].details["operator"] == "operator:root"


# ------------------------------------------------------------------------------------------- refusals
def test_bad_lines_are_refused_one_message_each_and_nothing_is_saved(seeded, manual_clock):
    manual_clock.set(sh(2026, 12, 1, 9, 0))
    bad = textwrap.dedent("""\
        2027-01-01~2027-01-03 元旦
        2027-02-30 春节
        2027-03-06 周末不放假
        2027-03-08 妇女节调休上班
        2026-12-31 跨年
        2027-01-02 元旦
        2027-05-01~2027-04-28 劳动节
        这一行不是日期
        2027-06-09
        2027-07-01~2027-09-01 暑假
        """)
    before = snapshot(seeded)
    with pytest.raises(InvalidInput) as refused:
        _publish(seeded, bad)
    assert refused.value.reason == "calendar.days_invalid"
    found = {(p["line"], p["reason"]) for p in refused.value.details["problems"]}
    assert found == {(2, "calendar.date_invalid"), (3, "calendar.holiday_on_weekend"),
                     (4, "calendar.workday_not_weekend"), (5, "calendar.day_outside_year"),
                     (6, "calendar.day_duplicate"), (7, "calendar.range_invalid"),
                     (8, "calendar.date_invalid"), (9, "calendar.name_missing"), (10, "calendar.range_too_long")}
    dup = next(p for p in refused.value.details["problems"] if p["reason"] == "calendar.day_duplicate")
    assert dup["first_line"] == 1 and dup["day"] == "2027-01-02"
    assert snapshot(seeded) == before  # nothing saved, nothing audited


@pytest.mark.parametrize(("year", "text", "source", "reason"), [
    (2026, "2026-10-01 国庆节", SOURCE, "calendar.year_known"),  # chinese-calendar knows it
    (2031, SCHEDULE_2027, SOURCE, "calendar.year_invalid"),  # too far ahead
    (2027, "", SOURCE, "calendar.days_empty"),
    (2027, "2027-02-14 春节调休上班", SOURCE, "calendar.no_holidays"),
    (2027, SCHEDULE_2027, "  ", "text.required"),
    (2027, SCHEDULE_2027, "x" * 201, "text.too_long"),
    (2027, "\n".join(f"{date(2027, 3, 1) + timedelta(days=7 * i)} 测试" for i in range(61)), SOURCE,
     "calendar.too_many_days"),
    (2027, "2027-01-01 " + "元" * 51, SOURCE, "calendar.days_invalid"),
])
def test_a_publication_is_refused_whole(seeded, manual_clock, year, text, source, reason):
    manual_clock.set(sh(2026, 12, 1, 9, 0))
    before = snapshot(seeded)
    with pytest.raises((InvalidInput, Conflict)) as refused:
        calendar_admin.publish(seeded, _actor(seeded, ADMIN), year, parse_schedule(text), source, clock.now())
    assert refused.value.reason == reason
    assert snapshot(seeded) == before


def test_a_correction_replaces_a_published_year_and_recounts_its_cases(seeded, manual_clock):
    manual_clock.set(sh(2026, 12, 29, 9, 0))
    r = start(seeded, service="FX-DIBAO", now=manual_clock.now())
    _publish(seeded)
    with pytest.raises(Conflict) as again:
        _publish(seeded)
    assert again.value.reason == "calendar.year_known" and again.value.details["source"] == "yicun"
    early = _case(seeded, r.case_number).legal_due_at  # 2027-02-03: before the Spring Festival
    manual_clock.set(sh(2027, 1, 25, 9, 0))
    r2 = start(seeded, service="FX-DIBAO", now=manual_clock.now())  # runs through the Spring Festival
    assert _case(seeded, r2.case_number).legal_due_at == _end(_independent_due(date(2027, 1, 25), 25))
    # the State Council adds a day to the Spring Festival (02-15 off, the 14th no longer worked)
    amended = SCHEDULE_2027.replace("2027-02-06~2027-02-13 春节\n2027-02-14 春节调休上班\n",
                                    "2027-02-06~2027-02-15 春节\n")
    assert amended != SCHEDULE_2027
    checked, report = _publish(seeded, amended, correction=True)
    assert checked.correction and checked.replaces == "yicun" and (report.checked, report.changed) == (2, 1)
    off = OFF_2027 | {date(2027, 2, 14), date(2027, 2, 15)}
    worked = WORKED_2027 - {date(2027, 2, 14)}
    assert _case(seeded, r2.case_number).legal_due_at == _end(
        _independent_due(date(2027, 1, 25), 25, off=off, worked=worked)) == _end(date(2027, 3, 9))
    assert _case(seeded, r.case_number).legal_due_at == early
    with db.read(seeded) as s:
        assert s.scalar(select(CalendarDay.kind).where(CalendarDay.day == date(2027, 2, 14))) == "holiday"
        assert s.scalar(select(func.count()).select_from(CalendarYear)) == 1
    corrected = _audits(seeded, "calendar.published")[-1]
    assert corrected.details["correction"] and "2027-02-14 workday 春节调休上班" in corrected.details["previous"]


# ------------------------------------------------------------------------------------------- reading
def test_the_year_list_says_who_knows_each_year(seeded, manual_clock):
    manual_clock.set(sh(2026, 12, 1, 9, 0))
    with db.read(seeded) as s:
        years = {y.year: y for y in calendar_admin.known_years(s)}
    assert set(years) >= {2025, 2026, 2027}
    assert years[2026].source == "chinese-calendar" and years[2026].complete and years[2026].workdays == 6
    assert years[2027].source is None and not years[2027].complete
    _publish(seeded)
    with db.read(seeded) as s:
        years = {y.year: y for y in calendar_admin.known_years(s)}
        everything = calendar_admin.known_years(s, everything=True)
        schedule = calendar_admin.year_schedule(s, 2027)
        spring = calendar_admin.year_schedule(s, 2026)
    y = years[2027]
    assert (y.source, y.holidays, y.workdays, y.document, y.published_by) == \
        ("yicun", len(OFF_2027), len(WORKED_2027), SOURCE, "系统管理员")
    assert y.complete and y.published_at == clock.now()
    assert min(e.year for e in everything) == 2004
    assert schedule[1].text() == "2027-02-06~2027-02-13 春节" and schedule[2].kind == "workday"
    assert any(p.name == "春节" and p.days == 9 for p in spring)  # chinese-calendar's names, in Chinese


def test_the_typed_schedule_reads_ranges_and_make_up_days():
    s = parse_schedule("2027/2/6 ～ 2027/2/13 春节\n\n# a comment\n2027年2月14日 调休上班\n2027-01-01..2027-01-03 元旦")
    assert s.problems == []
    assert [(d.day.isoformat(), d.kind) for d in s.days[-4:]] == [
        ("2027-02-14", "workday"), ("2027-01-01", "holiday"), ("2027-01-02", "holiday"), ("2027-01-03", "holiday")]
    assert s.lines[0] == 1 and s.lines[8] == 4 and len(s.days) == 12
    assert calendar_admin.schedule_text(s.days).splitlines() == [
        "2027-01-01~2027-01-03 元旦", "2027-02-06~2027-02-13 春节", "2027-02-14 调休上班"]
    with pytest.raises(InvalidInput):
        parse_schedule("x" * (calendar_admin.TEXT_MAX + 1))
    with pytest.raises(InvalidInput):
        parse_schedule("\n" * (calendar_admin.LINES_MAX + 1))


# ------------------------------------------------------------------------------------------- the overlay
def test_another_engine_and_another_process_count_with_the_published_year(seeded, manual_clock, db_url):
    manual_clock.set(sh(2026, 12, 1, 9, 0))
    other = db.make_engine(db_url)  # another web node's engine on the same database
    try:
        with db.read(other):  # it has read the calendar before the publication…
            assert workdays.default_calendar().add_workdays(date(2026, 12, 31), 1).date == date(2027, 1, 1)
        _publish(seeded)
        with db.read(other):  # …and counts with the new one at once in this process (calendar_changed)
            assert workdays.default_calendar().add_workdays(date(2026, 12, 31), 1) == \
                workdays.DueDate(date(2027, 1, 4), False)
        assert workdays.default_calendar().add_workdays(date(2026, 12, 31), 1).estimated  # no database bound
    finally:
        other.dispose()
    # a process of its own: reads the database when its first unit of work needs the calendar
    code = ("import sys; from datetime import date; from engine import db, workdays\n"
            "e = db.make_engine(sys.argv[1])\n"
            "with db.read(e):\n"
            "    d = workdays.default_calendar().add_workdays(date(2027, 2, 5), 1)\n"
            "print(d.date, d.estimated, workdays.default_calendar().known_year(2027))\n")
    out = subprocess.run([sys.executable, "-c", code, db_url], cwd=ROOT, capture_output=True, text=True,
                         timeout=60, check=True).stdout.split()
    assert out == ["2027-02-14", "False", "False"]  # the 调休 Sunday after 春节; unbound: unknown again


def test_a_stale_cache_asks_again_after_its_interval(seeded, manual_clock, monkeypatch):
    """Another process's publication (simulated: rows written behind this process's back, no
    calendar_changed) is seen once CHECK_SECONDS have passed."""
    manual_clock.set(sh(2026, 12, 1, 9, 0))
    with db.read(seeded):
        assert not workdays.default_calendar().known_year(2027)
    with db.transaction(seeded) as s:
        s.add(CalendarYear(year=2027, source=SOURCE, published_by_id=None, published_at=clock.now()))
        s.add(CalendarDay(day=date(2027, 1, 1), kind="holiday", name="元旦", year=2027, created_at=clock.now()))
    with db.read(seeded):
        assert not workdays.default_calendar().known_year(2027)  # within the interval: what was read before
    monkeypatch.setattr(workdays, "CHECK_SECONDS", 0.0)
    with db.read(seeded):
        cal = workdays.default_calendar()
        assert cal.known_year(2027) and cal.is_workday(date(2027, 1, 1)) == (False, False)
        assert cal.source_of(2027) == "yicun" and cal.source_of(2026) == "chinese-calendar"


# ------------------------------------------------------------------------------------------- the command line
def test_the_command_line_lists_years_and_publishes_from_a_file(seeded, db_url, manual_clock, tmp_path, capsys):
    manual_clock.set(sh(2026, 12, 29, 9, 0))  # the commands run in this process, on this clock
    r = start(seeded, service="FX-DIBAO", now=manual_clock.now())
    base = ["--db", db_url]
    assert main([*base, "calendar", "years"]) == 0
    out = capsys.readouterr().out
    assert "2027" in out and "unknown" in out and "chinese-calendar" in out
    days = tmp_path / "days.yaml"
    days.write_text("days:\n" + "".join(f"  - {line}\n" for line in SCHEDULE_2027.splitlines()
                                        if not line.startswith("#")), encoding="utf-8")
    assert main([*base, "calendar", "publish", "2027", "--file", str(days), "--source", SOURCE]) == 0
    out = capsys.readouterr().out
    assert "published 2027" in out and "1 changed" in out
    assert not _case(seeded, r.case_number).due_estimated
    assert main([*base, "--json", "calendar", "years"]) == 0
    assert '"source": "yicun"' in capsys.readouterr().out
    assert main([*base, "calendar", "due", "--from", "2026-12-31", "--workdays", "1"]) == 0
    assert "2027-01-04" in capsys.readouterr().out  # the database's 元旦, read by `calendar due`
    bad = tmp_path / "bad.yaml"
    bad.write_text("days:\n  - 2027-03-06 周末\n", encoding="utf-8")
    assert main([*base, "calendar", "publish", "2027", "--file", str(bad), "--source", SOURCE,
                 "--correction"]) == 3
    err = capsys.readouterr().err
    assert "line 1 2027-03-06" in err
    assert main([*base, "calendar", "recompute", "2027"]) == 0
    assert "0 changed" in capsys.readouterr().out
    with db.read(seeded) as s:
        assert s.scalar(select(func.count()).select_from(TaskRow)) > 0


def test_affected_cases_are_listed_in_id_order_and_bounded(seeded, manual_clock):
    manual_clock.set(sh(2026, 12, 29, 9, 0))
    numbers = [start(seeded, service="FX-DIBAO", now=manual_clock.now()).case_number for _ in range(3)]
    manual_clock.set(sh(2026, 11, 2, 9, 0))
    start(seeded, service="FX-DIBAO", now=manual_clock.now())  # all in 2026: not affected
    with db.read(seeded) as s:
        listed = recompute.affected_cases(s, 2027, limit=2)
        assert [n for _, n in listed] == numbers[:2]
        assert [n for _, n in recompute.affected_cases(s, 2027, after_id=listed[-1][0])] == numbers[2:]
        assert calendar_admin.affected_count(s, 2027) == 3
        with pytest.raises(ValueError):
            recompute.affected_cases(s, 2027, limit=0)
    manual_clock.set(sh(2026, 12, 29, 10, 0))
    _, report = _publish(seeded, recompute_limit=2)
    assert (report.checked, report.changed) == (2, 2) and report.next_after is not None
    rest = calendar_admin.recompute_year(seeded, _actor(seeded, ADMIN), 2027, after_id=report.next_after)
    assert (rest.checked, rest.changed, rest.next_after) == (1, 1, None)


# ------------------------------------------------------------------------------------------- the web
def _signed_in(app: Any, username: str) -> Any:
    from .webtools import login
    client = app.test_client()
    assert login(client, username).status_code == 302
    return client


def test_the_admin_previews_is_told_line_by_line_and_publishes_in_the_browser(app, seeded, manual_clock):
    from .webtools import post_form
    manual_clock.set(sh(2026, 12, 29, 9, 0))
    r = start(seeded, service="FX-DIBAO", now=manual_clock.now())
    admin = _signed_in(app, ADMIN)
    page = admin.get("/admin/calendar").get_data(as_text=True)
    assert "发布节假日安排" in page and 'value="2027"' in page and "未知：按周一至周五估算" in page
    assert "有 1 件办理中的办件期限跨入未知年份" in page

    before = snapshot(seeded)
    bad = post_form(admin, "/admin/calendar", {"year": "2027", "source": SOURCE, "action": "publish",
                                               "schedule": "2027-01-01 元旦\n2027-03-08 调休上班\n2027-01-01 又一次"},
                    page="/admin/calendar")
    html = bad.get_data(as_text=True)
    assert bad.status_code == 422 and snapshot(seeded) == before  # nothing saved
    assert "第 2 行：2027-03-08 不是周末，调休上班日只能是周六或周日。" in html
    assert "第 3 行：2027-01-01 已在第 1 行列出。" in html
    assert "2027-03-08 调休上班" in html  # what was typed is kept

    preview = post_form(admin, "/admin/calendar", {"year": "2027", "source": SOURCE, "action": "preview",
                                                   "schedule": SCHEDULE_2027}, page="/admin/calendar")
    html = preview.get_data(as_text=True)
    assert preview.status_code == 200 and snapshot(seeded) == before  # a preview saves nothing either
    assert "预览：2027 年" in html and "2027-02-06 ~ 2027-02-13" in html and 'value="publish"' in html
    assert f"放假 {len(OFF_2027)} 天，调休上班 {len(WORKED_2027)} 天。" in html and "发布后将重算 1 件" in html

    done = post_form(admin, "/admin/calendar", {"year": "2027", "source": SOURCE, "action": "publish",
                                                "schedule": SCHEDULE_2027}, page="/admin/calendar")
    assert done.status_code == 302 and done.headers["Location"] == "/admin/calendar"
    html = admin.get("/admin/calendar").get_data(as_text=True)
    assert "已发布 2027 年节假日安排" in html and "其中 1 件有变化" in html and SOURCE in html
    assert not _case(seeded, r.case_number).due_estimated
    assert len(_audits(seeded, "calendar.published")) == 1 and len(_audits(seeded, "case.dues_recomputed")) == 1
    known = post_form(admin, "/admin/calendar", {"year": "2027", "source": SOURCE, "action": "preview",
                                                 "schedule": SCHEDULE_2027}, page="/admin/calendar")
    assert known.status_code == 409 and "2027 年的安排已由本系统已发布的安排提供" in known.get_data(as_text=True)


def test_supervisors_read_the_years_but_may_not_publish(app, seeded, manual_clock):
    from .webtools import post_form
    manual_clock.set(sh(2026, 12, 1, 9, 0))
    sup = _signed_in(app, SUPERVISOR)
    home = sup.get("/").get_data(as_text=True)
    assert 'href="/calendar"' in home and 'href="/admin/calendar"' not in home  # the navigation's link
    page = sup.get("/calendar").get_data(as_text=True)
    assert "工作日历" in page and "内置日历 chinese-calendar" in page and "发布节假日安排" not in page
    year = sup.get("/calendar/2026").get_data(as_text=True)
    assert "2026-02-15 ~ 2026-02-23" in year and "春节" in year
    assert "尚未知晓" in sup.get("/calendar/2027").get_data(as_text=True)
    assert sup.get("/admin/calendar").status_code == 403
    before = snapshot(seeded)
    refused = post_form(sup, "/admin/calendar", {"year": "2027", "source": SOURCE, "action": "publish",
                                                 "schedule": SCHEDULE_2027}, page="/calendar")
    assert refused.status_code == 403 and snapshot(seeded) == before
    assert post_form(sup, "/admin/calendar/2027/recompute", {"after": "0"}, page="/calendar").status_code == 403
    assert 'href="/admin/calendar"' in _signed_in(app, ADMIN).get("/").get_data(as_text=True)
