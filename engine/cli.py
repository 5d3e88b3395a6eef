"""`yicun`: the whole case lifecycle from a shell, so operations and tests can drive the engine without
the web. Every command prints text, or JSON with ``--json``; errors go to stderr with a non-zero exit
status (each error class's `exit_code`, as the README lists them). The database comes from ``--db`` or
``YICUN_DATABASE_URL``.

Other packages add commands through the ``yicun.commands`` entry-point group (the web adds ``serve``),
so the engine never imports them.
"""
from __future__ import annotations

import argparse
import functools
import json
import logging
import sys
from collections.abc import Callable, Sequence
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, func, select

from . import accounts, cases, clock, db, demo, logs, orgs, processes, queries, service_day, settings, timers, workdays
from .bpmn import compile_bpmn
from .errors import BpmnRejected, InvalidInput, NotFound, UsageError, YicunError
from .models import OrgUnit
from .policy import Actor


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


def _json_arg(text: str | None) -> dict[str, Any] | None:
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


def _date_arg(text: str | None, option: str) -> Any:
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


def _step(result: cases.StepResult) -> dict[str, Any]:
    return dict(result.__dict__)


def _step_text(r: dict[str, Any]) -> str:
    lines = [f"case {r['case_number']}: {r['status']}" + (f" ({r['outcome']})" if r.get("outcome") else "")]
    if r["opened_tasks"]:
        lines.append(f"  opened task(s): {', '.join(map(str, r['opened_tasks']))}")
    if r["fired_timers"]:
        lines.append(f"  timers fired: {', '.join(r['fired_timers'])}")
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------- commands
def cmd_init(ctx: Context) -> None:
    db.migrate(ctx.engine)
    out: dict[str, Any] = {"database": ctx.engine.url.render_as_string(hide_password=True), "migrated": True}
    if ctx.args.demo:
        with db.transaction(ctx.engine) as s:
            if s.scalar(select(func.count()).select_from(OrgUnit)):
                out["seed"] = "already present"
            else:
                out["units"] = orgs.seed_org_tree(s)
                out["users"] = orgs.seed_staff(s)
        bpmn_dir = Path(ctx.args.bpmn_dir or settings.get().bpmn_dir)
        out["deployed"] = _deploy_files(ctx, sorted(bpmn_dir.glob("*.bpmn")), None)
        out["demo_cases"] = demo.create_demo_cases(ctx.engine)
        out["demo_logins"] = {u: d for u, d in orgs.DEMO_LOGINS}
        out["demo_password"] = orgs.DEMO_PASSWORD
    if ctx.args.admin:
        out["admin"] = _init_admin(ctx)
    elif not ctx.args.demo:
        with db.read(ctx.engine) as s:
            if not accounts.has_active_admin(s):
                out["no_admin"] = ("no administrator yet: create the first with `yicun init --admin USERNAME` "
                                   "(prints a temporary password; or --admin-password-stdin), "
                                   "or `yicun users add USERNAME --role admin --unit CITY_CODE --name 姓名`")
    ctx.emit(out, _init_text)


def _init_admin(ctx: Context) -> dict[str, Any]:
    """The first administrator of a real installation, at the city unit (the org tree is loaded from
    the seed first if the database has none), acting as the server's operator."""
    password = _password_stdin() if ctx.args.admin_password_stdin else None
    with db.transaction(ctx.engine) as s:
        units = 0 if s.scalar(select(func.count()).select_from(OrgUnit)) else orgs.seed_org_tree(s)
        city = accounts.city_unit(s)
        if city is None:
            raise InvalidInput("the org tree has no city unit to place the administrator in", reason="init.no_city")
        user, temporary = accounts.create_user(s, Actor.operator(), username=ctx.args.admin,
                                               display_name=ctx.args.admin_name, role="admin", unit_code=city.code,
                                               password=password)
        return {**_account_row(s, user.username), "temporary_password": temporary, "units_loaded": units}


