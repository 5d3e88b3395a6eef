"""`yicun calendar …`: the working-day calendar — a due date, the years it knows, publishing a year's
State Council holiday schedule (the same checks, audit and recount as /admin/calendar)."""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import yaml

from .. import calendar_admin, clock, db, workdays
from ..errors import InvalidInput, YicunError
from .context import Context, bounded, date_arg

#: the largest schedule file read (a real one is about 1 kB)
FILE_MAX = 64 * 1024


def register(sub: Any) -> None:
    """Add this noun's sub-commands to `yicun`'s parser."""
    cal = sub.add_parser("calendar", help="the working-day calendar").add_subparsers(dest="cal_cmd", required=True)
    sp = cal.add_parser("due", help="the due date of a limit in working days")
    sp.add_argument("--from", dest="from_date", required=True, metavar="DATE", help="acceptance date YYYY-MM-DD")
    sp.add_argument("--workdays", type=bounded(0, 3650, "--workdays"), required=True)
    sp.set_defaults(func=cmd_calendar_due)

    sp = cal.add_parser("years", help="which years the calendar knows, and from where")
    sp.add_argument("--all", dest="everything", action="store_true", help="every year chinese-calendar holds too")
    sp.set_defaults(func=cmd_calendar_years)

    sp = cal.add_parser("show", help="a year's holiday schedule, one period a line")
    sp.add_argument("year", type=bounded(1900, 2200, "the year"))
    sp.set_defaults(func=cmd_calendar_show)

    sp = cal.add_parser("publish", help="publish a year's State Council holiday schedule; its estimated dues "
                                        "are counted again")
    sp.add_argument("year", type=bounded(1900, 2200, "the year"))
    sp.add_argument("--file", required=True, help="YAML: `days:` a list of lines such as "
                                                  "'2027-02-06~2027-02-13 春节', '2027-02-14 调休上班'")
    sp.add_argument("--source", help="the notice it comes from (国办发明电〔2026〕N号); or `source:` in the file")
    sp.add_argument("--correction", action="store_true",
                    help="replace a year already known (chinese-calendar, calendar.yaml or published before)")
    sp.add_argument("--as", dest="as_user", help="an admin (default: the server's operator)")
    sp.set_defaults(func=cmd_calendar_publish)

    sp = cal.add_parser("recompute", help="count again the dues of the open cases that count days of YEAR "
                                          "(idempotent; what a publication started and did not finish)")
    sp.add_argument("year", type=bounded(1900, 2200, "the year"))
    sp.add_argument("--limit", type=bounded(1, 10_000_000, "--limit"), help="at most this many cases")
    sp.add_argument("--after", type=bounded(0, 2**62, "--after"), default=0, help="only cases with a larger id")
    sp.add_argument("--as", dest="as_user", help="an admin (default: the server's operator)")
    sp.set_defaults(func=cmd_calendar_recompute)
    for p in cal.choices.values():  # `yicun calendar years --json` as well as `yicun --json calendar years`
        p.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help="print JSON")


def cmd_calendar_due(ctx: Context) -> None:
    """The due date on the calendar the engine counts with: the database's published years too when the
    database can be opened, else chinese-calendar and calendar.yaml (and it says so)."""
    start = date_arg(ctx.args.from_date, "--from")
    try:
        engine = ctx.engine
    except YicunError:  # no database (yet): the file's calendar
        engine = None
    if engine is not None:
        with workdays.using_database(engine) as cal:
            due = cal.add_workdays(start, ctx.args.workdays)
    else:
        due = workdays.default_calendar().add_workdays(start, ctx.args.workdays)
    out = {"from": start.isoformat(), "workdays": ctx.args.workdays, "due_date": due.date.isoformat(),
           "ends_at": due.end_instant.isoformat(), "estimated": due.estimated}
    ctx.emit(out, lambda o: f"{o['workdays']} working days after {o['from']}: {o['due_date']} (ends {o['ends_at']})"
             + ("  ESTIMATED — the calendar does not know that year; counted Monday–Friday" if o["estimated"] else "")
             + ("" if engine is not None else "  (no database: schedules published in Yicun not read)"))


def _year_row(y: calendar_admin.YearInfo) -> dict[str, Any]:
    return {"year": y.year, "source": y.source, "complete": y.complete, "holidays": y.holidays,
            "workdays": y.workdays, "document": y.document, "published_by": y.published_by,
            "published_at": clock.local(y.published_at).isoformat(timespec="minutes") if y.published_at else None,
            "overrides": y.overrides}


