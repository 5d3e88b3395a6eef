"""What a person types into a search box, as a condition on cases: a case number (whole, its beginning, or
the six-digit sequence number printed on the receipt) or the applicant's name (any part of it).

Bounded (DESIGN invariant 10): at most `MAX_SEARCH` characters, no control characters — anything else is
`InvalidInput` with a reason, never a slow or failing query. Full-width digits and letters (what a Chinese
input method types) are read as their ASCII forms; `%`, `_` and the escape character match themselves.

A list applies the condition while it walks its own index (a unit's queue in due order, cases newest
first), so a name search costs at most that walk, never a scan of every case.
"""
from __future__ import annotations

import re
import unicodedata

from sqlalchemy import ColumnElement

from ..errors import InvalidInput
from ..models import Case

#: The longest text a search box takes (a case number is 14 characters, a name at most a few dozen).
MAX_SEARCH = 40
#: A whole case number: YY-<year>-<6 digits> (engine.cases.store.next_number).
_WHOLE_NUMBER = re.compile(r"^[A-Z]{2}-\d{4}-\d{6}$")
#: The beginning of a case number: letters, digits and hyphens, with at least one digit or hyphen.
_NUMBER_PREFIX = re.compile(r"^(?=.*[\d-])[A-Z0-9-]+$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def clean_search(text: str | None) -> str | None:
    """The search text as it is matched (NFKC, spaces collapsed), None when empty; `InvalidInput` when too
    long or holding control characters."""
    if text is None:
        return None
    if not isinstance(text, str):
        raise InvalidInput("搜索内容须为文字 / the search must be text", reason="search.invalid")
    if len(text) > 4 * MAX_SEARCH:  # refuse before normalising a very long text
        raise InvalidInput(f"搜索内容不能超过 {MAX_SEARCH} 个字 / at most {MAX_SEARCH} characters",
                           reason="search.too_long", max_length=MAX_SEARCH)
    if _CONTROL.search(text):
        raise InvalidInput("搜索内容不能含控制字符 / the search may not hold control characters",
                           reason="search.invalid")
    cleaned = " ".join(unicodedata.normalize("NFKC", text).split())
    if len(cleaned) > MAX_SEARCH:
        raise InvalidInput(f"搜索内容不能超过 {MAX_SEARCH} 个字 / at most {MAX_SEARCH} characters",
                           reason="search.too_long", max_length=MAX_SEARCH)
    return cleaned or None


def case_search(text: str | None) -> ColumnElement[bool] | None:
    """The condition on `Case` for a search text (`clean_search` first; None: no condition).

    - a whole case number (yy-2026-000123 as well): that case;
    - up to six digits: the sequence number of the receipt, in any year (123 finds YY-2026-000123);
    - letters/digits/hyphens otherwise (YY-2026-0001): case numbers that begin so;
    - anything else: applicants whose name holds the text.
    """
    cleaned = clean_search(text)
    if cleaned is None:
        return None
    upper = cleaned.upper()
    if _WHOLE_NUMBER.match(upper):
        return Case.number == upper
    if upper.isdigit() and len(upper) <= 6:
        return Case.number.like(f"%-{upper.zfill(6)}")
    if _NUMBER_PREFIX.match(upper):
        return Case.number.startswith(upper, autoescape=True)
    return Case.applicant_name.contains(cleaned, autoescape=True)
