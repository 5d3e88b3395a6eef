"""Pages for citizens and machines, without login: every view here is marked `@public`.

办件查询 (GET/POST /query) and the 好差评 rating (POST /query/rate): a citizen types the case number and the
查询码 from their 受理回执 and sees where the case stands (engine.queries.public — no staff names, no form
data); once it is closed they may rate it, once. The code is the credential: the rating form carries the
number and the code again as hidden fields (nothing is kept in a session), and each of these pages is
sent `Cache-Control: no-store`, so a shared phone's back button or a proxy keeps no copy of them.

Both doors pass `engine.ratelimit.enter_lookup` first (tries per client address, wrong codes per case
number: HTTP 429 with the wait when either is used up, even for the right code). An unknown number and a
wrong code get the same page. The forms are CSRF-protected like every other (web.extensions): the token
rides in the citizen's session cookie, which Flask sets on the first page.
"""
from __future__ import annotations

from typing import Any

from flask import Blueprint, make_response, render_template, request
from flask_babel import gettext, ngettext

from engine import cases, clock, queries, ratelimit
from engine.errors import Conflict, InvalidInput, TooMany
from engine.queries import PublicCase, PublicEvent
from engine.queries.public import LEVEL_WORDS
from engine.query_code import clean_code, clean_number
from engine.vocab import RATING_SCORES, AuditAction, CasePhase, CaseStatus, PauseKind, _Named

from .. import reasons
from ..context import write
from ..guards import public
from ..i18n import is_english

bp = Blueprint("public", __name__)

#: what is read of a typed number or code (engine.query_code bounds them again)
TYPED_MAX = 64


@bp.route("/healthz")
@public
def healthz() -> Any:
    return {"ok": True}


def _client() -> str | None:
    """The address the limits count by. Behind a reverse proxy this is the proxy's own address unless
    ProxyFix is told how many proxies to trust (`YICUN_PROXY_HOPS`, web.extensions): set it, or every
    citizen shares one limit."""
    return request.remote_addr


def _no_store(body: str, status: int = 200, headers: dict[str, str] | None = None) -> Any:
    response = make_response(body, status)
    response.headers["Cache-Control"] = "no-store"
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def _form(number: str = "", error: str | None = None, status: int = 200,
          headers: dict[str, str] | None = None) -> Any:
    return _no_store(render_template("public/query.html", number=number, error=error), status, headers)


def _too_many(exc: TooMany) -> Any:
    wait = exc.details.get("retry_after")
    return _form(error=reasons.message(exc), status=429,
                 headers={"Retry-After": str(wait)} if isinstance(wait, int) else None)


def _typed() -> tuple[str, str]:
    return request.form.get("number", "")[:TYPED_MAX], request.form.get("code", "")[:TYPED_MAX]


def _through_the_door(number: str, code: str) -> PublicCase | None:
    """One counted try (TooMany when the limits are used up): the case, or None for an unknown number or
    a wrong code — then counted against the number. Committed either way."""
    now = clock.now()
    with write() as s:
        ratelimit.enter_lookup(s, _client(), number, now)
        found = queries.lookup(s, number, code, now)
        if found is None:
            ratelimit.lookup_failed(s, number, now)
    return found


def _not_found(number: str) -> Any:
    """The one answer for an unknown number and a wrong code: the form again, with the number kept (as the
    engine reads it: YY-2026-000123 however it was typed), so only the code need be typed again."""
    return _form(number=clean_number(number), error=gettext("未找到：请核对办件号和查询码。"))


def _case_page(case: PublicCase, code: str, error: str | None = None, field: str | None = None,
               comment: str = "", score: str = "", status: int = 200) -> Any:
    return _no_store(render_template("public/case.html", case=case, code=clean_code(code), error=error, field=field,
                                     comment=comment, score=score, scores=sorted(RATING_SCORES, reverse=True),
                                     comment_max=cases.RATING_COMMENT_MAX), status)


@bp.route("/query", methods=["GET"])
@public
def query_form() -> Any:
    return _form()


@bp.route("/query", methods=["POST"])
@public
def query() -> Any:
    number, code = _typed()
    try:
        found = _through_the_door(number, code)
    except TooMany as exc:
        return _too_many(exc)
    if found is None:
        return _not_found(number)
    return _case_page(found, code)


@bp.route("/query/rate", methods=["POST"])
@public
def rate() -> Any:
    number, code = _typed()
    score = request.form.get("score", "")[:8]
    comment = request.form.get("comment", "")[:cases.RATING_COMMENT_MAX * 4]
    try:
        found = _through_the_door(number, code)
    except TooMany as exc:
        return _too_many(exc)
    if found is None:
        return _not_found(number)
    try:
        with write() as s:
            rating = cases.rate_case(s, number, code, score, comment, clock.now())
    except InvalidInput as exc:  # no level chosen, a comment too long: the page again, what was typed kept
        return _case_page(found, code, reasons.message(exc), str(exc.details.get("field") or ""), comment, score,
                          status=422)
    except Conflict as exc:  # not closed yet, or rated already (perhaps from another phone a moment ago)
        return _case_page(found, code, reasons.message(exc), status=409)
    return _no_store(render_template("public/rated.html", case=found, code=code, rating=rating))


# ------------------------------------------------------------------------------------------- words
def _label(labels: tuple[str, str]) -> str:
    return labels[1] if is_english() else labels[0]


@bp.app_template_filter("rating_level")
def rating_level(score: int | None) -> str:
    """A 好差评 score as its level's name (非常满意 … 非常不满意) in the reader's language."""
    labels = RATING_SCORES.get(score) if isinstance(score, int) else None
    return _label(labels) if labels else "—"


@bp.app_template_filter("public_level")
def public_level(level: str | None) -> str:
    """A step's level as a citizen reads it: 村, 乡镇, 县 (village, township, county)."""
    words = LEVEL_WORDS.get(level or "")
    return _label(words) if words else ""


@bp.app_template_filter("case_phase")
def case_phase(value: str | None) -> str:
    """Where a case stands for its applicant (vocab.CasePhase) in the reader's language."""
    return _word(CasePhase, value) or "—"


def _word(enum: type[_Named], value: str | None) -> str:
    """A stored word (vocab) in the reader's language; one the vocabulary does not know as it is."""
    if not value:
        return ""
    try:
        return enum(value).label("en" if is_english() else "zh")
    except ValueError:
        return value


@bp.app_template_filter("public_event")
def public_event(event: PublicEvent) -> str:
    """One line of the citizen's history in the reader's language, from the event's fields (the engine's
    `text` is the Chinese one)."""
    if event.action == AuditAction.TASK_COMPLETED:
        if event.level:
            return gettext("%(step)s（%(level)s）已办", step=event.step or "", level=public_level(event.level))
        return gettext("%(step)s 已办", step=event.step or "")
    if event.action in (AuditAction.CASE_PAUSED, AuditAction.CASE_PAUSED_BACKDATED):
        if event.pause_kind:
            return gettext("暂停计时（%(kind)s）", kind=_word(PauseKind, event.pause_kind))
        return gettext("暂停计时")
    if event.action == AuditAction.CASE_EXTENDED and event.workdays:
        return ngettext("延期 %(num)s 个工作日", "延期 %(num)s 个工作日", event.workdays)
    if event.action == AuditAction.CASE_CLOSED:
        return _word(CaseStatus, event.status)
    if event.action == AuditAction.CASE_PUBLICITY:
        return gettext("公示（暂停计时）")
    if event.action == AuditAction.CASE_RATED:
        return gettext("已评价")
    return _word(AuditAction, event.action)
