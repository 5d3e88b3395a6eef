"""The web's security foundation (issue #8 §3): headers, cookies, CSRF, open redirects, the secret key,
demo logins, deny by default, error pages. Every test here runs with CSRF protection on."""
from __future__ import annotations

import os
import re
import stat
from urllib.parse import urlsplit

import pytest

from engine import db, orgs
from engine.models import Notification
from web import create_app
from web.config import ConfigError
from web.guards import is_public
from web.headers import CONTENT_SECURITY_POLICY

from .conftest import CLERK, snapshot, start
from .webtools import csrf_token, login, make_app, post_form

WEB_ENV = ("YICUN_SECRET_KEY", "YICUN_DEMO", "YICUN_INSTANCE_DIR", "YICUN_SECURE_COOKIES", "YICUN_PROXY_HOPS")


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    """Each test decides the web settings itself; the developer's shell must not leak in."""
    for name in WEB_ENV:
        monkeypatch.delenv(name, raising=False)


def _url(engine) -> str:
    return engine.url.render_as_string(hide_password=False)


# ------------------------------------------------------------------------------------------- headers
def _assert_security_headers(resp, what):
    h = resp.headers
    assert h["Content-Security-Policy"] == CONTENT_SECURITY_POLICY, what
    assert "unsafe-inline" not in h["Content-Security-Policy"] and "unsafe-eval" not in h["Content-Security-Policy"]
    for directive in ("default-src 'self'", "script-src 'self'", "style-src 'self'", "frame-ancestors 'none'",
                      "base-uri 'self'", "form-action 'self'", "img-src 'self' data:"):
        assert directive in h["Content-Security-Policy"], (what, directive)
    assert h["X-Frame-Options"] == "DENY", what
    assert h["X-Content-Type-Options"] == "nosniff", what
    assert h["Referrer-Policy"] in ("same-origin", "strict-origin-when-cross-origin"), what


INLINE = re.compile(r"<script(?![^>]*\bsrc=)|<style|\sstyle=|\son[a-z]+=|javascript:", re.I)


def test_security_headers_on_every_kind_of_response_and_no_inline_code(client, seeded):
    number = start(seeded, service="FX-DIBAO").case_number
    anonymous = {"/login": 200, "/healthz": 200, "/static/yicun.css": 200, "/": 302, "/api/v1/cases": 401,
                 "/no-such-page": 404}
    for path, status in anonymous.items():
        resp = client.get(path)
        assert resp.status_code == status, path
        _assert_security_headers(resp, path)
    assert INLINE.search(client.get("/login").get_data(as_text=True)) is None
    login(client, "admin")
    for path in ("/", "/processes", f"/cases/{number}", "/admin/users", "/service-day/430902102201",
                 "/api/v1/cases", "/cases/YY-2026-999999"):
        resp = client.get(path)
        _assert_security_headers(resp, path)
        assert resp.headers["Cache-Control"] == "no-store", path  # personal pages are never cached
        if resp.mimetype == "text/html":
            assert INLINE.search(resp.get_data(as_text=True)) is None, path
    failed = client.post("/logout")  # a refused form: the error page has the headers too
    assert failed.status_code == 400
    _assert_security_headers(failed, "csrf failure")


def test_session_cookie_is_httponly_lax_and_secure_over_https(seeded, monkeypatch):
    plain = make_app(seeded).test_client()
    cookie = plain.get("/login").headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" not in cookie
    tls = make_app(seeded).test_client().get("/login", base_url="https://localhost").headers
    assert "Secure" in tls["Set-Cookie"] and "HttpOnly" in tls["Set-Cookie"]
    assert tls["Strict-Transport-Security"].startswith("max-age=")
    monkeypatch.setenv("YICUN_SECURE_COOKIES", "1")  # TLS ends at a proxy: force it
    forced = make_app(seeded).test_client().get("/login").headers["Set-Cookie"]
    assert "Secure" in forced and "HttpOnly" in forced and "SameSite=Lax" in forced
    monkeypatch.setenv("YICUN_SECURE_COOKIES", "perhaps")
    with pytest.raises(ConfigError, match="YICUN_SECURE_COOKIES"):
        make_app(seeded)


