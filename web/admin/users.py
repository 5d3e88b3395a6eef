"""Account pages: the list (search, role and unit filters, 50 a page), create, edit, disable/enable and
password reset. Every write is one `engine.accounts` call in one transaction; every refusal is shown
beside its field with what was typed kept (web.form_errors). A temporary password (new account, reset)
is shown once, in the answer to the POST that made it: it is never stored, flashed or put in the cookie.
"""
from __future__ import annotations

from collections.abc import Callable
from math import ceil
from typing import Any

from flask import flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_babel.speaklater import LazyString

from engine import accounts, clock
from engine.accounts import ROLE_LEVELS
from engine.errors import Conflict, Forbidden, InvalidInput, NotFound
from engine.vocab import DEPARTMENTS, LEVELS, USER_ROLES, Level, Role

from .. import reasons
from ..context import current_actor, read, write
from ..form_errors import FORM, place
from ..i18n import is_english
from . import bp

PAGE_SIZE = 50
MAX_PAGE = 100_000
#: The refusals a form shows beside itself (anything else is an error page).
REFUSALS = (InvalidInput, Conflict, Forbidden, NotFound)
CREATE_FIELDS = ("username", "display_name", "role", "unit", "department")
EDIT_FIELDS = CREATE_FIELDS[1:]


def role_choices() -> list[tuple[str, str]]:
    """(value, label) for the role select: the role's name and where it sits, in the current language."""
    lang = "en" if is_english() else "zh"
    out = []
    for value in USER_ROLES:
        levels = ROLE_LEVELS[value]
        if set(levels) == set(LEVELS):
            where = _("任意级别")
        else:
            separator = ", " if lang == "en" else "、"
            where = separator.join(_("%(level)s级", level=Level(lv).label(lang)) for lv in levels)
        out.append((value, _("%(role)s（%(where)s）", role=Role(value).label(lang), where=where)))
    return out


def page_number(text: str | None) -> int:
    if text in (None, ""):
        return 1
    if not text.isdigit() or not 1 <= int(text) <= MAX_PAGE:
        raise InvalidInput(_("页码须为 1–%(max)s 的整数。", max=MAX_PAGE), reason="web.page_invalid")
    return int(text)


@bp.route("/users")
def users() -> Any:
    args = request.args
    filters = {"q": args.get("q", "").strip()[:100], "role": args.get("role", ""),
               "unit": args.get("unit", "").strip()[:40]}
    listing, errors, page = None, {}, 1
    try:
        page = page_number(args.get("page"))
        with read() as s:
            listing = accounts.list_accounts(s, current_actor(), text=filters["q"], role=filters["role"] or None,
                                             unit_code=filters["unit"] or None, offset=(page - 1) * PAGE_SIZE,
                                             limit=PAGE_SIZE)
    except InvalidInput as exc:
        errors = place(exc, ("q", "role", "unit"))
    pages = max(1, ceil(listing.total / PAGE_SIZE)) if listing else 1

    def page_url(number: int) -> str:
        params: dict[str, Any] = {k: v for k, v in filters.items() if v}
        if number > 1:
            params["page"] = number
        return url_for("admin.users", **params)

    return render_template("admin/users.html", listing=listing, filters=filters, errors=errors, page=page,
                           pages=pages, page_url=page_url, page_size=PAGE_SIZE, roles=role_choices(),
                           now=clock.now()), \
        (422 if errors else 200)


def _typed(fields: tuple[str, ...]) -> dict[str, str]:
    """The form's values as typed (bounded for showing them again; the engine bounds what it keeps)."""
    return {name: request.form.get(name, "")[:200] for name in fields}


def _department(form: dict[str, str]) -> str | None:
    """The department select is on every form but means something only for a county officer."""
    return (form.get("department") or None) if form.get("role") == Role.COUNTY_OFFICER else None


def _form_page(template: str, form: dict[str, str], errors: dict[str, str], status: int = 200, **extra: Any) -> Any:
    return render_template(template, form=form, errors=errors, roles=role_choices(), departments=list(DEPARTMENTS),
                           county_officer=Role.COUNTY_OFFICER, **extra), status


