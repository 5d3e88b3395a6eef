"""Issue #9 §4: comments, attachments and extension requests on the case and task pages — through the web
test client with real CSRF tokens (tests/webtools.py), the engine verbs behind them (engine.cases.casework),
the file store (engine.files) and the read side (engine.queries.casework)."""
from __future__ import annotations

import hashlib
import io
import re
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from engine import cases, db, files, queries, settings
from engine.clock import SHANGHAI
from engine.errors import Conflict, Forbidden, InvalidInput, NotFound
from engine.models import Attachment, AuditEvent, Case, Comment, ExtensionRequest, Notification
from engine.policy import Actor

from .conftest import (
    AGENT,
    CLERK,
    CLERK2,
    COUNTY_MZ,
    COUNTY_RS,
    OTHER_CLERK,
    TOWNSHIP,
    ready_tasks,
    snapshot,
    start,
    user,
)
from .webtools import csrf_token, login, make_app

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + bytes(range(256)) * 4
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + b"\x11" * 2000 + b"\xff\xd9"
PDF = b"%PDF-1.4\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n"
FLASH = re.compile(r'<p class="flash">(.*?)</p>', re.S)
EXE = b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff" + b"\x00" * 500  # a Windows program


def sh(*args: int) -> datetime:
    return datetime(*args, tzinfo=SHANGHAI)  # type: ignore[misc]


@pytest.fixture
def web(seeded, tmp_path) -> Any:
    """The app with its instance folder (and so its file store) in the test's own folder."""
    app = make_app(seeded, INSTANCE_DIR=str(tmp_path / "instance"))
    return app


@pytest.fixture
def store(tmp_path) -> files.FileStore:
    return files.FileStore(tmp_path / "instance" / "files")


def stored_files(store: files.FileStore) -> list[Path]:
    """Every file in the store, temporary ones too (a refused upload must leave none)."""
    return sorted(p for p in store.root.rglob("*") if p.is_file()) if store.root.exists() else []


def post(client, path: str, data: dict[str, Any], page: str) -> Any:
    """A form posted the way the browser does: with the page's CSRF token, a file as multipart
    ((bytes, name, type) in `data`)."""
    fields = {k: (io.BytesIO(v[0]), *v[1:]) if isinstance(v, tuple) else v for k, v in data.items()}
    multipart = any(isinstance(v, tuple) for v in data.values())
    return client.post(path, data={**fields, "csrf_token": csrf_token(client, page)},
                       content_type="multipart/form-data" if multipart else None)


def flashed(client, page: str) -> str:
    """The flashed messages the page shows next."""
    return " | ".join(FLASH.findall(client.get(page).get_data(as_text=True)))


def rows(seeded, model: Any, **where: Any) -> list[Any]:
    with db.read(seeded) as s:
        stmt = select(model)
        for key, value in where.items():
            stmt = stmt.where(getattr(model, key) == value)
        return list(s.scalars(stmt))


def actions(seeded, number: str) -> list[str]:
    with db.read(seeded) as s:
        return list(s.scalars(select(AuditEvent.action).join(Case, Case.id == AuditEvent.case_id)
                              .where(Case.number == number).order_by(AuditEvent.id)))


