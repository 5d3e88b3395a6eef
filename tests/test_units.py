"""A unit's contact details (the phone and address its 受理回执 and 一次性告知书 print): set by an
administrator at /admin/units/CODE or by the operator with `yicun unit contact`, through the one writer
`engine.units` — checked, audited, refused beside the field with what was typed kept, and for admins only.
Every web test drives the Flask test client with CSRF on."""
from __future__ import annotations

import contextlib
import io
import json
import re

import pytest
from sqlalchemy import func, insert, select

from engine import db, orgs, units
from engine.cli import main
from engine.errors import Forbidden, InvalidInput, NotFound
from engine.models import AuditEvent, OrgUnit
from engine.policy import Actor

from .conftest import CLERK, ROOT, VILLAGE, snapshot, start
from .webtools import csrf_token, login, post_form

pytestmark = pytest.mark.db

PHONE, ADDRESS = "0737-4221234", "资阳区迎风桥镇邹家村村部一楼"
EDIT = f"/admin/units/{VILLAGE}"
ID = "430902199001011231"


@pytest.fixture
def admin(app):
    c = app.test_client()
    assert login(c, "admin").headers["Location"] == "/"
    return c


def text(resp) -> str:
    return resp.get_data(as_text=True)


def contact(engine, code=VILLAGE) -> tuple[str | None, str | None]:
    with db.read(engine) as s:
        unit = s.scalar(select(OrgUnit).where(OrgUnit.code == code))
        return unit.phone, unit.address


def audit_rows(engine) -> list[AuditEvent]:
    with db.read(engine) as s:
        return list(s.scalars(select(AuditEvent).where(AuditEvent.action == "unit.updated").order_by(AuditEvent.id)))


def field_error(page: str, field: str) -> str | None:
    m = re.search(rf'<span class="field-error" id="{field}-error" role="alert">([^<]*)</span>', page)
    return m and m.group(1)


def save(client, phone: str = PHONE, address: str = ADDRESS, code: str = VILLAGE):
    return post_form(client, f"/admin/units/{code}", {"phone": phone, "address": address},
                     page=f"/admin/units/{code}")


def paper_phone(page: str) -> str:
    """What the paper prints in its 联系电话 cell."""
    return re.search(r"<th>联系电话</th><td>([^<]*)</td>", page).group(1)


# ------------------------------------------------------------------------------------------- the papers
def test_the_admin_sets_a_villages_phone_and_address_and_its_receipt_and_notice_print_them(app, admin, seeded):
    from engine import processes
    with db.transaction(seeded) as s:
        processes.deploy(s, (ROOT / "bpmn" / "MZ-01.bpmn").read_bytes(), "MZ-01.bpmn")
    clerk = app.test_client()
    login(clerk, CLERK)
    form = text(clerk.get("/intake/MZ-01"))
    key = re.search(r'name="intake_key" value="([^"]+)"', form).group(1)
    done = clerk.post("/intake/MZ-01", data={
        "applicant_name": "符建英", "applicant_id_number": ID, "applicant_phone": "13807371234",
        "household_size": "3", "household_monthly_income": "900", "hardship_reason": "illness",
        "documents": ["申请书", "身份证"], "intake_key": key, "action": "accept", "village": VILLAGE,
        "csrf_token": csrf_token(clerk, "/intake/MZ-01")})
    assert done.status_code == 303 and "/receipt" in done.location, text(done)[:2000]
    receipt_url = done.location
    notice_url = re.search(r'href="(/notices/\d+)"', text(clerk.get(receipt_url))).group(1)
    assert paper_phone(text(clerk.get(receipt_url))) == paper_phone(text(clerk.get(notice_url))) == "—"

    page = text(admin.get(EDIT))
    assert "邹家村" in page and "迎风桥镇" in page and 'name="phone" value=""' in page
    resp = save(admin)
    assert resp.status_code == 302 and resp.headers["Location"] == EDIT
    page = text(admin.get(EDIT))
    assert f"已保存单位 {VILLAGE} 的联系方式" in page
    assert f'name="phone" value="{PHONE}"' in page and f'name="address" value="{ADDRESS}"' in page
    assert contact(seeded) == (PHONE, ADDRESS)

    for url in (receipt_url, notice_url):  # printed on both papers the village issued, old ones too
        paper = text(clerk.get(url))
        assert paper_phone(paper) == PHONE and f'<td colspan="3">{ADDRESS}</td>' in paper, url
    with db.read(seeded) as s:  # and read so by the read model itself
        from engine import queries
        number = re.search(r"/cases/([^/]+)/receipt", receipt_url).group(1)
        centre = queries.receipt(s, number, orgs.actor_by_name(s, CLERK)).centre
        assert (centre.name, centre.phone, centre.address) == ("邹家村", PHONE, ADDRESS)


