"""Pages: the home page lists deployed processes and the open cases the user may see."""
from __future__ import annotations

from typing import Any

from flask import Blueprint, jsonify, redirect, render_template, url_for

from engine import db, inbox, processes, service_day
from engine.errors import NotFound

from .auth import current_user, engine, login_required

bp = Blueprint("views", __name__)


@bp.route("/")
@login_required
def home() -> Any:
    with db.read(engine()) as s:
        user = current_user(s)
        return render_template(
            "home.html", user=user, unit=user.unit,
            process_count=processes.count_processes(s),  # a count, not 176 processes loaded to count them
            cases=inbox.list_cases(s, user, "open", limit=200),
            open_count=inbox.count_open_cases(s, user),
            tasks=inbox.list_tasks(s, user, limit=50),
            notifications=inbox.list_notifications(s, user, limit=10),
            estimated=inbox.estimated_open_cases(s, user) if user.role in ("supervisor", "admin") else 0,
        )


@bp.route("/cases/<number>")
@login_required
def case(number: str) -> Any:
    with db.read(engine()) as s:
        user = current_user(s)
        return render_template("case.html", user=user, case=inbox.case_detail(s, number, user))


@bp.route("/notifications/read", methods=["POST"])
@login_required
def notifications_read() -> Any:
    from engine import clock, deadlines
    with db.transaction(engine()) as s:
        deadlines.mark_read(s, current_user(s), clock.now())
    return redirect(url_for("views.home"))


@bp.route("/processes")
@login_required
def process_list() -> Any:
    with db.read(engine()) as s:
        return render_template("processes.html", user=current_user(s),
                               processes=inbox.process_rows(processes.list_versions(s)))


@bp.route("/service-day")
@bp.route("/service-day/<unit_code>")
@login_required
def service_day_digest(unit_code: str | None = None) -> Any:
    """The 便民集中服务日 digest of the user's own village/township (or one below it, for supervisors)."""
    with db.read(engine()) as s:
        user = current_user(s)
        code = unit_code or user.unit.code
        from engine import orgs
        unit = orgs.unit_by_code(s, code)
        if not orgs.in_subtree(unit, user.unit):
            raise NotFound(f"no service-day digest for {code}")
        try:
            digest = service_day.get_digest(s, code)
        except NotFound:
            digest = None
        return render_template("service_day.html", user=user, unit=unit, digest=digest)


@bp.route("/api/processes")
@login_required
def api_processes() -> Any:
    with db.read(engine()) as s:
        return jsonify(inbox.process_rows(processes.list_versions(s)))


@bp.route("/api/cases")
@login_required
def api_cases() -> Any:
    with db.read(engine()) as s:
        return jsonify(inbox.list_cases(s, current_user(s), "open", limit=200))


@bp.route("/healthz")
def healthz() -> Any:
    return {"ok": True}
