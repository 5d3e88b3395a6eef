"""Accounts: the one writer of users — create, edit, disable, enable, reset and change passwords — and
the login check with its throttle.

Why a module of its own: `orgs` is the tree, its queries and its seed; an account change carries a
rule (only admins and the server's operator administer users), a password policy and an audit row,
and the web's admin pages, its login form and `yicun users …` must all go through the same functions.
Every function takes a session and leaves the commit to its caller (`db.transaction`), like every
other engine service; bad input raises before anything is written.

Logins and transactions. A refused login must leave its trace — the failure counter, the lock, the
audit row — but a service that raises makes its caller roll back. So `authenticate` never raises for a
refusal: it records the attempt and returns a `LoginResult` holding the refusal (`Forbidden` with reason
`auth.failed`, `auth.locked` or `auth.disabled`) as `error`; the caller commits, and only then raises it.
`login(engine, …)` does exactly that in one call and is what the web uses.

Throttling (README "Accounts"): `login_max_failures` consecutive wrong passwords lock an account for
`login_lock_minutes`; `login_ip_max_failures` failures from one address within
`login_ip_window_minutes` lock the address as long. While locked, even the right password is refused,
and the attempt is neither checked nor counted. A name without an account is throttled in the same way
(from the failure log, which keeps a day), and a wrong name costs a password hash like a wrong password,
so neither the messages, the locks nor the time taken tell which names exist.
"""
from __future__ import annotations

import functools
import hashlib
import ipaddress
import re
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, delete, func, insert, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from . import clock, db, settings
from .cases import audit
from .cases.service import release_claims_of
from .errors import Conflict, Forbidden, InvalidInput, NotFound
from .forms import clean_text, control_characters
from .models import LoginFailure, OrgUnit, User
from .orgs import DEMO_PASSWORD, check_password, credential_stamp, hash_password
from .policy import Actor, is_staff, may_administer_users, require
from .vocab import DEPARTMENTS, USER_ROLES, Level, Role

USERNAME = re.compile(r"[A-Za-z0-9._-]{3,64}")
DISPLAY_NAME_MAX = 100
PASSWORD_MAX = 256
#: How long failed logins are kept: longer than any window or lock the settings allow (a day each).
FAILURE_RETENTION = timedelta(days=2)
#: Where each role may sit: a clerk in a village, an agent or township officer in a township, a county
#: officer in a county (with a department); supervisors, designers and admins at any level.
ROLE_LEVELS: dict[str, tuple[str, ...]] = {
    Role.CLERK: (Level.VILLAGE,),
    Role.AGENT: (Level.TOWNSHIP,),
    Role.TOWNSHIP_OFFICER: (Level.TOWNSHIP,),
    Role.COUNTY_OFFICER: (Level.COUNTY,),
    Role.SUPERVISOR: (Level.CITY, Level.COUNTY, Level.TOWNSHIP, Level.VILLAGE),
    Role.DESIGNER: (Level.CITY, Level.COUNTY, Level.TOWNSHIP, Level.VILLAGE),
    Role.ADMIN: (Level.CITY, Level.COUNTY, Level.TOWNSHIP, Level.VILLAGE),
}
_TEMP_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"  # no 0/o, 1/l/i: read out over the phone


# ------------------------------------------------------------------------------------------- passwords
def check_password_policy(password: Any, username: str) -> None:
    """Refuse (`InvalidInput`, reason `password.*`) a password nobody should choose: shorter than the
    minimum (10 unless raised), over 256 characters, with control characters, containing the username,
    made of one kind of character only (all digits, all lower-case letters…) or of fewer than four
    different characters, or containing the demo password (the demo seeds it; nobody may choose it)."""
    minimum = settings.get().password_min_length
    if not isinstance(password, str) or not password:
        raise InvalidInput("请输入密码 / a password is required", reason="password.required")
    if len(password) > PASSWORD_MAX:
        raise InvalidInput(f"密码不能超过 {PASSWORD_MAX} 位 / at most {PASSWORD_MAX} characters",
                           reason="password.too_long", max_length=PASSWORD_MAX)
    if control_characters(password) or "\t" in password or "\n" in password:
        raise InvalidInput("密码不能含控制字符或换行 / no control characters or line breaks",
                           reason="password.control_characters")
    if len(password) < minimum:
        raise InvalidInput(f"密码至少 {minimum} 位 / at least {minimum} characters",
                           reason="password.too_short", min_length=minimum)
    if username and username.lower() in password.lower():
        raise InvalidInput("密码不能包含用户名 / the password must not contain the username",
                           reason="password.contains_username")
    if len(_classes(password)) < 2:
        raise InvalidInput("密码不能只由一类字符组成（如全是数字），请混用字母、数字或符号 / "
                           "mix at least two kinds of characters (letters, digits, symbols), not e.g. only digits",
                           reason="password.one_kind")
    if len(set(password)) < 4:
        raise InvalidInput("密码重复字符太多，过于简单 / too simple: too many repeated characters",
                           reason="password.too_simple")
    if DEMO_PASSWORD in password.lower():
        raise InvalidInput("不能使用演示密码 / the demo password may not be used", reason="password.demo")


