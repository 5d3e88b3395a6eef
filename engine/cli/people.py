"""`yicun units …`, `users …`: the org tree, units' contact details and account administration (the
operator's side of `engine.units` and `engine.accounts`)."""
from __future__ import annotations

from typing import Any

from .. import accounts, db, orgs, units
from ..errors import UsageError
from ..policy import Actor
from .context import Context, bounded, password_stdin


def register(sub: Any) -> None:
    """Add this noun's sub-commands to `yicun`'s parser."""
    un = sub.add_parser("units", aliases=["unit"], help="org units").add_subparsers(dest="unit_cmd", required=True)
    sp = un.add_parser("list")
    sp.add_argument("--level", choices=orgs.LEVELS)
    sp.add_argument("--parent", help="code of the parent unit")
    sp.set_defaults(func=cmd_units_list)
    sp = un.add_parser("contact", help="show or set the phone and address a unit's 受理回执 and 一次性告知书 print "
                                       "(an empty value clears it)")
    sp.add_argument("code", help="unit code")
    sp.add_argument("--phone", help="a mobile number or a landline with its area code, e.g. 0737-4221234")
    sp.add_argument("--address", help="at most 200 characters")
    sp.set_defaults(func=cmd_units_contact)

    us = sub.add_parser("users", help="users").add_subparsers(dest="user_cmd", required=True)
    sp = us.add_parser("list")
    sp.add_argument("--role", choices=orgs.ROLES)
    sp.add_argument("--unit", help="unit code")
    sp.add_argument("--limit", type=bounded(1, 10_000, "--limit"))
    sp.set_defaults(func=cmd_users_list)
    sp = us.add_parser("add", help="create an account (prints a temporary password unless --password-stdin)")
    sp.add_argument("username")
    sp.add_argument("--name", required=True, help="display name (姓名)")
    sp.add_argument("--role", required=True, choices=orgs.ROLES)
    sp.add_argument("--unit", required=True, help="unit code")
    sp.add_argument("--department", help="county officers: 民政, 人社, …")
    sp.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    sp.set_defaults(func=cmd_users_add)
    sp = us.add_parser("edit", help="change an account's name, role, unit or department")
    sp.add_argument("username")
    sp.add_argument("--name")
    sp.add_argument("--role", choices=orgs.ROLES)
    sp.add_argument("--unit", help="unit code")
    sp.add_argument("--department")
    sp.set_defaults(func=cmd_users_edit)
    for name, helptext in (("disable", "stop an account from logging in"), ("enable", "let it log in again")):
        sp = us.add_parser(name, help=helptext)
        sp.add_argument("username")
        sp.set_defaults(func=cmd_users_state)
    sp = us.add_parser("passwd", help="reset a password (prints a temporary one unless --password-stdin); "
                                      "the user must change it at next login")
    sp.add_argument("username")
    sp.add_argument("--password-stdin", action="store_true", help="read the new password from standard input")
    sp.set_defaults(func=cmd_users_passwd)


def cmd_units_list(ctx: Context) -> None:
    with db.read(ctx.engine) as s:
        rows = [{"code": u.code, "name": u.name, "level": u.level} for u in
                orgs.list_units(s, ctx.args.level, ctx.args.parent)]
    ctx.emit(rows, lambda rs: "\n".join(f"{r['code']:<14} {r['level']:<9} {r['name']}" for r in rs))


def cmd_units_contact(ctx: Context) -> None:
    """Without --phone or --address: show the unit's contact details; with either: set it (as the operator,
    audited as `unit.updated`), the other left as it is."""
    a = ctx.args
    operator = Actor.operator()
    if a.phone is None and a.address is None:
        with db.read(ctx.engine) as s:
            unit = units.get_unit_contact(s, operator, a.code)
    else:
        with db.transaction(ctx.engine) as s:
            unit = units.set_unit_contact(s, operator, a.code, phone=a.phone, address=a.address)
    out = {"code": unit.code, "name": unit.name, "level": unit.level, "parent": unit.parent_name,
           "phone": unit.phone, "address": unit.address}
    ctx.emit(out, lambda r: f"{r['code']} {r['name']} ({r['level']}{', ' + r['parent'] if r['parent'] else ''}): "
                            f"phone {r['phone'] or '—'}, address {r['address'] or '—'}")


def cmd_users_list(ctx: Context) -> None:
    with db.read(ctx.engine) as s:
        rows = [{"username": u.username, "name": u.display_name, "role": u.role, "unit": u.unit.name,
                 "unit_code": u.unit.code, "department": u.department}
                for u in orgs.list_users(s, ctx.args.role, ctx.args.unit, ctx.args.limit)]
    ctx.emit(rows, lambda rs: "\n".join(f"{r['username']:<26} {r['role']:<16} {r['unit']:<10} {r['name']}" for r in rs))


def account_row(session: Any, username: str) -> dict[str, Any]:
    """The account as `accounts.get_account` shows it (never its password hash), as the CLI prints it."""
    a = accounts.get_account(session, Actor.operator(), username)
    return {"username": a.username, "name": a.display_name, "role": a.role, "unit": a.unit_name,
            "unit_code": a.unit_code, "department": a.department, "active": a.active,
            "must_change_password": a.must_change_password,
            "locked_until": a.locked_until.isoformat() if a.locked_until else None}


def account_text(r: dict[str, Any]) -> str:
    text = (f"{r['username']}: {r['name']}, {r['role']}{'/' + r['department'] if r['department'] else ''} "
            f"at {r['unit']} ({r['unit_code']})" + ("" if r["active"] else " — disabled")
            + (" — must change the password at next login" if r["must_change_password"] else ""))
    if r.get("temporary_password"):
        text += (f"\ntemporary password for {r['username']} (shown once; to be changed at first login): "
                 f"{r['temporary_password']}")
    return text


def cmd_users_add(ctx: Context) -> None:
    a = ctx.args
    password = password_stdin() if a.password_stdin else None
    with db.transaction(ctx.engine) as s:
        user, temporary = accounts.create_user(s, Actor.operator(), username=a.username, display_name=a.name,
                                               role=a.role, unit_code=a.unit, department=a.department,
                                               password=password)
        out = {**account_row(s, user.username), "temporary_password": temporary}
    ctx.emit(out, account_text)


def cmd_users_edit(ctx: Context) -> None:
    a = ctx.args
    if a.name is None and a.role is None and a.unit is None and a.department is None:
        raise UsageError("nothing to change: give --name, --role, --unit or --department", reason="cli.nothing_to_do")
    with db.transaction(ctx.engine) as s:
        accounts.update_user(s, Actor.operator(), a.username, display_name=a.name, role=a.role,
                             unit_code=a.unit, department=a.department)
        out = account_row(s, a.username)
    ctx.emit(out, account_text)


def cmd_users_state(ctx: Context) -> None:
    change = accounts.disable_user if ctx.args.user_cmd == "disable" else accounts.enable_user
    with db.transaction(ctx.engine) as s:
        change(s, Actor.operator(), ctx.args.username)
        out = account_row(s, ctx.args.username)
    ctx.emit(out, account_text)


def cmd_users_passwd(ctx: Context) -> None:
    password = password_stdin() if ctx.args.password_stdin else None
    with db.transaction(ctx.engine) as s:
        temporary = accounts.reset_password(s, Actor.operator(), ctx.args.username, password=password)
        out = {**account_row(s, ctx.args.username), "temporary_password": temporary}
    ctx.emit(out, lambda r: f"password of {r['username']} reset; to be changed at next login"
             + (f"\ntemporary password (shown once): {r['temporary_password']}" if r["temporary_password"] else ""))