def test_proxy_hops_make_forwarded_https_secure(seeded, monkeypatch):
    monkeypatch.setenv("YICUN_PROXY_HOPS", "1")
    behind = make_app(seeded).test_client()
    cookie = behind.get("/login", headers={"X-Forwarded-Proto": "https"}).headers["Set-Cookie"]
    assert "Secure" in cookie
    monkeypatch.delenv("YICUN_PROXY_HOPS")
    direct = make_app(seeded).test_client()  # not behind a proxy: the header is a lie and ignored
    assert "Secure" not in direct.get("/login", headers={"X-Forwarded-Proto": "https"}).headers["Set-Cookie"]


# ------------------------------------------------------------------------------------------- CSRF
def _uid(client):
    with client.session_transaction() as sess:
        return sess.get("uid")


@pytest.mark.parametrize("token", [None, "", "forged-token", "IjEyMyI.aaaa.bbbb"])
def test_login_without_a_valid_token_is_refused(client, token):
    csrf_token(client)  # the session has a real token; the form does not send it
    data = {"username": CLERK, "password": orgs.DEMO_PASSWORD}
    if token is not None:
        data["csrf_token"] = token
    resp = client.post("/login", data=data)
    page = resp.get_data(as_text=True)
    assert resp.status_code == 400 and "CSRF" in page and "请刷新页面后重新提交" in page
    assert _uid(client) is None and client.get("/").status_code == 302


def _unread(s, uid):
    return s.query(Notification).filter(Notification.user_id == uid, Notification.read_at.is_(None)).count()


def test_logout_and_state_changes_need_the_token(client, seeded, manual_clock):
    from datetime import timedelta

    from engine import timers
    start(seeded, service="FX-PENSION")
    timers.sweep(seeded, manual_clock.now() + timedelta(days=4))  # cards → notifications for the clerk
    login(client, CLERK)
    uid = _uid(client)
    before = snapshot(seeded)
    for data in ({}, {"csrf_token": "wrong"}):
        assert client.post("/logout", data=data).status_code == 400
        assert client.post("/notifications/read", data=data).status_code == 400
    assert _uid(client) == uid and client.get("/").status_code == 200  # still logged in
    assert snapshot(seeded) == before  # nothing was marked read
    with db.read(seeded) as s:
        assert s.query(Notification).filter(Notification.read_at.is_(None)).count() > 0
    # the same requests with the token (field, or the header a script or API client would send) work
    token = csrf_token(client, "/")
    assert client.post("/notifications/read", headers={"X-CSRFToken": token}).status_code == 302
    with db.read(seeded) as s:
        assert _unread(s, uid) == 0
    assert post_form(client, "/logout").status_code == 302 and _uid(client) is None


def test_a_cross_site_origin_is_refused_even_with_a_token(client):
    token = csrf_token(client)
    data = {"username": CLERK, "password": orgs.DEMO_PASSWORD, "csrf_token": token}
    for origin in ("https://evil.example", "null", "http://localhost.evil.example"):
        resp = client.post("/login", data=data, headers={"Origin": origin})
        assert resp.status_code == 400 and "跨站" in resp.get_data(as_text=True), origin
        assert _uid(client) is None
    same = client.post("/login", data=data, headers={"Origin": "http://localhost"})
    assert same.status_code == 302 and _uid(client) is not None


def test_json_posts_need_the_token_header(seeded):
    """No JSON verb exists yet; one registered here stands for the coming API: CSRF applies to every
    unsafe request, and the header `X-CSRFToken` is how a script sends the token."""
    from flask import jsonify, request
    app = make_app(seeded)
    calls = []

    def echo():
        calls.append(request.get_json())
        return jsonify(ok=True)

    app.add_url_rule("/api/v1/echo", "api_echo", echo, methods=["POST"])
    client = app.test_client()
    login(client, CLERK)
    for headers in ({}, {"X-CSRFToken": "nope"}):
        resp = client.post("/api/v1/echo", json={"a": 1}, headers=headers)
        assert resp.status_code == 400 and resp.get_json()["error"] == "csrf_failed"
        assert resp.get_json()["message"].startswith("表单已失效")
    assert calls == []
    ok = client.post("/api/v1/echo", json={"a": 1}, headers={"X-CSRFToken": csrf_token(client, "/")})
    assert ok.status_code == 200 and calls == [{"a": 1}]
    body = app.test_client().get("/api/v1/cases").get_json()
    assert body["status"] == 401 and body["title"] == "请先登录"


