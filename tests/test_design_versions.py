"""Issue #11 §1, §5: the process list with every version (who, when, hash, lint, open cases per version), a
version's file downloaded exactly as deployed (and deployed again: the same version), model-only files too, and
the diff between two versions, listed and marked on the diagrams — on SQLite and PostgreSQL (the tests taking
`seeded` are database tests), and once in Chromium.

What must hold: the open cases a version shows are the open cases the database holds on it (among those the
reader may see); the downloaded bytes hash to the version's SHA-256 and deploying them is "unchanged"; a diff of
two versions reports exactly the edits made (rename a task, add a task, change a deadline, remove a flow) and
nothing for layout or formatting; an unknown version is a clear error, an unknown process a 404.
"""
from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Any

import pytest
from lxml import etree
from sqlalchemy import event, func, select

from engine import cases, catalog, db, processes
from engine.bpmn.diff import diff_files, read_file
from engine.errors import NotFound
from engine.models import Case, ProcessVersion
from engine.queries import process_versions as pv

from . import test_browser
from .conftest import CLERK, FIXTURES, OTHER_CLERK, start, user
from .webtools import login

PENSION = FIXTURES / "pension.bpmn"
B = "http://www.omg.org/spec/BPMN/20100524/MODEL"
BPMNDI = "http://www.omg.org/spec/BPMN/20100524/DI"
DC = "http://www.omg.org/spec/DD/20100524/DC"
DI = "http://www.omg.org/spec/DD/20100524/DI"
CAMUNDA = "http://camunda.org/schema/1.0/bpmn"
NANXIAN_VILLAGE = "430921101201"
DESIGNER = "designer"


def _by_id(root: Any, element_id: str) -> Any:
    return root.xpath("//*[@id=$i]", i=element_id)[0]


def pension_v2(data: bytes) -> bytes:
    """The pension fixture edited as a designer would: a task renamed, a task added (the approval's flow now
    leads to it, a new flow from it onwards), a deadline changed, a flow removed — and written back by lxml,
    so every line's formatting differs too."""
    root = etree.fromstring(data)
    _by_id(root, "Task_TownshipReview").set("name", "乡镇社保所复核")
    _by_id(root, "Timer_CountyApproval_Warn").find(f"{{{B}}}timerEventDefinition/{{{B}}}timeDuration").text = \
        "workdays(5)"
    flow = _by_id(root, "Flow_VillageDeliver_Warn")
    flow.getparent().remove(flow)
    for ref in root.xpath("//bpmn:incoming | //bpmn:outgoing", namespaces={"bpmn": B}):
        if ref.text == "Flow_VillageDeliver_Warn":
            ref.getparent().remove(ref)
    edge = root.xpath("//*[@bpmnElement='Flow_VillageDeliver_Warn']")[0]
    edge.getparent().remove(edge)
    process = _by_id(root, "FX-PENSION")
    _by_id(root, "Flow_CountyApprove").set("targetRef", "Task_CountyArchive")
    task = etree.SubElement(process, f"{{{B}}}userTask", id="Task_CountyArchive", name="县人社局归档")
    task.set(f"{{{CAMUNDA}}}formKey", "FX-PENSION:Task_CountyArchive")
    task.set(f"{{{CAMUNDA}}}candidateGroups", "人社")
    etree.SubElement(process, f"{{{B}}}sequenceFlow", id="Flow_CountyArchive_VillageDeliver",
                     sourceRef="Task_CountyArchive", targetRef="Task_VillageDeliver")
    etree.SubElement(_by_id(root, "county"), f"{{{B}}}flowNodeRef").text = "Task_CountyArchive"
    plane = root.find(f".//{{{BPMNDI}}}BPMNPlane")
    shape = etree.SubElement(plane, f"{{{BPMNDI}}}BPMNShape", id="Task_CountyArchive_di",
                             bpmnElement="Task_CountyArchive")
    etree.SubElement(shape, f"{{{DC}}}Bounds", x="1030", y="565", width="100", height="80")
    new_edge = etree.SubElement(plane, f"{{{BPMNDI}}}BPMNEdge", id="Flow_CountyArchive_VillageDeliver_di",
                                bpmnElement="Flow_CountyArchive_VillageDeliver")
    for x, y in ((1060, 565), (1060, 205)):
        etree.SubElement(new_edge, f"{{{DI}}}waypoint", x=str(x), y=str(y))
    approve = root.xpath("//*[@bpmnElement='Flow_CountyApprove']")[0]
    for point in approve.findall(f"{{{DI}}}waypoint"):
        approve.remove(point)
    for n, (x, y) in enumerate(((990, 605), (1030, 605))):
        approve.insert(n, etree.Element(f"{{{DI}}}waypoint", x=str(x), y=str(y)))
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


