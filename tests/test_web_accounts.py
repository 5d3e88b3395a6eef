"""The browser side of accounts (issue #8 §4): the login through `accounts.login` (throttle, lock, audit),
the forced password change, changing one's own password, the admin's account pages, and `yicun serve`
refusing a database that is not there. Every test drives the Flask test client with CSRF on."""
from __future__ import annotations

import re
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy import select

from engine import db
from engine.models import AuditEvent, LoginFailure, User
from engine.orgs import DEMO_PASSWORD

from .conftest import CLERK, CLERK2, snapshot
from .webtools import csrf_token, login, post_form

NEW_PASSWORD = "Qiaoyun-2026x"  # passes the password policy
TEMPORARY = re.compile(r'<code class="big password">([^<]+)</code>')


@pytest.fixture
def admin(app):
    """A client logged in as the demo admin."""
    c = app.test_client()
    assert login(c, "admin").headers["Location"] == "/"
    return c


def account(engine, username):
    with db.read(engine) as s:
        return s.scalar(select(User).where(User.username == username))


def actions(engine, prefix="user."):
    with db.read(engine) as s:
        return list(s.scalars(select(AuditEvent.action).where(AuditEvent.action.startswith(prefix))
                              .order_by(AuditEvent.id)))


def uid(client):
    with client.session_transaction() as sess:
        return sess.get("uid")


def text(resp):
    return resp.get_data(as_text=True)


def field_error(page, field):
    """The message shown beside `field` (None if there is none)."""
    m = re.search(rf'<span class="field-error" id="{field}-error" role="alert">([^<]*)</span>', page)
    return m and m.group(1)


def create(admin, **fields):
    """Submit the new-account form (token from that page)."""
    data = {"username": "", "display_name": "", "role": "clerk", "unit": "", "department": "", **fields}
    return post_form(admin, "/admin/users/new", data, page="/admin/users/new")


def create_clerk(admin, username="clerk-new-1", name="盛秋兰"):
    resp = create(admin, username=username, display_name=name, role="clerk", unit="430902102201")
    assert resp.status_code == 200, text(resp)
    return TEMPORARY.search(text(resp)).group(1)


# ------------------------------------------------------------------------------------------- login
def test_five_wrong_passwords_lock_the_account_and_the_right_one_is_refused_while_locked(client, seeded,
                                                                                       manual_clock):
    for attempt in range(1, 5):
        resp = login(client, CLERK, "wrong-password")
        assert resp.status_code == 200 and "用户名或密码错误" in text(resp), attempt
        assert f'value="{CLERK}"' in text(resp)  # the name typed is kept, the password is not
    locked = login(client, CLERK, "wrong-password")
    assert "已锁定" in text(locked) and "请于 09:15 后再试" in text(locked)  # 09:00 + 15 minutes, Beijing time
    right = login(client, CLERK, DEMO_PASSWORD)
    assert right.status_code == 200 and "请于 09:15 后再试" in text(right)
    assert uid(client) is None and client.get("/").status_code == 302
    # the refusals were recorded although each login was refused (accounts.login commits first)
    assert actions(seeded) == ["user.login_failed"] * 5 + ["user.locked"]
    assert account(seeded, CLERK).locked_until is not None
    with db.read(seeded) as s:
        assert s.scalar(select(LoginFailure.ip).limit(1)) == "127.0.0.1"
    manual_clock.advance(minutes=16)
    assert login(client, CLERK, DEMO_PASSWORD).headers["Location"] == "/" and uid(client) is not None


def test_a_wrong_name_reads_like_a_wrong_password_and_locks_alike(client):
    wrong_password = text(login(client, CLERK, "wrong-password"))
    wrong_name = text(login(client, "nobody-here", "wrong-password"))
    message = re.compile(r'<p class="error" role="alert">([^<]*)</p>')
    assert message.search(wrong_password).group(1) == message.search(wrong_name).group(1) == \
        "用户名或密码错误。"
    for _ in range(4):
        last = login(client, "nobody-here", "wrong-password")
    assert "请于 09:15 后再试" in text(last)


