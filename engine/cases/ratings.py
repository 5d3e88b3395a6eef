"""The applicant's 好差评 (rating) of a closed case: given once per case, without logging in, with the
case number and its 查询码 as the credential — the same pair 办件查询 takes (`queries.public`).

Why here: `ratings` is a case table, and `engine.cases` is the one writer of case tables (DESIGN §1); the
rating is audited like every change (`case.rated`, no actor: the citizen has no account).

Order of the checks: the input first (a score 1–5, a comment of at most 500 characters without control
characters), so a refusal of bad input tells nothing about any case; then the credential (an unknown
number and a wrong code give the same `NotFound`, reason `lookup.not_found`, after the same work); then
the case (still open: `Conflict` `rating.not_closed`; rated before: `Conflict` `rating.already_given`,
which the unique constraint on `ratings.case_id` backs when two tries race). Nothing is written unless
all pass. The rate limit in front of it is the caller's (`engine.ratelimit.enter_lookup`), as for the lookup.
"""
from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from .. import clock, forms
from ..errors import Conflict, InvalidInput, NotFound
from ..models import T_CASE, T_RATING
from ..queries.models import RatingItem
from ..query_code import matching_case
from ..vocab import RATING_SCORES, CaseStatus
from . import audit

#: the longest comment (the column's length)
COMMENT_MAX = 500


def rate_case(session: Session, number: Any, code: Any, score: Any, comment: Any = None,
              now: datetime | None = None) -> RatingItem:
    """Record the applicant's rating of case `number` (see the module's docstring for the refusals) and
    return it. `score` is 1 (非常不满意) to 5 (非常满意), an int or its digit as a form sends it."""
    now = now or clock.now()
    value = _score(score)
    text = forms.clean_text(comment, "评价意见 / comment", COMMENT_MAX, required=False, field="comment") or None
    case_id = matching_case(session, number, code)
    if case_id is None:
        raise NotFound("没有这个办件，或查询码不对 / no case with this number and query code",
                       reason="lookup.not_found")
    conn = session.connection()
    case = conn.execute(select(T_CASE.c.number, T_CASE.c.status).where(T_CASE.c.id == case_id)).one()
    if case.status == CaseStatus.OPEN:
        raise Conflict(f"办件 {case.number} 尚未办结，办结后才能评价 / case {case.number} is still open; it can be "
                       "rated once it is closed", reason="rating.not_closed", case=case.number)
    if conn.execute(select(T_RATING.c.id).where(T_RATING.c.case_id == case_id)).first() is not None:
        raise _already(case.number)
    try:
        conn.execute(insert(T_RATING).values(case_id=case_id, score=value, comment=text, at=now))
    except IntegrityError:  # rated at the same moment by another request (PostgreSQL; SQLite runs them in turn)
        raise _already(case.number) from None
    audit.record(session, "case.rated", at=now, actor_id=None, case_id=case_id, new=str(value), score=value,
                 comment=text)
    return RatingItem(value, text, now)


def _score(value: Any) -> int:
    """1–5 as an int (not a bool) or as the digit a form posts; anything else is `rating.score_invalid`."""
    if isinstance(value, str) and len(value.strip()) == 1 and value.strip().isdigit():
        value = int(value.strip())
    if isinstance(value, bool) or not isinstance(value, int) or value not in RATING_SCORES:
        raise InvalidInput("请选择评价等级（1–5）/ choose a rating from 1 to 5", reason="rating.score_invalid",
                           field="score")
    return value


def _already(number: str) -> Conflict:
    return Conflict(f"办件 {number} 已经评价过，每个办件只能评价一次 / case {number} has been rated already; "
                    "a case is rated once", reason="rating.already_given", case=number)
