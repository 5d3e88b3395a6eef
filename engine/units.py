"""Org units' contact details: the phone and address a 受理回执 or 一次性告知书 prints for the centre
(村民服务中心) that issued it (`queries.intake.Centre` reads `org_units.phone` / `address`).

Why a module of its own: `orgs` is the tree, its queries and its seed, read by every request; setting a
unit's contact details is an administrative write with a rule (`policy.may_administer_units`: admins and
the server's operator), input checks and an audit row, which the web's admin pages and
`yicun units contact` must share, like `accounts` for users. Every function takes a session and leaves
the commit to its caller (`db.transaction`); bad input raises before anything is written.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session, aliased

from . import clock, db
from .cases import audit
from .errors import InvalidInput, NotFound
from .forms import clean_text
from .models import OrgUnit
from .policy import Actor, may_administer_units, require
from .vocab import LEVELS

#: A mobile number (11 digits, 13x–19x) or a landline with its area code, the hyphen optional
#: (0737-4221234, 07374221234): what a citizen dials from the paper they were handed.
MOBILE = re.compile(r"1[3-9][0-9]{9}")
LANDLINE = re.compile(r"0[0-9]{2,3}-?[0-9]{7,8}")
PHONE_MAX = 32  # the column's size; a valid number is at most 13 characters
ADDRESS_MAX = 200  # the column's size
CODE_MAX = 20
#: The most units one call returns (the admin page shows 50 a page); the search text's bound.
UNITS_PAGE_MAX = 200
SEARCH_MAX = 64


@dataclass(frozen=True)
class UnitContact:
    """A unit as the admin pages show it: where it sits (its parent's name tells apart the villages of
    the same name in two townships) and what the papers it issues print."""
    code: str
    name: str
    level: str
    parent_code: str | None
    parent_name: str | None
    phone: str | None
    address: str | None


@dataclass(frozen=True)
class UnitPage:
    items: list[UnitContact]
    total: int  # all units that match, not only this page's
    offset: int
    limit: int


# ------------------------------------------------------------------------------------------- writing
def clean_phone(value: Any) -> str | None:
    """A phone number as typed, spaces removed; None for none. `InvalidInput` (reason `unit.phone_invalid`,
    field `phone`) for anything that is not a mobile or a landline number with its area code."""
    text = clean_text(value, "联系电话 / phone", PHONE_MAX, required=False, field="phone").replace(" ", "")
    if not text:
        return None
    if not (MOBILE.fullmatch(text) or LANDLINE.fullmatch(text)):
        raise InvalidInput("联系电话须为 11 位手机号或带区号的固定电话（如 0737-4221234） / a mobile number "
                           "(11 digits starting with 1) or a landline with its area code such as 0737-4221234",
                           reason="unit.phone_invalid", field="phone")
    return text


def clean_address(value: Any) -> str | None:
    """The centre's address: stripped, at most 200 characters, no control characters; None for none."""
    return clean_text(value, "地址 / address", ADDRESS_MAX, required=False, field="address") or None


def set_unit_contact(session: Session, actor: Actor, unit_code: Any, *, phone: Any = None, address: Any = None,
                     now: datetime | None = None) -> UnitContact:
    """Set a unit's phone and address (None: leave it as it is; "" clears it). Both are checked before
    either is written; no change writes nothing; a change is audited (`unit.updated`, old → new)."""
    _require_admin(actor)
    new_phone = clean_phone(phone) if phone is not None else None
    new_address = clean_address(address) if address is not None else None
    unit = _unit(session, unit_code, lock=True)
    changes: dict[str, list[str | None]] = {}
    if phone is not None and new_phone != unit.phone:
        changes["phone"] = [unit.phone, new_phone]
    if address is not None and new_address != unit.address:
        changes["address"] = [unit.address, new_address]
    if not changes:
        return _contact(session, unit)
    before = _contact_text(unit.phone, unit.address)
    if "phone" in changes:
        unit.phone = new_phone
    if "address" in changes:
        unit.address = new_address
    session.flush()
    details: dict[str, Any] = {"unit": unit.code, "unit_name": unit.name, "changes": changes, **actor.audit_details}
    audit.record(session, "unit.updated", at=now or clock.now(), actor_id=actor.id, old=before,
                 new=_contact_text(unit.phone, unit.address), **details)
    return _contact(session, unit)


