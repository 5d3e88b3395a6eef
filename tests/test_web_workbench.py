"""The workbench in the browser's words, through Flask's test client with CSRF on: intake (受理回执,
一次性告知书, 不予受理), the task page (form from its definition, earlier steps' data, complete, 退回补正,
resume, withdraw), refusals that keep what was typed and change nothing, and other villages' 404s."""
from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from engine import cases as engine_cases
from engine import db, processes, timers
from engine.models import Case, TaskRow

from .conftest import AGENT, CLERK, COUNTY_MZ, OTHER_CLERK, ROOT, snapshot, user
from .webtools import csrf_token, login

pytestmark = pytest.mark.db

ID = "430902199001011231"
APPLICANT = {"applicant_name": "符建英", "applicant_id_number": ID, "applicant_phone": "13807371234",
             "applicant_address": "龙光桥镇"}
DOCS = ["申请书", "身份证", "户口簿", "家庭收入及财产申报表", "经济状况核对授权书"]
FORM = {"household_size": "3", "household_monthly_income": "900", "hardship_reason": "illness"}


@pytest.fixture
def mz01(seeded):
    with db.transaction(seeded) as s:
        processes.deploy(s, (ROOT / "bpmn" / "MZ-01.bpmn").read_bytes(), "MZ-01.bpmn")
    return seeded


def post(client, path, data, page):
    token = csrf_token(client, page)
    return client.post(path, data={**data, "csrf_token": token})


def intake(client, docs=DOCS, **extra):
    page = client.get("/intake/MZ-01").get_data(as_text=True)
    key = re.search(r'name="intake_key" value="([^"]+)"', page).group(1)
    village = re.search(r'name="village" value="([^"]+)"', page).group(1)  # a clerk's own, hidden
    data = {**APPLICANT, **FORM, "documents": docs, "intake_key": key, "action": "accept", "village": village,
            **extra}
    return post(client, "/intake/MZ-01", data, "/intake/MZ-01"), key


def test_item_list_searches_by_pinyin_initials(mz01, client):
    login(client, CLERK)
    html = client.get("/intake?q=zdsh").get_data(as_text=True)
    assert "最低生活保障申请" in html and "/intake/MZ-01" in html
    assert "/intake/MZ-01" not in client.get("/intake?q=zzzz").get_data(as_text=True)


def test_intake_renders_the_items_documents_and_form(mz01, client):
    login(client, CLERK)
    html = client.get("/intake/MZ-01").get_data(as_text=True)
    for text in ("经济状况核对授权书", "病历/残疾证(如有)", "共同生活家庭成员人数", "因病", 'name="intake_key"'):
        assert text in html
    assert 'name="documents_complete"' not in html  # the checklist decides it


def test_complete_intake_prints_a_receipt_with_query_code(mz01, client):
    login(client, CLERK)
    res, key = intake(client)
    assert res.status_code == 303 and "/receipt" in res.location, re.findall(r"(?:error\"[^>]*>)([^<]+)", res.get_data(as_text=True))
    html = client.get(res.location).get_data(as_text=True)
    with db.read(mz01) as s:
        case = s.scalar(select(Case).where(Case.intake_key == key))
    assert case.number in html and case.query_code in html and "受 理 回 执" in html
    assert "4309**********1231" in html and ID not in html
    # the same submit again (a retry): the same case, said so
    token = csrf_token(client, "/intake/MZ-01")
    again = client.post("/intake/MZ-01", data={**APPLICANT, **FORM, "documents": DOCS, "intake_key": key,
                                               "village": "430902102201", "csrf_token": token})
    assert again.status_code == 303 and case.number in again.location and "repeated=1" in again.location
    with db.read(mz01) as s:
        assert s.scalar(select(func.count()).select_from(Case).where(Case.intake_key == key)) == 1


def test_missing_documents_print_the_one_time_notice(mz01, client):
    login(client, CLERK)
    res, _ = intake(client, docs=["申请书", "身份证"])
    receipt = client.get(res.location).get_data(as_text=True)
    notice_link = re.search(r'href="(/notices/\d+)"', receipt).group(1)
    html = client.get(notice_link).get_data(as_text=True)
    assert "一次性告知书" in html and "户口簿" in html and "补正期间办理时限暂停计算" in html


def test_notice_only_makes_no_case(mz01, client):
    login(client, CLERK)
    with db.read(mz01) as s:
        before = s.scalar(select(func.count()).select_from(Case))
    res, _ = intake(client, docs=["身份证"], when_missing="notice")
    assert "/notices/" in res.location
    with db.read(mz01) as s:
        assert s.scalar(select(func.count()).select_from(Case)) == before


def test_refusal_prints_its_reason(mz01, client):
    login(client, CLERK)
    res, _ = intake(client, action="refuse", refusal_reason="户籍不在本村")
    html = client.get(res.location).get_data(as_text=True)
    assert "不予受理通知书" in html and "户籍不在本村" in html


def test_invalid_intake_shows_each_message_beside_its_field_and_saves_nothing(mz01, client):
    login(client, CLERK)
    before = snapshot(mz01)
    res, _ = intake(client, applicant_id_number="430902199001011234", household_size="0", applicant_phone="123")
    html = res.get_data(as_text=True)
    assert res.status_code == 422
    assert 'id="applicant_id_number-error"' in html and "校验位" in html
    assert 'id="household_size-error"' in html and 'id="applicant_phone-error"' in html
    assert 'value="符建英"' in html  # what was typed stays
    assert snapshot(mz01) == before


