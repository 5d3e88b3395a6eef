"""Operator settings, read from the environment once (`get()`, cached) and checked there: every engine
module asks `settings.get()` instead of reading `os.environ`, so one bad value is refused when a command or
the server starts — with the variable's name, what it must be, and nothing changed — rather than deep in a
case step. Each setting has a safe default; `YICUN_*` variables override them (README, "Settings").

The web's own settings (secret key, cookies, proxies, workers) are in `web.config`; the test suite clears
the cache around every test (tests/conftest.py) so a test may set a variable before the code reads it.
"""
from __future__ import annotations

import functools
import logging
import math
import os
from dataclasses import dataclass
from pathlib import Path

#: the repository (or installed tree) root: where catalog.yaml, calendar.yaml and bpmn/ live by default
ROOT = Path(__file__).resolve().parent.parent
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
#: PBKDF2-SHA256 rounds for a new password hash. Stored hashes carry their own count, so raising it later
#: only costs new hashes; lowering is allowed down to the bound for the test suite alone (tests/conftest.py)
PASSWORD_HASH_ITERATIONS = 120_000
#: the longest window of a public door's rate limit (a day): engine.ratelimit forgets older attempts
LOOKUP_WINDOW_MINUTES_MAX = 1440
#: what an attachment may be: the types `engine.files` recognises by their first bytes (a type it cannot check
#: is never accepted, whatever the browser declares); YICUN_ATTACHMENT_TYPES may narrow them
ATTACHMENT_TYPES = ("image/jpeg", "image/png", "application/pdf")


class SettingError(ValueError):
    """A `YICUN_*` variable holds a value the engine refuses; the message names it and says what it must be."""


def _raw(name: str) -> str | None:
    raw = os.environ.get(name)
    return None if raw is None or not raw.strip() else raw.strip()