def _classes(password: str) -> set[str]:
    kinds = set()
    for ch in password:
        kinds.add("lower" if "a" <= ch <= "z" else "upper" if "A" <= ch <= "Z" else
                  "digit" if "0" <= ch <= "9" else "other")
    return kinds


def temporary_password(username: str = "") -> str:
    """A random password to hand over once (12 letters and digits in three groups, ≈ 59 bits) that
    passes the policy; its holder must change it at first login."""
    while True:
        text = "-".join("".join(secrets.choice(_TEMP_ALPHABET) for _ in range(4)) for _ in range(3))
        try:
            check_password_policy(text, username)
        except InvalidInput:
            continue  # e.g. no digit drawn, or the username inside: draw again
        return text


# ------------------------------------------------------------------------------------------- administration
def create_user(session: Session, actor: Actor, *, username: Any, display_name: Any, role: Any, unit_code: Any,
                department: Any = None, password: str | None = None,
                now: datetime | None = None) -> tuple[User, str | None]:
    """A new account, placed where its role belongs. Without a password a temporary one is made and
    returned (shown once); either way the user must change it at first login. Conflict if the name is
    taken (also in another letter case: `Admin` beside `admin` would be two people to the eye)."""
    _require_admin(actor)
    username = _clean_username(username)
    name = clean_text(display_name, "姓名 / display name", DISPLAY_NAME_MAX, field="display_name")
    role, unit, department = _placement(session, role, unit_code, department)
    temporary = None
    if password is None:
        password = temporary = temporary_password(username)
    else:
        check_password_policy(password, username)
    taken = session.scalar(select(User.username).where(func.lower(User.username) == username.lower()).limit(1))
    if taken is not None:
        raise Conflict(f"用户名 {taken} 已存在 / user {taken} already exists", reason="user.exists", username=taken)
    now = now or clock.now()
    user = User(username=username, display_name=name, role=role, unit_id=unit.id, department=department,
                password_hash=hash_password(password), active=True, must_change_password=True,
                password_changed_at=now, failed_logins=0, created_at=now)
    session.add(user)
    try:
        session.flush()
    except IntegrityError:  # created by someone else since the check above
        raise Conflict(f"用户名 {username} 已存在 / user {username} already exists", reason="user.exists",
                       username=username) from None
    _audit(session, actor, now, "user.created", user, new=_placement_text(role, unit.code, department),
           display_name=name, role=role, unit=unit.code, department=department,
           temporary_password=temporary is not None)
    return user, temporary


