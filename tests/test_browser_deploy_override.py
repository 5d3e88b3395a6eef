"""Browser test of deploying despite failing process tests (issue #11 §7; web/design/override.py): in the modeler
a designer changes RS-02 so that a scenario of its tests fails, clicks 部署新版本 and is refused with the failing
test on its step and in the list, a link to the tests page and a reason field; without a reason nothing is sent;
with one, 仍然部署 deploys version 2, audited with the reason. The upload page does the same with the file carried
through its form. At 1366×768 in Chromium.
Reuses tests/test_browser.py's database fixture, server and sign-in."""
from __future__ import annotations

from pathlib import Path

from sqlalchemy import select

from engine import db, orgs, processes
from engine.models import AuditEvent, ProcessVersion

from .test_browser import demo_db, pytestmark, served_browser, sign_in  # noqa: F401
from .test_browser_modeler import open_modeler
from .test_process_scenarios import RS02, _renamed

SCREENSHOT = Path("/tmp/yicun_override.png")
UPLOAD_SHOT = Path("/tmp/yicun_override_upload.png")
SCENARIO = "乡镇社保所同意、县人社局批准、告知办结"
TASK = "Task_CountyApproval"
REASON = "县人社局要求本周上线，测试场景下周按新分工修改"


def _versions(engine) -> list[int]:
    with db.read(engine) as s:
        return list(s.scalars(select(ProcessVersion.version).where(ProcessVersion.process_id == "RS-02")
                              .order_by(ProcessVersion.version)))


def test_a_designer_deploys_anyway_with_a_reason_when_the_tests_fail(demo_db, tmp_path):  # noqa: F811
    with db.transaction(demo_db) as s:
        processes.deploy(s, RS02.read_bytes(), RS02.name)
    with served_browser(demo_db, tmp_path) as (base, browser):
        page, problems = open_modeler(browser, base, "RS-02", TASK)
        assert page.locator(".modeler-override").is_hidden()

        # the county's step goes to another department: the first scenario's 人社 officer cannot complete it
        page.click(f".modeler-canvas g.djs-element[data-element-id={TASK}]")
        page.wait_for_selector('.modeler-panel input[data-key="groups"]')
        assert page.input_value('.modeler-panel input[data-key="groups"]') == "人社"
        page.fill('.modeler-panel input[data-key="groups"]', "民政")
        page.press('.modeler-panel input[data-key="groups"]', "Enter")
        page.evaluate("window.yicunModeler.get('selection').select(null)")

        page.click('button[data-action="deploy"]')
        page.wait_for_selector(".modeler-override:not([hidden])")
        assert "流程测试未通过" in page.inner_text(".modeler-status")
        panel = page.locator(".modeler-override")
        assert "RS-02" in panel.inner_text() and "1 个测试场景未通过" in panel.inner_text()
        assert SCENARIO in panel.locator("ol.override-failures").inner_text()  # what failed, in the panel too
        assert panel.locator("a").get_attribute("href") == "/processes/RS-02/tests"
        listed = page.locator(".modeler-findings li.sev-error")
        assert listed.count() == 1 and SCENARIO in listed.inner_text() and "第 7 步" in listed.inner_text()
        assert page.locator(f'.djs-overlays[data-container-id="{TASK}"] .finding-badge.error').count() == 1
        assert page.locator("#modeler-override-reason").is_visible()
        assert page.evaluate("document.documentElement.scrollWidth") <= 1366
        page.screenshot(path=str(SCREENSHOT))
        assert _versions(demo_db) == [1]

        # no reason: said at the field, nothing sent
        page.fill("#modeler-override-reason", "   ")
        page.click('[data-override="deploy"]')
        page.wait_for_selector("#modeler-override-error:not([hidden])")
        assert "请填写仍然部署的理由" in page.inner_text("#modeler-override-error")
        assert _versions(demo_db) == [1]

        page.fill("#modeler-override-reason", REASON)
        page.click('[data-override="deploy"]')
        page.wait_for_url(f"{base}/processes/RS-02")
        assert "版本 2" in page.inner_text("body")  # the flash message
        assert problems == []

    assert _versions(demo_db) == [1, 2]
    with db.read(demo_db) as s:
        xml = s.scalar(select(ProcessVersion.bpmn_xml).where(ProcessVersion.process_id == "RS-02",
                                                             ProcessVersion.version == 2))
        ((actor_id, details),) = s.execute(select(AuditEvent.actor_id, AuditEvent.details)
                                           .where(AuditEvent.action == "process.scenarios_overridden")).all()
        designer = orgs.user_by_name(s, "designer").id
    assert 'camunda:candidateGroups="民政"' in xml
    assert details["reason"] == REASON and details["process_id"] == "RS-02" and actor_id == designer


def test_the_upload_page_carries_the_files_through_the_reason_form(demo_db, tmp_path):  # noqa: F811
    """The browser cannot keep a file selection across a POST: the refused file comes back in the form's hidden
    fields, and the browser sends it again, unchanged, with the reason."""
    with db.transaction(demo_db) as s:
        processes.deploy(s, RS02.read_bytes(), RS02.name)
    broken = tmp_path / "RS-02.bpmn"
    broken.write_bytes(_renamed(RS02.read_bytes(), TASK, "Task_CountyDecision"))
    with served_browser(demo_db, tmp_path) as (base, browser):
        page = browser.new_page(viewport={"width": 1366, "height": 768}, locale="zh-CN")
        sign_in(page, base, "designer")
        page.goto(f"{base}/processes/upload")
        page.set_input_files("input[name=files]", str(broken))
        page.click("button[value=deploy]")
        page.wait_for_selector("section.override")
        assert "流程测试未通过" in page.inner_text("article.file-check") and SCENARIO in page.inner_text("main")
        assert _versions(demo_db) == [1]
        page.screenshot(path=str(UPLOAD_SHOT), full_page=True)
        assert page.evaluate("document.documentElement.scrollWidth") <= 1366
        page.fill("#override-reason", REASON)
        page.click("section.override button")
        page.wait_for_url(f"{base}/processes/RS-02")
        assert "版本 2" in page.inner_text("body")
    assert _versions(demo_db) == [1, 2]
    with db.read(demo_db) as s:
        xml = s.scalar(select(ProcessVersion.bpmn_xml).where(ProcessVersion.process_id == "RS-02",
                                                             ProcessVersion.version == 2))
    assert xml.encode() == broken.read_bytes()
