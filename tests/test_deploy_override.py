"""Deploying despite failing process tests, in the browser (issue #11 §7; web/design/override.py): the modeler's
deploy answers `tests_failed` with the failing tests, and deploys the same XML again with a reason (required,
trimmed, at most 500 characters; audited by the engine with the actor); the upload page lists the failing
tests under the file (it used to say "没有部署" and nothing else) with a form that carries the files back,
up to the engine's size cap. A reason never pushes an invalid file through, and only designers may give one.
The browser side is tests/test_browser_deploy_override.py."""
from __future__ import annotations

import base64
import hashlib
import html
import json
import re
from io import BytesIO

import pytest
from sqlalchemy import select

from engine import db, processes
from engine.cli import main
from engine.errors import BpmnRejected, ScenariosFailed
from engine.models import AuditEvent, ProcessVersion

from .conftest import CLERK, snapshot, user
from .test_design_modeler import post_json, token, upload, versions
from .test_process_scenarios import RS02, _renamed
from .webtools import csrf_token, login

SCENARIO = "乡镇社保所同意、县人社局批准、告知办结"  # the first scenario of bpmn/scenarios/RS-02.yaml
REASON = "县局要求先上线，场景另行修改"
HIDDEN = re.compile(r'<input type="hidden" name="([^"]+)" value="([^"]*)">')


@pytest.fixture
def designer(app, seeded):
    with db.transaction(seeded) as s:  # version 1 passes its tests
        processes.deploy(s, RS02.read_bytes(), RS02.name)
    c = app.test_client()
    assert login(c, "designer").headers["Location"] == "/"
    return c


def broken() -> bytes:
    """RS-02 with the county's step renamed: a valid file whose first scenario cannot complete that step."""
    return _renamed(RS02.read_bytes(), "Task_CountyApproval", "Task_CountyDecision")


def invalid(data: bytes) -> bytes:
    """The file with a form field whose id the engine refuses (on the village's intake step)."""
    out = data.replace(b'<camunda:formField id="birth_date"', b'<camunda:formField id="1st_birth_date"', 1)
    assert out != data
    return out


def overrides(engine) -> list[tuple[int | None, dict]]:
    with db.read(engine) as s:
        return [(e.actor_id, e.details) for e in s.execute(
            select(AuditEvent.actor_id, AuditEvent.details).where(AuditEvent.action == "process.scenarios_overridden")
            .order_by(AuditEvent.id))]


def override_form(page: str) -> list[tuple[str, str]]:
    """The hidden fields of the upload page's 仍然部署 form, as the browser would send them back."""
    form = page[page.index('action="/processes/upload/override"'):]
    form = form[:form.index("</form>")]
    return [(name, html.unescape(value)) for name, value in HIDDEN.findall(form) if name != "csrf_token"]


def post_override(client, fields: list[tuple[str, str]], reason: str | None):
    data: dict[str, list[str]] = {}
    for name, value in fields:
        data.setdefault(name, []).append(value)
    if reason is not None:
        data["reason"] = [reason]
    data["csrf_token"] = [token(client)]
    return client.post("/processes/upload/override", data=data, content_type="multipart/form-data")


# ------------------------------------------------------------------------------------------------ the engine
def test_the_engine_tells_failing_tests_from_an_invalid_file(seeded):
    with db.transaction(seeded) as s:
        processes.deploy(s, RS02.read_bytes(), RS02.name)
    with pytest.raises(ScenariosFailed) as caught, db.transaction(seeded) as s:
        processes.deploy(s, broken(), RS02.name)
    assert caught.value.process_ids == ["RS-02"] and caught.value.to_dict()["process_ids"] == ["RS-02"]
    assert caught.value.code == "bpmn_rejected" and caught.value.http_status == 422
    assert [f.element_id for f in caught.value.failures["RS-02"]] == ["Task_CountyApproval"]
    with pytest.raises(BpmnRejected) as refused, db.transaction(seeded) as s:  # lint first: no reason helps
        processes.deploy_files(s, [(invalid(broken()), RS02.name)], override_reason=REASON)
    assert not isinstance(refused.value, ScenariosFailed)
    assert overrides(seeded) == [] and versions(seeded, "RS-02") == [1]