def test_a_disabled_account_is_told_only_with_the_right_password(client, admin, seeded):
    assert post_form(admin, f"/admin/users/{CLERK}/disable", page=f"/admin/users/{CLERK}/disable").status_code == 302
    assert "用户名或密码错误" in text(login(client, CLERK, "wrong-password"))
    resp = login(client, CLERK, DEMO_PASSWORD)
    assert "账号已停用" in text(resp) and uid(client) is None


# ------------------------------------------------------------------------------------------- must change
def test_a_new_account_must_change_its_password_before_anything_else(app, admin, seeded):
    temporary = create_clerk(admin, "clerk-new-1")
    user = app.test_client()
    resp = login(user, "clerk-new-1", temporary, next="/processes")
    assert urlsplit(resp.headers["Location"]).path == "/account/password"
    assert parse_qs(urlsplit(resp.headers["Location"]).query)["next"] == ["/processes"]
    for path in ("/", "/processes", "/service-day", "/admin/users"):
        page = user.get(path)
        assert page.status_code == 302, path
        target = urlsplit(page.headers["Location"])
        assert target.path == "/account/password" and parse_qs(target.query)["next"] == [path], path
    api = user.get("/api/v1/cases")
    assert api.status_code == 403 and api.get_json()["reason"] == "auth.must_change_password"
    before = snapshot(seeded)
    form = post_form(user, "/notifications/read", page="/account/password")  # a POST is not let through either
    assert urlsplit(form.headers["Location"]).path == "/account/password" and snapshot(seeded) == before
    page = text(user.get("/account/password"))
    assert "请先设置自己的新密码" in page and "工作台" not in page  # the header offers only this and logout

    changed = post_form(user, "/account/password?next=/processes",
                        {"current": temporary, "new": NEW_PASSWORD, "repeat": NEW_PASSWORD}, page="/account/password")
    assert changed.headers["Location"] == "/processes"
    assert "密码已修改" in text(user.get("/processes"))
    for path in ("/", "/processes", "/service-day"):
        assert user.get(path).status_code == 200, path
    assert user.get("/api/v1/cases").status_code == 200
    assert not account(seeded, "clerk-new-1").must_change_password
    assert actions(seeded)[-1] == "user.password_changed"
    post_form(user, "/logout")
    assert login(user, "clerk-new-1", temporary).status_code == 200  # the temporary password is gone
    assert login(user, "clerk-new-1", NEW_PASSWORD).headers["Location"] == "/"


def test_logout_is_allowed_while_a_change_is_due(app, admin):
    temporary = create_clerk(admin, "clerk-new-2")
    user = app.test_client()
    login(user, "clerk-new-2", temporary)
    assert post_form(user, "/logout", page="/account/password").headers["Location"] == "/login"
    assert uid(user) is None


# ------------------------------------------------------------------------------------------- change own password
@pytest.mark.parametrize("current, new, repeat, field, message", [
    ("wrong-current", NEW_PASSWORD, NEW_PASSWORD, "current", "当前密码不正确"),
    (DEMO_PASSWORD, "Short-1", "Short-1", "new", "密码至少 10 位"),
    (DEMO_PASSWORD, "x" + CLERK + "9", "x" + CLERK + "9", "new", "密码不能包含用户名"),
    (DEMO_PASSWORD, "1234567890123", "1234567890123", "new", "不能只由一类字符组成"),
    (DEMO_PASSWORD, "Abc-" + DEMO_PASSWORD, "Abc-" + DEMO_PASSWORD, "new", "不能使用演示密码"),
    (DEMO_PASSWORD, "", "", "new", "请输入密码"),
    (DEMO_PASSWORD, NEW_PASSWORD, NEW_PASSWORD + "!", "repeat", "两次输入的新密码不一致"),
])
def test_a_refused_change_shows_why_beside_the_field_and_changes_nothing(client, seeded, current, new, repeat,
                                                                       field, message):
    login(client, CLERK)
    before = snapshot(seeded)
    resp = post_form(client, "/account/password", {"current": current, "new": new, "repeat": repeat},
                     page="/account/password")
    page = text(resp)
    assert resp.status_code == 422 and message in (field_error(page, field) or ""), page
    for typed in {current, new, repeat} - {""}:
        assert typed not in page  # passwords are never written back into the page
    assert snapshot(seeded) == before
    assert login(client.application.test_client(), CLERK).headers["Location"] == "/"  # the old one still works


