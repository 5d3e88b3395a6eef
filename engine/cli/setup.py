"""`yicun init`, `deploy`, `processes`, `catalog`, `bpmn`: setting an installation up and the processes it runs."""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from .. import accounts, db, demo, orgs, processes, queries, settings
from ..bpmn import compile_bpmn
from ..errors import BpmnRejected, InvalidInput, NoDatabase, NotFound, ScenariosFailed, UsageError
from ..models import OrgUnit
from ..policy import Actor
from . import migrations, scenarios
from .context import Context, password_stdin
from .people import account_row, account_text


def register(sub: Any) -> None:
    """Add this noun's sub-commands to `yicun`'s parser."""
    sp = sub.add_parser("init", help="create/upgrade the schema; --demo seeds Yiyang and deploys bpmn/")
    sp.add_argument("--demo", action="store_true")
    sp.add_argument("--bpmn-dir")
    sp.add_argument("--admin", metavar="USERNAME", help="create the first administrator (at the city unit)")
    sp.add_argument("--admin-name", default="系统管理员", help="the administrator's display name")
    sp.add_argument("--admin-password-stdin", action="store_true",
                    help="read the administrator's password from standard input (default: print a temporary one)")
    sp.set_defaults(func=cmd_init, creates_database=True)

    sp = sub.add_parser("deploy", help="deploy BPMN files (one file set: together, callees first, all or "
                                       "nothing) as new process versions")
    sp.add_argument("files", nargs="+", type=Path)
    sp.add_argument("--as", dest="as_user")
    sp.add_argument("--dry-run", action="store_true",
                    help="only check: would each file deploy, as a model, or be refused? (processes deployed "
                         "before count as callable when the database exists)")
    sp.add_argument("--override-reason", help="deploy even though process tests fail (audited with this reason)")
    sp.set_defaults(func=cmd_deploy)

    procs = sub.add_parser("processes", help="deployed processes").add_subparsers(dest="proc_cmd", required=True)
    lp = procs.add_parser("list")
    lp.add_argument("--all", action="store_true", help="every version, not just the newest")
    lp.set_defaults(func=cmd_processes_list)
    migrations.register(procs)  # migrate / rollback: running cases to another version (cli/migrations.py)

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
    scenarios.register(bp)  # test / record: the process tests (cli/scenarios.py)


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
    password = password_stdin() if ctx.args.admin_password_stdin else None
    with db.transaction(ctx.engine) as s:
        units = 0 if s.scalar(select(func.count()).select_from(OrgUnit)) else orgs.seed_org_tree(s)
        city = accounts.city_unit(s)
        if city is None:
            raise InvalidInput("the org tree has no city unit to place the administrator in", reason="init.no_city")
        user, temporary = accounts.create_user(s, Actor.operator(), username=ctx.args.admin,
                                               display_name=ctx.args.admin_name, role="admin", unit_code=city.code,
                                               password=password)
        return {**account_row(s, user.username), "temporary_password": temporary, "units_loaded": units}


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
        lines.append(account_text(out["admin"]))
    if out.get("no_admin"):
        lines.append(out["no_admin"])
    return "\n".join(lines)


def _read_files(paths: Sequence[Path]) -> list[tuple[bytes, str]]:
    files = []
    for path in paths:
        try:
            files.append((Path(path).read_bytes(), Path(path).name))
        except OSError as exc:
            raise InvalidInput(f"cannot read {path}: {exc.strerror}", reason="cli.file_unreadable",
                               path=str(path)) from None
    return files


def _deploy_files(ctx: Context, paths: Sequence[Path], actor_name: str | None,
                  override_reason: str | None = None) -> list[dict[str, Any]]:
    """The files as one set (processes.deploy_files): callees before callers, in one transaction."""
    files = _read_files(paths)
    # compile before the transaction (on SQLite its first statement takes the write lock); every file's
    # refusals are reported together
    compiled, refused = [], []
    for data, name in files:
        try:
            compiled.append(compile_bpmn(data, name))
        except BpmnRejected as exc:
            refused.append(exc)
    if refused:
        if len(refused) == 1:
            raise refused[0]
        raise BpmnRejected(f"{len(refused)} files could not be deployed", [f for e in refused for f in e.findings])
    try:
        with db.transaction(ctx.engine) as s:
            actor = orgs.actor_by_name(s, actor_name) if actor_name else Actor.operator()
            return [r.__dict__ for r in processes.deploy_files(s, files, actor, compiled=compiled,
                                                               override_reason=override_reason)]
    except ScenariosFailed as exc:  # the same refusal, saying how to deploy anyway from here
        raise ScenariosFailed(f"{len(exc.findings)} process test(s) failed: deploy refused; --override-reason TEXT "
                              f"deploys anyway (audited)", exc.failures) from None


def cmd_deploy(ctx: Context) -> int:
    if ctx.args.dry_run:
        files = _read_files(ctx.args.files)
        try:
            engine = ctx.engine
        except NoDatabase:  # no database yet: only the files themselves are judged
            outcomes = processes.dry_run_files(files)
        else:
            with db.read(engine) as s:
                outcomes = processes.dry_run_files(files, s)
        ctx.emit(outcomes, lambda os_: "\n".join(
            f"{o['file']}: {o['outcome']}" + (f" — {o['element'] or ''} line {o['line']}: {o['message']}"
                                              if o["outcome"] == "refused" else f" ({o['message']})") for o in os_))
        return 3 if any(o["outcome"] == "refused" for o in outcomes) else 0
    results = _deploy_files(ctx, ctx.args.files, ctx.args.as_user, ctx.args.override_reason)
    ctx.emit(results, lambda rs: "\n".join(
        f"{r['process_id']} v{r['version']}: " + ("deployed" if r["created"] else "unchanged")
        + ("" if r["executable"] else " (model only)")
        + (" (calls " + ", ".join(f"{pid} v{pin['version']}" for pid, pin in r["calls"].items()) + ")"
           if r["calls"] else "")
        + "".join(f"\n  {f['severity']}: {f.get('element_id') or ''} line {f.get('line')}: {f['message']}"
                  for f in r["findings"]) for r in rs))
    return 0


def cmd_processes_list(ctx: Context) -> None:
    with db.read(ctx.engine) as s:
        rows = queries.to_json(queries.process_items(processes.list_versions(s, latest_only=not ctx.args.all)))
    ctx.emit(rows, lambda rs: "\n".join(f"{r['process_id']:<12} v{r['version']:<3} {r['name']}"
                                        + ("" if r["executable"] else " (model only)") for r in rs) or "none")


def cmd_catalog_check(ctx: Context) -> int:
    from .. import catalog
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
    from .. import catalog
    from ..bpmn import conventions as lint
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
    from .. import catalog
    from ..bpmn import scaffold
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
