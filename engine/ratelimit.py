"""Sliding-window rate limits of the public doors — 办件查询 and the 好差评 rating, which need no login —
over the table `rate_events` (one row per counted attempt: bucket, key, instant).

Why the database and not memory: several web processes, or nodes behind a balancer (DESIGN §7), serve
the same citizens; a limit kept in each process's memory would multiply by their number and be forgotten
at every restart. Why a log of attempts (a sliding window) and not a counter reset every N minutes: a
counter lets twice the limit through around its reset; the log counts exactly the last `window`.

Bounded work per call, whatever the table holds: the count reads at most `limit` entries of the index
(bucket, key, at); counting an attempt is one insert; pruning deletes at most `PRUNE_BATCH` rows older
than the longest window a setting allows (a day), oldest first through the index on `at`. Each call adds
at most one row and may remove `PRUNE_BATCH`, so the table holds about a day of counted attempts and a
backlog (after a quiet night) drains within a few calls. A refused attempt is not counted: the wait after
hitting a limit is the window, not "until the client stops trying", and a flood of refused tries adds no
rows.

Two tries at the same moment must not both take the last place: on PostgreSQL each (bucket, key) is
serialised with a transaction-scoped advisory lock; SQLite's write transactions (BEGIN IMMEDIATE,
`db.transaction`) already run one at a time. The caller commits (`db.transaction`), as with every
engine service; a refusal (`TooMany`) raised inside it rolls back only the pruning.

The lookup's own limits (README "Settings"): `lookup_ip_max_attempts` tries per client address within
`lookup_ip_window_minutes`, whatever their outcome; and `lookup_case_max_failures` wrong codes per case
number within `lookup_case_window_minutes`, from any address — so one case's six-digit code cannot be
guessed from many addresses either. While either is full, even the right code is refused (`TooMany`,
reason `lookup.too_many`). Unknown numbers count like wrong codes, so a full bucket tells nothing about
whether the case exists.
"""
from __future__ import annotations

import hashlib
import ipaddress
import math
from datetime import datetime, timedelta

from sqlalchemy import bindparam, delete, func, insert, select
from sqlalchemy.orm import Session

from . import db, settings
from .errors import TooMany
from .models import T_RATE
from .query_code import clean_number

#: rows older than this are of no window (no setting allows a longer one) and may be deleted
RETENTION = timedelta(minutes=settings.LOOKUP_WINDOW_MINUTES_MAX)
#: the most expired rows one call deletes
PRUNE_BATCH = 50
BUCKET_MAX = 16
KEY_MAX = 64
#: the lookup's buckets: attempts per client address, failures per case number
LOOKUP_IP = "lookup.ip"
LOOKUP_CASE = "lookup.case"

_INS = insert(T_RATE)
_PRUNE = delete(T_RATE).where(T_RATE.c.id.in_(
    select(T_RATE.c.id).where(T_RATE.c.at < bindparam("before")).order_by(T_RATE.c.at)
    .limit(PRUNE_BATCH)))


def _recent(session: Session, bucket: str, key: str, limit: int, window: timedelta, now: datetime) -> list[datetime]:
    """The instants of the newest attempts counted within `window` before `now`, at most `limit`."""
    return list(session.scalars(
        select(T_RATE.c.at).where(T_RATE.c.bucket == bucket, T_RATE.c.key == key, T_RATE.c.at > now - window)
        .order_by(T_RATE.c.at.desc()).limit(limit)))


def _check(bucket: str, key: str, limit: int, window: timedelta) -> None:
    if not (0 < len(bucket) <= BUCKET_MAX and len(key) <= KEY_MAX and limit >= 1 and window > timedelta(0)):
        raise ValueError(f"bad rate limit: bucket {bucket!r}, key of {len(key)} characters, limit {limit}, "
                         f"window {window}")


def _serialise(session: Session, bucket: str, key: str) -> None:
    """One try of (bucket, key) at a time on PostgreSQL, until the transaction ends."""
    if not db.is_sqlite(session):
        digest = hashlib.sha256(f"yicun.rate:{bucket}:{key}".encode()).digest()
        session.execute(select(func.pg_advisory_xact_lock(int.from_bytes(digest[:8], "big", signed=True))))


