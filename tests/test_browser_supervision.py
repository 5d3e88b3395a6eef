"""督办 in Chromium (issue #10 §5): the county supervisor opens an overdue case from their workbench, sends a
督办 on its late step; the clerk who holds the step signs in, is told in their notifications, sees it in red
at the top of the step's page and writes the 情况说明 of the step's red card. Screenshots:
/tmp/yicun_supervise_case.png (the supervisor's case page after sending), /tmp/yicun_supervise_task.png (the
clerk's task page), /tmp/yicun_supervise_notifications.png, /tmp/yicun_supervise_explain.png.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from engine import clock, db, orgs, timers

from .conftest import CLERK, START, ready_tasks, start
from .test_browser import demo_db, pytestmark, served_browser, sign_in  # noqa: F401

SUPERVISOR = "supervisor-430902"  # 资阳区监察员
CASE_SHOT = Path("/tmp/yicun_supervise_case.png")
TASK_SHOT = Path("/tmp/yicun_supervise_task.png")
NOTES_SHOT = Path("/tmp/yicun_supervise_notifications.png")
EXPLAIN_SHOT = Path("/tmp/yicun_supervise_explain.png")
MESSAGE = "该件已超期，请于今日下班前办结，并书面说明超期原因。"


def _overdue_case(engine: Any) -> tuple[str, int]:
    """An FX-PENSION case accepted on Monday 2026-11-02 at 邹家村, its intake step long overdue (the sweep
    runs at the real time the server answers at, weeks later)."""
    with clock.using(clock.ManualClock(START)):
        number = start(engine, service="FX-PENSION").case_number
    timers.sweep(engine, clock.now())
    (task,) = ready_tasks(engine, number)
    assert task.warning_level == "red"
    return number, task.id


def test_a_county_supervisor_sends_a_supervision_and_the_clerk_sees_it(demo_db, tmp_path):  # noqa: F811
    number, task_id = _overdue_case(demo_db)
    with served_browser(demo_db, tmp_path) as (base, browser):
        errors: list[str] = []

        def watch(page: Any) -> None:
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.on("response", lambda r: errors.append(f"{r.status} {r.url}")
                    if r.status >= 400 and not r.url.endswith("/favicon.ico") else None)

        sup = browser.new_page(viewport={"width": 1366, "height": 900}, locale="zh-CN")
        watch(sup)
        sign_in(sup, base, SUPERVISOR)
        sup.click(f"a:has-text('{number}')")  # the workbench lists the open cases of the county
        sup.wait_for_url(f"{base}/cases/{number}")
        form = sup.locator("form[data-supervise]")
        assert form.is_visible()
        form.locator("select[name=task]").select_option(str(task_id))
        form.locator("textarea[name=message]").fill(MESSAGE)
        form.locator("button[type=submit]").click()
        sup.wait_for_url(f"{base}/cases/{number}#supervision")
        assert f"已督办：{number}" in sup.inner_text("p.flash")
        listed = sup.inner_text("ol.supervisions")
        assert MESSAGE in listed and "资阳区监察员" in listed and "受理待遇申领材料" in listed
        assert "督办" in sup.inner_text("ol.audit")  # in the case's history
        assert sup.evaluate("document.documentElement.scrollWidth") <= 1366
        sup.locator("#supervision").scroll_into_view_if_needed()
        sup.screenshot(path=str(CASE_SHOT))

        clerk = browser.new_page(viewport={"width": 1366, "height": 900}, locale="zh-CN")
        watch(clerk)
        sign_in(clerk, base, CLERK)
        clerk.click("nav.main >> text=通知")
        clerk.wait_for_url(f"{base}/notifications")
        assert f"督办 {number}「受理待遇申领材料」（资阳区监察员）：{MESSAGE}" in clerk.inner_text("ul.notes")
        assert "red" in clerk.locator("ul.notes li", has_text="督办").get_attribute("class")
        clerk.screenshot(path=str(NOTES_SHOT))
        clerk.goto(f"{base}/tasks/{task_id}")
        notice = clerk.locator("p.supervision-notice")
        assert notice.is_visible()
        assert f"督办：{MESSAGE} —— 资阳区监察员" in notice.inner_text()
        colour = notice.evaluate("e => getComputedStyle(e).color")
        assert colour == "rgb(145, 32, 24)", colour  # in red
        top = notice.bounding_box()
        assert top is not None and top["y"] < 200  # at the top, above the step
        clerk.screenshot(path=str(TASK_SHOT))

        # the clerk answers the step's red card with a 情况说明 on the case page
        clerk.goto(f"{base}/cases/{number}")
        red = clerk.locator("ul.cards li.card-red", has_text="已超时")  # the step's red card
        red.locator("summary").click()
        red.locator("textarea[name=explanation]").fill("申请人补交户口簿复印件耽误两天，已补齐，今日办结。")
        red.locator("button[type=submit]").click()
        clerk.wait_for_load_state()
        assert "已填写情况说明" in clerk.inner_text("p.flash")
        assert "申请人补交户口簿复印件耽误两天" in red.inner_text() and red.locator("details.explain").count() == 0
        clerk.locator("ul.cards").scroll_into_view_if_needed()
        clerk.screenshot(path=str(EXPLAIN_SHOT))
        assert errors == []
    with db.read(demo_db) as s:
        assert orgs.user_by_name(s, SUPERVISOR).role == "supervisor"
    for shot in (CASE_SHOT, TASK_SHOT, NOTES_SHOT, EXPLAIN_SHOT):
        assert shot.stat().st_size > 10_000, shot