def _init_text(out: dict[str, Any]) -> str:
    lines = [f"database {out['database']} is at the newest schema"]
    if "units" in out:
        lines.append(f"seeded {out['units']} org units and users "
                     + ", ".join(f"{k} {v}" for k, v in out["users"].items()))
    elif "seed" in out:
        lines.append("seed data already present")
    deployed = out.get("deployed", [])
    if deployed:
        new = [d for d in deployed if d["created"]]
        lines.append(f"deployed {len(new)} new process version(s), {len(deployed) - len(new)} unchanged "
                     f"({', '.join(d['process_id'] for d in deployed[:5])}{' …' if len(deployed) > 5 else ''})")
    if out.get("demo_cases"):
        lines.append(f"started demo cases {out['demo_cases'][0]} … {out['demo_cases'][-1]}")
    if "demo_logins" in out:
        lines.append(f"demo logins (password {out['demo_password']}):")
        lines += [f"  {u:<24} {d}" for u, d in out["demo_logins"].items()]
    if out.get("admin"):
        if out["admin"]["units_loaded"]:
            lines.append(f"loaded {out['admin']['units_loaded']} org units from the seed")
        lines.append(_account_text(out["admin"]))
    if out.get("no_admin"):
        lines.append(out["no_admin"])
    return "\n".join(lines)


def _deploy_files(ctx: Context, files: Sequence[Path], actor_name: str | None) -> list[dict[str, Any]]:
    results = []
    for path in files:
        try:
            data = Path(path).read_bytes()
        except OSError as exc:
            raise InvalidInput(f"cannot read {path}: {exc.strerror}", reason="cli.file_unreadable",
                               path=str(path)) from None
        # compile before the transaction: on SQLite its first statement takes the write lock
        compiled = compile_bpmn(data, Path(path).name)
        with db.transaction(ctx.engine) as s:
            actor = orgs.actor_by_name(s, actor_name) if actor_name else Actor.operator()
            results += [r.__dict__ for r in processes.deploy(s, data, Path(path).name, actor, compiled=compiled)]
    return results


def cmd_deploy(ctx: Context) -> int:
    if ctx.args.dry_run:
        outcomes = []
        for path in ctx.args.files:
            try:
                outcomes.append(processes.dry_run(Path(path).read_bytes(), Path(path).name))
            except OSError as exc:
                raise InvalidInput(f"cannot read {path}: {exc.strerror}", reason="cli.file_unreadable",
                                   path=str(path)) from None
        ctx.emit(outcomes, lambda os_: "\n".join(
            f"{o['file']}: {o['outcome']}" + (f" — {o['element'] or ''} line {o['line']}: {o['message']}"
                                              if o["outcome"] == "refused" else f" ({o['message']})") for o in os_))
        return 3 if any(o["outcome"] == "refused" for o in outcomes) else 0
    results = _deploy_files(ctx, ctx.args.files, ctx.args.as_user)
    ctx.emit(results, lambda rs: "\n".join(
        f"{r['process_id']} v{r['version']}: " + ("deployed" if r["created"] else "unchanged")
        + ("" if r["executable"] else " (model only)")
        + "".join(f"\n  {f['severity']}: {f.get('element_id') or ''} line {f.get('line')}: {f['message']}"
                  for f in r["findings"]) for r in rs))
    return 0


def cmd_case_start(ctx: Context) -> None:
    a = ctx.args
    with db.transaction(ctx.engine) as s:
        r = cases.start_case(s, service_code=a.service, village_code=a.village, applicant_name=a.applicant,
                             actor=ctx.actor(s), data=_json_arg(a.data),
                             accepted_at=clock.to_utc(a.accepted_at) if a.accepted_at else None)
    ctx.emit(_step(r), _step_text)


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


def _at(text: str | None) -> Any:
    return clock.to_utc(text) if text else None


def cmd_case_pause(ctx: Context) -> None:
    with db.transaction(ctx.engine) as s:
        r = cases.pause_case(s, ctx.args.number, ctx.actor(s, required=False), ctx.args.reason, ctx.args.kind,
                             at=_at(ctx.args.at))
    ctx.emit(_step(r), lambda r: f"case {r['case_number']}: clock stopped")


def cmd_case_resume(ctx: Context) -> None:
    with db.transaction(ctx.engine) as s:
        r = cases.resume_case(s, ctx.args.number, ctx.actor(s, required=False), at=_at(ctx.args.at))
    ctx.emit(_step(r), lambda r: f"case {r['case_number']}: clock running")


def cmd_case_extend(ctx: Context) -> None:
    with db.transaction(ctx.engine) as s:
        r = cases.extend_case(s, ctx.args.number, ctx.actor(s), ctx.args.workdays, ctx.args.reason)
    ctx.emit(_step(r), lambda r: f"case {r['case_number']}: extended")