def test_forged_intake_without_csrf_is_refused(mz01, client):
    login(client, CLERK)
    before = snapshot(mz01)
    res = client.post("/intake/MZ-01", data={**APPLICANT, **FORM, "documents": DOCS})
    assert res.status_code in (400, 403)
    assert snapshot(mz01) == before


def _case_and_task(engine, key):
    with db.read(engine) as s:
        case = s.scalar(select(Case).where(Case.intake_key == key))
        task = s.scalar(select(TaskRow).where(TaskRow.case_id == case.id, TaskRow.state == "ready"))
        return case.number, task.id, task.bpmn_id


def test_task_page_shows_earlier_steps_and_completes(mz01, client, app):
    login(client, CLERK)
    _, key = intake(client)
    number, task_id, bpmn_id = _case_and_task(mz01, key)
    assert bpmn_id == "Task_VillageAppraisal"
    html = client.get(f"/tasks/{task_id}").get_data(as_text=True)
    assert "前序环节办理情况" in html and "共同生活家庭成员人数" in html and "村民主评议结论" in html
    # a wrong value keeps the page and what was typed
    bad = post(client, f"/tasks/{task_id}/complete", {"village_appraisal_decision": "maybe"}, f"/tasks/{task_id}")
    assert bad.status_code == 422 and 'id="village_appraisal_decision-error"' in bad.get_data(as_text=True)
    data = {"village_appraisal_decision": "approve", "village_appraisal_opinion": "同意",
            "village_appraisal_date": "2026-11-02"}
    ok = post(client, f"/tasks/{task_id}/complete", data, f"/tasks/{task_id}")
    assert ok.status_code == 303, ok.get_data(as_text=True)[:2000]
    with db.read(mz01) as s:
        assert s.scalar(select(TaskRow.state).where(TaskRow.id == task_id)) == "completed"


def test_another_villages_clerk_gets_404_on_every_workbench_url(mz01, client, app):
    login(client, CLERK)
    res, key = intake(client, docs=["申请书"])
    number, task_id, _ = _case_and_task(mz01, key)
    receipt = client.get(res.location).get_data(as_text=True)
    notice = re.search(r'href="(/notices/\d+)"', receipt).group(1)
    other = app.test_client()
    login(other, OTHER_CLERK)
    before = snapshot(mz01)
    for url in (f"/cases/{number}", f"/cases/{number}/receipt", notice, f"/tasks/{task_id}"):
        assert other.get(url).status_code == 404, url
    for url, data in ((f"/tasks/{task_id}/complete", {"supplement_received": "true"}),
                      (f"/tasks/{task_id}/return", {"reason": "x"}),
                      (f"/cases/{number}/withdraw", {"reason": "x"}), (f"/cases/{number}/resume", {})):
        res = post(other, url, data, "/")
        assert res.status_code in (303, 404, 409, 422), url
    assert snapshot(mz01) == before


def test_township_returns_for_supplement_and_the_clerk_resumes(mz01, client, app, manual_clock):
    login(client, CLERK)
    _, key = intake(client)
    number, task_id, _ = _case_and_task(mz01, key)
    with db.transaction(mz01) as s:  # the village appraisal, then its 7-day publicity runs out
        engine_cases.complete_task(s, task_id, user(mz01, CLERK), {"village_appraisal_decision": "approve",
                                                                   "village_appraisal_opinion": "同意",
                                                                   "village_appraisal_date": "2026-11-02"})
    manual_clock.advance(timedelta(days=8))
    timers.sweep(mz01)
    with db.read(mz01) as s:
        survey = s.scalar(select(TaskRow).join(Case).where(Case.number == number, TaskRow.state == "ready"))
    assert survey.level == "township"
    agent = app.test_client()
    login(agent, AGENT)
    res = post(agent, f"/tasks/{survey.id}/return", {"reason": "缺少收入证明"}, f"/tasks/{survey.id}")
    assert res.status_code == 303
    with db.read(mz01) as s:
        assert s.scalar(select(Case.paused_at).where(Case.number == number)) is not None
    assert "被退回补正" in client.get("/").get_data(as_text=True)
    res = post(client, f"/cases/{number}/resume", {}, f"/cases/{number}")
    with db.read(mz01) as s:
        assert s.scalar(select(Case.paused_at).where(Case.number == number)) is None


def test_county_officer_reads_the_village_data_before_approving(mz01, app):
    """(the full four-sign-in run is the browser test; here: the county page lists the intake's values)"""
    c = app.test_client()
    login(c, CLERK)
    _, key = intake(c)
    number, _, _ = _case_and_task(mz01, key)
    county = app.test_client()
    login(county, COUNTY_MZ)
    html = county.get(f"/cases/{number}").get_data(as_text=True)
    assert "共同生活家庭成员人数" in html


def test_a_step_completed_by_someone_else_first_keeps_what_was_typed(mz01, app):
    first, second = app.test_client(), app.test_client()
    login(first, CLERK)
    login(second, "clerk-430902102201-2")
    _, key = intake(first)
    number, task_id, _ = _case_and_task(mz01, key)
    page = f"/tasks/{task_id}"
    token = csrf_token(second, page)  # the second clerk has the page open…
    data = {"village_appraisal_decision": "approve", "village_appraisal_opinion": "同意",
            "village_appraisal_date": "2026-11-02"}
    assert post(first, f"{page}/complete", data, page).status_code == 303  # …the first completes it
    typed = {**data, "village_appraisal_opinion": "第二位服务员写下的意见"}
    res = second.post(f"{page}/complete", data={**typed, "csrf_token": token})
    html = res.get_data(as_text=True)
    assert res.status_code == 409 and "第二位服务员写下的意见" in html
    assert "刚被别人办理完成" in html or "不能再办理" in html
