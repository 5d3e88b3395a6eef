"""The house's doors (DESIGN.md §1), checked on the source: SpiffWorkflow is imported only inside
`engine/bpmn/`; the engine never imports Flask; the web never imports SpiffWorkflow and reads through
`engine.queries`, never through the workflow runtime or the case writer's internals."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def imports_of(path: Path, root: Path = ROOT) -> set[str]:
    """Absolute module names a file imports (relative imports resolved against its package)."""
    package = path.relative_to(root).with_suffix("").parts[:-1]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = ".".join(package[:len(package) - node.level + 1]) if node.level else ""
            module = ".".join(p for p in (base, node.module or "") if p)
            found.add(module)
            found.update(f"{module}.{alias.name}" for alias in node.names)
    return found


def offenders(folder: str, forbidden: tuple[str, ...], allowed_under: str | None = None,
              root: Path = ROOT) -> list[str]:
    out = []
    for path in sorted((root / folder).rglob("*.py")):
        rel = path.relative_to(root).as_posix()
        if allowed_under and rel.startswith(allowed_under):
            continue
        bad = sorted(m for m in imports_of(path, root) if m.split(".")[0] in forbidden or m.startswith(forbidden))
        if bad:
            out.append(f"{rel}: {', '.join(bad)}")
    return out


def test_only_the_bpmn_package_imports_spiffworkflow():
    assert offenders("engine", ("SpiffWorkflow",), allowed_under="engine/bpmn/") == []
    assert offenders("web", ("SpiffWorkflow",)) == []


def test_the_engine_knows_nothing_of_flask():
    assert offenders("engine", ("flask", "flask_wtf", "flask_babel", "werkzeug", "jinja2")) == []


@pytest.mark.parametrize("module", ["engine.bpmn", "engine.cases.store",
                                    "engine.cases.projection", "engine.cases.clock_stops"])
def test_the_web_reads_through_queries_not_deploy_or_runtime_code(module):
    assert offenders("web", (module,)) == []


def test_the_checker_sees_relative_and_absolute_imports(tmp_path):
    """The rule above must be able to fail: a file importing SpiffWorkflow both ways is reported."""
    probe = tmp_path / "engine" / "cases" / "probe.py"
    probe.parent.mkdir(parents=True)
    probe.write_text("from SpiffWorkflow import TaskState\nfrom ..bpmn import workflow\n", encoding="utf-8")
    (tmp_path / "engine" / "bpmn").mkdir()
    (tmp_path / "engine" / "bpmn" / "ok.py").write_text("import SpiffWorkflow\n", encoding="utf-8")
    assert imports_of(probe, tmp_path) >= {"SpiffWorkflow", "engine.bpmn", "engine.bpmn.workflow"}
    assert offenders("engine", ("SpiffWorkflow",), allowed_under="engine/bpmn/", root=tmp_path) == [
        "engine/cases/probe.py: SpiffWorkflow, SpiffWorkflow.TaskState"]
