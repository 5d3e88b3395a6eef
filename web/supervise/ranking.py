"""The monthly ranking in the browser (issue #10 §4): `GET /reports/<unit>/ranking?month=YYYY-MM&order=on_time|rating`
— the unit's townships and villages ranked by the on-time rate of the month's completed cases, or by their
好差评 (`engine.reports.ranking`), with a month picker; `?format=xlsx` (a sheet per level, every unit) or
`?format=csv&level=township|village`.

Every number links to the drill-down list behind it for that month (`/reports/<unit>/cases?measure=…&unit=…&
month=…`), whose total is the number. A long level (the city has 1,184 villages) shows its top and bottom
`SHOWN` ranked units and the count of the rest; the Excel file holds them all. Who may see it, and 404 outside
the reader's subtree, as for the board (`web.supervise.reports`).
"""
from __future__ import annotations

from typing import Any

from flask import render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from engine import clock, policy
from engine.errors import InvalidInput
from engine.reports import ranking
from engine.reports.measures import Month

from . import bp, pages

#: a level longer than this shows its top and bottom SHOWN ranked units only (the file has every one)
LONG_LEVEL = 60
SHOWN = 20
ORDERS = {"on_time": _l("以按时办结率排名"), "rating": _l("以好差评排名")}
LEVEL_TITLES = {"township": _l("乡镇排名"), "village": _l("村排名")}
PARENTS = {"township": _l("所属县（市、区）"), "village": _l("所属乡镇")}


def shown_rows(level: ranking.RankingLevel) -> tuple[list[ranking.RankingRow], int, list[ranking.RankingRow], int]:
    """What the page lists of a level: (top, how many ranked are left out, bottom, how many unranked are left
    out). A short level is listed whole (top = every row)."""
    rows = list(level.rows)
    if len(rows) <= LONG_LEVEL:
        return rows, 0, [], 0
    ranked, unranked = rows[:level.ranked], rows[level.ranked:]
    if len(ranked) <= 2 * SHOWN:
        return ranked, 0, [], len(unranked)
    return ranked[:SHOWN], len(ranked) - 2 * SHOWN, ranked[-SHOWN:], len(unranked)


@bp.route("/reports/<unit_code_>/ranking")
def reports_ranking(unit_code_: str) -> Any:
    actor = pages.reader()
    fmt = pages.format()
    month = request.args.get("month", "")[:20] or None
    order = request.args.get("order") or "on_time"
    with pages.read() as s:
        found = ranking.ranking(s, actor, unit_code_, month, order)
    name = f"ranking-{found.unit.code}-{found.month_code}-{found.order}-{pages.stamp()}"
    if fmt == "xlsx":
        return pages.xlsx(ranking.ranking_tables(found), name)
    if fmt == "csv":
        wanted = request.args.get("level") or (found.levels[0].level if found.levels else "")
        level = next((lv for lv in found.levels if lv.level == wanted), None)
        if level is None:
            raise InvalidInput(_("这一级没有排名，请从页面上下载。"), reason="web.format_invalid")
        table = ranking.level_table(found, level)
        return pages.csv(lambda _s: table, f"{name}-{level.level}")
    here = {"unit_code_": found.unit.code, "month": found.month_code, "order": found.order}

    def link(measure: str, code: str) -> str:
        """The drill-down list behind a number of a unit's row, for the ranking's month."""
        return pages.url("supervise.reports_cases", {"unit_code_": found.unit.code, "measure": measure, "unit": code,
                                                "month": found.month_code})

    def board_of(row: ranking.RankingRow) -> str | None:
        """A ranked unit's own board, where the reader may see it (supervisors; officers see their unit's)."""
        return url_for("supervise.reports_board", unit_code_=row.code) if policy.may_see_reports(actor, row.path) \
            else None

    current = Month.of(clock.now())
    return render_template(
        "supervise/ranking.html", found=found, orders=ORDERS, level_titles=LEVEL_TITLES, parents=PARENTS,
        tables=[(lv, *shown_rows(lv)) for lv in found.levels], link=link, board_of=board_of,
        crumbs=pages.crumbs(actor, found.chain), latest=current.code,
        month_label=_("%(year)s年%(month)s月", year=found.month.year, month=found.month.month),
        order_url=lambda o: pages.url("supervise.reports_ranking", {**here, "order": o}),
        month_url=lambda m: pages.url("supervise.reports_ranking", {**here, "month": m}),
        previous=Month.containing(found.month).previous().code,
        following=_following(found, current),
        download=lambda f, level=None: pages.url("supervise.reports_ranking", {**here, "format": f, "level": level}))


def _following(found: ranking.Ranking, current: Month) -> str | None:
    """The month after the ranking's, unless it has not begun."""
    nxt = Month.containing(Month.containing(found.month).end.astimezone(clock.SHANGHAI).date())
    return nxt.code if nxt.first_day <= current.first_day else None

