"""The charts page of the supervisor's workspace (issue #10 §3): where people would rather look than read.

- `GET /reports/<unit>/charts[?weeks=N]`: cases opened and closed week by week, the overdue trend (red cards
  issued, cases completed late), this month's on-time rate by township (by county too for the city; by
  village for a township) and the open cards by service item — from `engine.reports.trends`, one engine call.
  `?format=xlsx` is every chart's numbers, a sheet each; `?format=csv&chart=weekly|overdue|on_time|cards` one.
- `GET /reports/<unit>/charts/cases?series=…&week=<Monday>` (or `series=cards&item=…&color=…`): the rows
  behind one weekly number (or one colour of an item's open cards), shown like the board's drill-down lists.

Each chart's numbers are one click away: a table of the same numbers under it (a <details>), every number in
it, and every bar or point of the chart, a link to the list behind it — the board's drill-down where one
exists (on-time and late by unit, an item's open cards), else the list above, whose total is the number.
The page carries the charts as JSON in a `<script type="application/json">` (no inline code: the CSP),
drawn by web/static/charts.js with the vendored ECharts, which only this page loads.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import date
from typing import Any

from flask import render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from engine import policy, queries
from engine.errors import InvalidInput
from engine.reports import trends
from engine.reports.trends import Series

from . import bp, pages

#: the series by their names on the page (the drill-down list's title)
SERIES = {Series.OPENED: _l("新收"), Series.COMPLETED: _l("办结"), Series.REJECTED: _l("不予办理"),
          Series.WITHDRAWN: _l("撤回"), Series.LATE: _l("超时办结"), Series.RED_CARDS: _l("红牌"),
          Series.CARDS: _l("未销黄红牌")}
#: the colours of the series (the red and yellow of the cards are the board's)
COLOURS = {Series.OPENED: "#2e90fa", Series.COMPLETED: "#12b76a", Series.REJECTED: "#98a2b3",
           Series.WITHDRAWN: "#475467", Series.LATE: "#f79009", Series.RED_CARDS: "#f04438", "rate": "#12b76a",
           "red": "#f04438", "yellow": "#fdb022"}
#: a CSV file holds one chart: its sheet in the Excel file
CSV_CHARTS = {"weekly": 0, "overdue": 1, "on_time": 2, "cards": 3}
#: the choices of span offered above the charts
SPANS = (12, 26, 52)


@dataclass
class Column:
    """A column of a chart's table, and a series of the chart when `draw` (the others show in its tooltip)."""
    name: str
    values: list[int | float | None]
    links: list[str | None]
    kind: str = "int"  # int | percent
    draw: bool = True
    color: str | None = None


@dataclass
class Chart:
    """One chart: its axis labels (`categories`), its table's row labels (`rows`, fuller) and columns."""
    id: str
    title: str
    kind: str  # bar | line | rate | stack
    head: str  # the first column's header
    categories: list[str]
    rows: list[str]
    columns: list[Column]
    note: str = ""
    csv: str = ""
    empty: str = ""
    row_links: list[str | None] = field(default_factory=list)


def _short(day: date) -> str:
    return f"{day:%m-%d}"


def _week_row(week: trends.Week) -> str:
    span = _("%(first)s 至 %(last)s", first=f"{week.first_day:%Y-%m-%d}", last=_short(week.last_day))
    return _("%(span)s（本周，截至目前）", span=span) if week.partial else span