def test_the_change_is_audited_with_old_and_new_and_no_change_writes_nothing(admin, seeded):
    save(admin, phone="13907371234", address="")
    save(admin, phone="13907371234", address="")  # the same again: nothing to record
    save(admin, phone=PHONE, address=ADDRESS)
    save(admin, phone="", address=ADDRESS)  # cleared
    rows = audit_rows(seeded)
    with db.read(seeded) as s:
        admin_id = orgs.user_by_name(s, "admin").id
    assert [(r.old_value, r.new_value) for r in rows] == [
        ("— · —", "13907371234 · —"), ("13907371234 · —", f"{PHONE} · {ADDRESS}"),
        (f"{PHONE} · {ADDRESS}", f"— · {ADDRESS}")]
    assert all(r.actor_id == admin_id and r.case_id is None for r in rows)
    assert rows[0].details == {"unit": VILLAGE, "unit_name": "邹家村", "changes": {"phone": [None, "13907371234"]}}
    assert rows[1].details["changes"] == {"phone": ["13907371234", PHONE], "address": [None, ADDRESS]}
    assert rows[2].details["changes"] == {"phone": [PHONE, None]}
    assert contact(seeded) == (None, ADDRESS)


def test_the_engine_sets_one_field_and_leaves_the_other(seeded):
    with db.transaction(seeded) as s:
        admin = orgs.actor_by_name(s, "admin")
        units.set_unit_contact(s, admin, VILLAGE, phone="0737 422 1234", address=ADDRESS)
    assert contact(seeded) == ("07374221234", ADDRESS)  # spaces dropped; the hyphen is optional
    with db.transaction(seeded) as s:
        got = units.set_unit_contact(s, orgs.actor_by_name(s, "admin"), VILLAGE, address="村部二楼")
    assert (got.phone, got.address, got.parent_name) == ("07374221234", "村部二楼", "迎风桥镇")


# ------------------------------------------------------------------------------------------- refusals
@pytest.mark.parametrize("phone, address, field, message", [
    ("12345", ADDRESS, "phone", "请填写 11 位手机号，或带区号的固定电话"),
    ("1290737123", ADDRESS, "phone", "请填写 11 位手机号"),
    ("23907371234", ADDRESS, "phone", "请填写 11 位手机号"),
    ("0737-42212", ADDRESS, "phone", "请填写 11 位手机号"),
    ("１３９０７３７１２３４", ADDRESS, "phone", "请填写 11 位手机号"),  # full-width digits
    ("13907371234 转 8", ADDRESS, "phone", "请填写 11 位手机号"),
    ("1" * 40, ADDRESS, "phone", "不能超过 32 个字"),
    (PHONE, "村" * 201, "address", "不能超过 200 个字"),
    (PHONE, "村部\x07一楼", "address", "不能含控制字符"),
])
def test_a_refused_contact_is_shown_beside_its_field_keeps_what_was_typed_and_writes_nothing(admin, seeded, phone,
                                                                                           address, field, message):
    before = snapshot(seeded)
    resp = save(admin, phone=phone, address=address)
    page = text(resp)
    assert resp.status_code == 422 and message in (field_error(page, field) or ""), page
    assert re.search(rf'name="{field}"[^>]*aria-invalid="true"', page)
    if "\x07" not in address:
        assert f'name="phone" value="{phone}"' in page and f'name="address" value="{address}"' in page
    assert snapshot(seeded) == before


def test_the_engine_checks_both_fields_before_writing_either(seeded):
    with db.transaction(seeded) as s:
        admin = orgs.actor_by_name(s, "admin")
        with pytest.raises(InvalidInput) as refused:
            units.set_unit_contact(s, admin, VILLAGE, phone="0737", address=ADDRESS)
        assert refused.value.reason == "unit.phone_invalid" and refused.value.details == {"field": "phone"}
        with pytest.raises(NotFound) as missing:
            units.set_unit_contact(s, admin, "999999", phone=PHONE)
        assert missing.value.reason == "unit.not_found" and missing.value.details == {"unit": "999999"}
        with pytest.raises(NotFound):
            units.set_unit_contact(s, admin, ["430902"], phone=PHONE)
    assert contact(seeded) == (None, None) and audit_rows(seeded) == []