# ------------------------------------------------------------------------------------------- comments
def test_a_comment_is_added_shown_audited_and_bounded(web, seeded):
    number = start(seeded, service="FX-DIBAO").case_number
    (task,) = ready_tasks(seeded, number)
    client = web.test_client()
    login(client, CLERK)
    page = f"/cases/{number}"
    resp = post(client, f"/cases/{number}/comments",
                {"body": "申请人家中有残疾人，\r\n请入户时注意。", "task_id": str(task.id), "next": page + "#comments"},
                page)
    assert resp.status_code == 303 and resp.headers["Location"] == page + "#comments"
    assert "已添加意见" in flashed(client, page)
    html = client.get(page).get_data(as_text=True)
    assert "申请人家中有残疾人，\n请入户时注意。" in html and task.name in html
    (comment,) = rows(seeded, Comment)
    assert comment.body == "申请人家中有残疾人，\n请入户时注意。" and comment.task_id == task.id
    assert actions(seeded, number)[-1] == "comment.added"
    before = snapshot(seeded)
    for body, message in (("   ", "意见内容：此项必填。"), ("长" * 2001, "意见内容：不能超过 2000 个字。"),
                          ("a\x07b", "意见内容：不能含控制字符。")):
        resp = post(client, f"/cases/{number}/comments", {"body": body, "next": page}, page)
        assert resp.status_code == 303 and message in flashed(client, page)
    assert snapshot(seeded) == before
    # off-site `next` is never followed
    resp = post(client, f"/cases/{number}/comments", {"body": "好", "next": "//evil.example/"}, page)
    assert resp.headers["Location"] == page


def test_a_comment_needs_the_csrf_token(web, seeded):
    number = start(seeded, service="FX-DIBAO").case_number
    client = web.test_client()
    login(client, CLERK)
    before = snapshot(seeded)
    for data in ({"body": "x"}, {"body": "x", "csrf_token": "forged"}):
        assert client.post(f"/cases/{number}/comments", data=data).status_code == 400
    assert snapshot(seeded) == before


# ------------------------------------------------------------------------------------------- attachments
def test_an_upload_is_stored_by_its_hash_served_to_those_who_see_the_case_and_removed_with_an_audit(
        web, seeded, store):
    number = start(seeded, service="FX-DIBAO").case_number
    client = web.test_client()
    login(client, CLERK)
    page = f"/cases/{number}"
    name = "户口簿 第1页.png"
    resp = post(client, f"/cases/{number}/attachments?next={page}",
                {"file": (PNG, name, "image/png"), "document": "户口簿", "next": page}, page)
    assert resp.status_code == 303 and flashed(client, page) == f"已上传附件 {name}。"
    (row,) = rows(seeded, Attachment)
    sha = hashlib.sha256(PNG).hexdigest()
    assert (row.sha256, row.size, row.content_type, row.filename, row.document) == (sha, len(PNG), "image/png",
                                                                                   name, "户口簿")
    on_disk = store.root / sha[:2] / sha[2:4] / sha
    assert stored_files(store) == [on_disk]  # no temporary file left beside it
    assert hashlib.sha256(on_disk.read_bytes()).hexdigest() == sha
    audit = [a for a in actions(seeded, number) if a.startswith("attachment.")]
    assert audit == ["attachment.added"]

    html = client.get(page).get_data(as_text=True)
    url = f"/cases/{number}/attachments/{row.id}"
    assert f'<img src="{url}" loading="lazy"' in html and "户口簿" in html
    got = client.get(url)
    assert got.status_code == 200 and got.data == PNG and got.mimetype == "image/png"
    assert got.headers["X-Content-Type-Options"] == "nosniff"
    assert got.headers["Content-Disposition"].startswith("inline;")
    quoted = "filename*=UTF-8''%E6%88%B7%E5%8F%A3%E7%B0%BF%20%E7%AC%AC1%E9%A1%B5.png"
    assert quoted in got.headers["Content-Disposition"]
    assert "sandbox" in got.headers["Content-Security-Policy"] and "private" in got.headers["Cache-Control"]
    again = client.get(url, headers={"If-None-Match": got.headers["ETag"]})
    assert again.status_code == 304 and again.data == b""  # revalidated, not sent again over a slow link
    assert client.get(url + "?download=1").headers["Content-Disposition"].startswith("attachment;")

    # the same bytes again: a second row, one file
    post(client, f"/cases/{number}/attachments", {"file": (PNG, "again.png", "image/png"), "next": page}, page)
    assert len(rows(seeded, Attachment)) == 2 and stored_files(store) == [on_disk]

    # a colleague of the same village sees it but may not remove what someone else uploaded
    other = web.test_client()
    login(other, CLERK2)
    assert other.get(url).status_code == 200
    resp = post(other, f"{url}/remove", {"next": page}, page)
    assert resp.status_code == 303 and "只有上传人可以撤下这个附件" in flashed(other, page)
    assert rows(seeded, Attachment, id=row.id)[0].removed_at is None

    resp = post(client, f"{url}/remove", {"next": page}, page)
    assert resp.status_code == 303 and "已撤下附件" in flashed(client, page)
    (removed,) = rows(seeded, Attachment, id=row.id)
    assert removed.removed_at is not None and on_disk.exists()  # the row is kept, and so are the bytes
    assert client.get(url).status_code == 404
    with db.read(seeded) as s:
        event = s.scalars(select(AuditEvent).where(AuditEvent.action == "attachment.removed")).one()
    assert event.details["attachment_id"] == row.id and event.old_value == name
    assert event.actor_id == user(seeded, CLERK).id
    resp = post(client, f"{url}/remove", {"next": page}, page)  # a second time: nothing to remove
    assert resp.status_code == 404


