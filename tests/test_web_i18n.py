"""Issue #8 §3: pages in Chinese by default, English by choice (Flask-Babel).

The language switch (POST /language, CSRF-protected, public so it works on the login page) stores the
choice in its own cookie and returns to the same page — only to a path on this site. Statuses, roles,
audit actions and engine refusals are shown in the chosen language; no page shows a stored word, a
reason code or a user id. The catalogue checks fail when a source string has no English, or when the
compiled .mo files lag behind the .po files.
"""
from __future__ import annotations

import ast
import gettext
import re
from datetime import timedelta
from html.parser import HTMLParser

import pytest
from sqlalchemy import select

from engine import cases, db
from engine.models import Case, TaskRow
from web import reasons
from web.i18n import COOKIE

from .conftest import CLERK, ROOT, VILLAGE, start, user
from .webtools import csrf_token, login, post_form

CJK = re.compile(r"[\u3000-\u303f\u3400-\u9fff\uff00-\uffef]")
TRANSLATIONS = ROOT / "web" / "translations"


def text(resp) -> str:
    return resp.get_data(as_text=True)


def switch(client, lang: str, next: str | None = "/", page: str = "/login", token: bool = True):
    data = {"lang": lang}
    if next is not None:
        data["next"] = next
    if token:
        data["csrf_token"] = csrf_token(client, page)
    return client.post("/language", data=data)


def html_lang(page: str) -> str:
    return re.search(r'<html lang="([^"]+)">', page).group(1)


# ------------------------------------------------------------------------------------------- the switch
def test_pages_are_chinese_by_default_whatever_the_browser_says(client):
    page = text(client.get("/login", headers={"Accept-Language": "en-US,en;q=0.9"}))
    assert html_lang(page) == "zh-CN" and "<h1>登录</h1>" in page and ">用户名 <input" in page
    assert '<button name="lang" value="en" lang="en"' in page  # the switch offers English
    assert 'value="zh_CN"' not in page


def test_the_switch_turns_the_pages_english_and_back_and_survives_logging_in(client):
    resp = switch(client, "en", next="/login?next=%2Fprocesses")
    assert resp.status_code == 303 and resp.headers["Location"] == "/login?next=%2Fprocesses"  # the same page
    cookie = resp.headers["Set-Cookie"]
    assert cookie.startswith(f"{COOKIE}=en;") and "HttpOnly" in cookie and "SameSite=Lax" in cookie
    page = text(client.get("/login?next=%2Fprocesses"))
    assert html_lang(page) == "en" and "<h1>Log in</h1>" in page and "Username" in page
    assert '<button name="lang" value="zh_CN" lang="zh-CN"' in page  # and offers Chinese back
    assert not CJK.search(page.replace('lang="zh-CN" title="Switch language">中文<', ""))
    login(client, CLERK, next="/processes")  # logging in clears the session, not the choice
    home = text(client.get("/"))
    assert "My tasks" in home and "Open cases" in home and "convenience clerk" in home and "我的待办" not in home
    resp = switch(client, "zh_CN", next="/", page="/")
    assert resp.headers["Location"] == "/"
    home = text(client.get("/"))
    assert html_lang(home) == "zh-CN" and "我的待办" in home and "便民服务员" in home and "My tasks" not in home


@pytest.mark.parametrize("target", ["//evil.example/", "https://evil.example/", "/\\evil.example", "/%2F/evil",
                                    "javascript:alert(1)", "", None])
def test_the_switch_returns_only_to_a_path_on_this_site(client, target):
    resp = switch(client, "en", next=target)
    assert resp.status_code == 303 and resp.headers["Location"] == "/"
    assert f"{COOKIE}=en" in resp.headers["Set-Cookie"]


def test_the_switch_without_a_csrf_token_or_with_an_unknown_language_is_refused(client):
    resp = switch(client, "en", token=False)
    assert resp.status_code == 400 and "请求被拒绝" in text(resp) and COOKIE not in resp.headers.get("Set-Cookie", "")
    assert html_lang(text(client.get("/login"))) == "zh-CN"
    resp = switch(client, "fr")
    assert resp.status_code == 400 and COOKIE not in resp.headers.get("Set-Cookie", "")
    client.set_cookie(COOKIE, "xx")  # an old or forged cookie: the default again
    assert html_lang(text(client.get("/login"))) == "zh-CN"