def update_user(session: Session, actor: Actor, username: str, *, display_name: Any = None, role: Any = None,
                unit_code: Any = None, department: Any = None, now: datetime | None = None) -> User:
    """Change an account's name, role, unit or department (None: unchanged). The result must still fit
    (a clerk in a village…); a county officer keeps their department unless given another, anyone else
    has none. The last active admin cannot stop being one. No change: nothing written. Tasks the account
    claimed that it may no longer work on go back to their unit's queue (`cases.service.release_claims_of`)."""
    _require_admin(actor)
    user = _user(session, username)
    old_unit = user.unit
    name = user.display_name if display_name is None else clean_text(display_name, "姓名 / display name",
                                                                        DISPLAY_NAME_MAX, field="display_name")
    new_role = user.role if role is None else role
    if department is None and new_role == Role.COUNTY_OFFICER:
        department = user.department
    new_role, unit, department = _placement(session, new_role, old_unit.code if unit_code is None else unit_code,
                                            department)
    if user.role == Role.ADMIN and new_role != Role.ADMIN and user.active:
        _keep_an_admin(session, user)
    changes = {key: [old, new] for key, old, new in (
        ("display_name", user.display_name, name), ("role", user.role, new_role),
        ("unit", old_unit.code, unit.code), ("department", user.department, department)) if old != new}
    if not changes:
        return user
    before = _placement_text(user.role, old_unit.code, user.department)
    user.display_name, user.role, user.unit_id, user.department = name, new_role, unit.id, department
    session.flush()
    now = now or clock.now()
    _audit(session, actor, now, "user.updated", user, old=before,
           new=_placement_text(new_role, unit.code, department), changes=changes)
    if changes.keys() & {"role", "unit", "department"} and user.active:
        release_claims_of(session, Actor.of(user), user.id, actor, now, "user.updated")
    return user


def disable_user(session: Session, actor: Actor, username: str, *, now: datetime | None = None) -> User:
    """Stop an account from logging in (its history stays); the tasks it claimed go back to their unit's
    queue. Not your own, not the last active admin; an account already disabled is left as it is."""
    _require_admin(actor)
    user = _user(session, username)
    if not user.active:
        return user
    require(actor.id != user.id, "users.disable_self", "不能停用自己的账号 / you cannot disable your own account")
    if user.role == Role.ADMIN:
        _keep_an_admin(session, user)
    user.active = False
    session.flush()
    now = now or clock.now()
    _audit(session, actor, now, "user.disabled", user, old="active", new="disabled")
    release_claims_of(session, None, user.id, actor, now, "user.disabled")
    return user


def enable_user(session: Session, actor: Actor, username: str, *, now: datetime | None = None) -> User:
    """Let a disabled account log in again; an active one is left as it is."""
    _require_admin(actor)
    user = _user(session, username)
    if user.active:
        return user
    user.active = True
    session.flush()
    _audit(session, actor, now or clock.now(), "user.enabled", user, old="disabled", new="active")
    return user


def reset_password(session: Session, actor: Actor, username: str, *, password: str | None = None,
                   now: datetime | None = None) -> str | None:
    """Give an account a new password — the one given, or a temporary one that is returned (shown
    once) — which its holder must change at first login. Clears a login lock."""
    _require_admin(actor)
    user = _user(session, username)
    temporary = None
    if password is None:
        password = temporary = temporary_password(user.username)
    else:
        check_password_policy(password, user.username)
    now = now or clock.now()
    was_locked = user.locked_until is not None and user.locked_until > now
    user.password_hash = hash_password(password)
    user.must_change_password = True
    user.password_changed_at = now
    user.failed_logins, user.locked_until = 0, None
    session.flush()
    _audit(session, actor, now, "user.password_reset", user, temporary_password=temporary is not None,
           unlocked=was_locked)
    return temporary


def change_own_password(session: Session, actor: Actor, old: Any, new: Any, *, now: datetime | None = None) -> str:
    """A user replaces their own password (the temporary one at first login, or any time): the current
    one must be right and the new one must pass the policy and differ. Clears `must_change_password`.
    Returns the new `orgs.credential_stamp`: the session that changed it keeps going, every other one ends."""
    require(is_staff(actor), "users.change_own_password",
            "只有登录的用户可以修改自己的密码 / only a logged-in user can change their own password")
    user = session.scalar(_for_update(session, select(User).where(User.id == actor.id)))
    require(user is not None and user.active, "users.change_own_password", "账号已停用 / this account is disabled")
    if not isinstance(old, str) or len(old) > PASSWORD_MAX or not check_password(user.password_hash, old):
        raise InvalidInput("当前密码不正确 / the current password is wrong", reason="password.wrong_current")
    check_password_policy(new, user.username)
    if new == old:
        raise InvalidInput("新密码不能与当前密码相同 / the new password must differ from the current one",
                           reason="password.unchanged")
    now = now or clock.now()
    was_required = bool(user.must_change_password)
    user.password_hash = hash_password(new)
    user.must_change_password = False
    user.password_changed_at = now
    session.flush()
    _audit(session, actor, now, "user.password_changed", user, was_required=was_required)
    return credential_stamp(user)