def _year_text(r: dict[str, Any]) -> str:
    if not r["complete"]:
        return f"{r['year']}  unknown — counted Monday–Friday, dues ESTIMATED (yicun calendar publish {r['year']})"
    line = f"{r['year']}  {r['source']:<16} {r['holidays']:>3} days off, {r['workdays']} make-up working days"
    if r["source"] == "yicun":
        line += f"  {r['document']} — {r['published_by'] or 'operator'}, {r['published_at']}"
        if r["overrides"]:
            line += f" (corrects {r['overrides']})"
    return line


def cmd_calendar_years(ctx: Context) -> None:
    with db.read(ctx.engine) as s:
        rows = [_year_row(y) for y in calendar_admin.known_years(s, everything=ctx.args.everything)]
    ctx.emit(rows, lambda rs: "\n".join(_year_text(r) for r in rs))


def cmd_calendar_show(ctx: Context) -> None:
    with db.read(ctx.engine) as s:
        periods = calendar_admin.year_schedule(s, ctx.args.year)
    rows = [{"first": p.first.isoformat(), "last": p.last.isoformat(), "kind": p.kind, "name": p.name}
            for p in periods]
    ctx.emit(rows, lambda rs: "\n".join(f"{p.text()}{'  (worked)' if p.kind == 'workday' else ''}"
                                        for p in periods) or f"{ctx.args.year}: not known")


def _read_file(path: str) -> tuple[calendar_admin.Schedule, str | None]:
    """The schedule file: YAML with `days:` (lines as typed in the browser) and an optional `source:`."""
    file = Path(path)
    try:
        if file.stat().st_size > FILE_MAX:
            raise InvalidInput(f"{path} is larger than {FILE_MAX} bytes", reason="cli.calendar_file_invalid")
        data = yaml.safe_load(file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"cannot read {path}: {exc}", reason="cli.file_unreadable") from None
    except yaml.YAMLError as exc:
        raise InvalidInput(f"{path} is not YAML: {str(exc).splitlines()[0]}",
                           reason="cli.calendar_file_invalid") from None
    days = data.get("days") if isinstance(data, dict) else data
    if not isinstance(days, list) or not all(isinstance(d, str) for d in days):
        raise InvalidInput(f"{path}: `days` must be a list of lines such as '2027-02-06~2027-02-13 春节'",
                           reason="cli.calendar_file_invalid")
    source = data.get("source") if isinstance(data, dict) else None
    return calendar_admin.parse_schedule("\n".join(days)), source if isinstance(source, str) else None


def _report_text(r: dict[str, Any]) -> str:
    text = f"{r['checked']} open case(s) looked at, {r['changed']} changed, {r['still_estimated']} still estimated"
    text += "".join(f"\n  case {f['case']} failed: {f['error']}" for f in r["failed"])
    if r["next_after"] is not None:
        text += f"\n  more to do: yicun calendar recompute {r['year']} --after {r['next_after']}"
    return text


def cmd_calendar_publish(ctx: Context) -> None:
    a = ctx.args
    schedule, file_source = _read_file(a.file)
    with db.read(ctx.engine) as s:
        actor = ctx.actor(s, required=False)
    checked, report = calendar_admin.publish(ctx.engine, actor, a.year, schedule, a.source or file_source,
                                             correction=a.correction, recompute_limit=None)
    out = {"year": checked.year, "source": checked.source, "correction": checked.correction,
           "holidays": checked.holidays, "workdays": checked.workdays,
           "periods": [p.text() for p in checked.periods], "recompute": report.to_dict()}
    ctx.emit(out, lambda o: f"published {o['year']} ({o['source']}{', a correction' if o['correction'] else ''}): "
                            f"{o['holidays']} days off, {o['workdays']} make-up working days\n"
                            + _report_text(o["recompute"]))


def cmd_calendar_recompute(ctx: Context) -> None:
    with db.read(ctx.engine) as s:
        actor = ctx.actor(s, required=False)
    report = calendar_admin.recompute_year(ctx.engine, actor, ctx.args.year, after_id=ctx.args.after,
                                           limit=ctx.args.limit)
    ctx.emit(report.to_dict(), _report_text)
