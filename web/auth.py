"""Login/logout with the engine's user table; the session cookie holds only the user id."""
from __future__ import annotations

from functools import wraps
from typing import Any, Callable

from flask import Blueprint, current_app, flash, redirect, render_template, request, session, url_for
from sqlalchemy.orm import Session

from engine import db, orgs
from engine.errors import NotFound
from engine.models import User

bp = Blueprint("auth", __name__)


def engine():  # type: ignore[no-untyped-def]
    return current_app.extensions["yicun_engine"]


def current_user(s: Session) -> User | None:
    uid = session.get("uid")
    user = s.get(User, uid) if uid else None
    return user if user is not None and user.active else None


def login_required(view: Callable[..., Any]) -> Callable[..., Any]:
    """Only for a logged-in, still active user: a session whose account was removed or deactivated is
    ended here, so no view ever runs without a user (engine reads treat no user as the operator)."""
    @wraps(view)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        if session.get("uid"):
            with db.read(engine()) as s:
                if current_user(s) is not None:
                    return view(*args, **kwargs)
            session.clear()
        return redirect(url_for("auth.login", next=request.path))
    return wrapped


@bp.route("/login", methods=["GET", "POST"])
def login() -> Any:
    if request.method == "POST":
        username = request.form.get("username", "").strip()
        password = request.form.get("password", "")
        with db.read(engine()) as s:
            try:
                user = orgs.user_by_name(s, username)
            except NotFound:
                user = None
            if user is not None and orgs.check_password(user.password_hash, password):
                session.clear()
                session["uid"] = user.id
                nxt = request.args.get("next", "")
                return redirect(nxt if nxt.startswith("/") and not nxt.startswith("//") else url_for("views.home"))
        flash("用户名或密码错误 / wrong username or password")
    return render_template("login.html", demo=orgs.DEMO_LOGINS, demo_password=orgs.DEMO_PASSWORD)


@bp.route("/logout", methods=["POST"])
def logout() -> Any:
    session.clear()
    return redirect(url_for("auth.login"))
