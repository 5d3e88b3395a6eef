"""`yicun`: the whole case lifecycle from a shell, so operations and tests can drive the engine without
the web. Every command prints text, or JSON with ``--json``; errors go to stderr with a non-zero exit
status (each error class's `exit_code`, as the README lists them). The database comes from ``--db`` or
``YICUN_DATABASE_URL``.

Other packages add commands through the ``yicun.commands`` entry-point group (the web adds ``serve``),
so the engine never imports them.

One module per noun registers its own sub-commands (`register(sub)`); `context` holds what they share.
"""
from __future__ import annotations

import argparse
import functools
import json
import logging
import sys
from collections.abc import Sequence
from importlib.metadata import entry_points

from .. import clock, logs, settings
from ..errors import BpmnRejected, InvalidInput, YicunError
from . import calendar, cases, incidents, people, schedule, setup, tasks
from .context import Context


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="yicun", description="Yicun (益村) case engine")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.add_argument("-v", "--verbose", action="store_true",
                   help="log everything at DEBUG on stderr, SpiffWorkflow's per-task messages included")
    p.add_argument("--db", help="database URL (default: $YICUN_DATABASE_URL or sqlite:///instance/yicun.db)")
    p.add_argument("--now", dest="clock_now", metavar="ISO",
                   help="run the command at this instant (a manual clock; naive times are Asia/Shanghai)")
    sub = p.add_subparsers(dest="command", required=True)

    for noun in (setup, cases, tasks, schedule, calendar, people, incidents):
        noun.register(sub)
    for ep in entry_points(group="yicun.commands"):
        ep.load()(sub)
    return p


def _require_manual_clock() -> None:
    """`--now` runs a command at another instant: every date the engine records and every back-dating
    bound (pauses, 补录) follows it, and a sweep "in the future" fires timers early. It is for tests and
    demos, so it needs YICUN_MANUAL_CLOCK=1 in the environment; a production server never sets it."""
    if not settings.get().manual_clock:
        raise InvalidInput("--now (a manual clock) is for tests and demos: set YICUN_MANUAL_CLOCK=1 to use it; "
                           "to record something that happened earlier use --at (pause/resume) or --accepted-at",
                           reason="cli.manual_clock_off")


@functools.cache
def _parser() -> argparse.ArgumentParser:
    """The parser, built once per process: building it costs ~50 ms (argparse looks up translations for every
    sub-command), which a process running many commands (the test suite) paid on each. Parsing leaves it as
    it was (no option has a mutable default)."""
    return build_parser()


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    ctx = Context(args)
    logs.configure(logging.DEBUG if args.verbose else logging.WARNING)
    try:
        settings.get()  # every YICUN_* variable is checked before the command runs (exit 3 naming it)
        if args.clock_now or getattr(args, "now", None):
            _require_manual_clock()
        if args.clock_now:
            clock.set_clock(clock.ManualClock(args.clock_now))
        return args.func(ctx) or 0
    except YicunError as exc:
        return _refused(exc, args.json)
    except settings.SettingError as exc:  # a bad YICUN_* variable: the message names it
        return _refused(InvalidInput(str(exc), reason="cli.setting_invalid"), args.json)
    except (ValueError, OverflowError) as exc:  # e.g. a malformed or out-of-range --now
        return _refused(InvalidInput(str(exc), reason="cli.value_invalid"), args.json)


def _refused(exc: YicunError, as_json: bool) -> int:
    """Print a refusal on stderr — with --json its `to_dict()` (code, stable reason, message, parameters),
    else the message and its parameters — and return the exit status of its class (README)."""
    if as_json:
        print(json.dumps(exc.to_dict(), ensure_ascii=False, indent=2, default=str), file=sys.stderr)
    elif isinstance(exc, BpmnRejected):
        print(f"error: {exc}", file=sys.stderr)
    else:
        print(f"error: {exc}", file=sys.stderr)
        for key, value in exc.details.items():
            if isinstance(value, list):
                for item in value:
                    print(f"  {item}", file=sys.stderr)
            else:
                print(f"  {key}: {value}", file=sys.stderr)
    return exc.exit_code


if __name__ == "__main__":
    sys.exit(main())
