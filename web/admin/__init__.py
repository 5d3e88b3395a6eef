"""Administration, for admins only (`policy.may_administer_users`): the whole blueprint is restricted,
so a page added here later is closed to everyone else without remembering to say so. The engine checks
the same rule again on every read and write (`engine.accounts`; the unit pages also ask their own rule,
`policy.may_administer_units`, which `engine.units` enforces; the calendar page `policy.may_administer_calendar`,
which `engine.calendar_admin` enforces)."""
from __future__ import annotations

from flask import Blueprint
from flask_babel import lazy_gettext as _l

from engine import policy

from ..guards import restrict

bp = Blueprint("admin", __name__, url_prefix="/admin")
restrict(bp, policy.may_administer_users, _l("只有系统管理员可以管理账号。"))

from . import calendar, units, users  # noqa: E402,F401  (register the calendar, unit and account pages)