def deploy(engine: Any, data: bytes, filename: str, actor: str | None = DESIGNER) -> processes.DeployResult:
    with db.transaction(engine) as s:
        (result,) = processes.deploy(s, data, filename, user(engine, actor) if actor else None)
    return result


def _versions_count(engine: Any, process_id: str) -> int:
    with db.read(engine) as s:
        return s.scalar(select(func.count()).where(ProcessVersion.process_id == process_id))


# ------------------------------------------------------------------------------------------ §1 the list
def test_the_list_has_every_item_with_its_versions_and_the_open_cases_of_each(seeded, client):
    first = [start(seeded, service="FX-PENSION").case_number for _ in range(2)]
    start(seeded, service="FX-PENSION", actor=OTHER_CLERK, village=NANXIAN_VILLAGE)  # 南县: not the clerk's
    with db.transaction(seeded) as s:
        cases.withdraw_case(s, first[1], user(seeded, CLERK), "申请人撤回")
    v2 = deploy(seeded, pension_v2(PENSION.read_bytes()), "pension.bpmn")
    assert (v2.version, v2.created) == (2, True)
    start(seeded, service="FX-PENSION")

    with db.read(seeded) as s:
        truth = dict(s.execute(select(Case.process_version_id, func.count()).where(Case.status == "open")
                               .group_by(Case.process_version_id)).tuples().all())
        stored = dict(s.execute(select(ProcessVersion.id, ProcessVersion.findings)).tuples().all())
        deployed = set(s.scalars(select(ProcessVersion.process_id)))
        designer = user(seeded, DESIGNER)
        seen: list[str] = []

        def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
            seen.append(statement)
        event.listen(seeded, "before_cursor_execute", record)
        try:
            entries = {e.process_id: e for e in pv.process_list(s, designer)}
        finally:
            event.remove(seeded, "before_cursor_execute", record)
    assert set(entries) == set(catalog.items_by_code()) | deployed and len(entries) >= 176
    assert entries["MZ-01"].in_catalog and entries["MZ-01"].versions == ()  # in the catalogue, not deployed here
    assert not entries["FX-PENSION"].in_catalog
    pension = entries["FX-PENSION"]
    assert [v.version for v in pension.versions] == [2, 1]
    for e in entries.values():
        for v in e.versions:  # every version's number is the database's, and its lint the stored findings
            assert v.open_cases == truth.get(v.id, 0), (e.process_id, v.version)
            assert v.warnings + v.errors == len(stored[v.id]) and v.errors == 0
    assert [v.open_cases for v in pension.versions] == [1, 2]  # v1: the clerk's open case and 南县's
    assert (pension.versions[0].warnings, pension.versions[1].warnings) == (1, 0)  # the new step has no deadline
    assert pension.versions[0].deployed_by == user(seeded, DESIGNER).display_name
    assert pension.versions[1].deployed_by is None  # the seed deployed as the server's operator
    assert pension.versions[0].sha256 == hashlib.sha256(pension_v2(PENSION.read_bytes())).hexdigest()
    assert not any("bpmn_xml" in st or "spec_json" in st or "task_meta" in st for st in seen)
    assert len(seen) == 3  # versions, lint counts, open cases: whatever the number of processes

    with db.read(seeded) as s:  # a clerk sees the open cases of their village only
        mine = next(e for e in pv.process_list(s, user(seeded, CLERK)) if e.process_id == "FX-PENSION")
    assert [v.open_cases for v in mine.versions] == [1, 1]

    login(client, CLERK)
    page = client.get("/processes").get_data(as_text=True)
    body = re.search(r'<tbody data-search="fx-pension[^"]*">(.*?)</tbody>', page, re.S).group(1)
    assert re.findall(r'class="num">(\d+)</td>', body) == ["1", "1"]
    assert ">v2</a>" in body and ">v1</a>" in body and pension.versions[0].short_sha in body
    assert "1 个警告" in body and "通过" in body and "服务器操作员" in body
    assert page.count("<tbody data-search=") == len(entries)
    assert "未部署" in page  # the catalogue's items nobody deployed yet

    for q, wanted in (("cxjmylbx", {"FX-PENSION"}), ("zdsh", {"MZ-01", "FX-DIBAO"}), ("fx-", {"FX-DIBAO"})):
        found = client.get(f"/processes?q={q}").get_data(as_text=True)  # pinyin initials of 城乡居民养老保险…
        listed = {code.upper() for code in re.findall(r'<tbody data-search="([\w.-]+) ', found)}
        assert wanted <= listed and listed == {e.process_id for e in entries.values()
                                               if q in e.initials or q in e.process_id.lower()}, q


