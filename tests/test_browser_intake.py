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

from engine import clock, db, orgs, processes
from engine.models import Case

from .conftest import CLERK, ROOT
from .test_browser import CHROMIUM, CHROMIUM_ARGS, _Server, demo_db, pytestmark  # noqa: F401 (fixture, marks)

ID = "430902199001011231"


@pytest.fixture
def intake_db(demo_db: Any) -> Any:
    with db.transaction(demo_db) as s:
        processes.deploy(s, (ROOT / "bpmn" / "MZ-01.bpmn").read_bytes(), "MZ-01.bpmn")
    return demo_db


def _login(page: Any, base: str, username: str) -> None:
    page.goto(f"{base}/login")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", orgs.DEMO_PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/")


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
    from playwright.sync_api import sync_playwright

    from web import create_app
    app = create_app({"DATABASE_URL": intake_db.url.render_as_string(hide_password=False), "DEMO": True,
                      "INSTANCE_DIR": str(tmp_path / "instance")})
    with _Server(app) as web, sync_playwright() as pw:
        base = f"http://127.0.0.1:{web.port}"
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(viewport={"width": 1366, "height": 768}, locale="zh-CN")
            page = context.new_page()
            console: list[str] = []
            page.on("console", lambda m: console.append(m.text))
            page.on("pageerror", lambda e: console.append(str(e)))
            _login(page, base, CLERK)
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
        finally:
            browser.close()
    with db.read(intake_db) as s:
        assert s.scalar(select(func.count()).select_from(Case)) == 2
