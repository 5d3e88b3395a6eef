"""Deployed process versions as lists show them (the rows of `processes.list_versions`)."""
from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from .models import ProcessVersionItem


def process_items(versions: Iterable[Any]) -> tuple[ProcessVersionItem, ...]:
    """Rows of `processes.list_versions` (listed columns and counts, never the BPMN, spec or metadata)."""
    return tuple(ProcessVersionItem(v.process_id, v.name, v.version, bool(v.executable), v.filename, v.sha256[:12],
                                    v.deployed_at, v.user_tasks or 0, v.warnings or 0) for v in versions)