def test_the_process_page_shows_a_version_its_steps_deadlines_and_findings(seeded, client):
    deploy(seeded, pension_v2(PENSION.read_bytes()), "pension.bpmn")
    login(client, CLERK)  # everyone signed in may read
    page = client.get("/processes/FX-PENSION").get_data(as_text=True)
    assert 'data-src="/processes/FX-PENSION/versions/2/diagram' in page
    assert "乡镇社保所复核" in page and "县人社局归档" in page and "5 个工作日" in page
    assert "user task has no deadline timer boundary event" in page and "Task_CountyArchive" in page
    old = client.get("/processes/FX-PENSION/versions/1").get_data(as_text=True)
    assert "乡镇社保所审核" in old and "县人社局归档" not in old and "不是当前版本" in old
    with db.read(seeded) as s:
        shown = pv.process_page(s, user(seeded, CLERK), "FX-PENSION", 1)
    approval = next(st for st in shown.steps if st.bpmn_id == "Task_CountyApproval")
    assert approval.candidate_groups == ("人社",) and approval.level == "county"
    assert [(t.workdays, t.interrupting) for t in approval.timers] == [(3, False)]
    assert shown.shown is not None and shown.shown.operator  # the seed's operator, named from the audit trail
    diagram = client.get("/processes/FX-PENSION/versions/2/diagram")
    assert diagram.get_json()["xml"] == pension_v2(PENSION.read_bytes()).decode()
    assert client.get("/processes/FX-PENSION/versions/2/diagram",
                      headers={"If-None-Match": diagram.headers["ETag"]}).status_code == 304
    assert "这个事项还没有部署流程" in client.get("/processes/MZ-01").get_data(as_text=True)
    assert 'class="actions designer"' not in page  # a clerk reads; only designers see what changes a process

    def actions(page: str) -> set[str]:
        found = re.search(r'<p class="actions designer">(.*?)</p>', page, re.S)
        return set(re.findall(r'href="([^"]+)"', found.group(1))) if found else set()
    login(client, DESIGNER)
    mine = actions(client.get("/processes/FX-PENSION").get_data(as_text=True))
    assert {"/processes/FX-PENSION/edit", "/processes/FX-PENSION/migrate"} <= mine  # the modeler (§2), §6
    assert "/processes/new/edit" in actions(client.get("/processes").get_data(as_text=True))
    login(client, "admin")  # admins deploy, but moving running cases is the designers' judgement (§8)
    theirs = actions(client.get("/processes/FX-PENSION").get_data(as_text=True))
    assert "/processes/FX-PENSION/edit" in theirs and "/processes/FX-PENSION/migrate" not in theirs


# ------------------------------------------------------------------------------------------ §1 download, round trip
def test_a_download_is_the_file_as_deployed_and_deploying_it_again_is_the_same_version(seeded, client):
    # CRLF line ends, a byte order mark, a comment and a Chinese file name: nothing of it may be lost
    data = b"\xef\xbb\xbf" + PENSION.read_bytes().replace(b"\n", b"\r\n").replace(
        b"</bpmn:definitions>", b"<!-- \xe5\xaf\xbc\xe5\x87\xba -->\r\n</bpmn:definitions>  \r\n")
    result = deploy(seeded, data, "养老保险 待遇.bpmn")
    assert result.created and result.version == 2
    login(client, CLERK)
    resp = client.get("/processes/FX-PENSION/versions/2/file")
    assert resp.status_code == 200 and resp.mimetype == "application/xml"
    assert resp.get_data() == data
    assert "attachment" in resp.headers["Content-Disposition"]
    assert "filename*=UTF-8''%E5%85%BB%E8%80%81%E4%BF%9D%E9%99%A9%20%E5%BE%85%E9%81%87.bpmn" in \
        resp.headers["Content-Disposition"]
    assert hashlib.sha256(resp.get_data()).hexdigest() == result_sha(seeded, "FX-PENSION", 2)
    again = deploy(seeded, resp.get_data(), "养老保险 待遇.bpmn")
    assert (again.version, again.created, again.version_id) == (2, False, result.version_id)
    assert _versions_count(seeded, "FX-PENSION") == 2
    first = client.get("/processes/FX-PENSION/versions/1/file").get_data()
    assert first == PENSION.read_bytes()  # the seed's version too, byte for byte


