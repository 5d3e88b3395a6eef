"""/api/v1/cases: the open cases the actor may see (the same query as the workbench's list), newest
first, 200 a page: the body is the page's list, and a `Link: <…?cursor=…>; rel="next"` header fetches
the next one (a bad cursor is a 422 with reason `page.cursor_invalid`)."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import jsonify, request, url_for

from engine import queries

from ..context import current_actor, read

PAGE = 200


def list_cases() -> Any:
    with read() as s:
        page = queries.list_cases(s, current_actor(), "open", limit=PAGE, cursor=request.args.get("cursor"))
    response = jsonify(queries.to_json(page.items))
    if page.next_cursor is not None:
        response.headers["Link"] = f'<{url_for("api.cases", cursor=page.next_cursor)}>; rel="next"'
    return response


def case(number: str) -> Any:
    with read() as s:
        return jsonify(queries.case_detail(s, number, current_actor()).to_json())


ROUTES: list[tuple[str, str, Callable[..., Any]]] = [("/cases", "cases", list_cases), ("/cases/<number>", "case", case)]
