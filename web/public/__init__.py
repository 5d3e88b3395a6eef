"""Pages for citizens and machines, without login: every view here is marked `@public`."""
from __future__ import annotations

from typing import Any

from flask import Blueprint

from ..guards import public

bp = Blueprint("public", __name__)


@bp.route("/healthz")
@public
def healthz() -> Any:
    return {"ok": True}
