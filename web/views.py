"""Pages: the home page lists deployed processes and the open cases the user may see."""
from __future__ import annotations

from typing import Any

from flask import Blueprint, jsonify, render_template

from engine import db, inbox, processes

from .auth import current_user, engine, login_required

bp = Blueprint("views", __name__)


@bp.route("/")
@login_required
def home() -> Any:
    with db.read(engine()) as s:
        user = current_user(s)
        if user is None:
            return render_template("error.html", error="please log in again"), 401
        return render_template(
            "home.html", user=user, unit=user.unit,
            processes=inbox.process_rows(processes.list_versions(s)),
            cases=inbox.list_cases(s, user, "open", limit=200),
            open_count=inbox.count_open_cases(s, user),
            tasks=inbox.list_tasks(s, user, limit=50),
        )


@bp.route("/cases/<number>")
@login_required
def case(number: str) -> Any:
    with db.read(engine()) as s:
        user = current_user(s)
        return render_template("case.html", user=user, case=inbox.case_detail(s, number, user))


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
