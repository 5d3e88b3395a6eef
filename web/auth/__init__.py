"""Log in and out, and change one's own password; the session cookie holds only the user id.

Accounts themselves (passwords, throttling, locks, the audit trail) belong to `engine.accounts`: the
login form calls `accounts.login`, which commits the record of every attempt (failure counter, lock,
audit row) before it raises the refusal, so a refused login is remembered even though it is refused.
Every refusal of an account that may exist reads the same ("用户名或密码错误", or "locked until HH:MM"
for names with and without an account alike): the page never tells which names exist.
"""
from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app, redirect, render_template, request, session, url_for

from engine import accounts, orgs
from engine.errors import Forbidden

from .. import reasons
from ..context import MUST_CHANGE_KEY, STAMP_KEY
from ..context import engine as db_engine
from ..guards import public
from .next_url import safe_next

bp = Blueprint("auth", __name__)

#: The username field is bounded before anything looks at it (DESIGN invariant 10); the engine bounds
#: the password itself (at most `accounts.PASSWORD_MAX`, longer ones are simply wrong).
MAX_USERNAME_CHARS = 64


@bp.route("/login", methods=["GET", "POST"])
@public
def login() -> Any:
    error = None
    username = ""
    if request.method == "POST":
        username = request.form.get("username", "").strip()[:MAX_USERNAME_CHARS + 1]
        typed = request.form.get("password", "")
        try:
            result = accounts.login(db_engine(), username, typed, ip=request.remote_addr)
        except Forbidden as exc:  # auth.failed, auth.locked (with the time), auth.disabled
            error = reasons.message(exc)
        else:
            session.clear()  # a fresh session (and CSRF token) after logging in: no session fixation
            session["uid"] = result.actor.id
            session[STAMP_KEY] = result.stamp
            target = safe_next(request.args.get("next"))
            if result.must_change_password:
                session[MUST_CHANGE_KEY] = True
                return redirect(url_for("auth.change_password", next=target))
            return redirect(target or url_for("workbench.home"))
    demo = current_app.config["YICUN_DEMO"]
    return render_template("auth/login.html", demo=demo, error=error, username=username[:MAX_USERNAME_CHARS],
                           demo_logins=orgs.DEMO_LOGINS if demo else (),
                           demo_password=orgs.DEMO_PASSWORD if demo else None)


@bp.route("/logout", methods=["POST"])
@public
def logout() -> Any:
    session.clear()
    return redirect(url_for("auth.login"))


from . import password  # noqa: E402,F401  (registers /account/password on this blueprint)