@pytest.mark.parametrize("who", [CLERK, "supervisor", "designer"])
def test_only_admins_see_or_change_unit_contacts(app, seeded, who):
    client = app.test_client()
    login(client, who)
    before = snapshot(seeded)
    for url in ("/admin/units", EDIT, "/admin/units?level=village"):
        assert client.get(url).status_code == 403, url
    resp = client.post(EDIT, data={"phone": PHONE, "address": ADDRESS, "csrf_token": csrf_token(client, "/")})
    assert resp.status_code == 403
    assert "单位联系方式" not in text(client.get("/"))  # no link in the header either
    with db.transaction(seeded) as s:  # and the engine refuses them itself (the CLI with --as, any caller)
        actor = orgs.actor_by_name(s, who)
        for call in (lambda: units.set_unit_contact(s, actor, VILLAGE, phone=PHONE),
                     lambda: units.list_unit_contacts(s, actor),
                     lambda: units.get_unit_contact(s, actor, VILLAGE)):
            with pytest.raises(Forbidden) as refused:
                call()
            assert refused.value.reason == "units.administer"
    assert snapshot(seeded) == before


def test_a_post_without_the_csrf_token_is_refused_and_changes_nothing(admin, seeded):
    before = snapshot(seeded)
    resp = admin.post(EDIT, data={"phone": PHONE, "address": ADDRESS})
    assert resp.status_code == 400
    assert snapshot(seeded) == before


def test_an_unknown_unit_is_not_found(admin, seeded):
    assert admin.get("/admin/units/999999").status_code == 404
    before = snapshot(seeded)
    assert save(admin, code="999999").status_code == 404
    assert snapshot(seeded) == before


# ------------------------------------------------------------------------------------------- the list
def _more_villages(engine, count: int) -> None:
    """Villages enough for two pages under 迎风桥镇 (the small tree has ten units)."""
    with db.transaction(engine) as s:
        township = s.scalar(select(OrgUnit).where(OrgUnit.code == "430902102"))
        first = s.scalar(select(func.max(OrgUnit.id))) + 1  # ids given, as the seed gives them
        rows = [{"id": first + i, "code": f"430902102{300 + i}", "name": f"新村{i}", "level": "village",
                 "parent_id": township.id, "path": f"{township.path}430902102{300 + i}/"} for i in range(count)]
        s.execute(insert(OrgUnit), rows)


def test_the_units_list_searches_filters_and_pages(admin, seeded):
    assert 'href="/admin/units"' in text(admin.get("/"))  # beside 账号管理 in the header
    save(admin)
    first = text(admin.get("/admin/units"))
    assert "共 10 个" in first and first.count("<tr") == 11 and PHONE in first and ADDRESS in first
    assert f'href="/admin/units/{VILLAGE}"' in first and ">村<" in first and ">village<" not in first
    by_code = text(admin.get("/admin/units?q=430902102"))
    assert "共 3 个" in by_code and "迎风桥镇" in by_code and "周家村" in by_code and "石塘村" not in by_code
    by_name = text(admin.get("/admin/units?q=邹家"))
    assert "共 1 个" in by_name and "邹家村" in by_name
    villages = text(admin.get("/admin/units?level=village"))
    assert "共 4 个" in villages and "<td>资阳区</td>" not in villages and "<td>迎风桥镇</td>" in villages
    missing = text(admin.get("/admin/units?level=village&phone=missing"))
    assert "共 3 个" in missing and "邹家村" not in missing and "周家村" in missing
    assert "没有符合条件的单位" in text(admin.get("/admin/units?q=%25"))  # a LIKE wildcard is a plain character
    for query, field, message in (("level=empire", "level", "单位层级只能是"), ("page=0", "_form", "页码须为"),
                                  ("page=abc", "_form", "页码须为")):
        resp = admin.get(f"/admin/units?{query}")
        assert resp.status_code == 422 and re.search(rf'id="{field}-error">{message}', text(resp)), query

    _more_villages(seeded, 47)  # 51 villages: two pages
    page1 = text(admin.get("/admin/units?level=village"))
    assert "第 1 / 2 页" in page1 and "共 51 个" in page1 and page1.count("<tr") == 51
    assert 'href="/admin/units?level=village&amp;page=2"' in page1 and "青山村" not in page1
    page2 = text(admin.get("/admin/units?level=village&page=2"))
    assert "第 2 / 2 页" in page2 and page2.count("<tr") == 2 and "青山村" in page2  # in code order: the last
    assert "没有第 3 页" in text(admin.get("/admin/units?level=village&page=3"))
    with db.read(seeded) as s:
        listing = units.list_unit_contacts(s, orgs.actor_by_name(s, "admin"), level="village", offset=48, limit=50)
    assert listing.total == 51
    assert [u.code for u in listing.items] == ["430902102346", "430902103201", "430921101201"]


