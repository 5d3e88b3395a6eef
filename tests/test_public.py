"""Issue #9 §7: 办件查询 (no login) and the 好差评 rating.

A citizen with the case number and 查询码 sees the item, the open step and its level, the promised due date
and a history in plain words — no staff names; an unknown number and a wrong code get the same page; the
door is rate-limited per client address and per case number (429, the right code refused too); a closed
case may be rated once (score 1–5, optional comment), bad input changes nothing, and the rating shows on
the staff's case page. Forms are posted with their CSRF token as a browser does (tests/webtools.py).
"""
from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import event, func, insert, select

from engine import cases, db, queries, ratelimit, settings
from engine.errors import Conflict, InvalidInput, NotFound
from engine.models import T_RATE, AuditEvent, Case, RateEvent, Rating
from engine.query_code import clean_code, clean_number
from web.filters import when

from .conftest import CLERK, complete, form_for, ready_tasks, snapshot, start, user, worker_for
from .webtools import csrf_token, login

TOKEN = re.compile(r'(name="csrf-token" content="|name="csrf_token" value=")[^"]+"')


def code_of(engine, number: str) -> str:
    with db.read(engine) as s:
        return s.scalar(select(Case.query_code).where(Case.number == number))


def close(engine, number: str, decision: str = "approve") -> None:
    """Complete whatever is ready until the case is closed."""
    for _ in range(20):
        tasks = ready_tasks(engine, number)
        if not tasks:
            return
        task = tasks[0]
        who = worker_for(engine, task) if task.assignee_id is None else _username(engine, task.assignee_id)
        complete(engine, task.id, who, form_for(engine, task, decision))
    raise AssertionError("the case did not close")


def _username(engine, user_id: int) -> str:
    from engine.models import User
    with db.read(engine) as s:
        return s.get(User, user_id).username


def ask(client, number: str, code: str, ip: str = "203.0.113.7", token: str | None = None) -> Any:
    token = token or csrf_token(client, "/query")
    return client.post("/query", data={"number": number, "code": code, "csrf_token": token},
                       environ_base={"REMOTE_ADDR": ip})


def rate(client, number: str, code: str, score: str = "4", comment: str = "", ip: str = "203.0.113.7") -> Any:
    return client.post("/query/rate", data={"number": number, "code": code, "score": score, "comment": comment,
                                            "csrf_token": csrf_token(client, "/query")},
                       environ_base={"REMOTE_ADDR": ip})


def limits(monkeypatch, **values: int) -> None:
    for name, value in values.items():
        monkeypatch.setenv(f"YICUN_LOOKUP_{name.upper()}", str(value))
    settings.get.cache_clear()


def without_rate_events(engine) -> dict[str, list[tuple]]:
    rows = snapshot(engine)
    rows.pop("rate_events")
    return rows


# ------------------------------------------------------------------------------------------- the lookup
def test_the_lookup_is_open_to_everyone_and_linked_from_the_login_page(client):
    page = client.get("/query")
    assert page.status_code == 200 and page.headers["Cache-Control"] == "no-store"
    html = page.get_data(as_text=True)
    assert "办件查询" in html and 'name="number"' in html and 'name="code"' in html and 'inputmode="numeric"' in html
    assert 'href="/query"' in client.get("/login").get_data(as_text=True)


def test_the_right_code_shows_item_step_due_and_history_without_staff_names(client, seeded):
    number = start(seeded, service="FX-DIBAO").case_number
    (intake,) = ready_tasks(seeded, number)
    complete(seeded, intake.id, CLERK, form_for(seeded, intake))
    (review,) = ready_tasks(seeded, number)  # 村民主评议, at the village too
    complete(seeded, review.id, CLERK, form_for(seeded, review))
    (survey,) = ready_tasks(seeded, number)
    assert survey.level == "township"
    clerk = user(seeded, CLERK)
    with db.read(seeded) as s:
        due = when(s.scalar(select(Case.promised_due_at).where(Case.number == number)))
    resp = ask(client, number, code_of(seeded, number))
    assert resp.status_code == 200 and resp.headers["Cache-Control"] == "no-store"
    html = resp.get_data(as_text=True)
    for text in (number, "最低生活保障", "FX-DIBAO", "邹家村", "迎风桥镇", "办理中", survey.name, "乡镇",
                 "承诺办结", due, "受理", f"{intake.name}（村）已办", f"{review.name}（村）已办"):
        assert text in html, text
    for secret in (clerk.display_name, CLERK, "agent-", "officer-"):
        assert secret not in html, secret
    assert "符建英" not in html  # nor the applicant's name: whoever holds the receipt learns no more than it says
    assert 'name="score"' not in html and "办结后可以在这里评价" in html  # open: nothing to rate yet
    # typed the way a phone makes it easy: lower case, full-width digits, without the YY- and the dashes
    relaxed = number.lower().replace("yy-", "").replace("-", " ")
    relaxed = relaxed.translate(str.maketrans("0123456789", "０１２３４５６７８９"))
    assert survey.name in ask(client, relaxed, " " + code_of(seeded, number) + " ").get_data(as_text=True)