# ------------------------------------------------------------------------------------------------ the modeler
def test_the_modeler_refuses_failing_tests_then_deploys_with_a_reason(designer, seeded):
    config_page = designer.get("/processes/RS-02/edit").get_data(as_text=True)
    assert 'class="modeler-override"' in config_page and '"maxReason": 500' in config_page
    before = snapshot(seeded)
    refused = post_json(designer, "/processes/RS-02/deploy", {"xml": broken().decode(), "base_version": 1})
    assert refused.status_code == 422
    body = refused.get_json()
    assert body["outcome"] == "tests_failed" and body["max_reason"] == 500
    (finding,) = body["findings"]  # on the step the scenario expected, shown on the diagram and in the list
    assert finding["element_id"] == "Task_CountyApproval" and finding["rule"] == "tests"
    assert SCENARIO in finding["text"] and "第 7 步" in finding["text"] and "未通过" in finding["text"]
    assert body["tests"] == [{"process_id": "RS-02", "url": "/processes/RS-02/tests", "count": 1,
                              "failures": [finding["text"]]}]
    assert snapshot(seeded) == before

    for reason, says in [("", "请填写仍然部署的理由"), ("  \n ", "请填写仍然部署的理由"), (None, "请填写"),
                         ("理" * 501, "最多 500 个字，现在有 501 个")]:
        answer = post_json(designer, "/processes/RS-02/deploy", {"xml": broken().decode(), "base_version": 1,
                                                                 "override_reason": reason})
        assert answer.status_code == 422 and answer.get_json()["outcome"] == "reason_invalid"
        assert says in answer.get_json()["error"]
        assert snapshot(seeded) == before

    done = post_json(designer, "/processes/RS-02/deploy", {"xml": broken().decode(), "base_version": 1,
                                                           "override_reason": f"  {REASON}\n"})
    assert done.status_code == 200, done.get_data(as_text=True)[:300]
    assert done.get_json()["version"] == 2 and versions(seeded, "RS-02") == [1, 2]
    ((actor_id, details),) = overrides(seeded)
    assert actor_id == user(seeded, "designer").id and details["reason"] == REASON  # trimmed
    assert details["process_id"] == "RS-02" and "Task_CountyApproval" in details["failures"][0]


def test_a_reason_never_pushes_an_invalid_file_through_and_other_refusals_offer_none(designer, seeded):
    before = snapshot(seeded)
    for payload in ({"xml": invalid(broken()).decode()},
                    {"xml": invalid(broken()).decode(), "override_reason": REASON}):
        answer = post_json(designer, "/processes/RS-02/deploy", payload)
        assert answer.status_code == 422
        body = answer.get_json()
        assert body["outcome"] == "refused" and "tests" not in body
        assert all(f["rule"] != "tests" for f in body["findings"])
    stale = post_json(designer, "/processes/RS-02/deploy", {"xml": broken().decode(), "base_version": 0})
    assert stale.status_code == 422 and stale.get_json()["outcome"] == "refused"  # an older base: no override
    assert "基于版本 0" in stale.get_json()["findings"][0]["text"]
    assert snapshot(seeded) == before and overrides(seeded) == []


# ------------------------------------------------------------------------------------------------ the upload
def test_the_upload_page_lists_the_failing_tests_and_deploys_anyway_with_a_reason(designer, seeded):
    before = snapshot(seeded)
    refused = upload(designer, [(broken(), "RS-02.bpmn")], "deploy")
    assert refused.status_code == 422 and snapshot(seeded) == before
    page = refused.get_data(as_text=True)
    assert SCENARIO in page and "<code>Task_CountyApproval</code>" in page  # the regression: it said nothing
    assert "流程测试未通过" in page and 'href="/processes/RS-02/tests"' in page
    assert hashlib.sha256(broken()).hexdigest() in page
    fields = override_form(page)
    assert [v for n, v in fields if n == "file_name"] == ["RS-02.bpmn"]
    assert [v for n, v in fields if n == "process_id"] == ["RS-02"]

    empty = post_override(designer, fields, "   ")
    assert empty.status_code == 422 and snapshot(seeded) == before
    again = empty.get_data(as_text=True)
    assert "请填写仍然部署的理由" in again and SCENARIO in again  # the failing tests, run again read only
    assert override_form(again) == fields  # the same files, ready to send with a reason
    assert post_override(designer, fields, None).status_code == 422 and snapshot(seeded) == before

    tampered = [(n, v.replace("0", "1") if n == "file_sha256" else v) for n, v in fields]
    changed = post_override(designer, tampered, REASON)
    assert changed.status_code == 422 and "不一致" in changed.get_data(as_text=True)
    assert snapshot(seeded) == before

    done = post_override(designer, fields, REASON)
    assert done.status_code == 302 and done.headers["Location"] == "/processes/RS-02"
    assert versions(seeded, "RS-02") == [1, 2]
    with db.read(seeded) as s:
        stored = s.scalar(select(ProcessVersion.bpmn_xml).where(ProcessVersion.process_id == "RS-02",
                                                                ProcessVersion.version == 2))
    assert stored.encode() == broken()  # byte for byte what was uploaded
    ((actor_id, details),) = overrides(seeded)
    assert actor_id == user(seeded, "designer").id and details["reason"] == REASON


