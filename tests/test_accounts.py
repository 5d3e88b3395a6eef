"""Accounts (issue #8 §4): the one writer of users, its password policy, the login throttle, the audit
trail, `yicun users …`, `yicun init --admin` and the refusal to run on a database that is not there.

Engine tests run on SQLite and (marker `db`) PostgreSQL; the CLI tests on a SQLite file of their own."""
from __future__ import annotations

import hashlib
import io
import json
import re
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select, text

from engine import accounts, clock, db, orgs, settings
from engine.cli import main
from engine.errors import Conflict, Forbidden, InvalidInput, NotFound
from engine.models import AuditEvent, Base, LoginFailure, User
from engine.policy import Actor

from .conftest import SMALL_TREE

CLERK = "clerk-430902102201-1"
GOOD = "Qiaoyun-2026x"  # passes the policy
IP = "203.0.113.7"


# ------------------------------------------------------------------------------------------- helpers
@pytest.fixture
def tree(db_engine: Engine, manual_clock: clock.ManualClock) -> Engine:
    """The small Yiyang tree with its generated staff (demo accounts: password yicun2016)."""
    with db.transaction(db_engine) as s:
        orgs.seed_org_tree(s, SMALL_TREE)
        orgs.seed_staff(s, SMALL_TREE)
    return db_engine


@pytest.fixture
def limits(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., None]]:
    """Set login/password settings through their environment variables (as an operator would)."""
    def set_(**values: int) -> None:
        for name, value in values.items():
            monkeypatch.setenv(f"YICUN_{name.upper()}", str(value))
        settings.get.cache_clear()
    yield set_
    settings.get.cache_clear()


def actor(engine: Engine, username: str) -> Actor:
    with db.read(engine) as s:
        return Actor.of(s.scalar(select(User).where(User.username == username)))


