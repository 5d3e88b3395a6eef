"""Where cases wait, in the browser (issue #10 §6): `GET /reports/<unit>/waits?month=YYYY-MM` — the steps'
working time this month against the month before (overall, by unit, by person), the steps where the overdue
work sits (each number a link to the overdue report listing exactly those steps), and the cases predicted to
run late with their predicted finish date beside the promised due (keyset pages, `?cursor=`).

Downloads: `?format=xlsx` (every table, every row), `?format=csv&table=steps|units|people|hot|late` (one).
A bad month is the page again with the month field marked and nothing else read (400); a unit outside the
reader's part of the tree is 404, as on every report page.
"""
from __future__ import annotations

from typing import Any

from flask import render_template, request, url_for
from flask_babel import lazy_gettext as _l

from engine import clock, reports
from engine.errors import InvalidInput
from engine.reports import waits

from .. import reasons
from . import bp, pages

#: rows each table shows on the page (a city has thousands of people; the Excel file holds every row)
SHOWN = {"steps": 100, "units": 60, "people": 60, "hot": 40}
#: the tables by their names on the page (CSV downloads name them)
TABLES = {"steps": _l("各环节用时"), "units": _l("按单位"), "people": _l("按经办人"), "hot": _l("超期集中的环节"),
          "late": _l("预计将超期")}
#: where a prediction's history came from
BASES = {"township": _l("本乡镇同类办件"), "county": _l("本县同类办件"), "city": _l("全市同类办件"),
         "none": _l("无历史"), "paused": _l("暂停计时")}


@bp.route("/reports/<unit_code_>/waits")
def reports_waits(unit_code_: str) -> Any:
    actor = pages.reader()
    fmt = pages.format()
    month = request.args.get("month", "")[:20]
    if fmt == "xlsx":
        with pages.read() as s:
            return pages.xlsx(waits.tables(s, actor, unit_code_, month), f"waits-{unit_code_}-{pages.stamp()}")
    if fmt == "csv":
        name = request.args.get("table") or "steps"
        return pages.csv(lambda s: waits.table(s, actor, unit_code_, month, name),
                         f"waits-{unit_code_}-{name}-{pages.stamp()}")
    cursor = request.args.get("cursor") or None
    error, report, late = None, None, None
    with pages.read() as s:
        sub = reports.subtree(s, actor, unit_code_)  # another township's page: 404 before anything is read
        try:
            report, late = waits.page(s, actor, unit_code_, month, cursor, limits=SHOWN, page_size=pages.PAGE_SIZE)
        except InvalidInput as exc:
            if exc.reason not in waits.MONTH_REASONS:
                raise
            error = reasons.message(exc)
    this_month = f"{clock.local(clock.now()):%Y-%m}"
    shown_month = f"{report.month:%Y-%m}" if report else this_month
    here = {"unit_code_": sub.unit.code, "month": month if month and report else None}
    html = render_template(
        "supervise/waits.html", sub=sub, report=report, late=late, error=error, month=month,
        shown_month=shown_month, this_month=this_month, shown=SHOWN, tables=TABLES, bases=BASES,
        crumbs=pages.crumbs(actor, sub.chain),
        overdue_url=lambda filters, warning=None: pages.url("supervise.reports_overdue",
                                                       {**filters, "warning": warning}),
        next_url=late and late.page.next_cursor and pages.url("supervise.reports_waits",
                                                         {**here, "cursor": late.page.next_cursor}),
        first_url=pages.url("supervise.reports_waits", here) if cursor else None,
        download=lambda f, table=None: pages.url("supervise.reports_waits", {**here, "format": f, "table": table}),
        month_url=lambda m: url_for("supervise.reports_waits", unit_code_=sub.unit.code, month=m))
    return (html, 400) if error else html
