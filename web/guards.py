"""Deny by default: every view needs a logged-in, active user unless it is marked `@public`.

The check runs before every request (not as a decorator each view must remember), so a new view that
forgets about access is closed, not open. Role rules are the engine's predicates (`engine.policy`):
the web only consults them, the engine enforces them again in its services.

A user who logged in with a password they must change (a temporary one, or one an administrator reset)
may go only to the change-password page and log out until they have changed it: every other page
redirects there, every API call is 403. The login records this in the session (`context.MUST_CHANGE_KEY`);
the change-password page removes it.
"""
from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar, cast

from flask import Blueprint, Flask, abort, current_app, g, redirect, request, session, url_for
from flask_babel import gettext as _
from flask_babel.speaklater import LazyString

from engine.errors import Forbidden, NotFound
from engine.policy import Actor

from .context import MUST_CHANGE_KEY, current_actor

F = TypeVar("F", bound=Callable[..., Any])
PUBLIC_ATTR = "_yicun_public"
#: Where such a user may still go (public views, e.g. the login page, stay open as for everyone).
PASSWORD_CHANGE_ENDPOINTS = frozenset({"auth.change_password", "auth.logout"})


def public(view: F) -> F:
    """Mark a view as open to everyone (the login page, citizens' pages, the health check)."""
    setattr(view, PUBLIC_ATTR, True)
    return view


def is_public(app: Flask, endpoint: str | None) -> bool:
    if endpoint is None or endpoint == "static":
        return True  # no route matched (404/405 follows), or a stylesheet
    return bool(getattr(app.view_functions.get(endpoint), PUBLIC_ATTR, False))


def is_api_request() -> bool:
    return request.path == "/api" or request.path.startswith("/api/")


def require_login() -> Any:
    if g.get("actor") is not None or is_public(current_app, request.endpoint):
        return None
    if is_api_request():
        abort(401)
    if request.method != "GET":
        return redirect(url_for("auth.login"))  # a POST cannot be replayed after logging in
    target = request.full_path.rstrip("?")
    return redirect(url_for("auth.login", next=target))


def require_password_change() -> Any:
    """Send a user who must change their password to the change-password page first (GET requests
    come back to where they were going afterwards; a POST cannot be replayed)."""
    if g.get("actor") is None or not session.get(MUST_CHANGE_KEY):
        return None
    if request.endpoint in PASSWORD_CHANGE_ENDPOINTS or is_public(current_app, request.endpoint):
        return None
    if is_api_request():
        raise Forbidden(_("请先修改密码（临时密码或被重置的密码须先改掉）。"), reason="auth.must_change_password")
    target = request.full_path.rstrip("?") if request.method == "GET" else None
    return redirect(url_for("auth.change_password", next=target))


def requires(predicate: Callable[[Actor], bool], message: str | LazyString) -> Callable[[F], F]:
    """Only actors for whom `predicate(actor)` holds (e.g. `policy.may_administer_users`); others get
    403 with `message` (a `lazy_gettext` text, read in the language of the request that is refused)."""
    def decorate(view: F) -> F:
        @wraps(view)
        def guarded(*args: Any, **kwargs: Any) -> Any:
            if not predicate(current_actor()):
                raise Forbidden(str(message), reason=f"policy.{predicate.__name__}")
            return view(*args, **kwargs)
        return cast(F, guarded)  # called exactly as the view is
    return decorate


def restrict(bp: Blueprint, predicate: Callable[[Actor], bool], message: str | LazyString) -> None:
    """Every view of `bp`, present and future, only for actors for whom `predicate(actor)` holds; others
    get 403 with `message` (runs after the login check, so anonymous users are sent to the login)."""
    def check() -> None:
        actor: Actor | None = g.get("actor")
        if actor is not None and not predicate(actor):
            raise Forbidden(str(message), reason=f"policy.{predicate.__name__}")
    bp.before_request(check)


def require_visible(allowed: bool, what: str) -> None:
    """Something outside the actor's part of the tree is 'not found' (DESIGN invariant 7), not 403:
    its existence is not disclosed. `what` names it in the reader's language (gettext)."""
    if not allowed:
        raise NotFound(_("找不到%(what)s", what=what), reason="not_visible")


def init_guards(app: Flask) -> None:
    app.before_request(require_login)
    app.before_request(require_password_change)
