"""`yicun case …`: accepting, showing, listing, pausing, resuming, extending and withdrawing cases."""
from __future__ import annotations

from typing import Any

from .. import cases, clock, db, queries
from .context import Context, bounded, instant_arg, json_arg, step_dict, step_text


def register(sub: Any) -> None:
    """Add this noun's sub-commands to `yicun`'s parser."""
    case = sub.add_parser("case", help="cases").add_subparsers(dest="case_cmd", required=True)
    sp = case.add_parser("start", help="accept an application")
    sp.add_argument("--service", required=True)
    sp.add_argument("--village", required=True, help="village code")
    sp.add_argument("--applicant", required=True)
    sp.add_argument("--as", dest="as_user", required=True)
    sp.add_argument("--data", help="intake data as a JSON object")
    sp.add_argument("--accepted-at", metavar="ISO",
                    help="when the application was really accepted (补录 of an offline intake); "
                         "deadlines count from it")
    sp.set_defaults(func=cmd_case_start)
    sp = case.add_parser("show")
    sp.add_argument("number")
    sp.add_argument("--as", dest="as_user")
    sp.set_defaults(func=cmd_case_show)
    sp = case.add_parser("list")
    sp.add_argument("--status", default="open", choices=("open", "completed", "rejected", "withdrawn", "all"))
    sp.add_argument("--limit", type=bounded(1, 10_000, "--limit"), default=100)
    sp.add_argument("--as", dest="as_user")
    sp.set_defaults(func=cmd_case_list)
    sp = case.add_parser("pause", help="stop the clock (补正, 特别程序, 公示)")
    sp.add_argument("number")
    sp.add_argument("--reason", required=True)
    sp.add_argument("--kind", default="supplement", choices=sorted(cases.PAUSE_KINDS))
    sp.add_argument("--at", metavar="ISO", help="when the pause began (default: now)")
    sp.add_argument("--as", dest="as_user")
    sp.set_defaults(func=cmd_case_pause)
    sp = case.add_parser("resume", help="restart the clock")
    sp.add_argument("number")
    sp.add_argument("--at", metavar="ISO", help="when the clock restarted (default: now)")
    sp.add_argument("--as", dest="as_user")
    sp.set_defaults(func=cmd_case_resume)
    sp = case.add_parser("extend", help="延期: once, capped, before the due date, by an officer of the approving level")
    sp.add_argument("number")
    sp.add_argument("--workdays", type=bounded(0, 3650, "--workdays"), required=True)
    sp.add_argument("--reason", required=True)
    sp.add_argument("--as", dest="as_user", required=True)
    sp.set_defaults(func=cmd_case_extend)
    sp = case.add_parser("withdraw")
    sp.add_argument("number")
    sp.add_argument("--reason", required=True)
    sp.add_argument("--as", dest="as_user", required=True)
    sp.set_defaults(func=cmd_case_withdraw)


def cmd_case_start(ctx: Context) -> None:
    a = ctx.args
    with db.transaction(ctx.engine) as s:
        r = cases.start_case(s, service_code=a.service, village_code=a.village, applicant_name=a.applicant,
                             actor=ctx.actor(s), data=json_arg(a.data),
                             accepted_at=clock.to_utc(a.accepted_at) if a.accepted_at else None)
    ctx.emit(step_dict(r), step_text)


def cmd_case_show(ctx: Context) -> None:
    with db.read(ctx.engine) as s:
        detail = queries.case_detail(s, ctx.args.number, ctx.actor(s, required=False)).to_json()
    ctx.emit(detail, _case_text)


