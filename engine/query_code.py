"""The citizen's credential for 办件查询 and the 好差评 rating: a case number and its 查询码 (printed on the
受理回执; made by `cases.store.new_query_code`).

Why a module of its own: the lookup (`queries.public`), the rating (`cases.ratings`) and the rate limit
(`ratelimit`) must read a number the same way — a villager types `yy-2026-000123`, `2026000123` or
full-width digits on a phone keypad — and must check a code the same way: one indexed read, then a
constant-time comparison, with the same work for an unknown number as for a wrong code, so neither the
answer nor its timing tells which of the two it was.
"""
from __future__ import annotations

import hmac
import re
import unicodedata
from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from .models import T_CASE

#: what is read of a typed number or code at most (anything longer is not one)
TYPED_MAX = 64
#: a case number as `cases.store.next_number` makes it: YY-<year>-<6 digits>
NUMBER_MAX = 20
CODE_MAX = 16
_NUMBER = re.compile(r"(?:YY)?-?(\d{4})-?(\d{6})")
#: compared against when the number is unknown (or the case has no code), so that path costs the same;
#: the comparison's result is then ignored
_NO_CODE = b"\x00" * 6
_SEL_CODE = select(T_CASE.c.id, T_CASE.c.query_code).where(T_CASE.c.number == bindparam("number"))


def clean_number(typed: Any) -> str:
    """A case number as stored (`YY-2026-000123`) from what a person typed: width-folded (NFKC), spaces
    and case ignored, the `YY` and the dashes optional. Anything that is not a number comes back cleaned
    and bounded, but will not be found."""
    if not isinstance(typed, str):
        return ""
    text = "".join(unicodedata.normalize("NFKC", typed[:TYPED_MAX]).split()).upper()
    text = text.replace("—", "-").replace("–", "-").replace("_", "-")
    found = _NUMBER.fullmatch(text)
    if found:
        return f"YY-{found.group(1)}-{found.group(2)}"
    return "".join(ch for ch in text if ch.isprintable())[:NUMBER_MAX]


def clean_code(typed: Any) -> str:
    """A 查询码 as typed, width-folded with spaces removed and bounded (digits typed on a full-width
    keyboard are digits)."""
    if not isinstance(typed, str):
        return ""
    return "".join(unicodedata.normalize("NFKC", typed[:TYPED_MAX]).split())[:CODE_MAX]


def matching_case(session: Session, number: Any, code: Any) -> int | None:
    """The id of the case `number` if `code` is its 查询码, else None — for an unknown number, a wrong
    code and a case without a code alike, after the same work (one read by the unique number, one
    `hmac.compare_digest`)."""
    row = session.connection().execute(_SEL_CODE, {"number": clean_number(number)}).first()
    stored = row.query_code.encode() if row is not None and row.query_code else None
    given = clean_code(code).encode("utf-8", "replace")
    same = hmac.compare_digest(stored if stored is not None else _NO_CODE, given)
    return row.id if same and stored is not None and row is not None else None
