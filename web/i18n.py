"""The language of the pages: Chinese (zh_CN) unless the user chose English with the switch in the header.

Source strings are the Chinese texts themselves (gettext msgids in Chinese): the pages are written in
Chinese first, a string nobody translated yet still reads correctly in the default language, and the
`en` catalogue (web/translations/en) holds the English. See README "Languages".

The choice lives in a cookie of its own (`yicun_lang`), not in the session: logging in and out clears
the session (a fresh one against session fixation), and a clerk who switched to English on the login
page should still read English after logging in. The browser's Accept-Language is not consulted: the
default is Chinese whatever the browser says, so a page never changes language behind the user's back.
"""
from __future__ import annotations

from typing import Any

from flask import Blueprint, Flask, abort, current_app, redirect, request, url_for
from flask_babel import get_locale

from .auth.next_url import safe_next
from .guards import public

#: The languages of the pages, the default first: locale → (the name of the language in itself, <html lang>).
LANGUAGES: dict[str, tuple[str, str]] = {"zh_CN": ("中文", "zh-CN"), "en": ("English", "en")}
DEFAULT_LOCALE = "zh_CN"
COOKIE = "yicun_lang"
#: A year: the choice is a preference of the person at this browser, not of one visit.
COOKIE_MAX_AGE = 365 * 24 * 3600

bp = Blueprint("i18n", __name__)


def select_locale() -> str:
    """The explicit choice (cookie), else Chinese. An unknown value (an old or forged cookie) is ignored."""
    chosen = request.cookies.get(COOKIE)
    return chosen if chosen in LANGUAGES else DEFAULT_LOCALE


def current_locale() -> str:
    """'zh_CN' or 'en' for this request (Chinese outside a request). By language, not by Babel's name
    of the locale: Babel calls zh_CN "zh_Hans_CN"."""
    locale = get_locale()
    return "en" if locale is not None and locale.language == "en" else DEFAULT_LOCALE


def is_english() -> bool:
    return current_locale() == "en"


def html_lang() -> str:
    return LANGUAGES[current_locale()][1]


def return_path() -> str:
    """Where the switch sends the user back to: this page, if it can be fetched again with GET (a page
    shown in answer to a POST is shown again from its address), else the home page."""
    rule = request.url_rule
    if request.method == "GET":
        return request.full_path.rstrip("?")
    if rule is not None and rule.methods is not None and "GET" in rule.methods:
        return request.path
    return url_for("workbench.home")


@bp.route("/language", methods=["POST"])
@public
def switch_language() -> Any:
    """Remember the chosen language and go back to the page the switch was on (only a path on this
    site: `next` is checked like a login's). CSRF-protected as every POST (web.extensions)."""
    lang = request.form.get("lang", "")
    if lang not in LANGUAGES:
        abort(400)
    response = redirect(safe_next(request.form.get("next")) or url_for("workbench.home"), 303)
    response.set_cookie(COOKIE, lang, max_age=COOKIE_MAX_AGE, httponly=True, samesite="Lax",
                        secure=bool(current_app.config["SESSION_COOKIE_SECURE"]) or request.is_secure)
    return response


def template_context() -> dict[str, Any]:
    """What the header's switch and `<html lang>` need: the current language and the others to offer."""
    locale = current_locale()
    return {"html_lang": LANGUAGES[locale][1], "locale": locale,
            "other_languages": [(code, name, tag) for code, (name, tag) in LANGUAGES.items() if code != locale],
            "return_path": return_path}


def init_i18n(app: Flask) -> None:
    app.context_processor(template_context)
    app.register_blueprint(bp)
