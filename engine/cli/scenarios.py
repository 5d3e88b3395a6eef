"""`yicun bpmn test` and `yicun bpmn record`: the process tests (engine/scenarios.py)."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import select

from .. import db, scenarios, settings
from ..errors import InvalidInput, NotFound
from ..models import ProcessVersion
from .context import Context


def register(bp: Any) -> None:
    """Add `test` and `record` to `yicun bpmn`."""
    sp = bp.add_parser("test", help="run the process tests (bpmn/scenarios/<CODE>.yaml) in a throwaway database")
    sp.add_argument("codes", nargs="*", help="default: every process with a scenario file")
    sp.add_argument("--dir", help="default: bpmn/ or $YICUN_BPMN_DIR (scenarios in its scenarios/ folder)")
    sp.add_argument("--deployed", action="store_true",
                    help="against the newest deployed versions instead of the files in --dir")
    sp.set_defaults(func=cmd_bpmn_test)
    sp = bp.add_parser("record", help="write a scenario from a finished case (its steps, data, actors, clock)")
    sp.add_argument("case_number")
    sp.add_argument("--out", type=Path, help="write the YAML here (default: print it)")
    sp.set_defaults(func=cmd_bpmn_record)


def cmd_bpmn_test(ctx: Context) -> int:
    bpmn_dir = Path(ctx.args.dir or settings.get().bpmn_dir)
    where = bpmn_dir / "scenarios"
    codes = ctx.args.codes or sorted(p.stem for p in where.glob("*.yaml"))
    files = [scenarios.load(code, where) for code in codes]  # every file checked before any runs
    outcomes = []
    for sf in files:
        if ctx.args.deployed:
            with db.read(ctx.engine) as s:
                version_id = s.scalar(select(ProcessVersion.id).where(ProcessVersion.process_id == sf.process_id)
                                      .order_by(ProcessVersion.version.desc()).limit(1))
                if version_id is None:
                    raise NotFound(f"process {sf.process_id} is not deployed", reason="cli.process_not_deployed",
                                   process=sf.process_id)
                outcomes.append(scenarios.run_version(s, version_id, sf))
        else:
            path = bpmn_dir / f"{sf.process_id}.bpmn"
            try:
                data = path.read_bytes()
            except OSError:
                raise InvalidInput(f"cannot read {path}", reason="cli.file_unreadable", path=str(path)) from None
            outcomes.append(scenarios.run([(data, path.name)], sf))
    ctx.emit([o.to_dict() for o in outcomes], lambda _v: _text(outcomes))
    return 0 if all(o.passed for o in outcomes) else 3


def _text(outcomes: list[scenarios.RunOutcome]) -> str:
    lines = []
    for o in outcomes:
        lines.append(f"{o.process_id} ({o.source} against {o.against}): "
                     + ("passed" if o.passed else "FAILED") + f" in {o.seconds:.1f} s")
        if o.error:
            lines.append(f"  cannot run: {o.error}")
        for s in o.scenarios:
            f = s.failure
            lines.append(f"  {'ok  ' if s.passed else 'FAIL'} {s.name} ({len(s.steps)}/{s.total_steps} steps)")
            if f is not None:
                lines.append(f"       step {f.number} {f.action} {f.target}: {f.message}".rstrip())
    passed = sum(o.passed for o in outcomes)
    lines.append(f"{passed} of {len(outcomes)} process(es) passed")
    return "\n".join(lines)


def cmd_bpmn_record(ctx: Context) -> None:
    with db.read(ctx.engine) as s:
        doc = scenarios.record(s, ctx.args.case_number)
    text = scenarios.dump(doc)
    scenarios.parse(text, f"record of {ctx.args.case_number}")  # what is written can be read back
    if ctx.args.out:
        try:
            ctx.args.out.write_text(text, encoding="utf-8")
        except OSError as exc:
            raise InvalidInput(f"cannot write {ctx.args.out}: {exc.strerror}", reason="cli.file_unwritable",
                               path=str(ctx.args.out)) from None
        ctx.emit({"case": ctx.args.case_number, "out": str(ctx.args.out)}, f"wrote {ctx.args.out}")
    else:
        ctx.emit(doc, text.rstrip())
