"""The case's BPMN diagram as JSON for the case page's viewer (web/static/diagram.js): the process
version's XML and the bpmn ids of the done, current and cancelled steps and the fired timers.

One GET, one engine read (`queries.case_diagram`, scoped like the case page: another unit's case is
404). The answer carries an ETag of its content and `private, no-cache`: the browser keeps it and asks
again with If-None-Match each time the page is opened, and gets a bodiless 304 until a step is taken —
on a slow link the XML (tens of KB) crosses once per process version and state, not once per visit. It
holds the process and step ids, no names of people or applicants, so the browser's own cache may hold
it (unlike the pages, which web.headers marks `no-store`).
"""
from __future__ import annotations

from typing import Any

from flask import jsonify, request

from engine import queries

from ..context import current_actor, read
from . import bp


@bp.route("/cases/<number>/diagram")
def case_diagram(number: str) -> Any:
    with read() as s:
        diagram = queries.case_diagram(s, number, current_actor())
    response = jsonify(diagram.to_json())
    response.set_etag(diagram.validator)
    response.cache_control.private = True
    response.cache_control.no_cache = True
    return response.make_conditional(request)
