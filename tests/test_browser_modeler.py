"""Browser tests of the designers' modeler (issue #11 §2): the vendored bpmn-js Modeler under the app's CSP, our
properties panel writing through the modeler's commands, the server's findings drawn on the element, the working
copy surviving a reload, a deploy of version 2 while a case started on version 1 finishes on version 1; and the
round trip: every file we deploy, opened in the modeler and saved unchanged, keeps every extension element and
attribute, and compiles to the same steps, forms, deadlines and properties.

Reuses tests/test_browser.py's database fixture, server and Chromium flags (and its skip rules)."""
from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

from lxml import etree
from sqlalchemy import select

from engine import db, processes
from engine.bpmn import compile_bpmn
from engine.models import Case, ProcessVersion, TaskRow

from .conftest import FIXTURES, complete, form_for, ready_tasks, start, worker_for
from .test_browser import demo_db, pytestmark, served_browser, sign_in  # noqa: F401

ROOT = Path(__file__).resolve().parent.parent
SCREENSHOT = Path("/tmp/yicun_modeler.png")
FINDING_SHOT = Path("/tmp/yicun_modeler_finding.png")
TASK = "Task_VillageAppraisal"
NEW_NAME = "村民主评议（新版）"


def open_modeler(browser: Any, base: str, process_id: str, task: str) -> tuple[Any, list[str]]:
    """A designer's page on the modeler of `process_id` at 1366×768, once `task` is drawn, and the console's
    errors and warnings as they come (the deploy's refusal, a 422, is expected and left out)."""
    page = browser.new_page(viewport={"width": 1366, "height": 768}, locale="zh-CN")
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type in ("error", "warning")
            and not m.location.get("url", "").endswith(("/favicon.ico", "/deploy")) else None)
    page.on("pageerror", lambda e: problems.append(str(e)))
    sign_in(page, base, "designer")
    page.goto(f"{base}/processes/{process_id}/edit")
    page.wait_for_selector(f".modeler-canvas g.djs-element[data-element-id={task}]")
    return page, problems


def _classes(page: Any, element_id: str) -> list[str]:
    return page.evaluate("id => Array.from(document.querySelector(`.modeler-canvas g.djs-element"
                         "[data-element-id='${id}']`).classList)", element_id)


def _commit(page: Any, selector: str, value: str) -> None:
    """Type into a panel field and leave it (the panel writes on change)."""
    page.fill(selector, value)
    page.press(selector, "Enter")


def _versions(engine: Any, process_id: str) -> list[tuple[int, str]]:
    with db.read(engine) as s:
        return [(r.version, r.bpmn_xml) for r in s.execute(
            select(ProcessVersion.version, ProcessVersion.bpmn_xml)
            .where(ProcessVersion.process_id == process_id).order_by(ProcessVersion.version))]


def _finish(engine: Any, number: str) -> None:
    for _ in range(20):
        tasks = ready_tasks(engine, number)
        if not tasks:
            return
        complete(engine, tasks[0].id, worker_for(engine, tasks[0]), form_for(engine, tasks[0]))
    raise AssertionError(f"case {number} did not finish")