@pytest.mark.parametrize("data, name, declared", [
    (EXE, "身份证.png", "image/png"),            # a program renamed .png: the bytes decide
    (b"<svg xmlns='http://www.w3.org/2000/svg'><script>alert(1)</script></svg>", "x.png", "image/png"),
    (b"GIF89a" + b"\x00" * 100, "x.gif", "image/gif"),
    (b"", "empty.pdf", "application/pdf"),
])
def test_files_of_other_types_are_refused_by_their_content_and_nothing_is_kept(web, seeded, store, data, name,
                                                                                declared):
    number = start(seeded, service="FX-DIBAO").case_number
    client = web.test_client()
    login(client, CLERK)
    page = f"/cases/{number}"
    before = snapshot(seeded)
    resp = post(client, f"/cases/{number}/attachments", {"file": (data, name, declared), "next": page}, page)
    assert resp.status_code == 303
    html = flashed(client, page)
    assert ("只能上传 JPEG、PNG 或 PDF 文件" in html) if data else ("没有选择文件，或文件是空的" in html)
    assert snapshot(seeded) == before and stored_files(store) == []


def test_oversized_uploads_are_refused_with_a_message_not_an_error_page(seeded, tmp_path, store, monkeypatch):
    monkeypatch.setenv("YICUN_ATTACHMENT_MAX_MB", "1")
    settings.get.cache_clear()
    app = make_app(seeded, INSTANCE_DIR=str(tmp_path / "instance"))
    assert app.config["MAX_CONTENT_LENGTH"] == 3 * 1024 * 1024  # never below a BPMN upload's need
    number = start(seeded, service="FX-DIBAO").case_number
    client = app.test_client()
    login(client, CLERK)
    page = f"/cases/{number}"
    before = snapshot(seeded)
    big = PNG + b"\x00" * (1024 * 1024)  # over the attachment limit, within the request limit: the engine says no
    resp = post(client, f"/cases/{number}/attachments", {"file": (big, "big.png", "image/png"), "next": page}, page)
    assert resp.status_code == 303 and "文件超过 1 MB，不能上传" in flashed(client, page)
    huge = PNG + b"\x00" * (4 * 1024 * 1024)  # over the request limit: refused before any view reads it
    resp = post(client, f"/cases/{number}/attachments?next={page}%23attachments",
                {"file": (huge, "huge.png", "image/png"), "next": page}, page)
    assert resp.status_code == 303 and resp.headers["Location"] == page + "#attachments"
    assert "文件超过 1 MB，不能上传" in flashed(client, page)
    assert snapshot(seeded) == before and stored_files(store) == []
    resp = client.post("/login", data={"username": "x" * (4 * 1024 * 1024)})  # elsewhere: the usual 413 page
    assert resp.status_code == 413 and "太大" in resp.get_data(as_text=True)


