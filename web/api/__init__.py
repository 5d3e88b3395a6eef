"""The JSON API, by noun, under /api/v1 (DESIGN §1). Same guards as the pages: anonymous → 401 JSON.

Unsafe methods (none yet) need the CSRF token in the `X-CSRFToken` header — a script can read it from
`<meta name="csrf-token">` of any page of the same site; a page on another site can neither read it
nor send the header cross-origin, and its `Origin` is refused anyway (web.extensions).
The first, unversioned paths (/api/processes, /api/cases) stay as aliases of v1 with a `Deprecation`
header, so nothing that used them breaks.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Blueprint, Flask, Response

from . import cases, processes

PREFIX = "/api/v1"
#: (path under the prefix, endpoint name, view) — one line per route of every noun.
ROUTES: list[tuple[str, str, Callable[..., Any]]] = [*processes.ROUTES, *cases.ROUTES]
#: The paths that existed before /api/v1.
LEGACY_PATHS = frozenset({"/processes", "/cases"})

bp = Blueprint("api", __name__, url_prefix=PREFIX)
legacy = Blueprint("api_legacy", __name__, url_prefix="/api")
for _path, _endpoint, _view in ROUTES:
    bp.add_url_rule(_path, _endpoint, _view)


def _deprecated(view: Callable[..., Any], successor: str) -> Callable[..., Any]:
    def alias(*args: Any, **kwargs: Any) -> Any:
        response: Response = view(*args, **kwargs)
        response.headers["Deprecation"] = "true"
        links = [response.headers.get("Link"), f'<{successor}>; rel="successor-version"']  # keep a rel="next"
        response.headers["Link"] = ", ".join(link for link in links if link)
        return response
    alias.__name__ = alias.__qualname__ = f"legacy_{view.__name__}"
    alias.__doc__ = view.__doc__
    return alias


for _path, _endpoint, _view in ROUTES:
    if _path in LEGACY_PATHS:
        legacy.add_url_rule(_path, _endpoint, _deprecated(_view, PREFIX + _path))


def register(app: Flask) -> None:
    app.register_blueprint(bp)
    app.register_blueprint(legacy)
