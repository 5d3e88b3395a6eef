"""The working-day calendar against the real 2026 schedule, the fallback, and the `holidays` package."""
from datetime import date, datetime, timedelta

import holidays
import pytest

from engine import workdays
from engine.clock import SHANGHAI
from engine.workdays import WorkCalendar, default_calendar, load_overrides


@pytest.fixture
def cal():
    return WorkCalendar()


def test_five_workdays_from_monday_before_national_day_end_on_the_make_up_saturday(cal):
    due = cal.add_workdays(date(2026, 9, 28), 5)
    assert due.date == date(2026, 10, 10) and due.date.weekday() == 5 and not due.estimated
    assert due.end_instant == datetime(2026, 10, 11, 0, 0, tzinfo=SHANGHAI)


def test_acceptance_during_spring_festival_counts_from_the_first_working_day(cal):
    # accepted on a holiday: day 1 is the first working day after it, 2026-02-24
    assert cal.add_workdays(date(2026, 2, 18), 1).date == date(2026, 2, 24)
    assert cal.first_workday_on_or_after(date(2026, 2, 15)).date == date(2026, 2, 24)
    assert cal.due(datetime(2026, 2, 20, 10, 0, tzinfo=SHANGHAI), 3).date == date(2026, 2, 26)


def test_counting_workdays(cal):
    assert cal.count_workdays(date(2026, 9, 28), date(2026, 10, 10)) == (5, False)
    assert cal.count_workdays(date(2026, 10, 1), date(2026, 10, 7)) == (0, False)
    assert cal.count_workdays(date(2026, 10, 10), date(2026, 10, 9)) == (0, False)
    assert cal.add_workdays(date(2026, 10, 9), 0).date == date(2026, 10, 9)


def test_unknown_year_falls_back_to_weekdays_marked_estimated(cal, caplog, monkeypatch):
    monkeypatch.setattr(workdays, "_warned_years", set())  # as if no earlier test had met 2027
    due = cal.add_workdays(date(2026, 12, 25), 10)  # crosses into 2027, which nothing knows yet
    assert due.estimated and due.date == date(2027, 1, 8)
    assert "calendar unknown for 2027" in caplog.text
    assert not cal.known_year(2027) and cal.known_year(2026)
    assert cal.add_workdays(date(2026, 11, 2), 5) .estimated is False


def test_override_file_takes_a_new_year(tmp_path):
    f = tmp_path / "calendar.yaml"
    f.write_text("years:\n  2027:\n    holidays: ['2027-01-01', '2027-02-05..2027-02-11']\n"
                 "    workdays: ['2027-02-13']\n", encoding="utf-8")
    cal = WorkCalendar(load_overrides(f))
    assert cal.is_workday(date(2027, 2, 8)) == (False, False)
    assert cal.is_workday(date(2027, 2, 13)) == (True, False)  # a Saturday made a working day
    due = cal.add_workdays(date(2027, 2, 4), 2)
    assert due == type(due)(date(2027, 2, 13), False)
    with pytest.raises(ValueError):
        WorkCalendar({2027: {"holidays": ["2027-01-01"], "workdays": ["2027-01-01"]}})


def test_the_shipped_override_file_loads():
    assert isinstance(load_overrides(), dict)
    assert default_calendar().known_year(2026)


def test_agrees_with_the_holidays_package_2024_to_2026(cal):
    cn = holidays.China(years=range(2024, 2027))
    day, differences = date(2024, 1, 1), []
    while day <= date(2026, 12, 31):
        if cal.is_workday(day)[0] != cn.is_working_day(day):
            differences.append(day)
        day += timedelta(days=1)
    assert differences == []
