"""The SLA clock of a case: dues on the working-day calendar, 补录, pause/resume, extension, cards."""
from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from sqlalchemy import select

from engine import cases, db, timers
from engine.clock import SHANGHAI
from engine.errors import Conflict, Forbidden, InvalidInput
from engine.models import Card, Case, Notification, Pause, TimerRow, User

from .conftest import CLERK, COUNTY_MZ, COUNTY_RS, TOWNSHIP, complete, form_for, ready_tasks, start, user


def sh(*args) -> datetime:
    return datetime(*args, tzinfo=SHANGHAI)


def case_row(engine, number):
    with db.read(engine) as s:
        return s.scalar(select(Case).where(Case.number == number))


def cards(engine, number):
    with db.read(engine) as s:
        return [(c.subject.split(":")[0], c.color) for c in s.scalars(
            select(Card).join(Case).where(Case.number == number).order_by(Card.id))]


def test_dues_count_working_days_from_acceptance(seeded):
    r = start(seeded, service="FX-DIBAO", now=sh(2026, 11, 2, 9, 0))  # legal 25, promised 20
    c = case_row(seeded, r.case_number)
    assert (c.legal_limit_workdays, c.promised_limit_workdays) == (25, 20)
    assert c.promised_due_at == sh(2026, 12, 1)  # 24:00 of Mon 11-30, the 20th working day
    assert c.legal_due_at == sh(2026, 12, 8)  # 24:00 of Mon 12-07, the 25th
    assert not c.due_estimated


def test_late_entry_counts_from_the_real_acceptance(seeded, manual_clock):
    manual_clock.set(sh(2026, 11, 12, 15, 0))
    r = start(seeded, service="FX-PENSION", now=manual_clock.now())
    with db.transaction(seeded) as s:  # 补录: taken offline on Monday during an outage, entered Thursday
        late = cases.start_case(s, service_code="FX-PENSION", village_code="430902102201", applicant_name="盛秋兰",
                                actor=user(seeded, CLERK), accepted_at=sh(2026, 11, 9, 10, 0))
    c = case_row(seeded, late.case_number)
    assert c.accepted_at == sh(2026, 11, 9, 10, 0) and c.created_at == manual_clock.now()
    assert c.legal_due_at == sh(2026, 11, 17)  # 5 working days after Monday 11-09 → Monday 11-16
    (task,) = ready_tasks(seeded, late.case_number)
    assert task.due_at == sh(2026, 11, 12)  # the intake step's workdays(2) also counts from 11-09 …
    # … so on entry the step is already over (cards), the case (promised 24:00 11-16) not yet yellow
    assert cards(seeded, late.case_number) == [("task", "yellow"), ("task", "red")]
    assert case_row(seeded, late.case_number).warning_check_at == sh(2026, 11, 13)
    assert cards(seeded, r.case_number) == []
    with pytest.raises(InvalidInput):
        with db.transaction(seeded) as s:
            cases.start_case(s, service_code="FX-PENSION", village_code="430902102201", applicant_name="x",
                             actor=user(seeded, CLERK), accepted_at=manual_clock.now() + timedelta(hours=1))