def test_only_uploads_may_be_large(web, seeded, store):
    """The request limit is the attachment's (10 MB) for the upload alone: every other form is held to
    3 MB, since Werkzeug reads a urlencoded form into memory whole."""
    number = start(seeded, service="FX-DIBAO").case_number
    client = web.test_client()
    login(client, CLERK)
    page = f"/cases/{number}"
    photo = JPEG + b"\x00" * (5 * 1024 * 1024)
    resp = post(client, f"/cases/{number}/attachments", {"file": (photo, "photo.jpg", "image/jpeg"), "next": page},
                page)
    assert resp.status_code == 303 and flashed(client, page) == "已上传附件 photo.jpg。"
    assert [a.size for a in rows(seeded, Attachment)] == [len(photo)]
    assert store.read(hashlib.sha256(photo).hexdigest()) == photo
    resp = post(client, f"/cases/{number}/comments", {"body": "长" * (2 * 1024 * 1024), "next": page}, page)
    assert resp.status_code == 413 and rows(seeded, Comment) == []


def test_pdfs_are_links_and_jpegs_thumbnails_and_documents_come_from_the_catalogue(web, seeded):
    number = start(seeded, service="FX-DIBAO").case_number
    client = web.test_client()
    login(client, CLERK)
    page = f"/cases/{number}"
    for data, name, declared in ((PDF, "申请书", "application/octet-stream"), (JPEG, "photo.png", "image/png")):
        post(client, f"/cases/{number}/attachments", {"file": (data, name, declared), "next": page}, page)
    pdf, jpeg = rows(seeded, Attachment)
    # the stored type is what the bytes are, and the name ends as the type does
    assert (pdf.content_type, pdf.filename) == ("application/pdf", "申请书.pdf")
    assert (jpeg.content_type, jpeg.filename) == ("image/jpeg", "photo.png.jpg")
    html = client.get(page).get_data(as_text=True)
    assert f'<a class="thumb file" href="/cases/{number}/attachments/{pdf.id}"' in html
    assert f'<img src="/cases/{number}/attachments/{jpeg.id}" loading="lazy"' in html
    assert client.get(f"/cases/{number}/attachments/{pdf.id}").headers["Content-Type"] == "application/pdf"
    # FX-DIBAO is a test copy the catalogue does not list: the document is typed; MZ-01's are chosen
    assert '<input type="text" name="document"' in html
    assert "户口簿" in " ".join(queries.casework.documents("MZ-01"))


