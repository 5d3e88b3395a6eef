"""The workbench of the people who handle cases (clerks, agents, officers): home with inbox and open
cases, the case page, notifications. Every view: parse → (guard) → engine call(s) → render."""
from __future__ import annotations

from typing import Any

from flask import Blueprint, redirect, render_template, url_for

from engine import cases, clock, processes, queries
from engine.reports import predict
from engine.vocab import Role

from ..context import current_actor, read, write

bp = Blueprint("workbench", __name__)
#: The inbox's first rows the home page shows (更多 leads to /inbox, which pages through all of them).
HOME_TASKS = 10


@bp.route("/")
def home() -> Any:
    actor = current_actor()
    with read() as s:
        return render_template(
            "workbench/home.html",
            process_count=processes.count_processes(s),  # a count, not 176 processes loaded to count them
            cases=queries.list_cases(s, actor, "open", limit=200),
            open_count=queries.count_open_cases(s, actor),
            tasks=queries.list_tasks(s, actor, limit=HOME_TASKS),  # the first page; the rest is /inbox
            notifications=queries.list_notifications(s, actor, limit=10),
            # officers of an approving level decide requests for more time (延期)
            extension_requests=queries.extension_requests_to_decide(s, actor, limit=20)
            if actor.role in (Role.TOWNSHIP_OFFICER, Role.COUNTY_OFFICER) else (),
            # supervisors and admins are the ones who can get the calendar completed
            estimated=queries.estimated_open_cases(s, actor) if actor.role in (Role.SUPERVISOR, Role.ADMIN) else 0,
        )


@bp.route("/cases/<number>")
def case(number: str) -> Any:
    with read() as s:
        detail = queries.case_detail(s, number, current_actor())
        # beside the promised due: when it will likely finish, from its item's and units' history (open cases)
        return render_template("workbench/case.html", case=detail, prediction=predict.for_detail(s, detail))


@bp.route("/notifications/read", methods=["POST"])
def notifications_read() -> Any:
    with write() as s:
        cases.mark_read(s, current_actor(), clock.now())
    return redirect(url_for("workbench.home"))


from . import (  # noqa: E402,F401  (views modules: register their routes on bp)
    casework,  # noqa: E402,F401  (views module: comments, attachments, extension requests)
    diagram,  # noqa: E402,F401  (views module: registers its routes on bp)
    inbox,  # noqa: E402,F401  (views module: the inbox, 办件查询, notifications, the nav's counts)
    intake,
    task,
)
