"""Administration, for admins only. For now the list of accounts; creating, editing and disabling them
comes with `engine.accounts`."""
from __future__ import annotations

from typing import Any

from flask import Blueprint, render_template, request

from engine import orgs, policy
from engine.errors import InvalidInput
from engine.vocab import USER_ROLES, Role

from ..context import read
from ..guards import requires

bp = Blueprint("admin", __name__, url_prefix="/admin")

#: One page shows at most this many accounts; narrow by role or unit for the rest.
USERS_PAGE_LIMIT = 500


@bp.route("/users")
@requires(policy.may_administer_users, "只有系统管理员可以查看账号列表。")
def users() -> Any:
    role = request.args.get("role") or None
    unit = (request.args.get("unit") or "").strip() or None
    if role is not None and role not in USER_ROLES:
        raise InvalidInput(f"未知的角色 {role!r}", reason="user.role_unknown", role=role)
    with read() as s:
        rows = orgs.list_users(s, role=role, unit_code=unit, limit=USERS_PAGE_LIMIT + 1)
        units = {u.id: u for u in orgs.list_units(s)}  # one query instead of one per row
        return render_template("admin/users.html", users=rows[:USERS_PAGE_LIMIT], units=units,
                               truncated=len(rows) > USERS_PAGE_LIMIT, role=role, unit=unit,
                               roles=[Role(r) for r in USER_ROLES], limit=USERS_PAGE_LIMIT)
