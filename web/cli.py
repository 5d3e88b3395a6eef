"""`yicun serve`: the web app (registered as an entry point of the `yicun.commands` group, so the engine's
CLI needs no import of the web).

Two ways, chosen explicitly:
- `--demo` (what `make run` uses): Flask's development server with the timer scheduler in the same
  process; creates `<instance>/secret_key` once and shows the demo logins on the login page.
- `--production`: waitress, a production WSGI server, with `--workers` worker threads; no scheduler in
  the process — run `yicun scheduler` once alongside (README, "Production serving"). Refuses to start
  without a secret key, and without a database that `yicun init` made at this code's schema
  (`db.open_existing`: `NoDatabase`, exit 8 — never an empty SQLite file created on the way).
"""
from __future__ import annotations

import argparse
import logging
import sys
from typing import Any

from .config import DEFAULT_WORKERS, MAX_WORKERS


def _workers(text: str) -> int:
    if not text.strip().isdigit() or not 1 <= int(text) <= MAX_WORKERS:
        raise argparse.ArgumentTypeError(f"--workers must be a whole number from 1 to {MAX_WORKERS}, not {text!r}")
    return int(text)


def _port(text: str) -> int:
    if not text.strip().isdigit() or not 1 <= int(text) <= 65535:
        raise argparse.ArgumentTypeError(f"--port must be a port number 1–65535, not {text!r}")
    return int(text)


def register_serve(sub: Any) -> None:
    sp = sub.add_parser("serve", help="serve the web app: --demo (development server + scheduler) or "
                                      "--production (waitress; run `yicun scheduler` alongside)")
    mode = sp.add_mutually_exclusive_group()
    mode.add_argument("--demo", action="store_true",
                      help="demo/development: Flask's server, scheduler in-process, creates instance/secret_key")
    mode.add_argument("--production", action="store_true",
                      help="waitress with --workers threads; needs YICUN_SECRET_KEY or instance/secret_key")
    sp.add_argument("--host", default="127.0.0.1")
    sp.add_argument("--port", type=_port, default=5000)
    sp.add_argument("--workers", type=_workers, default=None,
                    help=f"worker threads for --production (default $YICUN_WEB_WORKERS or {DEFAULT_WORKERS})")
    sp.add_argument("--sweep-seconds", type=int, default=30, help="timer sweep interval (--demo)")
    sp.set_defaults(func=_serve)


def _serve(ctx: Any) -> int:
    from engine import logs

    from .config import ConfigError, WebSettings

    args: argparse.Namespace = ctx.args
    logs.configure(logs.service_level(args.verbose))
    try:
        web_settings = WebSettings.from_env()
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    demo = args.demo or (not args.production and web_settings.demo)
    if not demo and not args.production:
        print("error: say how to serve: `yicun serve --production` (waitress; run `yicun scheduler` once "
              "alongside) or `yicun serve --demo` (development server, as `make run` does)", file=sys.stderr)
        return 2
    try:
        workers = args.workers or web_settings.workers
        app = _app(args.db, demo)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if demo:
        _serve_demo(app, args)
    else:
        _serve_production(app, args.host, args.port, workers)
    return 0


def _app(database_url: str | None, demo: bool) -> Any:
    """The app on the database. Outside demo mode the database must exist at this code's schema
    (`NoDatabase`, exit 8, says to run `yicun init`); demo mode opens it as before (`make run` has just
    run `yicun init --demo`)."""
    from engine import db

    from . import create_app
    config: dict[str, Any] = {"DEMO": demo}
    if database_url:
        config["DATABASE_URL"] = database_url
    if demo:
        return create_app(config)
    engine = db.open_existing(database_url)
    try:
        return create_app(config, engine=engine)
    except BaseException:
        engine.dispose()
        raise


def _serve_demo(app: Any, args: argparse.Namespace) -> None:
    from engine import timers
    scheduler = timers.start_scheduler(app.extensions["yicun_engine"], args.sweep_seconds)
    try:
        app.run(host=args.host, port=args.port, use_reloader=False, threaded=True)
    finally:
        scheduler.shutdown(wait=False)


def _serve_production(app: Any, host: str, port: int, workers: int) -> None:
    import waitress
    logging.getLogger(__name__).info("serving on http://%s:%d with %d worker threads (waitress); the timer "
                                     "scheduler is not in this process: run `yicun scheduler` once", host, port,
                                     workers)
    waitress.serve(app, host=host, port=port, threads=workers, ident="yicun",
                   max_request_body_size=app.config["MAX_CONTENT_LENGTH"], channel_timeout=60)
