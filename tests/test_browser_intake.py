"""受理 in a real browser on a rural link: the link drops while the clerk submits, the draft survives a
reload, and the submit that goes out when the link is back makes exactly one case, accepted at the time
the clerk pressed 受理 (not when it arrived). A double click makes one case too."""
from __future__ import annotations

import time
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from engine import clock, db
from engine.models import Case

from .conftest import CLERK
from .test_browser import demo_db, deploy_mz01, pytestmark, served_browser, sign_in  # noqa: F401 (fixture, marks)

ID = "430902199001011231"


@pytest.fixture
def intake_db(demo_db: Any) -> Any:
    return deploy_mz01(demo_db)


def _fill(page: Any, name: str) -> None:
    page.fill("input[name=applicant_name]", name)
    page.fill("input[name=applicant_id_number]", ID)
    page.fill("input[name=applicant_phone]", "13807371234")
    page.fill("input[name=household_size]", "3")
    page.select_option("select[name=hardship_reason]", "illness")
    for doc in ("申请书", "身份证", "户口簿", "家庭收入及财产申报表", "经济状况核对授权书"):
        page.check(f"input[name=documents][value='{doc}']")


def _cases(engine: Any, name: str) -> list[Any]:
    with db.read(engine) as s:
        return list(s.execute(select(Case.number, Case.accepted_at).where(Case.applicant_name == name)))


def test_an_intake_submitted_offline_goes_out_once_with_its_time(intake_db: Any, tmp_path: Path) -> None:
    with served_browser(intake_db, tmp_path) as (base, browser):
        context = browser.new_context(viewport={"width": 1366, "height": 768}, locale="zh-CN")
        page = context.new_page()
        console: list[str] = []
        page.on("console", lambda m: console.append(m.text))
        page.on("pageerror", lambda e: console.append(str(e)))
        sign_in(page, base, CLERK)
        page.goto(f"{base}/intake/MZ-01")
        _fill(page, "离线申请人")
        context.set_offline(True)
        pressed = clock.now()
        page.click("button[name=action][value=accept]")
        page.wait_for_selector("[data-offline-banner]:not([hidden])")
        page.screenshot(path="/tmp/yicun_intake_offline.png")
        assert "/intake/MZ-01" in page.url and _cases(intake_db, "离线申请人") == []
        time.sleep(2.5)  # the link stays down for a while
        context.set_offline(False)
        back = clock.now()
        page.reload()  # the draft comes back and goes out by itself
        try:
            page.wait_for_url("**/receipt*", timeout=15000)
        except Exception:
            page.screenshot(path="/tmp/yicun_intake_stuck.png")
            raise AssertionError(f"no receipt; console: {console}; url {page.url}") from None
        assert "受 理 回 执" in page.inner_text("body")
        page.wait_for_timeout(2500)  # no second submit from the 'online' event either
        made = _cases(intake_db, "离线申请人")
        assert len(made) == 1
        accepted: datetime = made[0].accepted_at
        assert pressed.timestamp() - 2 <= accepted.timestamp() <= back.timestamp() - 2, (pressed, accepted, back)
        # the draft is gone: a new intake starts empty
        page.goto(f"{base}/intake/MZ-01")
        assert page.input_value("input[name=applicant_name]") == ""

        # a double click is one case
        _fill(page, "双击申请人")
        page.dblclick("button[name=action][value=accept]")
        page.wait_for_url("**/receipt*", timeout=15000)
        page.wait_for_timeout(500)
        assert len(_cases(intake_db, "双击申请人")) == 1
        page.screenshot(path="/tmp/yicun_receipt.png", full_page=True)
    with db.read(intake_db) as s:
        assert s.scalar(select(func.count()).select_from(Case)) == 2


def test_intake_and_the_task_page_fit_a_phone(intake_db: Any, tmp_path: Path) -> None:
    """Many clerks have only a phone: at 360 px the intake form and the task page need no sideways scroll."""
    with served_browser(intake_db, tmp_path) as (base, browser):
        page = browser.new_context(viewport={"width": 360, "height": 740}, locale="zh-CN", is_mobile=True,
                                   has_touch=True).new_page()
        sign_in(page, base, CLERK)
        page.goto(f"{base}/intake?q=zdsh")
        page.click("#service-items li:visible a")
        page.wait_for_url("**/intake/MZ-01")
        assert page.evaluate("document.documentElement.scrollWidth") <= 360
        page.screenshot(path="/tmp/yicun_intake_phone.png", full_page=True)
        _fill(page, "手机申请人")
        page.click("button[name=action][value=accept]")
        page.wait_for_url("**/receipt*")
        assert page.evaluate("document.documentElement.scrollWidth") <= 360
        page.screenshot(path="/tmp/yicun_receipt_phone.png", full_page=True)
        page.click("article.paper >> xpath=preceding::a[contains(@href, '/cases/')][1]")
        page.wait_for_url("**/cases/*")
        page.click("a[href*='/tasks/']")
        page.wait_for_url("**/tasks/*")
        assert page.evaluate("document.documentElement.scrollWidth") <= 360
        page.screenshot(path="/tmp/yicun_task_phone.png", full_page=True)
