"""The inbox (待办), the case search (办件查询) and the notifications (通知) of the workbench, and the counts
beside their links in the navigation.

- `GET /inbox`: the tabs 我的待办 (tasks I claimed) / 本单位待办 (my unit's queue; my department's at county
  level) / 全部, filtered by service item, level, warning colour and a search for a case number or an
  applicant; in due order, a page at a time (keyset cursors both ways: 上一页 / 下一页). One engine query
  a page (`queries.inbox`).
- `POST /inbox/tasks/<id>/claim|unclaim|reassign`: 领取, 退回待办池, 转办 (to a colleague of the unit,
  with a reason). Each is one engine call, then back to the list it came from with a message; a refusal
  is the message, in the reader's language (web.reasons). A task the reader may not see is a 404, as
  everywhere else (DESIGN invariant 7).
- `GET /cases`: every case the reader may see, whatever its status — completed ones stay findable.
- `GET /notifications`, `POST /notifications/mark`: the list, and marking them read.

The navigation's counts come from one statement (`queries.inbox_counts`), run once per request and only
when a page's header asks for them (a context function, not a value computed for every template).
"""
from __future__ import annotations

import logging
from datetime import date
from typing import Any

from flask import current_app, flash, g, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from engine import cases, clock, policy, queries
from engine.errors import InvalidInput, YicunError
from engine.policy import Actor, Chain
from engine.queries import MAX_SEARCH, TASK_LEVELS, InboxCounts, TaskItem
from engine.vocab import WORKER_ROLES, CaseStatus, WarningLevel

from .. import reasons
from ..auth.next_url import safe_next
from ..context import current_actor, read, write
from . import bp

log = logging.getLogger(__name__)

#: Rows a page of the inbox, the case search and the notifications shows (a phone screen or two).
PAGE_SIZE = 25
#: The tabs in the order the page shows them, with their names.
TABS = (("claimed", _l("我的待办")), ("queue", _l("本单位待办")), ("all", _l("全部")))
#: The filters of the inbox as their query-string names.
INBOX_FILTERS = ("tab", "service", "level", "warning", "q")
#: The filters of the case search.
CASE_FILTERS = ("q", "service", "status", "from", "to")
#: What a filter's refusal is about, by its reason (shown beside that field).
FILTER_FIELDS = {"inbox.tab_invalid": "tab", "inbox.service_invalid": "service", "inbox.level_invalid": "level",
                 "inbox.warning_invalid": "warning", "search.invalid": "q", "search.too_long": "q",
                 "case.status_invalid": "status", "search.period_reversed": "to", "web.date_invalid": "from"}
#: The fields of the action forms, as a refusal's message names them.
ACTION_FIELDS = {"reason": _l("转办原因"), "to": _l("转办给")}


# ------------------------------------------------------------------------------------------- helpers
def _args(names: tuple[str, ...]) -> dict[str, str]:
    """The query string's filters, bounded before the engine checks them (a long value is refused there)."""
    return {name: request.args.get(name, "")[:4 * MAX_SEARCH] for name in names}


def _url(endpoint: str, filters: dict[str, str], **more: str | None) -> str:
    """The page's own address with the filters that are set (and a cursor)."""
    params: dict[str, Any] = {k: v for k, v in {**filters, **more}.items() if v}
    return url_for(endpoint, **params)


def _filter_error(exc: YicunError) -> dict[str, str]:
    return {FILTER_FIELDS.get(exc.reason, "_form"): reasons.message(exc)}


def task_link(task: TaskItem) -> str:
    """Where a task's row leads: its task page where the workbench has one, else its case."""
    if "workbench.task" in current_app.view_functions:
        return url_for("workbench.task", task_id=task.id)
    return url_for("workbench.case", number=task.case_number)


def _own_chain(task: TaskItem) -> Chain:
    """A chain for consulting `policy` about a task of the reader's own inbox: the rules for showing the
    buttons (claim, release, reassign) depend on the task's unit alone for the workers and officers an
    inbox serves; the engine checks the real chain when the button is pressed."""
    return Chain(task.unit_id, task.unit_id, task.unit_id)