def test_changing_ones_own_password(client, seeded):
    login(client, CLERK)
    assert "修改密码" in text(client.get("/"))
    resp = post_form(client, "/account/password", {"current": DEMO_PASSWORD, "new": NEW_PASSWORD,
                                                   "repeat": NEW_PASSWORD}, page="/account/password")
    assert resp.headers["Location"] == "/" and "密码已修改" in text(client.get("/"))
    assert actions(seeded) == ["user.password_changed"]
    other = client.application.test_client()
    assert login(other, CLERK, DEMO_PASSWORD).status_code == 200
    assert login(other, CLERK, NEW_PASSWORD).headers["Location"] == "/"
    forged = client.post("/account/password", data={"current": NEW_PASSWORD, "new": "Other-pass-2026",
                                                    "repeat": "Other-pass-2026"})
    assert forged.status_code == 400  # no token: refused before the view


# ------------------------------------------------------------------------------------------- admin: list
def test_the_users_list_searches_filters_and_pages(admin, seeded):
    with db.read(seeded) as s:
        total = s.query(User).count()
    assert total > 50  # the small tree's staff: enough for two pages
    first = text(admin.get("/admin/users"))
    assert "第 1 / 2 页" in first and f"共 {total} 个" in first and first.count("<tr") == 51
    assert "下一页" in first and 'href="/admin/users?page=2"' in first
    second = text(admin.get("/admin/users?page=2"))
    assert second.count("<tr") == total - 50 + 1 and "第 2 / 2 页" in second
    by_name = text(admin.get("/admin/users?q=盛巧云"))
    assert CLERK in by_name and CLERK2 not in by_name and "共 1 个" in by_name
    by_part = text(admin.get("/admin/users?q=CLERK-430902102201"))  # any letter case
    assert CLERK in by_part and CLERK2 in by_part and "共 2 个" in by_part
    township = text(admin.get("/admin/users?unit=430902102"))  # the township and its villages
    assert "agent-430902102-1" in township and CLERK in township and "clerk-430902103201-1" not in township
    officers = text(admin.get("/admin/users?role=county_officer&unit=430902"))
    assert "officer-430902-mz" in officers and "officer-430921-mz" not in officers and CLERK not in officers
    assert "民政" in officers and "县级审批人员" in officers and ">county_officer<" not in officers
    assert "没有符合条件的账号" in text(admin.get("/admin/users?q=%25"))  # a LIKE wildcard is a plain character
    for query, field, message in (("role=emperor", "role", "请从列表中选择角色"),
                                  ("unit=999999", "unit", "没有代码为 999999 的单位"),
                                  ("page=abc", "_form", "页码须为"), ("page=0", "_form", "页码须为")):
        resp = admin.get(f"/admin/users?{query}")
        page = text(resp)
        shown = re.search(rf'<p class="error" role="alert" id="{field}-error">{message}', page)
        assert resp.status_code == 422 and shown, query
        if field != "_form":
            assert re.search(rf'name="{field}"[^>]*aria-invalid="true"', page), query  # the field is marked
    assert 'value="999999"' in text(admin.get("/admin/users?unit=999999"))  # what was typed stays