def test_the_read_model_holds_no_staff_and_reads_no_workflow(seeded, manual_clock):
    number = start(seeded, service="FX-DIBAO").case_number
    (intake,) = ready_tasks(seeded, number)
    complete(seeded, intake.id, CLERK, form_for(seeded, intake))
    with db.transaction(seeded) as s:
        cases.pause_case(s, number, user(seeded, CLERK), "缺户口本复印件", kind="supplement")
    code = code_of(seeded, number)
    statements: list[str] = []
    with db.read(seeded) as s:
        event.listen(s.connection(), "before_cursor_execute", lambda *args: statements.append(args[2]))
        found = queries.lookup(s, number, code)
        assert queries.lookup(s, number, "000000" if code != "000000" else "111111") is None
        assert queries.lookup(s, "YY-2026-999999", code) is None
    assert len(statements) == 9  # the right code: its check and 6 reads; a wrong code or number: the check
    assert not [q for q in statements if "instance_json" in q]  # never the workflow
    assert found is not None and found.phase == "supplement" and found.phase_text == "补正中" and found.paused
    (review,) = ready_tasks(seeded, number)
    assert [(st.name, st.level, st.text) for st in found.current_steps] == [
        (review.name, "village", f"{review.name}（村）")]
    assert [e.text for e in found.history] == ["受理", f"{intake.name}（村）已办", "暂停计时（补正）"]
    flat = str(found.to_json())
    assert "缺户口本" not in flat and CLERK not in flat and user(seeded, CLERK).display_name not in flat
    assert not found.can_rate and found.rating is None


def test_a_wrong_code_and_an_unknown_number_get_the_same_answer(client, seeded):
    number = start(seeded, service="FX-DIBAO").case_number
    code = code_of(seeded, number)
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    unknown = "YY-2026-999999"

    def page(resp: Any, typed: str) -> tuple[int, dict[str, str], str]:
        html = TOKEN.sub(r"\1TOKEN", resp.get_data(as_text=True)).replace(typed, "TYPED")
        headers = {k: v for k, v in resp.headers.items() if k not in ("Set-Cookie", "Content-Length")}
        return resp.status_code, headers, html

    answers = [page(ask(client, number, wrong), number), page(ask(client, unknown, code), unknown),
               page(ask(client, unknown, wrong), unknown),
               page(rate(client, number, wrong), number), page(rate(client, unknown, code), unknown)]
    assert all(a == answers[0] for a in answers[1:])
    status, _, html = answers[0]
    assert status == 200 and "未找到：请核对办件号和查询码" in html
    assert 'value="TYPED"' in html  # the number stays typed in; only the code must be checked again
    assert code not in html


# ------------------------------------------------------------------------------------------- the limits
def test_the_address_limit_refuses_even_the_right_code_until_the_window_passes(client, seeded, manual_clock,
                                                                               monkeypatch):
    limits(monkeypatch, ip_max_attempts=3, ip_window_minutes=10)
    number = start(seeded, service="FX-DIBAO").case_number
    code = code_of(seeded, number)
    token = csrf_token(client, "/query")
    for _ in range(2):
        assert "未找到" in ask(client, number, "000000" if code != "000000" else "111111",
                               token=token).get_data(as_text=True)
    assert number in ask(client, number, code, token=token).get_data(as_text=True)  # the 3rd try: in
    refused = ask(client, number, code, token=token)  # the 4th: refused though the code is right
    html = refused.get_data(as_text=True)
    assert refused.status_code == 429 and "查询过于频繁，请 10 分钟后再试" in html
    assert 0 < int(refused.headers["Retry-After"]) <= 600 and refused.headers["Cache-Control"] == "no-store"
    assert "最低生活保障" not in html
    assert rate(client, number, code).status_code == 429  # the rating goes through the same door
    assert ask(client, number, code, ip="198.51.100.9", token=token).status_code == 200  # another address
    manual_clock.advance(minutes=8)
    assert ask(client, number, code, token=token).status_code == 429  # the first tries are still in the window
    manual_clock.advance(minutes=3)
    assert number in ask(client, number, code, token=token).get_data(as_text=True)