def cmd_calendar_due(ctx: Context) -> None:
    start = _date_arg(ctx.args.from_date, "--from")
    due = workdays.default_calendar().add_workdays(start, ctx.args.workdays)
    out = {"from": start.isoformat(), "workdays": ctx.args.workdays, "due_date": due.date.isoformat(),
           "ends_at": due.end_instant.isoformat(), "estimated": due.estimated}
    ctx.emit(out, lambda o: f"{o['workdays']} working days after {o['from']}: {o['due_date']} (ends {o['ends_at']})"
             + ("  ESTIMATED — the calendar does not know that year; counted Monday–Friday" if o["estimated"] else ""))


def cmd_service_day_run(ctx: Context) -> None:
    day = _date_arg(ctx.args.date, "--date")
    out = service_day.run(ctx.engine, day, force=ctx.args.force)
    ctx.emit(out, lambda o: f"{o['date']}: " + (f"{o['digests']} digests stored" if o["service_day"]
                                                else "not a service day (use --force)"))


def cmd_service_day_show(ctx: Context) -> None:
    day = _date_arg(ctx.args.date, "--date")
    with db.read(ctx.engine) as s:
        d = service_day.get_digest(s, ctx.args.unit, day)
    ctx.emit(d, lambda d: "\n".join(
        [f"{d['unit']['name']} 便民集中服务日 {d['service_date']}: overdue {d['counts']['overdue']}, "
         f"due soon {d['counts']['due_soon']}, paused {d['counts']['paused']}"]
        + [f"  {k:<8} {e['number']} {e['service_code']} {e['applicant_name']} ({e['village']}) {e['reason']} "
           f"{e.get('due_at') or ''}"
           for k in ("overdue", "due_soon", "paused") for e in d[k]]))


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


def cmd_catalog_check(ctx: Context) -> int:
    from . import catalog
    path = Path(ctx.args.file) if ctx.args.file else catalog.catalog_path()
    try:
        items = catalog.load(path)
    except (OSError, ValueError) as exc:
        raise InvalidInput(f"cannot read {path}: {exc}", reason="cli.file_unreadable", path=str(path)) from None
    errors = catalog.check(items)
    out = {"file": str(path), "items": len(items), "errors": [e.__dict__ for e in errors]}
    ctx.emit(out, lambda o: "\n".join([f"{o['file']}: {o['items']} items, {len(errors)} error(s)"]
                                       + [str(e) for e in errors]))
    return 3 if errors else 0


def cmd_bpmn_lint(ctx: Context) -> int:
    from . import catalog
    from .bpmn import conventions as lint
    if ctx.args.files:
        items = catalog.by_code(catalog.load()) if catalog.catalog_path().exists() else {}
        findings = [f for p in ctx.args.files for f in lint.lint_file(Path(p), items.get(Path(p).stem))]
    else:
        items_list = catalog.load() if catalog.catalog_path().exists() else None
        findings = lint.lint_tree(Path(ctx.args.dir or settings.get().bpmn_dir), items_list)
    errors = [f for f in findings if f.severity == "error"]
    ctx.emit([f.to_dict() for f in findings], lambda fs: "\n".join(str(f) for f in findings)
             + f"\n{len(errors)} error(s), {len(findings) - len(errors)} warning(s)")
    return 3 if errors else 0


def cmd_bpmn_scaffold(ctx: Context) -> None:
    from . import catalog
    from .bpmn import scaffold
    items = catalog.by_code(catalog.load())
    codes = sorted(items) if ctx.args.all else ctx.args.codes
    if not codes:
        raise UsageError("name the item codes to scaffold, or --all", reason="cli.codes_required")
    written, kept = [], []
    for code in codes:
        if code not in items:
            raise NotFound(f"no catalogue item {code}", reason="cli.catalog_item_unknown", code=code)
        path = Path(ctx.args.dir or settings.get().bpmn_dir) / f"{code}.bpmn"
        if path.exists() and not ctx.args.force:
            kept.append(code)
            continue
        path.write_text(scaffold.render(items[code]), encoding="utf-8")
        written.append(code)
    ctx.emit({"written": written, "kept": kept},
             lambda o: f"wrote {len(o['written'])} file(s)" + (f"; kept {len(o['kept'])} existing (use --force)"
                                                               if o["kept"] else ""))