def has_room(session: Session, bucket: str, key: str, limit: int, window: timedelta, now: datetime) -> bool:
    """True when fewer than `limit` attempts of `key` were counted within `window` before `now`."""
    _check(bucket, key, limit, window)
    return len(_recent(session, bucket, key, limit, window, now)) < limit


def record(session: Session, bucket: str, key: str, now: datetime) -> None:
    """Count one attempt of `key` at `now`, and forget a bounded batch of attempts older than any window."""
    if not (0 < len(bucket) <= BUCKET_MAX and len(key) <= KEY_MAX):
        raise ValueError(f"bad rate bucket {bucket!r} or key of {len(key)} characters")
    session.execute(_INS, {"bucket": bucket, "key": key, "at": now})
    session.execute(_PRUNE, {"before": now - RETENTION})


def hit(session: Session, bucket: str, key: str, limit: int, window: timedelta, now: datetime) -> bool:
    """One attempt of `key` at the door `bucket`: counted and True while fewer than `limit` were counted
    within `window` before `now`; otherwise False and not counted (see the module's docstring)."""
    _check(bucket, key, limit, window)
    _serialise(session, bucket, key)
    if not has_room(session, bucket, key, limit, window, now):
        return False
    record(session, bucket, key, now)
    return True


def retry_after(session: Session, bucket: str, key: str, limit: int, window: timedelta, now: datetime) -> int:
    """Seconds until an attempt of `key` is counted again (0 when it would be now): when the oldest of the
    newest `limit` attempts leaves the window."""
    _check(bucket, key, limit, window)
    recent = _recent(session, bucket, key, limit, window, now)
    if len(recent) < limit:
        return 0
    return max(1, math.ceil((recent[-1] + window - now).total_seconds()))


# ------------------------------------------------------------------------------------------- 办件查询
def client_key(address: str | None) -> str:
    """The key of a client: its IP address in canonical form (one address is one key however written);
    an IPv6 client by its /64, the block one household or phone is given (it may use any address in it).
    No address: one shared key, so an unknown client is limited, never free."""
    if not isinstance(address, str) or not address.strip():
        return "unknown"
    try:
        ip = ipaddress.ip_address(address.strip())
    except ValueError:
        return "".join(ch for ch in address.strip() if ch.isprintable())[:KEY_MAX] or "unknown"
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return ip.ipv4_mapped.compressed
        return ipaddress.ip_network(f"{ip}/64", strict=False).compressed
    return ip.compressed


def _limits() -> tuple[int, timedelta, int, timedelta]:
    s = settings.get()
    return (s.lookup_ip_max_attempts, timedelta(minutes=s.lookup_ip_window_minutes),
            s.lookup_case_max_failures, timedelta(minutes=s.lookup_case_window_minutes))


def enter_lookup(session: Session, address: str | None, number: str, now: datetime) -> None:
    """Let one lookup (or rating) of case `number` from the client at `address` through the door: count
    it for the address, or raise `TooMany` (reason `lookup.too_many`, `minutes` to wait, `retry_after` in
    seconds) when the address has used up its tries or the number its wrong codes — the right code
    included. Call `lookup_failed` after a wrong code or an unknown number."""
    ip_limit, ip_window, case_limit, case_window = _limits()
    client, case = client_key(address), clean_number(number)[:KEY_MAX]
    _serialise(session, LOOKUP_IP, client)
    _serialise(session, LOOKUP_CASE, case)
    waits = [retry_after(session, LOOKUP_IP, client, ip_limit, ip_window, now),
             retry_after(session, LOOKUP_CASE, case, case_limit, case_window, now)]
    wait = max(waits)
    if wait:
        raise TooMany(f"too many lookups from {client} or of case {case}: try again in {wait} s",
                      reason="lookup.too_many", minutes=math.ceil(wait / 60), retry_after=wait)
    record(session, LOOKUP_IP, client, now)


def lookup_failed(session: Session, number: str, now: datetime) -> None:
    """A lookup or rating of `number` gave a wrong code, or the number is unknown: count it against the
    number (unknown numbers too, so a full bucket does not tell that a case exists)."""
    record(session, LOOKUP_CASE, clean_number(number)[:KEY_MAX], now)