# ------------------------------------------------------------------------------------------- admin: create
def test_admin_creates_accounts_and_the_temporary_password_is_shown_once(app, admin, seeded):
    resp = create(admin, username="mz-zy-2", display_name="刘建国", role="county_officer", unit="430902",
                  department="民政")
    page = text(resp)
    temporary = TEMPORARY.search(page).group(1)
    assert "账号已创建" in page and "只显示这一次" in page and "刘建国" in page
    user = account(seeded, "mz-zy-2")
    assert (user.role, user.department, user.must_change_password, user.active) == ("county_officer", "民政", True,
                                                                                    True)
    assert temporary not in text(admin.get("/admin/users/mz-zy-2"))  # never again
    assert temporary not in text(admin.get("/admin/users?q=mz-zy"))
    with admin.session_transaction() as sess:
        assert temporary not in repr(dict(sess))  # nor in the cookie
    # a department chosen and then the role changed away from county officer: the select is ignored
    create(admin, username="clerk-x-1", display_name="王芳", role="clerk", unit="430902102201", department="民政")
    assert account(seeded, "clerk-x-1").department is None
    assert actions(seeded) == ["user.created", "user.created"]


@pytest.mark.parametrize("fields, field, message, status", [
    ({"username": "a", "display_name": "王芳", "role": "clerk", "unit": "430902102201"}, "username", "用户名为", 422),
    ({"username": "ADMIN", "display_name": "王芳", "role": "clerk", "unit": "430902102201"}, "username", "已存在", 409),
    ({"username": "wang-f", "display_name": "", "role": "clerk", "unit": "430902102201"}, "display_name", "此项必填", 422),
    ({"username": "wang-f", "display_name": "王芳", "role": "clerk", "unit": "430902102"}, "unit", "只能设在村级单位",
     422),
    ({"username": "wang-f", "display_name": "王芳", "role": "clerk", "unit": "999"}, "unit", "没有代码为 999 的单位",
     422),
    ({"username": "wang-f", "display_name": "王芳", "role": "county_officer", "unit": "430902"}, "department",
     "须指定部门", 422),
    ({"username": "wang-f", "display_name": "王芳", "role": "county_officer", "unit": "430902", "department": "礼部"},
     "department", "请从列表中选择部门", 422),
    ({"username": "wang-f", "display_name": "王芳", "role": "emperor", "unit": "430902"}, "role", "请从列表中选择角色", 422),
])
def test_a_refused_account_shows_why_beside_the_field_keeps_what_was_typed_and_writes_nothing(admin, seeded, fields,
                                                                                             field, message, status):
    before = snapshot(seeded)
    resp = create(admin, **fields)
    page = text(resp)
    assert resp.status_code == status and message in (field_error(page, field) or ""), page
    for name in ("username", "display_name", "unit"):
        if fields.get(name):
            assert f'name="{name}" value="{fields[name]}"' in page, name
    if fields["role"] != "emperor":
        assert f'<option value="{fields["role"]}" selected>' in page
    assert snapshot(seeded) == before


# ------------------------------------------------------------------------------------------- admin: edit etc.
def test_admin_edits_an_account(admin, seeded):
    page = text(admin.get(f"/admin/users/{CLERK}"))
    assert 'value="盛巧云"' in page and '<option value="clerk" selected>' in page and 'value="430902102201"' in page
    resp = post_form(admin, f"/admin/users/{CLERK}", {"display_name": "盛巧云", "role": "agent", "unit": "430902102",
                                                      "department": "民政"}, page=f"/admin/users/{CLERK}")
    assert resp.headers["Location"] == f"/admin/users/{CLERK}"
    assert "已保存账号" in text(admin.get(resp.headers["Location"]))
    user = account(seeded, CLERK)
    assert (user.role, user.department) == ("agent", None)
    assert actions(seeded) == ["user.updated"]
    before = snapshot(seeded)
    refused = post_form(admin, f"/admin/users/{CLERK}", {"display_name": "盛巧云二", "role": "county_officer",
                                                         "unit": "430902102", "department": "民政"},
                        page=f"/admin/users/{CLERK}")
    page = text(refused)
    assert refused.status_code == 422 and "县（区）级" in field_error(page, "unit")
    assert 'value="盛巧云二"' in page and '<option value="county_officer" selected>' in page
    assert '<option value="民政" selected>' in page
    assert snapshot(seeded) == before
    assert admin.get("/admin/users/nobody-at-all").status_code == 404
    demote_self = post_form(admin, "/admin/users/admin", {"display_name": "系统管理员", "role": "clerk",
                                                          "unit": "430902102201"}, page="/admin/users/admin")
    assert demote_self.status_code == 409 and "最后一个启用的管理员" in field_error(text(demote_self), "role")
    assert snapshot(seeded) == before


