"""What every report page does alike (web/supervise: reports, charts, ranking, waits): read the reports'
database (a read replica when the app is given one), check the reader, take the filters of the address,
answer `?format=xlsx|csv` with a file, and draw the breadcrumbs from the city down."""
from __future__ import annotations

import contextlib
import io
from collections.abc import Callable, Iterator
from typing import Any

from flask import Response, current_app, request, send_file, stream_with_context, url_for
from flask_babel import gettext as _
from sqlalchemy.orm import Session

from engine import clock, db, policy, reports
from engine.errors import Forbidden, InvalidInput
from engine.reports import export

from ..context import current_actor, engine

#: rows a drill-down list or the overdue report shows a page
PAGE_SIZE = 25
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def reports_db() -> Any:
    """The database the reports read: the app's `REPORTS_DATABASE_URL` (a read replica; from
    `YICUN_REPORTS_DATABASE_URL`), opened read-only and checked once, if it has one."""
    url = current_app.config.get("REPORTS_DATABASE_URL")
    if not url:
        return engine()
    made = current_app.extensions.get("yicun_reports_engine")
    if made is None:  # two first requests at once: one engine is kept, the other closed
        opened = db.open_reports(url)
        made = current_app.extensions.setdefault("yicun_reports_engine", opened)
        if made is not opened:
            opened.dispose()
    return made


def read() -> contextlib.AbstractContextManager[Session]:
    """A report page's read: its own transaction on the reports' database, as a report reads (`db.read`'s
    `reports`: JIT off on PostgreSQL)."""
    return db.read(reports_db(), reports=True)


def reader() -> Any:
    """The logged-in reader, if they may see reports at all (403 otherwise: not a secret that reports exist)."""
    actor = current_actor()
    if not policy.may_see_reports(actor, actor.unit_path):
        raise Forbidden(_("只有监督人员、乡镇和县级审批人员可以查看报表。"), reason="report.see")
    return actor


def args(names: tuple[str, ...]) -> dict[str, Any]:
    return {name: request.args.get(name, "")[:200] for name in names if request.args.get(name)}


def stamp() -> str:
    return f"{clock.local(clock.now()):%Y%m%d-%H%M}"


def xlsx(tables: list[export.Table], name: str) -> Any:
    return send_file(io.BytesIO(export.xlsx(tables)), mimetype=XLSX, as_attachment=True,
                     download_name=f"{name}.xlsx")


def csv(build: Callable[[Session], export.Table], name: str) -> Response:
    """A CSV download streamed row by row. The table is built (the reader checked, the rows counted against
    the bound) before the response starts, so a refusal is a page, not half a file."""
    stack = contextlib.ExitStack()
    session = stack.enter_context(read())
    try:
        table = build(session)
    except BaseException:
        stack.close()
        raise

    def lines() -> Iterator[str]:
        with stack:
            yield from export.csv_lines(table)

    return Response(stream_with_context(lines()), content_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="{name}.csv"'})


def format() -> str | None:
    fmt = request.args.get("format") or None
    if fmt not in (None, "xlsx", "csv"):
        raise InvalidInput(_("下载格式只能是 xlsx 或 csv。"), reason="web.format_invalid")
    return fmt


def url(endpoint: str, params: dict[str, Any]) -> str:
    return url_for(endpoint, **{k: v for k, v in params.items() if v not in (None, "")})


def crumbs(actor: Any, chain: tuple[reports.ReportUnit, ...]) -> list[tuple[str, str | None]]:
    """The chain from the top down, each linked where the reader may see its board."""
    return [(u.name, url_for("supervise.reports_board", unit_code_=u.code)
             if policy.may_see_reports(actor, u.path) else None) for u in chain]