# ------------------------------------------------------------------------------------------- extensions
def test_a_worker_asks_for_an_extension_and_the_officer_of_the_approving_level_grants_it_once(web, seeded):
    number = start(seeded, service="FX-DIBAO").case_number  # legal due 24:00 12-07, promised 11-30; cap 10
    (task,) = ready_tasks(seeded, number)
    clerk = web.test_client()
    login(clerk, CLERK)
    page = f"/cases/{number}"
    assert "申请延期" in clerk.get(page).get_data(as_text=True)
    resp = post(clerk, f"/cases/{number}/extension-requests",
                {"workdays": "11", "reason": "需入户核查", "task_id": str(task.id), "next": page}, page)
    assert "这个事项的延期为 1 到 10 个工作日" in flashed(clerk, page)
    assert rows(seeded, ExtensionRequest) == []
    post(clerk, f"/cases/{number}/extension-requests",
         {"workdays": "3", "reason": "申请人外出务工，\r\n需等其返乡核实", "task_id": str(task.id), "next": page}, page)
    assert "已提交延期申请" in flashed(clerk, page)
    (req,) = rows(seeded, ExtensionRequest)
    assert (req.status, req.workdays, req.task_id) == ("pending", 3, task.id)
    assert req.reason == "申请人外出务工，\n需等其返乡核实"
    # one at a time
    post(clerk, f"/cases/{number}/extension-requests", {"workdays": "2", "reason": "再申请", "next": page}, page)
    assert "已有一个待审批的延期申请" in flashed(clerk, page) and len(rows(seeded, ExtensionRequest)) == 1
    # the officers who may decide are told, and only they
    mz, rs = user(seeded, COUNTY_MZ), user(seeded, COUNTY_RS)
    notes = rows(seeded, Notification, kind="extension")
    assert [n.user_id for n in notes] == [mz.id] and number in notes[0].message
    with db.read(seeded) as s:
        assert [r.id for r in queries.extension_requests_to_decide(s, mz)] == [req.id]
        assert queries.extension_requests_to_decide(s, rs) == ()
        assert queries.extension_requests_to_decide(s, user(seeded, TOWNSHIP)) == ()
        assert queries.extension_requests_to_decide(s, user(seeded, CLERK)) == ()
    decide = f"/cases/{number}/extension-requests/{req.id}/decide"
    # the requester (or another department's officer) cannot decide it
    assert 'value="approve"' not in clerk.get(page).get_data(as_text=True)
    post(clerk, decide, {"decision": "approve", "next": page}, page)
    assert "延期须由审批层级的审批人员批准" in flashed(clerk, page)
    officer = web.test_client()
    login(officer, COUNTY_MZ)
    home = officer.get("/").get_data(as_text=True)  # the officer's home lists what waits for a decision
    assert "待审批的延期申请" in home and number in home.split("待审批的延期申请", 1)[1]
    html = officer.get(page).get_data(as_text=True)
    assert 'value="approve"' in html and "申请人外出务工" in html
    before = rows(seeded, Case, number=number)[0]
    assert before.legal_due_at == sh(2026, 12, 8)
    resp = post(officer, decide, {"decision": "approve", "note": "同意", "next": page}, page)
    assert resp.status_code == 303 and "已批准延期" in flashed(officer, page)
    after = rows(seeded, Case, number=number)[0]
    assert after.extension_workdays == 3
    assert after.legal_due_at == sh(2026, 12, 11)  # 24:00 12-07 + 3 working days = 24:00 12-10
    assert after.promised_due_at == sh(2026, 12, 4)  # 24:00 11-30 + 3 = 24:00 12-03
    (req,) = rows(seeded, ExtensionRequest)
    assert (req.status, req.decided_by_id, req.decision_note) == ("approved", mz.id, "同意")
    with db.read(seeded) as s:
        extended = s.scalars(select(AuditEvent).where(AuditEvent.action == "case.extended")).one()
    assert extended.details["request_id"] == req.id and extended.details["approved_by"] == COUNTY_MZ
    assert extended.actor_id == mz.id
    told = rows(seeded, Notification, kind="extension_decided")
    assert [n.user_id for n in told] == [user(seeded, CLERK).id] and "已批准" in told[0].message
    # once: a second request is refused, with the engine's own reason
    post(clerk, f"/cases/{number}/extension-requests", {"workdays": "2", "reason": "还要时间", "next": page}, page)
    assert "每个办件只能延期一次" in flashed(clerk, page) and len(rows(seeded, ExtensionRequest)) == 1
    # and the decided request cannot be decided again
    post(officer, decide, {"decision": "reject", "note": "x", "next": page}, page)
    assert "已经处理过了" in flashed(officer, page)


def test_refusing_an_extension_needs_a_note_and_leaves_the_dues(web, seeded):
    number = start(seeded, service="FX-DIBAO").case_number
    with db.transaction(seeded) as s:
        request_id = cases.request_extension(s, number, user(seeded, CLERK), 5, "需补充调查")
    officer = web.test_client()
    login(officer, COUNTY_MZ)
    page = f"/cases/{number}"
    decide = f"/cases/{number}/extension-requests/{request_id}/decide"
    before = snapshot(seeded)
    post(officer, decide, {"decision": "reject", "note": "  ", "next": page}, page)
    assert "审批意见：此项必填。" in flashed(officer, page)
    post(officer, decide, {"decision": "maybe", "note": "?", "next": page}, page)
    assert "请选择批准或不批准" in flashed(officer, page)
    assert snapshot(seeded) == before
    post(officer, decide, {"decision": "reject", "note": "材料已齐，可按期办结", "next": page}, page)
    assert "不批准" in flashed(officer, page)
    (req,) = rows(seeded, ExtensionRequest)
    assert (req.status, req.decision_note) == ("rejected", "材料已齐，可按期办结")
    case = rows(seeded, Case, number=number)[0]
    assert case.extension_workdays is None and case.legal_due_at == sh(2026, 12, 8)
    assert actions(seeded, number)[-1] == "extension.rejected"
    assert "材料已齐" in rows(seeded, Notification, kind="extension_decided")[0].message
    # refused, the worker may ask again
    with db.transaction(seeded) as s:
        cases.request_extension(s, number, user(seeded, CLERK), 2, "申请人补充材料")
    assert [r.status for r in rows(seeded, ExtensionRequest)] == ["rejected", "pending"]


