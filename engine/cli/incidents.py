"""`yicun incidents …`: failures of the sweep and jobs, listed, shown, retried and resolved."""
from __future__ import annotations

import argparse
from typing import Any

from .. import db
from .context import Context, bounded


def register(sub: Any) -> None:
    """Add this noun's sub-commands to `yicun`'s parser."""
    inc = sub.add_parser("incidents", help="failures of the sweep and jobs: one failure stays one failure") \
        .add_subparsers(dest="incident_cmd", required=True)
    sp = inc.add_parser("list", help="incidents (a supervisor sees those of their subtree)")
    sp.add_argument("--status", default="open", choices=("open", "resolved", "all"))
    sp.add_argument("--limit", type=bounded(1, 10_000, "--limit"), default=200)
    sp.add_argument("--as", dest="as_user")
    sp.set_defaults(func=cmd_incidents_list)
    for name, command, helptext in (("show", cmd_incidents_show, "one incident, with the timers parked behind it"),
                                    ("retry", cmd_incidents_retry, "clear the backoff: the next sweep tries again"),
                                    ("resolve", cmd_incidents_resolve, "close it with a note; parked work resumes")):
        sp = inc.add_parser(name, help=helptext)
        sp.add_argument("id", type=bounded(1, 2**31 - 1, "an id"))
        sp.add_argument("--as", dest="as_user")
        if name == "resolve":
            sp.add_argument("--note", required=True, help="what was done about it")
        sp.set_defaults(func=command)
    for sp in inc.choices.values():  # `yicun incidents list --json` as well as `yicun --json incidents list`
        sp.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help="print JSON")


def _incident_text(i: dict[str, Any]) -> str:
    where = f"case {i['case_number']}" if i["case_number"] else f"unit {i['unit'] or '-'}"
    head = (f"#{i['id']:<5} {i['status']:<8} {i['kind']:<11} {where} {i['element'] or '-'}: "
            f"{i['error_type']}: {i['error_message'].splitlines()[0] if i['error_message'] else ''}")
    if i["status"] == "open":
        return head + f"\n       since {i['first_at']}, last {i['last_at']}, {i['retry_count']} retries failed, " \
                      f"next retry {i['next_retry_at'] or '-'}"
    return head + f"\n       resolved {i['resolved_at']} by {i['resolved_by'] or 'the system'}: {i['resolved_note']}"


def _incident_detail_text(i: dict[str, Any]) -> str:
    lines = [_incident_text(i), f"  error: {i['error_message']}"]
    lines += [f"  timer {t['bpmn_id']} {t['state']} due {t['due_at']}" for t in i.get("parked_timers", [])]
    return "\n".join(lines)


def cmd_incidents_list(ctx: Context) -> None:
    from .. import incidents
    with db.read(ctx.engine) as s:
        rows = incidents.list_incidents(s, ctx.actor(s, required=False), ctx.args.status, limit=ctx.args.limit)
    ctx.emit(rows, lambda rs: "\n".join(_incident_text(r) for r in rs) or "no incidents")


def cmd_incidents_show(ctx: Context) -> None:
    from .. import incidents
    with db.read(ctx.engine) as s:
        row = incidents.show(s, ctx.args.id, ctx.actor(s, required=False))
    ctx.emit(row, _incident_detail_text)


def cmd_incidents_retry(ctx: Context) -> None:
    from .. import incidents
    with db.transaction(ctx.engine) as s:
        row = incidents.retry(s, ctx.args.id, ctx.actor(s, required=False))
    ctx.emit(row, lambda i: f"incident {i['id']}: will be retried by the next sweep (from {i['next_retry_at']})")


def cmd_incidents_resolve(ctx: Context) -> None:
    from .. import incidents
    with db.transaction(ctx.engine) as s:
        row = incidents.resolve(s, ctx.args.id, ctx.actor(s, required=False), ctx.args.note)
    ctx.emit(row, lambda i: f"incident {i['id']}: resolved")
