"""The working-day calendar for admins: the years it knows (as /calendar shows everyone) and the form
that publishes a year's State Council holiday schedule — typed one period a line, previewed (every
check run, nothing saved), then published. A refusal lists its problems line by line with what was typed
kept; nothing is saved. Publishing is one `engine.calendar_admin.publish` call: the schedule in one
transaction, audited, then the dues of up to `RECOMPUTE_BATCH` open cases counted again, each in its own
transaction; if more are left, the page offers to go on (`recompute_year` from where it stopped).
"""
from __future__ import annotations

from typing import Any

from flask import flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from engine import calendar_admin, clock, policy
from engine.errors import Conflict, Forbidden, InvalidInput, NotFound, YicunError

from .. import reasons
from ..context import current_actor, engine, read
from ..form_errors import place
from ..guards import requires
from ..supervise.calendar import years_context
from . import bp

REFUSALS = (InvalidInput, Conflict, Forbidden, NotFound)
FIELDS = ("year", "source", "schedule")
REFUSED = _l("只有系统管理员可以发布节假日安排。")
#: what the form keeps of what was typed (the engine refuses what is too long, with its reason)
KEEP = {"year": 8, "source": calendar_admin.SOURCE_MAX + 50, "schedule": calendar_admin.TEXT_MAX + 200}


def _year(text: str) -> int:
    if not text.strip().isdigit() or len(text.strip()) != 4:
        raise InvalidInput(_("请填写四位数的年份，如 2027。"), reason="web.year_invalid", field="year")
    return int(text.strip())


def _problems(exc: YicunError) -> list[str]:
    """The lines of a refused schedule, each in the reader's language (the engine's words if untranslated)."""
    out = []
    for p in exc.details.get("problems") or []:
        params = {k: v for k, v in p.items() if k not in ("reason", "message")}
        out.append(reasons.translated(YicunError(p.get("message", ""), p.get("reason", ""), **params))
                   or _("第 %(line)s 行：%(message)s", line=p.get("line"), message=p.get("message")))
    return out


def _page(form: dict[str, str], *, errors: dict[str, str] | None = None, problems: list[str] | None = None,
          preview: calendar_admin.Checked | None = None, affected: int | None = None, status: int = 200) -> Any:
    with read() as s:
        context = years_context(s)
    if request.method == "GET":  # the first year ahead the calendar does not know yet (else next year)
        this_year = clock.local(clock.now()).year
        ahead = [y.year for y in context["years"] if y.year > this_year and not y.complete]
        form["year"] = str(min(ahead, default=this_year + 1))
    go_on = request.args.get("after", "")
    return render_template("admin/calendar.html", form=form, errors=errors or {}, problems=problems or [],
                           preview=preview, affected=affected, affected_cap=10_000,
                           recount_year=request.args.get("recount", "")[:4], recount_after=go_on[:20],
                           max_days=calendar_admin.MAX_DAYS, source_max=calendar_admin.SOURCE_MAX,
                           text_max=calendar_admin.TEXT_MAX, **context), status


@bp.route("/calendar", methods=["GET", "POST"])
@requires(policy.may_administer_calendar, REFUSED)
def calendar_page() -> Any:
    now = clock.now()
    if request.method == "GET":
        return _page({"year": "", "source": "", "schedule": "", "correction": ""})
    form = {name: request.form.get(name, "")[:size] for name, size in KEEP.items()}
    form["correction"] = "1" if request.form.get("correction") else ""
    correction = bool(form["correction"])
    actor = current_actor()
    try:
        year = _year(form["year"])
        schedule = calendar_admin.parse_schedule(form["schedule"])
        if request.form.get("action") == "publish":
            checked, report = calendar_admin.publish(engine(), actor, year, schedule, form["source"], now,
                                                     correction=correction)
        else:
            with read() as s:
                preview = calendar_admin.check_schedule(s, actor, year, schedule, form["source"], now,
                                                        correction=correction)
                affected = calendar_admin.affected_count(s, year)
            return _page(form, preview=preview, affected=affected)
    except REFUSALS as exc:
        return _page(form, errors=place(exc, FIELDS), problems=_problems(exc), status=exc.http_status)
    flash(_("已发布 %(year)s 年节假日安排：放假 %(holidays)s 天，调休上班 %(workdays)s 天。",
            year=checked.year, holidays=checked.holidays, workdays=checked.workdays))
    _flash_report(report)
    params: dict[str, Any] = {}
    if report.next_after is not None:
        params = {"recount": checked.year, "after": report.next_after}
    return redirect(url_for("admin.calendar_page", **params))


@bp.route("/calendar/<year>/recompute", methods=["POST"])
@requires(policy.may_administer_calendar, REFUSED)
def calendar_recompute(year: str) -> Any:
    """Go on counting the dues of the open cases a publication of `year` left (or count them again: a
    case already right is not touched)."""
    if not (year.isdigit() and len(year) == 4):
        raise NotFound(_("没有 %(year)s 年。", year=year[:8]), reason="web.year_not_found")
    after = request.form.get("after", "0")
    report = calendar_admin.recompute_year(engine(), current_actor(), int(year), clock.now(),
                                           after_id=int(after) if after.isdigit() and len(after) < 19 else 0,
                                           limit=calendar_admin.RECOMPUTE_BATCH)
    _flash_report(report)
    params: dict[str, Any] = {}
    if report.next_after is not None:
        params = {"recount": int(year), "after": report.next_after}
    return redirect(url_for("admin.calendar_page", **params))


def _flash_report(report: calendar_admin.RecomputeReport) -> None:
    flash(_("已重算 %(checked)s 件办理中办件的期限，其中 %(changed)s 件有变化，%(estimated)s 件仍为估算。",
            checked=report.checked, changed=report.changed, estimated=report.still_estimated))
    if report.failed:
        flash(_("有 %(count)s 件重算失败（期限保持原样，可稍后再重算）：%(cases)s",
                count=len(report.failed), cases="、".join(f["case"] for f in report.failed[:10])))
