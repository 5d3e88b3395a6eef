"""Security headers on every response (pages, JSON, static files, error pages).

The Content-Security-Policy allows no inline script or style at all: templates carry no <script>,
<style> or style="…" — everything lives in web/static/. So an injected tag cannot run even if some
template forgot to escape.
"""
from __future__ import annotations

from flask import Flask, Response, g, request

CONTENT_SECURITY_POLICY = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
                           "frame-ancestors 'none'; base-uri 'self'; form-action 'self'; object-src 'none'")

HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=()",
}


def add_security_headers(response: Response) -> Response:
    for name, value in HEADERS.items():
        response.headers.setdefault(name, value)
    if request.is_secure:
        response.headers.setdefault("Strict-Transport-Security", "max-age=31536000")
    if g.get("actor") is not None and request.endpoint != "static":
        # pages of a logged-in user hold names and cases: no copy in shared or back-button caches
        response.headers.setdefault("Cache-Control", "no-store")
    return response


def init_headers(app: Flask) -> None:
    app.after_request(add_security_headers)