def test_yellow_then_red_cards_at_the_right_instants(seeded, manual_clock):
    r = start(seeded, service="FX-PENSION")  # Mon 11-02 09:00; promised 5 → due 24:00 Mon 11-09; step 2 → 24:00 Wed 11-04
    assert cards(seeded, r.case_number) == []
    for at, expected in [
        (sh(2026, 11, 2, 23, 59), []),
        (sh(2026, 11, 3, 0, 0), [("task", "yellow")]),                                 # step: 1 working day left
        (sh(2026, 11, 4, 23, 59), [("task", "yellow")]),
        (sh(2026, 11, 5, 0, 0), [("task", "yellow"), ("task", "red")]),                # step over, case still green
        (sh(2026, 11, 5, 23, 59), [("task", "yellow"), ("task", "red")]),
        (sh(2026, 11, 6, 0, 0), [("task", "yellow"), ("task", "red"), ("case", "yellow")]),
        (sh(2026, 11, 9, 23, 59), [("task", "yellow"), ("task", "red"), ("case", "yellow")]),
        (sh(2026, 11, 10, 0, 0), [("task", "yellow"), ("task", "red"), ("case", "yellow"), ("case", "red"),
                                  ("legal", "red")]),
    ]:
        timers.sweep(seeded, at)
        assert cards(seeded, r.case_number) == expected, at
    assert timers.sweep(seeded, sh(2026, 11, 20)).cards == 0  # never twice
    c = case_row(seeded, r.case_number)
    (task,) = ready_tasks(seeded, r.case_number)
    assert (c.warning_level, task.warning_level) == ("red", "red")
    with db.read(seeded) as s:
        card = s.scalar(select(Card).where(Card.subject.like("task:%"), Card.color == "red"))
        assert card.responsible_clerk_id == user(seeded, CLERK).id == card.assignee_id
        assert card.issued_at == sh(2026, 11, 5) and card.resolved_at is None
        told = {(u, n.card_id) for n, u in s.execute(select(Notification, User.username)
                                                      .join(User, User.id == Notification.user_id))}
    assert {u for u, cid in told if cid == card.id} == {CLERK, "supervisor", "supervisor-430902"}
    complete(seeded, task.id, CLERK, form_for(seeded, task))
    with db.read(seeded) as s:  # the step is done: its cards are resolved, the records stay
        assert s.get(Card, card.id).resolved_at is not None
        assert s.scalar(select(Card).where(Card.subject == "case", Card.color == "red")).resolved_at is None


def test_pause_of_three_working_days_across_national_day(seeded, manual_clock):
    manual_clock.set(sh(2026, 9, 21, 9, 0))
    r = start(seeded, service="FX-DIBAO", now=manual_clock.now())
    c = case_row(seeded, r.case_number)
    assert c.legal_due_at == sh(2026, 11, 3)  # 25th working day after 09-21: Mon 11-02
    (task,) = ready_tasks(seeded, r.case_number)
    step_due = task.due_at
    manual_clock.set(sh(2026, 9, 30, 9, 0))
    with db.transaction(seeded) as s:  # 补正 asked on 09-29; entered the next morning (within the grace)
        cases.pause_case(s, r.case_number, user(seeded, CLERK), "缺少户口簿复印件", "supplement",
                         at=sh(2026, 9, 29, 10, 0))
    manual_clock.set(sh(2026, 10, 12, 10, 0))
    with db.read(seeded) as s:
        assert {t.state for t in s.scalars(select(TimerRow))} == {"paused"}
    assert timers.sweep(seeded, sh(2026, 12, 31)).fired == 0  # a stopped clock fires nothing
    with pytest.raises(Conflict):
        with db.transaction(seeded) as s:
            cases.pause_case(s, r.case_number, user(seeded, CLERK), "again")
    with db.transaction(seeded) as s:  # documents in on 10-09: 9-30, 10-08, 10-09 did not count
        cases.resume_case(s, r.case_number, user(seeded, CLERK), at=sh(2026, 10, 9, 16, 0))
    c = case_row(seeded, r.case_number)
    assert c.legal_due_at == sh(2026, 11, 6) and c.paused_at is None  # Thu 11-05: three working days later
    assert c.promised_due_at == sh(2026, 10, 30)  # 20th: was Mon 10-26 (… 10-27 00:00), now Thu 10-29
    (task,) = ready_tasks(seeded, r.case_number)
    # the intake step (5 wd from 09-21, 中秋 09-25 off: 24:00 09-29) was in its last day when the pause
    # began: 0 working days left after 09-29, so it is due at the end of the resume day
    assert step_due == sh(2026, 9, 30) and task.due_at == sh(2026, 10, 10)
    with db.read(seeded) as s:
        pause = s.scalar(select(Pause))
        assert (pause.kind, pause.started_at, pause.ended_at) == ("supplement", sh(2026, 9, 29, 10), sh(2026, 10, 9, 16))
        assert pause.left["legal"] == 20
        armed = {t.bpmn_id: t.due_at for t in s.scalars(select(TimerRow).where(TimerRow.state == "armed"))}
    assert armed["Timer_VillageIntake_Warn"] == task.due_at