def test_a_designer_edits_checks_fixes_and_deploys_version_2(demo_db, tmp_path):  # noqa: F811
    old_case = start(demo_db, service="FX-DIBAO", now=None).case_number  # on version 1, before the deploy
    with served_browser(demo_db, tmp_path) as (base, browser):
        page, problems = open_modeler(browser, base, "FX-DIBAO", TASK)
        page.wait_for_selector(".modeler-panel .panel-process")  # nothing selected: the process's limits
        assert page.input_value('.modeler-panel input[data-key="prop-legalLimitWorkdays"]') == "25"
        assert page.locator(".djs-palette .entry").count() > 5  # the modeler's palette, not the viewer

        # rename the step through the properties panel: the drawing follows
        page.click(f".modeler-canvas g.djs-element[data-element-id={TASK}]")
        page.wait_for_selector('.modeler-panel input[data-key="name"]')
        assert page.input_value('.modeler-panel input[data-key="name"]') == "村民主评议"
        assert page.input_value('.modeler-panel select[data-key="lane"]') == "village"
        assert page.input_value('.modeler-panel input[data-key="deadline-0-days"]') == "5"
        _commit(page, '.modeler-panel input[data-key="name"]', NEW_NAME)
        page.wait_for_function("name => document.querySelector('.modeler-canvas svg').textContent.includes(name)",
                               arg=NEW_NAME)
        # a form field whose name the engine refuses: a finding on the step
        fields = page.locator(".modeler-panel li.field").count()
        page.click('.modeler-panel button[data-key="add-field"]')
        page.wait_for_selector(f'.modeler-panel input[data-key="field-{fields}-id"]')
        _commit(page, f'.modeler-panel input[data-key="field-{fields}-id"]', "1号意见")
        _commit(page, f'.modeler-panel input[data-key="field-{fields}-label"]', "补充意见")
        page.click('button[data-action="check"]')
        page.wait_for_selector(".modeler-status.error")
        assert "1 个错误" in page.inner_text(".modeler-status")
        assert "finding-error" in _classes(page, TASK)
        badge = page.locator(f'.djs-overlays[data-container-id="{TASK}"] .finding-badge.error')
        assert badge.count() == 1 and "1号意见" in badge.get_attribute("title")
        listed = page.locator(".modeler-findings li.sev-error")
        assert listed.count() == 1 and NEW_NAME in listed.inner_text()
        page.evaluate("window.yicunModeler.get('selection').select(null)")
        page.wait_for_selector(".modeler-panel .panel-process")
        page.screenshot(path=str(FINDING_SHOT))
        listed.click()  # a click on the finding selects its element
        page.wait_for_selector('.modeler-panel input[data-key="name"]')
        assert page.input_value('.modeler-panel input[data-key="name"]') == NEW_NAME

        # a deploy of it is refused with the same finding, and nothing is deployed
        page.click('button[data-action="deploy"]')
        page.wait_for_selector(".modeler-status.error >> text=部署被拒绝")
        assert [v for v, _ in _versions(demo_db, "FX-DIBAO")] == [1]

        # the working copy survives a reload
        page.reload()
        page.wait_for_selector(".modeler-notices .notice")
        assert "已恢复" in page.inner_text(".modeler-notices")
        page.click(f".modeler-canvas g.djs-element[data-element-id={TASK}]")
        page.wait_for_selector(f'.modeler-panel input[data-key="field-{fields}-id"]')
        assert page.input_value(f'.modeler-panel input[data-key="field-{fields}-id"]') == "1号意见"

        # fix it, check again: no error left on the element
        _commit(page, f'.modeler-panel input[data-key="field-{fields}-id"]', "extra_opinion")
        page.click('button[data-action="check"]')
        page.wait_for_selector(".modeler-status.ok")
        assert "finding-error" not in _classes(page, TASK)
        assert page.locator(".modeler-findings li.sev-error").count() == 0
        page.screenshot(path=str(SCREENSHOT))

        page.click('button[data-action="deploy"]')
        page.wait_for_url(f"{base}/processes/FX-DIBAO")
        assert "版本 2" in page.inner_text("body")  # the flash message
        assert page.evaluate("Object.keys(localStorage).filter(k => k.startsWith('yicun.modeler:'))") == []
        assert problems == []

    (v1, xml1), (v2, xml2) = _versions(demo_db, "FX-DIBAO")
    assert (v1, v2) == (1, 2) and NEW_NAME in xml2 and 'id="extra_opinion"' in xml2 and NEW_NAME not in xml1
    # the case started before the deploy finishes on version 1; a new one starts on version 2
    _finish(demo_db, old_case)
    with db.read(demo_db) as s:
        ids = dict(s.execute(select(ProcessVersion.version, ProcessVersion.id)
                             .where(ProcessVersion.process_id == "FX-DIBAO")).all())
        case = s.scalar(select(Case).where(Case.number == old_case))
        assert case.status == "completed" and case.process_version_id == ids[1]
        names = set(s.scalars(select(TaskRow.name).where(TaskRow.case_id == case.id)))
        assert "村民主评议" in names and NEW_NAME not in names
    new_case = start(demo_db, service="FX-DIBAO", now=None).case_number
    with db.read(demo_db) as s:
        assert s.scalar(select(Case.process_version_id).where(Case.number == new_case)) == ids[2]


