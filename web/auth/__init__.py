"""Log in and out with the engine's user table; the session cookie holds only the user id.

Accounts themselves (passwords, throttling, user administration) belong to `engine.accounts`; this
blueprint only opens and closes the session.
"""
from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app, flash, redirect, render_template, request, session, url_for

from engine import orgs
from engine.errors import NotFound

from ..context import read
from ..guards import public
from .next_url import safe_next

bp = Blueprint("auth", __name__)

#: Username and password fields are bounded before anything looks them up (DESIGN invariant 10).
MAX_USERNAME_CHARS = 64
MAX_PASSWORD_CHARS = 256


@bp.route("/login", methods=["GET", "POST"])
@public
def login() -> Any:
    if request.method == "POST":
        username = request.form.get("username", "").strip()[:MAX_USERNAME_CHARS + 1]
        password = request.form.get("password", "")
        uid = _check(username, password)
        if uid is not None:
            session.clear()  # a fresh session (and CSRF token) after logging in: no session fixation
            session["uid"] = uid
            return redirect(safe_next(request.args.get("next")) or url_for("workbench.home"))
        flash("用户名或密码错误。")
    demo = current_app.config["YICUN_DEMO"]
    return render_template("auth/login.html", demo=demo,
                           demo_logins=orgs.DEMO_LOGINS if demo else (),
                           demo_password=orgs.DEMO_PASSWORD if demo else None)


def _check(username: str, password: str) -> int | None:
    """The id of the active user with this name and password, else None (which one was wrong is not
    said)."""
    if not username or len(username) > MAX_USERNAME_CHARS or len(password) > MAX_PASSWORD_CHARS:
        return None
    with read() as s:
        try:
            user = orgs.user_by_name(s, username)  # active users only
        except NotFound:
            return None
        return user.id if orgs.check_password(user.password_hash, password) else None


@bp.route("/logout", methods=["POST"])
@public
def logout() -> Any:
    session.clear()
    return redirect(url_for("auth.login"))