def test_disabling_ends_the_users_session_on_their_next_request_and_enabling_lets_them_back(app, admin, seeded):
    user = app.test_client()
    login(user, CLERK)
    assert user.get("/").status_code == 200
    confirm = admin.get(f"/admin/users/{CLERK}/disable")
    assert confirm.status_code == 200 and "确认停用" in text(confirm) and account(seeded, CLERK).active
    resp = post_form(admin, f"/admin/users/{CLERK}/disable", page=f"/admin/users/{CLERK}/disable")
    assert resp.headers["Location"] == f"/admin/users/{CLERK}" and not account(seeded, CLERK).active
    assert "已停用账号" in text(admin.get(resp.headers["Location"]))
    assert user.get("/").status_code == 302 and uid(user) is None  # the session is over, not just refused once
    assert "停用" in text(admin.get(f"/admin/users?q={CLERK}"))
    post_form(admin, f"/admin/users/{CLERK}/enable", page=f"/admin/users/{CLERK}/enable")
    assert account(seeded, CLERK).active
    assert login(user, CLERK).headers["Location"] == "/"
    assert actions(seeded) == ["user.disabled", "user.enabled"]


def test_an_admin_cannot_disable_themselves(admin, seeded):
    assert "停用账号…" not in text(admin.get("/admin/users/admin"))  # no button for it
    before = snapshot(seeded)
    resp = post_form(admin, "/admin/users/admin/disable", page="/admin/users/admin/disable")
    assert resp.status_code == 403 and "不能停用自己的账号" in text(resp)
    assert snapshot(seeded) == before


def test_reset_password_shows_a_temporary_one_once_and_unlocks(app, admin, seeded):
    user = app.test_client()
    for _ in range(5):
        login(user, CLERK, "wrong-password")
    assert account(seeded, CLERK).locked_until is not None
    assert "锁定至 09:15" in text(admin.get(f"/admin/users/{CLERK}"))
    resp = post_form(admin, f"/admin/users/{CLERK}/reset-password", page=f"/admin/users/{CLERK}/reset-password")
    temporary = TEMPORARY.search(text(resp)).group(1)
    assert "密码已重置" in text(resp)
    after = account(seeded, CLERK)
    assert after.locked_until is None and after.must_change_password
    assert login(user, CLERK, DEMO_PASSWORD).status_code == 200  # the old password is gone
    assert urlsplit(login(user, CLERK, temporary).headers["Location"]).path == "/account/password"
    assert actions(seeded)[-2:] == ["user.password_reset", "user.login_failed"]


# ------------------------------------------------------------------------------------------- refusals
def _admin_urls(app):
    for rule in app.url_map.iter_rules():
        if rule.endpoint.startswith("admin."):
            yield rule, rule.build({arg: CLERK2 for arg in rule.arguments}, append_unknown=False)[1]


