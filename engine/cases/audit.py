"""The audit trail's one writer (DESIGN.md invariant 3): every row of it — a case's moves, and the
administrative ones with no case (deploys, accounts, incidents) — goes in through here, so who wrote what
is answered by one module, and a test can hold every other module to it."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import insert
from sqlalchemy.orm import Session

from ..models import T_AUDIT

INS_AUDIT = insert(T_AUDIT)
#: old → new values are short words or instants; a longer text (an error message) is cut, never refused
VALUE_MAX = 200


def write(session: Session, rows: list[dict[str, Any]]) -> None:
    """Rows already shaped as the table (the case services build them in bulk): one executemany."""
    if rows:
        session.connection().execute(INS_AUDIT, rows)


def record(session: Session, action: str, *, at: datetime, actor_id: int | None, case_id: int | None = None,
           old: str | None = None, new: str | None = None, **details: Any) -> None:
    """One event; details that are None are left out, old/new cut to VALUE_MAX characters."""
    write(session, [dict(case_id=case_id, actor_id=actor_id, at=at, action=action,
                         details={k: v for k, v in details.items() if v is not None},
                         old_value=old[:VALUE_MAX] if old else None, new_value=new[:VALUE_MAX] if new else None)])