# ------------------------------------------------------------------------------------------- login
@dataclass(frozen=True)
class LoginResult:
    """What a login attempt came to: `error` is the refusal to raise once the attempt is committed;
    reading `actor` of a refused login raises it too, so a refusal can never be mistaken for a login.
    `must_change_password`: send the user to the change-password page first; `stamp`: what the login
    session keeps to be ended by a later password change (`orgs.credential_stamp`)."""
    username: str
    must_change_password: bool = False
    stamp: str = ""
    locked_until: datetime | None = None
    error: Forbidden | None = None
    _actor: Actor | None = field(default=None, repr=False)

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def actor(self) -> Actor:
        if self.error is not None:
            raise self.error
        assert self._actor is not None
        return self._actor


def login(engine: Engine, username: Any, password: Any, *, ip: str | None, now: datetime | None = None) -> LoginResult:
    """Check a login in its own transaction, commit what it recorded, then raise a refusal
    (`Forbidden`: `auth.failed`, `auth.locked` with `until`, `auth.disabled`) or return the result."""
    with db.transaction(engine) as session:
        result = authenticate(session, username, password, ip=ip, now=now)
    if result.error is not None:  # raised only now, so the failure it recorded is committed
        raise result.error
    return result


def authenticate(session: Session, username: Any, password: Any, *, ip: str | None,
                 now: datetime | None = None) -> LoginResult:
    """Check a username and password and record the outcome (see the module's docstring: never raises
    for a refusal; commit, then raise `result.error` if there is one). On SQLite run it in a write transaction (the
    default of `db.transaction`) so two attempts on one account count one after the other; on
    PostgreSQL the account row is locked."""
    now = now or clock.now()
    _dummy_hash()  # made on the first attempt of any kind, so it never lengthens only an unknown name's
    limits = settings.get()
    lock_for = timedelta(minutes=limits.login_lock_minutes)
    name = username if isinstance(username, str) else ""
    secret = password if isinstance(password, str) else ""
    address = _clean_ip(ip)
    if address is not None:
        until = _address_locked_until(session, address, now)
        if until is not None:
            return _locked(name, until)
    user = None
    if USERNAME.fullmatch(name):
        user = session.scalar(_for_update(session, select(User).where(User.username == name)))
    if user is None:
        return _unknown_name(session, name, secret, address, now, lock_for)
    if user.locked_until is not None and user.locked_until > now:
        return _locked(name, user.locked_until)
    if check_password(user.password_hash, secret[:PASSWORD_MAX]) and len(secret) <= PASSWORD_MAX:
        if not user.active:
            return LoginResult(name, error=Forbidden("账号已停用，请联系管理员 / this account is disabled; ask an "
                                                     "administrator", reason="auth.disabled"))
        user.failed_logins, user.locked_until, user.last_login_at = 0, None, now
        session.flush()
        return LoginResult(name, must_change_password=bool(user.must_change_password),
                           stamp=credential_stamp(user), _actor=Actor.of(user))
    user.failed_logins = (user.failed_logins or 0) + 1
    failures = user.failed_logins
    locked = failures >= limits.login_max_failures
    if locked:
        user.failed_logins, user.locked_until = 0, now + lock_for
    session.flush()
    details = {"user_id": user.id, "username": user.username, "ip": address}
    _log(session, now, "user.login_failed", None, new=str(failures), failures=failures, **details)
    if locked:
        _log(session, now, "user.locked", None, new=_iso(now + lock_for), scope="account",
             until=_iso(now + lock_for), **details)
    return _after_failure(session, name, address, now, lock_for, now + lock_for if locked else None)


