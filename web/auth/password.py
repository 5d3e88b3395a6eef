"""Change one's own password (any logged-in user), and the page a user who must change theirs is
sent to first (web.guards). One engine call, `accounts.change_own_password`, which checks the current
password and the policy, writes and audits; a refusal is shown beside its field and changes nothing.
"""
from __future__ import annotations

from typing import Any

from flask import flash, redirect, render_template, request, session, url_for
from flask_babel import gettext as _

from engine import accounts, settings
from engine.errors import Forbidden, InvalidInput

from ..context import MUST_CHANGE_KEY, STAMP_KEY, current_actor, write
from ..form_errors import place
from . import bp
from .next_url import safe_next

FIELDS = ("current", "new", "repeat")


@bp.route("/account/password", methods=["GET", "POST"])
def change_password() -> Any:
    actor = current_actor()
    errors: dict[str, str] = {}
    status = 200
    if request.method == "POST":
        current, new, repeat = (request.form.get(name, "") for name in FIELDS)
        if new != repeat:
            errors = {"repeat": _("两次输入的新密码不一致，请重新输入。")}
        else:
            try:
                with write() as s:
                    stamp = accounts.change_own_password(s, actor, current, new)
            except (InvalidInput, Forbidden) as exc:
                errors = place(exc, FIELDS)
            else:
                session[STAMP_KEY] = stamp  # this session goes on; the others (a stolen one) end
                session.pop(MUST_CHANGE_KEY, None)
                flash(_("密码已修改，下次登录请使用新密码。"))
                return redirect(safe_next(request.args.get("next")) or url_for("workbench.home"))
        status = 422
    # passwords are never written back into the page: after an error the fields are empty again
    return render_template("auth/password.html", errors=errors, forced=bool(session.get(MUST_CHANGE_KEY)),
                           min_length=settings.get().password_min_length), status