# ------------------------------------------------------------------------------------------- the CLI
def cli(engine, *args: str) -> tuple[int, dict]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = main(["--json", "--db", engine.url.render_as_string(hide_password=False), *args])
    return rc, json.loads(out.getvalue() if rc == 0 else err.getvalue())


def test_the_operator_sets_a_units_contact_from_the_command_line(seeded):
    rc, out = cli(seeded, "unit", "contact", VILLAGE, "--phone", "13907371234", "--address", ADDRESS)
    assert rc == 0 and out == {"code": VILLAGE, "name": "邹家村", "level": "village", "parent": "迎风桥镇",
                               "phone": "13907371234", "address": ADDRESS}
    rc, out = cli(seeded, "units", "contact", VILLAGE, "--phone", PHONE)  # the address stays
    assert rc == 0 and (out["phone"], out["address"]) == (PHONE, ADDRESS)
    assert contact(seeded) == (PHONE, ADDRESS)
    rc, shown = cli(seeded, "unit", "contact", VILLAGE)  # neither option: shows it, writes nothing
    assert rc == 0 and shown == out
    rows = audit_rows(seeded)
    assert len(rows) == 2 and all(r.actor_id is None for r in rows)
    assert rows[0].details["operator"] == Actor.operator().username
    assert rows[1].details["changes"] == {"phone": ["13907371234", PHONE]}

    before = snapshot(seeded)
    rc, err = cli(seeded, "unit", "contact", VILLAGE, "--phone", "12345", "--address", "新地址")
    assert rc == 3 and err["reason"] == "unit.phone_invalid"
    rc, err = cli(seeded, "unit", "contact", "999999", "--phone", PHONE)
    assert rc == 4 and err["reason"] == "unit.not_found"
    assert snapshot(seeded) == before
    rc, out = cli(seeded, "unit", "contact", VILLAGE, "--phone", "")  # an empty value clears it
    assert rc == 0 and out["phone"] is None and contact(seeded) == (None, ADDRESS)


def test_a_case_started_in_the_village_reads_the_centre_from_the_unit(seeded):
    """The receipt of any case of the village (not only one accepted after the change) prints the unit's
    current details: they are read from the unit, not copied into the case."""
    number = start(seeded).case_number
    with db.transaction(seeded) as s:
        units.set_unit_contact(s, orgs.actor_by_name(s, "admin"), VILLAGE, phone=PHONE, address=ADDRESS)
    from engine import queries
    with db.read(seeded) as s:
        centre = queries.receipt(s, number, orgs.actor_by_name(s, CLERK)).centre
    assert (centre.name, centre.township, centre.county, centre.phone, centre.address) == (
        "邹家村", "迎风桥镇", "资阳区", PHONE, ADDRESS)


def test_the_unit_pages_and_their_refusals_read_in_english(admin, seeded):
    admin.post("/language", data={"lang": "en", "next": "/", "csrf_token": csrf_token(admin, "/")})
    listing = text(admin.get("/admin/units?level=village"))
    assert "Unit contacts" in listing and "Parent unit" in listing and "4 in all" in listing
    assert 'href="/admin/units">Unit contacts</a>' in text(admin.get("/"))
    page = text(save(admin, phone="0737"))
    assert "a landline with its area code (e.g. 0737-4221234)" in field_error(page, "phone") and "手机号" not in page
    page = text(save(admin, address="村" * 201))
    assert field_error(page, "address") == "At most 200 characters." and contact(seeded) == (None, None)
    assert "Contact details of unit" in text(admin.get(save(admin).headers["Location"]))
