"""Who writes case state: only `engine/cases/` may (DESIGN.md §1; issue #8). Installed for the whole test
run (conftest), this watches every INSERT/UPDATE/DELETE sent to the database by any engine and notes
those on a case-state table whose innermost frame in the repository is engine or web code outside
`engine/cases/` (or the migrations). Test code that writes rows directly to set up a scene is left alone.
"""
from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, event

ROOT = Path(__file__).resolve().parent.parent
GUARDED = frozenset({"cases", "case_sequences", "tasks", "timers", "pauses", "cards", "notifications",
                     "audit_events", "intake_notices", "attachments", "comments", "extension_requests", "ratings",
                     "supervisions", "card_explanations", "migration_batches", "case_migrations"})
_WRITE = re.compile(r'^\s*(?:INSERT\s+INTO|UPDATE|DELETE\s+FROM)\s+(?:"?\w+"?\.)?"?(\w+)"?', re.IGNORECASE)
_ALLOWED = (str(ROOT / "engine" / "cases") + "/", str(ROOT / "engine" / "migrations") + "/")
_JUDGED = (str(ROOT / "engine") + "/", str(ROOT / "web") + "/")
_IGNORED = (str(ROOT / "tests") + "/", str(ROOT / "benchmarks") + "/")
_TRANSPARENT = frozenset({__file__, str(ROOT / "engine" / "db.py")})


@dataclass(frozen=True)
class Violation:
    table: str
    where: str  # file:line of the innermost engine/web frame
    statement: str

    def __str__(self) -> str:
        return f"{self.where} writes {self.table}: {self.statement}"


seen: list[Violation] = []


def writer_of(table: str, statement: str) -> Violation | None:
    """The violation of this write, judged from the calling stack, or None if it is allowed."""
    frame: Any = sys._getframe(1)
    while frame is not None:
        name = frame.f_code.co_filename
        if name in _TRANSPARENT:  # a flush at commit: the write belongs to whoever holds the transaction
            frame = frame.f_back
            continue
        if name.startswith(_IGNORED):
            return None
        if name.startswith(_JUDGED):
            if name.startswith(_ALLOWED):
                return None
            where = f"{Path(name).relative_to(ROOT)}:{frame.f_lineno}"
            return Violation(table, where, " ".join(statement.split())[:120])
        frame = frame.f_back
    return None


def _check(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
    match = _WRITE.match(statement)
    if match and match.group(1).lower() in GUARDED:
        found = writer_of(match.group(1).lower(), statement)
        if found is not None:
            seen.append(found)


def install() -> None:
    if not event.contains(Engine, "before_cursor_execute", _check):
        event.listen(Engine, "before_cursor_execute", _check)