def result_sha(engine: Any, process_id: str, version: int) -> str:
    with db.read(engine) as s:
        return s.scalar(select(ProcessVersion.sha256).where(ProcessVersion.process_id == process_id,
                                                            ProcessVersion.version == version))


def test_a_model_only_file_downloads_and_round_trips(seeded, client):
    text = (FIXTURES / "relay.bpmn").read_text(encoding="utf-8")
    data = text.replace('id="TEST-RELAY" name="测试接力" isExecutable="true"',
                        'id="TEST-MODEL" name="仅模型测试" isExecutable="false"').encode()
    assert b'isExecutable="false"' in data
    result = deploy(seeded, data, "model.bpmn")
    assert (result.process_id, result.executable, result.created) == ("TEST-MODEL", False, True)
    login(client, CLERK)
    listing = client.get("/processes?q=TEST-MODEL").get_data(as_text=True)
    assert "仅模型" in listing and "目录外" in listing
    resp = client.get("/processes/TEST-MODEL/versions/1/file")
    assert resp.status_code == 200 and resp.get_data() == data
    assert 'filename=model.bpmn' in resp.headers["Content-Disposition"]
    again = deploy(seeded, resp.get_data(), "model.bpmn")
    assert (again.version, again.created) == (1, False) and _versions_count(seeded, "TEST-MODEL") == 1
    page = client.get("/processes/TEST-MODEL").get_data(as_text=True)
    assert page.count("仅模型") >= 1 and "/processes/TEST-MODEL/versions/1/diagram" in page


# ------------------------------------------------------------------------------------------ §5 the diff
def test_the_diff_of_two_deployed_versions_reports_exactly_the_edits(seeded, client):
    deploy(seeded, pension_v2(PENSION.read_bytes()), "pension.bpmn")
    with db.read(seeded) as s:
        found = pv.version_diff(s, user(seeded, CLERK), "FX-PENSION", 1, 2)
    d = found.diff
    assert (found.old.version, found.new.version) == (1, 2)
    assert d.process == ()
    assert d.ids("added") == ("Task_CountyArchive", "Flow_CountyArchive_VillageDeliver")
    assert d.ids("removed") == ("Flow_VillageDeliver_Warn",)
    assert {e.id: [(c.key, c.old, c.new) for c in e.changes] for e in d.changed} == {
        "Task_TownshipReview": [("name", "乡镇社保所审核", "乡镇社保所复核")],
        "Timer_CountyApproval_Warn": [("deadline", "workdays(3)", "workdays(5)")],
        "Flow_CountyApprove": [("target", "Task_VillageDeliver", "Task_CountyArchive")],
    }
    added = {e.id: e for e in d.added}
    assert added["Task_CountyArchive"].lane == "县" and added["Task_CountyArchive"].type == "userTask"
    assert added["Task_CountyArchive"].change("candidateGroups").new == "人社"
    with db.read(seeded) as s:
        back = pv.version_diff(s, None, "FX-PENSION", 2, 1).diff  # the other way round
    assert back.ids("added") == d.ids("removed") and set(back.ids("removed")) == set(d.ids("added"))

    login(client, CLERK)
    page = client.get("/processes/FX-PENSION/diff?from=1&to=2").get_data(as_text=True)
    rows = re.findall(r'<tr class="(added|removed|changed)" data-element="(\w+)"', page)
    assert rows == [*(("added", i) for i in d.ids("added")), *(("removed", i) for i in d.ids("removed")),
                    *(("changed", i) for i in d.ids("changed"))]
    assert "workdays(3)" in page and "workdays(5)" in page and "乡镇社保所复核" in page
    assert client.get("/processes/FX-PENSION/diff").get_data(as_text=True).count("data-element=") == 6  # newest vs v1
    new = client.get("/processes/FX-PENSION/diff/diagram?from=1&to=2&side=new").get_json()
    old = client.get("/processes/FX-PENSION/diff/diagram?from=1&to=2&side=old").get_json()
    assert (new["version"], new["added"], new["changed"], new["removed"]) == (
        2, list(d.ids("added")), list(d.ids("changed")), [])
    assert (old["version"], old["removed"], old["added"]) == (1, ["Flow_VillageDeliver_Warn"], [])
    assert old["xml"] == PENSION.read_text(encoding="utf-8")


