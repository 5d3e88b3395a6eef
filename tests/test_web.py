"""The minimal web: log in, see deployed processes and the open cases of one's own part of the tree."""
from __future__ import annotations

from datetime import timedelta

import pytest

from web import create_app

from .conftest import CLERK, OTHER_CLERK, start


@pytest.fixture
def client(seeded):
    app = create_app({"DATABASE_URL": str(seeded.url.render_as_string(hide_password=False)), "TESTING": True,
                      "SECRET_KEY": "test"})
    return app.test_client()


def login(client, username, password="yicun2016"):
    return client.post("/login", data={"username": username, "password": password})


def test_login_required_and_wrong_password(client):
    assert client.get("/").status_code == 302
    resp = login(client, CLERK, "wrong")
    assert resp.status_code == 200 and "用户名或密码错误" in resp.get_data(as_text=True)
    assert client.get("/").status_code == 302


def test_home_lists_processes_and_visible_open_cases(client, seeded):
    number = start(seeded, service="FX-DIBAO").case_number
    assert login(client, CLERK).status_code == 302
    page = client.get("/").get_data(as_text=True)
    for text in (number, "受理并核查申请材料", "已部署流程"):
        assert text in page
    listing = client.get("/processes").get_data(as_text=True)
    assert "最低生活保障申请" in listing and "FX-HOMESTEAD" in listing
    assert client.get(f"/cases/{number}").status_code == 200
    assert [c["number"] for c in client.get("/api/cases").get_json()] == [number]
    client.post("/logout")
    login(client, OTHER_CLERK)
    assert number not in client.get("/").get_data(as_text=True)
    assert client.get(f"/cases/{number}").status_code == 404
    assert client.get("/api/cases").get_json() == []


def test_open_redirect_is_refused(client):
    resp = client.post("/login?next=//evil.example/", data={"username": CLERK, "password": "yicun2016"})
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
    client.post("/notifications/read")
    assert 'card-red read' in client.get("/").get_data(as_text=True)
    assert "还没有服务日摘要" in client.get("/service-day").get_data(as_text=True)
    assert client.get("/service-day/430921102201").status_code == 404  # another county's village


def test_supervisors_see_estimated_dues(client, seeded, manual_clock):
    from datetime import datetime
    from engine.clock import SHANGHAI
    manual_clock.set(datetime(2026, 12, 24, 10, 0, tzinfo=SHANGHAI))
    start(seeded, service="FX-DIBAO", now=manual_clock.now())
    login(client, "supervisor")
    assert "期限为估算" in client.get("/").get_data(as_text=True)


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
    assert client.get("/api/cases").status_code == 302
