"""Static files for slow rural links: fingerprinted URLs cached for a year, text compressed on the way.

- **Fingerprints.** Every `url_for('static', filename=F)` — templates name static files no other way —
  gets `?v=<hash of F's content>` from a URL default, so base.html, the diagram partial and any page
  written later are fingerprinted without knowing it. The hash is the file's SHA-256 (first 16 hex
  digits), kept per app and computed again only when the file's size or mtime changes (one `stat` per URL).
  A query string rather than a hashed path keeps Flask's own static route: a page cached before a deploy
  asks for an old `v` and still gets the current file, only not cached for long.
- **Caching.** A static response whose `v` is the file's current hash is `public, max-age=31536000,
  immutable`: the browser never asks again, and a changed file has a new URL. Any other static response
  (no `v`, or a stale one) keeps Werkzeug's `no-cache` with its ETag and Last-Modified: revalidated (304)
  on every use. Pages are not touched here (web.headers keeps `no-store` on a signed-in user's pages).
- **Compression.** Flask-Compress compresses HTML, CSS, JS, JSON, XML and SVG for a client that accepts it
  (zstd, br, gzip or deflate, in the library's order of preference; a 300-KB page weight budget is counted
  in gzip, the one every browser takes). Werkzeug streams static files, and the library would compress a
  stream with zstd, br or deflate but never gzip, and a partial (206) answer to a Range request as if it
  were whole; so streams are left alone (COMPRESS_STREAMS off) and a textual static file is read into
  memory here first (the largest is the diagram viewer, ≈ 190 KB) and compressed like a page.
"""
from __future__ import annotations

import hashlib
import os
import stat
from typing import Any

from flask import Flask, Response, current_app, request
from flask_compress import Compress
from werkzeug.security import safe_join

#: Hex digits of the SHA-256 in a fingerprint: 64 bits, no two versions of a file will ever share one.
HASH_LENGTH = 16
#: A fingerprinted file is cached for a year (the most RFC 9111 caches honour) and never revalidated.
ONE_YEAR = 31_536_000
#: Static files that are text, read into memory so that they can be compressed (Flask-Compress's list,
#: less the fonts and icons, which the browser loads from a fingerprinted URL once).
TEXT_TYPES = frozenset({"text/css", "text/javascript", "application/javascript", "application/json",
                        "image/svg+xml", "text/plain", "text/xml", "application/xml"})
_CACHE_KEY = "yicun_fingerprints"


def fingerprint(filename: str, app: Flask | None = None) -> str | None:
    """The content hash of static file `filename` (None for a path outside the static folder or a file
    that does not exist: its URL is built as usual and answers 404)."""
    app = app or current_app
    if app.static_folder is None:
        return None
    path = safe_join(app.static_folder, filename)
    if path is None:
        return None
    try:
        st = os.stat(path)
    except OSError:
        return None
    if not stat.S_ISREG(st.st_mode):
        return None
    cache: dict[str, tuple[int, int, str]] = app.extensions[_CACHE_KEY]
    known = cache.get(path)
    if known is not None and known[:2] == (st.st_mtime_ns, st.st_size):
        return known[2]
    with open(path, "rb") as f:
        digest = hashlib.file_digest(f, "sha256").hexdigest()[:HASH_LENGTH]
    cache[path] = (st.st_mtime_ns, st.st_size, digest)
    return digest


def _fingerprint_static_urls(endpoint: str, values: dict[str, Any]) -> None:
    """URL default: `url_for('static', filename=F)` becomes `/static/F?v=<hash>`."""
    if endpoint == "static" and "v" not in values and isinstance(values.get("filename"), str):
        digest = fingerprint(values["filename"])
        if digest is not None:
            values["v"] = digest


def _cache_static(response: Response) -> Response:
    """Cache headers of a static file by whether its URL is fingerprinted; text read into memory so that
    Flask-Compress (which runs after this) compresses it with gzip too."""
    if request.endpoint != "static" or response.status_code not in (200, 304):
        return response
    filename = (request.view_args or {}).get("filename")
    version = request.args.get("v")
    if version and isinstance(filename, str) and version == fingerprint(filename):
        response.cache_control.no_cache = None
        response.cache_control.public = True
        response.cache_control.max_age = ONE_YEAR
        response.cache_control.immutable = True
        response.headers.pop("Expires", None)  # (`expires = None` would set it to now)
    if response.status_code == 200 and response.direct_passthrough and response.mimetype in TEXT_TYPES:
        response.direct_passthrough = False
        response.get_data()  # the file into memory: no longer a stream, so compressed as a whole
    return response


def init_assets(app: Flask) -> None:
    """Fingerprinted static URLs, their cache headers, and compression of every textual response."""
    app.extensions[_CACHE_KEY] = {}
    app.url_defaults(_fingerprint_static_urls)
    app.config.setdefault("COMPRESS_STREAMS", False)  # see the module's docstring
    Compress(app)                      # after_request hooks run last-registered first: so _cache_static
    app.after_request(_cache_static)   # buffers a static file before Flask-Compress looks at it