def _int(name: str, default: int, low: int, high: int) -> int:
    raw = _raw(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SettingError(f"{name} must be a whole number, not {raw!r}") from None
    if not low <= value <= high:
        raise SettingError(f"{name} must be between {low} and {high}, not {value}")
    return value


def _float(name: str, default: float, low: float, high: float) -> float:
    raw = _raw(name)
    if raw is None:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise SettingError(f"{name} must be a number, not {raw!r}") from None
    if not (math.isfinite(value) and low <= value <= high):
        raise SettingError(f"{name} must be between {low} and {high}, not {raw}")
    return value


def _flag(name: str, default: bool) -> bool:
    raw = _raw(name)
    if raw is None:
        return default
    if raw.lower() in ("1", "true", "yes", "on"):
        return True
    if raw.lower() in ("0", "false", "no", "off"):
        return False
    raise SettingError(f"{name} must be 1 or 0, not {raw!r}")


def _path(name: str, default: Path, kind: str) -> Path:
    """A file or folder the operator names must exist (a typo would otherwise fall back silently); the
    default may be absent (an installed package without the repository's files)."""
    raw = _raw(name)
    if raw is None:
        return default
    path = Path(raw).expanduser()
    if not (path.is_dir() if kind == "folder" else path.is_file()):
        raise SettingError(f"{name} must name an existing {kind}, not {raw!r}")
    return path


def _choice(name: str, default: str, allowed: tuple[str, ...]) -> str:
    raw = _raw(name)
    if raw is None:
        return default
    if raw.upper() not in allowed:
        raise SettingError(f"{name} must be one of {', '.join(allowed)}, not {raw!r}")
    return raw.upper()


def _types(name: str, default: tuple[str, ...]) -> tuple[str, ...]:
    """A comma-separated subset of ATTACHMENT_TYPES (an empty list would refuse every upload: not allowed)."""
    raw = _raw(name)
    if raw is None:
        return default
    chosen = tuple(dict.fromkeys(t.strip().lower() for t in raw.split(",") if t.strip()))
    if not chosen or any(t not in ATTACHMENT_TYPES for t in chosen):
        raise SettingError(f"{name} must be a comma-separated list of {', '.join(ATTACHMENT_TYPES)}, not {raw!r}")
    return chosen


def _database_url(name: str, default: str) -> str:
    raw = _raw(name)
    if raw is None:
        return default
    if not raw.startswith(("sqlite:", "postgresql:", "postgresql+psycopg:")):
        raise SettingError(f"{name} must be a sqlite:/// or postgresql:// URL, not {raw.split(':', 1)[0]!r}…")
    return raw


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
    #: 办件查询 and the 好差评 rating (no login; engine.ratelimit): tries from one client address within the
    #: window, whatever their outcome…
    lookup_ip_max_attempts: int = 10
    lookup_ip_window_minutes: int = 10
    #: …and wrong codes (or unknown numbers) given for one case number within its window, from any address:
    #: one case's 6-digit code cannot be guessed from many addresses either. While either is full, the
    #: right code is refused too.
    lookup_case_max_failures: int = 10
    lookup_case_window_minutes: int = 60
    #: the shortest password anyone may choose (never below 10)
    password_min_length: int = 10
    #: PBKDF2 rounds of a new password hash (see PASSWORD_HASH_ITERATIONS)
    password_hash_iterations: int = PASSWORD_HASH_ITERATIONS
    #: a limit turns yellow when at most max(1, ⌈ratio × limit⌉) working days are left (DESIGN §5)
    yellow_ratio: float = 0.2
    #: wall-clock budget of one expression or script evaluation, in seconds
    expression_seconds: float = 0.5
    #: an incident's first retry waits this long, doubling up to `incident_retry_max_seconds`
    incident_retry_seconds: int = 60
    incident_retry_max_seconds: int = 21_600
    #: the working-day overrides (each year's State Council schedule)
    calendar_file: Path = ROOT / "calendar.yaml"
    #: the service catalogue
    catalog_file: Path = ROOT / "catalog.yaml"
    #: the BPMN files `yicun init --demo` deploys
    bpmn_dir: Path = ROOT / "bpmn"
    #: the database every command and the web open unless `--db` says otherwise
    database_url: str = "sqlite:///instance/yicun.db"
    #: where the supervisors' reports read (a read replica of the database; DESIGN §7); None: the database
    #: itself. Opened read-only (`db.open_reports`)
    reports_database_url: str | None = None
    #: `--now` (a manual clock) is allowed: tests and demos only, never a server
    manual_clock: bool = False
    #: what `yicun` logs; SpiffWorkflow's own per-task chatter only at DEBUG (engine.logs)
    log_level: str = "INFO"
    #: the instance folder (secret key, the SQLite file by default, attachments' bytes); the web reads the same
    #: variable (web.config)
    instance_dir: Path = Path("instance")
    #: where attachments' bytes live (engine.files); None: `files/` in the instance folder
    files_dir: Path | None = None
    #: the largest scan or photo one attachment may be, in MB (the web's request limit follows it)
    attachment_max_mb: int = 10
    #: the types an attachment may be (a subset of ATTACHMENT_TYPES)
    attachment_types: tuple[str, ...] = ATTACHMENT_TYPES

    @property
    def attachment_max_bytes(self) -> int:
        return self.attachment_max_mb * 1024 * 1024

    @property
    def log_level_number(self) -> int:
        return logging.getLevelNamesMapping()[self.log_level]


@functools.lru_cache(maxsize=1)
def get() -> Settings:
    """The settings of this process. Raises `SettingError` naming the first bad variable."""
    d = Settings()
    return Settings(
        pause_grace_workdays=_int("YICUN_PAUSE_GRACE_WORKDAYS", d.pause_grace_workdays, 0, 5),
        accept_backdate_workdays=_int("YICUN_ACCEPT_BACKDATE_WORKDAYS", d.accept_backdate_workdays, 0, 30),
        login_max_failures=_int("YICUN_LOGIN_MAX_FAILURES", d.login_max_failures, 1, 100),
        login_ip_max_failures=_int("YICUN_LOGIN_IP_MAX_FAILURES", d.login_ip_max_failures, 1, 10_000),
        login_ip_window_minutes=_int("YICUN_LOGIN_IP_WINDOW_MINUTES", d.login_ip_window_minutes, 1, 1440),
        login_lock_minutes=_int("YICUN_LOGIN_LOCK_MINUTES", d.login_lock_minutes, 1, 1440),
        lookup_ip_max_attempts=_int("YICUN_LOOKUP_IP_MAX_ATTEMPTS", d.lookup_ip_max_attempts, 1, 10_000),
        lookup_ip_window_minutes=_int("YICUN_LOOKUP_IP_WINDOW_MINUTES", d.lookup_ip_window_minutes, 1,
                                      LOOKUP_WINDOW_MINUTES_MAX),
        lookup_case_max_failures=_int("YICUN_LOOKUP_CASE_MAX_FAILURES", d.lookup_case_max_failures, 1, 1_000),
        lookup_case_window_minutes=_int("YICUN_LOOKUP_CASE_WINDOW_MINUTES", d.lookup_case_window_minutes, 1,
                                        LOOKUP_WINDOW_MINUTES_MAX),
        password_min_length=_int("YICUN_PASSWORD_MIN_LENGTH", d.password_min_length, 10, 128),
        password_hash_iterations=_int("YICUN_PASSWORD_HASH_ITERATIONS", d.password_hash_iterations,
                                      1_000, 10_000_000),
        yellow_ratio=_float("YICUN_YELLOW_RATIO", d.yellow_ratio, 0.0, 1.0),
        expression_seconds=_float("YICUN_EXPRESSION_SECONDS", d.expression_seconds, 0.05, 10.0),
        incident_retry_seconds=_int("YICUN_INCIDENT_RETRY_SECONDS", d.incident_retry_seconds, 1, 30 * 86_400),
        incident_retry_max_seconds=_int("YICUN_INCIDENT_RETRY_MAX_SECONDS", d.incident_retry_max_seconds,
                                        1, 30 * 86_400),
        calendar_file=_path("YICUN_CALENDAR", d.calendar_file, "file"),
        catalog_file=_path("YICUN_CATALOG", d.catalog_file, "file"),
        bpmn_dir=_path("YICUN_BPMN_DIR", d.bpmn_dir, "folder"),
        database_url=_database_url("YICUN_DATABASE_URL", d.database_url),
        reports_database_url=(_database_url("YICUN_REPORTS_DATABASE_URL", "")
                              if _raw("YICUN_REPORTS_DATABASE_URL") else None),
        manual_clock=_flag("YICUN_MANUAL_CLOCK", d.manual_clock),
        log_level=_choice("YICUN_LOG_LEVEL", d.log_level, LOG_LEVELS),
        instance_dir=Path(_raw("YICUN_INSTANCE_DIR") or d.instance_dir).expanduser(),
        files_dir=_path("YICUN_FILES_DIR", Path(), "folder") if _raw("YICUN_FILES_DIR") else None,
        attachment_max_mb=_int("YICUN_ATTACHMENT_MAX_MB", d.attachment_max_mb, 1, 100),
        attachment_types=_types("YICUN_ATTACHMENT_TYPES", d.attachment_types),
    )
