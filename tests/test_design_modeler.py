"""The modeler's server side (issue #11 §2, web/design/modeler.py): the editor page opens the newest deployed
file; `check` answers with every finding and its element id; `deploy` makes a new version (audited by the
engine) or is refused with its findings and changes nothing; uploads of one file or a file set are checked,
deployed or opened in the modeler; designers only, and every POST needs its CSRF token. The browser side
(the diagram, the panel, the working copy) is tests/test_browser_modeler.py."""
from __future__ import annotations

import json
import re
from io import BytesIO
from pathlib import Path

import pytest
from sqlalchemy import select

from engine import db, processes
from engine.models import AuditEvent, ProcessVersion

from .conftest import CLERK, COUNTY_MZ, FIXTURES, snapshot
from .webtools import csrf_token, login

ROOT = Path(__file__).resolve().parent.parent
CONFORMANCE = Path(__file__).parent / "conformance"
DIBAO = (FIXTURES / "dibao.bpmn").read_bytes()
CONFIG = re.compile(r'<script type="application/json" id="modeler-config">(.*?)</script>', re.S)


@pytest.fixture
def designer(app):
    c = app.test_client()
    assert login(c, "designer").headers["Location"] == "/"
    return c


def config_of(page: str) -> dict:
    found = CONFIG.search(page)
    assert found, page[:500]
    return json.loads(found.group(1))


def token(client) -> str:
    return csrf_token(client, "/processes/new/edit")


def post_json(client, path, payload, with_token=True):
    headers = {"X-CSRFToken": token(client)} if with_token else {}
    return client.post(path, json=payload, headers=headers)


def upload(client, files, action):
    data = {"action": action, "csrf_token": token(client),
            "files": [(BytesIO(content), name) for content, name in files]}
    return client.post("/processes/upload", data=data, content_type="multipart/form-data")


def versions(engine, process_id):
    with db.read(engine) as s:
        return list(s.scalars(select(ProcessVersion.version).where(ProcessVersion.process_id == process_id)
                              .order_by(ProcessVersion.version)))


def bad_field(xml: bytes) -> bytes:
    """dibao with a form field whose id the engine refuses, on the step Task_VillageAppraisal."""
    broken = xml.replace(b'<camunda:formField id="appraisal_opinion"', b'<camunda:formField id="1st_opinion"', 1)
    assert broken != xml
    return broken


def renamed(xml: bytes, name: str = "村民主评议（第二版）") -> bytes:
    changed = xml.replace('name="村民主评议"'.encode(), f'name="{name}"'.encode(), 1)
    assert changed != xml
    return changed


def test_the_editor_opens_the_newest_file_as_deployed(designer, seeded):
    page = designer.get("/processes/FX-DIBAO/edit")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    config = config_of(html)
    assert config["xml"] == DIBAO.decode("utf-8")  # byte for byte what was deployed
    assert config["processId"] == "FX-DIBAO" and config["baseVersion"] == 1 and config["mode"] == "edit"
    assert config["urls"]["check"] == "/processes/FX-DIBAO/check"
    assert config["urls"]["deploy"] == "/processes/FX-DIBAO/deploy"
    assert "bpmn-modeler.production.min.js" in html and "camunda.json" in config["urls"]["descriptor"]
    assert "bpmn-font/css/bpmn.css" in html
    assert config["texts"]["check"] == "保存并检查"
    assert designer.get("/processes/NO-SUCH/edit").status_code == 404


def test_a_new_process_starts_from_a_template_that_deploys_once_it_has_a_code(designer, seeded):
    config = config_of(designer.get("/processes/new/edit").get_data(as_text=True))
    assert config["mode"] == "new" and config["baseVersion"] is None
    checked = post_json(designer, "/processes/new/check", {"xml": config["xml"]}).get_json()
    assert [f["rule"] for f in checked["findings"]] == ["editor"]  # only: choose the code first
    assert checked["findings"][0]["element_id"] == config["templateId"] and checked["outcome"] == "refused"
    before = snapshot(seeded)
    refused = post_json(designer, "/processes/new/deploy", {"xml": config["xml"]})
    assert refused.status_code == 422 and snapshot(seeded) == before  # deployed, then rolled back
    mine = config["xml"].replace(config["templateId"], "TEST-NEW")
    ok = post_json(designer, "/processes/new/check", {"xml": mine}).get_json()
    assert ok["outcome"] == "deploys" and ok["findings"] == [] and ok["process_ids"] == ["TEST-NEW"]
    done = post_json(designer, "/processes/new/deploy", {"xml": mine, "filename": "TEST-NEW.bpmn"})
    assert done.status_code == 200 and done.get_json()["version"] == 1
    assert versions(seeded, "TEST-NEW") == [1]