def _unknown_name(session: Session, name: str, secret: str, address: str | None, now: datetime,
                  lock_for: timedelta) -> LoginResult:
    """A name with no account: throttled like an account (from the failure log), and a password hash is
    computed anyway, so the answer and its timing match a wrong password."""
    limits = settings.get()
    tag = _name_tag(name)
    count, last = session.execute(select(func.count(), func.max(LoginFailure.at))
                                  .where(LoginFailure.name_tag == tag, LoginFailure.at > now - FAILURE_RETENTION)).one()
    if count and count % limits.login_max_failures == 0 and last + lock_for > now:
        return _locked(name, last + lock_for)
    check_password(_dummy_hash(), secret[:PASSWORD_MAX])
    failures = count % limits.login_max_failures + 1
    _log(session, now, "user.login_failed", None, new=str(failures), known=False, name_tag=tag, ip=address,
         failures=failures)
    locked = failures >= limits.login_max_failures
    if locked:
        _log(session, now, "user.locked", None, new=_iso(now + lock_for), scope="account", known=False,
             name_tag=tag, ip=address, until=_iso(now + lock_for))
    return _after_failure(session, name, address, now, lock_for, now + lock_for if locked else None, tag)


def _after_failure(session: Session, name: str, address: str | None, now: datetime, lock_for: timedelta,
                   account_until: datetime | None, tag: str | None = None) -> LoginResult:
    """Log the failure for the per-address (and unknown-name) throttle, forget failures past keeping,
    and lock the address if this failure was one too many."""
    session.execute(insert(LoginFailure).values(at=now, ip=address, name_tag=tag))
    session.execute(delete(LoginFailure).where(LoginFailure.at < now - FAILURE_RETENTION))
    until = account_until
    if address is not None and _address_locked_until(session, address, now) is not None:
        _log(session, now, "user.locked", None, new=_iso(now + lock_for), scope="ip", ip=address,
             until=_iso(now + lock_for))
        until = now + lock_for
    if until is not None:
        return _locked(name, until)
    return LoginResult(name, error=Forbidden("用户名或密码错误 / wrong username or password", reason="auth.failed"))


def _address_locked_until(session: Session, address: str, now: datetime) -> datetime | None:
    """An address is locked for `login_lock_minutes` from its N-th failure within the window. Attempts
    while it is locked are not logged, so its newest N failures tell: all within the window, and the
    newest less than the lock's length ago."""
    limits = settings.get()
    recent = list(session.scalars(select(LoginFailure.at).where(LoginFailure.ip == address)
                                  .order_by(LoginFailure.at.desc()).limit(limits.login_ip_max_failures)))
    if len(recent) < limits.login_ip_max_failures:
        return None
    until = recent[0] + timedelta(minutes=limits.login_lock_minutes)
    if recent[0] - recent[-1] <= timedelta(minutes=limits.login_ip_window_minutes) and until > now:
        return until
    return None


def _locked(name: str, until: datetime) -> LoginResult:
    shown = clock.local(until).strftime("%H:%M")
    return LoginResult(name, locked_until=until, error=Forbidden(
        f"登录失败次数过多，已锁定，请于 {shown} 后再试 / too many failed logins: locked until {shown}",
        reason="auth.locked", until=_iso(until)))


def _dummy_hash() -> str:
    """A hash of nothing anyone knows, made like every stored hash: checking a password against it
    costs what checking a real one costs."""
    return _dummy_hash_at(settings.get().password_hash_iterations)


@functools.lru_cache(maxsize=2)
def _dummy_hash_at(iterations: int) -> str:
    return hash_password(secrets.token_hex(16), iterations=iterations)


def _name_tag(name: str) -> str:
    """32 bits of a digest of a name that has no account: enough to throttle by, too few to confirm a
    guess when the "name" was someone's password typed into the wrong field."""
    return hashlib.sha256(("yicun.login:" + name).encode("utf-8", "replace")).hexdigest()[:8]


def _clean_ip(ip: str | None) -> str | None:
    """The client's address as the web server saw it, in canonical form (so one IPv6 address is one
    key); anything else is kept as text, bounded."""
    if ip is None or not isinstance(ip, str) or not ip.strip():
        return None
    try:
        return ipaddress.ip_address(ip.strip()).compressed
    except ValueError:
        return "".join(ch for ch in ip.strip() if ch.isprintable())[:64] or None


# ------------------------------------------------------------------------------------------- reading
#: The most accounts one call returns (the admin pages show 50 a page).
ACCOUNTS_PAGE_MAX = 200
SEARCH_MAX = 64


