"""Issue #10 §5, the supervisor's actions: 督办 on a case or step at risk (recorded, told to the step's holder
and its unit, audited, shown on the task page), the 情况说明 that answers a card (once, by the people who
did the work; the card stays as issued), and 转办 of a step inside the supervisor's subtree with a reason.

The scene: an FX-PENSION case accepted Monday 2026-11-02 09:00 by the village clerk, whose intake step (2
working days) is over at 00:00 Thursday 11-05 — the sweep then marks it red and issues its cards, while the
case (5 working days) is still green.
"""
from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest
from sqlalchemy import Engine, select

from engine import cases, db, queries, timers
from engine.clock import SHANGHAI, ManualClock
from engine.errors import Conflict, Forbidden, InvalidInput, NotFound
from engine.models import AuditEvent, Card, CardExplanation, Case, Notification, Supervision, TaskRow

from .conftest import (
    AGENT,
    CLERK,
    CLERK2,
    COUNTY_MZ,
    COUNTY_RS,
    OTHER_CLERK,
    TOWNSHIP,
    complete,
    form_for,
    ready_tasks,
    snapshot,
    start,
    user,
    worker_for,
)
from .webtools import csrf_token, login, make_app

SUPERVISOR = "supervisor-430902"  # 资阳区监察员: the case's county
FOREIGN_SUPERVISOR = "supervisor-430921"  # 南县监察员: another county
CITY_SUPERVISOR = "supervisor"  # 市电子监察员
OVERDUE = datetime(2026, 11, 5, 0, 0, tzinfo=SHANGHAI)  # the intake step is over, the case still green
MESSAGE = "请于今日下班前办结，并说明超期原因。"


def _overdue_case(engine: Engine, clock: ManualClock) -> tuple[str, TaskRow]:
    """An FX-PENSION case whose intake step (held by CLERK) is overdue and carded; the clock at that moment."""
    number = start(engine, service="FX-PENSION").case_number
    clock.set(OVERDUE)
    timers.sweep(engine, OVERDUE)
    (task,) = ready_tasks(engine, number)
    assert task.warning_level == "red" and task.assignee_id == user(engine, CLERK).id
    return number, task


def _rows(engine: Engine, model: Any, *where: Any) -> list[Any]:
    with db.read(engine) as s:
        return list(s.scalars(select(model).where(*where).order_by(model.id)))


def _uid(engine: Engine, username: str) -> int:
    return user(engine, username).id


def _supervise(engine: Engine, number: str, who: str, message: str = MESSAGE, task_id: int | None = None) -> int:
    with db.transaction(engine) as s:
        return cases.supervise(s, number, user(engine, who), message, task_id=task_id)


def _refused(engine: Engine, error: type[Exception], reason: str, verb: Any, *args: Any, **kw: Any) -> None:
    """The verb is refused with `reason` and the database is as it was."""
    before = snapshot(engine)
    with pytest.raises(error) as exc:
        with db.transaction(engine) as s:
            verb(s, *args, **kw)
    assert exc.value.reason == reason, exc.value  # type: ignore[attr-defined]
    assert snapshot(engine) == before


def _post(client: Any, path: str, data: dict[str, str], page: str) -> Any:
    return client.post(path, data={**data, "csrf_token": csrf_token(client, page)})