def row_actions(actor: Actor, task: TaskItem, mates: tuple[queries.Colleague, ...]) -> dict[str, Any]:
    """Which buttons a row shows (the engine enforces the same rules again): 领取 for an unclaimed task the
    reader may work on, 退回待办池 and 转办 for its holder or a lead of its unit, and whom it may go to."""
    held_by_me = task.assignee is not None and task.assignee == actor.username
    may_release = policy.may_release(actor, actor.id if held_by_me else None, task.unit_id, _own_chain(task))
    targets = []
    if may_release:
        for mate in mates:
            who = Actor(id=mate.id, username=mate.username, role=mate.role, unit_id=actor.unit_id,
                        level=actor.level, department=mate.department, display_name=mate.display_name)
            if mate.username != task.assignee and policy.may_receive(who, task.unit_id, task.candidate_group):
                targets.append(mate)
    return {"claim": task.assignee is None and policy.may_work_on(actor, task.unit_id, task.candidate_group),
            "unclaim": task.assignee is not None and may_release, "reassign": targets}


def _back() -> str:
    return safe_next(request.form.get("next")) or url_for("workbench.inbox")


def _task_action(task_id: int, act: Any, done: str) -> Any:
    """One action on a task from the inbox: the task must be one the reader may see (else 404, whether it
    exists or not), then one engine call; back to the list with a message either way."""
    actor = current_actor()
    with read() as s:
        task = queries.visible_task(s, task_id, actor)
    try:
        with write() as s:
            act(s, actor)
    except YicunError as exc:
        flash(_refusal(exc), "error")
        return redirect(_back(), code=303)
    flash(done % {"step": task.name, "case": task.case_number})
    return redirect(_back(), code=303)


def _refusal(exc: YicunError) -> str:
    """The refusal in the reader's language, naming the form field it is about (a reason left empty)."""
    text = reasons.message(exc)
    field = exc.details.get("field")
    if isinstance(field, str) and field in ACTION_FIELDS:
        return _("%(field)s：%(problem)s", field=ACTION_FIELDS[field], problem=text)
    return text


# ------------------------------------------------------------------------------------------- the inbox
@bp.route("/inbox")
def inbox() -> Any:
    actor = current_actor()
    filters = _args(INBOX_FILTERS)
    filters["tab"] = filters["tab"] or "all"
    cursor, before = request.args.get("cursor") or None, request.args.get("before") or None
    page: queries.Page[TaskItem] = queries.Page(())
    errors: dict[str, str] = {}
    with read() as s:
        try:
            page = queries.inbox(s, actor, PAGE_SIZE, cursor, tab=filters["tab"], service_code=filters["service"],
                                 level=filters["level"], warning=filters["warning"], search=filters["q"],
                                 before=before)
        except InvalidInput as exc:
            errors = _filter_error(exc)
        if before is not None and not page.items and not errors:  # everything before it is gone meanwhile
            return redirect(_url("workbench.inbox", filters), code=303)
        mates = queries.colleagues(s, actor) if page.items else ()
        services = queries.service_choices(s)
    rows = [(t, row_actions(actor, t, mates)) for t in page]
    return render_template(
        "workbench/inbox.html", filters=filters, rows=rows, errors=errors, tabs=TABS, services=services,
        levels=TASK_LEVELS, warnings=WarningLevel.values(), max_search=MAX_SEARCH,
        tab_url=lambda tab: _url("workbench.inbox", {**filters, "tab": tab}),
        next_url=page.next_cursor and _url("workbench.inbox", filters, cursor=page.next_cursor),
        prev_url=(_url("workbench.inbox", filters, before=page.prev_cursor) if page.prev_cursor
                  else _url("workbench.inbox", filters) if (cursor or before) else None),
        here=request.full_path.rstrip("?"), task_link=task_link, now=clock.now())


@bp.route("/inbox/tasks/<int:task_id>/claim", methods=["POST"])
def inbox_claim(task_id: int) -> Any:
    return _task_action(task_id, lambda s, actor: cases.claim_task(s, task_id, actor),
                        _("已领取：%(case)s「%(step)s」，请尽快办理。"))


@bp.route("/inbox/tasks/<int:task_id>/unclaim", methods=["POST"])
def inbox_unclaim(task_id: int) -> Any:
    return _task_action(task_id, lambda s, actor: cases.unclaim_task(s, task_id, actor),
                        _("已退回本单位待办池：%(case)s「%(step)s」。"))


@bp.route("/inbox/tasks/<int:task_id>/reassign", methods=["POST"])
def inbox_reassign(task_id: int) -> Any:
    to, why = request.form.get("to", ""), request.form.get("reason", "")
    return _task_action(task_id, lambda s, actor: cases.reassign_task(s, task_id, actor, to, why),
                        _("已转办：%(case)s「%(step)s」。"))


