"""`yicun task …`: inboxes, one task with its form, and the task verbs (claim, unclaim, complete, reassign)."""
from __future__ import annotations

from typing import Any

from .. import cases, db, queries
from .context import Context, bounded, json_arg, step_dict, step_text


def register(sub: Any) -> None:
    """Add this noun's sub-commands to `yicun`'s parser."""
    task = sub.add_parser("task", help="tasks").add_subparsers(dest="task_cmd", required=True)
    sp = task.add_parser("list", help="a user's inbox, or the tasks of a case")
    sp.add_argument("--case")
    sp.add_argument("--as", dest="as_user")
    sp.add_argument("--all", action="store_true", help="include completed and cancelled tasks")
    sp.set_defaults(func=cmd_task_list)
    sp = task.add_parser("show", help="a task with its form fields")
    sp.add_argument("id", type=bounded(1, 2**31 - 1, "an id"))
    sp.add_argument("--as", dest="as_user")
    sp.set_defaults(func=cmd_task_show)
    for name in ("claim", "unclaim", "complete", "reassign"):
        sp = task.add_parser(name)
        sp.add_argument("id", type=bounded(1, 2**31 - 1, "an id"))
        sp.add_argument("--as", dest="as_user", required=True)
        if name == "complete":
            sp.add_argument("--data", help="form data as a JSON object")
        if name == "reassign":
            sp.add_argument("--to", required=True, help="username of the new assignee (a colleague of the unit)")
            sp.add_argument("--reason", required=True, help="why it is handed over (recorded in the audit)")
        sp.set_defaults(func=_task_action)


def cmd_task_list(ctx: Context) -> None:
    with db.read(ctx.engine) as s:
        page = queries.list_tasks(s, ctx.actor(s, required=False), ctx.args.case,
                                  state=None if ctx.args.all else "ready")
    rows = queries.to_json(page.items)
    ctx.emit(rows, lambda rs: "\n".join(
        f"{t['id']:>6} {t['state']:<9} {t['case_number']} {t['name']} [{t['unit']}] "
        f"assignee={t['assignee'] or '-'} due={t['due_at'] or '-'}" for t in rs) or "no tasks")


def cmd_task_show(ctx: Context) -> None:
    with db.read(ctx.engine) as s:
        detail = queries.task_detail(s, ctx.args.id, ctx.actor(s, required=False)).to_json()
    ctx.emit(detail, lambda t: "\n".join(
        [f"task {t['id']} {t['name']} ({t['state']}) case {t['case_number']} [{t['unit']}] due {t['due_at'] or '-'}"]
        + ([t["documentation"]] if t["documentation"] else [])
        + [f"  {f['id']:<24} {f['type']:<8} {'required ' if f['required'] else ''}{f['label']}"
           + (f" ({', '.join(o[0] + '=' + o[1] for o in f['options'])})" if f["options"] else "")
           for f in t["fields"]]))


def _task_action(ctx: Context) -> None:
    a = ctx.args
    with db.transaction(ctx.engine) as s:
        actor = ctx.actor(s)
        if a.task_cmd == "claim":
            r = cases.claim_task(s, a.id, actor)
        elif a.task_cmd == "unclaim":
            r = cases.unclaim_task(s, a.id, actor)
        elif a.task_cmd == "reassign":
            r = cases.reassign_task(s, a.id, actor, a.to, a.reason)
        else:
            r = cases.complete_task(s, a.id, actor, json_arg(a.data))
    ctx.emit(step_dict(r), step_text)
