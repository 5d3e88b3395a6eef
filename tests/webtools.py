"""Helpers for tests that drive the web app through Flask's test client with CSRF protection on: forms
are posted with the token read from a page, the way a browser does."""
from __future__ import annotations

import re
from typing import Any
from urllib.parse import quote

from flask import Flask
from jinja2 import BytecodeCache
from jinja2.bccache import Bucket
from flask.testing import FlaskClient
from sqlalchemy import Engine

from engine.orgs import DEMO_PASSWORD
from web import create_app

_META = re.compile(r'<meta name="csrf-token" content="([^"]+)">')
_FIELD = re.compile(r'<input type="hidden" name="csrf_token" value="([^"]+)">')


class _SharedTemplateCode(BytecodeCache):
    """Compiled templates shared by every test app of the process. Each Flask app has its own Jinja
    environment, so each test app compiled the templates it rendered again — 30 ms apiece, 10 s of a
    `make test-fast` run. Jinja keys the code by template name and a checksum of its source, so an edited
    template is compiled afresh."""

    def __init__(self) -> None:
        self._code: dict[str, bytes] = {}

    def load_bytecode(self, bucket: Bucket) -> None:
        code = self._code.get(bucket.key)
        if code is not None:
            bucket.bytecode_from_string(code)

    def dump_bytecode(self, bucket: Bucket) -> None:
        self._code[bucket.key] = bucket.bytecode_to_string()


_TEMPLATE_CODE = _SharedTemplateCode()


def make_app(engine: Engine, **config: Any) -> Flask:
    """The app on the test database, in testing mode, CSRF on (unless a test turns it off itself)."""
    app = create_app({"DATABASE_URL": engine.url.render_as_string(hide_password=False), "TESTING": True,
                      "SECRET_KEY": "test-secret-key-of-at-least-32-characters", **config})
    app.jinja_env.bytecode_cache = _TEMPLATE_CODE
    return app


def csrf_token(client: FlaskClient, page: str = "/login") -> str:
    """The CSRF token of the client's session, as the page's <meta> tag and its forms carry it."""
    html = client.get(page).get_data(as_text=True)
    meta, field = _META.search(html), _FIELD.search(html)
    assert meta, f"no csrf-token meta tag on {page}"
    assert field is None or field.group(1) == meta.group(1)
    return meta.group(1)


def login(client: FlaskClient, username: str, password: str = DEMO_PASSWORD, next: str | None = None) -> Any:
    token = csrf_token(client, "/login")
    url = "/login" if next is None else "/login?next=" + quote(next, safe="")
    return client.post(url, data={"username": username, "password": password, "csrf_token": token})


def post_form(client: FlaskClient, path: str, data: dict[str, str] | None = None, page: str = "/") -> Any:
    """Submit a form of `page` to `path` as the browser would (token from the page)."""
    return client.post(path, data={**(data or {}), "csrf_token": csrf_token(client, page)})
