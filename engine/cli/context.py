"""What every command shares: the parsed arguments with the database and the acting user, output as
text or JSON, and the argument parsers for JSON, dates, instants and bounded numbers."""
from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from typing import Any

from sqlalchemy import Engine

from .. import accounts, cases, clock, db, orgs
from ..errors import InvalidInput, UsageError
from ..policy import Actor


class Context:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self._engine: Engine | None = None

    @property
    def engine(self) -> Engine:
        """The database: for every command but `init` one that exists at this code's schema, else the
        command stops with `NoDatabase` (exit 8) before anything — not even an empty file — is created."""
        if self._engine is None:
            if getattr(self.args, "creates_database", False):
                self._engine = db.make_engine(self.args.db)
            else:
                self._engine = db.open_existing(self.args.db)
        return self._engine

    def actor(self, session: Any, required: bool = True) -> Actor:
        """`--as USER`, or — where a command may be run by the server's operator — `Actor.operator()`.
        A command that needs a person (accepting, completing, approving) refuses without --as."""
        name = getattr(self.args, "as_user", None)
        if not name:
            if required:
                raise UsageError("this command needs --as USER (who is acting)", reason="cli.as_required")
            return Actor.operator()
        return orgs.actor_by_name(session, name)

    def emit(self, value: Any, text: Callable[[Any], str] | str | None = None) -> None:
        if self.args.json:
            print(json.dumps(value, ensure_ascii=False, indent=2, default=str))
        elif callable(text):
            print(text(value))
        elif text is not None:
            print(text)
        else:
            print(json.dumps(value, ensure_ascii=False, indent=2, default=str))


MAX_DATA_ARG = 256 * 1024


def json_arg(text: str | None) -> dict[str, Any] | None:
    if text is None:
        return None
    if len(text) > MAX_DATA_ARG:
        raise InvalidInput(f"--data is longer than {MAX_DATA_ARG} characters", reason="cli.data_too_long",
                           limit=MAX_DATA_ARG)
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidInput(f"--data is not valid JSON: {exc}", reason="cli.data_not_json") from None
    except RecursionError:
        raise InvalidInput("--data is nested too deeply", reason="cli.data_too_deep") from None
    if not isinstance(value, dict):
        raise InvalidInput("--data must be a JSON object", reason="cli.data_not_object")
    return value


def date_arg(text: str | None, option: str) -> Any:
    """A calendar date typed by the operator: YYYY-MM-DD within the years the engine handles."""
    from datetime import date
    if text is None:
        return None
    try:
        day = date.fromisoformat(text.strip())
    except ValueError:
        raise InvalidInput(f"{option} must be a date YYYY-MM-DD, not {text!r}", reason="cli.date_invalid",
                           option=option) from None
    if not clock.FIRST_YEAR <= day.year <= clock.LAST_YEAR:
        raise InvalidInput(f"{option} must lie between {clock.FIRST_YEAR} and {clock.LAST_YEAR}",
                           reason="cli.date_out_of_range", option=option)
    return day


def step_dict(result: cases.StepResult) -> dict[str, Any]:
    return dict(result.__dict__)


def step_text(r: dict[str, Any]) -> str:
    lines = [f"case {r['case_number']}: {r['status']}" + (f" ({r['outcome']})" if r.get("outcome") else "")]
    if r["opened_tasks"]:
        lines.append(f"  opened task(s): {', '.join(map(str, r['opened_tasks']))}")
    if r["fired_timers"]:
        lines.append(f"  timers fired: {', '.join(r['fired_timers'])}")
    return "\n".join(lines)


def instant_arg(text: str | None) -> Any:
    return clock.to_utc(text) if text else None


def bounded(low: int, high: int, what: str) -> Callable[[str], int]:
    """An argparse type: a whole number from `low` to `high` (ids fit the database's integer columns), or a
    usage error (exit 2) naming the range — never a driver error from a number the database cannot hold."""
    def parse(text: str) -> int:
        if not text.strip().lstrip("+-").isdigit() or not text.strip().isascii() or len(text) > 20:
            raise argparse.ArgumentTypeError(f"{what} must be a whole number, not {text[:30]!r}")
        value = int(text)
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{what} must be from {low} to {high:,}, not {value}")
        return value
    return parse


def password_stdin() -> str:
    """One line of standard input (`echo "$PW" | yicun users add … --password-stdin`): a password never
    belongs on the command line, where `ps` and the shell history see it."""
    line = sys.stdin.readline(accounts.PASSWORD_MAX + 2)
    password = line.rstrip("\r\n")
    if not password:
        raise InvalidInput("标准输入中没有密码 / no password on standard input", reason="password.required")
    return password
