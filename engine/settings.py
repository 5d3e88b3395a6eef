"""Operator settings read from the environment once: the bounds the engine enforces on what users may
back-date. Each has a safe default; `YICUN_*` variables override them (README, "Limits")."""
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


@functools.lru_cache(maxsize=1)
def get() -> Settings:
    return Settings(
        pause_grace_workdays=_int("YICUN_PAUSE_GRACE_WORKDAYS", 1, 0, 5),
        accept_backdate_workdays=_int("YICUN_ACCEPT_BACKDATE_WORKDAYS", 10, 0, 30),
    )