# ------------------------------------------------------------------------------------------- error pages
def test_error_pages_in_both_languages(client):
    assert "<h1>找不到页面" in text(client.get("/no-such-page"))
    login(client, CLERK)
    refused = client.get("/admin/users")
    assert refused.status_code == 403 and "只有系统管理员可以管理账号" in text(refused)
    forged = client.post("/logout")  # no token
    assert forged.status_code == 400 and "请求被拒绝" in text(forged) and "缺少 CSRF 令牌" in text(forged)

    switch(client, "en", page="/")
    missing = client.get("/no-such-page")
    assert missing.status_code == 404 and "<h1>Page not found" in text(missing) and "Back to the workbench" in text(missing)
    refused = client.get("/admin/users")
    assert refused.status_code == 403 and "Only administrators may manage accounts." in text(refused)
    forged = client.post("/logout")
    assert forged.status_code == 400 and "Request refused" in text(forged) and "The CSRF token is missing." in text(forged)
    case = client.get("/cases/YY-2026-999999")  # an engine refusal, translated from its reason
    assert case.status_code == 404 and "There is no case YY-2026-999999, or you may not see it." in text(case)
    for page in (missing, refused, forged, case):
        assert not CJK.search(_chrome(text(page))), text(page)
    api = client.get("/api/v1/cases/YY-2026-999999")
    assert api.get_json()["reason"] == "case.not_found" and api.get_json()["message"].startswith("There is no case")


# ------------------------------------------------------------------------------------------- words and reasons
def test_status_role_audit_action_and_values_in_the_current_language(client, seeded):
    number = start(seeded, service="FX-DIBAO").case_number
    with db.read(seeded) as s:
        task_id = s.scalar(select(TaskRow.id).join(Case).where(Case.number == number, TaskRow.state == "ready"))
    clerk = user(seeded, CLERK)
    with db.transaction(seeded) as s:  # released and claimed again: both record the clerk's user id
        cases.unclaim_task(s, task_id, clerk)
    with db.transaction(seeded) as s:
        cases.claim_task(s, task_id, clerk)
    login(client, CLERK)
    zh = text(client.get(f"/cases/{number}"))
    history = re.search(r'<ol class="audit">(.*?)</ol>', zh, re.S).group(1)
    assert "办理中" in zh and "受理" in history and "签收「" in history and "环节开始（— → 待办）" in history
    assert not re.search(rf"\b{clerk.id}\b", history)  # the claim records a user id: never shown
    assert "task.claimed" not in zh and ">open<" not in zh

    switch(client, "en", page=f"/cases/{number}")
    en = text(client.get(f"/cases/{number}"))
    history = re.search(r'<ol class="audit">(.*?)</ol>', en, re.S).group(1)
    assert '<span class="status open">open</span>' in en and "accepted" in history
    assert "claimed “" in history and "step opened (— → ready)" in history
    assert not re.search(rf"\b{clerk.id}\b", history) and "task.claimed" not in en
    assert "convenience clerk" in text(client.get("/"))


def test_refusals_are_translated_with_their_parameters(client, seeded):
    resp = login(client, CLERK, "wrong")
    assert "用户名或密码错误。" in text(resp)
    switch(client, "en")
    assert "Wrong username or password." in text(login(client, CLERK, "wrong"))
    login(client, "admin")
    page = text(post_form(client, "/admin/users/new", {"username": "wang-f", "display_name": "王芳", "role": "clerk",
                                                       "unit": "430902102"}, page="/admin/users/new"))
    assert "A convenience clerk belongs to a village unit; 迎风桥镇 is a township unit." in page
    page = text(post_form(client, "/admin/users/new", {"username": "wang-f", "display_name": "", "role": "clerk",
                                                       "unit": "430902102201"}, page="/admin/users/new"))
    assert "This field is required." in page
    page = text(post_form(client, "/account/password", {"current": "x", "new": "a", "repeat": "b"},
                          page="/account/password"))
    assert "The two new passwords differ." in page


def test_every_reason_the_engine_raises_has_a_message():
    """Each stable reason in engine/ (reason="…", policy.require(…, "reason", …), deny("reason", …)) is in
    web.reasons.REASONS, so no page falls back to the engine's command-line message."""
    raised = set()
    for path in (ROOT / "engine").rglob("*.py"):
        if "migrations" in path.parts:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.Call):
                continue
            for kw in node.keywords:
                if kw.arg == "reason" and isinstance(kw.value, ast.Constant) and isinstance(kw.value.value, str):
                    raised.add(kw.value.value)
            name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
            position = {"require": 1, "deny": 0}.get(name)
            if position is not None and len(node.args) > position and isinstance(node.args[position], ast.Constant):
                raised.add(node.args[position].value)
    command_line_only = {r for r in raised if r.startswith(("db.", "cli.", "init."))}
    assert raised - command_line_only, "the scan found no reasons: has the engine's style changed?"
    assert not (raised - command_line_only) - set(reasons.REASONS)


