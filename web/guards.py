"""Deny by default: every view needs a logged-in, active user unless it is marked `@public`.

The check runs before every request (not as a decorator each view must remember), so a new view that
forgets about access is closed, not open. Role rules are the engine's predicates (`engine.policy`):
the web only consults them, the engine enforces them again in its services.
"""
from __future__ import annotations

from functools import wraps
from typing import Any, Callable, TypeVar

from flask import Flask, abort, current_app, g, redirect, request, url_for

from engine.errors import Forbidden, NotFound
from engine.policy import Actor

from .context import current_actor

F = TypeVar("F", bound=Callable[..., Any])
PUBLIC_ATTR = "_yicun_public"


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


def requires(predicate: Callable[[Actor], bool], message: str) -> Callable[[F], F]:
    """Only actors for whom `predicate(actor)` holds (e.g. `policy.may_administer_users`); others get
    403 with `message`."""
    def decorate(view: F) -> F:
        @wraps(view)
        def guarded(*args: Any, **kwargs: Any) -> Any:
            if not predicate(current_actor()):
                raise Forbidden(message, reason=f"policy.{predicate.__name__}")
            return view(*args, **kwargs)
        return guarded  # type: ignore[return-value]
    return decorate


def require_visible(allowed: bool, what: str) -> None:
    """Something outside the actor's part of the tree is 'not found' (DESIGN invariant 7), not 403:
    its existence is not disclosed."""
    if not allowed:
        raise NotFound(f"找不到{what}", reason="not_visible")


def init_guards(app: Flask) -> None:
    app.before_request(require_login)
