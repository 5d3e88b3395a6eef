"""`Page[T]`: one page of a list and the cursor of the next, by keyset (never OFFSET).

Why keyset: a page is "the next `limit` rows after this key" in the order of an index — (due, id) for
tasks, id for cases — so the tenth page costs what the first does and a row added or closed meanwhile
neither repeats nor skips another. Ties on the due instant are broken by the id, which is unique, so a
walk sees every row exactly once.

A cursor is opaque to clients (base64url of a small JSON object) and untrusted on the way back: anything
that is not a cursor this module wrote for that list is `InvalidInput` with reason `page.cursor_invalid`,
never a traceback.
"""
from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypeVar

from ..clock import to_utc
from ..errors import InvalidInput
from .serialize import to_json

T = TypeVar("T")
R = TypeVar("R")

#: The most rows one page may hold (the CLI's --limit has the same bound).
MAX_PAGE = 10_000
#: A cursor this module writes is well under 100 characters; anything longer is not one.
MAX_CURSOR = 200
_MAX_ID = 2 ** 63 - 1


@dataclass(frozen=True)
class Page(Generic[T]):
    """`items` in the list's order; `next_cursor` fetches the rows after them (None: this is the last page);
    `prev_cursor`, where a list can page back (the workbench's 上一页), the rows before them (None: this is
    the first page, as far as the list knows)."""
    items: tuple[T, ...]
    next_cursor: str | None = None
    prev_cursor: str | None = None

    def __iter__(self) -> Iterator[T]:
        return iter(self.items)

    def __len__(self) -> int:
        return len(self.items)

    def to_json(self) -> dict[str, Any]:
        return {"items": to_json(self.items), "next_cursor": self.next_cursor}


def check_limit(limit: Any) -> int:
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_PAGE:
        raise InvalidInput(f"每页条数应为 1–{MAX_PAGE} / limit must be a whole number from 1 to {MAX_PAGE}",
                           reason="page.limit_invalid", limit=str(limit)[:20])
    return limit


def page_of(rows: Sequence[R], limit: int, item: Callable[[R], T], key: Callable[[R], str],
            after_cursor: bool = False) -> Page[T]:
    """The page of `rows` fetched with LIMIT `limit` + 1: the extra row, if any, says there is a next page,
    whose cursor is the key of this page's last row. `after_cursor`: the page was asked for after a cursor,
    so there are rows before it, and the key of its first row pages back (`page_before`)."""
    shown = rows[:limit]
    return Page(tuple(item(r) for r in shown), key(shown[-1]) if len(rows) > limit else None,
                key(shown[0]) if after_cursor and shown else None)


def page_before(rows: Sequence[R], limit: int, item: Callable[[R], T], key: Callable[[R], str]) -> Page[T]:
    """The page before a cursor, from `rows` fetched backwards (the list's order reversed) with LIMIT
    `limit` + 1: shown in the list's order; the extra row says there are rows before this page too. The
    rows after it are the page the cursor came from, so its last row's key always fetches them."""
    shown = list(reversed(rows[:limit]))
    return Page(tuple(item(r) for r in shown), key(shown[-1]) if shown else None,
                key(shown[0]) if len(rows) > limit else None)


# ------------------------------------------------------------------------------------------- cursors
def _encode(kind: str, **position: Any) -> str:
    text = json.dumps({"k": kind, **position}, separators=(",", ":"))
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def _bad(why: str) -> InvalidInput:
    return InvalidInput(f"翻页标记无效，请从第一页重新开始 / bad page cursor: {why}", reason="page.cursor_invalid")


def _decode(cursor: Any, kind: str) -> dict[str, Any]:
    if not isinstance(cursor, str) or not cursor or len(cursor) > MAX_CURSOR:
        raise _bad("not a cursor of this list")
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        value = json.loads(raw.decode("utf-8"))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise _bad("not a cursor of this list") from None
    if not isinstance(value, dict) or value.get("k") != kind:
        raise _bad(f"not a cursor of a {kind} list")
    ident = value.get("i")
    if isinstance(ident, bool) or not isinstance(ident, int) or not 0 <= ident <= _MAX_ID:
        raise _bad("its row id is out of range")
    return value


def task_cursor(due_at: datetime | None, task_id: int) -> str:
    return _encode("task", d=due_at.isoformat() if due_at is not None else None, i=task_id)


def read_task_cursor(cursor: Any) -> tuple[datetime | None, int]:
    """(due instant or None, task id) of a cursor `task_cursor` wrote."""
    value = _decode(cursor, "task")
    due = value.get("d")
    if due is None:
        return None, value["i"]
    if not isinstance(due, str):
        raise _bad("its due instant is not a date-time")
    try:
        return to_utc(due), value["i"]
    except ValueError:
        raise _bad("its due instant is not a date-time") from None


def case_cursor(case_id: int) -> str:
    return _encode("case", i=case_id)


def read_case_cursor(cursor: Any) -> int:
    return int(_decode(cursor, "case")["i"])


def note_cursor(notification_id: int) -> str:
    return _encode("note", i=notification_id)


def read_note_cursor(cursor: Any) -> int:
    return int(_decode(cursor, "note")["i"])