def test_a_file_near_the_size_cap_travels_through_the_override_form(designer, seeded):
    """2 MiB of BPMN is 2.8 MB of base64: more than one form field may hold (MAX_FORM_MEMORY_SIZE), so it travels
    in chunks, and the form stays under the app's request limit."""
    data = broken()
    data = data.replace(b"</bpmn:definitions>", b"<!--" + b"x" * (processes.MAX_BPMN_BYTES - len(data) - 64)
                        + b"--></bpmn:definitions>")
    assert processes.MAX_BPMN_BYTES - 64 < len(data) <= processes.MAX_BPMN_BYTES
    refused = upload(designer, [(data, "RS-02.bpmn")], "deploy")
    assert refused.status_code == 422
    fields = override_form(refused.get_data(as_text=True))
    chunks = [v for n, v in fields if n == "file_data_0"]
    assert len(chunks) > 1 and max(map(len, chunks)) < 500_000
    done = post_override(designer, fields, REASON)
    assert done.status_code == 302, done.get_data(as_text=True)[:500]
    assert versions(seeded, "RS-02") == [1, 2]


def test_an_invalid_file_carried_back_with_a_reason_is_refused(designer, seeded):
    page = upload(designer, [(broken(), "RS-02.bpmn")], "deploy").get_data(as_text=True)
    fields = override_form(page)
    bad = invalid(broken())
    swapped = [(n, v) for n, v in fields if n not in ("file_sha256", "file_data_0")]
    swapped += [("file_sha256", hashlib.sha256(bad).hexdigest()),
                ("file_data_0", base64.b64encode(bad).decode())]
    before = snapshot(seeded)
    refused = post_override(designer, swapped, REASON)
    assert refused.status_code == 422
    text = refused.get_data(as_text=True)
    assert "不能部署" in text and "<code>Task_VillageIntake</code>" in text
    assert 'action="/processes/upload/override"' not in text  # no override offered for an invalid file
    damaged = post_override(designer, [(n, v + "!" if n == "file_data_0" else v) for n, v in fields], REASON)
    assert damaged.status_code == 422 and "损坏" in damaged.get_data(as_text=True)
    assert snapshot(seeded) == before and overrides(seeded) == []


@pytest.mark.parametrize("username", [CLERK, "supervisor"])
def test_only_designers_may_deploy_anyway(app, seeded, username):
    client = app.test_client()
    login(client, username)
    headers = {"X-CSRFToken": csrf_token(client, "/")}
    before = snapshot(seeded)
    answer = client.post("/processes/RS-02/deploy", json={"xml": broken().decode(), "override_reason": REASON},
                         headers=headers)
    assert answer.status_code == 403
    sent = client.post("/processes/upload/override", content_type="multipart/form-data", data={
        "csrf_token": headers["X-CSRFToken"], "file_name": "RS-02.bpmn",
        "file_sha256": hashlib.sha256(broken()).hexdigest(), "file_data_0": "", "reason": REASON})
    assert sent.status_code == 403 and snapshot(seeded) == before


# ------------------------------------------------------------------------------------------------ the CLI
def test_the_command_line_says_how_to_deploy_anyway(seeded, db_url, tmp_path, capsys):
    with db.transaction(seeded) as s:
        processes.deploy(s, RS02.read_bytes(), RS02.name)
    path = tmp_path / "RS-02.bpmn"
    path.write_bytes(broken())
    assert main(["--db", db_url, "deploy", str(path), "--as", "designer"]) == 3
    err = capsys.readouterr().err
    assert "1 process test(s) failed" in err and "--override-reason TEXT deploys anyway" in err
    assert SCENARIO in err and versions(seeded, "RS-02") == [1]
    assert main(["--json", "--db", db_url, "deploy", str(path), "--as", "designer"]) == 3
    assert json.loads(capsys.readouterr().err)["process_ids"] == ["RS-02"]
    assert main(["--db", db_url, "deploy", str(path), "--as", "designer", "--override-reason", REASON]) == 0
    assert versions(seeded, "RS-02") == [1, 2] and overrides(seeded)[0][1]["reason"] == REASON
