"""Browser test of the working-day calendar page (issue #10 §7): an admin types next year's holiday
schedule, previews it, publishes it, and the year shows as known — at 1366×768, in Chromium.

The schedule typed is a TEST schedule (the National Day week and one make-up Saturday of next year), not
the State Council's. Reuses tests/test_browser.py's database fixture, server and sign-in."""
from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

from engine import clock, db, workdays
from engine.models import CalendarYear

from .conftest import start
from .test_browser import demo_db, pytestmark, served_browser, sign_in  # noqa: F401

SCREENSHOT = Path("/tmp/yicun_calendar.png")
PUBLISHED_SHOT = Path("/tmp/yicun_calendar_published.png")


def test_an_admin_previews_and_publishes_next_years_schedule(demo_db, tmp_path):  # noqa: F811
    year = clock.local(clock.now()).year + 1
    saturday = date(year, 10, 8) + timedelta(days=(5 - date(year, 10, 8).weekday()) % 7)
    schedule = f"{year}-10-01~{year}-10-07 国庆节\n{saturday} 国庆节调休上班"
    start(demo_db, service="FX-DIBAO", now=None)  # in December its 25 working days reach next year: estimated
    with served_browser(demo_db, tmp_path) as (base, browser):
        page = browser.new_page(viewport={"width": 1366, "height": 768}, locale="zh-CN")
        problems: list[str] = []
        page.on("pageerror", lambda e: problems.append(str(e)))
        sign_in(page, base, "admin")
        page.click("nav.main >> text=工作日历")
        page.wait_for_url(f"{base}/admin/calendar")
        assert page.input_value("input[name=year]") == str(year)
        page.fill("input[name=source]", "测试用安排（非国务院正式通知）")
        page.fill("textarea[name=schedule]", schedule + f"\n{year}-10-12 周二调休上班")  # a Tuesday: refused
        if workdays.package_knows(year):  # a newer chinese-calendar already holds it: publish as a correction
            page.check("input[name=correction]")
        page.click("button[value=preview]")
        page.wait_for_selector("#schedule-problems")
        assert "第 3 行" in page.inner_text("#schedule-problems")
        assert page.input_value("textarea[name=schedule]").endswith("周二调休上班")  # kept as typed
        page.fill("textarea[name=schedule]", schedule)
        page.click("button[value=preview]")
        page.wait_for_selector("button[value=publish]")
        side = page.inner_text("section.side")
        assert f"预览：{year} 年" in side and "放假 7 天，调休上班 1 天" in side and "国庆节调休上班" in side
        assert page.evaluate("document.documentElement.scrollWidth") <= 1366  # nothing wider than the screen
        page.screenshot(path=str(SCREENSHOT), full_page=True)
        page.click("button[value=publish]")
        page.wait_for_selector("p.flash")
        flashes = page.inner_text("main")
        assert f"已发布 {year} 年节假日安排" in flashes and "已重算" in flashes
        row = page.locator("table.calendar-years tr", has_text=str(year)).first.inner_text()
        assert "已知" in row and "本系统发布" in row
        page.screenshot(path=str(PUBLISHED_SHOT), full_page=True)
        assert problems == []
    with db.read(demo_db) as s:
        assert s.get(CalendarYear, year) is not None