# ------------------------------------------------------------------------------------------- reading
def list_unit_contacts(session: Session, actor: Actor, *, text: Any = None, level: Any = None,
                       missing_phone: bool = False, offset: int = 0, limit: int = 50) -> UnitPage:
    """Units in code order (the tree's order) for the admin pages (admins and the operator only, like the
    write): `text` in the code or the name, of `level`, only those without a phone if `missing_phone`.
    An unknown level is `InvalidInput` (a typo must not look like "nothing matched")."""
    _require_admin(actor)
    if not (isinstance(offset, int) and isinstance(limit, int) and offset >= 0 and 1 <= limit <= UNITS_PAGE_MAX):
        raise InvalidInput(f"offset ≥ 0, limit 1–{UNITS_PAGE_MAX}", reason="units.page_invalid")
    parent = aliased(OrgUnit)
    stmt = select(OrgUnit, parent.code, parent.name).outerjoin(parent, parent.id == OrgUnit.parent_id)
    needle = clean_text(text, "搜索 / search", SEARCH_MAX, required=False, field="q").lower()
    if needle:
        stmt = stmt.where(or_(OrgUnit.code.contains(needle, autoescape=True),
                              func.lower(OrgUnit.name).contains(needle, autoescape=True)))
    if level not in (None, ""):
        if level not in LEVELS:
            raise InvalidInput(f"没有层级 {str(level)[:40]!r} / unknown level; one of {', '.join(LEVELS)}",
                               reason="unit.level_unknown", field="level")
        stmt = stmt.where(OrgUnit.level == level)
    if missing_phone:
        stmt = stmt.where(or_(OrgUnit.phone.is_(None), OrgUnit.phone == ""))
    total = session.scalar(select(func.count()).select_from(stmt.subquery())) or 0
    rows = session.execute(stmt.order_by(OrgUnit.code).offset(offset).limit(limit)).all()
    return UnitPage([_row(unit, code, name) for unit, code, name in rows], total, offset, limit)


def get_unit_contact(session: Session, actor: Actor, unit_code: Any) -> UnitContact:
    """One unit with its contact details (admins and the operator only); `NotFound` if there is none."""
    _require_admin(actor)
    return _contact(session, _unit(session, unit_code))


# ------------------------------------------------------------------------------------------- helpers
def _require_admin(actor: Actor) -> None:
    require(may_administer_units(actor), "units.administer",
            "只有系统管理员可以设置单位的联系方式 / only administrators may set a unit's contact details")


def _unit(session: Session, code: Any, lock: bool = False) -> OrgUnit:
    """The unit with exactly this code (locked on PostgreSQL until commit when about to change it)."""
    unit = None
    if isinstance(code, str) and 0 < len(code) <= CODE_MAX:
        stmt = select(OrgUnit).where(OrgUnit.code == code)
        if lock and not db.is_sqlite(session):
            stmt = stmt.with_for_update()
        unit = session.scalar(stmt)
    if unit is None:
        shown = str(code)[:CODE_MAX]
        raise NotFound(f"没有代码为 {shown} 的单位 / no org unit with code {shown!r}", reason="unit.not_found",
                       unit=shown)
    return unit


def _contact(session: Session, unit: OrgUnit) -> UnitContact:
    parent = session.get(OrgUnit, unit.parent_id) if unit.parent_id is not None else None
    return _row(unit, parent.code if parent else None, parent.name if parent else None)


def _row(unit: OrgUnit, parent_code: str | None, parent_name: str | None) -> UnitContact:
    return UnitContact(unit.code, unit.name, unit.level, parent_code, parent_name, unit.phone or None,
                       unit.address or None)


def _contact_text(phone: str | None, address: str | None) -> str:
    """old → new of the audit row: both values, "—" for none (the details keep them apart)."""
    return f"{phone or '—'} · {address or '—'}"
