"""Pages of the process designers. For now the list of deployed processes, which every member of staff
may read (clerks look up an item's process there)."""
from __future__ import annotations

from typing import Any

from flask import Blueprint, render_template

from engine import processes, queries

from ..context import read

bp = Blueprint("design", __name__)


@bp.route("/processes")
def processes_page() -> Any:
    with read() as s:
        return render_template("design/processes.html", processes=queries.process_items(processes.list_versions(s)))
