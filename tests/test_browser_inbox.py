"""The inbox in Chromium (issue #9 §3, §8): a village clerk's /inbox at 1366×768 and on a 360×740 phone —
screenshots to /tmp/yicun_inbox.png and /tmp/yicun_inbox_phone.png — with real clicks: filter to the
overdue ones, claim one, hand one to a colleague with a reason, page on. Nothing is wider than the phone's
screen. The server runs on a manual clock (Mon 2026-11-09 10:00), so the marks are the same every run.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime
from pathlib import Path
from typing import Any

from engine import cases, clock, db, orgs, timers
from engine.clock import SHANGHAI

from .conftest import CLERK, CLERK2, VILLAGE, ready_tasks
from .test_browser import CHROMIUM, CHROMIUM_ARGS, _login, _Server, demo_db, pytestmark  # noqa: F401

DESK_SHOT = Path("/tmp/yicun_inbox.png")
PHONE_SHOT = Path("/tmp/yicun_inbox_phone.png")
PHONE_FULL = Path("/tmp/yicun_inbox_phone_full.png")
PHONE_REASSIGN = Path("/tmp/yicun_inbox_phone_reassign.png")
NOTES_SHOT = Path("/tmp/yicun_notifications_phone.png")
CASES_SHOT = Path("/tmp/yicun_cases_phone.png")
START = datetime(2026, 11, 2, 9, 0, tzinfo=SHANGHAI)  # a Monday
NOW = datetime(2026, 11, 9, 10, 0, tzinfo=SHANGHAI)  # next Monday: pension intakes over, dibao ones due today
APPLICANTS = ["符建英", "盛秋兰", "曹建国", "刘桂香", "周梅", "夏雨", "符安", "龚德明", "罗小燕", "陈志强"]


class _Clocked:
    """The app answering every request on a manual clock (the server's threads do not share the test's)."""

    def __init__(self, app: Any, at: clock.ManualClock) -> None:
        self.app, self.at = app, at

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        with clock.using(self.at):
            return list(self.app(environ, start_response))


def _scene(engine: Any) -> None:
    """邹家村 a week on: pension intakes accepted last Monday (over their 2 working days: red), dibao intakes
    (5 working days, due tonight: yellow), every other one given back to the village's queue."""
    with clock.using(clock.ManualClock(START)):
        with db.read(engine) as s:
            clerk = orgs.user_by_name(s, CLERK)
            _ = clerk.unit
        for n, name in enumerate(APPLICANTS):
            with db.transaction(engine) as s:
                number = cases.start_case(s, service_code="FX-PENSION" if n % 3 == 0 else "FX-DIBAO",
                                          village_code=VILLAGE, applicant_name=name, actor=clerk).case_number
            if n % 2:
                (task,) = ready_tasks(engine, number)
                with db.transaction(engine) as s:
                    cases.unclaim_task(s, task.id, clerk)
    timers.sweep(engine, NOW)