def test_wrong_codes_from_many_addresses_lock_the_case_number(client, seeded, manual_clock, monkeypatch):
    limits(monkeypatch, case_max_failures=3, case_window_minutes=60)
    number = start(seeded, service="FX-DIBAO").case_number
    other = start(seeded, service="FX-DIBAO").case_number
    code = code_of(seeded, number)
    token = csrf_token(client, "/query")
    for i in range(3):
        wrong = f"{(int(code) + 1 + i) % 1_000_000:06d}"
        assert ask(client, number, wrong, ip=f"192.0.2.{i + 1}", token=token).status_code == 200
    locked = ask(client, number, code, ip="192.0.2.99", token=token)  # a new address, the right code
    assert locked.status_code == 429 and "查询过于频繁" in locked.get_data(as_text=True)
    assert ask(client, other, code_of(seeded, other), ip="192.0.2.99", token=token).status_code == 200
    for i in range(3):  # unknown numbers fill their bucket alike: a lock does not tell that a case exists
        ask(client, "YY-2026-999999", "123456", ip=f"192.0.2.{10 + i}", token=token)
    assert ask(client, "YY-2026-999999", "123456", ip="192.0.2.50", token=token).status_code == 429
    manual_clock.advance(minutes=61)
    assert number in ask(client, number, code, ip="192.0.2.99", token=token).get_data(as_text=True)


def test_the_limiter_counts_a_sliding_window_and_prunes_a_bounded_batch(seeded, manual_clock):
    now = manual_clock.now()
    window = timedelta(minutes=10)
    with db.transaction(seeded) as s:
        assert [ratelimit.hit(s, "t", "k", 2, window, now + timedelta(minutes=m)) for m in (0, 1, 2)] == \
            [True, True, False]
        assert ratelimit.retry_after(s, "t", "k", 2, window, now + timedelta(minutes=2)) == 8 * 60
        assert ratelimit.hit(s, "t", "other", 2, window, now + timedelta(minutes=2))  # keys are apart
        assert not ratelimit.hit(s, "t", "k", 2, window, now + timedelta(minutes=9, seconds=59))
        assert ratelimit.hit(s, "t", "k", 2, window, now + timedelta(minutes=10, seconds=1))  # the first left
        old = now - ratelimit.RETENTION - timedelta(hours=1)
        s.execute(insert(T_RATE), [{"bucket": "t", "key": f"x{i}", "at": old + timedelta(seconds=i)}
                                   for i in range(120)])
    with db.transaction(seeded) as s:
        before = s.scalar(select(func.count()).select_from(RateEvent))
        ratelimit.record(s, "t", "k", now + timedelta(minutes=11))
        after = s.scalar(select(func.count()).select_from(RateEvent))
        assert after == before + 1 - ratelimit.PRUNE_BATCH  # one in, one batch of the oldest out
        left = s.scalars(select(RateEvent.key).where(RateEvent.key.like("x%"))).all()
        assert sorted(left, key=lambda k: int(k[1:])) == [f"x{i}" for i in range(ratelimit.PRUNE_BATCH, 120)]
    with pytest.raises(ValueError):
        with db.transaction(seeded) as s:
            ratelimit.hit(s, "a-bucket-name-too-long", "k", 1, window, now)


def test_client_keys_and_typed_numbers():
    assert ratelimit.client_key("2001:db8::1") == ratelimit.client_key("2001:db8::ffff:1") == "2001:db8::/64"
    assert ratelimit.client_key("::ffff:192.0.2.1") == "192.0.2.1" == ratelimit.client_key(" 192.0.2.1 ")
    assert ratelimit.client_key(None) == ratelimit.client_key("") == "unknown"
    typed = (" yy-2026-000123 ", "2026000123", "ＹＹ－２０２６－０００１２３", "yy 2026 000123")
    assert {clean_number(t) for t in typed} == {"YY-2026-000123"}
    assert clean_number("x" * 10_000) == "X" * 20 and clean_number(None) == ""
    assert clean_code(" １２３ ４５６ ") == "123456" and clean_code(["1"]) == ""


