"""`yicun timers`, `service-day`, `notifications`, `scheduler`: what runs on the clock (`calendar` is
engine/cli/calendar.py)."""
from __future__ import annotations

import sys
from typing import Any

from .. import cases, clock, db, logs, queries, service_day, timers
from .context import Context, bounded, date_arg


def register(sub: Any) -> None:
    """Add this noun's sub-commands to `yicun`'s parser."""
    tm = sub.add_parser("timers", help="timers").add_subparsers(dest="timer_cmd", required=True)
    sp = tm.add_parser("sweep", help="fire every due timer once")
    sp.add_argument("--now", help="sweep as of this instant")
    sp.set_defaults(func=cmd_timers_sweep)

    sd = sub.add_parser("service-day", help="便民集中服务日 digests").add_subparsers(dest="sd_cmd", required=True)
    sp = sd.add_parser("run", help="store the digests of today's (or --date's) service day")
    sp.add_argument("--date", help="YYYY-MM-DD")
    sp.add_argument("--force", action="store_true", help="even if the date is not the service day")
    sp.set_defaults(func=cmd_service_day_run)
    sp = sd.add_parser("show", help="a unit's digest (a county's or the city's: a summary of the units below)")
    sp.add_argument("--unit", required=True, help="unit code")
    sp.add_argument("--date", help="YYYY-MM-DD (default: the latest)")
    sp.set_defaults(func=cmd_service_day_show)

    sp = sub.add_parser("notifications", help="a user's in-app notifications (cards)")
    sp.add_argument("--as", dest="as_user", required=True)
    sp.add_argument("--unread", action="store_true")
    sp.add_argument("--mark-read", action="store_true", help="mark them read after listing")
    sp.set_defaults(func=cmd_notifications)

    sp = sub.add_parser("scheduler", help="run the timer sweep and the service-day job without the web")
    sp.add_argument("--sweep-seconds", type=bounded(1, 86_400, "--sweep-seconds"), default=30)
    sp.set_defaults(func=cmd_scheduler)


def cmd_timers_sweep(ctx: Context) -> None:
    now = clock.to_utc(ctx.args.now) if ctx.args.now else None
    report = timers.sweep(ctx.engine, now)
    ctx.emit(report.to_dict(), lambda r: f"fired {r['fired']} timer(s) in {r['cases']} case(s); "
                                         f"{r['cards']} card(s) issued"
             + "".join(f"\n  case {f['case_id']} failed ({f['kind']}): {f['error']}"
                       + (f" — incident {f['incident_id']} (yicun incidents show {f['incident_id']})"
                          if f.get("incident_id") else "") for f in r["failed"]))


def cmd_service_day_run(ctx: Context) -> None:
    day = date_arg(ctx.args.date, "--date")
    out = service_day.run(ctx.engine, day, force=ctx.args.force)
    ctx.emit(out, lambda o: f"{o['date']}: " + (f"{o['digests']} digests stored" if o["service_day"]
                                                else "not a service day (use --force)"))


def cmd_service_day_show(ctx: Context) -> None:
    day = date_arg(ctx.args.date, "--date")
    with db.read(ctx.engine) as s:
        d = service_day.get_digest(s, ctx.args.unit, day)
    if d.get("kind") == "summary":
        ctx.emit(d, _summary_text)
        return
    ctx.emit(d, lambda d: "\n".join(
        [f"{d['unit']['name']} 便民集中服务日 {d['service_date']}: overdue {d['counts']['overdue']}, "
         f"due soon {d['counts']['due_soon']}, paused {d['counts']['paused']}"]
        + [f"  {k:<8} {e['number']} {e['service_code']} {e['applicant_name']} ({e['village']}) {e['reason']} "
           f"{e.get('due_at') or ''}"
           for k in ("overdue", "due_soon", "paused") for e in d[k]]))


def _summary_text(d: dict[str, Any]) -> str:
    """A county's or the city's digest: a line per unit below, then the longest-overdue cases."""
    def line(name: str, c: dict[str, Any]) -> str:
        rate = "-" if c["on_time_rate"] is None else f"{c['on_time_rate'] * 100:.1f}%"
        return (f"  {name:<10} open {c['open']}, due soon {c['due_soon']}, overdue {c['overdue']}, paused "
                f"{c['paused']}, completed in {d['month']} {c['completed']} (on time {rate})")
    head = (f"{d['unit']['name']} 便民集中服务日 {d['service_date']}: overdue {d['counts']['overdue']}, "
            f"due soon {d['counts']['due_soon']}, paused {d['counts']['paused']}")
    return "\n".join([head, *(line(c["name"], c) for c in d["children"]), line("total", d["totals"])]
                     + [f"  overdue  {e['number']} {e['service_code']} {e['applicant_name']} ({e['unit']} "
                        f"{e['village']}) due {e['due_at']}, {e['days_overdue']} working days late"
                        for e in d["most_overdue"]])


def cmd_notifications(ctx: Context) -> None:
    with db.transaction(ctx.engine, write=ctx.args.mark_read) as s:
        user = ctx.actor(s)
        rows = queries.to_json(queries.list_notifications(s, user, unread_only=ctx.args.unread))
        if ctx.args.mark_read:
            cases.mark_read(s, user, clock.now())
    ctx.emit(rows, lambda rs: "\n".join(f"{r['created_at']} {'  ' if r['read'] else '* '}{r['message']}"
                                        for r in rs) or "no notifications")


def cmd_scheduler(ctx: Context) -> None:
    logs.configure(logs.service_level(ctx.args.verbose))
    print(f"timer sweep every {ctx.args.sweep_seconds}s and the daily service-day job; Ctrl-C stops",
          file=sys.stderr)
    try:
        timers.start_scheduler(ctx.engine, ctx.args.sweep_seconds, blocking=True)
    except (KeyboardInterrupt, SystemExit):
        pass