def test_the_extension_rules_are_extend_cases_own(seeded, manual_clock):
    """Asked by whom, when and for what: the same refusals as `extend_case`, plus the worker rule."""
    number = start(seeded, service="FX-PENSION").case_number  # legal due 24:00 11-09, cap 5

    def ask(who: str, days: Any = 2, reason: str = "需要补充调查", task_id: int | None = None) -> int:
        with db.transaction(seeded) as s:
            return cases.request_extension(s, number, user(seeded, who), days, reason, task_id=task_id)

    with pytest.raises(Forbidden) as info:
        ask(AGENT)  # sees the case, but its current step is the village's
    assert info.value.reason == "extension.request"
    with pytest.raises(Forbidden):
        ask(COUNTY_RS)
    with pytest.raises(NotFound) as missing:
        ask(OTHER_CLERK)
    assert missing.value.reason == "case.not_found"
    for days in (0, 6, "3", True, None):
        with pytest.raises(InvalidInput) as bad:
            ask(CLERK, days)
        assert bad.value.reason == "extension.workdays_invalid"
    with pytest.raises(InvalidInput):
        ask(CLERK, 2, " ")
    with pytest.raises(NotFound):
        ask(CLERK, 2, task_id=999_999)
    manual_clock.set(sh(2026, 11, 10, 9, 0))
    with pytest.raises(Conflict) as late:
        ask(CLERK)
    assert late.value.reason == "extension.overdue"
    assert rows(seeded, ExtensionRequest) == []


def test_a_request_made_in_time_may_be_approved_after_the_due(seeded, manual_clock):
    """The law asks that an extension be applied for before the limit runs out; the officer may decide
    later (the approval then moves the dues that already passed)."""
    number = start(seeded, service="FX-PENSION").case_number  # legal due 24:00 11-09
    with db.transaction(seeded) as s:
        request_id = cases.request_extension(s, number, user(seeded, CLERK), 2, "需要补充调查")
    manual_clock.set(sh(2026, 11, 10, 9, 0))
    with db.transaction(seeded) as s:
        assert cases.decide_extension(s, request_id, user(seeded, COUNTY_RS), True, None) == number
    assert rows(seeded, Case, number=number)[0].legal_due_at == sh(2026, 11, 12)


