"""`yicun processes migrate` and `yicun processes rollback`: running cases moved to another version of their
process (engine/cases/migration.py), from a shell. A dry run prints a page of the chosen cases with whether each
can move and why not; a migration goes through all of them, `MIGRATE_CHUNK` cases per transaction, as one
batch; a rollback puts a batch's cases (or one of them) back."""
from __future__ import annotations

from typing import Any

from .. import db, queries
from ..cases import migration
from .context import Context, bounded


def register(procs: Any) -> None:
    """Add `migrate` and `rollback` to `yicun processes`."""
    sp = procs.add_parser("migrate", help="move running cases to another version of their process "
                                          "(--dry-run: which could move, and why not)")
    sp.add_argument("process", help="the process id (the item's code)")
    sp.add_argument("--to", dest="to_version", type=bounded(1, 2**31 - 1, "a version"), required=True)
    sp.add_argument("--from", dest="from_version", type=bounded(1, 2**31 - 1, "a version"),
                    help="only cases on this version (default: any other)")
    sp.add_argument("--step", help="only cases waiting at this step (its BPMN id)")
    sp.add_argument("--unit", help="only cases of this unit (a code: a county, township or village)")
    sp.add_argument("--case", dest="cases", action="append", metavar="NUMBER", help="only these cases (repeat)")
    sp.add_argument("--dry-run", action="store_true", help="judge each case, move none")
    sp.add_argument("--limit", type=bounded(1, migration.PLAN_MAX, "--limit"), default=migration.PLAN_DEFAULT,
                    help=f"cases a dry run shows (default {migration.PLAN_DEFAULT})")
    sp.add_argument("--after", type=bounded(0, 2**63 - 1, "--after"), default=0,
                    help="a dry run's next page: the case id it printed as next_after")
    sp.add_argument("--as", dest="as_user")
    sp.set_defaults(func=cmd_migrate)

    sp = procs.add_parser("rollback", help="put the cases a migration batch moved back as they were")
    sp.add_argument("batch", type=bounded(1, 2**63 - 1, "a batch"))
    sp.add_argument("--case", dest="case", metavar="NUMBER", help="only this case of the batch")
    sp.add_argument("--as", dest="as_user")
    sp.set_defaults(func=cmd_rollback)


def _filters(ctx: Context) -> dict[str, Any]:
    a = ctx.args
    return {"from_version": a.from_version, "step": a.step, "unit": a.unit, "case_numbers": a.cases or ()}


def cmd_migrate(ctx: Context) -> int:
    a = ctx.args
    if a.dry_run:
        with db.read(ctx.engine) as s:
            result = migration.plan(s, ctx.actor(s, required=False), a.process, a.to_version, **_filters(ctx),
                                    after_id=a.after, limit=a.limit)
        out = queries.to_json(result)
        out["movable"] = result.movable
        ctx.emit(out, _plan_text)
        return 0
    batch_id: int | None = None
    after = 0
    moved: list[migration.Verdict] = []
    refused: list[migration.Verdict] = []
    while True:  # one transaction per chunk: a large set never holds the database for long
        with db.transaction(ctx.engine) as s:
            report = migration.migrate(s, ctx.actor(s, required=False), a.process, a.to_version, **_filters(ctx),
                                       batch_id=batch_id, after_id=after)
        batch_id = report.batch_id
        moved += report.moved
        refused += report.refused
        if report.next_after is None:
            break
        after = report.next_after
    out = {"batch": batch_id, "process_id": a.process, "to_version": a.to_version,
           "moved": queries.to_json(moved), "refused": queries.to_json(refused)}
    ctx.emit(out, _migrated_text)
    return 0


def cmd_rollback(ctx: Context) -> int:
    a = ctx.args
    after = 0
    restored: list[str] = []
    refused: list[dict[str, Any]] = []
    while True:
        with db.transaction(ctx.engine) as s:
            report = migration.rollback(s, ctx.actor(s, required=False), a.batch, case_number=a.case, after_id=after)
        restored += report.restored
        refused += report.refused
        if report.next_after is None:
            break
        after = report.next_after
    out = {"batch": a.batch, "restored": restored, "refused": refused}
    ctx.emit(out, lambda o: "\n".join(
        [f"batch {o['batch']}: {len(o['restored'])} case(s) rolled back, {len(o['refused'])} refused"]
        + [f"  rolled back {n}" for n in o["restored"]]
        + [f"  refused {r['case']}: {r['message']}" for r in o["refused"]]))
    return 6 if refused else 0  # a case left as it is is a conflict to look at


def _case_line(v: dict[str, Any]) -> str:
    steps = ", ".join(v["steps"]) or "-"
    verdict = "can move" if v["movable"] else f"cannot move: {v['message']}"
    return f"  {v['case_number']} v{v['version']} at {steps} [{v['village']}]: {verdict}"


def _plan_text(p: dict[str, Any]) -> str:
    sel = p["selection"]
    lines = [f"{sel['process_id']} → v{sel['to_version']}: {p['total']} case(s) chosen; of these {len(p['items'])}, "
             f"{p['movable']} can move"]
    lines += [_case_line(v) for v in p["items"]]
    if p["next_after"] is not None:
        lines.append(f"more: --after {p['next_after']}")
    return "\n".join(lines)


def _migrated_text(o: dict[str, Any]) -> str:
    lines = [f"batch {o['batch']}: {len(o['moved'])} case(s) moved to {o['process_id']} v{o['to_version']}, "
             f"{len(o['refused'])} refused (roll back: yicun processes rollback {o['batch']})"]
    lines += [f"  moved {v['case_number']} (was v{v['version']})" for v in o["moved"]]
    lines += [f"  refused {v['case_number']}: {v['message']}" for v in o["refused"]]
    return "\n".join(lines)