# ------------------------------------------------------------------------------------------- 督办
def test_a_county_supervisor_sends_a_supervision_on_an_overdue_step(seeded, manual_clock):
    number, task = _overdue_case(seeded, manual_clock)
    app = make_app(seeded)
    sup = app.test_client()
    login(sup, SUPERVISOR)
    page = sup.get(f"/cases/{number}").get_data(as_text=True)
    assert "data-supervise" in page and f'<option value="{task.id}">' in page  # the red step is offered
    res = _post(sup, f"/cases/{number}/supervise", {"message": MESSAGE, "task": str(task.id),
                                                      "next": f"/cases/{number}"}, f"/cases/{number}")
    assert res.status_code == 303 and res.location.endswith(f"/cases/{number}")
    page = sup.get(res.location).get_data(as_text=True)
    assert f"已督办：{number}" in page and MESSAGE in page and "资阳区监察员" in page

    (sv,) = _rows(seeded, Supervision)
    clerk, clerk2 = _uid(seeded, CLERK), _uid(seeded, CLERK2)
    assert (sv.task_id, sv.unit_id, sv.assignee_id, sv.sent_by_id, sv.sent_at, sv.message) == (
        task.id, task.unit_id, clerk, _uid(seeded, SUPERVISOR), OVERDUE, MESSAGE)
    notes = _rows(seeded, Notification, Notification.kind == "supervision")
    # the holder, and every worker of the village that owns the step (its two clerks): once each, no task id
    assert sorted(n.user_id for n in notes) == sorted([clerk, clerk2])
    assert all(n.task_id is None and n.case_id == sv.case_id for n in notes)
    assert notes[0].message == f"督办 {number}「受理待遇申领材料」（资阳区监察员）：{MESSAGE}"
    (event,) = _rows(seeded, AuditEvent, AuditEvent.action == "case.supervised")
    assert (event.actor_id, event.case_id, event.details["supervision_id"], event.details["task_id"],
            event.details["message"], event.details["notified"]) == (_uid(seeded, SUPERVISOR), sv.case_id, sv.id,
                                                                      task.id, MESSAGE, 2)
    assert "督办" in page  # the case's history names it

    # the holder sees it on the step's page, in red at the top, and in their notifications
    holder = app.test_client()
    login(holder, CLERK)
    task_page = holder.get(f"/tasks/{task.id}").get_data(as_text=True)
    assert 'class="supervision-notice"' in task_page
    assert f"{MESSAGE} —— 资阳区监察员" in task_page
    assert task_page.index("supervision-notice") < task_page.index("task-page")  # above the step itself
    assert f"督办 {number}" in holder.get("/notifications").get_data(as_text=True)
    # … and so does their colleague, who was told as a worker of the unit; not a township agent
    with db.read(seeded) as s:
        assert [x.id for x in queries.inbox_supervisions(s, user(seeded, CLERK))] == [sv.id]
        assert [x.id for x in queries.inbox_supervisions(s, user(seeded, CLERK2))] == [sv.id]
        assert queries.inbox_supervisions(s, user(seeded, AGENT)) == ()
        (item,) = queries.case_supervisions(s, number, user(seeded, CLERK))
        assert (item.task_name, item.unit, item.assignee, item.sent_by_name) == (
            "受理待遇申领材料", "邹家村", CLERK, "资阳区监察员")


def test_a_second_supervision_on_the_same_step_reaches_its_people_again(seeded, manual_clock):
    number, task = _overdue_case(seeded, manual_clock)
    _supervise(seeded, number, SUPERVISOR, task_id=task.id)
    _supervise(seeded, number, CITY_SUPERVISOR, "市里再次督办。", task_id=task.id)  # the city's supervisor too
    assert len(_rows(seeded, Supervision)) == 2
    assert len(_rows(seeded, Notification, Notification.kind == "supervision",
                     Notification.user_id == _uid(seeded, CLERK))) == 2


def test_a_supervision_of_the_whole_case_goes_to_its_current_step(seeded, manual_clock):
    number, task = _overdue_case(seeded, manual_clock)  # the case is green, its step red: at risk
    with db.read(seeded) as s:
        assert s.scalar(select(Case.warning_level).where(Case.number == number)) == "green"
    _supervise(seeded, number, SUPERVISOR)
    (sv,) = _rows(seeded, Supervision)
    assert (sv.task_id, sv.unit_id, sv.assignee_id) == (None, task.unit_id, _uid(seeded, CLERK))
    notes = _rows(seeded, Notification, Notification.kind == "supervision")
    assert notes[0].message == f"督办 {number}（资阳区监察员）：{MESSAGE}"
    app = make_app(seeded)
    holder = app.test_client()
    login(holder, CLERK)
    assert f"{MESSAGE} —— 资阳区监察员" in holder.get(f"/tasks/{task.id}").get_data(as_text=True)


def test_a_county_step_tells_its_department_only(seeded, manual_clock):
    number = start(seeded, service="FX-PENSION").case_number
    while (task := ready_tasks(seeded, number)[0]).level != "county":
        complete(seeded, task.id, worker_for(seeded, task), form_for(seeded, task))
    assert task.candidate_group == "人社" and task.assignee_id is None
    at = datetime(2026, 11, 30, tzinfo=SHANGHAI)
    manual_clock.set(at)
    timers.sweep(seeded, at)
    _supervise(seeded, number, SUPERVISOR, task_id=task.id)
    told = {n.user_id for n in _rows(seeded, Notification, Notification.kind == "supervision")}
    assert told == {_uid(seeded, COUNTY_RS)}  # 人社 only: not 民政, not the village
    (sv,) = _rows(seeded, Supervision)
    assert (sv.unit_id, sv.assignee_id) == (task.unit_id, None)
    with db.read(seeded) as s:
        assert len(queries.inbox_supervisions(s, user(seeded, COUNTY_RS))) == 1
        assert queries.inbox_supervisions(s, user(seeded, COUNTY_MZ)) == ()


