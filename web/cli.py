"""`yicun serve`: the web app and the timer scheduler in one process (registered as an entry point of
the `yicun.commands` group, so the engine's CLI needs no import of the web)."""
from __future__ import annotations

import argparse
import logging
from typing import Any


def register_serve(sub: Any) -> None:
    sp = sub.add_parser("serve", help="serve the web app with the timer scheduler running")
    sp.add_argument("--host", default="127.0.0.1")
    sp.add_argument("--port", type=int, default=5000)
    sp.add_argument("--sweep-seconds", type=int, default=30, help="timer sweep interval")
    sp.set_defaults(func=_serve)


def _serve(ctx: Any) -> None:
    from engine import timers

    from . import create_app

    args: argparse.Namespace = ctx.args
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    app = create_app({"DATABASE_URL": args.db} if args.db else None)
    scheduler = timers.start_scheduler(app.extensions["yicun_engine"], args.sweep_seconds)
    try:
        app.run(host=args.host, port=args.port, use_reloader=False, threaded=True)
    finally:
        scheduler.shutdown(wait=False)
