"""Yicun web: Flask application factory and blueprints. Talks to the engine's services only; never to
SpiffWorkflow."""
from __future__ import annotations

import os
from datetime import datetime, time, timedelta
import secrets
from typing import Any

from flask import Flask, g, jsonify, render_template, request

from engine import db
from engine.errors import YicunError


def create_app(config: dict[str, Any] | None = None) -> Flask:
    app = Flask(__name__, instance_relative_config=False)
    app.config.update(
        DATABASE_URL=db.database_url(),
        SECRET_KEY=os.environ.get("YICUN_SECRET_KEY") or secrets.token_hex(32),
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
    )
    app.config.update(config or {})
    app.json.ensure_ascii = False  # Chinese names stay readable in the JSON API
    app.extensions["yicun_engine"] = db.make_engine(app.config["DATABASE_URL"])

    from . import auth, views
    app.register_blueprint(auth.bp)
    app.register_blueprint(views.bp)

    @app.errorhandler(YicunError)
    def _engine_error(exc: YicunError) -> Any:
        if request.path.startswith("/api/") or request.accept_mimetypes.best == "application/json":
            return jsonify(exc.to_dict()), exc.http_status
        return render_template("error.html", error=exc), exc.http_status

    @app.template_filter("when")
    def _when(value: str | None) -> str:
        """'2026-12-01T15:06:15+08:00' (Asia/Shanghai, from the engine) → '2026-12-01 15:06'; a deadline
        at midnight is shown as 24:00 of its due date, the way limits are stated (…日24时)."""
        if not value:
            return "—"
        instant = datetime.fromisoformat(value)
        if instant.time() == time(0):
            return (instant - timedelta(days=1)).strftime("%Y-%m-%d") + " 24:00"
        return instant.strftime("%Y-%m-%d %H:%M")

    @app.teardown_appcontext
    def _drop_user(_exc: BaseException | None) -> None:
        g.pop("user", None)

    return app