# ------------------------------------------------------------------------------------------- another village
def test_another_villages_clerk_gets_404_for_every_url_and_changes_nothing(web, seeded, store):
    number = start(seeded, service="FX-DIBAO").case_number
    (task,) = ready_tasks(seeded, number)
    with db.transaction(seeded) as s:
        attachment_id = cases.add_attachment(s, number, user(seeded, CLERK), filename="a.png", content_type="image/png",
                                             data=PNG, file_store=store)
        cases.add_comment(s, number, user(seeded, CLERK), "内部意见")
        request_id = cases.request_extension(s, number, user(seeded, CLERK), 2, "需要补充调查")
    client = web.test_client()
    login(client, OTHER_CLERK)
    before = snapshot(seeded)
    base = f"/cases/{number}"
    assert client.get(f"{base}/attachments/{attachment_id}").status_code == 404
    assert client.get(f"{base}/attachments/{attachment_id}?download=1").status_code == 404
    assert client.get(f"{base}/attachments/nonsense").status_code == 404
    for path, data in ((f"{base}/comments", {"body": "看看"}),
                       (f"{base}/attachments", {"file": (PNG, "b.png", "image/png")}),
                       (f"{base}/attachments/{attachment_id}/remove", {}),
                       (f"{base}/extension-requests", {"workdays": "2", "reason": "x", "task_id": str(task.id)}),
                       (f"{base}/extension-requests/{request_id}/decide", {"decision": "approve"}),
                       (f"{base}/extension-requests/{request_id}/decide", {"decision": "reject", "note": "x"})):
        resp = post(client, path, data, "/")
        assert resp.status_code == 404, path
        assert "内部意见" not in resp.get_data(as_text=True)
    assert snapshot(seeded) == before
    assert len(stored_files(store)) == 1  # the other clerk's upload left nothing behind either
    # an id of this case under another case's number is not found either (the URL names both)
    other = start(seeded, service="FX-DIBAO").case_number
    mine = web.test_client()
    login(mine, CLERK)
    assert mine.get(f"/cases/{other}/attachments/{attachment_id}").status_code == 404
    assert post(mine, f"/cases/{other}/attachments/{attachment_id}/remove", {}, "/").status_code == 404
    assert rows(seeded, Attachment)[0].removed_at is None


# ------------------------------------------------------------------------------------------- the engine alone
def test_closed_cases_take_no_comments_files_or_requests(seeded, store):
    number = start(seeded, service="FX-DIBAO").case_number
    clerk = user(seeded, CLERK)
    with db.transaction(seeded) as s:
        attachment_id = cases.add_attachment(s, number, clerk, filename="a.pdf", content_type=None, data=PDF,
                                             file_store=store)
        cases.withdraw_case(s, number, clerk, "申请人撤回")
    for act in (lambda s: cases.add_comment(s, number, clerk, "晚了"),
                lambda s: cases.add_attachment(s, number, clerk, filename="b.png", content_type="image/png",
                                               data=PNG, file_store=store),
                lambda s: cases.remove_attachment(s, attachment_id, clerk),
                lambda s: cases.request_extension(s, number, clerk, 2, "x")):
        with pytest.raises(Conflict) as info:
            with db.transaction(seeded) as s:
                act(s)
        assert info.value.reason == "case.not_open"
    assert stored_files(store) == [store.path(hashlib.sha256(PDF).hexdigest())]
    with db.read(seeded) as s:
        detail = queries.case_detail(s, number, clerk)
    assert detail.work is not None and not detail.work.may_work and not detail.work.may_request_extension
    assert [a.filename for a in detail.work.attachments] == ["a.pdf"]


def test_who_may_comment_and_attach(seeded, store):
    number = start(seeded, service="FX-DIBAO").case_number
    with db.transaction(seeded) as s:
        cases.add_comment(s, number, user(seeded, AGENT), "乡镇已收到")  # the township works on it
        cases.add_comment(s, number, user(seeded, COUNTY_RS), "县里知悉")  # the county too, any department
    with pytest.raises(Forbidden) as info:
        with db.transaction(seeded) as s:
            cases.add_comment(s, number, user(seeded, "designer"), "看看")  # sees everything, works on nothing
    assert info.value.reason == "comment.add"
    with pytest.raises(Forbidden):  # the operator at the shell is nobody a comment could be by
        with db.transaction(seeded) as s:
            cases.add_comment(s, number, Actor.operator("root"), "看看")
    with db.read(seeded) as s:
        work = queries.case_work(s, number, user(seeded, CLERK))
        assert [c.author for c in work.comments] == [AGENT, COUNTY_RS] and work.may_work
        assert not queries.case_work(s, number, user(seeded, "designer")).may_work
        with pytest.raises(NotFound):
            queries.case_work(s, number, user(seeded, OTHER_CLERK))
    assert [n.kind for n in rows(seeded, Notification)] == []