def _charts(actor: Any, found: trends.Trends, weeks: int) -> list[Chart]:
    code = found.unit.code

    def board(key: str) -> str | None:
        """A unit's own board, from its row, where the reader may see it (as the board links its units)."""
        path = found.unit.path if key == code else f"{found.unit.path}{key}/"
        return url_for("supervise.reports_board", unit_code_=key) if policy.may_see_reports(actor, path) else None

    def csv(chart: str) -> str:
        return pages.url("supervise.reports_charts", {"unit_code_": code, "format": "csv", "chart": chart,
                                                      "weeks": weeks if weeks != trends.WEEKS else None})

    def week_links(series: Series) -> list[str | None]:
        return [url_for("supervise.reports_chart_cases", unit_code_=code, series=series.value,
                        week=w.week.first_day.isoformat()) for w in found.weeks]

    def weekly_column(series: Series) -> Column:
        return Column(str(SERIES[series]), [w.count(series) for w in found.weeks], week_links(series),
                      color=COLOURS[series])

    categories = [_("本周") if w.week.partial else _short(w.week.first_day) for w in found.weeks]
    rows = [_week_row(w.week) for w in found.weeks]
    charts = [
        Chart("weekly", _("每周新收与办结"), "bar", _("周"), categories, rows,
              [weekly_column(s) for s in (Series.OPENED, Series.COMPLETED, Series.REJECTED, Series.WITHDRAWN)],
              _("按周一至周日（北京时间）统计：新收按登记时间，办结、不予办理、撤回按结束时间；“本周”只算到目前。"),
              csv("weekly")),
        Chart("overdue", _("超期趋势"), "line", _("周"), categories, rows,
              [weekly_column(s) for s in (Series.RED_CARDS, Series.LATE)],
              _("每周发出的红牌（含已销牌的），每周超过承诺期限才办结的办件；“本周”只算到目前。"), csv("overdue")),
    ]
    level_titles = {"county": _("各县（区）按时办结率"), "township": _("各乡镇按时办结率"),
                    "village": _("各村按时办结率")}
    level_heads = {"county": _("县（区）"), "township": _("乡镇"), "village": _("村")}
    month = _("%(year)s年%(month)s月", year=found.month.year, month=found.month.month)
    for group in found.on_time:
        def link(measure: str, key: str) -> str:
            return url_for("supervise.reports_cases", unit_code_=code, measure=measure, unit=key)

        names = [r.name for r in group.rows]
        cols = [Column(str(_("本月办结")), [r.counts.completed for r in group.rows],
                       [link("completed", r.key) for r in group.rows], draw=False),
                Column(str(_("按时办结")), [r.counts.on_time for r in group.rows],
                       [link("on_time", r.key) for r in group.rows], draw=False),
                Column(str(_("超时办结")), [r.counts.late for r in group.rows],
                       [link("late", r.key) for r in group.rows], draw=False),
                Column(str(_("按时办结率")), [r.counts.on_time_rate for r in group.rows],
                       [link("on_time", r.key) for r in group.rows], "percent", color=COLOURS["rate"])]
        charts.append(Chart(f"on_time_{group.level}", f"{level_titles.get(group.level, _('按时办结率'))} · {month}",
                            "rate", level_heads.get(group.level, _("单位")), names, names, cols,
                            _("按时办结率＝按时办结 ÷（按时办结＋超时办结），本月（北京时间）办结的办件，与看板相同；"
                              "没有办结的单位显示为“—”。"), csv("on_time"),
                            row_links=[board(r.key) for r in group.rows]))
    names = [c.name for c in found.cards]
    charts.append(Chart(
        "cards", _("未销黄红牌（按事项）"), "stack", _("事项"), names, [f"{c.name}（{c.code}）" for c in found.cards],
        [Column(str(_("红牌")), [c.red for c in found.cards],
                [pages.url("supervise.reports_chart_cases", {"unit_code_": code, "series": "cards", "item": c.code,
                                                         "color": "red"}) for c in found.cards], color=COLOURS["red"]),
         Column(str(_("黄牌")), [c.yellow for c in found.cards],
                [pages.url("supervise.reports_chart_cases", {"unit_code_": code, "series": "cards", "item": c.code,
                                                         "color": "yellow"}) for c in found.cards],
                color=COLOURS["yellow"]),
         Column(str(_("合计")), [c.cards for c in found.cards],
                [url_for("supervise.reports_cases", unit_code_=code, measure="cards", item=c.code)
                 for c in found.cards], draw=False)],
        _("在办办件上还没有销的黄牌、红牌，与看板的“未销黄红牌”相同。"), csv("cards"), _("没有未销的黄红牌。")))
    return charts