def test_extension_rules(seeded, manual_clock):
    r = start(seeded, service="FX-DIBAO")  # legal due 24:00 12-07; cap 10; approved at county level
    before = case_row(seeded, r.case_number)
    (task,) = ready_tasks(seeded, r.case_number)
    assert task.due_at == sh(2026, 11, 10)  # the intake step: 5 working days, 24:00 11-09

    def extend(who, days, reason="需要补充调查"):
        with db.transaction(seeded) as s:
            return cases.extend_case(s, r.case_number, user(seeded, who), days, reason)

    with pytest.raises(Forbidden):
        extend(TOWNSHIP, 5)
    with pytest.raises(Forbidden):
        extend(CLERK, 5)
    with pytest.raises(InvalidInput):
        extend(COUNTY_MZ, 11)
    with pytest.raises(InvalidInput):
        extend(COUNTY_MZ, 5, "  ")
    extend(COUNTY_MZ, 10)
    after = case_row(seeded, r.case_number)
    assert after.legal_due_at == sh(2026, 12, 22) and after.promised_due_at == sh(2026, 12, 15)
    assert before.legal_due_at == sh(2026, 12, 8) and after.extension_workdays == 10
    (task,) = ready_tasks(seeded, r.case_number)
    with db.read(seeded) as s:
        timer = s.scalar(select(TimerRow).where(TimerRow.bpmn_id == "Timer_VillageIntake_Warn"))
        interrupting = s.scalar(select(TimerRow).where(TimerRow.bpmn_id == "Timer_VillageIntake_Withdraw"))
    assert task.due_at == timer.due_at == sh(2026, 11, 24)  # armed timers move too: 10 working days later
    assert interrupting.due_at == sh(2026, 12, 1, 9, 0)  # P15D (11-17 09:00) + 10 working days, same hour
    with pytest.raises(Conflict, match="once"):
        extend(COUNTY_MZ, 1)


def test_extension_after_the_due_date_is_refused(seeded, manual_clock):
    r = start(seeded, service="FX-PENSION")  # legal due 24:00 11-09
    manual_clock.set(sh(2026, 11, 10, 9, 0))
    with pytest.raises(Conflict, match="overdue"):
        with db.transaction(seeded) as s:
            cases.extend_case(s, r.case_number, user(seeded, COUNTY_RS), 3, "材料复杂")
    assert case_row(seeded, r.case_number).extension_workdays is None


def test_unknown_year_gives_estimated_dues_not_an_error(seeded, manual_clock):
    manual_clock.set(sh(2026, 12, 24, 10, 0))
    r = start(seeded, service="FX-DIBAO", now=manual_clock.now())
    c = case_row(seeded, r.case_number)
    assert c.due_estimated and c.legal_due_at > sh(2027, 1, 1)


def test_a_pause_that_pushes_dues_into_an_unknown_year_marks_them_estimated(seeded, manual_clock):
    from engine import processes

    from .conftest import FIXTURES
    with db.transaction(seeded) as s:
        processes.deploy(s, (FIXTURES / "publicity.bpmn").read_bytes(), "publicity.bpmn")
    manual_clock.set(sh(2026, 12, 14, 9, 0))
    r = start(seeded, service="TEST-PUBLICITY", now=manual_clock.now())  # 10 wd → 12-28: known
    assert not case_row(seeded, r.case_number).due_estimated
    (intake,) = ready_tasks(seeded, r.case_number)
    complete(seeded, intake.id, CLERK)  # 公示 7 days: the rest of the limit now runs into 2027
    c = case_row(seeded, r.case_number)
    assert c.legal_due_at > sh(2027, 1, 1) and c.due_estimated


def test_service_day_is_the_tenth_or_the_next_working_day():
    from datetime import date

    from engine.service_day import is_service_day, next_service_day, service_date
    assert service_date(2026, 11, None) == date(2026, 11, 10)  # Tuesday
    assert service_date(2026, 10, None) == date(2026, 10, 10)  # a Saturday made a working day (调休)
    assert service_date(2026, 1, None) == date(2026, 1, 12)  # Saturday → Monday
    assert service_date(2026, 5, None) == date(2026, 5, 11)  # Sunday → Monday
    assert is_service_day(date(2026, 1, 12)) and not is_service_day(date(2026, 1, 10))
    assert next_service_day(date(2026, 11, 11)) == date(2026, 12, 10)


