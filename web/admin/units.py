"""Unit pages: the list of org units with their contact details (search by code or name, filter by
level or by "no phone yet", 50 a page: the real tree has 1184 villages) and the form that sets one
unit's phone and address — what its 受理回执 and 一次性告知书 print. The write is one `engine.units` call
in one transaction; a refusal is shown beside its field with what was typed kept (web.form_errors).
"""
from __future__ import annotations

from math import ceil
from typing import Any

from flask import flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from engine import policy, units
from engine.errors import Conflict, Forbidden, InvalidInput, NotFound
from engine.vocab import LEVELS

from ..context import current_actor, read, write
from ..form_errors import place
from ..guards import requires
from . import bp
from .users import page_number  # the same page parameter rule as the account list

PAGE_SIZE = 50
#: The refusals the form shows beside itself (anything else is an error page).
REFUSALS = (InvalidInput, Conflict, Forbidden, NotFound)
FIELDS = ("phone", "address")
#: Said to anyone the rule refuses (the blueprint's own guard refuses non-admins first today).
REFUSED = _l("只有系统管理员可以设置单位的联系方式。")


@bp.route("/units")
@requires(policy.may_administer_units, REFUSED)
def units_list() -> Any:
    args = request.args
    filters = {"q": args.get("q", "").strip()[:100], "level": args.get("level", "")[:20],
               "phone": "missing" if args.get("phone") == "missing" else ""}
    listing, errors, page = None, {}, 1
    try:
        page = page_number(args.get("page"))
        with read() as s:
            listing = units.list_unit_contacts(s, current_actor(), text=filters["q"], level=filters["level"] or None,
                                               missing_phone=filters["phone"] == "missing",
                                               offset=(page - 1) * PAGE_SIZE, limit=PAGE_SIZE)
    except InvalidInput as exc:
        errors = place(exc, ("q", "level"))
    pages = max(1, ceil(listing.total / PAGE_SIZE)) if listing else 1

    def page_url(number: int) -> str:
        params: dict[str, Any] = {k: v for k, v in filters.items() if v}
        if number > 1:
            params["page"] = number
        return url_for("admin.units_list", **params)

    return render_template("admin/units.html", listing=listing, filters=filters, errors=errors, page=page,
                           pages=pages, page_url=page_url, page_size=PAGE_SIZE, levels=LEVELS), \
        (422 if errors else 200)


def _edit_page(unit: units.UnitContact, form: dict[str, str], errors: dict[str, str], status: int = 200) -> Any:
    return render_template("admin/unit_edit.html", unit=unit, form=form, errors=errors,
                           phone_max=units.PHONE_MAX, address_max=units.ADDRESS_MAX), status


@bp.route("/units/<code>", methods=["GET", "POST"])
@requires(policy.may_administer_units, REFUSED)
def edit_unit(code: str) -> Any:
    with read() as s:
        unit = units.get_unit_contact(s, current_actor(), code)  # NotFound: a 404 page
    if request.method == "GET":
        return _edit_page(unit, {"phone": unit.phone or "", "address": unit.address or ""}, {})
    # as typed, bounded for showing it again (the engine refuses what is too long)
    form = {name: request.form.get(name, "")[:units.ADDRESS_MAX + 50] for name in FIELDS}
    try:
        with write() as s:
            units.set_unit_contact(s, current_actor(), unit.code, phone=form["phone"], address=form["address"])
    except REFUSALS as exc:
        return _edit_page(unit, form, place(exc, FIELDS), exc.http_status)
    flash(_("已保存单位 %(code)s 的联系方式。", code=unit.code))
    return redirect(url_for("admin.edit_unit", code=unit.code))
