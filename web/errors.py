"""Error pages in Chinese (HTML) and error objects (JSON, under /api/): 400 (incl. CSRF), 401, 403, 404,
405, 413, 500, and every engine error with its own message.

An engine error (`YicunError`) carries its code, a stable reason and the message the engine wrote; the
page shows a Chinese title for its kind above that message. Anything unexpected is logged with its
traceback and shown as a plain 500 — never a traceback in the page.
"""
from __future__ import annotations

import logging
from typing import Any

from flask import Flask, jsonify, render_template
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException, InternalServerError

from engine.errors import YicunError

from .guards import is_api_request

log = logging.getLogger(__name__)

#: Chinese titles and default messages by HTTP status.
HTTP_MESSAGES: dict[int, tuple[str, str]] = {
    400: ("请求无效", "请求的内容不完整或格式不对。"),
    401: ("请先登录", "这个地址需要登录后才能访问。"),
    403: ("没有权限", "您的账号没有权限访问这里。"),
    404: ("找不到页面", "找不到这个页面或记录，或者它不在您的管辖范围内。"),
    405: ("不支持的请求方式", "这个地址不接受这种请求方式。"),
    409: ("操作冲突", "别人刚刚修改了同一条记录，请刷新后再试。"),
    413: ("内容太大", "提交的内容超过了允许的大小。"),
    422: ("输入有误", "提交的内容没有通过检查。"),
    429: ("请求太频繁", "请稍后再试。"),
    500: ("服务器出错", "服务器内部出错，已记录下来，请稍后再试。"),
    503: ("系统繁忙", "系统正忙，什么也没有改动，请稍后再试。"),
}
#: Chinese titles of the engine's error kinds (their `code`).
ENGINE_TITLES: dict[str, str] = {
    "not_found": "找不到", "forbidden": "无权操作", "conflict": "操作冲突", "busy": "系统繁忙",
    "invalid_input": "输入有误", "bpmn_rejected": "流程文件不能部署", "workflow_error": "流程运行出错",
}
CSRF_MESSAGE = "表单已失效或不是从本站提交的（CSRF 校验未通过）。请刷新页面后重新提交。"


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
    title = ENGINE_TITLES.get(exc.code) or HTTP_MESSAGES.get(exc.http_status, HTTP_MESSAGES[400])[0]
    return _respond(exc.http_status, exc.code, title, exc.message, extra=exc.to_dict())


def csrf_error(exc: CSRFError) -> Any:
    return _respond(400, "csrf_failed", "请求被拒绝", CSRF_MESSAGE, detail=exc.description)


def http_error(exc: HTTPException) -> Any:
    status = exc.code or 500
    title, message = HTTP_MESSAGES.get(status, (exc.name, exc.description or ""))
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