def cmd_case_withdraw(ctx: Context) -> None:
    with db.transaction(ctx.engine) as s:
        r = cases.withdraw_case(s, ctx.args.number, ctx.actor(s), ctx.args.reason)
    ctx.emit(_step(r), _step_text)


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
            r = cases.reassign_task(s, a.id, actor, a.to)
        else:
            r = cases.complete_task(s, a.id, actor, _json_arg(a.data))
    ctx.emit(_step(r), _step_text)


def cmd_timers_sweep(ctx: Context) -> None:
    now = clock.to_utc(ctx.args.now) if ctx.args.now else None
    report = timers.sweep(ctx.engine, now)
    ctx.emit(report.to_dict(), lambda r: f"fired {r['fired']} timer(s) in {r['cases']} case(s); "
                                         f"{r['cards']} card(s) issued"
             + "".join(f"\n  case {f['case_id']} failed ({f['kind']}): {f['error']}"
                       + (f" — incident {f['incident_id']} (yicun incidents show {f['incident_id']})"
                          if f.get("incident_id") else "") for f in r["failed"]))


def cmd_units_list(ctx: Context) -> None:
    with db.read(ctx.engine) as s:
        rows = [{"code": u.code, "name": u.name, "level": u.level} for u in
                orgs.list_units(s, ctx.args.level, ctx.args.parent)]
    ctx.emit(rows, lambda rs: "\n".join(f"{r['code']:<14} {r['level']:<9} {r['name']}" for r in rs))


def cmd_users_list(ctx: Context) -> None:
    with db.read(ctx.engine) as s:
        rows = [{"username": u.username, "name": u.display_name, "role": u.role, "unit": u.unit.name,
                 "unit_code": u.unit.code, "department": u.department}
                for u in orgs.list_users(s, ctx.args.role, ctx.args.unit, ctx.args.limit)]
    ctx.emit(rows, lambda rs: "\n".join(f"{r['username']:<26} {r['role']:<16} {r['unit']:<10} {r['name']}" for r in rs))


def _password_stdin() -> str:
    """One line of standard input (`echo "$PW" | yicun users add … --password-stdin`): a password never
    belongs on the command line, where `ps` and the shell history see it."""
    line = sys.stdin.readline(accounts.PASSWORD_MAX + 2)
    password = line.rstrip("\r\n")
    if not password:
        raise InvalidInput("标准输入中没有密码 / no password on standard input", reason="password.required")
    return password


def _account_row(session: Any, username: str) -> dict[str, Any]:
    """The account as `accounts.get_account` shows it (never its password hash), as the CLI prints it."""
    a = accounts.get_account(session, Actor.operator(), username)
    return {"username": a.username, "name": a.display_name, "role": a.role, "unit": a.unit_name,
            "unit_code": a.unit_code, "department": a.department, "active": a.active,
            "must_change_password": a.must_change_password,
            "locked_until": a.locked_until.isoformat() if a.locked_until else None}


def _account_text(r: dict[str, Any]) -> str:
    text = (f"{r['username']}: {r['name']}, {r['role']}{'/' + r['department'] if r['department'] else ''} "
            f"at {r['unit']} ({r['unit_code']})" + ("" if r["active"] else " — disabled")
            + (" — must change the password at next login" if r["must_change_password"] else ""))
    if r.get("temporary_password"):
        text += (f"\ntemporary password for {r['username']} (shown once; to be changed at first login): "
                 f"{r['temporary_password']}")
    return text


def cmd_users_add(ctx: Context) -> None:
    a = ctx.args
    password = _password_stdin() if a.password_stdin else None
    with db.transaction(ctx.engine) as s:
        user, temporary = accounts.create_user(s, Actor.operator(), username=a.username, display_name=a.name,
                                               role=a.role, unit_code=a.unit, department=a.department,
                                               password=password)
        out = {**_account_row(s, user.username), "temporary_password": temporary}
    ctx.emit(out, _account_text)


def cmd_users_edit(ctx: Context) -> None:
    a = ctx.args
    if a.name is None and a.role is None and a.unit is None and a.department is None:
        raise UsageError("nothing to change: give --name, --role, --unit or --department", reason="cli.nothing_to_do")
    with db.transaction(ctx.engine) as s:
        accounts.update_user(s, Actor.operator(), a.username, display_name=a.name, role=a.role,
                             unit_code=a.unit, department=a.department)
        out = _account_row(s, a.username)
    ctx.emit(out, _account_text)