def test_a_case_on_time_is_refused_and_nothing_changes(seeded, client):
    number = start(seeded, service="FX-PENSION").case_number  # just accepted: green
    _refused(seeded, Conflict, "supervision.not_at_risk", cases.supervise, number, user(seeded, SUPERVISOR), MESSAGE)
    (task,) = ready_tasks(seeded, number)
    _refused(seeded, Conflict, "supervision.not_at_risk", cases.supervise, number, user(seeded, SUPERVISOR), MESSAGE,
             task_id=task.id)
    login(client, SUPERVISOR)
    page = client.get(f"/cases/{number}").get_data(as_text=True)
    assert "data-supervise" not in page  # no form where it cannot work
    before = snapshot(seeded)
    res = _post(client, f"/cases/{number}/supervise", {"message": MESSAGE}, f"/cases/{number}")
    assert res.status_code == 303
    assert "督办只用于临期或超期的办件" in client.get(res.location).get_data(as_text=True)
    assert snapshot(seeded) == before


def test_a_supervisor_of_another_county_gets_404_and_nothing_changes(seeded, manual_clock):
    number, task = _overdue_case(seeded, manual_clock)
    _refused(seeded, NotFound, "case.not_found", cases.supervise, number, user(seeded, FOREIGN_SUPERVISOR), MESSAGE)
    client = make_app(seeded).test_client()
    login(client, FOREIGN_SUPERVISOR)
    before = snapshot(seeded)
    res = _post(client, f"/cases/{number}/supervise", {"message": MESSAGE, "task": str(task.id)}, "/")
    assert res.status_code == 404
    assert client.get(f"/cases/{number}").status_code == 404
    assert snapshot(seeded) == before


def test_only_supervisors_send_it_and_the_message_is_bounded(seeded, manual_clock):
    number, task = _overdue_case(seeded, manual_clock)
    for who in (CLERK, TOWNSHIP, COUNTY_MZ, "admin"):  # they see the case, but do not supervise it
        _refused(seeded, Forbidden, "case.supervise", cases.supervise, number, user(seeded, who), MESSAGE)
    sup = user(seeded, SUPERVISOR)
    _refused(seeded, InvalidInput, "text.required", cases.supervise, number, sup, "  ")
    _refused(seeded, InvalidInput, "text.too_long", cases.supervise, number, sup, "催" * 501)
    _refused(seeded, InvalidInput, "text.control_characters", cases.supervise, number, sup, "催\x00办")
    _refused(seeded, NotFound, "task.not_found", cases.supervise, number, sup, MESSAGE, task_id=999_999)
    other = start(seeded, service="FX-PENSION").case_number  # a step of another case is not this case's
    (elsewhere,) = ready_tasks(seeded, other)
    _refused(seeded, NotFound, "task.not_found", cases.supervise, number, sup, MESSAGE, task_id=elsewhere.id)
    with db.transaction(seeded) as s:
        cases.withdraw_case(s, number, user(seeded, CLERK), "申请人撤回")
    _refused(seeded, Conflict, "case.not_open", cases.supervise, number, sup, MESSAGE, task_id=task.id)


def test_the_supervision_form_needs_its_csrf_token(seeded, manual_clock):
    number, task = _overdue_case(seeded, manual_clock)
    client = make_app(seeded).test_client()
    login(client, SUPERVISOR)
    before = snapshot(seeded)
    res = client.post(f"/cases/{number}/supervise", data={"message": MESSAGE, "task": str(task.id)})
    assert res.status_code == 400
    card = _rows(seeded, Card)[0]
    res = client.post(f"/cards/{card.id}/explain", data={"explanation": "原因"})
    assert res.status_code == 400
    assert snapshot(seeded) == before


def test_a_step_not_in_the_list_is_refused_on_the_page(seeded, manual_clock):
    number, _task = _overdue_case(seeded, manual_clock)
    client = make_app(seeded).test_client()
    login(client, SUPERVISOR)
    before = snapshot(seeded)
    res = _post(client, f"/cases/{number}/supervise", {"message": MESSAGE, "task": "abc"}, f"/cases/{number}")
    assert res.status_code == 303 and "请从列表中选择督办的环节" in client.get(res.location).get_data(as_text=True)
    res = _post(client, f"/cases/{number}/supervise", {"message": "", "task": ""}, f"/cases/{number}")
    assert "督办内容：此项必填" in client.get(res.location).get_data(as_text=True)
    assert snapshot(seeded) == before


