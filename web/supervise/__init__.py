"""Pages for those who watch a part of the tree: the 便民集中服务日 digest of a village or township (its
own people see it too; supervisors also those below them)."""
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
        return render_template("supervise/service_day.html", unit=unit, digest=digest)


from . import (  # noqa: E402,F401  (views modules: register their routes on bp)
    actions,  # noqa: E402,F401  (views module: 督办, 情况说明 — registers its routes on bp)
    calendar,  # noqa: E402,F401  (views module: the working-day calendar's years, read-only)
    reports,  # noqa: E402,F401  (views module: the board, drill-down lists, overdue report, downloads)
)
