"""Browser test of 办件查询 and the 好差评 rating on a phone-sized screen (issue #9 §7, §8): a citizen
follows the link on the login page, looks the case up with the number and 查询码 from the receipt, and
after closure rates it — at 360×740, with real clicks, nothing wider than the screen. Screenshots:
/tmp/yicun_public_query.png, /tmp/yicun_public_lookup.png, /tmp/yicun_public_rate_form.png,
/tmp/yicun_public_rated.png.

Chromium, the server and the database are those of tests/test_browser.py (skipped, or failed in CI, the
same way).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import select

from engine import db
from engine.models import Case, User

from .conftest import complete, form_for, ready_tasks, start, worker_for
from .test_browser import CHROMIUM, CHROMIUM_ARGS, _Server, demo_db  # noqa: F401  (demo_db: a fixture)
from .test_browser import pytestmark as browser_marks

pytestmark = browser_marks

QUERY_SHOT = Path("/tmp/yicun_public_query.png")
LOOKUP_SHOT = Path("/tmp/yicun_public_lookup.png")
RATE_FORM_SHOT = Path("/tmp/yicun_public_rate_form.png")
RATED_SHOT = Path("/tmp/yicun_public_rated.png")
PHONE = {"width": 360, "height": 740}


def _close(engine: Any, number: str) -> None:
    """The staff's part, through the engine: every step done until the case is closed."""
    for _ in range(20):
        tasks = ready_tasks(engine, number)
        if not tasks:
            return
        task = tasks[0]
        if task.assignee_id is None:
            who = worker_for(engine, task)
        else:
            with db.read(engine) as s:
                who = s.get(User, task.assignee_id).username
        complete(engine, task.id, who, form_for(engine, task))
    raise AssertionError("the case did not close")


def _fits(page: Any) -> None:
    """Nothing wider than the phone: no sideways scrolling."""
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]


def _look_up(page: Any, number: str, code: str, found: bool = True) -> None:
    page.fill("input[name=number]", number)
    page.fill("input[name=code]", code)
    page.click("form.lookup button[type=submit]")
    page.wait_for_selector("dl.public-facts" if found else "p.error")


def test_a_citizen_looks_a_case_up_and_rates_it_on_a_phone(demo_db, tmp_path):  # noqa: F811
    from playwright.sync_api import sync_playwright

    from web import create_app
    number = start(demo_db, service="FX-DIBAO", now=None).case_number
    (intake,) = ready_tasks(demo_db, number)
    with db.read(demo_db) as s:
        code = s.scalar(select(Case.query_code).where(Case.number == number))
        clerk_name = s.scalar(select(User.display_name).where(User.id == intake.assignee_id))
    complete(demo_db, intake.id, worker_for(demo_db, intake) if intake.assignee_id is None else
             "clerk-430902102201-1", form_for(demo_db, intake))
    (step,) = ready_tasks(demo_db, number)
    app = create_app({"DATABASE_URL": demo_db.url.render_as_string(hide_password=False), "DEMO": True,
                      "INSTANCE_DIR": str(tmp_path / "instance")})
    with _Server(app) as web, sync_playwright() as pw:
        base = f"http://127.0.0.1:{web.port}"
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport=PHONE, locale="zh-CN", is_mobile=True, has_touch=True,
                                    device_scale_factor=2)
            csp_errors: list[str] = []
            page.on("console", lambda m: csp_errors.append(m.text) if "Content Security Policy" in m.text else None)
            page.goto(f"{base}/login")
            page.click("text=办件查询")
            page.wait_for_url(f"{base}/query")
            _fits(page)
            page.screenshot(path=str(QUERY_SHOT), full_page=True)
            _look_up(page, number, "000000" if code != "000000" else "111111", found=False)  # a wrong code first
            assert "未找到：请核对办件号和查询码" in page.inner_text("p.error")
            assert page.input_value("input[name=number]") == number  # kept; only the code is typed again
            page.fill("input[name=code]", code)
            page.click("form.lookup button[type=submit]")
            page.wait_for_selector("dl.public-facts")
            body = page.inner_text("body")
            for text in (number, "最低生活保障", "办理中", step.name, "承诺办结", "办理进度",
                         f"{intake.name}（村）已办", "办结后可以在这里评价"):
                assert text in body, text
            assert clerk_name and clerk_name not in body
            _fits(page)
            page.screenshot(path=str(LOOKUP_SHOT), full_page=True)

            _close(demo_db, number)
            page.goto(f"{base}/query")
            _look_up(page, number.lower(), code)  # typed in lower case: found all the same
            assert "已办结" in page.inner_text("h1")
            radios = page.locator("input[name=score]")
            assert radios.count() == 5
            box = page.locator("label.score").first.bounding_box()
            assert box is not None and box["height"] >= 40 and box["width"] >= 300  # a finger can hit it
            page.click("label.score:has-text('满意') >> nth=1")  # 满意 (the first is 非常满意)
            assert page.locator("input[name=score][value='4']").is_checked()
            page.fill("textarea[name=comment]", "代办员上门服务，很方便")
            _fits(page)
            page.screenshot(path=str(RATE_FORM_SHOT), full_page=True)
            page.click("form.rate button[type=submit]")
            page.wait_for_selector("text=感谢您的评价")
            body = page.inner_text("body")
            assert "满意" in body and "代办员上门服务，很方便" in body
            _fits(page)
            page.screenshot(path=str(RATED_SHOT), full_page=True)
            page.click("text=返回办件详情")
            page.wait_for_selector("dl.public-facts")
            body = page.inner_text("body")
            assert "您的评价：满意" in body and page.locator("input[name=score]").count() == 0
            assert csp_errors == []
        finally:
            browser.close()
    for shot in (QUERY_SHOT, LOOKUP_SHOT, RATE_FORM_SHOT, RATED_SHOT):
        assert shot.stat().st_size > 10_000, shot
