"""/api/v1/cases: the open cases the actor may see (the same query as the workbench's list)."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import jsonify

from engine import inbox

from ..context import current_actor, read


def list_cases() -> Any:
    with read() as s:
        return jsonify(inbox.list_cases(s, current_actor(), "open", limit=200))


def case(number: str) -> Any:
    with read() as s:
        return jsonify(inbox.case_detail(s, number, current_actor()))


ROUTES: list[tuple[str, str, Callable[..., Any]]] = [("/cases", "cases", list_cases), ("/cases/<number>", "case", case)]
