"""Yicun web: the Flask application factory. Pages by audience (auth, workbench, supervise, design, admin,
public), JSON by noun under /api/v1. Talks to the engine's services only; never to SpiffWorkflow.

Every request passes, in this order: proxy headers → origin check and CSRF token (unsafe methods) →
`g.actor` from the session cookie (web.context) → deny by default (web.guards) → the view → static files'
cache headers, then compression (web.assets) → security headers (web.headers). Errors become pages or
JSON (web.errors) in the user's language: Chinese by default, English by choice (web.i18n, Flask-Babel).
"""
from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any

from flask import Flask
from sqlalchemy import Engine

from engine import db
from engine import settings as engine_settings

from .config import ConfigError, WebSettings, limit_request_body, max_content_length, missing_key_message, secret_key

#: A form's CSRF token stays valid for a working day (a clerk may leave a form open for hours).
CSRF_TIME_LIMIT = 12 * 3600


def create_app(config: dict[str, Any] | None = None, engine: Engine | None = None) -> Flask:
    """The app. `config` overrides settings (tests); besides Flask's keys it takes DEMO (bool),
    INSTANCE_DIR (path) and DATABASE_URL. `engine`: a database already opened (and checked, by
    `db.open_existing`) — what `yicun serve` passes; without it one is made for DATABASE_URL. Outside
    demo mode and tests, a missing secret key is a `ConfigError` — the server refuses to start rather
    than sign cookies with a throwaway key."""
    overrides = dict(config or {})
    settings = WebSettings.from_env()
    demo = bool(overrides.pop("DEMO", settings.demo))
    instance_dir = Path(overrides.pop("INSTANCE_DIR", None) or settings.instance_dir).absolute()
    key = overrides.pop("SECRET_KEY", None) or secret_key(settings, instance_dir, create=demo)
    if not key:
        if not overrides.get("TESTING"):
            raise ConfigError(missing_key_message(instance_dir))
        key = secrets.token_hex(32)  # a test app that did not ask for a key: throwaway is what it wants

    app = Flask(__name__, instance_path=str(instance_dir))
    app.config.update(
        DATABASE_URL=db.database_url(),
        REPORTS_DATABASE_URL=engine_settings.get().reports_database_url,  # a read replica for the reports
        SECRET_KEY=key,
        YICUN_DEMO=demo,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=settings.secure_cookies,
        PREFERRED_URL_SCHEME="https" if settings.secure_cookies else "http",
        MAX_CONTENT_LENGTH=max_content_length(),  # an attachment with its form (web.config)
        WTF_CSRF_TIME_LIMIT=CSRF_TIME_LIMIT,
    )
    if engine is not None:
        app.config["DATABASE_URL"] = engine.url.render_as_string(hide_password=False)
    app.config.update(overrides)
    app.json.ensure_ascii = False  # type: ignore[attr-defined]  # Chinese stays readable in the JSON API
    app.extensions["yicun_engine"] = engine if engine is not None else db.make_engine(app.config["DATABASE_URL"])

    from .assets import init_assets
    from .context import init_context
    from .errors import init_errors
    from .extensions import init_extensions
    from .filters import init_filters
    from .guards import init_guards
    from .headers import init_headers
    from .i18n import init_i18n

    app.before_request(limit_request_body)     # body limits first: the CSRF check reads the form
    init_extensions(app, settings.proxy_hops)  # origin + CSRF checks run first
    init_context(app)                          # then g.actor
    init_guards(app)                           # then deny by default
    init_headers(app)
    init_assets(app)                           # fingerprinted static URLs, their caching, compression
    init_errors(app)
    init_filters(app)
    init_i18n(app)                             # the language switch and <html lang>
    _register_blueprints(app)
    return app


def _register_blueprints(app: Flask) -> None:
    from . import admin, api, auth, design, public, supervise, workbench
    for module in (auth, workbench, supervise, design, admin, public):
        app.register_blueprint(module.bp)
    api.register(app)
