"""Error pages (HTML) and error objects (JSON, under /api/) in the reader's language — Chinese unless
they chose English: 400 (incl. CSRF), 401, 403, 404, 405, 413, 500, and every engine error.

An engine error (`YicunError`) carries its code, a stable reason with parameters, and the message the
engine wrote for the command line. The page shows a title for its kind and the refusal translated from
its reason (web.reasons); an engine error raised without a reason of its own gets the generic text of
its status, with the engine's words below as a detail. Anything unexpected is logged with its traceback
and shown as a plain 500 — never a traceback in the page.
"""
from __future__ import annotations

import logging
from typing import Any

from flask import Flask, jsonify, render_template
from flask_babel import lazy_gettext as _l
from flask_babel.speaklater import LazyString
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException, InternalServerError

from engine.errors import YicunError

from . import reasons
from .guards import is_api_request

log = logging.getLogger(__name__)

#: Titles and default messages by HTTP status.
HTTP_MESSAGES: dict[int, tuple[LazyString, LazyString]] = {
    400: (_l("请求无效"), _l("请求的内容不完整或格式不对。")),
    401: (_l("请先登录"), _l("这个地址需要登录后才能访问。")),
    403: (_l("没有权限"), _l("您的账号没有权限访问这里。")),
    404: (_l("找不到页面"), _l("找不到这个页面或记录，或者它不在您的管辖范围内。")),
    405: (_l("不支持的请求方式"), _l("这个地址不接受这种请求方式。")),
    409: (_l("操作冲突"), _l("别人刚刚修改了同一条记录，请刷新后再试。")),
    413: (_l("内容太大"), _l("提交的内容超过了允许的大小。")),
    422: (_l("输入有误"), _l("提交的内容没有通过检查。")),
    429: (_l("请求太频繁"), _l("请稍后再试。")),
    500: (_l("服务器出错"), _l("服务器内部出错，已记录下来，请稍后再试。")),
    503: (_l("系统繁忙"), _l("系统正忙，什么也没有改动，请稍后再试。")),
}
#: Titles of the engine's error kinds (their `code`).
ENGINE_TITLES: dict[str, LazyString] = {
    "not_found": _l("找不到"), "forbidden": _l("无权操作"), "conflict": _l("操作冲突"), "busy": _l("系统繁忙"),
    "invalid_input": _l("输入有误"), "bpmn_rejected": _l("流程文件不能部署"), "workflow_error": _l("流程运行出错"),
}
CSRF_TITLE = _l("请求被拒绝")
CSRF_MESSAGE = _l("表单已失效或不是从本站提交的（CSRF 校验未通过）。请刷新页面后重新提交。")
#: Flask-WTF's reasons for refusing a token (English in the library), as the page shows them.
CSRF_DETAILS: dict[str, LazyString] = {
    "The CSRF token is missing.": _l("缺少 CSRF 令牌。"),
    "The CSRF session token is missing.": _l("会话中没有 CSRF 令牌（可能是 Cookie 被禁用或已过期）。"),
    "The CSRF token has expired.": _l("CSRF 令牌已过期。"),
    "The CSRF token is invalid.": _l("CSRF 令牌无效。"),
    "The CSRF tokens do not match.": _l("CSRF 令牌不匹配。"),
    "The referrer header is missing.": _l("缺少 Referer 请求头。"),
    "The referrer does not match the host.": _l("Referer 请求头不是本站。"),
}


def _respond(status: int, code: str, title: str, message: str, detail: str | None = None,
             extra: dict[str, Any] | None = None, headers: dict[str, str] | None = None) -> Any:
    if is_api_request():
        body = {**(extra or {}), "error": code, "status": status, "title": title, "message": message}
        if detail:
            body["detail"] = detail
        return jsonify(body), status, headers or {}
    page = render_template("error.html", status=status, title=title, message=message, detail=detail)
    return page, status, headers or {}


def engine_error(exc: YicunError) -> Any:
    title, generic = HTTP_MESSAGES.get(exc.http_status, HTTP_MESSAGES[400])
    title = ENGINE_TITLES.get(exc.code, title)
    text = reasons.translated(exc)
    if text is not None:
        message, detail = text, (exc.message if exc.reason.startswith(reasons.WITH_DETAIL) else None)
    elif exc.reason == exc.code:  # raised without a reason of its own: no translation can exist
        message, detail = str(generic), exc.message
    else:  # a reason the web raised itself: its message is already in the reader's language
        message, detail = exc.message, None
    return _respond(exc.http_status, exc.code, str(title), message, detail=detail, extra=exc.to_dict())


def csrf_error(exc: CSRFError) -> Any:
    detail = CSRF_DETAILS.get(exc.description or "", exc.description)
    return _respond(400, "csrf_failed", str(CSRF_TITLE), str(CSRF_MESSAGE), detail=str(detail) if detail else None)


def http_error(exc: HTTPException) -> Any:
    status = exc.code or 500
    title, message = (str(text) for text in HTTP_MESSAGES.get(status, (exc.name, exc.description or "")))
    allowed = getattr(exc, "valid_methods", None)
    headers = {"Allow": ", ".join(allowed)} if allowed else None
    return _respond(status, exc.name.lower().replace(" ", "_"), title, message, headers=headers)


def unexpected_error(exc: Exception) -> Any:
    if isinstance(exc, HTTPException):
        return http_error(exc)
    log.exception("unhandled error", exc_info=exc)
    return http_error(InternalServerError())


def init_errors(app: Flask) -> None:
    app.register_error_handler(YicunError, engine_error)
    app.register_error_handler(CSRFError, csrf_error)
    app.register_error_handler(HTTPException, http_error)
    app.register_error_handler(Exception, unexpected_error)
