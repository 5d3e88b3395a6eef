"""Browser test of the case page's BPMN diagram (issue #9 §5): the vendored bpmn-js viewer draws the
case's process in Chromium under the app's Content-Security-Policy, with the done step and the current
step marked; when the diagram cannot be had, the text list of steps stands in its place.

Reuses tests/test_browser.py's database fixture, server and Chromium flags (and its skip rules)."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from engine import orgs

from .conftest import CLERK, complete, form_for, ready_tasks, start, worker_for
from .test_browser import CHROMIUM, CHROMIUM_ARGS, _login, _Server, demo_db, pytestmark  # noqa: F401

SCREENSHOT = Path("/tmp/yicun_case_diagram.png")
FALLBACK_SHOT = Path("/tmp/yicun_case_diagram_fallback.png")


def _marker(page: Any, bpmn_id: str) -> list[str]:
    """The classes of the drawn element `bpmn_id` (its markers among them)."""
    return page.evaluate("id => Array.from(document.querySelector(`.bpmn-diagram g.djs-element"
                         "[data-element-id='${id}']`).classList)", bpmn_id)


def test_the_case_page_draws_the_process_with_the_current_step_marked(demo_db, tmp_path):  # noqa: F811
    from playwright.sync_api import sync_playwright

    from web import create_app
    number = start(demo_db, service="FX-DIBAO", now=None).case_number
    [intake] = ready_tasks(demo_db, number)
    complete(demo_db, intake.id, worker_for(demo_db, intake), form_for(demo_db, intake))
    app = create_app({"DATABASE_URL": demo_db.url.render_as_string(hide_password=False), "DEMO": True,
                      "INSTANCE_DIR": str(tmp_path / "instance")})
    with _Server(app) as web, sync_playwright() as pw:
        base = f"http://127.0.0.1:{web.port}"
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(viewport={"width": 1366, "height": 768}, locale="zh-CN")
            page = context.new_page()
            problems: list[str] = []
            page.on("console", lambda m: problems.append(m.text) if m.type in ("error", "warning")
                    and not m.location.get("url", "").endswith("/favicon.ico") else None)  # (the app has none)
            page.on("pageerror", lambda e: problems.append(str(e)))
            _login(page, base, CLERK, orgs.DEMO_PASSWORD)
            page.wait_for_url(f"{base}/")
            page.goto(f"{base}/cases/{number}")
            page.wait_for_selector(".bpmn-diagram.drawn svg g.djs-element[data-element-id=Task_VillageAppraisal]")
            assert "current" in _marker(page, "Task_VillageAppraisal")
            assert "done" in _marker(page, "Task_VillageIntake")
            assert not {"done", "current"} & set(_marker(page, "Task_CountyApproval"))  # not reached yet
            # the markers are painted: the current step's box is blue and heavy, the done one green
            stroke = ("([id, p]) => getComputedStyle(document.querySelector(`.bpmn-diagram g[data-element-id='${id}'] "
                      ".djs-visual > :first-child`)).getPropertyValue(p)")
            assert page.evaluate(stroke, ["Task_VillageAppraisal", "stroke"]) == "rgb(23, 92, 211)"
            assert page.evaluate(stroke, ["Task_VillageAppraisal", "stroke-width"]) == "3px"
            assert page.evaluate(stroke, ["Task_VillageIntake", "stroke"]) == "rgb(2, 122, 72)"
            assert page.is_hidden(".bpmn-diagram .diagram-fallback")  # the text list made way for the drawing
            labels = page.evaluate("document.querySelector('.bpmn-diagram svg').textContent")
            assert "村民主评议" in labels and "县民政局审批" in labels  # Chinese names drawn
            page.evaluate("document.querySelector('.bpmn-diagram').previousElementSibling.scrollIntoView()")  # 流程图
            page.screenshot(path=str(SCREENSHOT))
            # the whole process fits the box (fit-viewport): everything drawn, labels too, inside the canvas
            box = page.locator(".bpmn-diagram .diagram-canvas").bounding_box()
            drawn = page.locator(".bpmn-diagram svg g.viewport").bounding_box()
            assert box and drawn, (box, drawn)
            assert box["x"] <= drawn["x"] and drawn["x"] + drawn["width"] <= box["x"] + box["width"], (box, drawn)
            assert box["y"] <= drawn["y"] and drawn["y"] + drawn["height"] <= box["y"] + box["height"], (box, drawn)
            zoom = "document.querySelector('.bpmn-diagram svg g.viewport').getBoundingClientRect().width"
            before = page.evaluate(zoom)
            page.click(".diagram-tools button[data-zoom=in]")
            assert page.evaluate(zoom) > before * 1.1  # the zoom buttons work
            assert problems == [], problems  # no CSP refusal, no script error

            # the diagram's JSON does not arrive: the list of steps, saying why
            failing = context.new_page()  # signed in too
            failing.route("**/diagram", lambda route: route.abort())
            failing.goto(f"{base}/cases/{number}")
            failing.wait_for_selector(".bpmn-diagram.failed")
            fallback = failing.inner_text(".bpmn-diagram")
            for text in ("流程图无法显示", "受理并核查申请材料 · 已办", "村民主评议 · 待办"):
                assert text in fallback, fallback
            assert failing.is_hidden(".bpmn-diagram .diagram-canvas")
            failing.locator(".bpmn-diagram").scroll_into_view_if_needed()
            failing.screenshot(path=str(FALLBACK_SHOT))
        finally:
            browser.close()
    assert SCREENSHOT.stat().st_size > 10_000