def act(engine: Engine, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    with db.transaction(engine) as s:
        return fn(s, *args, **kwargs)


def account(engine: Engine, username: str) -> User | None:
    with db.read(engine) as s:
        return s.scalar(select(User).where(User.username == username))


def audit(engine: Engine, prefix: str = "user.") -> list[AuditEvent]:
    with db.read(engine) as s:
        return list(s.scalars(select(AuditEvent).where(AuditEvent.action.startswith(prefix)).order_by(AuditEvent.id)))


def snapshot(engine: Engine) -> dict[str, list[tuple]]:
    with engine.connect() as conn:
        return {t.name: sorted(tuple(map(str, r)) for r in conn.execute(select(t)))
                for t in Base.metadata.sorted_tables}


def refused(engine: Engine, username: str, password: str, ip: str | None = IP) -> Forbidden:
    with pytest.raises(Forbidden) as info:
        accounts.login(engine, username, password, ip=ip)
    return info.value


def add_clerk(engine: Engine, username: str = "clerk-new", password: str | None = GOOD) -> str | None:
    _, temporary = act(engine, accounts.create_user, actor(engine, "admin"), username=username,
                       display_name="盛秋兰", role="clerk", unit_code="430902102201", password=password)
    return temporary


# ------------------------------------------------------------------------------------------- administration
def test_admin_creates_an_account_that_must_change_its_password(tree: Engine) -> None:
    temporary = add_clerk(tree, "clerk-tmp", password=None)
    assert temporary and re.fullmatch(r"[a-z2-9]{4}-[a-z2-9]{4}-[a-z2-9]{4}", temporary)
    accounts.check_password_policy(temporary, "clerk-tmp")
    user = account(tree, "clerk-tmp")
    assert (user.role, user.display_name, user.active, user.must_change_password) == ("clerk", "盛秋兰", True, True)
    assert user.created_at == user.password_changed_at == clock.now()
    login = accounts.login(tree, "clerk-tmp", temporary, ip=IP)
    assert login.must_change_password and login.actor.username == "clerk-tmp" and login.actor.unit_path.endswith(
        "/430902102201/")
    assert add_clerk(tree, "clerk-given", password=GOOD) is None
    assert account(tree, "clerk-given").must_change_password
    (created, _) = [e for e in audit(tree) if e.action == "user.created"]
    assert created.case_id is None and created.actor_id == actor(tree, "admin").id
    assert created.new_value == "clerk@430902102201"
    assert created.details["username"] == "clerk-tmp" and created.details["temporary_password"] is True


def test_the_operator_administers_users_and_is_named_in_the_audit(tree: Engine) -> None:
    operator = Actor.operator("ops")
    act(tree, accounts.create_user, operator, username="officer-x", display_name="李四", role="county_officer",
        unit_code="430902", department="民政")
    act(tree, accounts.disable_user, operator, "officer-x")
    events = audit(tree)
    assert [e.action for e in events] == ["user.created", "user.disabled"]
    assert all(e.actor_id is None and e.details["operator"] == "operator:ops" for e in events)


@pytest.mark.parametrize("who", [CLERK, "supervisor", "designer", "officer-430902-mz"])
def test_only_admins_administer_users_and_a_refusal_writes_nothing(tree: Engine, who: str) -> None:
    before = snapshot(tree)
    someone = actor(tree, who)
    calls = [
        lambda s: accounts.create_user(s, someone, username="new-user", display_name="王五", role="clerk",
                                       unit_code="430902102201"),
        lambda s: accounts.update_user(s, someone, CLERK, display_name="王五"),
        lambda s: accounts.disable_user(s, someone, CLERK),
        lambda s: accounts.enable_user(s, someone, CLERK),
        lambda s: accounts.reset_password(s, someone, CLERK),
    ]
    for call in calls:
        with pytest.raises(Forbidden) as info:
            act(tree, call)
        assert info.value.reason == "users.administer"
    assert snapshot(tree) == before


def test_a_disabled_admin_administers_nothing(tree: Engine) -> None:
    admin = actor(tree, "admin")
    act(tree, accounts.create_user, admin, username="admin2", display_name="管理员二", role="admin",
        unit_code="4309", password=GOOD)
    act(tree, accounts.disable_user, admin, "admin2")
    with pytest.raises(Forbidden):
        act(tree, accounts.enable_user, actor(tree, "admin2"), "admin2")


@pytest.mark.parametrize("fields, error, reason", [
    ({"username": "ab"}, InvalidInput, "user.username_invalid"),
    ({"username": "x" * 65}, InvalidInput, "user.username_invalid"),
    ({"username": "张三"}, InvalidInput, "user.username_invalid"),
    ({"username": "a b c"}, InvalidInput, "user.username_invalid"),
    ({"username": 42}, InvalidInput, "user.username_invalid"),
    ({"display_name": "  "}, InvalidInput, "text.required"),
    ({"display_name": "盛\u202e秋兰"}, InvalidInput, "text.control_characters"),
    ({"display_name": "名" * 101}, InvalidInput, "text.too_long"),
    ({"role": "operator"}, InvalidInput, "user.role_unknown"),
    ({"role": "boss"}, InvalidInput, "user.role_unknown"),
    ({"unit_code": "999999"}, InvalidInput, "user.unit_unknown"),
    ({"unit_code": "430902102"}, InvalidInput, "user.role_level"),          # a clerk at a township
    ({"role": "agent"}, InvalidInput, "user.role_level"),                    # an agent at a village
    ({"role": "township_officer", "unit_code": "430902"}, InvalidInput, "user.role_level"),
    ({"role": "county_officer", "unit_code": "430902"}, InvalidInput, "user.department_required"),
    ({"role": "county_officer", "unit_code": "430902", "department": "财政"}, InvalidInput,
     "user.department_unknown"),
    ({"department": "民政"}, InvalidInput, "user.department_not_applicable"),
    ({"username": CLERK}, Conflict, "user.exists"),
    ({"username": CLERK.upper()}, Conflict, "user.exists"),                  # one name, another letter case
    ({"password": "short1A"}, InvalidInput, "password.too_short"),
])
def test_bad_account_data_is_refused_and_changes_nothing(tree: Engine, fields: dict, error: type, reason: str) -> None:
    data = {"username": "new-clerk", "display_name": "盛秋兰", "role": "clerk", "unit_code": "430902102201",
            "password": None, **fields}
    before = snapshot(tree)
    with pytest.raises(error) as info:
        act(tree, accounts.create_user, actor(tree, "admin"), **data)
    assert info.value.reason == reason
    assert snapshot(tree) == before


def test_roles_that_fit_any_level(tree: Engine) -> None:
    admin = actor(tree, "admin")
    for i, (role, unit) in enumerate([("supervisor", "430902102201"), ("designer", "430902"), ("admin", "430902102"),
                                      ("agent", "430902102"), ("township_officer", "430902102")]):
        act(tree, accounts.create_user, admin, username=f"u{i}-{role}", display_name="某某", role=role, unit_code=unit,
            password=GOOD)
    assert account(tree, "u0-supervisor").unit_id != account(tree, "u1-designer").unit_id


@pytest.mark.parametrize("password, reason", [
    ("", "password.required"),
    (None, "password.required"),
    ("Ab1" * 3, "password.too_short"),                     # 9 characters
    ("x" * 200 + "Y1" * 40, "password.too_long"),
    ("Abcdefgh1\n2", "password.control_characters"),
    ("Abcde\u200bfgh12", "password.control_characters"),
    ("my-clerk-NEW-2026", "password.contains_username"),   # the username, in another letter case
    ("1234567890", "password.one_kind"),
    ("abcdefghijkl", "password.one_kind"),
    ("ABCDEFGHIJKL", "password.one_kind"),
    ("益村益村益村益村益村", "password.one_kind"),
    ("aaaaaaaaa1", "password.too_simple"),
    ("ab1ab1ab1ab1", "password.too_simple"),
    ("Yicun2016-abc", "password.demo"),
])
def test_password_policy(password: Any, reason: str) -> None:
    with pytest.raises(InvalidInput) as info:
        accounts.check_password_policy(password, "clerk-new")
    assert info.value.reason == reason
    assert " / " in info.value.message and re.match(r"[\u4e00-\u9fff]", info.value.message)  # Chinese first


@pytest.mark.parametrize("password", ["Qiaoyun-2026x", "correct horse battery", "益阳市资阳区2026", "1234567890a",
                                      "x" * 250 + "Y1abcd"])
def test_passwords_the_policy_accepts(password: str) -> None:
    accounts.check_password_policy(password, "clerk-new")


def test_the_minimum_length_can_be_raised_not_lowered(limits: Callable[..., None]) -> None:
    limits(password_min_length=14)
    with pytest.raises(InvalidInput) as info:
        accounts.check_password_policy("Qiaoyun-2026x", "someone")
    assert info.value.reason == "password.too_short" and "至少 14 位" in info.value.message
    limits(password_min_length=8)
    with pytest.raises(ValueError, match="YICUN_PASSWORD_MIN_LENGTH must be between 10 and 128"):
        settings.get()


def test_temporary_passwords_are_random_and_pass_the_policy() -> None:
    drawn = {accounts.temporary_password("abcd") for _ in range(50)}
    assert len(drawn) == 50
    for p in drawn:
        accounts.check_password_policy(p, "abcd")


def test_update_user(tree: Engine) -> None:
    admin = actor(tree, "admin")
    act(tree, accounts.update_user, admin, "officer-430902-mz", display_name="刘建国", department="人社")
    user = account(tree, "officer-430902-mz")
    assert (user.display_name, user.role, user.department) == ("刘建国", "county_officer", "人社")
    act(tree, accounts.update_user, admin, "officer-430902-mz", role="supervisor")  # no department any more
    moved = account(tree, "officer-430902-mz")
    assert (moved.role, moved.department) == ("supervisor", None)
    act(tree, accounts.update_user, admin, CLERK, role="agent", unit_code="430902103")
    user = account(tree, CLERK)
    assert user.role == "agent" and user.must_change_password is False  # moving is not a password change
    updates = [e for e in audit(tree) if e.action == "user.updated"]
    assert updates[0].details["changes"] == {"display_name": [updates[0].details["changes"]["display_name"][0], "刘建国"],
                                             "department": ["民政", "人社"]}
    assert (updates[1].old_value, updates[1].new_value) == ("county_officer@430902/人社", "supervisor@430902")
    assert (updates[2].old_value, updates[2].new_value) == ("clerk@430902102201", "agent@430902103")
    before = snapshot(tree)
    act(tree, accounts.update_user, admin, CLERK, display_name=account(tree, CLERK).display_name)  # no change
    for bad, reason in [({"unit_code": "430902102201"}, "user.role_level"),  # an agent moved to a village
                        ({"role": "county_officer", "unit_code": "430902"}, "user.department_required"),
                        ({"department": "民政"}, "user.department_not_applicable"),
                        ({"display_name": ""}, "text.required")]:
        with pytest.raises(InvalidInput) as info:
            act(tree, accounts.update_user, admin, CLERK, **bad)
        assert info.value.reason == reason
    with pytest.raises(NotFound):
        act(tree, accounts.update_user, admin, "nobody-here", display_name="某")
    with pytest.raises(Conflict) as info:  # the only admin cannot stop being one
        act(tree, accounts.update_user, Actor.operator(), "admin", role="supervisor")
    assert info.value.reason == "user.last_admin"
    assert snapshot(tree) == before


def test_disable_and_enable(tree: Engine) -> None:
    admin = actor(tree, "admin")
    act(tree, accounts.disable_user, admin, CLERK)
    assert account(tree, CLERK).active is False
    err = refused(tree, CLERK, orgs.DEMO_PASSWORD)
    assert err.reason == "auth.disabled"
    assert refused(tree, CLERK, "wrong-password-1").reason == "auth.failed"  # only the right password tells
    act(tree, accounts.disable_user, admin, CLERK)  # already disabled: left as it is
    act(tree, accounts.enable_user, admin, CLERK)
    assert accounts.login(tree, CLERK, orgs.DEMO_PASSWORD, ip=IP).actor.username == CLERK
    assert [e.action for e in audit(tree) if e.action in ("user.disabled", "user.enabled")] == [
        "user.disabled", "user.enabled"]
    with pytest.raises(Forbidden) as info:
        act(tree, accounts.disable_user, admin, "admin")
    assert info.value.reason == "users.disable_self"
    with pytest.raises(Conflict) as info:
        act(tree, accounts.disable_user, Actor.operator(), "admin")
    assert info.value.reason == "user.last_admin"
    add_admin = act(tree, accounts.create_user, admin, username="admin2", display_name="管理员二", role="admin",
                    unit_code="4309", password=GOOD)
    assert add_admin[1] is None
    act(tree, accounts.disable_user, Actor.operator(), "admin")  # another admin remains
    assert account(tree, "admin").active is False


def test_reset_password(tree: Engine, manual_clock: clock.ManualClock) -> None:
    for _ in range(5):
        refused(tree, CLERK, "not-the-password")
    assert account(tree, CLERK).locked_until is not None
    temporary = act(tree, accounts.reset_password, actor(tree, "admin"), CLERK)
    user = account(tree, CLERK)
    assert user.must_change_password and user.locked_until is None and user.failed_logins == 0
    assert refused(tree, CLERK, orgs.DEMO_PASSWORD).reason == "auth.failed"
    assert accounts.login(tree, CLERK, temporary, ip=IP).must_change_password
    assert act(tree, accounts.reset_password, actor(tree, "admin"), CLERK, password=GOOD) is None
    assert accounts.login(tree, CLERK, GOOD, ip=IP).must_change_password
    with pytest.raises(InvalidInput) as info:
        act(tree, accounts.reset_password, actor(tree, "admin"), CLERK, password="1234567890")
    assert info.value.reason == "password.one_kind"
    resets = [e for e in audit(tree) if e.action == "user.password_reset"]
    assert [(e.details["temporary_password"], e.details["unlocked"]) for e in resets] == [(True, True), (False, False)]


def test_must_change_password_lifecycle(tree: Engine) -> None:
    temporary = add_clerk(tree, "clerk-new", password=None)
    me = accounts.login(tree, "clerk-new", temporary, ip=IP)
    assert me.must_change_password
    before = snapshot(tree)
    for old, new, reason in [("wrong-old-pass", GOOD, "password.wrong_current"),
                             (temporary, temporary, "password.unchanged"),
                             (temporary, "short", "password.too_short"),
                             (temporary, "clerk-new-2026", "password.contains_username")]:
        with pytest.raises(InvalidInput) as info:
            act(tree, accounts.change_own_password, me.actor, old, new)
        assert info.value.reason == reason
    assert snapshot(tree) == before
    act(tree, accounts.change_own_password, me.actor, temporary, GOOD)
    assert account(tree, "clerk-new").must_change_password is False
    again = accounts.login(tree, "clerk-new", GOOD, ip=IP)
    assert again.must_change_password is False
    assert refused(tree, "clerk-new", temporary).reason == "auth.failed"
    (changed,) = [e for e in audit(tree) if e.action == "user.password_changed"]
    assert changed.actor_id == me.actor.id and changed.details["was_required"] is True
    with pytest.raises(Forbidden):  # the operator has no password of their own here
        act(tree, accounts.change_own_password, Actor.operator(), GOOD, GOOD + "x")


def test_seeded_accounts_must_change_outside_a_demo(db_engine: Engine, manual_clock: clock.ManualClock) -> None:
    with db.transaction(db_engine) as s:
        orgs.seed_org_tree(s, SMALL_TREE)
        orgs.seed_staff(s, SMALL_TREE, demo=False)
    assert account(db_engine, CLERK).must_change_password is True
    assert accounts.login(db_engine, CLERK, orgs.DEMO_PASSWORD, ip=IP).must_change_password


def test_demo_accounts_log_in_without_changing(tree: Engine) -> None:
    result = accounts.login(tree, CLERK, orgs.DEMO_PASSWORD, ip=IP)
    assert result.must_change_password is False and result.actor.role == "clerk"
    assert account(tree, CLERK).last_login_at == clock.now()


# ------------------------------------------------------------------------------------------- login throttle
def test_five_failures_lock_an_account_for_fifteen_minutes(tree: Engine, manual_clock: clock.ManualClock) -> None:
    for i in range(4):
        err = refused(tree, CLERK, f"wrong-{i}")
        assert (err.reason, err.message) == ("auth.failed", "用户名或密码错误 / wrong username or password")
    assert account(tree, CLERK).failed_logins == 4  # recorded although the login was refused
    err = refused(tree, CLERK, "wrong-4")
    until = manual_clock.now() + timedelta(minutes=15)
    assert err.reason == "auth.locked" and err.details["until"] == clock.local(until).isoformat()
    assert "09:15" in err.message  # Asia/Shanghai wall time
    assert account(tree, CLERK).locked_until == until
    manual_clock.advance(minutes=14, seconds=59)
    assert refused(tree, CLERK, orgs.DEMO_PASSWORD).reason == "auth.locked"  # the right password, while locked
    manual_clock.advance(seconds=1)
    assert accounts.login(tree, CLERK, orgs.DEMO_PASSWORD, ip=IP).actor.username == CLERK
    events = audit(tree)
    assert [e.action for e in events] == ["user.login_failed"] * 5 + ["user.locked"]
    assert events[-1].details["scope"] == "account" and events[-1].details["username"] == CLERK
    assert all(e.details["ip"] == IP for e in events)


def test_a_success_resets_the_count(tree: Engine) -> None:
    for _ in range(4):
        refused(tree, CLERK, "wrong-password")
    accounts.login(tree, CLERK, orgs.DEMO_PASSWORD, ip=IP)
    assert account(tree, CLERK).failed_logins == 0
    for _ in range(4):
        assert refused(tree, CLERK, "wrong-password").reason == "auth.failed"
    accounts.login(tree, CLERK, orgs.DEMO_PASSWORD, ip=IP)


def test_after_a_lock_five_more_failures_lock_again(tree: Engine, manual_clock: clock.ManualClock) -> None:
    for _ in range(5):
        refused(tree, CLERK, "wrong-password")
    manual_clock.advance(minutes=15)
    for _ in range(4):
        assert refused(tree, CLERK, "wrong-password").reason == "auth.failed"
    assert refused(tree, CLERK, "wrong-password").reason == "auth.locked"


def test_an_unknown_name_is_answered_and_throttled_like_a_wrong_password(tree: Engine,
                                                                         manual_clock: clock.ManualClock) -> None:
    typed = "MySecret-2026"  # someone's password typed into the name field
    answers = [refused(tree, typed, "anything-at-all") for _ in range(5)]
    known = [refused(tree, CLERK, "anything-at-all") for _ in range(5)]
    assert [(e.reason, e.message) for e in answers] == [(e.reason, e.message) for e in known]
    assert answers[-1].reason == "auth.locked"
    manual_clock.advance(minutes=15)
    assert refused(tree, typed, "anything-at-all").reason == "auth.failed"
    for e in audit(tree):
        assert typed not in json.dumps(e.details, ensure_ascii=False) + str(e.old_value) + str(e.new_value)
    with db.read(tree) as s:
        tags = set(s.scalars(select(LoginFailure.name_tag).where(LoginFailure.name_tag.is_not(None))))
    assert tags == {accounts._name_tag(typed)} and len(tags.pop()) == 8


def test_a_wrong_name_costs_the_same_hash_as_a_wrong_password(tree: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    accounts._dummy_hash()  # made once per process, before any attempt
    real = hashlib.pbkdf2_hmac
    calls: list[int] = []

    def counting(name: str, password: bytes, salt: bytes, iterations: int, *rest: Any) -> bytes:
        calls.append(iterations)
        return real(name, password, salt, iterations, *rest)

    monkeypatch.setattr(hashlib, "pbkdf2_hmac", counting)
    refused(tree, CLERK, "wrong-password")
    wrong_password = list(calls)
    calls.clear()
    refused(tree, "no-such-user", "wrong-password")
    refused(tree, "名字", "wrong-password")  # not even a possible username
    rounds = settings.get().password_hash_iterations  # what every stored hash costs (tests: fewer, test_settings)
    assert wrong_password == [rounds] and calls == [rounds, rounds]


def test_one_address_with_too_many_failures_is_locked(tree: Engine, manual_clock: clock.ManualClock,
                                                      limits: Callable[..., None]) -> None:
    limits(login_ip_max_failures=6, login_ip_window_minutes=10, login_lock_minutes=20)
    names = [CLERK, "clerk-430902102201-2", "no-such-user", "agent-430902102-1", "other-unknown", "supervisor"]
    for name in names[:5]:
        assert refused(tree, name, "wrong-password").reason == "auth.failed"
        manual_clock.advance(minutes=2)  # five failures in eight minutes
    err = refused(tree, names[5], "wrong-password")
    assert err.reason == "auth.locked"
    assert err.details["until"] == clock.local(manual_clock.now() + timedelta(minutes=20)).isoformat()
    assert refused(tree, "designer", orgs.DEMO_PASSWORD).reason == "auth.locked"  # right password, locked address
    assert accounts.login(tree, "designer", orgs.DEMO_PASSWORD, ip="203.0.113.8").ok  # another address
    assert accounts.login(tree, "designer", orgs.DEMO_PASSWORD, ip=None).ok  # no address (a local tool)
    (ip_lock,) = [e for e in audit(tree) if e.action == "user.locked"]
    assert ip_lock.details == {"scope": "ip", "ip": IP, "until": err.details["until"]}
    manual_clock.advance(minutes=20)
    assert accounts.login(tree, "designer", orgs.DEMO_PASSWORD, ip=IP).ok
    # the same number spread wider than the window locks nothing
    for name in names:
        manual_clock.advance(minutes=3)
        assert refused(tree, name, "wrong-password", ip="2001:db8::1").reason == "auth.failed"
    assert accounts.login(tree, "designer", orgs.DEMO_PASSWORD, ip="2001:0db8:0:0::1").ok  # the same address


def test_authenticate_records_and_leaves_the_refusal_to_after_the_commit(tree: Engine) -> None:
    with db.transaction(tree) as s:
        result = accounts.authenticate(s, CLERK, "wrong-password", ip=IP, now=clock.now())
    assert not result.ok and result.error.reason == "auth.failed"
    with pytest.raises(Forbidden):
        result.actor
    assert account(tree, CLERK).failed_logins == 1
    with pytest.raises(Forbidden):  # reading the refusal inside the transaction rolls the record back
        with db.transaction(tree) as s:
            accounts.authenticate(s, CLERK, "wrong-password", ip=IP).actor
    assert account(tree, CLERK).failed_logins == 1
    with db.transaction(tree) as s:
        ok = accounts.authenticate(s, CLERK, orgs.DEMO_PASSWORD, ip=IP)
    assert ok.ok and ok.actor.username == CLERK and account(tree, CLERK).failed_logins == 0


def test_audit_rows_never_hold_a_password(tree: Engine) -> None:
    admin = actor(tree, "admin")
    secrets_used = [GOOD, "Second-pass-77", "Third-pass-88"]
    add_clerk(tree, "clerk-new", password=GOOD)
    temporary = act(tree, accounts.reset_password, admin, "clerk-new")
    act(tree, accounts.reset_password, admin, "clerk-new", password=secrets_used[1])
    me = accounts.login(tree, "clerk-new", secrets_used[1], ip=IP)
    act(tree, accounts.change_own_password, me.actor, secrets_used[1], secrets_used[2])
    refused(tree, "clerk-new", GOOD)
    refused(tree, secrets_used[2], GOOD)
    hashes = [account(tree, "clerk-new").password_hash]
    with tree.connect() as conn:
        rows = [" ".join(map(str, r)) for r in conn.execute(select(AuditEvent.__table__))]
    assert len(rows) >= 6
    for row in rows:
        for secret in [*secrets_used, temporary, *hashes, hashes[0].split("$")[-1]]:
            assert secret not in row


# ------------------------------------------------------------------------------------------- schema
def test_the_schema_head_is_read_like_alembic_reads_it() -> None:
    from alembic.config import Config
    from alembic.script import ScriptDirectory
    cfg = Config()
    cfg.set_main_option("script_location", str(db.MIGRATIONS))
    script = ScriptDirectory.from_config(cfg)
    assert db._revisions() == (script.get_current_head(), frozenset(r.revision for r in script.walk_revisions()))


def test_migration_0004_down_and_up_keeps_users(db_url: str) -> None:
    engine = db.make_engine(db_url)
    db.migrate(engine)
    with db.transaction(engine) as s:
        orgs.seed_org_tree(s, SMALL_TREE[:2])
        accounts.create_user(s, Actor.operator(), username="first-admin", display_name="管理员", role="admin",
                             unit_code="4309", password=GOOD, now=clock.now())
    _downgrade(engine, "0003")
    with engine.connect() as conn:
        assert conn.execute(text("SELECT username FROM users")).scalar_one() == "first-admin"
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar_one() == "0003"
    db.migrate(engine)
    with engine.connect() as conn:
        row = conn.execute(text("SELECT must_change_password, failed_logins, locked_until FROM users")).one()
    assert (bool(row[0]), row[1], row[2]) == (False, 0, None)  # the flag went with the downgrade
    assert accounts.login(engine, "first-admin", GOOD, ip=IP).ok
    engine.dispose()


def _downgrade(engine: Engine, revision: str) -> None:
    """`db.migrate` only upgrades; a downgrade the same way (SQLite's foreign keys off for the batch copy)."""
    from alembic import command
    from alembic.config import Config
    cfg = Config()
    cfg.set_main_option("script_location", str(db.MIGRATIONS))
    with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            conn.connection.driver_connection.execute("PRAGMA foreign_keys=OFF")
        with conn.begin():
            cfg.attributes["connection"] = conn
            command.downgrade(cfg, revision)
        if engine.dialect.name == "sqlite":
            conn.connection.driver_connection.execute("PRAGMA foreign_keys=ON")


# ------------------------------------------------------------------------------------------- no database
def test_commands_refuse_a_sqlite_file_that_is_not_there(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    missing = tmp_path / "nowhere" / "yicun.db"
    for command in (["users", "list"], ["case", "list"], ["timers", "sweep"], ["users", "disable", "admin"]):
        rc = main(["--json", "--db", f"sqlite:///{missing}", *command])
        err = json.loads(capsys.readouterr().err)
        assert rc == 8 and err["error"] == "no_database" and err["reason"] == "db.missing"
        assert err["message"] == f"no database at {missing}; run `yicun init` (or set YICUN_DATABASE_URL / --db)"
    assert not missing.exists() and not missing.parent.exists()
    rc = main(["--db", f"sqlite:///{missing}", "users", "list"])
    assert rc == 8 and "no database at" in capsys.readouterr().err
    empty = tmp_path / "empty.db"
    empty.touch()
    assert main(["--json", "--db", f"sqlite:///{empty}", "users", "list"]) == 8
    assert json.loads(capsys.readouterr().err)["reason"] == "db.not_initialised"
    assert main(["--json", "--db", f"sqlite:///{missing}", "calendar", "due", "--from", "2026-11-02",
                 "--workdays", "1"]) == 0  # a command that needs no database runs
    capsys.readouterr()
    assert not missing.parent.exists()


def test_commands_refuse_a_database_without_the_schema_or_at_an_older_one(db_url: str, db_kind: str,
                                                                         capsys: pytest.CaptureFixture) -> None:
    assert main(["--json", "--db", db_url, "users", "list"]) == 8
    err = json.loads(capsys.readouterr().err)
    assert err["reason"] == ("db.missing" if db_kind == "sqlite" else "db.not_initialised")
    assert "run `yicun init`" in err["message"]
    engine = db.make_engine(db_url)
    db.migrate(engine, "0003")
    engine.dispose()
    assert main(["--json", "--db", db_url, "users", "list"]) == 8
    err = json.loads(capsys.readouterr().err)
    assert (err["reason"], err["schema"], err["needed"]) == ("db.outdated", "0003", db._revisions()[0])
    assert main(["--json", "--db", db_url, "init"]) == 0  # init upgrades it
    capsys.readouterr()
    assert main(["--json", "--db", db_url, "users", "list"]) == 0
    assert json.loads(capsys.readouterr().out) == []


def test_an_unreachable_database_is_a_message_not_a_traceback(capsys: pytest.CaptureFixture) -> None:
    assert main(["--json", "--db", "postgresql://nobody@127.0.0.1:1/none?connect_timeout=2", "users", "list"]) == 8
    err = json.loads(capsys.readouterr().err)
    assert err["reason"] == "db.unreachable" and "cannot open the database at postgresql://nobody@127.0.0.1:1/none" \
        in err["message"]


# ------------------------------------------------------------------------------------------- CLI
@pytest.fixture
def yicun(tmp_path: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch) -> Callable[..., Any]:
    url = f"sqlite:///{tmp_path / 'accounts.db'}"

    def run(*args: str, code: int = 0, stdin: str | None = None) -> Any:
        monkeypatch.setattr("sys.stdin", io.StringIO(stdin or ""))
        rc = main(["--json", "--db", url, *args])
        out, err = capsys.readouterr()
        assert rc == code, (rc, out, err)
        return json.loads(out) if rc == 0 else json.loads(err)

    run.engine = lambda: db.make_engine(url)  # type: ignore[attr-defined]
    return run


def test_init_without_an_admin_says_how_to_make_one(yicun: Callable[..., Any]) -> None:
    out = yicun("init")
    assert "yicun init --admin USERNAME" in out["no_admin"] and "admin" not in out


def test_init_admin_creates_the_first_administrator(yicun: Callable[..., Any]) -> None:
    out = yicun("init", "--admin", "root", "--admin-name", "王管理")
    admin = out["admin"]
    assert (admin["username"], admin["name"], admin["role"], admin["unit_code"]) == ("root", "王管理", "admin", "4309")
    assert admin["units_loaded"] == 1286 and admin["must_change_password"] is True
    engine = yicun.engine()
    login = accounts.login(engine, "root", admin["temporary_password"], ip=None)
    assert login.must_change_password and login.actor.level == "city"
    assert "no_admin" not in yicun("init")
    err = yicun("init", "--admin", "root", code=6)
    assert err["reason"] == "user.exists"
    out = yicun("init", "--admin", "root2", "--admin-password-stdin", stdin=GOOD + "\n")
    assert out["admin"]["temporary_password"] is None and out["admin"]["units_loaded"] == 0
    assert accounts.login(engine, "root2", GOOD, ip=None).must_change_password
    err = yicun("init", "--admin", "root3", "--admin-password-stdin", stdin="1234567890\n", code=3)
    assert err["reason"] == "password.one_kind"
    err = yicun("init", "--admin", "root4", "--admin-password-stdin", stdin="", code=3)
    assert err["reason"] == "password.required"
    engine.dispose()


def test_users_commands(yicun: Callable[..., Any]) -> None:
    yicun("init", "--admin", "root")
    out = yicun("users", "add", "clerk-9", "--name", "盛巧云", "--role", "clerk", "--unit", "430902102201")
    assert out["temporary_password"] and out["unit"] == "邹家村" and out["must_change_password"]
    out = yicun("users", "add", "mz-1", "--name", "刘建国", "--role", "county_officer", "--unit", "430902",
                "--department", "民政", "--password-stdin", stdin=GOOD + "\n")
    assert out["temporary_password"] is None and out["department"] == "民政"
    err = yicun("users", "add", "mz-2", "--name", "刘", "--role", "county_officer", "--unit", "430902", code=3)
    assert err["reason"] == "user.department_required" and err["message"].startswith("县级审批人员须指定部门")
    assert yicun("users", "add", "clerk-9", "--name", "x", "--role", "clerk", "--unit", "430902102201",
                 code=6)["reason"] == "user.exists"
    with pytest.raises(SystemExit) as info:  # argparse: no such role
        yicun("users", "add", "x1", "--name", "x", "--role", "boss", "--unit", "4309")
    assert info.value.code == 2
    out = yicun("users", "edit", "mz-1", "--role", "supervisor", "--unit", "430902102")
    assert (out["role"], out["unit_code"], out["department"]) == ("supervisor", "430902102", None)
    assert yicun("users", "edit", "mz-1", code=2)["reason"] == "cli.nothing_to_do"
    assert yicun("users", "edit", "nobody", "--name", "某", code=4)["reason"] == "user.not_found"
    assert yicun("users", "disable", "clerk-9")["active"] is False
    assert yicun("users", "enable", "clerk-9")["active"] is True
    assert yicun("users", "disable", "root", code=6)["reason"] == "user.last_admin"
    out = yicun("users", "passwd", "mz-1")
    engine = yicun.engine()
    assert accounts.login(engine, "mz-1", out["temporary_password"], ip=None).must_change_password
    assert refused(engine, "mz-1", GOOD, ip=None).reason == "auth.failed"
    assert yicun("users", "passwd", "mz-1", "--password-stdin", stdin="Another-pass-9\n")["temporary_password"] is None
    assert accounts.login(engine, "mz-1", "Another-pass-9", ip=None).ok
    listed = {u["username"] for u in yicun("users", "list")}
    assert listed == {"root", "clerk-9", "mz-1"}
    with engine.connect() as conn:
        actions = [r[0] for r in conn.execute(text("SELECT action FROM audit_events ORDER BY id"))]
        operators = {json.loads(r[0])["operator"] if isinstance(r[0], str) else r[0]["operator"]
                     for r in conn.execute(text("SELECT details FROM audit_events "
                                                "WHERE action <> 'user.login_failed'"))}
    assert actions == ["user.created", "user.created", "user.created", "user.updated", "user.disabled", "user.enabled",
                       "user.password_reset", "user.login_failed", "user.password_reset"]
    assert len(operators) == 1 and operators.pop().startswith("operator:")
    engine.dispose()


def test_users_text_output_shows_the_temporary_password_once(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    url = f"sqlite:///{tmp_path / 't.db'}"
    assert main(["--db", url, "init", "--admin", "root"]) == 0
    out = capsys.readouterr().out
    (shown,) = re.findall(r"temporary password for root \(shown once; to be changed at first login\): (\S+)", out)
    engine = db.make_engine(url)
    assert accounts.login(engine, "root", shown, ip=None).ok
    engine.dispose()
    assert main(["--db", url, "users", "list"]) == 0
    assert shown not in capsys.readouterr().out