def cmd_users_state(ctx: Context) -> None:
    change = accounts.disable_user if ctx.args.user_cmd == "disable" else accounts.enable_user
    with db.transaction(ctx.engine) as s:
        change(s, Actor.operator(), ctx.args.username)
        out = _account_row(s, ctx.args.username)
    ctx.emit(out, _account_text)


def cmd_users_passwd(ctx: Context) -> None:
    password = _password_stdin() if ctx.args.password_stdin else None
    with db.transaction(ctx.engine) as s:
        temporary = accounts.reset_password(s, Actor.operator(), ctx.args.username, password=password)
        out = {**_account_row(s, ctx.args.username), "temporary_password": temporary}
    ctx.emit(out, lambda r: f"password of {r['username']} reset; to be changed at next login"
             + (f"\ntemporary password (shown once): {r['temporary_password']}" if r["temporary_password"] else ""))


def cmd_processes_list(ctx: Context) -> None:
    with db.read(ctx.engine) as s:
        rows = queries.to_json(queries.process_items(processes.list_versions(s, latest_only=not ctx.args.all)))
    ctx.emit(rows, lambda rs: "\n".join(f"{r['process_id']:<12} v{r['version']:<3} {r['name']}"
                                        + ("" if r["executable"] else " (model only)") for r in rs) or "none")


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
    from . import incidents
    with db.read(ctx.engine) as s:
        rows = incidents.list_incidents(s, ctx.actor(s, required=False), ctx.args.status, limit=ctx.args.limit)
    ctx.emit(rows, lambda rs: "\n".join(_incident_text(r) for r in rs) or "no incidents")


def cmd_incidents_show(ctx: Context) -> None:
    from . import incidents
    with db.read(ctx.engine) as s:
        row = incidents.show(s, ctx.args.id, ctx.actor(s, required=False))
    ctx.emit(row, _incident_detail_text)


def cmd_incidents_retry(ctx: Context) -> None:
    from . import incidents
    with db.transaction(ctx.engine) as s:
        row = incidents.retry(s, ctx.args.id, ctx.actor(s, required=False))
    ctx.emit(row, lambda i: f"incident {i['id']}: will be retried by the next sweep (from {i['next_retry_at']})")


def cmd_incidents_resolve(ctx: Context) -> None:
    from . import incidents
    with db.transaction(ctx.engine) as s:
        row = incidents.resolve(s, ctx.args.id, ctx.actor(s, required=False), ctx.args.note)
    ctx.emit(row, lambda i: f"incident {i['id']}: resolved")