# ------------------------------------------------------------------------------------------- the rating
def test_a_closed_case_is_rated_once_and_bad_input_changes_nothing(client, seeded, monkeypatch):
    limits(monkeypatch, ip_max_attempts=100)  # one address tries a dozen times here
    number = start(seeded, service="FX-DIBAO").case_number
    code = code_of(seeded, number)
    before = without_rate_events(seeded)
    early = rate(client, number, code, "5")
    assert early.status_code == 409 and "尚未办结，办结后才能评价" in early.get_data(as_text=True)
    assert without_rate_events(seeded) == before
    close(seeded, number)
    page = ask(client, number, code).get_data(as_text=True)
    assert "已办结" in page and page.count('name="score"') == 5 and "非常满意" in page and "非常不满意" in page
    assert f'name="code" value="{code}"' in page  # the rating form carries the credential
    before = without_rate_events(seeded)
    for score, comment, status, message in (("", "", 422, "请选择评价等级"), ("6", "", 422, "请选择评价等级"),
                                            ("0", "", 422, "请选择评价等级"), ("4.5", "", 422, "请选择评价等级"),
                                            ("4", "好" * 501, 422, "不能超过 500 个字"),
                                            ("4", "办得快\x07", 422, "不能含控制字符")):
        resp = rate(client, number, code, score, comment)
        html = resp.get_data(as_text=True)
        assert resp.status_code == status and message in html, (score, comment[:10])
        assert 'name="score"' in html  # the form again
        if comment and "\x07" not in comment:
            assert comment in html  # what was typed is kept
    assert without_rate_events(seeded) == before
    thanks = rate(client, number, code, "4", "  办得快，态度好\n谢谢  ")
    html = thanks.get_data(as_text=True)
    assert thanks.status_code == 200 and "感谢您的评价" in html and "满意" in html and thanks.headers[
        "Cache-Control"] == "no-store"
    with db.read(seeded) as s:
        (rating,) = s.scalars(select(Rating)).all()
        (event,) = s.scalars(select(AuditEvent).where(AuditEvent.action == "case.rated")).all()
    assert (rating.score, rating.comment) == (4, "办得快，态度好\n谢谢")
    assert event.actor_id is None and event.details == {"score": 4, "comment": "办得快，态度好\n谢谢"}
    again = rate(client, number, code, "1", "再评一次")
    assert again.status_code == 409 and "已经评价过" in again.get_data(as_text=True)
    with db.read(seeded) as s:
        assert [(r.score, r.comment) for r in s.scalars(select(Rating))] == [(4, "办得快，态度好\n谢谢")]
    shown = ask(client, number, code).get_data(as_text=True)
    assert "您的评价：" in shown and "办得快" in shown and 'name="score"' not in shown
    assert "已评价" in shown  # its line in the history


def test_the_rating_service_checks_input_credential_and_state(seeded, manual_clock):
    number = start(seeded, service="FX-PENSION").case_number
    code = code_of(seeded, number)
    with db.transaction(seeded) as s:
        cases.withdraw_case(s, number, user(seeded, CLERK), "申请人不再申请")
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    for args, error, reason in (((number, wrong, 5), NotFound, "lookup.not_found"),
                                (("YY-2026-999999", code, 5), NotFound, "lookup.not_found"),
                                ((number, code, True), InvalidInput, "rating.score_invalid"),
                                ((number, code, 5.0), InvalidInput, "rating.score_invalid"),
                                ((number, code, None), InvalidInput, "rating.score_invalid"),
                                ((number, code, 3, 12), InvalidInput, "text.not_text")):
        with pytest.raises(error) as info:
            with db.transaction(seeded) as s:
                cases.rate_case(s, *args)
        assert info.value.reason == reason
    with db.transaction(seeded) as s:  # a withdrawn case is closed: it may be rated
        rated = cases.rate_case(s, number.lower(), code, 2, "")
    assert (rated.score, rated.comment) == (2, None)
    with pytest.raises(Conflict) as info:
        with db.transaction(seeded) as s:
            cases.rate_case(s, number, code, 5)
    assert info.value.reason == "rating.already_given" and info.value.details == {"case": number}
    with db.read(seeded) as s:
        found = queries.lookup(s, number, code)
    assert found.phase_text == "已撤回" and found.rating.score == 2 and not found.can_rate
    assert [e.text for e in found.history][-2:] == ["撤回", "已评价"]


def test_the_rating_shows_on_the_staff_case_page(client, seeded):
    number = start(seeded, service="FX-DIBAO").case_number
    close(seeded, number)
    with db.transaction(seeded) as s:
        cases.rate_case(s, number, code_of(seeded, number), 1, "等了太久")
    login(client, CLERK)
    page = client.get(f"/cases/{number}").get_data(as_text=True)
    assert "申请人评价（好差评）：" in page and "非常不满意" in page and "等了太久" in page
    assert client.get(f"/api/v1/cases/{number}").get_json()["rating"]["score"] == 1


# ------------------------------------------------------------------------------------------- forgery
def test_a_forged_post_without_a_csrf_token_is_refused(client, seeded):
    number = start(seeded, service="FX-DIBAO").case_number
    close(seeded, number)
    code = code_of(seeded, number)
    client.get("/query")  # a session with a token exists; the forged post just does not carry it
    for path, data in (("/query", {"number": number, "code": code}),
                       ("/query/rate", {"number": number, "code": code, "score": "5"})):
        resp = client.post(path, data=data)
        assert resp.status_code == 400 and "请求被拒绝" in resp.get_data(as_text=True), path
        other_site = client.post(path, data={**data, "csrf_token": csrf_token(client, "/query")},
                                 headers={"Origin": "http://evil.example"})
        assert other_site.status_code == 400, path
    with db.read(seeded) as s:
        assert s.scalar(select(func.count()).select_from(Rating)) == 0
        assert s.scalar(select(func.count()).select_from(RateEvent)) == 0  # refused before the door