@dataclass(frozen=True)
class Account:
    """An account as the admin pages show it — never its password hash; instants in Asia/Shanghai."""
    username: str
    display_name: str
    role: str
    unit_code: str
    unit_name: str
    unit_level: str
    department: str | None
    active: bool
    must_change_password: bool
    locked_until: datetime | None
    last_login_at: datetime | None
    created_at: datetime | None


@dataclass(frozen=True)
class AccountPage:
    items: list[Account]
    total: int  # all accounts that match, not only this page's
    offset: int
    limit: int


def list_accounts(session: Session, actor: Actor, *, text: Any = None, role: Any = None, unit_code: Any = None,
                  offset: int = 0, limit: int = 50) -> AccountPage:
    """Accounts by username for the admin pages (admins and the operator only, like the writes):
    `text` in the username or the name (any letter case), of `role`, at `unit_code` or any unit below it.
    An unknown role or unit is `InvalidInput` (a typo must not look like "nobody matched")."""
    _require_admin(actor)
    if not (isinstance(offset, int) and isinstance(limit, int) and offset >= 0 and 1 <= limit <= ACCOUNTS_PAGE_MAX):
        raise InvalidInput(f"offset ≥ 0, limit 1–{ACCOUNTS_PAGE_MAX}", reason="users.page_invalid")
    stmt = select(User, OrgUnit).join(OrgUnit, OrgUnit.id == User.unit_id)
    needle = clean_text(text, "搜索 / search", SEARCH_MAX, required=False, field="q").lower()
    if needle:
        stmt = stmt.where(or_(func.lower(User.username).contains(needle, autoescape=True),
                              func.lower(User.display_name).contains(needle, autoescape=True)))
    if role not in (None, ""):
        if role not in USER_ROLES:
            raise InvalidInput(f"没有角色 {str(role)[:40]!r} / unknown role; one of {', '.join(USER_ROLES)}",
                               reason="user.role_unknown")
        stmt = stmt.where(User.role == role)
    code = clean_text(unit_code, "单位代码 / unit code", 20, required=False, field="unit")
    if code:
        unit = session.scalar(select(OrgUnit).where(OrgUnit.code == code))
        if unit is None:
            raise InvalidInput(f"没有代码为 {code} 的单位 / no org unit with code {code}", reason="user.unit_unknown",
                               unit=code)
        stmt = stmt.where(OrgUnit.path.startswith(unit.path))
    total = session.scalar(select(func.count()).select_from(stmt.subquery())) or 0
    rows = session.execute(stmt.order_by(User.username).offset(offset).limit(limit)).all()
    return AccountPage([_account(user, unit) for user, unit in rows], total, offset, limit)


def get_account(session: Session, actor: Actor, username: Any) -> Account:
    """One account, active or not (admins and the operator only); `NotFound` if there is none."""
    _require_admin(actor)
    row = None
    if isinstance(username, str) and USERNAME.fullmatch(username):
        row = session.execute(select(User, OrgUnit).join(OrgUnit, OrgUnit.id == User.unit_id)
                              .where(User.username == username)).first()
    if row is None:
        raise _no_user(username)
    return _account(row[0], row[1])


def _account(user: User, unit: OrgUnit) -> Account:
    def shown(instant: datetime | None) -> datetime | None:
        return None if instant is None else clock.local(instant)
    return Account(user.username, user.display_name, user.role, unit.code, unit.name, unit.level, user.department,
                   bool(user.active), bool(user.must_change_password), shown(user.locked_until),
                   shown(user.last_login_at), shown(user.created_at))


# ------------------------------------------------------------------------------------------- helpers
def _require_admin(actor: Actor) -> None:
    require(may_administer_users(actor), "users.administer",
            "只有系统管理员可以管理用户账号 / only administrators may manage user accounts")


def _user(session: Session, username: Any) -> User:
    """The account named exactly `username`, active or not (locked on PostgreSQL until commit)."""
    user = None
    if isinstance(username, str) and USERNAME.fullmatch(username):
        user = session.scalar(_for_update(session, select(User).where(User.username == username)))
    if user is None:
        raise _no_user(username)
    return user


def _no_user(username: Any) -> NotFound:
    shown = str(username)[:64]
    return NotFound(f"没有用户 {shown!r} / no user {shown!r}", reason="user.not_found", username=shown)


