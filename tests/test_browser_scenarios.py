"""Browser test of a process's tests (issue 11 §7): a designer opens them from the process's page, runs them
against the current version — deployed over a failing scenario with an override reason — and sees which step
failed, what was expected and what happened; at 1366×768 and on a 360-px phone, in Chromium.
Reuses tests/test_browser.py's database fixture, server and sign-in."""
from __future__ import annotations

from pathlib import Path

from engine import db, processes

from .test_browser import demo_db, pytestmark, served_browser, sign_in  # noqa: F401
from .test_process_scenarios import RS02, _renamed

SCREENSHOT = Path("/tmp/yicun_scenarios.png")
PHONE_SHOT = Path("/tmp/yicun_scenarios_phone.png")


def test_a_designer_runs_a_process_s_tests_and_sees_the_failing_step(demo_db, tmp_path):
    with db.transaction(demo_db) as s:
        processes.deploy(s, RS02.read_bytes(), RS02.name)
    with db.transaction(demo_db) as s:  # v2 renames the county's step: the first scenario cannot complete it
        processes.deploy_files(s, [(_renamed(RS02.read_bytes(), "Task_CountyApproval", "Task_CountyDecision"),
                                    RS02.name)], override_reason="先上线，场景随后更新")
    with served_browser(demo_db, tmp_path) as (base, browser):
        page = browser.new_page(viewport={"width": 1366, "height": 768}, locale="zh-CN")
        sign_in(page, base, "designer")
        page.goto(f"{base}/processes/RS-02")
        page.click("text=流程测试")
        page.wait_for_url(f"{base}/processes/RS-02/tests")
        assert page.locator("section.scenario").count() == 2
        page.click("button:has-text('对当前版本 v2 运行测试')")
        page.wait_for_selector("#results")
        assert "未通过" in page.inner_text("#results")
        first, second = page.locator("section.scenario").all()
        assert "失败" in first.locator("h3").inner_text() and "通过" in second.locator("h3").inner_text()
        failed = first.locator("tr.failed")
        assert failed.count() == 1 and "Task_CountyApproval" in failed.inner_text()
        assert "Task_CountyDecision" in failed.inner_text()  # what was ready instead
        assert first.locator("tr.skipped").count() == 2  # the steps after the failure did not run
        assert page.evaluate("document.documentElement.scrollWidth") <= 1366
        page.screenshot(path=str(SCREENSHOT), full_page=True)

        phone = browser.new_page(viewport={"width": 360, "height": 740}, locale="zh-CN", is_mobile=True)
        sign_in(phone, base, "designer")
        phone.goto(f"{base}/processes/RS-02/tests")
        phone.click("button:has-text('运行测试')")
        phone.wait_for_selector("#results")
        assert phone.evaluate("document.documentElement.scrollWidth") <= 360
        phone.screenshot(path=str(PHONE_SHOT), full_page=True)