# ------------------------------------------------------------------------------------------- 情况说明
def _card_row(engine: Engine, card_id: int) -> tuple[Any, ...]:
    with engine.connect() as conn:
        return tuple(conn.execute(select(Card.__table__).where(Card.id == card_id)).one())


def test_a_card_is_explained_once_by_the_people_who_did_the_work(seeded, manual_clock):
    number, task = _overdue_case(seeded, manual_clock)
    yellow, red = _rows(seeded, Card)  # the step's two cards, issued to the village, naming CLERK
    assert (yellow.color, red.color, red.task_id, red.assignee_id) == ("yellow", "red", task.id, _uid(seeded, CLERK))
    card_before = _card_row(seeded, red.id)
    for who, error, reason in ((AGENT, Forbidden, "card.explain"),  # sees the case, did not do this step
                               (SUPERVISOR, Forbidden, "card.explain"),  # watches the work, does not answer for it
                               (OTHER_CLERK, NotFound, "card.not_found")):  # another county's clerk
        _refused(seeded, error, reason, cases.explain_card, red.id, user(seeded, who), "原因")
    _refused(seeded, NotFound, "card.not_found", cases.explain_card, 999_999, user(seeded, CLERK), "原因")
    _refused(seeded, InvalidInput, "text.too_long", cases.explain_card, red.id, user(seeded, CLERK), "因" * 1001)
    _refused(seeded, InvalidInput, "text.required", cases.explain_card, red.id, user(seeded, CLERK), "")

    client = make_app(seeded).test_client()
    login(client, CLERK)
    page = client.get(f"/cases/{number}").get_data(as_text=True)
    assert page.count('action="/cards/') == 2  # a form on each card not yet explained
    text = "申请人补交户口簿复印件耽误一天，\n已于今日补齐。"
    res = _post(client, f"/cards/{red.id}/explain", {"explanation": text, "next": f"/cases/{number}"},
                f"/cases/{number}")
    assert res.status_code == 303 and res.location.endswith(f"/cases/{number}")
    page = client.get(res.location).get_data(as_text=True)
    assert "已填写情况说明" in page and text in page and page.count('action="/cards/') == 1
    (expl,) = _rows(seeded, CardExplanation)
    assert (expl.card_id, expl.author_id, expl.at, expl.explanation) == (red.id, _uid(seeded, CLERK), OVERDUE, text)
    (event,) = _rows(seeded, AuditEvent, AuditEvent.action == "card.explained")
    assert (event.actor_id, event.details["card_id"], event.details["explanation"]) == (
        _uid(seeded, CLERK), red.id, text)
    assert _card_row(seeded, red.id) == card_before  # the card itself stays as issued

    # once: a colleague of the unit (who may explain the other card) is refused on this one
    _refused(seeded, Conflict, "card.already_explained", cases.explain_card, red.id, user(seeded, CLERK2), "再写")
    before = snapshot(seeded)
    res = _post(client, f"/cards/{red.id}/explain", {"explanation": "再写一次", "next": f"/cases/{number}"},
                f"/cases/{number}")
    assert "每张只能填写一次" in client.get(res.location).get_data(as_text=True)
    assert snapshot(seeded) == before
    with db.transaction(seeded) as s:
        assert cases.explain_card(s, yellow.id, user(seeded, CLERK2), "本村另一名服务员说明。") == number

    # the supervisor reads both on the case page; another county's supervisor gets 404 on the form
    sup = make_app(seeded).test_client()
    login(sup, SUPERVISOR)
    page = sup.get(f"/cases/{number}").get_data(as_text=True)
    assert text in page and "本村另一名服务员说明。" in page and 'action="/cards/' not in page
    with db.read(seeded) as s:
        assert [e.card_id for e in queries.card_explanations(s, number, user(seeded, SUPERVISOR))] == [yellow.id,
                                                                                                        red.id]
    foreign = make_app(seeded).test_client()
    login(foreign, FOREIGN_SUPERVISOR)
    before = snapshot(seeded)
    assert _post(foreign, f"/cards/{red.id}/explain", {"explanation": "x"}, "/").status_code == 404
    assert snapshot(seeded) == before


