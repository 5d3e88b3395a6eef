"""/api/v1/processes: the deployed process versions (the same rows as the processes page)."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import jsonify

from engine import processes, queries

from ..context import read


def list_processes() -> Any:
    with read() as s:
        return jsonify(queries.to_json(queries.process_items(processes.list_versions(s))))


ROUTES: list[tuple[str, str, Callable[..., Any]]] = [("/processes", "processes", list_processes)]