@bp.route("/users/new", methods=["GET", "POST"])
def new_user() -> Any:
    if request.method == "GET":
        return _form_page("admin/user_new.html", {"role": Role.CLERK}, {})
    form = _typed(CREATE_FIELDS)
    actor = current_actor()
    try:
        with write() as s:
            user, temporary = accounts.create_user(s, actor, username=form["username"],
                                                   display_name=form["display_name"], role=form["role"],
                                                   unit_code=form["unit"], department=_department(form))
            username = user.username
    except REFUSALS as exc:
        return _form_page("admin/user_new.html", form, place(exc, CREATE_FIELDS), exc.http_status)
    with read() as s:
        account = accounts.get_account(s, actor, username)
    return render_template("admin/temporary_password.html", account=account, password=temporary, created=True)


def _account(username: str) -> accounts.Account:
    with read() as s:
        return accounts.get_account(s, current_actor(), username)


def _edit_page(account: accounts.Account, form: dict[str, str], errors: dict[str, str], status: int = 200) -> Any:
    return _form_page("admin/user_edit.html", form, errors, status, account=account, now=clock.now(),
                      is_self=account.username == current_actor().username)


@bp.route("/users/<username>", methods=["GET", "POST"])
def edit_user(username: str) -> Any:
    account = _account(username)  # NotFound: a 404 page
    if request.method == "GET":
        form = {"display_name": account.display_name, "role": account.role, "unit": account.unit_code,
                "department": account.department or ""}
        return _edit_page(account, form, {})
    form = _typed(EDIT_FIELDS)
    try:
        with write() as s:
            accounts.update_user(s, current_actor(), account.username, display_name=form["display_name"],
                                 role=form["role"], unit_code=form["unit"], department=_department(form))
    except REFUSALS as exc:
        return _edit_page(account, form, place(exc, EDIT_FIELDS), exc.http_status)
    flash(_("已保存账号 %(username)s 的修改。", username=account.username))
    return redirect(url_for("admin.edit_user", username=account.username))


#: action → (engine call, page title, what it does, button, done message with %(username)s)
ACTIONS: dict[str, tuple[Callable[..., Any], LazyString, LazyString, LazyString, LazyString | None]] = {
    "disable": (accounts.disable_user, _l("停用账号"),
                _l("停用后，该账号立即退出登录、不能再登录；已办的案件和记录都会保留，以后可以重新启用。"),
                _l("确认停用"), _l("已停用账号 %(username)s。")),
    "enable": (accounts.enable_user, _l("启用账号"), _l("启用后，该账号可以用原来的密码重新登录。"), _l("确认启用"),
               _l("已启用账号 %(username)s。")),
    "reset": (accounts.reset_password, _l("重置密码"),
              _l("将为该账号生成一个新的临时密码（只显示一次），原密码立即失效，登录锁定同时解除；"
                 "本人用临时密码登录后须先改成自己的密码。"), _l("确认重置"), None),
}


def _confirm(username: str, action: str) -> Any:
    """GET: the confirmation page; POST: the engine call (refusals shown on the same page)."""
    call, title, explain, button, done = ACTIONS[action]
    account = _account(username)
    page = dict(account=account, action=action, title=str(title), explain=str(explain), button=str(button))
    if request.method == "GET":
        return render_template("admin/user_confirm.html", errors={}, **page)
    try:
        with write() as s:
            result = call(s, current_actor(), account.username)
    except REFUSALS as exc:
        return render_template("admin/user_confirm.html", errors={FORM: reasons.message(exc)}, **page), exc.http_status
    if action == "reset":
        return render_template("admin/temporary_password.html", account=_account(username), password=result,
                               created=False)
    if done is not None:
        flash(str(done) % {"username": account.username})
    return redirect(url_for("admin.edit_user", username=account.username))


@bp.route("/users/<username>/disable", methods=["GET", "POST"])
def disable_user(username: str) -> Any:
    return _confirm(username, "disable")


@bp.route("/users/<username>/enable", methods=["GET", "POST"])
def enable_user(username: str) -> Any:
    return _confirm(username, "enable")


@bp.route("/users/<username>/reset-password", methods=["GET", "POST"])
def reset_password(username: str) -> Any:
    return _confirm(username, "reset")
