"""The minimal web: log in, see deployed processes and the open cases of one's own part of the tree.
Forms are posted with their CSRF token, read from the page (tests/webtools.py)."""
from __future__ import annotations

from datetime import timedelta

from .conftest import CLERK, OTHER_CLERK, start
from .webtools import csrf_token, login, post_form


def test_login_required_and_wrong_password(client):
    assert client.get("/").status_code == 302
    resp = login(client, CLERK, "wrong")
    assert resp.status_code == 200 and "用户名或密码错误" in resp.get_data(as_text=True)
    assert client.get("/").status_code == 302


def test_home_lists_processes_and_visible_open_cases(client, seeded):
    number = start(seeded, service="FX-DIBAO").case_number
    assert login(client, CLERK).status_code == 302
    page = client.get("/").get_data(as_text=True)
    for text in (number, "受理并核查申请材料", "已部署流程", "便民服务员", "办理中"):
        assert text in page
    assert ">clerk<" not in page and ">open<" not in page  # stored words are shown in Chinese
    listing = client.get("/processes").get_data(as_text=True)
    assert "最低生活保障申请" in listing and "FX-HOMESTEAD" in listing
    assert client.get(f"/cases/{number}").status_code == 200
    assert [c["number"] for c in client.get("/api/v1/cases").get_json()] == [number]
    assert client.get(f"/api/v1/cases/{number}").get_json()["number"] == number
    legacy = client.get("/api/cases")  # the first, unversioned path still answers, marked deprecated
    assert [c["number"] for c in legacy.get_json()] == [number] and legacy.headers["Deprecation"] == "true"
    assert post_form(client, "/logout").status_code == 302
    assert client.get("/").status_code == 302
    login(client, OTHER_CLERK)
    assert number not in client.get("/").get_data(as_text=True)
    assert client.get(f"/cases/{number}").status_code == 404
    assert client.get(f"/api/v1/cases/{number}").status_code == 404
    assert client.get("/api/v1/cases").get_json() == []
    assert client.get("/api/cases").get_json() == []


def test_open_redirect_is_refused(client):
    resp = login(client, CLERK, next="//evil.example/")
    assert resp.headers["Location"] == "/"


def test_case_page_shows_dues_cards_and_notifications(client, seeded, manual_clock):
    from engine import timers
    number = start(seeded, service="FX-PENSION").case_number
    timers.sweep(seeded, manual_clock.now() + timedelta(days=4))  # the intake step runs over
    login(client, CLERK)
    page = client.get(f"/cases/{number}").get_data(as_text=True)
    assert "承诺期限" in page and "2026-11-09 24:00" in page and "红牌" in page
    home = client.get("/").get_data(as_text=True)
    assert "通知" in home and number in home and 'class="card-red"' in home
    post_form(client, "/notifications/read")
    assert 'card-red read' in client.get("/").get_data(as_text=True)
    assert "还没有服务日摘要" in client.get("/service-day").get_data(as_text=True)
    assert client.get("/service-day/430921102201").status_code == 404  # another county's village
    assert client.get("/service-day/430902102202").status_code == 404  # a neighbouring village
    assert client.get("/service-day/nonexistent").status_code == 404


def test_supervisors_see_estimated_dues(client, seeded, manual_clock):
    from datetime import datetime

    from engine.clock import SHANGHAI
    manual_clock.set(datetime(2026, 12, 24, 10, 0, tzinfo=SHANGHAI))
    start(seeded, service="FX-DIBAO", now=manual_clock.now())
    login(client, "supervisor")
    assert "期限为估算" in client.get("/").get_data(as_text=True)
    assert client.get("/service-day/430902102201").status_code == 200  # a village below the city


def test_a_deactivated_account_loses_its_session(client, seeded):
    from sqlalchemy import update

    from engine import db
    from engine.models import User
    number = start(seeded, service="FX-DIBAO").case_number
    login(client, "supervisor")
    assert client.get(f"/cases/{number}").status_code == 200
    with db.transaction(seeded) as s:
        s.execute(update(User).where(User.username == "supervisor").values(active=False))
    assert client.get(f"/cases/{number}").status_code == 302
    assert client.get("/api/v1/cases").status_code == 401
    with client.session_transaction() as sess:
        assert "uid" not in sess  # the session was ended, not just refused once


def test_admin_users_list_is_for_admins_only(client):
    login(client, CLERK)
    resp = client.get("/admin/users")
    assert resp.status_code == 403 and "只有系统管理员" in resp.get_data(as_text=True)
    assert "账号管理" not in client.get("/").get_data(as_text=True)
    post_form(client, "/logout")
    login(client, "admin")
    assert "账号管理" in client.get("/").get_data(as_text=True)
    page = client.get("/admin/users").get_data(as_text=True)
    assert CLERK in page and "便民服务员" in page and "邹家村" in page and "启用" in page
    only = client.get("/admin/users?role=county_officer").get_data(as_text=True)
    assert "officer-430902-mz" in only and CLERK not in only
    assert client.get("/admin/users?role=emperor").status_code == 422


def test_error_pages_are_in_chinese(client):
    page = client.get("/no-such-page")
    assert page.status_code == 404 and "找不到页面" in page.get_data(as_text=True)
    assert client.get("/logout").status_code == 405 and "不支持" in client.get("/logout").get_data(as_text=True)
    assert client.get("/api/v1/nothing").get_json()["status"] == 404
    login(client, CLERK)
    case = client.get("/cases/YY-2026-999999")
    assert case.status_code == 404 and "找不到" in case.get_data(as_text=True)
    api = client.get("/api/v1/cases/YY-2026-999999")
    assert api.status_code == 404 and api.get_json()["error"] == "not_found" and csrf_token(client, "/")


def test_a_case_page_speaks_of_people_and_steps_not_stored_words(client, seeded, manual_clock):
    from engine import orgs, timers
    from engine.db import read
    number = start(seeded, service="FX-PENSION").case_number
    timers.sweep(seeded, manual_clock.now() + timedelta(days=4))
    login(client, CLERK)
    page = client.get(f"/cases/{number}").get_data(as_text=True)
    with read(seeded) as s:
        clerk_name = orgs.actor_by_name(s, CLERK).display_name
    assert f"首问责任人 {clerk_name}" in page
    history = page[page.index('<ol class="audit">'):]
    assert "受理" in history and "环节开始" in history and "红牌" in history and "系统" in history
    for raw in ("case.started", "task.opened", "card.red", CLERK, "system", "（— → open）"):
        assert raw not in history, raw
    assert "受理（— → 办理中）" in history and "环节开始（— → 待办）" in history and "红牌（— → 红牌）" in history