@bp.route("/reports/<unit_code_>/charts")
def reports_charts(unit_code_: str) -> Any:
    actor = pages.reader()
    fmt = pages.format()
    weeks = trends.parse_weeks(request.args.get("weeks", "")[:10])
    with pages.read() as s:
        found = trends.trends(s, actor, unit_code_, weeks)
    if fmt == "xlsx":
        return pages.xlsx(trends.chart_tables(found), f"charts-{found.unit.code}-{pages.stamp()}")
    if fmt == "csv":
        chart = request.args.get("chart") or "weekly"
        if chart not in CSV_CHARTS:
            raise InvalidInput(_("没有这个图表。"), reason="report.filter_invalid", key="chart", value=chart[:40])
        table = trends.chart_tables(found)[CSV_CHARTS[chart]]
        return pages.csv(lambda _s: table, f"charts-{found.unit.code}-{chart}-{pages.stamp()}")
    charts = _charts(actor, found, weeks)
    return render_template(
        "supervise/charts.html", found=found, charts=charts, data=[asdict(c) for c in charts], weeks=weeks,
        spans=[(n, pages.url("supervise.reports_charts", {"unit_code_": unit_code_,
                                                     "weeks": n if n != trends.WEEKS else None})) for n in SPANS],
        crumbs=pages.crumbs(actor, found.chain),
        download=pages.url("supervise.reports_charts", {"unit_code_": unit_code_, "format": "xlsx",
                                                   "weeks": weeks if weeks != trends.WEEKS else None}))


@bp.route("/reports/<unit_code_>/charts/cases")
def reports_chart_cases(unit_code_: str) -> Any:
    actor = pages.reader()
    fmt = pages.format()
    series = request.args.get("series", "")[:20]
    week = request.args.get("week", "")[:20] or None
    filters = pages.args(("item", "color"))
    name = f"cases-{unit_code_}-{series}{'-' + week if week else ''}-{pages.stamp()}"
    if fmt == "xlsx":
        with pages.read() as s:
            return pages.xlsx([trends.list_table(s, actor, unit_code_, series, week, **filters)], name)
    if fmt == "csv":
        return pages.csv(lambda s: trends.list_table(s, actor, unit_code_, series, week, **filters), name)
    cursor = request.args.get("cursor") or None
    with pages.read() as s:
        found = trends.cases_for(s, actor, unit_code_, series, week, limit=pages.PAGE_SIZE, cursor=cursor, **filters)
        labels: list[tuple[str, str]] = []
        if found.week is not None:
            labels.append((_("周"), _week_row(found.week)))
        if "item" in found.filters:
            labels.append((_("事项"), dict(queries.service_choices(s)).get(found.filters["item"],
                                                                           found.filters["item"])))
        if "color" in found.filters:
            labels.append((_("颜色"), str(_("红牌") if found.filters["color"] == "red" else _("黄牌"))))
    here = {"unit_code_": unit_code_, "series": found.measure.value,
            "week": found.week.first_day.isoformat() if found.week else None, **found.filters}
    return render_template(
        "supervise/report_cases.html", found=found, measures=SERIES, labels=labels,
        crumbs=pages.crumbs(actor, found.chain),
        board_url=url_for("supervise.reports_charts", unit_code_=unit_code_),
        next_url=found.page.next_cursor and pages.url("supervise.reports_chart_cases",
                                                 {**here, "cursor": found.page.next_cursor}),
        first_url=pages.url("supervise.reports_chart_cases", here) if cursor else None,
        download=lambda f: pages.url("supervise.reports_chart_cases", {**here, "format": f}))
