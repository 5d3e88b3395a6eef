"""Pages for those who watch a part of the tree: the 便民集中服务日 digest of a unit — a village's or a
township's cases, a county's or the city's summary of the units below (its own people see it too;
supervisors also those below them)."""
from __future__ import annotations

from typing import Any

from flask import Blueprint, render_template
from flask_babel import gettext as _

from engine import orgs, policy, service_day
from engine.errors import NotFound

from ..context import current_actor, read, unit_code
from ..guards import require_visible

bp = Blueprint("supervise", __name__)


@bp.route("/service-day")
@bp.route("/service-day/<unit_code_>")
def service_day_digest(unit_code_: str | None = None) -> Any:
    actor = current_actor()
    with read() as s:
        code = unit_code_ or unit_code(actor)
        try:
            unit = orgs.unit_by_code(s, code)
        except NotFound:
            unit = None
        require_visible(unit is not None and policy.may_view_unit(actor, unit.path),
                        _("单位 %(code)s 的服务日摘要", code=code))
        try:
            digest = service_day.get_digest(s, code)
        except NotFound:
            digest = None
        # a supervisor (or officer) reaches a unit's digest from its reports: the reports' tabs, and its units'
        path = unit.path if unit is not None else ""
        return render_template("supervise/service_day.html", unit=unit, digest=digest,
                               reports_nav=policy.may_see_reports(actor, path),
                               may_view=lambda code: policy.may_view_unit(actor, f"{path}{code}/"))


from . import (  # noqa: E402,F401  (views modules: register their routes on bp)
    actions,  # noqa: E402,F401  (views module: 督办, 情况说明 — registers its routes on bp)
    calendar,  # noqa: E402,F401  (views module: the working-day calendar's years, read-only)
    charts,  # noqa: E402,F401  (views module: the charts page, the lists behind its numbers, its files)
    ranking,  # noqa: E402,F401  (views module: the monthly ranking of townships and villages, its files)
    reports,  # noqa: E402,F401  (views module: the board, drill-down lists, overdue report, downloads)
    waits,  # noqa: E402,F401  (views module: where cases wait, the cases predicted late, their files)
)