def test_new_step_during_a_pause_waits_for_the_clock(seeded, manual_clock):
    r = start(seeded)  # TEST-RELAY: the review step has an interrupting PT72H timer
    with db.transaction(seeded) as s:
        cases.pause_case(s, r.case_number, user(seeded, CLERK), "等待补正材料")
    (intake,) = ready_tasks(seeded, r.case_number)
    complete(seeded, intake.id, CLERK, {"documents_complete": True})  # supplement arrived, step done
    manual_clock.advance(hours=100)
    assert timers.sweep(seeded, manual_clock.now()).fired == 0  # the review's PT72H waits with the clock
    (review,) = ready_tasks(seeded, r.case_number)
    assert review.due_at is None
    with db.transaction(seeded) as s:
        cases.resume_case(s, r.case_number, user(seeded, CLERK))
    (review,) = ready_tasks(seeded, r.case_number)
    assert review.due_at == manual_clock.now() + timedelta(hours=72)


def test_publicity_period_stops_the_clock(seeded, manual_clock):
    from engine import processes

    from .conftest import FIXTURES
    with db.transaction(seeded) as s:
        processes.deploy(s, (FIXTURES / "publicity.bpmn").read_bytes(), "publicity.bpmn")
    r = start(seeded, service="TEST-PUBLICITY")  # Mon 11-02: 10 working days → 24:00 Mon 11-16
    assert case_row(seeded, r.case_number).legal_due_at == sh(2026, 11, 17)
    manual_clock.set(sh(2026, 11, 3, 10, 0))
    (intake,) = ready_tasks(seeded, r.case_number)
    complete(seeded, intake.id, CLERK)  # 公示 7 calendar days: 11-03 10:00 → 11-10 10:00
    c = case_row(seeded, r.case_number)
    assert c.legal_due_at == sh(2026, 11, 24)  # 9 working days left after 11-03, counted from 11-10 → 11-23
    with db.read(seeded) as s:
        pause = s.scalar(select(Pause))
    assert (pause.kind, pause.started_at, pause.ended_at) == ("publicity", sh(2026, 11, 3, 10), sh(2026, 11, 10, 10))
    assert ready_tasks(seeded, r.case_number) == []
    assert timers.sweep(seeded, sh(2026, 11, 10, 10, 0)).fired == 1
    (review,) = ready_tasks(seeded, r.case_number)
    assert review.bpmn_id == "Task_Review"


def test_cards_are_immutable_records(seeded, manual_clock):
    start(seeded, service="FX-PENSION")
    timers.sweep(seeded, sh(2026, 11, 5))
    first = select(Card).order_by(Card.id).limit(1)
    with pytest.raises(ValueError):
        with db.transaction(seeded) as s:
            s.scalar(first).reason = "改写"
    with db.transaction(seeded) as s:
        s.scalar(first).resolved_at = manual_clock.now()
    with pytest.raises(ValueError):
        with db.transaction(seeded) as s:
            s.scalar(first).resolved_at = manual_clock.now() + timedelta(days=1)


def test_withdrawing_a_paused_case_ends_its_pause(seeded, manual_clock):
    r = start(seeded, service="FX-DIBAO")
    with db.transaction(seeded) as s:
        cases.pause_case(s, r.case_number, user(seeded, CLERK), "等待补正材料")
    manual_clock.advance(days=2)
    with db.transaction(seeded) as s:
        cases.withdraw_case(s, r.case_number, user(seeded, CLERK), "申请人撤回")
    c = case_row(seeded, r.case_number)
    with db.read(seeded) as s:
        pause = s.scalar(select(Pause))
        states = {t.state for t in s.scalars(select(TimerRow))}
    assert (c.status, c.paused_at, pause.ended_at) == ("withdrawn", None, manual_clock.now())
    assert states == {"cancelled"}
