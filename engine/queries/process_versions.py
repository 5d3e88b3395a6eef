"""Deployed process versions as lists show them (the rows of `processes.list_versions`)."""
from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ..models import ProcessVersion
from .models import ProcessVersionItem


def process_items(versions: Iterable[Any]) -> tuple[ProcessVersionItem, ...]:
    """Rows of `processes.list_versions` (listed columns and counts, never the BPMN, spec or metadata)."""
    return tuple(ProcessVersionItem(v.process_id, v.name, v.version, bool(v.executable), v.filename, v.sha256[:12],
                                    v.deployed_at, v.user_tasks or 0, v.warnings or 0) for v in versions)


def service_choices(session: Session) -> tuple[tuple[str, str], ...]:
    """(code, name) of every deployed service item, by code — the 事项 filter of the inbox and the case
    search. The name is the newest version's; only the two short columns are read (one row per version,
    a few hundred), never the BPMN or the spec."""
    newest = (select(ProcessVersion.process_id, func.max(ProcessVersion.version).label("v"))
              .group_by(ProcessVersion.process_id).subquery())
    rows = session.execute(select(ProcessVersion.process_id, ProcessVersion.name)
                           .join(newest, (newest.c.process_id == ProcessVersion.process_id)
                                 & (newest.c.v == ProcessVersion.version))
                           .order_by(ProcessVersion.process_id)).all()
    return tuple((r.process_id, r.name) for r in rows)
