"""One MZ-01 case through the workbench in a real browser, with real clicks and four sign-ins: the village
clerk takes the application with documents missing (一次性告知书), records the 补正 and accepts; the
township agent claims and completes the survey; the county 民政 officer reads what the village and the
agent recorded and approves; the clerk hands the result over; the citizen looks the case up with the
query code on a phone and rates it. Screenshots of each main page: /tmp/yicun_wb_*.png."""
from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from engine import clock, db, timers
from engine.models import Case, Rating

from .conftest import AGENT, CLERK, COUNTY_MZ
from .test_browser import demo_db, deploy_mz01, pytestmark, served_browser, sign_in  # noqa: F401 (fixture, marks)

ID = "430902199001011231"
SHOTS = Path("/tmp")


@pytest.fixture
def mz01_db(demo_db: Any) -> Any:
    return deploy_mz01(demo_db)


def _fill_step(page: Any, decision: str = "approve") -> None:
    """Fill the step's form as its worker would: every enum to `decision` where offered (else the first
    choice), yes/no to 是, text with an opinion, numbers 1, dates today."""
    form = page.locator("form[action$='/complete']")
    for select_el in form.locator("select").all():
        values = [v for v in select_el.locator("option").evaluate_all("os => os.map(o => o.value)") if v]
        select_el.select_option(decision if decision in values else values[0])
    for radio in form.locator("input[type=radio][value=true]").all():
        radio.check()
    for box in form.locator("input[type=number]").all():
        if not box.input_value():
            box.fill("1")
    for box in form.locator("input[type=date]").all():
        box.fill(clock.local(clock.now()).date().isoformat())
    for box in form.locator("textarea, input:not([type]), input[type=text]").all():
        if not box.input_value():
            box.fill("经核实，情况属实，同意。")


def _complete_current(page: Any, base: str, number: str, step: str, shot: str | None = None,
                      claim: bool = False) -> None:
    page.goto(f"{base}/inbox")
    row = page.locator("tr, li").filter(has_text=number).filter(has_text=step).first
    row.locator("a[href*='/tasks/']").first.click()
    page.wait_for_url("**/tasks/*")
    if claim:
        page.click("button[data-claim]")
        page.wait_for_url("**/tasks/*")
    _fill_step(page)
    if shot:
        page.screenshot(path=str(SHOTS / shot), full_page=True)
    page.click("form[action$='/complete'] button[type=submit]")
    try:
        page.wait_for_url(f"**/cases/{number}", timeout=10000)
    except Exception:
        page.screenshot(path=str(SHOTS / "yicun_wb_stuck.png"), full_page=True)
        raise AssertionError(f"{step} not completed: {page.inner_text('main')[:1500]}") from None