# ------------------------------------------------------------------------------------------- open redirect
BAD_NEXT = [
    "//evil.example", "//evil.example/", "///evil.example", "/\\evil.example", "\\\\evil.example",
    "/%09/evil.example", "/\t/evil.example", "/\n/evil.example", "%2F%2Fevil.example", "/%2F/evil.example",
    "/%5Cevil.example", "https://evil.example", "http:evil.example", "https:/evil.example",
    "javascript:alert(1)", "JaVaScRiPt:alert(1)", "data:text/html,hi", " /evil", "/ /evil", "/.//evil.example",
    "/./evil", "/../evil", "/cases/..", "/a//evil.example", "evil.example", "\x00/evil", "/\x7f/evil",
    "/\u3000/evil", "/\u2028/evil", "", "?next=//evil", "#//evil", "/" + "a" * 3000,
]


@pytest.mark.parametrize("target", BAD_NEXT)
def test_login_never_redirects_off_site(client, target):
    resp = login(client, CLERK, next=target)
    assert resp.status_code == 302
    location = resp.headers["Location"]
    assert location == "/"  # the home page, whatever the attempt
    assert urlsplit(location).netloc == "" and _uid(client) is not None


@pytest.mark.parametrize("target", ["/processes", "/cases/YY-2026-000001", "/service-day?x=1", "/admin/users#top"])
def test_login_follows_a_same_site_path(client, target):
    assert login(client, CLERK, next=target).headers["Location"] == target


def test_the_login_redirect_carries_the_path_asked_for(client):
    resp = client.get("/processes?sort=code")
    assert resp.status_code == 302 and urlsplit(resp.headers["Location"]).path == "/login"
    assert login(client, CLERK, next="/processes?sort=code").headers["Location"] == "/processes?sort=code"


# ------------------------------------------------------------------------------------------- secret key
def test_the_secret_key_file_survives_restarts(seeded, tmp_path):
    instance = tmp_path / "instance"
    first = create_app({"DATABASE_URL": _url(seeded), "DEMO": True, "INSTANCE_DIR": str(instance)})
    key_file = instance / "secret_key"
    assert key_file.exists() and stat.S_IMODE(key_file.stat().st_mode) == 0o600
    key = key_file.read_text()
    one = first.test_client()
    login(one, CLERK)
    assert one.get("/").status_code == 200
    cookie = one.get_cookie("session").value

    second = create_app({"DATABASE_URL": _url(seeded), "DEMO": True, "INSTANCE_DIR": str(instance)})
    assert key_file.read_text() == key  # reused, not rewritten
    two = second.test_client()
    two.set_cookie("session", cookie)
    assert two.get("/").status_code == 200  # the restarted server accepts yesterday's session

    # production mode reads the same file (no demo needed once it exists)
    third = create_app({"DATABASE_URL": _url(seeded), "INSTANCE_DIR": str(instance)})
    three = third.test_client()
    three.set_cookie("session", cookie)
    assert three.get("/").status_code == 200

    stranger = create_app({"DATABASE_URL": _url(seeded), "DEMO": True, "INSTANCE_DIR": str(tmp_path / "other")})
    four = stranger.test_client()
    four.set_cookie("session", cookie)
    assert four.get("/").status_code == 302  # another key: the cookie is worthless


def test_without_a_key_the_server_refuses_to_start(seeded, tmp_path, monkeypatch, capsys):
    from engine import cli
    instance = tmp_path / "instance"
    with pytest.raises(ConfigError, match="YICUN_SECRET_KEY"):
        create_app({"DATABASE_URL": _url(seeded), "INSTANCE_DIR": str(instance)})
    monkeypatch.setenv("YICUN_INSTANCE_DIR", str(instance))
    assert cli.main(["--db", _url(seeded), "serve", "--production", "--port", "1"]) == 2
    err = capsys.readouterr().err
    assert "no secret key" in err and "YICUN_SECRET_KEY" in err and "secret_key" in err
    assert not (instance / "secret_key").exists()  # production never invents a key
    assert cli.main(["--db", _url(seeded), "serve"]) == 2  # neither --demo nor --production: say which
    assert "--production" in capsys.readouterr().err
    monkeypatch.setenv("YICUN_SECRET_KEY", "short")
    with pytest.raises(ConfigError, match="too short"):
        create_app({"DATABASE_URL": _url(seeded)})
    monkeypatch.setenv("YICUN_SECRET_KEY", "k" * 40)
    assert create_app({"DATABASE_URL": _url(seeded)}).config["SECRET_KEY"] == "k" * 40
    assert not (instance / "secret_key").exists()