def test_check_returns_every_finding_with_its_element_id(designer, seeded):
    before = snapshot(seeded)
    answer = post_json(designer, "/processes/FX-DIBAO/check", {"xml": bad_field(DIBAO).decode()})
    assert answer.status_code == 200
    body = answer.get_json()
    assert body["outcome"] == "refused" and body["process_ids"] == ["FX-DIBAO"]
    errors = [f for f in body["findings"] if f["severity"] == "error"]
    assert len(errors) == 1
    assert errors[0]["element_id"] == "Task_VillageAppraisal" and errors[0]["rule"] == "deploy"
    assert "1st_opinion" in errors[0]["message"] and isinstance(errors[0]["line"], int)
    assert errors[0]["text"].startswith("表单字段 1st_opinion：字段名只能由字母")  # in the reader's language

    # a convention of DESIGN §6 (a Chinese step name) is a warning on its element: it does not block a deploy
    english = DIBAO.replace('name="村民主评议"'.encode(), b'name="Village appraisal"', 1)
    body = post_json(designer, "/processes/FX-DIBAO/check", {"xml": english.decode()}).get_json()
    assert body["outcome"] == "deploys"
    assert {(f["severity"], f["rule"], f["element_id"], f["message"], f["text"]) for f in body["findings"]} == {
        ("warning", "convention", "Task_VillageAppraisal", "user task needs a Chinese name", "用户任务需要中文名称。")}

    # the file must still define the process being edited
    other = post_json(designer, "/processes/FX-DIBAO/check",
                      {"xml": (FIXTURES / "pension.bpmn").read_text(encoding="utf-8")}).get_json()
    assert other["outcome"] == "refused" and other["findings"][0]["rule"] == "editor"
    assert snapshot(seeded) == before  # a check writes nothing


def test_deploy_makes_a_new_version_and_the_engine_audits_it(designer, seeded):
    answer = post_json(designer, "/processes/FX-DIBAO/deploy", {"xml": renamed(DIBAO).decode(),
                                                                "filename": "../../etc/dibao v2.bpmn"})
    assert answer.status_code == 200
    body = answer.get_json()
    assert body["created"] is True and body["version"] == 2 and body["redirect"] == "/processes/FX-DIBAO"
    assert versions(seeded, "FX-DIBAO") == [1, 2]
    with db.read(seeded) as s:
        pv = s.scalar(select(ProcessVersion).where(ProcessVersion.process_id == "FX-DIBAO",
                                                   ProcessVersion.version == 2))
        assert pv.filename == "dibao_v2.bpmn" and "村民主评议（第二版）" in pv.bpmn_xml
        event = s.scalars(select(AuditEvent).where(AuditEvent.action == "process.deployed")
                          .order_by(AuditEvent.id.desc())).first()
        assert event.new_value == "2" and event.old_value == "1" and event.actor_id == pv.deployed_by_id
        assert event.details["process_id"] == "FX-DIBAO" and pv.deployed_by_id is not None
    again = post_json(designer, "/processes/FX-DIBAO/deploy", {"xml": renamed(DIBAO).decode()}).get_json()
    assert again["created"] is False and again["version"] == 2 and versions(seeded, "FX-DIBAO") == [1, 2]
    assert config_of(designer.get("/processes/FX-DIBAO/edit").get_data(as_text=True))["baseVersion"] == 2


@pytest.mark.parametrize("case", ["bad field", "doctype", "other process", "not xml", "empty"])
def test_a_refused_deploy_leaves_the_database_unchanged(designer, seeded, case):
    xml = {
        "bad field": bad_field(DIBAO).decode(),
        # an external entity (XXE): refused before any parser resolves it
        "doctype": DIBAO.decode().replace('<?xml version="1.0" encoding="UTF-8"?>',
                                          '<?xml version="1.0"?><!DOCTYPE d [<!ENTITY x SYSTEM "file:///etc/passwd">]>'),
        "other process": (FIXTURES / "publicity.bpmn").read_text(encoding="utf-8"),  # deploys, rolled back
        "not xml": "<bpmn:definitions",
        "empty": "",
    }[case]
    before = snapshot(seeded)
    answer = post_json(designer, "/processes/FX-DIBAO/deploy", {"xml": xml})
    assert answer.status_code == 422, answer.get_data(as_text=True)[:300]
    assert snapshot(seeded) == before
    body = answer.get_json()
    if case == "bad field":
        assert [f["element_id"] for f in body["findings"]] == ["Task_VillageAppraisal"]
    elif case == "doctype":
        assert "DOCTYPE" in body["findings"][0]["message"] and "root:" not in json.dumps(body)
    elif case == "empty":
        assert body["findings"][0]["message"] == "没有收到流程文件。"
    elif case == "other process":
        assert body["findings"][0]["rule"] == "editor"


