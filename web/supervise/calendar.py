"""The working-day calendar, read-only: which years it knows and from where (published in Yicun,
calendar.yaml, chinese-calendar), which it does not (dues there are estimated Monday–Friday), how many
open cases of the reader's part of the tree have estimated dues, and a known year's schedule.

Open to everyone signed in — it is the State Council's published schedule, and a clerk too may wonder
why a due date says "estimated"; the navigation links it for supervisors (admins get /admin/calendar,
the same list with the form that publishes a year)."""
from __future__ import annotations

from typing import Any

from flask import render_template

from engine import calendar_admin, clock, queries
from engine.vocab import Role

from ..context import current_actor, read
from . import bp

#: the years a schedule page may be asked for (anything else is 404 before touching the database)
YEAR_MIN, YEAR_MAX = 2000, 2100


def years_context(session: Any) -> dict[str, Any]:
    """What the year list shows (here and on the admin page)."""
    actor = current_actor()
    estimated = queries.estimated_open_cases(session, actor) if actor.role in (Role.SUPERVISOR, Role.ADMIN) else None
    return {"years": calendar_admin.known_years(session, clock.now()), "estimated": estimated}


@bp.route("/calendar")
def calendar_years() -> Any:
    with read() as s:
        context = years_context(s)
    return render_template("supervise/calendar.html", **context)


@bp.route("/calendar/<int:year>")
def calendar_year(year: int) -> Any:
    periods: list[calendar_admin.Period] = []
    if YEAR_MIN <= year <= YEAR_MAX:
        with read() as s:
            periods = calendar_admin.year_schedule(s, year)
            info = next((y for y in calendar_admin.known_years(s, clock.now(), everything=True) if y.year == year),
                        None)
    else:
        info = None
    return render_template("supervise/calendar_year.html", year=year, periods=periods, info=info)