# ------------------------------------------------------------------------------------------- 办件查询
def _day(text: str) -> date | None:
    if not text:
        return None
    try:
        return date.fromisoformat(text[:10])
    except ValueError:
        raise InvalidInput(_("日期须为“年-月-日”，如 2026-11-02。"), reason="web.date_invalid") from None


@bp.route("/cases")
def cases_search() -> Any:
    actor = current_actor()
    filters = _args(CASE_FILTERS)
    cursor, before = request.args.get("cursor") or None, request.args.get("before") or None
    page: queries.Page[queries.CaseSummary] = queries.Page(())
    errors: dict[str, str] = {}
    with read() as s:
        try:
            page = queries.list_cases(s, actor, filters["status"] or None, PAGE_SIZE, cursor,
                                      search=filters["q"], service_code=filters["service"],
                                      accepted_from=_day(filters["from"]), accepted_to=_day(filters["to"]),
                                      before=before)
        except InvalidInput as exc:
            errors = _filter_error(exc)
        services = queries.service_choices(s)
    return render_template(
        "workbench/cases.html", filters=filters, page=page, errors=errors, services=services,
        statuses=CaseStatus.values(), max_search=MAX_SEARCH,
        next_url=page.next_cursor and _url("workbench.cases_search", filters, cursor=page.next_cursor),
        prev_url=(_url("workbench.cases_search", filters, before=page.prev_cursor) if page.prev_cursor
                  else _url("workbench.cases_search", filters) if (cursor or before) else None))


# ------------------------------------------------------------------------------------------- notifications
@bp.route("/notifications")
def notifications() -> Any:
    actor = current_actor()
    unread = request.args.get("show") == "unread"
    cursor, before = request.args.get("cursor") or None, request.args.get("before") or None
    show = {"show": "unread"} if unread else {}
    with read() as s:
        page = queries.notification_page(s, actor, PAGE_SIZE, cursor, unread_only=unread, before=before)
    has_task_page = "workbench.task" in current_app.view_functions

    def link(note: queries.NotificationItem) -> str | None:
        if note.task_id is not None and has_task_page:
            return url_for("workbench.task", task_id=note.task_id)
        return url_for("workbench.case", number=note.case_number) if note.case_number else None

    return render_template(
        "workbench/notifications.html", page=page, unread=unread, link=link,
        here=request.full_path.rstrip("?"),
        next_url=page.next_cursor and _url("workbench.notifications", show, cursor=page.next_cursor),
        prev_url=(_url("workbench.notifications", show, before=page.prev_cursor) if page.prev_cursor
                  else _url("workbench.notifications", show) if (cursor or before) else None))


@bp.route("/notifications/mark", methods=["POST"])
def notifications_mark() -> Any:
    """Mark read: the notifications named (`id`, repeated) or, with none named, all of them."""
    raw = request.form.getlist("id")
    ids = [int(i) for i in raw if i.isdigit() and len(i) <= 18]
    if len(ids) != len(raw):
        raise InvalidInput(_("通知编号无效。"), reason="web.notification_invalid")
    with write() as s:
        done = cases.mark_read(s, current_actor(), clock.now(), ids or None)
    if done:
        flash(_("已标为已读：%(num)s 条。", num=done))
    return redirect(safe_next(request.form.get("next")) or url_for("workbench.notifications"), code=303)


# ------------------------------------------------------------------------------------------- navigation
def _counts() -> InboxCounts | None:
    """The navigation's counts for the logged-in reader, once per request (None when no one is logged in,
    or when the database cannot answer: the header must not turn a page into an error)."""
    if "nav_counts" in g:
        return g.nav_counts
    actor = g.get("actor")
    counts = None
    if actor is not None and policy.is_staff(actor):
        try:
            with read() as s:
                counts = queries.inbox_counts(s, actor)
        except Exception:
            log.exception("the navigation's counts could not be read")
    g.nav_counts = counts
    return counts


@bp.app_context_processor
def navigation() -> dict[str, Any]:
    """`nav_counts()` for the header (called only where a page shows the navigation) and whether the
    reader has an inbox at all."""
    actor = g.get("actor")
    return {"nav_counts": _counts, "has_inbox": actor is not None and actor.role in WORKER_ROLES}