def test_the_diff_compares_our_properties_and_ignores_layout_and_formatting():
    data = PENSION.read_bytes()
    root = etree.fromstring(data)
    for bounds in root.iter(f"{{{DC}}}Bounds"):  # every shape moved, every attribute written again
        bounds.set("x", str(float(bounds.get("x")) + 7))
    moved = etree.tostring(root, encoding="UTF-8", pretty_print=True)
    assert diff_files(data, moved, "FX-PENSION").empty

    text = data.decode()
    text = text.replace('<camunda:property name="promisedLimitWorkdays" value="5" />',
                        '<camunda:property name="promisedLimitWorkdays" value="4" />')
    text = text.replace('camunda:candidateGroups="人社"', 'camunda:candidateGroups="民政"', 1)
    text = text.replace('<camunda:formField id="birth_date" label="出生日期" type="date">',
                        '<camunda:formField id="birth_date" label="出生年月日" type="date">')
    text = text.replace('<bpmn:userTask id="Task_VillageDeliver" name="告知申请人审批结果" '
                        'camunda:formKey="FX-PENSION:Task_VillageDeliver">',
                        '<bpmn:userTask id="Task_VillageDeliver" name="告知申请人审批结果" '
                        'camunda:formKey="FX-PENSION:Task_VillageDeliver"><bpmn:extensionElements>'
                        '<camunda:properties><camunda:property name="pausesClock" value="special"/>'
                        '</camunda:properties></bpmn:extensionElements>', 1)
    condition = re.search(r'(<bpmn:sequenceFlow id="Flow_TownshipApprove".*?<bpmn:conditionExpression[^>]*>)(.*?)<',
                          text, re.S)
    text = text.replace(condition.group(0), condition.group(1) + condition.group(2) + " and True<")
    d = diff_files(data, text, "FX-PENSION")
    assert [(c.key, c.old, c.new) for c in d.process] == [("property:promisedLimitWorkdays", "5", "4")]
    changes = {e.id: {c.key: (c.old, c.new) for c in e.changes} for e in d.changed}
    assert changes["Task_CountyApproval"] == {"candidateGroups": ("人社", "民政")}
    assert set(changes["Task_VillageIntake"]) == {"field:birth_date"}
    assert "label=出生年月日" in changes["Task_VillageIntake"]["field:birth_date"][1]
    assert changes["Task_VillageDeliver"] == {"property:pausesClock": (None, "special")}
    assert changes["Flow_TownshipApprove"] == {"condition": (condition.group(2).strip(),
                                                             condition.group(2).strip() + " and True")}
    assert set(changes) == {"Task_CountyApproval", "Task_VillageIntake", "Task_VillageDeliver",
                            "Flow_TownshipApprove"} and d.added == d.removed == ()
    assert read_file(data).process_id == "FX-PENSION"


# ------------------------------------------------------------------------------------------ errors
def test_an_unknown_version_is_a_clear_error_and_an_unknown_process_404(seeded, client):
    with db.read(seeded) as s:
        with pytest.raises(NotFound) as unknown:
            pv.version_diff(s, None, "FX-PENSION", 1, 9)
        assert unknown.value.reason == "process.version_unknown" and unknown.value.details["versions"] == "v1"
        with pytest.raises(NotFound) as missing:
            pv.process_page(s, None, "NO-SUCH")
        assert missing.value.reason == "process.not_found"
        with pytest.raises(NotFound):
            pv.version_file(s, "FX-PENSION", 2)
    login(client, CLERK)
    resp = client.get("/processes/FX-PENSION/diff?from=1&to=9")
    assert resp.status_code == 404 and "没有版本 v9" in resp.get_data(as_text=True) and \
        "已部署的版本：v1" in resp.get_data(as_text=True)
    for path in ("/processes/NO-SUCH", "/processes/NO-SUCH/versions/1/file", "/processes/NO-SUCH/diff",
                 "/processes/FX-PENSION/versions/3", "/processes/FX-PENSION/versions/3/file",
                 "/processes/FX-PENSION/versions/3/diagram"):
        assert client.get(path).status_code == 404, path
    assert "没有流程 NO-SUCH" in client.get("/processes/NO-SUCH").get_data(as_text=True)
    bad = client.get("/processes/FX-PENSION/diff?from=abc&to=1")
    assert bad.status_code == 422 and "版本号须为正整数" in bad.get_data(as_text=True)
    assert "只有一个版本" in client.get("/processes/FX-PENSION/diff").get_data(as_text=True)
    assert client.get("/processes/FX-PENSION/diff/diagram?from=1&to=1&side=sideways").status_code == 422