# ------------------------------------------------------------------------------------------- catalogues
def _extracted() -> dict[str, str | tuple[str, ...]]:
    from babel.messages.extract import extract_from_dir
    method_map = [("web/**.py", "python"), ("web/templates/**.html", "jinja2")]
    keywords = {"_": None, "gettext": None, "ngettext": (1, 2), "_l": None, "N_": None}
    found: dict[str, str | tuple[str, ...]] = {}
    for filename, _line, message, _comments, _context in extract_from_dir(str(ROOT), method_map,
                                                                           keywords=keywords):
        if filename.startswith("web"):
            found[message if isinstance(message, str) else message[0]] = message
    return found


def _catalogue(locale: str):
    from babel.messages.pofile import read_po
    with open(TRANSLATIONS / locale / "LC_MESSAGES" / "messages.po", "rb") as fh:
        return read_po(fh)


def test_every_source_string_has_an_english_translation():
    extracted = _extracted()
    assert len(extracted) > 200 and "我的待办" in extracted and "用户名或密码错误。" in extracted
    english = _catalogue("en")
    missing, untranslated, chinese, placeholders = [], [], [], []
    for key in extracted:
        message = english.get(key)
        if message is None:
            missing.append(key)
            continue
        strings = message.string if isinstance(message.string, tuple) else (message.string,)
        if message.fuzzy or not all(strings):
            untranslated.append(key)
        elif any(CJK.search(s) for s in strings):
            chinese.append(key)
        elif any(set(re.findall(r"%\(\w+\)s", s)) != set(re.findall(r"%\(\w+\)s", key)) for s in strings):
            placeholders.append(key)
    assert not missing, f"not in web/translations/en (run `make catalogues`, then translate): {missing}"
    assert not untranslated, f"no English (or fuzzy) in web/translations/en: {untranslated}"
    assert not chinese, f"English that still has Chinese in it: {chinese}"
    assert not placeholders, f"English whose %(name)s parameters differ from the Chinese: {placeholders}"
    assert set(_catalogue("zh_CN")._messages) >= set(extracted)  # the identity catalogue keeps step too


@pytest.mark.parametrize("locale", ["en", "zh_CN"])
def test_the_compiled_catalogues_match_the_po_files(locale):
    mo = TRANSLATIONS / locale / "LC_MESSAGES" / "messages.mo"
    assert mo.exists(), f"{mo} is missing: `make install` (or any make target) compiles it"
    with open(mo, "rb") as fh:
        compiled = gettext.GNUTranslations(fh)._catalog  # type: ignore[attr-defined]
    for message in _catalogue(locale):
        if not message.id or message.fuzzy:
            continue
        if isinstance(message.id, tuple):
            for n, string in enumerate(message.string):
                if string:
                    assert compiled.get((message.id[0], n)) == string, f"{mo} is stale: run make"
        elif message.string:
            assert compiled.get(message.id) == message.string, f"{mo} is stale: run make"


# ------------------------------------------------------------------------------------------- whole pages
class _Chrome(HTMLParser):
    """The text of a page outside user data: headings, labels, buttons, table heads, hints, links of the
    navigation… — everything but table cells, definitions, list items, <code>, <bdi> (a name inside a
    heading), options and the person's name in the header, which hold names of people, places and
    processes."""
    DATA = {"td", "dd", "li", "code", "bdi", "option", "textarea"}
    VOID = {"input", "meta", "link", "br", "img", "hr"}

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[bool] = []
        self.out: list[str] = []

    def handle_starttag(self, tag, attrs):
        if tag in self.VOID:
            return
        attrs = dict(attrs)
        data = tag in self.DATA or attrs.get("class") == "who" or attrs.get("lang") == "zh-CN"
        self.stack.append(data or (bool(self.stack) and self.stack[-1]))

    def handle_endtag(self, tag):
        if tag not in self.VOID and self.stack:
            self.stack.pop()

    def handle_data(self, data):
        if not (self.stack and self.stack[-1]):
            self.out.append(data)


def _chrome(page: str) -> str:
    parser = _Chrome()
    parser.feed(page)
    return " ".join(parser.out)


def test_english_pages_have_no_chinese_outside_user_data(client, seeded):
    start(seeded, service="FX-DIBAO")
    switch(client, "en")
    login(client, "admin")
    pages = ["/", "/processes", "/admin/users", "/admin/users/new", f"/admin/users/{CLERK}",
             f"/admin/users/{CLERK}/disable", "/admin/units", "/admin/units?level=village&phone=missing",
             f"/admin/units/{VILLAGE}", "/account/password", "/login"]
    for path in pages:
        resp = client.get(path)
        assert resp.status_code == 200, path
        assert not CJK.search(_chrome(text(resp))), (path, CJK.findall(_chrome(text(resp)))[:20])
    login(client, CLERK)
    home = text(client.get("/"))
    assert not CJK.search(_chrome(home))
    # the case page writes names of people, places and the process into its prose: its headings, table
    # heads, labels and the words of its history (cut of the names before " · ") must be English
    page = text(client.get("/cases/" + re.search(r"YY-\d{4}-\d{6}", home).group(0)))
    for element in re.findall(r"<(?:h1|h2|th|dt)>(.*?)</(?:h1|h2|th|dt)>", page, re.S):
        assert not CJK.search(re.sub(r"<[^>]+>", "", re.sub(r"<bdi>.*?</bdi>", "", element))), element
    history = re.search(r'<ol class="audit">(.*?)</ol>', page, re.S).group(1)
    for line in re.findall(r"<li>(.*?)</li>", history, re.S):
        assert not CJK.search(line.split(" · ", 1)[1]), line