def test_the_file_store(tmp_path, monkeypatch):
    store = files.FileStore(tmp_path / "files")
    upload = files.check(PNG)
    assert (upload.content_type, upload.size) == ("image/png", len(PNG))
    path = store.put(upload)
    assert path == tmp_path / "files" / upload.sha256[:2] / upload.sha256[2:4] / upload.sha256
    assert store.read(upload.sha256) == PNG and store.put(upload) == path  # the same bytes: kept once
    assert sorted(p.name for p in (tmp_path / "files").rglob("*") if p.is_file()) == [upload.sha256]
    with store.staged(files.check(PDF)) as staged:  # staged, not committed (a refusal): nothing stays
        assert staged.temp.exists()
    assert not staged.temp.exists() and not store.has(hashlib.sha256(PDF).hexdigest())
    for bad in ("../../etc/passwd", "A" * 64, upload.sha256[:63], upload.sha256 + "/x"):
        with pytest.raises(NotFound):
            store.path(bad)
    with pytest.raises(NotFound):
        store.read("0" * 64)
    assert files.sniff(JPEG) == "image/jpeg" and files.sniff(EXE) is None and files.sniff(b"%PDF") is None
    assert files.safe_filename("C:\\fakepath\\扫描件.PDF", "application/pdf") == "扫描件.PDF"
    assert files.safe_filename("", "image/png") == "附件.png"
    assert files.safe_filename("../../.bashrc", "image/png") == "bashrc.png"
    long = files.safe_filename("长" * 300 + ".jpeg", "image/jpeg")
    assert len(long) == files.MAX_FILENAME and long.endswith(".jpeg")
    assert set(files.SIGNATURES) == set(settings.ATTACHMENT_TYPES) == set(files.EXTENSIONS) == set(files.TYPE_NAMES)
    # the settings narrow what is taken and say where it goes
    monkeypatch.setenv("YICUN_ATTACHMENT_TYPES", "application/pdf")
    monkeypatch.setenv("YICUN_FILES_DIR", str(tmp_path))
    settings.get.cache_clear()
    with pytest.raises(InvalidInput) as info:
        files.check(PNG)
    assert info.value.details["types"] == "PDF"
    assert files.store_for(Path("/elsewhere")).root == tmp_path
    for name, value in (("YICUN_ATTACHMENT_TYPES", "image/gif"), ("YICUN_ATTACHMENT_TYPES", ","),
                        ("YICUN_ATTACHMENT_MAX_MB", "0"), ("YICUN_FILES_DIR", str(tmp_path / "nowhere"))):
        monkeypatch.setenv(name, value)
        settings.get.cache_clear()
        with pytest.raises(settings.SettingError, match=name):
            settings.get()
        monkeypatch.delenv(name)
    settings.get.cache_clear()
    monkeypatch.setenv("YICUN_INSTANCE_DIR", str(tmp_path / "inst"))
    settings.get.cache_clear()
    assert files.store_for().root == (tmp_path / "inst" / "files").absolute()


def test_the_case_json_carries_the_casework(web, seeded, store):
    number = start(seeded, service="FX-DIBAO").case_number
    with db.transaction(seeded) as s:
        cases.add_comment(s, number, user(seeded, CLERK), "意见一")
        cases.add_attachment(s, number, user(seeded, CLERK), filename="a.png", content_type="image/png", data=PNG,
                             document="身份证", file_store=store)
    client = web.test_client()
    login(client, CLERK)
    work = client.get(f"/api/v1/cases/{number}").get_json()["work"]
    assert work["may_work"] is True and work["extension_max_workdays"] == 10 and work["documents"] == []
    assert [c["body"] for c in work["comments"]] == ["意见一"]
    assert [(a["document"], a["content_type"]) for a in work["attachments"]] == [("身份证", "image/png")]
    assert re.fullmatch(r"[0-9a-f]{64}", work["attachments"][0]["sha256"])