def _case_text(d: dict[str, Any]) -> str:
    lines = [f"{d['number']}  {d['process']['name']} ({d['service_code']} v{d['process']['version']})",
             f"  applicant {d['applicant_name']}, {d['county']} {d['township']} {d['village']}; "
             f"first clerk {d['first_clerk']}",
             f"  status {d['status']}" + (f" — {d['outcome']}" if d["outcome"] else "")]
    sla = d["sla"]
    lines.append(f"  accepted {d['accepted_at']}; "
                 f"legal due {sla['legal_due_at'] or '-'} ({sla['legal_limit_workdays']} wd), "
                 f"promised due {sla['promised_due_at'] or '-'} ({sla['promised_limit_workdays']} wd); "
                 f"warning {sla['warning_level']}"
                 + (" — ESTIMATED: the calendar does not know that year yet" if sla["estimated"] else "")
                 + (f"; PAUSED since {sla['paused_at']}" if sla["paused_at"] else "")
                 + (f"; extended by {sla['extension_workdays']} wd" if sla["extension_workdays"] else ""))
    for p in d["pauses"]:
        lines.append(f"  pause ({p['kind']}) {p['started_at']} → {p['ended_at'] or 'now'}: {p['reason']}")
    for c in d["cards"]:
        lines.append(f"  {'黄牌' if c['color'] == 'yellow' else '红牌'} {c['issued_at']}: {c['reason']}"
                     + (f" (resolved {c['resolved_at']})" if c["resolved_at"] else ""))
    for t in d["tasks"]:
        group = f"/{t['candidate_group']}" if t["candidate_group"] else ""
        lines.append(f"  task {t['id']:>5} {t['state']:<9} {t['name']} [{t['unit']}{group}]"
                     f" assignee={t['assignee'] or '-'} due={t['due_at'] or '-'}"
                     + (f" ({t['limit_workdays']} wd)" if t["limit_workdays"] else "")
                     + (f" [{t['warning_level']}]" if t["warning_level"] else ""))
    for t in d["timers"]:
        lines.append(f"  timer {t['bpmn_id']} {t['state']} due {t['due_at']}")
    for st in d["steps"]:  # what each step submitted, by the labels of its form
        entered = "; ".join(f"{f['label']}={f['value'] if f['choice'] is None else f['choice']}" for f in st["fields"])
        lines.append(f"  step {st['name']} [{st['unit'] or '-'}] by {st['actor']} at {st['at']}"
                     + (f": {entered}" if entered else ""))
    return "\n".join(lines)


def cmd_case_list(ctx: Context) -> None:
    with db.read(ctx.engine) as s:
        page = queries.list_cases(s, ctx.actor(s, required=False),
                                  None if ctx.args.status == "all" else ctx.args.status, limit=ctx.args.limit)
    rows = queries.to_json(page.items)
    ctx.emit(rows, lambda rs: "\n".join(
        f"{r['number']} {r['status']:<9} {r['service_code']:<8} {r['applicant_name']} ({r['village']})"
        for r in rs) or "no cases")


def cmd_case_pause(ctx: Context) -> None:
    with db.transaction(ctx.engine) as s:
        r = cases.pause_case(s, ctx.args.number, ctx.actor(s, required=False), ctx.args.reason, ctx.args.kind,
                             at=instant_arg(ctx.args.at))
    ctx.emit(step_dict(r), lambda r: f"case {r['case_number']}: clock stopped")


def cmd_case_resume(ctx: Context) -> None:
    with db.transaction(ctx.engine) as s:
        r = cases.resume_case(s, ctx.args.number, ctx.actor(s, required=False), at=instant_arg(ctx.args.at))
    ctx.emit(step_dict(r), lambda r: f"case {r['case_number']}: clock running")


def cmd_case_extend(ctx: Context) -> None:
    with db.transaction(ctx.engine) as s:
        r = cases.extend_case(s, ctx.args.number, ctx.actor(s), ctx.args.workdays, ctx.args.reason)
    ctx.emit(step_dict(r), lambda r: f"case {r['case_number']}: extended")


def cmd_case_withdraw(ctx: Context) -> None:
    with db.transaction(ctx.engine) as s:
        r = cases.withdraw_case(s, ctx.args.number, ctx.actor(s), ctx.args.reason)
    ctx.emit(step_dict(r), step_text)