def test_an_application_goes_through_four_sign_ins_and_the_citizen_rates_it(mz01_db: Any, tmp_path: Path) -> None:
    with served_browser(mz01_db, tmp_path) as (base, browser):
        desk = {"viewport": {"width": 1366, "height": 768}, "locale": "zh-CN"}
        # 1. the village clerk: intake with two documents only → 一次性告知书
        clerk = browser.new_context(**desk).new_page()
        sign_in(clerk, base, CLERK)
        clerk_name = clerk.inner_text("span.who").split("·")[0].strip()
        clerk.click("nav.main >> text=受理申请")
        clerk.fill("input[name=q]", "zdsh")
        clerk.click("#service-items li:visible a")
        clerk.wait_for_url("**/intake/MZ-01")
        clerk.fill("input[name=applicant_name]", "符建英")
        clerk.fill("input[name=applicant_id_number]", ID)
        clerk.fill("input[name=applicant_phone]", "13807371234")
        clerk.fill("input[name=applicant_address]", "赫山区龙光桥镇")
        clerk.fill("input[name=household_size]", "3")
        clerk.fill("input[name=household_monthly_income]", "900")
        clerk.select_option("select[name=hardship_reason]", "illness")
        clerk.check("input[name=documents][value='申请书']")
        clerk.check("input[name=documents][value='身份证']")
        clerk.screenshot(path=str(SHOTS / "yicun_wb_intake.png"), full_page=True)
        clerk.click("button[name=action][value=accept]")
        clerk.wait_for_url("**/receipt*")
        receipt = clerk.inner_text("article.paper")
        number = re.search(r"YY-\d{4}-\d{6}", receipt).group(0)
        code = clerk.inner_text("article.paper b.code").strip()
        assert re.fullmatch(r"\d{6}", code) and "户口簿" in receipt
        clerk.screenshot(path=str(SHOTS / "yicun_wb_receipt.png"), full_page=True)
        clerk.click("text=打印一次性告知书")
        clerk.wait_for_url("**/notices/*")
        notice = clerk.inner_text("article.paper")
        for doc in ("户口簿", "家庭收入及财产申报表", "经济状况核对授权书"):
            assert doc in notice
        clerk.screenshot(path=str(SHOTS / "yicun_wb_notice.png"), full_page=True)
        # 补正: the applicant brings the rest; the clerk records it and checks the documents again
        _complete_current(clerk, base, number, "一次性告知并等待补正")
        _complete_current(clerk, base, number, "受理并核查申请材料")
        _complete_current(clerk, base, number, "村民主评议", shot="yicun_wb_task_village.png")
        # the 7-day 公示 runs out
        timers.sweep(mz01_db, now=clock.now() + timedelta(days=8))

        # 2. the township agent claims the survey and completes it
        agent = browser.new_context(**desk).new_page()
        sign_in(agent, base, AGENT)
        agent.goto(f"{base}/inbox")
        assert number in agent.inner_text("body")
        agent.screenshot(path=str(SHOTS / "yicun_wb_inbox.png"), full_page=True)
        _complete_current(agent, base, number, "乡镇入户调查审核", claim=True)

        # 3. the county officer reads the village's and the agent's data, then approves
        county = browser.new_context(**desk).new_page()
        sign_in(county, base, COUNTY_MZ)
        county.goto(f"{base}/inbox")
        county.locator("tr, li").filter(has_text=number).locator("a[href*='/tasks/']").first.click()
        county.wait_for_url("**/tasks/*")
        earlier = county.inner_text("body")
        for seen in ("共同生活家庭成员人数", "村民主评议结论", "乡镇入户调查审核结论", "经核实，情况属实，同意。"):
            assert seen in earlier, seen
        county.screenshot(path=str(SHOTS / "yicun_wb_task_county.png"), full_page=True)
        _complete_current(county, base, number, "县民政局审批", claim=True)

        # 4. the clerk hands the result over: the case closes
        _complete_current(clerk, base, number, "送达审批结果")
        assert "办结" in clerk.inner_text("h1")
        clerk.screenshot(path=str(SHOTS / "yicun_wb_case.png"), full_page=True)

        # 5. the citizen, on a phone, without signing in
        phone = browser.new_context(viewport={"width": 360, "height": 740}, locale="zh-CN",
                                    is_mobile=True, has_touch=True).new_page()
        phone.goto(f"{base}/query")
        phone.fill("input[name=number]", number)
        phone.fill("input[name=code]", code)
        phone.click("form button[type=submit]")
        body = phone.inner_text("body")
        assert "最低生活保障申请" in body and "办结" in body
        assert clerk_name not in body  # no staff names for the public
        phone.screenshot(path=str(SHOTS / "yicun_wb_public.png"), full_page=True)
        phone.check("input[name=score][value='5']")
        phone.fill("textarea[name=comment]", "办事很方便")
        phone.click("form[action$='/query/rate'] button[type=submit]")
        assert "感谢" in phone.inner_text("body")
    with db.read(mz01_db) as s:
        case = s.scalar(select(Case).where(Case.number == number))
        assert case.status == "completed"
        assert s.scalar(select(Rating.score).where(Rating.case_id == case.id)) == 5
