"""Flask extensions and request-level protections that every view shares: CSRF tokens on every
state-changing request, a same-origin check, session cookies that are Secure over HTTPS, proxy headers.

CSRF: Flask-WTF's `CSRFProtect` checks every POST/PUT/PATCH/DELETE — forms send the hidden field
`csrf_token`, JavaScript and API clients the header `X-CSRFToken` (the token is in every page's
`<meta name="csrf-token">`). On top of it, a request whose `Origin` header names another site (or is
`null`) is refused before the token is even looked at: browsers send `Origin` on every cross-site POST,
so a forged form fails twice.

Languages: Flask-Babel, Chinese by default; the locale comes from the user's choice (web.i18n).
"""
from __future__ import annotations

from urllib.parse import urlsplit

from flask import Flask, request
from flask.sessions import SecureCookieSessionInterface
from flask_babel import Babel, gettext
from flask_wtf.csrf import CSRFError, CSRFProtect
from werkzeug.middleware.proxy_fix import ProxyFix

from .i18n import DEFAULT_LOCALE, select_locale

csrf = CSRFProtect()
babel = Babel()

UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


class SessionInterface(SecureCookieSessionInterface):
    """The signed-cookie session, with the Secure flag also set whenever the request itself came over
    HTTPS (as seen after ProxyFix), not only when YICUN_SECURE_COOKIES forces it."""

    def get_cookie_secure(self, app: Flask) -> bool:
        return bool(app.config["SESSION_COOKIE_SECURE"]) or request.is_secure


def check_origin() -> None:
    """Refuse an unsafe request that a browser says comes from another site. No `Origin` header (curl,
    old browsers, same-origin GETs) leaves the decision to the CSRF token."""
    if request.method not in UNSAFE_METHODS:
        return
    origin = request.headers.get("Origin")
    if origin is None:
        return
    if origin == "null" or urlsplit(origin).netloc.lower() != request.host.lower():
        raise CSRFError(gettext("跨站请求被拒绝（来源不是本站）。"))


def init_extensions(app: Flask, proxy_hops: int = 0) -> None:
    if proxy_hops:
        # behind N reverse proxies: trust their X-Forwarded-For/-Proto/-Host/-Port (scheme → Secure cookies)
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=proxy_hops, x_proto=proxy_hops,  # type: ignore[method-assign]
                                x_host=proxy_hops, x_port=proxy_hops)
    app.session_interface = SessionInterface()
    app.before_request(check_origin)  # before the token check: a forged request fails on its origin first
    csrf.init_app(app)
    babel.init_app(app, default_locale=DEFAULT_LOCALE, default_timezone="Asia/Shanghai", locale_selector=select_locale)
