"""Every audit action the engine writes has a name in both languages (pages never show `user.created`)."""
from __future__ import annotations

import ast
import re
from pathlib import Path

from engine.vocab import AuditAction

ROOT = Path(__file__).resolve().parent.parent
ACTION = re.compile(r"^[a-z]+\.[a-z_]+$")
WRITERS = {"_audit", "_log", "record"}  # the audit helpers of accounts, incidents and cases.audit


def written_actions() -> dict[str, str]:
    """Action literals in engine/: `action="…"` keywords and the string arguments of the audit helpers."""
    found: dict[str, str] = {}
    for path in sorted((ROOT / "engine").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.Call):
                continue
            values = [k.value for k in node.keywords if k.arg == "action"]
            name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
            if name in WRITERS:
                values += node.args
            for value in values:
                if isinstance(value, ast.Constant) and isinstance(value.value, str) and ACTION.match(value.value):
                    found.setdefault(value.value, f"{path.relative_to(ROOT)}:{node.lineno}")
    return found


def test_every_audit_action_written_has_both_names():
    actions = written_actions()
    assert len(actions) > 20 and "user.created" in actions and "task.completed" in actions  # the scan works
    known = {a.value for a in AuditAction}
    assert {a: where for a, where in actions.items() if a not in known} == {}
    assert all(a.zh and a.en and a.zh != a.en for a in AuditAction)