# ------------------------------------------------------------------------------------------ in the browser
def _browser(test: Any) -> Any:
    for mark in test_browser.pytestmark:
        test = mark(test)
    return test


@_browser
def test_in_the_browser_the_process_page_draws_the_diagram_and_the_diff_marks_the_changes(tmp_path):
    engine = db.make_engine(f"sqlite:///{tmp_path / 'design.db'}")
    db.migrate(engine)
    from engine import orgs

    from .conftest import SMALL_TREE
    with db.transaction(engine) as s:
        orgs.seed_org_tree(s, SMALL_TREE)
        orgs.seed_staff(s, SMALL_TREE)
    deploy(engine, PENSION.read_bytes(), "pension.bpmn", actor=None)
    deploy(engine, pension_v2(PENSION.read_bytes()), "pension.bpmn")
    with test_browser.served_browser(engine, tmp_path) as (base, browser):
        page = browser.new_page(viewport={"width": 1366, "height": 768}, locale="zh-CN")
        errors: list[str] = []
        page.on("console", lambda m: errors.append(m.text) if m.type in ("error", "warning")
                and not m.text.startswith("Failed to load resource") else None)  # those are counted below
        page.on("response", lambda r: errors.append(f"{r.status} {r.url}") if r.status >= 400
                and not r.url.endswith("/favicon.ico") else None)
        test_browser.sign_in(page, base, DESIGNER)
        page.goto(f"{base}/processes?q=cxjm")
        page.click("text=城乡居民养老保险待遇申领")
        page.wait_for_url("**/processes/FX-PENSION")
        page.wait_for_selector(".bpmn-diagram.drawn", timeout=15000)
        assert page.locator(".bpmn-diagram .djs-element[data-element-id=Task_CountyArchive]").count() == 1
        assert "县人社局归档" in page.inner_text("table.steps")
        page.screenshot(path="/tmp/yicun_process.png")
        page.click("text=与 v1 比较")
        page.wait_for_url("**/processes/FX-PENSION/diff?*")
        page.locator(".bpmn-diagram.drawn").nth(1).wait_for(timeout=15000)  # both drawn (no eval: the CSP)
        assert page.locator(".bpmn-diagram.drawn").count() == 2
        new, old = page.locator(".bpmn-diagram").nth(0), page.locator(".bpmn-diagram").nth(1)
        assert sorted(new.locator(".djs-element.added").evaluate_all("els => els.map(e => e.dataset.elementId)")) \
            == ["Flow_CountyArchive_VillageDeliver", "Task_CountyArchive"]
        assert sorted(new.locator(".djs-element.changed").evaluate_all("els => els.map(e => e.dataset.elementId)")) \
            == ["Flow_CountyApprove", "Task_TownshipReview", "Timer_CountyApproval_Warn"]
        assert old.locator(".djs-element.removed").evaluate_all("els => els.map(e => e.dataset.elementId)") \
            == ["Flow_VillageDeliver_Warn"]
        colour = new.locator(".djs-element.added[data-element-id=Task_CountyArchive] .djs-visual > rect").first \
            .evaluate("e => getComputedStyle(e).stroke")
        assert colour == "rgb(2, 122, 72)"  # green
        assert page.locator("table.diff tr").count() == 1 + 6
        page.screenshot(path="/tmp/yicun_diff.png", full_page=True)
        assert errors == []
    engine.dispose()
    assert Path("/tmp/yicun_diff.png").stat().st_size > 20_000
