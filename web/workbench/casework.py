"""Comments, attachments and extension requests on the case and task pages (their forms are the partials
workbench/_comments.html, _attachments.html and _extension.html).

Each POST is one engine call (`cases.add_comment`, `add_attachment`, `remove_attachment`,
`request_extension`, `decide_extension`) and goes back where it came from — the `next` path the form
carries, checked to be a path of this site (web.auth.next_url), else the case page — with a flash saying
what was done or, for a refusal, why not (in the reader's language, web.reasons). A case the reader may
not see is a 404 page, never a flash: the answer is the same as for a number that does not exist.

Attachments are served to whoever may see the case (else 404) with the type the bytes showed at upload,
`nosniff`, a Content-Disposition naming the original file (RFC 6266/5987-encoded by Werkzeug), their
own tight Content-Security-Policy, and `private, no-cache` with the SHA-256 as ETag: the browser may keep a
photo and revalidate it (a bodiless 304) rather than fetch megabytes again over a slow link each time
the page is opened. A body too large even to read (beyond the request limit, web.config) gets a flash on
the page it came from, not an error page; one between the attachment limit and that gets the engine's
own refusal.
"""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from flask import current_app, flash, redirect, request, send_file, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy.orm import Session
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from engine import cases, files, queries, settings
from engine.errors import NotFound, YicunError

from .. import reasons
from ..auth.next_url import safe_next
from ..config import takes_uploads
from ..context import current_actor, read, write
from ..errors import http_error
from ..i18n import is_english
from . import bp

#: the form fields a refusal may be about (engine.forms.clean_text's `field`) → how the flash names them
FIELD_LABELS = {"body": _l("意见内容"), "file": _l("文件名"), "document": _l("材料名称"), "reason": _l("延期理由"),
                "note": _l("审批意见")}
#: the response's own policy: an attachment is an image or a PDF, never a page that runs anything
IMAGE_CSP = "default-src 'none'; img-src 'self'; style-src 'unsafe-inline'; frame-ancestors 'self'; sandbox"
PDF_CSP = "default-src 'none'; object-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
UPLOAD_ENDPOINT = "workbench.attachment_upload"


def _back(number: str) -> str:
    """Where a form goes back to: its `next` (the page it was on, a path of this site), else the case."""
    return safe_next(request.form.get("next") or request.args.get("next")) or url_for("workbench.case",
                                                                                     number=number)


def _task_id() -> int | None:
    """The step a comment, file or request is made at (the task page sends it); not a number: none."""
    raw = request.form.get("task_id", "")
    return int(raw) if raw.isdigit() and len(raw) <= 18 else None


def _message(exc: YicunError) -> str:
    text = reasons.message(exc)
    field = exc.details.get("field")
    label = FIELD_LABELS.get(field) if isinstance(field, str) else None
    if label is None:
        return text
    return f"{label}: {text}" if is_english() else f"{label}：{text}"


def _act(number: str, act: Callable[[Session], Any], done: str) -> Any:
    """One engine call in one transaction, then back with a flash. NotFound is not flashed: it is the 404
    page (another unit's case, an attachment of a case the reader may not see)."""
    try:
        with write() as s:
            act(s)
    except NotFound:
        raise
    except YicunError as exc:
        flash(_message(exc))
        return redirect(_back(number), code=303)
    flash(done)
    return redirect(_back(number), code=303)


def file_store() -> files.FileStore:
    """Where this app keeps attachments: YICUN_FILES_DIR, else `files/` in the app's instance folder."""
    return files.store_for(Path(current_app.instance_path))


def _of_case(number: str, acted_on: str, reason: str = "attachment.not_found", **params: Any) -> None:
    """The record a URL names by id must be of the case the URL names: else NotFound, raised inside the
    transaction, so nothing done on another case (one the reader may see) is kept."""
    if acted_on != number:
        raise NotFound(f"no such record of case {number}", reason=reason, **params)


def _number_id(raw: str) -> int:
    """An id from the URL (the routes take text so that a malformed one is the same 404 as an unknown one)."""
    if not raw.isdigit() or len(raw) > 18:
        raise NotFound(f"no record {raw[:40]!r}", reason="attachment.not_found", attachment_id=raw[:40])
    return int(raw)


# ------------------------------------------------------------------------------------------- comments
@bp.route("/cases/<number>/comments", methods=["POST"])
def comment_add(number: str) -> Any:
    body = request.form.get("body", "")
    return _act(number, lambda s: cases.add_comment(s, number, current_actor(), body, task_id=_task_id()),
                _("已添加意见。"))


