"""Taking an application at the counter (engine.cases.intake): complete → a case on its way; missing
documents → a 补正 wait with a 一次性告知书, or a notice and no case; 不予受理; the intake key; bad input
refused whole. On the real MZ-01 process (its 补正 step stops the clock) and the catalogue's documents."""
from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from engine import cases, clock, db, processes, queries
from engine.errors import Conflict, InvalidInput, NotFound
from engine.models import AuditEvent, Case, IntakeNotice

from .conftest import CLERK, OTHER_CLERK, ROOT, VILLAGE, ready_tasks, snapshot, user

pytestmark = pytest.mark.db

ID = "430902199001011231"  # a valid check digit
DOCS = ["申请书", "身份证", "户口簿", "家庭收入及财产申报表", "经济状况核对授权书"]
FORM = {"household_size": 3, "household_monthly_income": 900, "hardship_reason": "illness"}
APPLICANT = {"applicant_name": "符建英", "applicant_id_number": ID, "applicant_phone": "13807371234",
             "applicant_address": "赫山区龙光桥镇"}


@pytest.fixture
def mz01(seeded):
    with db.transaction(seeded) as s:
        processes.deploy(s, (ROOT / "bpmn" / "MZ-01.bpmn").read_bytes(), "MZ-01.bpmn")
    return seeded


def accept(engine, *, docs=DOCS, applicant=APPLICANT, data=FORM, key=None, who=CLERK, **kw):
    with db.transaction(engine) as s:
        return cases.intake.accept(s, service_code="MZ-01", village_code=VILLAGE, actor=user(engine, who),
                                   applicant=applicant, documents=docs, data=data, intake_key=key, **kw)


def test_a_complete_application_is_accepted_and_its_intake_step_done_at_the_counter(mz01):
    r = accept(mz01)
    assert r.kind == "case" and r.notice_id is None
    names = [t.bpmn_id for t in ready_tasks(mz01, r.case_number)]
    assert names == ["Task_VillageAppraisal"]
    with db.read(mz01) as s:
        case = s.scalar(select(Case).where(Case.number == r.case_number))
        assert case.applicant_id_number == ID and case.applicant_phone == "13807371234"
        assert case.query_code and len(case.query_code) == 6 and case.query_code.isdigit()
        assert case.paused_at is None
        paper = queries.receipt(s, r.case_number, user(mz01, CLERK))
    assert paper.query_code == case.query_code and paper.applicant_id_number == "4309**********1231"
    assert paper.documents == tuple(DOCS) and paper.missing == ()
    assert paper.promised_due_at is not None and paper.clerk_name


def test_missing_documents_wait_in_the_process_supplement_step_with_the_clock_stopped(mz01):
    r = accept(mz01, docs=["申请书", "身份证"])
    assert r.kind == "case" and r.notice_id is not None
    assert [t.bpmn_id for t in ready_tasks(mz01, r.case_number)] == ["Task_Supplement"]
    with db.read(mz01) as s:
        assert s.scalar(select(Case.paused_at).where(Case.number == r.case_number)) is not None
        paper = queries.notice(s, r.notice_id, user(mz01, CLERK))
    assert paper.kind == "notice" and paper.case_number == r.case_number
    assert list(paper.missing) == ["户口簿", "家庭收入及财产申报表", "经济状况核对授权书"]
    assert paper.bring_by == (clock.local(clock.now()) + timedelta(days=15)).date()


def test_missing_documents_can_make_only_a_notice_and_no_case(mz01):
    with db.read(mz01) as s:
        before = s.scalar(select(func.count()).select_from(Case))
    r = accept(mz01, docs=["身份证"], when_missing="notice")
    assert r.kind == "notice" and r.case_number is None
    with db.read(mz01) as s:
        assert s.scalar(select(func.count()).select_from(Case)) == before
        n = s.get(IntakeNotice, r.notice_id)
        assert n.number.startswith("GZ-") and "申请书" in n.missing and n.case_id is None
        assert s.scalar(select(AuditEvent.action).where(AuditEvent.action == "intake.notice_issued")) is not None
        with pytest.raises(NotFound):  # another village's clerk does not see it
            queries.notice(s, r.notice_id, user(mz01, OTHER_CLERK))


