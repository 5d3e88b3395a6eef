"""The web's settings, read from the environment once per app: where the instance folder is, the secret
key that signs session cookies, demo mode, cookie security, proxies and server threads. What the web
shares with the engine (the database URL) is the engine's (`engine.settings`).

Why a module of its own: the secret key must survive restarts (a new random key on every start logs
everybody out and breaks every open form), must be the same on every web node, and must never be
guessable — so outside demo mode the app refuses to start without one instead of inventing it.
"""
from __future__ import annotations

import os
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from flask import current_app, request

from engine import settings as engine_settings

F = TypeVar("F", bound=Callable[..., Any])
#: the attribute `takes_uploads` sets on a view
UPLOADS_ATTR = "_yicun_takes_uploads"

#: The file (inside the instance folder) that holds the secret key when YICUN_SECRET_KEY is not set.
SECRET_KEY_FILE = "secret_key"
#: Shorter keys are refused: 32 random bytes as hex is what `make run` writes.
MIN_SECRET_KEY_CHARS = 32
#: The least a request body may be (a BPMN file, engine.bpmn.MAX_BPMN_BYTES = 2 MiB, plus its form) and the room
#: a multipart form needs around an attachment (boundaries, part headers, the other fields).
MIN_CONTENT_LENGTH = 3 * 1024 * 1024
UPLOAD_OVERHEAD_BYTES = 1024 * 1024
#: waitress worker threads when neither --workers nor YICUN_WEB_WORKERS says otherwise, and the most allowed
DEFAULT_WORKERS = 8
MAX_WORKERS = 64


class ConfigError(RuntimeError):
    """The server cannot start as configured; the message says what to set (shown by `yicun serve`)."""


def _flag(name: str) -> bool:
    value = os.environ.get(name, "").strip().lower()
    if value in ("", "0", "false", "no", "off"):
        return False
    if value in ("1", "true", "yes", "on"):
        return True
    raise ConfigError(f"{name} must be 1 or 0, not {value!r}")


def _count(name: str, default: int, low: int, high: int) -> int:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    if not raw.isdigit() or not low <= int(raw) <= high:
        raise ConfigError(f"{name} must be a whole number between {low} and {high}, not {raw!r}")
    return int(raw)


@dataclass(frozen=True)
class WebSettings:
    instance_dir: Path
    secret_key: str | None  # from YICUN_SECRET_KEY only; the file is read by `secret_key()`
    demo: bool
    secure_cookies: bool
    proxy_hops: int
    workers: int

    @classmethod
    def from_env(cls) -> WebSettings:
        return cls(
            instance_dir=Path(os.environ.get("YICUN_INSTANCE_DIR") or Path.cwd() / "instance").absolute(),
            secret_key=os.environ.get("YICUN_SECRET_KEY") or None,
            demo=_flag("YICUN_DEMO"),
            secure_cookies=_flag("YICUN_SECURE_COOKIES"),
            proxy_hops=_count("YICUN_PROXY_HOPS", 0, 0, 5),
            workers=_count("YICUN_WEB_WORKERS", DEFAULT_WORKERS, 1, MAX_WORKERS),
        )


def max_content_length() -> int:
    """The app's MAX_CONTENT_LENGTH (and waitress's limit, web.cli): the largest body any view takes — an
    attachment (YICUN_ATTACHMENT_MAX_MB, engine.settings) with its form. Only the views marked
    `takes_uploads` may receive that much; every other request is held to MIN_CONTENT_LENGTH by
    `limit_request_body`. An attachment between its own limit and this one gets the engine's refusal (too
    large), a sentence on the page it came from rather than an error page."""
    return max(MIN_CONTENT_LENGTH, engine_settings.get().attachment_max_bytes + UPLOAD_OVERHEAD_BYTES)


def takes_uploads(view: F) -> F:
    """Mark a view that receives files: its requests may be as large as MAX_CONTENT_LENGTH."""
    setattr(view, UPLOADS_ATTR, True)
    return view


def limit_request_body() -> None:
    """Before anything reads a body (the CSRF check reads the form, web.extensions): bodies larger than
    MIN_CONTENT_LENGTH are refused with 413 (DESIGN invariant 10) except for the views marked
    `takes_uploads`. Needed because a urlencoded form is read into memory whole — Werkzeug bounds only
    multipart fields (MAX_FORM_MEMORY_SIZE) — so the app-wide limit an upload needs must not apply to the
    login form."""
    view = current_app.view_functions.get(request.endpoint) if request.endpoint else None
    if not getattr(view, UPLOADS_ATTR, False):
        configured = current_app.config.get("MAX_CONTENT_LENGTH")
        request.max_content_length = min(MIN_CONTENT_LENGTH, configured) if configured else MIN_CONTENT_LENGTH


def secret_key(settings: WebSettings, instance_dir: Path, create: bool) -> str | None:
    """YICUN_SECRET_KEY, else the key in `<instance>/secret_key`; if neither exists and `create` (demo
    mode), a new random key is written there once (mode 0600) so the next start reuses it. None when
    there is no key and none may be made: the caller refuses to start."""
    key = settings.secret_key
    path = instance_dir / SECRET_KEY_FILE
    if key is None and create and not path.exists():
        _create_key_file(path)
    if key is None and path.exists():
        try:
            key = path.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ConfigError(f"cannot read the secret key file {path}: {exc.strerror}") from None
        if not key:
            raise ConfigError(f"the secret key file {path} is empty")
    if key is not None and len(key) < MIN_SECRET_KEY_CHARS:
        raise ConfigError(f"the secret key is too short ({len(key)} characters; at least {MIN_SECRET_KEY_CHARS})")
    return key


def _create_key_file(path: Path) -> None:
    """Write a fresh key readable by the owner only. O_EXCL: of two processes starting at once, one
    writes and the other reads what it wrote (never two different keys)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(secrets.token_hex(32) + "\n")


def missing_key_message(instance_dir: Path) -> str:
    return ("no secret key: set YICUN_SECRET_KEY, or write one to "
            f"{instance_dir / SECRET_KEY_FILE} (e.g. `python3 -c 'import secrets; print(secrets.token_hex(32))' "
            f"> {instance_dir / SECRET_KEY_FILE} && chmod 600 {instance_dir / SECRET_KEY_FILE}`); "
            "every web node must use the same key. Only demo mode (`yicun serve --demo`, YICUN_DEMO=1) "
            "creates one by itself.")
