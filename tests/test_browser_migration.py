"""Browser test of migrating running cases (issue 11 §6): a designer opens a process's migration page from its
page, runs the dry run (the case at a step the new version removed cannot move, and the page says why),
migrates the rest, sees the batch and rolls it back — at 1366×768 and on a 360-px phone, in Chromium.
Reuses tests/test_browser.py's database fixture, server and sign-in."""
from __future__ import annotations

from pathlib import Path

from sqlalchemy import select

from engine import db, processes
from engine.models import Case, ProcessVersion

from .conftest import COUNTY_MZ, start
from .test_browser import demo_db, pytestmark, served_browser, sign_in  # noqa: F401
from .test_case_migration import RELAY, RELAY_V2, advance, step

SCREENSHOT = Path("/tmp/yicun_migrate.png")
BATCH_SHOT = Path("/tmp/yicun_migrate_batch.png")
PHONE_SHOT = Path("/tmp/yicun_migrate_phone.png")
BATCH_PHONE_SHOT = Path("/tmp/yicun_migrate_batch_phone.png")


def _versions(engine) -> dict[str, int]:
    with db.read(engine) as s:
        return dict(s.execute(select(Case.number, ProcessVersion.version)
                              .join(ProcessVersion, ProcessVersion.id == Case.process_version_id)
                              .where(Case.service_code == "TEST-RELAY")).all())


def test_a_designer_dry_runs_migrates_and_rolls_back(demo_db, tmp_path):  # noqa: F811
    with db.transaction(demo_db) as s:
        processes.deploy(s, RELAY, "relay.bpmn")
    numbers = []
    for to in ("Task_Intake", "Task_Review", "Task_Approve"):
        numbers.append(start(demo_db, service="TEST-RELAY").case_number)
        advance(demo_db, numbers[-1], to)
    stuck = start(demo_db, service="TEST-RELAY").case_number
    advance(demo_db, stuck, "Task_Approve")
    step(demo_db, stuck, "Task_Approve", COUNTY_MZ)  # waits at the delivery step v2 removes
    with db.transaction(demo_db) as s:
        processes.deploy(s, RELAY_V2, "relay.bpmn")
    with served_browser(demo_db, tmp_path) as (base, browser):
        page = browser.new_page(viewport={"width": 1366, "height": 768}, locale="zh-CN")
        problems: list[str] = []
        page.on("pageerror", lambda e: problems.append(str(e)))
        sign_in(page, base, "designer")
        page.goto(f"{base}/processes/TEST-RELAY")
        page.click("a[href='/processes/TEST-RELAY/migrate']")
        page.wait_for_url(f"{base}/processes/TEST-RELAY/migrate")
        page.select_option("select[name=to]", "2")
        page.select_option("select[name=from]", "1")
        page.click("form.migrate-pick button[type=submit]")
        page.wait_for_selector("table.plan")
        summary = page.inner_text("section.migrate-plan > p")
        assert "共 4 件符合条件" in summary and "3 件可以迁移，1 件不能迁移" in summary
        blocked = page.locator("table.plan tr.blocked").inner_text()
        assert stuck in blocked and "不能迁移" in blocked and "送达结果" in blocked and "v2 中已删除" in blocked
        assert page.locator("table.plan tr.movable").count() == 3
        assert page.evaluate("document.documentElement.scrollWidth") <= 1366
        page.screenshot(path=str(SCREENSHOT), full_page=True)
        assert set(_versions(demo_db).values()) == {1}  # the dry run moved nothing
        phone = browser.new_page(viewport={"width": 360, "height": 740}, locale="zh-CN", is_mobile=True)
        sign_in(phone, base, "designer")
        phone.goto(page.url)
        phone.wait_for_selector("table.plan")
        assert phone.evaluate("document.documentElement.scrollWidth") <= 360
        phone.screenshot(path=str(PHONE_SHOT), full_page=True)

        page.click("form.migrate-run button[type=submit]")
        page.wait_for_selector("dl.batch-facts")
        assert "已迁移 3 件，不能迁移 1 件" in page.inner_text("main")
        assert stuck in page.inner_text("table.refusals")
        assert _versions(demo_db) == {**dict.fromkeys(numbers, 2), stuck: 1}
        page.screenshot(path=str(BATCH_SHOT), full_page=True)

        phone.goto(page.url)
        assert phone.evaluate("document.documentElement.scrollWidth") <= 360
        phone.screenshot(path=str(BATCH_PHONE_SHOT), full_page=True)

        page.click("form.rollback button[type=submit]")
        page.wait_for_selector("p.flash")
        assert "已撤销 3 件的迁移" in page.inner_text("main")
        assert set(_versions(demo_db).values()) == {1}
        assert problems == []