def test_the_first_responsible_clerk_explains_a_card_of_a_later_step(seeded, manual_clock):
    number = start(seeded, service="FX-PENSION").case_number
    (intake,) = ready_tasks(seeded, number)
    complete(seeded, intake.id, CLERK, form_for(seeded, intake))
    (review,) = ready_tasks(seeded, number)
    assert review.level == "township"
    at = datetime(2026, 11, 20, tzinfo=SHANGHAI)
    manual_clock.set(at)
    timers.sweep(seeded, at)
    card = next(c for c in _rows(seeded, Card) if c.task_id == review.id and c.color == "red")
    assert card.responsible_clerk_id == _uid(seeded, CLERK) and card.assignee_id is None
    _refused(seeded, Forbidden, "card.explain", cases.explain_card, card.id, user(seeded, CLERK2), "x")
    with db.transaction(seeded) as s:  # named on it as the first-responsibility clerk
        cases.explain_card(s, card.id, user(seeded, CLERK), "乡镇审核人员下乡，已电话催办。")
    with db.transaction(seeded) as s:
        second = next(c for c in _rows(seeded, Card) if c.task_id == review.id and c.color == "yellow")
        cases.explain_card(s, second.id, user(seeded, AGENT), "乡镇代办员说明。")  # a worker of the card's unit
    assert len(_rows(seeded, CardExplanation)) == 2


# ------------------------------------------------------------------------------------------- 转办
def test_a_supervisor_reassigns_a_step_below_them_with_a_reason(seeded, manual_clock):
    number, task = _overdue_case(seeded, manual_clock)
    client = make_app(seeded).test_client()
    login(client, SUPERVISOR)
    page = client.get(f"/cases/{number}").get_data(as_text=True)
    assert f'action="/inbox/tasks/{task.id}/reassign"' in page and f'value="{CLERK2}"' in page
    assert f'<option value="{CLERK}"' not in page  # not to whoever holds it now
    _supervise(seeded, number, SUPERVISOR, task_id=task.id)
    res = _post(client, f"/inbox/tasks/{task.id}/reassign",
                {"to": CLERK2, "reason": "原经办人请假，转同事接办", "next": f"/cases/{number}#supervision"},
                f"/cases/{number}")
    assert res.status_code == 303 and res.location.endswith(f"/cases/{number}#supervision")
    assert "已转办" in client.get(res.location).get_data(as_text=True)
    (moved,) = ready_tasks(seeded, number)
    assert moved.assignee_id == _uid(seeded, CLERK2)
    (event,) = _rows(seeded, AuditEvent, AuditEvent.action == "task.reassigned")
    assert (event.actor_id, event.details["reason"], event.details["to"]) == (
        _uid(seeded, SUPERVISOR), "原经办人请假，转同事接办", CLERK2)
    with db.read(seeded) as s:  # the new holder sees the 督办 on the step they now hold
        assert len(queries.inbox_supervisions(s, user(seeded, CLERK2))) == 1

    # a reason is required; the step stays in its unit; another county's supervisor may not
    sup = user(seeded, SUPERVISOR)
    _refused(seeded, InvalidInput, "text.required", cases.reassign_task, task.id, sup, CLERK, " ")
    _refused(seeded, InvalidInput, "task.reassign_target", cases.reassign_task, task.id, sup, AGENT, "乡镇接办")
    _refused(seeded, Forbidden, "task.reassign", cases.reassign_task, task.id, user(seeded, FOREIGN_SUPERVISOR),
             CLERK, "越权")
    foreign = make_app(seeded).test_client()
    login(foreign, FOREIGN_SUPERVISOR)
    before = snapshot(seeded)
    res = _post(foreign, f"/inbox/tasks/{task.id}/reassign", {"to": CLERK, "reason": "越权"}, "/")
    assert res.status_code == 404
    assert snapshot(seeded) == before


def test_only_a_supervisor_gets_the_reassign_form_on_the_case_page(seeded, manual_clock):
    number, task = _overdue_case(seeded, manual_clock)
    client = make_app(seeded).test_client()
    login(client, CLERK)
    page = client.get(f"/cases/{number}").get_data(as_text=True)
    assert "data-supervise" not in page and f'action="/inbox/tasks/{task.id}/reassign"' not in page
    with db.read(seeded) as s:
        detail = queries.case_detail(s, number, user(seeded, CLERK))
    assert detail.oversight is not None and not detail.oversight.may_supervise and detail.oversight.reassign == ()
    assert detail.to_json()["oversight"]["explainable"] == [c.id for c in detail.cards]
