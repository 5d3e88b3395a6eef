"""Per-request context: `g.actor`, loaded once from the session cookie before any view runs.

The cookie holds the user id and when the password it logged in with was set. Each request turns them
into an `engine.policy.Actor` with one query; a user removed or disabled since logging in, or whose
password was reset or changed since, gets None and their session is cleared here, so no view (and no
engine call) ever runs for an account that no longer may act.
"""
from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Any

from flask import Flask, current_app, g, request, session
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from engine import db, orgs, policy
from engine.policy import Actor

#: Session key set at login when `accounts.login` says the password must be changed first (web.guards
#: then allows only the change-password page and logout; that page removes it).
MUST_CHANGE_KEY = "must_change_password"
#: Session key holding the login's `orgs.credential_stamp`: a password reset or change ends other sessions.
STAMP_KEY = "stamp"


def engine() -> Engine:
    return current_app.extensions["yicun_engine"]


def read() -> AbstractContextManager[Session]:
    """A read-only unit of work on the app's database."""
    return db.read(engine())


def write() -> AbstractContextManager[Session]:
    """One transaction: commit on success, roll back on any error (one verb = one engine call in it)."""
    return db.transaction(engine())


def load_actor() -> None:
    g.actor = None
    if request.endpoint == "static":
        return  # stylesheets need no database round trip
    uid = session.get("uid")
    if uid is None:
        return
    if not isinstance(uid, int) or isinstance(uid, bool):
        session.clear()
        return
    stamp = session.get(STAMP_KEY)
    with read() as s:
        actor = orgs.actor_by_id(s, uid, stamp if isinstance(stamp, str) else "-")
    if actor is None:  # gone, disabled, or its password was reset or changed elsewhere since this login
        session.clear()
    g.actor = actor


def current_actor() -> Actor:
    """The logged-in actor of a guarded view (the guard has already sent everyone else to the login)."""
    actor: Actor | None = g.get("actor")
    if actor is None:
        raise RuntimeError("current_actor() in a view without a logged-in user (is the view marked public?)")
    return actor


def unit_code(actor: Actor) -> str:
    """The code of the actor's own unit: the last element of its path (/4309/430902/…/CODE/)."""
    return actor.unit_path.strip("/").rsplit("/", 1)[-1]


def template_context() -> dict[str, Any]:
    """What every template sees: the actor, whether they must change their password first (the header
    then offers nothing else), and the policy module to consult for showing links."""
    return {"actor": g.get("actor"), "policy": policy, "must_change": bool(session.get(MUST_CHANGE_KEY))}


def init_context(app: Flask) -> None:
    app.before_request(load_actor)
    app.context_processor(template_context)
