"""The reports in the browser (issue #10 §1, §2): the board, its drill-down lists, the overdue report, and
each as an Excel or CSV download (`?format=xlsx|csv`).

- `GET /reports`, `/reports/<unit>`: the board of the reader's unit (or of a unit below it) for this month,
  one tab per breakdown (units below, item, department, first-responsibility clerk, holder); every number
  links to the list behind it. Breadcrumbs city → county → township → village.
- `GET /reports/<unit>/cases?measure=…&unit|item|department|clerk|agent=…[&month=YYYY-MM]`: the drill-down list
  (`month`: the closures of that month, not this one — what the monthly ranking's numbers link to).
- `GET /reports/overdue?…`: the overdue report with its filter form (a GET form: the address is the report).

Who: `policy.may_see_reports` (supervisors their unit and below, township/county officers their own unit,
admins everything); a unit outside the reader's part of the tree is 404 (invariant 7), as the engine says.
The numbers come from `engine.reports` — one engine call a page — read from the reports database when the
app is given one (`REPORTS_DATABASE_URL`: a read replica; DESIGN §7), else from the app's own.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import select
from sqlalchemy.orm import Session

from engine import policy, queries, reports
from engine.errors import InvalidInput
from engine.models import OrgUnit, User
from engine.reports import export
from engine.reports.measures import Measure

from .. import reasons
from . import bp, pages

#: rows a breakdown tab shows (a city has thousands of clerks; the Excel file holds them all)
BOARD_ROWS = 300
#: the measures by their names on the page
MEASURES = {Measure.OPEN: _l("在办"), Measure.DUE_SOON: _l("即将到期"), Measure.OVERDUE: _l("超期"),
            Measure.PAUSED: _l("暂停计时"), Measure.COMPLETED: _l("本月办结"), Measure.ON_TIME: _l("按时办结"),
            Measure.LATE: _l("超时办结"), Measure.TIMED: _l("计入用时的办结"), Measure.CARDS: _l("未销黄红牌")}
#: the breakdowns' tabs
BREAKDOWNS = {"unit": _l("按单位"), "item": _l("按事项"), "department": _l("按部门"), "clerk": _l("按首问责任人"),
              "agent": _l("按经办人")}
#: what the first column of each breakdown names
ROW_NAMES = {"unit": _l("单位"), "item": _l("事项"), "department": _l("部门"), "clerk": _l("首问责任人"),
             "agent": _l("经办人")}
#: the overdue report's choices
SORTS = {"overdue": _l("超期最久在前"), "recent": _l("最近到期在前"), "unit": _l("按单位")}
CARD_STATES = {"none": _l("未发牌"), "unexplained": _l("有牌未说明"), "explained": _l("已说明")}
OVERDUE_FILTERS = ("level", "warning", "unit", "item", "department", "step", "days", "person", "card")
#: which field of the overdue form a refusal is about, by its reason
FILTER_FIELDS = {"inbox.level_invalid": "level", "inbox.warning_invalid": "warning", "unit.not_found": "unit",
                 "inbox.service_invalid": "item", "user.not_found": "person", "report.sort_invalid": "sort"}


# ------------------------------------------------------------------------------------------- the board
@bp.route("/reports")
@bp.route("/reports/<unit_code_>")
def reports_board(unit_code_: str | None = None) -> Any:
    actor = pages.reader()
    fmt = pages.format()
    with pages.read() as s:
        unit = reports.subtree(s, actor, unit_code_).unit
        if fmt == "xlsx":
            return pages.xlsx(export.board_tables(s, actor, unit_code_), f"board-{unit.code}-{pages.stamp()}")
        tabs = reports.breakdowns(unit)
        by = request.args.get("by") or tabs[0]
        if fmt == "csv":
            board = reports.board(s, actor, unit_code_, by)
            return pages.csv(lambda _s: export.board_table(board), f"board-{unit.code}-{by}-{pages.stamp()}")
        board = reports.board(s, actor, unit_code_, by)

    def link(measure: Measure | str, key: str | None = None) -> str:
        params: dict[str, Any] = {"unit_code_": board.unit.code, "measure": Measure(measure).value}
        if key is not None:
            params[by] = key
        return pages.url("supervise.reports_cases", params)

    def child_board(row: reports.BoardRow) -> str | None:
        """The board of a unit below, where the reader may see it (supervisors, admins: not officers)."""
        if by != "unit" or not policy.may_see_reports(actor, f"{board.unit.path}{row.key}/"):
            return None
        return url_for("supervise.reports_board", unit_code_=row.key)

    return render_template(
        "supervise/board.html", board=board, tabs=[(t, BREAKDOWNS[t]) for t in tabs], by=by, measures=MEASURES,
        row_name=ROW_NAMES[by], rows=board.rows[:BOARD_ROWS], more=max(0, len(board.rows) - BOARD_ROWS),
        link=link, child_board=child_board, crumbs=pages.crumbs(actor, board.chain),
        tab_url=lambda t: pages.url("supervise.reports_board", {"unit_code_": unit_code_, "by": t}),
        download=lambda f: pages.url("supervise.reports_board", {"unit_code_": unit_code_, "by": by, "format": f}))


# ------------------------------------------------------------------------------------------- drill-down
@bp.route("/reports/<unit_code_>/cases")
def reports_cases(unit_code_: str) -> Any:
    actor = pages.reader()
    fmt = pages.format()
    measure = request.args.get("measure", "")
    filters = pages.args(("unit", "item", "department", "clerk", "agent"))
    month = request.args.get("month", "")[:20] or None  # the monthly ranking's lists: closures of that month
    name = f"cases-{unit_code_}-{measure}{'-' + month if month else ''}-{pages.stamp()}"  # used once month is checked
    if fmt == "xlsx":
        with pages.read() as s:
            table = export.list_table(s, actor, unit_code_, measure, month=month, **filters)
            return pages.xlsx([table], name)
    if fmt == "csv":
        return pages.csv(lambda s: export.list_table(s, actor, unit_code_, measure, month=month, **filters), name)
    cursor = request.args.get("cursor") or None
    with pages.read() as s:
        found = reports.cases_for(s, actor, unit_code_, measure, limit=pages.PAGE_SIZE, cursor=cursor, month=month,
                                  **filters)
        labels = _filter_labels(s, found.filters)
    here = {"unit_code_": unit_code_, "measure": found.measure.value, **found.filters,
            "month": f"{found.month:%Y-%m}" if found.month else None}
    if found.month:
        labels.append((_("月份"), _("%(year)s年%(month)s月", year=found.month.year, month=found.month.month)))
    return render_template(
        "supervise/report_cases.html", found=found, labels=labels,
        measures={**MEASURES, Measure.COMPLETED: _l("办结")} if found.month else MEASURES,
        crumbs=pages.crumbs(actor, found.chain),
        board_url=url_for("supervise.reports_board", unit_code_=unit_code_,
                          by=next(iter(found.filters), None) or None),
        next_url=found.page.next_cursor and pages.url("supervise.reports_cases",
                                                      {**here, "cursor": found.page.next_cursor}),
        first_url=pages.url("supervise.reports_cases", here) if cursor else None,
        download=lambda f: pages.url("supervise.reports_cases", {**here, "format": f}))


def _filter_labels(s: Session, filters: Mapping[str, str]) -> list[tuple[str, str]]:
    """The filters of a list in words (单位 迎风桥镇, 事项 …), for its title."""
    out: list[tuple[str, str]] = []
    for key, value in filters.items():
        shown = value
        if key == "unit":
            shown = s.scalar(select(OrgUnit.name).where(OrgUnit.code == value)) or value
        elif key == "item":
            shown = dict(queries.service_choices(s)).get(value, value)
        elif key in ("clerk", "agent"):
            shown = _("（无）") if value == reports.NONE else _person(s, value)
        elif key == "department" and value == reports.NONE:
            shown = _("（无部门）")
        out.append((str(ROW_NAMES[key]), shown))
    return out


def _person(s: Session, user_id: str) -> str:
    row = s.execute(select(User.display_name, User.username).where(User.id == int(user_id))).first()
    return f"{row.display_name}（{row.username}）" if row else user_id


# ------------------------------------------------------------------------------------------- overdue report
@bp.route("/reports/overdue")
def reports_overdue() -> Any:
    actor = pages.reader()
    fmt = pages.format()
    filters = pages.args(OVERDUE_FILTERS)
    sort = request.args.get("sort") or "overdue"
    if fmt == "xlsx":
        with pages.read() as s:
            return pages.xlsx([export.overdue_table(s, actor, filters, sort)], f"overdue-{pages.stamp()}")
    if fmt == "csv":
        return pages.csv(lambda s: export.overdue_table(s, actor, filters, sort), f"overdue-{pages.stamp()}")
    cursor = request.args.get("cursor") or None
    errors: dict[str, str] = {}
    found = None
    with pages.read() as s:
        try:
            found = reports.overdue_report(s, actor, filters, sort, cursor, limit=pages.PAGE_SIZE)
        except InvalidInput as exc:  # a unit outside the reader's tree is NotFound: a 404 page, as everywhere
            errors = {FILTER_FIELDS.get(exc.reason or "", str(exc.details.get("key") or "_form")): reasons.message(exc)}
        root = reports.subtree(s, actor)
        units = s.execute(select(OrgUnit.code, OrgUnit.name, OrgUnit.level)
                          .where(OrgUnit.path.startswith(root.unit.path), OrgUnit.level != "village")
                          .order_by(OrgUnit.path)).all() if root.unit.level != "township" else \
            s.execute(select(OrgUnit.code, OrgUnit.name, OrgUnit.level)
                      .where(OrgUnit.path.startswith(root.unit.path)).order_by(OrgUnit.path)).all()
        services = queries.service_choices(s)
        depts = sorted({d for d in reports.departments(s).values() if d})
    here = {**filters, "sort": sort if sort != "overdue" else None}
    return render_template(
        "supervise/overdue.html", found=found, filters=filters, sort=sort, errors=errors, root=root.unit,
        units=units, services=services, departments=depts, levels=reports.LEVELS, sorts=SORTS,
        card_states=CARD_STATES, crumbs=pages.crumbs(actor, (found.chain if found else root.chain)),
        next_url=found and found.page.next_cursor and pages.url("supervise.reports_overdue",
                                                           {**here, "cursor": found.page.next_cursor}),
        first_url=pages.url("supervise.reports_overdue", here) if cursor else None,
        download=lambda f: pages.url("supervise.reports_overdue", {**here, "format": f}))