def test_a_clerk_works_the_inbox_on_a_desk_and_on_a_phone(demo_db, tmp_path):  # noqa: F811 (the fixture)
    from playwright.sync_api import sync_playwright

    from web import create_app
    _scene(demo_db)
    app = create_app({"DATABASE_URL": demo_db.url.render_as_string(hide_password=False), "DEMO": True,
                      "INSTANCE_DIR": str(tmp_path / "instance")})
    with _Server(_Clocked(app, clock.ManualClock(NOW))) as web, sync_playwright() as pw:
        base = f"http://127.0.0.1:{web.port}"
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            errors: list[str] = []

            def watch(page: Any) -> None:  # script errors, and anything the pages load that fails (no favicon)
                page.on("pageerror", lambda exc: errors.append(str(exc)))
                page.on("response", lambda r: errors.append(f"{r.status} {r.url}")
                        if r.status >= 400 and not r.url.endswith("/favicon.ico") else None)
            desk = browser.new_page(viewport={"width": 1366, "height": 768}, locale="zh-CN")
            watch(desk)
            _login(desk, base, CLERK, orgs.DEMO_PASSWORD)
            desk.wait_for_url(f"{base}/")
            desk.click("nav.main >> text=待办")
            desk.wait_for_url(f"{base}/inbox")
            body = desk.inner_text("body")
            assert "本单位待办" in body and "超期" in body and "待领取" in body
            assert desk.locator("tr.warn-red").count() == 4  # the four pension intakes
            assert desk.evaluate("document.documentElement.scrollWidth") <= 1366
            header = desk.evaluate("document.querySelector('header.top').getBoundingClientRect().height")
            assert header < 60, header  # the navigation with its counts still fits one line
            assert desk.locator("tr.warn-yellow").count() == 6
            desk.screenshot(path=str(DESK_SHOT))  # what the 1366×768 screen shows

            # the overdue ones only, then claim one from the queue
            desk.select_option("select[name=warning]", "red")
            desk.click("form.filters button[type=submit]")
            desk.wait_for_url("**/inbox?**warning=red**")
            assert desk.locator("tbody tr").count() == 4
            desk.locator("tbody tr", has=desk.locator("button", has_text="领取")).first.locator(
                "button", has_text="领取").click()
            desk.wait_for_load_state()
            assert "已领取" in desk.inner_text("p.flash") and "warning=red" in desk.url

            # hand one of mine to a colleague, with a reason
            row = desk.locator("tbody tr", has=desk.locator("summary", has_text="转办")).first
            number = row.locator("td").nth(1).inner_text().strip()
            row.locator("summary", has_text="转办").click()
            row.locator("select[name=to]").select_option(CLERK2)
            row.locator("input[name=reason]").fill("本人下乡入户调查，请同事接办")
            row.locator("button", has_text="确认转办").click()
            desk.wait_for_load_state()
            assert "已转办" in desk.inner_text("p.flash") and number in desk.inner_text("p.flash")

            phone_context = browser.new_context(viewport={"width": 360, "height": 740}, locale="zh-CN",
                                                is_mobile=True, has_touch=True, device_scale_factor=2)
            phone = phone_context.new_page()
            watch(phone)
            _login(phone, base, CLERK, orgs.DEMO_PASSWORD)
            phone.wait_for_url(f"{base}/")
            phone.goto(f"{base}/inbox")
            assert phone.evaluate("document.documentElement.scrollWidth") <= 360  # nothing off the screen
            first = phone.locator("tbody tr").first
            assert first.bounding_box()["width"] <= 360  # a row is a card, each cell labelled
            label = "getComputedStyle(document.querySelector('tbody td[data-label]'), '::before').content"
            assert phone.evaluate(label) == '"期限"'
            phone.screenshot(path=str(PHONE_SHOT))  # what the 360×740 screen shows
            phone.screenshot(path=str(PHONE_FULL), full_page=True)
            phone.locator("summary", has_text="转办").first.click()
            assert phone.evaluate("document.documentElement.scrollWidth") <= 360  # the open form too
            phone.screenshot(path=str(PHONE_REASSIGN))
            phone.goto(f"{base}/notifications")
            assert phone.evaluate("document.documentElement.scrollWidth") <= 360
            assert "无人领取" in phone.inner_text("ul.notes") and "黄牌" in phone.inner_text("ul.notes")
            phone.screenshot(path=str(NOTES_SHOT))
            phone.goto(f"{base}/cases")
            assert phone.evaluate("document.documentElement.scrollWidth") <= 360
            phone.screenshot(path=str(CASES_SHOT))
            assert errors == []
        finally:
            browser.close()
    for shot in (DESK_SHOT, PHONE_SHOT, PHONE_FULL, PHONE_REASSIGN, NOTES_SHOT, CASES_SHOT):
        assert shot.stat().st_size > 10_000, shot