# ------------------------------------------------------------------------------------------- parser
def _bounded(low: int, high: int, what: str) -> Callable[[str], int]:
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


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="yicun", description="Yicun (益村) case engine")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.add_argument("-v", "--verbose", action="store_true",
                   help="log everything at DEBUG on stderr, SpiffWorkflow's per-task messages included")
    p.add_argument("--db", help="database URL (default: $YICUN_DATABASE_URL or sqlite:///instance/yicun.db)")
    p.add_argument("--now", dest="clock_now", metavar="ISO",
                   help="run the command at this instant (a manual clock; naive times are Asia/Shanghai)")
    sub = p.add_subparsers(dest="command", required=True)

    sp = sub.add_parser("init", help="create/upgrade the schema; --demo seeds Yiyang and deploys bpmn/")
    sp.add_argument("--demo", action="store_true")
    sp.add_argument("--bpmn-dir")
    sp.add_argument("--admin", metavar="USERNAME", help="create the first administrator (at the city unit)")
    sp.add_argument("--admin-name", default="系统管理员", help="the administrator's display name")
    sp.add_argument("--admin-password-stdin", action="store_true",
                    help="read the administrator's password from standard input (default: print a temporary one)")
    sp.set_defaults(func=cmd_init, creates_database=True)

    sp = sub.add_parser("deploy", help="deploy BPMN files as new process versions")
    sp.add_argument("files", nargs="+", type=Path)
    sp.add_argument("--as", dest="as_user")
    sp.add_argument("--dry-run", action="store_true",
                    help="only check: would each file deploy, as a model, or be refused?")
    sp.set_defaults(func=cmd_deploy)

    procs = sub.add_parser("processes", help="deployed processes").add_subparsers(dest="proc_cmd", required=True)
    lp = procs.add_parser("list")
    lp.add_argument("--all", action="store_true", help="every version, not just the newest")
    lp.set_defaults(func=cmd_processes_list)

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
    sp.add_argument("--limit", type=_bounded(1, 10_000, "--limit"), default=100)
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
    sp.add_argument("--workdays", type=_bounded(0, 3650, "--workdays"), required=True)
    sp.add_argument("--reason", required=True)
    sp.add_argument("--as", dest="as_user", required=True)
    sp.set_defaults(func=cmd_case_extend)
    sp = case.add_parser("withdraw")
    sp.add_argument("number")
    sp.add_argument("--reason", required=True)
    sp.add_argument("--as", dest="as_user", required=True)
    sp.set_defaults(func=cmd_case_withdraw)

    task = sub.add_parser("task", help="tasks").add_subparsers(dest="task_cmd", required=True)
    sp = task.add_parser("list", help="a user's inbox, or the tasks of a case")
    sp.add_argument("--case")
    sp.add_argument("--as", dest="as_user")
    sp.add_argument("--all", action="store_true", help="include completed and cancelled tasks")
    sp.set_defaults(func=cmd_task_list)
    sp = task.add_parser("show", help="a task with its form fields")
    sp.add_argument("id", type=_bounded(1, 2**31 - 1, "an id"))
    sp.add_argument("--as", dest="as_user")
    sp.set_defaults(func=cmd_task_show)
    for name in ("claim", "unclaim", "complete", "reassign"):
        sp = task.add_parser(name)
        sp.add_argument("id", type=_bounded(1, 2**31 - 1, "an id"))
        sp.add_argument("--as", dest="as_user", required=True)
        if name == "complete":
            sp.add_argument("--data", help="form data as a JSON object")
        if name == "reassign":
            sp.add_argument("--to", required=True, help="username of the new assignee")
        sp.set_defaults(func=_task_action)

    tm = sub.add_parser("timers", help="timers").add_subparsers(dest="timer_cmd", required=True)
    sp = tm.add_parser("sweep", help="fire every due timer once")
    sp.add_argument("--now", help="sweep as of this instant")
    sp.set_defaults(func=cmd_timers_sweep)

    ct = sub.add_parser("catalog", help="the service catalogue").add_subparsers(dest="cat_cmd", required=True)
    sp = ct.add_parser("check", help="validate catalog.yaml (errors name the item code and field)")
    sp.add_argument("--file", help="default: catalog.yaml or $YICUN_CATALOG")
    sp.set_defaults(func=cmd_catalog_check)

    bp = sub.add_parser("bpmn", help="BPMN files").add_subparsers(dest="bpmn_cmd", required=True)
    sp = bp.add_parser("lint", help="check the conventions (DESIGN.md §6) and the match with the catalogue")
    sp.add_argument("files", nargs="*", help="default: every file of --dir, cross-checked with catalog.yaml")
    sp.add_argument("--dir", help="default: bpmn/ or $YICUN_BPMN_DIR")
    sp.set_defaults(func=cmd_bpmn_lint)
    sp = bp.add_parser("scaffold", help="generate bpmn/<code>.bpmn from the catalogue (then edit it as a file)")
    sp.add_argument("codes", nargs="*")
    sp.add_argument("--all", action="store_true")
    sp.add_argument("--force", action="store_true", help="overwrite existing files")
    sp.add_argument("--dir", help="default: bpmn/ or $YICUN_BPMN_DIR")
    sp.set_defaults(func=cmd_bpmn_scaffold)

    cal = sub.add_parser("calendar", help="the working-day calendar").add_subparsers(dest="cal_cmd", required=True)
    sp = cal.add_parser("due", help="the due date of a limit in working days")
    sp.add_argument("--from", dest="from_date", required=True, metavar="DATE", help="acceptance date YYYY-MM-DD")
    sp.add_argument("--workdays", type=_bounded(0, 3650, "--workdays"), required=True)
    sp.set_defaults(func=cmd_calendar_due)

    sd = sub.add_parser("service-day", help="便民集中服务日 digests").add_subparsers(dest="sd_cmd", required=True)
    sp = sd.add_parser("run", help="store the digests of today's (or --date's) service day")
    sp.add_argument("--date", help="YYYY-MM-DD")
    sp.add_argument("--force", action="store_true", help="even if the date is not the service day")
    sp.set_defaults(func=cmd_service_day_run)
    sp = sd.add_parser("show", help="a village's or township's digest")
    sp.add_argument("--unit", required=True, help="unit code")
    sp.add_argument("--date", help="YYYY-MM-DD (default: the latest)")
    sp.set_defaults(func=cmd_service_day_show)

    sp = sub.add_parser("notifications", help="a user's in-app notifications (cards)")
    sp.add_argument("--as", dest="as_user", required=True)
    sp.add_argument("--unread", action="store_true")
    sp.add_argument("--mark-read", action="store_true", help="mark them read after listing")
    sp.set_defaults(func=cmd_notifications)

    sp = sub.add_parser("scheduler", help="run the timer sweep and the service-day job without the web")
    sp.add_argument("--sweep-seconds", type=_bounded(1, 86_400, "--sweep-seconds"), default=30)
    sp.set_defaults(func=cmd_scheduler)

    un = sub.add_parser("units", help="org units").add_subparsers(dest="unit_cmd", required=True)
    sp = un.add_parser("list")
    sp.add_argument("--level", choices=orgs.LEVELS)
    sp.add_argument("--parent", help="code of the parent unit")
    sp.set_defaults(func=cmd_units_list)

    us = sub.add_parser("users", help="users").add_subparsers(dest="user_cmd", required=True)
    sp = us.add_parser("list")
    sp.add_argument("--role", choices=orgs.ROLES)
    sp.add_argument("--unit", help="unit code")
    sp.add_argument("--limit", type=_bounded(1, 10_000, "--limit"))
    sp.set_defaults(func=cmd_users_list)
    sp = us.add_parser("add", help="create an account (prints a temporary password unless --password-stdin)")
    sp.add_argument("username")
    sp.add_argument("--name", required=True, help="display name (姓名)")
    sp.add_argument("--role", required=True, choices=orgs.ROLES)
    sp.add_argument("--unit", required=True, help="unit code")
    sp.add_argument("--department", help="county officers: 民政, 人社, …")
    sp.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    sp.set_defaults(func=cmd_users_add)
    sp = us.add_parser("edit", help="change an account's name, role, unit or department")
    sp.add_argument("username")
    sp.add_argument("--name")
    sp.add_argument("--role", choices=orgs.ROLES)
    sp.add_argument("--unit", help="unit code")
    sp.add_argument("--department")
    sp.set_defaults(func=cmd_users_edit)
    for name, helptext in (("disable", "stop an account from logging in"), ("enable", "let it log in again")):
        sp = us.add_parser(name, help=helptext)
        sp.add_argument("username")
        sp.set_defaults(func=cmd_users_state)
    sp = us.add_parser("passwd", help="reset a password (prints a temporary one unless --password-stdin); "
                                      "the user must change it at next login")
    sp.add_argument("username")
    sp.add_argument("--password-stdin", action="store_true", help="read the new password from standard input")
    sp.set_defaults(func=cmd_users_passwd)

    inc = sub.add_parser("incidents", help="failures of the sweep and jobs: one failure stays one failure") \
        .add_subparsers(dest="incident_cmd", required=True)
    sp = inc.add_parser("list", help="incidents (a supervisor sees those of their subtree)")
    sp.add_argument("--status", default="open", choices=("open", "resolved", "all"))
    sp.add_argument("--limit", type=_bounded(1, 10_000, "--limit"), default=200)
    sp.add_argument("--as", dest="as_user")
    sp.set_defaults(func=cmd_incidents_list)
    for name, command, helptext in (("show", cmd_incidents_show, "one incident, with the timers parked behind it"),
                                    ("retry", cmd_incidents_retry, "clear the backoff: the next sweep tries again"),
                                    ("resolve", cmd_incidents_resolve, "close it with a note; parked work resumes")):
        sp = inc.add_parser(name, help=helptext)
        sp.add_argument("id", type=_bounded(1, 2**31 - 1, "an id"))
        sp.add_argument("--as", dest="as_user")
        if name == "resolve":
            sp.add_argument("--note", required=True, help="what was done about it")
        sp.set_defaults(func=command)
    for sp in inc.choices.values():  # `yicun incidents list --json` as well as `yicun --json incidents list`
        sp.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help="print JSON")

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
