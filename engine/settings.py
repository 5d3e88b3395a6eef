"""Operator settings read from the environment once: the bounds the engine enforces on what users may
back-date, and how hard logins are throttled. Each has a safe default; `YICUN_*` variables override them
(README, "Limits" and "Accounts")."""
from __future__ import annotations

import functools
import os
from dataclasses import dataclass


def _int(name: str, default: int, low: int, high: int) -> int:
    raw = os.environ.get(name)
    if raw is None or not raw.strip():
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(f"{name} must be a whole number, not {raw!r}") from None
    if not low <= value <= high:
        raise ValueError(f"{name} must be between {low} and {high}, not {value}")
    return value


@dataclass(frozen=True)
class Settings:
    #: how far back (working days) a pause or resume may be recorded late: the clerk noted it on paper
    pause_grace_workdays: int = 1
    #: how far back (working days) an application taken offline may be entered (补录) with its real
    #: acceptance time
    accept_backdate_workdays: int = 10
    #: consecutive wrong passwords after which an account is locked (README "Accounts")
    login_max_failures: int = 5
    #: failed logins from one IP address within `login_ip_window_minutes` after which the address is locked
    login_ip_max_failures: int = 20
    login_ip_window_minutes: int = 15
    #: how long a locked account or address is refused, even with the right password
    login_lock_minutes: int = 15
    #: the shortest password anyone may choose (never below 10)
    password_min_length: int = 10


@functools.lru_cache(maxsize=1)
def get() -> Settings:
    return Settings(
        pause_grace_workdays=_int("YICUN_PAUSE_GRACE_WORKDAYS", 1, 0, 5),
        accept_backdate_workdays=_int("YICUN_ACCEPT_BACKDATE_WORKDAYS", 10, 0, 30),
        login_max_failures=_int("YICUN_LOGIN_MAX_FAILURES", 5, 1, 100),
        login_ip_max_failures=_int("YICUN_LOGIN_IP_MAX_FAILURES", 20, 1, 10_000),
        login_ip_window_minutes=_int("YICUN_LOGIN_IP_WINDOW_MINUTES", 15, 1, 1440),
        login_lock_minutes=_int("YICUN_LOGIN_LOCK_MINUTES", 15, 1, 1440),
        password_min_length=_int("YICUN_PASSWORD_MIN_LENGTH", 10, 10, 128),
    )