def test_the_chrome_filter_sees_chinese_chrome():
    """The check above must be able to fail: a Chinese heading or label is caught, a name in a cell is not."""
    assert CJK.search(_chrome("<h1>工作台</h1><td>盛巧云</td>"))
    assert not CJK.search(_chrome("<h1>Workbench</h1><table><tr><td>盛巧云</td></tr></table>"))
    assert CJK.search(_chrome("<label>姓名 <input name=x></label>"))



def test_cards_and_notifications_the_engine_wrote_are_read_in_english(client, seeded, manual_clock):
    """Card reasons and notifications are stored as the engine wrote them, in Chinese; an English page
    reads them through their known forms (web/engine_texts.py), keeping the step's name and the date."""
    from engine import timers
    number = start(seeded, service="FX-PENSION").case_number
    timers.sweep(seeded, manual_clock.now() + timedelta(days=4))  # the intake step runs over: a red card
    login(client, CLERK)
    stored = re.search(r"环节「([^」]+)」已超时（(\d{4}-\d\d-\d\d)）", text(client.get(f"/cases/{number}")))
    assert stored, "the card's reason as the engine stores it"
    step, day = stored.groups()
    switch(client, "en", page="/")
    case = text(client.get(f"/cases/{number}"))
    assert "<b>red card</b>" in case and f"Step “{step}” overdue ({day})" in case and "已超时" not in case
    home = text(client.get("/"))
    assert f"Red card {number}: Step “{step}” overdue ({day})" in home


def test_the_workbench_pages_in_english_keep_chinese_only_in_user_data(client, seeded):
    """Issue #9's pages (intake, papers, inbox, task page, case search, notifications, the citizen's lookup):
    in English their chrome is English; the process's own words (item and step names, form labels,
    documents) and people's and places' names are data."""
    from engine import db, processes

    from .conftest import ROOT
    with db.transaction(seeded) as s:
        processes.deploy(s, (ROOT / "bpmn" / "MZ-01.bpmn").read_bytes(), "MZ-01.bpmn")
    switch(client, "en")
    login(client, CLERK)
    key_page = text(client.get("/intake/MZ-01"))
    key = re.search(r'name="intake_key" value="([^"]+)"', key_page).group(1)
    token = re.search(r'name="csrf_token" value="([^"]+)"', key_page).group(1)
    res = client.post("/intake/MZ-01", data={
        "applicant_name": "符建英", "applicant_id_number": "430902199001011231", "applicant_phone": "13807371234",
        "household_size": "3", "hardship_reason": "illness", "documents": ["申请书", "身份证"],
        "village": "430902102201", "intake_key": key, "csrf_token": token})
    assert res.status_code == 303
    receipt = res.location
    number = re.search(r"YY-\d{4}-\d{6}", receipt).group(0)
    notice = re.search(r'href="(/notices/\d+)"', text(client.get(receipt))).group(1)
    task = re.search(r'href="(/tasks/\d+)"', text(client.get(f"/cases/{number}"))).group(1)
    for path in ("/intake", "/intake/MZ-01", receipt, notice, "/inbox", "/cases", "/notifications", task):
        resp = client.get(path)
        assert resp.status_code == 200, path
        chrome = _chrome(text(resp))
        assert not CJK.search(chrome), (path, [chrome[max(0, m.start() - 20):m.end() + 20] for m in CJK.finditer(chrome)][:8])
    public = client.application.test_client()
    switch(public, "en")
    resp = public.get("/query")
    assert not CJK.search(_chrome(text(resp))), CJK.findall(_chrome(text(resp)))[:20]


def test_a_label_of_a_constant_follows_each_requests_language(app):
    """Compiled templates are shared between requests (and test apps): a label filter applied to a constant
    must be looked up when the page is rendered, in that request's language — never folded at compile time."""
    with app.test_request_context("/", headers={"Cookie": "yicun_lang=zh"}):
        template = app.jinja_env.from_string("{{ 'case.started'|audit_action }} {{ 'open'|case_status }}")
        zh = template.render()
    with app.test_request_context("/", headers={"Cookie": "yicun_lang=en"}):
        en = template.render()  # the same compiled code
    assert (zh, en) == ("受理 办理中", "accepted open")