def test_a_deploy_based_on_an_older_version_is_refused(designer, seeded):
    """Two designers opened version 1; the second to deploy would undo the first one's version 2 unseen."""
    first = post_json(designer, "/processes/FX-DIBAO/deploy", {"xml": renamed(DIBAO).decode(), "base_version": 1})
    assert first.status_code == 200 and first.get_json()["version"] == 2
    before = snapshot(seeded)
    second = post_json(designer, "/processes/FX-DIBAO/deploy",
                       {"xml": renamed(DIBAO, "村民主评议（另一版）").decode(), "base_version": 1})
    assert second.status_code == 422 and snapshot(seeded) == before
    [finding] = second.get_json()["findings"]
    assert finding["rule"] == "editor" and "版本 2" in finding["text"] and "基于版本 1" in finding["text"]
    again = post_json(designer, "/processes/FX-DIBAO/deploy",
                      {"xml": renamed(DIBAO, "村民主评议（另一版）").decode(), "base_version": 2})
    assert again.status_code == 200 and again.get_json()["version"] == 3


def test_posts_need_the_csrf_token(designer, seeded):
    before = snapshot(seeded)
    for path in ("/processes/FX-DIBAO/check", "/processes/FX-DIBAO/deploy"):
        assert post_json(designer, path, {"xml": renamed(DIBAO).decode()}, with_token=False).status_code == 400
    refused = designer.post("/processes/upload", data={"action": "deploy", "files": [(BytesIO(DIBAO), "d.bpmn")]},
                            content_type="multipart/form-data")
    assert refused.status_code == 400
    assert snapshot(seeded) == before


@pytest.mark.parametrize("username", [CLERK, COUNTY_MZ, "supervisor"])
def test_only_designers_may_edit_check_deploy_and_upload(app, seeded, username):
    client = app.test_client()
    login(client, username)
    before = snapshot(seeded)
    assert client.get("/processes/FX-DIBAO/edit").status_code == 403
    assert client.get("/processes/new/edit").status_code == 403
    assert client.get("/processes/upload").status_code == 403
    headers = {"X-CSRFToken": csrf_token(client, "/")}
    for path in ("/processes/FX-DIBAO/check", "/processes/FX-DIBAO/deploy"):
        assert client.post(path, json={"xml": renamed(DIBAO).decode()}, headers=headers).status_code == 403
    sent = client.post("/processes/upload", data={"action": "deploy", "csrf_token": headers["X-CSRFToken"],
                                                  "files": [(BytesIO(renamed(DIBAO)), "d.bpmn")]},
                       content_type="multipart/form-data")
    assert sent.status_code == 403
    assert snapshot(seeded) == before
    anonymous = app.test_client()
    assert anonymous.get("/processes/FX-DIBAO/edit").headers["Location"].startswith("/login")


def test_a_camunda_file_uploaded_deploys_and_another_is_refused_with_its_findings(designer, seeded):
    good = CONFORMANCE / "camunda-bpm-platform" / "reviewInvoice.bpmn"
    checked = upload(designer, [(good.read_bytes(), good.name)], "check")
    assert checked.status_code == 200 and "可以部署" in checked.get_data(as_text=True)
    done = upload(designer, [(good.read_bytes(), good.name)], "deploy")
    assert done.status_code == 302 and done.headers["Location"] == "/processes/ReviewInvoice"
    assert versions(seeded, "ReviewInvoice") == [1]

    bad = CONFORMANCE / "camunda-bpm-platform" / "invoice.v2.bpmn"
    before = snapshot(seeded)
    refused = upload(designer, [(bad.read_bytes(), bad.name)], "deploy")
    assert refused.status_code == 422
    page = refused.get_data(as_text=True)
    assert "不能部署" in page and "<code>reviewSuccessful</code>" in page and "用了 Camunda/JUEL 表达式" in page
    assert snapshot(seeded) == before