@pytest.mark.parametrize("who", [CLERK, "supervisor", "designer"])
def test_everyone_but_admins_is_refused_on_every_admin_url(app, seeded, who):
    client = app.test_client()
    login(client, who)
    before = snapshot(seeded)
    seen = set()
    data = {"username": "evil-1", "display_name": "坏人", "role": "admin", "unit": "4309", "department": ""}
    for rule, url in _admin_urls(app):
        seen.add(rule.endpoint)
        if "GET" in rule.methods:
            resp = client.get(url)
            assert resp.status_code == 403 and "只有系统管理员" in text(resp), url
        if "POST" in rule.methods:
            resp = client.post(url, data={**data, "csrf_token": csrf_token(client, "/")})  # a valid token
            assert resp.status_code == 403, url
            assert client.post(url, data=data).status_code == 400, url  # and without one
    assert seen >= {"admin.users", "admin.new_user", "admin.edit_user", "admin.disable_user", "admin.enable_user",
                    "admin.reset_password"}
    assert snapshot(seeded) == before
    assert "账号管理" not in text(client.get("/"))


# ------------------------------------------------------------------------------------------- yicun serve
def test_serve_refuses_a_database_that_is_not_there(tmp_path, monkeypatch, capsys):
    from engine import cli
    monkeypatch.setenv("YICUN_SECRET_KEY", "k" * 40)
    missing = tmp_path / "nothing" / "yicun.db"
    assert cli.main(["--db", f"sqlite:///{missing}", "serve", "--production", "--port", "1"]) == 8
    err = capsys.readouterr().err
    assert "no database" in err and "yicun init" in err
    assert not missing.exists() and not missing.parent.exists()  # nothing created on the way


def test_serve_refuses_a_database_without_the_schema(db_url, monkeypatch, capsys):
    from engine import cli
    monkeypatch.setenv("YICUN_SECRET_KEY", "k" * 40)
    engine = db.make_engine(db_url)
    with engine.connect():  # the database exists (a SQLite file is made), with no tables
        pass
    engine.dispose()
    assert cli.main(["--db", db_url, "serve", "--production", "--port", "1"]) == 8
    assert "no Yicun schema" in capsys.readouterr().err


def test_the_account_reads_are_for_admins_only_in_the_engine_too(seeded):
    """The web's blueprint guard only consults the rule; `accounts.list_accounts` and `get_account`
    enforce it (the CLI and any future caller are covered)."""
    from engine import accounts, orgs
    from engine.errors import Forbidden
    with db.read(seeded) as s:
        clerk, admin_ = orgs.actor_by_name(s, CLERK), orgs.actor_by_name(s, "admin")
        for call in (lambda a: accounts.list_accounts(s, a), lambda a: accounts.get_account(s, a, CLERK2)):
            with pytest.raises(Forbidden):
                call(clerk)
            assert call(admin_)
        page = accounts.list_accounts(s, admin_, text="盛巧云")
        assert [a.username for a in page.items] == [CLERK] and page.total == 1
        assert not hasattr(page.items[0], "password_hash")


def test_a_password_reset_ends_the_sessions_opened_before_it(client, seeded):
    """A stolen or forgotten session must not outlive the password it was opened with: after an admin's
    reset (or the user's own change elsewhere) the next request is sent to the login; the session that
    changed the password itself goes on."""
    from engine import accounts
    from engine.policy import Actor

    login(client, CLERK)
    assert client.get("/").status_code == 200
    with db.transaction(seeded) as s:
        accounts.reset_password(s, Actor.operator("root"), CLERK, password="Fresh-pass-2026")
    assert client.get("/").status_code == 302 and uid(client) is None
    other = client.application.test_client()
    for c in (client, other):  # a reset password must be changed at the next login: both land on that page
        assert "/account/password" in login(c, CLERK, "Fresh-pass-2026").headers["Location"]
    resp = post_form(client, "/account/password", {"current": "Fresh-pass-2026", "new": "Another-pass-2026",
                                                   "repeat": "Another-pass-2026"}, page="/account/password")
    assert resp.status_code == 302
    assert client.get("/").status_code == 200  # the session that changed it goes on
    assert other.get("/").status_code == 302 and uid(other) is None  # every other one ends