# ------------------------------------------------------------------------------------------- attachments
@bp.route("/cases/<number>/attachments", methods=["POST"])
@takes_uploads
def attachment_upload(number: str) -> Any:
    upload = request.files.get("file")
    data = upload.read(settings.get().attachment_max_bytes + 1) if upload is not None else b""
    filename = (upload.filename or "") if upload is not None else ""
    declared = upload.mimetype if upload is not None else None
    document = request.form.get("document", "")
    return _act(number, lambda s: cases.add_attachment(
        s, number, current_actor(), filename=filename, content_type=declared, data=data, document=document,
        task_id=_task_id(), file_store=file_store()), _("已上传附件 %(name)s。", name=filename or "—"))


@bp.route("/cases/<number>/attachments/<attachment_id>")
def attachment_file(number: str, attachment_id: str) -> Any:
    with read() as s:
        item = queries.attachment(s, number, _number_id(attachment_id), current_actor())
    store = file_store()
    path = store.path(item.sha256)
    if not path.is_file():
        raise NotFound(f"the file of attachment {item.id} is missing", reason="attachment.file_missing",
                       filename=item.filename)
    response = send_file(path, mimetype=item.content_type, as_attachment=request.args.get("download") == "1",
                         download_name=item.filename, etag=item.sha256, conditional=True, max_age=None,
                         last_modified=item.uploaded_at)
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Content-Security-Policy"] = IMAGE_CSP if item.is_image else PDF_CSP
    response.headers["Cache-Control"] = "private, no-cache"
    return response


@bp.route("/cases/<number>/attachments/<attachment_id>/remove", methods=["POST"])
def attachment_remove(number: str, attachment_id: str) -> Any:
    ident = _number_id(attachment_id)
    with read() as s:  # of this case, visible: else the 404 an id of another case deserves
        item = queries.attachment(s, number, ident, current_actor())
    return _act(number, lambda s: _of_case(number, cases.remove_attachment(s, ident, current_actor())),
                _("已撤下附件 %(name)s。", name=item.filename))


def upload_too_large(exc: HTTPException) -> Any:
    """A body beyond the request limit is refused before any view runs (Werkzeug, reading the form for the
    CSRF check): for an upload, say so on the page it came from (its `next` is in the form's URL, since the
    form itself cannot be read); any other request gets the usual 413 page."""
    if request.endpoint != UPLOAD_ENDPOINT or request.view_args is None:
        return http_error(exc)
    limit = settings.get().attachment_max_mb
    flash(reasons.message(YicunError("too large", "attachment.too_large", max_mb=limit)))
    number = str(request.view_args.get("number", ""))
    return redirect(safe_next(request.args.get("next")) or url_for("workbench.case", number=number), code=303)


bp.register_error_handler(RequestEntityTooLarge, upload_too_large)


@bp.app_context_processor
def attachment_limits() -> dict[str, Any]:
    """What the upload form says and checks in the browser (the engine checks it again): the size limit and
    the types allowed (engine.settings)."""
    config = settings.get()
    return {"attachment_limits": {
        "max_mb": config.attachment_max_mb, "max_bytes": config.attachment_max_bytes,
        "accept": ",".join(config.attachment_types),
        "types": (", " if is_english() else "、").join(files.TYPE_NAMES[t] for t in config.attachment_types)}}


# ------------------------------------------------------------------------------------------- extensions
@bp.route("/cases/<number>/extension-requests", methods=["POST"])
def extension_request(number: str) -> Any:
    raw = request.form.get("workdays", "").strip()
    workdays: Any = int(raw) if raw.isdigit() and len(raw) <= 4 else raw[:20]
    reason = request.form.get("reason", "")
    return _act(number, lambda s: cases.request_extension(s, number, current_actor(), workdays, reason,
                                                          task_id=_task_id()),
                _("已提交延期申请，等待审批。"))


@bp.route("/cases/<number>/extension-requests/<request_id>/decide", methods=["POST"])
def extension_decide(number: str, request_id: str) -> Any:
    decision = request.form.get("decision")
    approve: Any = {"approve": True, "reject": False}.get(decision or "", decision)
    note = request.form.get("note", "")
    ident = int(request_id) if request_id.isdigit() and len(request_id) <= 18 else None
    if ident is None:
        raise NotFound(f"no extension request {request_id[:40]!r}", reason="extension_request.not_found",
                       request_id=request_id[:40])
    return _act(number, lambda s: _of_case(number, cases.decide_extension(s, ident, current_actor(), approve, note),
                                           "extension_request.not_found", request_id=request_id),
                _("已批准延期。") if approve is True else _("已处理延期申请：不批准。"))