def test_a_file_set_deploys_together_and_neither_alone(designer, seeded):
    caller = (FIXTURES / "calls" / "caller.bpmn").read_bytes()
    callee = (FIXTURES / "calls" / "callee.bpmn").read_bytes()
    before = snapshot(seeded)
    alone = upload(designer, [(caller, "caller.bpmn")], "deploy")
    assert alone.status_code == 422 and "TEST-CALLEE" in alone.get_data(as_text=True)
    assert snapshot(seeded) == before
    done = upload(designer, [(caller, "caller.bpmn"), (callee, "callee.bpmn")], "deploy")
    assert done.status_code == 302
    assert versions(seeded, "TEST-CALLER") == [1] and versions(seeded, "TEST-CALLEE") == [1]
    with db.read(seeded) as s:
        calls = s.scalar(select(ProcessVersion.calls).where(ProcessVersion.process_id == "TEST-CALLER"))
    assert calls["TEST-CALLEE"]["version"] == 1


def test_uploads_are_bounded_and_parsed_safely(designer, seeded):
    before = snapshot(seeded)
    huge = DIBAO.replace(b"</bpmn:definitions>", b"<!--" + b"x" * processes.MAX_BPMN_BYTES + b"--></bpmn:definitions>")
    page = upload(designer, [(huge, "huge.bpmn")], "deploy")
    assert page.status_code == 422 and "the limit is" in page.get_data(as_text=True)
    png = upload(designer, [(b"\x89PNG\r\n\x1a\n" + bytes(range(256)), "photo.bpmn")], "deploy")
    assert png.status_code == 422 and "不能部署" in png.get_data(as_text=True)
    bomb = ('<?xml version="1.0"?><!DOCTYPE l [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;&a;&a;">]>'
            '<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL">&b;</bpmn:definitions>')
    laughs = upload(designer, [(bomb.encode(), "bomb.bpmn")], "check")
    assert laughs.status_code == 200 and "DOCTYPE" in laughs.get_data(as_text=True)
    too_many = upload(designer, [(DIBAO, f"f{i}.bpmn") for i in range(21)], "check")
    assert too_many.status_code == 422 and "一次最多上传 20 个文件" in too_many.get_data(as_text=True)
    nothing = designer.post("/processes/upload", data={"action": "check", "csrf_token": token(designer)},
                            content_type="multipart/form-data")
    assert nothing.status_code == 422
    assert snapshot(seeded) == before


def test_an_uploaded_file_opens_in_the_modeler(designer, seeded):
    page = upload(designer, [(renamed(DIBAO), "from-camunda-modeler.bpmn")], "open")
    assert page.status_code == 200
    config = config_of(page.get_data(as_text=True))
    # it defines a deployed process: the working copy of that process, on its newest version
    assert config["processId"] == "FX-DIBAO" and config["baseVersion"] == 1 and config["fromUpload"] is True
    assert "村民主评议（第二版）" in config["xml"] and config["findings"] == []
    other = CONFORMANCE / "camunda-bpm-platform" / "reviewInvoice.bpmn"
    fresh = config_of(upload(designer, [(other.read_bytes(), other.name)], "open").get_data(as_text=True))
    assert fresh["processId"] == "new" and fresh["urls"]["deploy"] == "/processes/new/deploy"
    assert fresh["findings"] and all(f["severity"] == "warning" for f in fresh["findings"])
    assert all(f["text"] != f["message"] for f in fresh["findings"])  # each convention said in Chinese
    two = upload(designer, [(DIBAO, "a.bpmn"), (DIBAO, "b.bpmn")], "open")
    assert two.status_code == 422


def test_the_modeler_page_weighs_under_the_budget(designer, seeded):
    """Issue #9 §8 holds for the modeler too: the page, the modeler, its styles, the font of its palette and
    the Camunda descriptor it fetches, gzip-compressed, under 300 KB."""
    from .test_assets import BUDGET, GZIP, _vendored, _weight
    _vendored()
    total, parts = _weight(designer, "/processes/FX-DIBAO/edit")
    config = config_of(designer.get("/processes/FX-DIBAO/edit").get_data(as_text=True))
    for extra in (config["urls"]["descriptor"], "/static/vendor/bpmn-js/dist/assets/bpmn-font/font/bpmn.woff2"):
        resp = designer.get(extra, headers=GZIP)
        assert resp.status_code == 200, extra
        total += len(resp.data)
    assert "/static/vendor/bpmn-js/dist/bpmn-modeler.production.min.js" in parts
    assert total < BUDGET, parts