# ------------------------------------------------------------------------------------------- demo logins
def test_demo_logins_are_shown_only_in_demo_mode(seeded, tmp_path, monkeypatch):
    page = make_app(seeded).test_client().get("/login").get_data(as_text=True)
    assert orgs.DEMO_PASSWORD not in page and "演示账号" not in page
    assert not any(u in page for u, _ in orgs.DEMO_LOGINS)
    demo = make_app(seeded, DEMO=True).test_client().get("/login").get_data(as_text=True)
    assert orgs.DEMO_PASSWORD in demo and "演示账号" in demo and all(u in demo for u, _ in orgs.DEMO_LOGINS)
    monkeypatch.setenv("YICUN_DEMO", "1")  # what `yicun serve --demo` amounts to
    monkeypatch.setenv("YICUN_INSTANCE_DIR", str(tmp_path))
    env_demo = create_app({"DATABASE_URL": _url(seeded), "TESTING": True}).test_client()
    assert orgs.DEMO_PASSWORD in env_demo.get("/login").get_data(as_text=True)


# ------------------------------------------------------------------------------------------- deny by default
def _example_url(rule) -> str:
    from werkzeug.routing.converters import NumberConverter
    values = {arg: 1 if isinstance(rule._converters.get(arg), NumberConverter) else "x" for arg in rule.arguments}
    return rule.build(values, append_unknown=False)[1]


def test_every_route_needs_a_login_unless_marked_public(app, client):
    public = {rule.endpoint for rule in app.url_map.iter_rules() if is_public(app, rule.endpoint)}
    # widening this is a decision: the language switch is public so that it works on the login page too;
    # 办件查询 and its rating are for citizens, who have no account (issue #9 §7, tests/test_public.py)
    assert public == {"static", "auth.login", "auth.logout", "public.healthz", "i18n.switch_language",
                      "public.query_form", "public.query", "public.rate"}
    checked = set()
    for rule in app.url_map.iter_rules():
        if rule.endpoint in public:
            continue
        url = _example_url(rule)
        if "GET" in rule.methods:
            resp = client.get(url)
            if url.startswith("/api/"):
                assert resp.status_code == 401 and resp.get_json()["error"] == "unauthorized", url
            else:
                assert resp.status_code == 302, url
                location = urlsplit(resp.headers["Location"])
                assert location.path == "/login" and "next=" in location.query, url
        for method in sorted(rule.methods - {"GET", "HEAD", "OPTIONS"}):
            resp = client.open(url, method=method, headers={"X-CSRFToken": csrf_token(client)})
            assert resp.status_code in (302, 401), (method, url)
            if resp.status_code == 302:
                assert urlsplit(resp.headers["Location"]).path == "/login"
        checked.add(str(rule))
    assert {"/", "/cases/<number>", "/processes", "/service-day", "/admin/users", "/api/v1/cases",
            "/api/cases", "/notifications/read"} <= checked


def test_a_removed_user_is_logged_out_on_the_next_request(client, seeded):
    from sqlalchemy import delete

    from engine.models import User
    login(client, "designer")
    assert client.get("/processes").status_code == 200
    with db.transaction(seeded) as s:
        s.execute(delete(User).where(User.username == "designer"))
    assert client.get("/processes").status_code == 302 and _uid(client) is None


# ------------------------------------------------------------------------------------------- errors
def test_unexpected_errors_are_a_chinese_500_without_a_traceback(seeded):
    from web.guards import public

    app = make_app(seeded)

    @public
    def boom():
        raise RuntimeError("secret internals")

    app.add_url_rule("/boom", "boom", boom)
    app.add_url_rule("/api/v1/boom", "api_boom", boom)
    client = app.test_client()
    page = client.get("/boom")
    text = page.get_data(as_text=True)
    assert page.status_code == 500 and "服务器出错" in text and "secret internals" not in text
    assert "Traceback" not in text
    _assert_security_headers(page, "500")
    api = client.get("/api/v1/boom")
    assert api.status_code == 500 and api.get_json()["error"] == "internal_server_error"
    assert "secret internals" not in api.get_data(as_text=True)


def test_oversized_requests_are_refused(client):
    resp = client.post("/login", data={"username": "x" * (4 * 1024 * 1024)})
    assert resp.status_code == 413 and "太大" in resp.get_data(as_text=True)
    assert os.environ.get("YICUN_SECRET_KEY") is None  # the autouse fixture kept the shell out