def _for_update(session: Session, stmt: Any) -> Any:
    return stmt if db.is_sqlite(session) else stmt.with_for_update()


def _clean_username(value: Any) -> str:
    if not isinstance(value, str) or not USERNAME.fullmatch(value):
        raise InvalidInput("用户名为 3–64 位英文字母、数字或 . _ - / a username is 3–64 ASCII letters, digits, "
                           "'.', '_' or '-'", reason="user.username_invalid")
    return value


def _placement(session: Session, role: Any, unit_code: Any, department: Any) -> tuple[str, OrgUnit, str | None]:
    """Check that `role` exists, the unit exists, the role belongs at the unit's level and the department
    is given exactly when the role has one. Returns (role, unit, department)."""
    if role not in USER_ROLES:
        raise InvalidInput(f"角色须为以下之一 / role must be one of: {', '.join(USER_ROLES)} (not {str(role)[:40]!r})",
                           reason="user.role_unknown")
    code = clean_text(unit_code, "单位代码 / unit code", 20, field="unit")
    unit = session.scalar(select(OrgUnit).where(OrgUnit.code == code))
    if unit is None:
        raise InvalidInput(f"没有代码为 {code} 的单位 / no org unit with code {code}", reason="user.unit_unknown",
                           unit=code)
    allowed = ROLE_LEVELS[role]
    if unit.level not in allowed:
        raise InvalidInput(
            f"{Role(role).zh}只能设在{'或'.join(Level(lv).zh for lv in allowed)}级单位，"
            f"{unit.name}是{Level(unit.level).zh}级 / "
            f"a {role} belongs to a {' or '.join(allowed)} unit; {unit.code} is a {unit.level}",
            reason="user.role_level", role=role, unit=unit.code, unit_name=unit.name, unit_level=unit.level)
    if role == Role.COUNTY_OFFICER:
        if department in (None, ""):
            raise InvalidInput("县级审批人员须指定部门 / a county officer needs a department: "
                               + ", ".join(DEPARTMENTS), reason="user.department_required")
        if department not in DEPARTMENTS:
            raise InvalidInput(f"没有部门 {str(department)[:40]!r} / unknown department; one of "
                               + ", ".join(DEPARTMENTS), reason="user.department_unknown")
        return role, unit, department
    if department not in (None, ""):
        raise InvalidInput("只有县级审批人员属于部门 / only a county officer has a department",
                           reason="user.department_not_applicable")
    return role, unit, None


def _keep_an_admin(session: Session, user: User) -> None:
    others = session.scalar(select(func.count()).select_from(User).where(
        User.role == Role.ADMIN, User.active.is_(True), User.id != user.id))
    if not others:
        raise Conflict("这是最后一个启用的管理员账号，请先设立另一个管理员 / this is the last active administrator; "
                       "make another one first", reason="user.last_admin", username=user.username)


def _placement_text(role: str, unit_code: str, department: str | None) -> str:
    return f"{role}@{unit_code}" + (f"/{department}" if department else "")


def _iso(instant: datetime) -> str:
    return clock.local(instant).isoformat()


def _audit(session: Session, actor: Actor, now: datetime, action: str, user: User, old: str | None = None,
           new: str | None = None, **details: Any) -> None:
    """An account change: who did it (the operator by name), to whom, old → new. Never a password."""
    _log(session, now, action, actor.id, old=old, new=new, user_id=user.id, username=user.username,
         **actor.audit_details, **details)


def _log(session: Session, now: datetime, action: str, actor_id: int | None, old: str | None = None,
         new: str | None = None, **details: Any) -> None:
    audit.record(session, action, at=now, actor_id=actor_id, old=old, new=new, **details)


def has_active_admin(session: Session) -> bool:
    """Is there anyone who can log in to administer users? (`yicun init` says how to make the first.)"""
    return session.scalar(select(User.id).where(User.role == Role.ADMIN, User.active.is_(True)).limit(1)) is not None


def city_unit(session: Session) -> OrgUnit | None:
    """The unit at the top of the tree, where the first admin sits."""
    return session.scalar(select(OrgUnit).where(OrgUnit.level == Level.CITY).order_by(OrgUnit.code).limit(1))