# ------------------------------------------------------------------------------------------- round trip
BPMN_NS = "http://www.omg.org/spec/BPMN/20100524/MODEL"
DIAGRAM_NS = ("http://www.omg.org/spec/BPMN/20100524/DI", "http://www.omg.org/spec/DD/20100524/DC",
              "http://www.omg.org/spec/DD/20100524/DI")
SAFE = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
#: BPMN 2.0's default attribute values (BPMN20.xsd): bpmn-js writes an attribute only when it differs, which
#: means the same; every other attribute, and every element and text, must come back
BPMN_DEFAULTS = {("cancelActivity", "true"), ("completionQuantity", "1"), ("startQuantity", "1"),
                 ("isForCompensation", "false"), ("parallelMultiple", "false"), ("triggeredByEvent", "false"),
                 ("gatewayDirection", "Unspecified"), ("isCollection", "false"), ("isSequential", "false"),
                 ("instantiate", "false"), ("testBefore", "false"), ("eventGatewayType", "Exclusive"),
                 ("expressionLanguage", "http://www.w3.org/1999/XPath"),
                 ("typeLanguage", "http://www.w3.org/2001/XMLSchema")}


def _owner(el: Any) -> str | None:
    while el is not None:
        if el.get("id"):
            return el.get("id")
        el = el.getparent()
    return None


def _content(xml: str | bytes) -> Counter:
    """Everything but the layout: each element of the process model (by its owner's id, tag, foreign
    attributes and text) and each attribute, as a multiset — the order of siblings aside."""
    root = etree.fromstring(xml.encode("utf-8") if isinstance(xml, str) else xml, SAFE)
    out: Counter = Counter()
    for el in root.iter():
        if not isinstance(el.tag, str) or etree.QName(el).namespace in DIAGRAM_NS:
            continue
        text = (el.text or "").strip()
        out[("element", _owner(el), el.tag, text)] += 1
        for name, value in el.attrib.items():
            if etree.QName(el).namespace == BPMN_NS and (name, value) in BPMN_DEFAULTS:
                continue
            out[("attribute", _owner(el), el.tag, name, value)] += 1
    return out


def _meaning(xml: str | bytes, name: str) -> list[Any]:
    """What the engine reads from the file: each process with its properties and its steps' metadata."""
    data = xml.encode("utf-8") if isinstance(xml, str) else xml
    return sorted(((p.process_id, p.name, p.executable, sorted(p.properties.items(), key=str),
                    {k: m.to_dict() for k, m in p.user_tasks.items()}) for p in compile_bpmn(data, name).processes),
                  key=str)


def _round_trip_files() -> list[Path]:
    """Every catalogue file, every fixture, and the public conformance files the engine keeps — those with a
    diagram: bpmn-js (any modeler) shows nothing without diagram interchange ("no diagram to display")."""
    files = sorted((ROOT / "bpmn").glob("*.bpmn")) + sorted(FIXTURES.rglob("*.bpmn"))
    for path in sorted((Path(__file__).parent / "conformance").rglob("*.bpmn")):
        if processes.dry_run(path.read_bytes(), path.name)["outcome"] != "refused":
            files.append(path)
    return [f for f in files if b"BPMNShape" in f.read_bytes()]


def test_an_unchanged_file_saved_from_the_modeler_keeps_every_extension(demo_db, tmp_path):  # noqa: F811
    files = _round_trip_files()
    assert len(files) > 190
    with served_browser(demo_db, tmp_path) as (base, browser):
        page = browser.new_page(viewport={"width": 1366, "height": 768}, locale="zh-CN")
        sign_in(page, base, "designer")
        page.goto(f"{base}/processes/new/edit")
        page.wait_for_selector(".modeler-panel .panel-process")
        saved = page.evaluate("""async (files) => {
            const out = [];
            for (const xml of files) {
              await window.yicunModeler.importXML(xml);
              out.push((await window.yicunModeler.saveXML({format: true})).xml);
            }
            return out;
        }""", [p.read_text(encoding="utf-8") for p in files])
    assert len(saved) == len(files)
    lost = {}
    for path, xml in zip(files, saved, strict=True):
        original = path.read_bytes()
        before, after = _content(original), _content(xml)
        missing = before - after
        if missing:
            lost[path.name] = sorted(missing.items(), key=str)[:5]
        elif _meaning(original, path.name) != _meaning(xml, path.name):
            lost[path.name] = "compiles differently"
    assert lost == {}