def test_an_optional_document_is_never_missing(mz01):
    r = accept(mz01)  # 病历/残疾证(如有) not brought
    assert r.notice_id is None


def test_refusal_makes_a_notice_with_its_reason(mz01):
    with db.transaction(mz01) as s:
        r = cases.intake.refuse(s, service_code="MZ-01", village_code=VILLAGE, actor=user(mz01, CLERK),
                                applicant=APPLICANT, reason="申请人户籍不在本村")
    assert r.kind == "refusal"
    with db.read(mz01) as s:
        paper = queries.notice(s, r.notice_id, user(mz01, CLERK))
    assert paper.reason == "申请人户籍不在本村" and paper.number.startswith("BY-")


@pytest.mark.parametrize("field,value", [
    ("applicant_id_number", "430902199001011234"),  # wrong check digit
    ("applicant_id_number", "４３０９０２１９９００１０１１２３１"),  # full-width digits
    ("applicant_phone", "12345"),
    ("applicant_name", "符\x00建英"),
    ("applicant_name", ""),
])
def test_bad_applicant_details_are_refused_whole_and_change_nothing(mz01, field, value):
    before = snapshot(mz01)
    with pytest.raises(InvalidInput) as err:
        accept(mz01, applicant={**APPLICANT, field: value})
    assert field in err.value.details["fields"]
    assert snapshot(mz01) == before


def test_a_bad_form_value_or_an_unknown_document_changes_nothing(mz01):
    before = snapshot(mz01)
    with pytest.raises(InvalidInput) as err:
        accept(mz01, data={**FORM, "household_size": 0})
    assert "household_size" in err.value.details["fields"]
    with pytest.raises(InvalidInput) as err:
        accept(mz01, docs=DOCS + ["结婚证"])
    assert "documents" in err.value.details["fields"]
    assert snapshot(mz01) == before


def test_the_same_intake_key_never_makes_a_second_case(mz01):
    key = "k" * 8 + "0123456789abcdef"
    first = accept(mz01, key=key)
    again = accept(mz01, key=key)
    assert again.repeated and again.case_number == first.case_number
    with db.read(mz01) as s:
        assert s.scalar(select(func.count()).select_from(Case).where(Case.intake_key == key)) == 1
    # someone else's key reveals nothing of their case: it is refused as used
    before = snapshot(mz01)
    with db.transaction(mz01) as s, pytest.raises(Conflict) as err:
        cases.intake.accept(s, service_code="MZ-01", village_code="430921101201", actor=user(mz01, OTHER_CLERK),
                            applicant=APPLICANT, documents=DOCS, data=FORM, intake_key=key)
    assert err.value.reason == "intake.key_used" and first.case_number not in str(err.value)
    assert snapshot(mz01) == before


def test_a_clerk_accepts_only_for_their_own_village(mz01):
    from engine.errors import Forbidden
    with pytest.raises((Forbidden, NotFound)):
        accept(mz01, who=OTHER_CLERK)


def test_backdated_acceptance_counts_from_the_real_time(mz01):
    at = clock.now() - timedelta(hours=3)
    r = accept(mz01, accepted_at=at)
    with db.read(mz01) as s:
        assert s.scalar(select(Case.accepted_at).where(Case.number == r.case_number)) == at


def test_service_items_find_by_pinyin_initials_code_and_name(mz01):
    with db.read(mz01) as s:
        clerk = user(mz01, CLERK)
        assert [i.code for i in queries.service_items(s, clerk, "zdsh")] == ["MZ-01"]
        assert [i.code for i in queries.service_items(s, clerk, "mz01")] == ["MZ-01"]
        assert [i.code for i in queries.service_items(s, clerk, "生活保障")] == ["MZ-01"]
        form = queries.intake_form(s, "MZ-01")
    ids = [f.id for f in form.fields]
    assert form.checks_documents and "household_size" in ids and "documents_complete" not in ids
    assert next(f for f in form.fields if f.id == "household_size").required
