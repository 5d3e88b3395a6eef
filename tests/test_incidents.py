"""One failure stays one failure (DESIGN.md invariant 8): a case whose timers or warning check fail, or a
unit whose service-day digest fails, becomes an incident — recorded, parked, retried with backoff,
visible to supervisors of its subtree — and the sweep and the job go on with every other case and unit.
On SQLite and PostgreSQL."""
from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, insert, select, update

from engine import cases, clock, db, incidents, processes, service_day, settings, timers
from engine.cases import projection, store
from engine.cli import main
from engine.errors import Conflict, Forbidden, InvalidInput, NotFound
from engine.models import AuditEvent, Card, Case, Incident, OrgUnit, ServiceDayDigest, TaskRow, TimerRow

from .conftest import CLERK, FIXTURES, START, complete, ready_tasks, start, user

T0 = clock.to_utc(START)
DUE = T0 + timedelta(hours=72, minutes=30)  # every PT72H review timer below is due (the poisoned one first)
FIRST = timedelta(seconds=incidents.DEFAULT_RETRY_SECONDS)
SUPERVISOR_ZY, SUPERVISOR_NX = "supervisor-430902", "supervisor-430921"  # 资阳区 (the cases), 南县


# ------------------------------------------------------------------------------------------- helpers
def relay_case(engine, manual_clock, service: str = "TEST-RELAY", **data: Any) -> int:
    """A relay case whose intake is done: its review waits behind the PT72H timer Timer_Review."""
    r = start(engine, service=service)
    complete(engine, r.opened_tasks[0], CLERK, {"documents_complete": True, **data})
    manual_clock.advance(minutes=1)  # the next case is due a minute later
    return case_id(engine, r.case_number)


def case_id(engine, number: str) -> int:
    with db.read(engine) as s:
        return s.scalar(select(Case.id).where(Case.number == number))


def case_row(engine, cid: int) -> Case:
    with db.read(engine) as s:
        return s.get(Case, cid)


def ready_bpmn(engine, cid: int) -> list[str]:
    with db.read(engine) as s:
        return list(s.scalars(select(TaskRow.bpmn_id).where(TaskRow.case_id == cid, TaskRow.state == "ready")
                              .order_by(TaskRow.id)))


def timer_states(engine, cid: int) -> dict[str, str]:
    with db.read(engine) as s:
        return dict(s.execute(select(TimerRow.bpmn_id, TimerRow.state).where(TimerRow.case_id == cid)).all())


def incidents_of(engine, **where: Any) -> list[Incident]:
    with db.read(engine) as s:
        return list(s.scalars(select(Incident).filter_by(**where).order_by(Incident.id)))


def audit_actions(engine, cid: int | None, prefix: str = "incident.") -> list[tuple[str, int | None]]:
    with db.read(engine) as s:
        stmt = select(AuditEvent.action, AuditEvent.actor_id).where(AuditEvent.action.startswith(prefix))
        stmt = stmt.where(AuditEvent.case_id == cid) if cid else stmt.where(AuditEvent.case_id.is_(None))
        return [tuple(r) for r in s.execute(stmt.order_by(AuditEvent.id))]


def first_due_case(engine) -> int:
    with db.read(engine) as s:
        return s.scalar(select(TimerRow.case_id).where(TimerRow.state == "armed")
                        .order_by(TimerRow.due_at, TimerRow.id).limit(1))


@dataclass
class Poison:
    """Makes one case's firing fail while `active`; counts the attempts."""
    case_id: int = 0
    active: bool = True
    calls: int = 0


def _deep(n: int) -> int:
    return _deep(n + 1) + 1  # a real RecursionError


def _raise_overflow() -> None:
    datetime(2026, 1, 1) + timedelta(days=99999999999999)  # what a P99999999999999D literal does


def _raise_memory() -> None:
    raise MemoryError()


def _raise_value() -> None:
    raise ValueError("a condition compared a string with a number")  # the engine wraps it as WorkflowError


def _raise_huge() -> None:
    raise OverflowError("\x00\x07" + "溢" * 100_000)  # NUL (PostgreSQL refuses it) and 100k characters


IN_REFRESH: dict[str, tuple[Callable[[], Any], str]] = {  # raised while the workflow sees the new time
    "overflow": (_raise_overflow, "OverflowError"),
    "recursion": (lambda: _deep(0), "RecursionError"),
    "memory": (_raise_memory, "MemoryError"),
    "workflow_error": (_raise_value, "WorkflowError"),
    "huge_message": (_raise_huge, "OverflowError"),
}


@pytest.fixture
def poison(monkeypatch) -> Callable[..., Poison]:
    """poison(case_id, variant): the firing of that case fails that way (after doing its real work, so
    the rollback has something to undo)."""

    def make(cid: int, variant: str) -> Poison:
        state = Poison(cid)
        if variant in IN_REFRESH:
            fail = IN_REFRESH[variant][0]
            real_restore = store.restore

            def restore(session, case):
                loaded = real_restore(session, case)
                if state.active and case["id"] == state.case_id:
                    real_refresh = loaded.instance.workflow.refresh_timers

                    def refresh() -> None:
                        state.calls += 1
                        real_refresh()
                        fail()
                    loaded.instance.workflow.refresh_timers = refresh
                return loaded
            monkeypatch.setattr(store, "restore", restore)
            return state
        real_sync = projection.sync

        def sync(session, loaded, *args, **kwargs):
            out = real_sync(session, loaded, *args, **kwargs)  # rows written: timer fired, task opened
            if state.active and loaded.case["id"] == state.case_id:
                state.calls += 1
                if variant == "plain_bug":
                    (None).id  # AttributeError: a bug of ours
                else:  # "db_error": a statement of ours the database refuses (aborts the transaction on PG)
                    row = session.execute(select(TimerRow.__table__).where(TimerRow.case_id == state.case_id)
                                          .limit(1)).mappings().one()
                    session.execute(insert(TimerRow.__table__).values(
                        {k: v for k, v in row.items() if k != "id"}))
            return out
        monkeypatch.setattr(projection, "sync", sync)
        return state
    return make


POISON_XML = (FIXTURES / "relay.bpmn").read_text(encoding="utf-8").replace("TEST-RELAY", "TEST-POISON").replace(
    '<bpmn:flowNodeRef>Task_HeadReview</bpmn:flowNodeRef>',
    '<bpmn:flowNodeRef>Task_HeadReview</bpmn:flowNodeRef><bpmn:flowNodeRef>Timer_HeadReview</bpmn:flowNodeRef>'
).replace(
    '<bpmn:sequenceFlow id="F5"',
    '<bpmn:boundaryEvent id="Timer_HeadReview" name="负责人超时" attachedToRef="Task_HeadReview" '
    'cancelActivity="false"><bpmn:timerEventDefinition id="TD3"><bpmn:timeDuration>"P" + str(household_size) + "D"'
    '</bpmn:timeDuration></bpmn:timerEventDefinition></bpmn:boundaryEvent>\n    <bpmn:sequenceFlow id="F5"')


def poisoned_world(engine, manual_clock, poison, variant: str, others: int = 3) -> tuple[int, list[int], Poison]:
    """The poisoned case first in the due order, then `others` healthy ones."""
    if variant == "timer_literal":  # real data: the escalation arms a timer of P99999999999999D
        with db.transaction(engine) as s:
            processes.deploy(s, POISON_XML.encode(), "poison.bpmn")
        bad = relay_case(engine, manual_clock, service="TEST-POISON", household_size=99999999999999)
        state = Poison(bad, calls=-1)
    else:
        bad = relay_case(engine, manual_clock)
        state = None
    good = [relay_case(engine, manual_clock) for _ in range(others)]
    if variant == "corrupt_json":  # real data: the stored state cannot be restored
        with db.transaction(engine) as s:
            s.execute(update(Case).where(Case.id == bad).values(instance_json='{"tasks": {}, "root": 7}'))
        state = Poison(bad, calls=-1)
    assert first_due_case(engine) == bad
    return bad, good, state or poison(bad, variant)


VARIANTS = [*IN_REFRESH, "plain_bug", "db_error", "corrupt_json", "timer_literal"]
EXPECTED_TYPE = {**{k: v[1] for k, v in IN_REFRESH.items()}, "plain_bug": "AttributeError",
                 "db_error": "IntegrityError", "corrupt_json": "WorkflowError", "timer_literal": "WorkflowError"}


# ------------------------------------------------------------------------------------------- timers
@pytest.mark.parametrize("variant", VARIANTS)
def test_a_poisoned_case_first_in_due_order_does_not_stop_the_others(seeded, manual_clock, poison, variant):
    bad, good, _state = poisoned_world(seeded, manual_clock, poison, variant)
    before = case_row(seeded, bad)

    report = timers.sweep(seeded, DUE)

    assert (report.fired, report.cases) == (len(good), len(good))
    assert [(f["case_id"], f["kind"]) for f in report.failed] == [(bad, "timer")]
    for cid in good:
        assert ready_bpmn(seeded, cid) == ["Task_HeadReview"]
        assert timer_states(seeded, cid)["Timer_Review"] == "fired"
    after = case_row(seeded, bad)  # everything the failed firing did was rolled back
    assert (after.version, after.instance_json, after.status) == (before.version, before.instance_json, "open")
    assert ready_bpmn(seeded, bad) == ["Task_Review"]
    assert timer_states(seeded, bad) == {"Timer_Review": "failed"}
    assert audit_actions(seeded, bad, "timer.") == []
    (inc,) = incidents_of(seeded, case_id=bad)
    assert (inc.kind, inc.status, inc.error_type, inc.retry_count) == ("timer", "open", EXPECTED_TYPE[variant], 0)
    # the timer whose value could not be armed when it names itself; else the due timer whose firing failed
    assert inc.element == ("Timer_HeadReview" if variant == "timer_literal" else "Timer_Review")
    assert (inc.first_at, inc.last_at, inc.next_retry_at) == (DUE, DUE, DUE + FIRST)
    assert inc.error_message and len(inc.error_message) <= incidents.MESSAGE_MAX and "\x00" not in inc.error_message
    assert inc.unit_id == case_row(seeded, bad).village_id
    assert audit_actions(seeded, bad) == [("incident.opened", None)]


def test_the_failed_case_is_skipped_until_its_backoff_then_retried_and_resolved(seeded, manual_clock, poison):
    bad, good, state = poisoned_world(seeded, manual_clock, poison, "recursion", others=1)
    timers.sweep(seeded, DUE)
    assert state.calls == 1

    later = timers.sweep(seeded, DUE + FIRST - timedelta(seconds=1))  # before the backoff: not tried
    assert (state.calls, later.failed, later.cases) == (1, [], 0)

    again = timers.sweep(seeded, DUE + FIRST)  # due: tried, fails again, waits twice as long
    assert state.calls == 2 and [f["case_id"] for f in again.failed] == [bad]
    (inc,) = incidents_of(seeded, case_id=bad)
    assert (inc.retry_count, inc.last_at, inc.next_retry_at) == (1, DUE + FIRST, DUE + 3 * FIRST)
    assert timer_states(seeded, bad) == {"Timer_Review": "failed"}

    state.active = False  # the cause is gone (a fix deployed, the data mended)
    assert timers.sweep(seeded, DUE + 3 * FIRST - timedelta(seconds=1)).cases == 0
    healed = timers.sweep(seeded, DUE + 3 * FIRST)
    assert (healed.fired, healed.cases, healed.failed) == (1, 1, [])
    assert ready_bpmn(seeded, bad) == ["Task_HeadReview"] and timer_states(seeded, bad)["Timer_Review"] == "fired"
    (inc,) = incidents_of(seeded, case_id=bad)
    assert (inc.status, inc.resolved_by_id, inc.resolved_at, inc.next_retry_at) == ("resolved", None,
                                                                                     DUE + 3 * FIRST, None)
    assert audit_actions(seeded, bad) == [("incident.opened", None), ("incident.failed", None),
                                          ("incident.resolved", None)]
    assert timers.sweep(seeded, DUE + timedelta(days=1)).failed == []


def test_backoff_doubles_up_to_its_cap_and_is_configurable(monkeypatch, caplog):
    policy = incidents.backoff()
    assert [policy.delay(n).total_seconds() for n in (0, 1, 2, 3)] == [60, 120, 240, 480]
    assert policy.delay(10_000).total_seconds() == 6 * 3600
    monkeypatch.setenv("YICUN_INCIDENT_RETRY_SECONDS", "10")
    monkeypatch.setenv("YICUN_INCIDENT_RETRY_MAX_SECONDS", "25")
    settings.get.cache_clear()
    assert [incidents.backoff().delay(n).total_seconds() for n in (0, 1, 2, 50)] == [10, 20, 25, 25]
    monkeypatch.setenv("YICUN_INCIDENT_RETRY_SECONDS", "soon")
    settings.get.cache_clear()
    with pytest.raises(settings.SettingError, match="YICUN_INCIDENT_RETRY_SECONDS must be a whole number"):
        settings.get()  # what `yicun` reports before any command runs (exit 3)
    assert incidents.backoff().first_seconds == 60  # and should it run all the same, failures are recorded
    assert "YICUN_INCIDENT_RETRY_SECONDS" in caplog.text


def test_a_second_timer_of_the_case_is_held_not_fired_before_the_retry(seeded, manual_clock, poison,
                                                                       monkeypatch):
    """The poisoned case's later timers are held too: the case is skipped as a whole until its retry."""
    monkeypatch.setenv("YICUN_INCIDENT_RETRY_SECONDS", str(30 * 86400))  # its retry is far away
    settings.get.cache_clear()
    r = start(seeded, service="FX-DIBAO")  # two timers: the workdays(5) step warning and the P15D withdrawal
    bad = case_id(seeded, r.case_number)
    state = poison(bad, "overflow")
    timers.sweep(seeded, datetime(2026, 11, 10, tzinfo=clock.SHANGHAI))
    assert timer_states(seeded, bad) == {"Timer_VillageIntake_Warn": "failed", "Timer_VillageIntake_Withdraw": "held"}
    timers.sweep(seeded, T0 + timedelta(days=16))  # the withdrawal is due, the retry is not
    assert state.calls == 1 and case_row(seeded, bad).status == "open"
    assert incidents_of(seeded, case_id=bad)[0].retry_count == 0


def test_an_interrupt_is_not_swallowed(seeded, manual_clock, monkeypatch):
    bad = relay_case(seeded, manual_clock)
    real_restore = store.restore

    def restore(session, case):
        if case["id"] == bad:
            raise KeyboardInterrupt
        return real_restore(session, case)
    monkeypatch.setattr(store, "restore", restore)
    with pytest.raises(KeyboardInterrupt):
        timers.sweep(seeded, DUE)
    assert incidents_of(seeded) == [] and timer_states(seeded, bad) == {"Timer_Review": "armed"}


def sweep_in_parallel(engine, count: int) -> list[timers.SweepReport]:
    """`count` sweeps at DUE started together in threads; their reports."""
    reports: list[timers.SweepReport] = []
    threads = [threading.Thread(target=lambda: reports.append(timers.sweep(engine, DUE))) for _ in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    return reports


def test_sweepers_in_parallel_record_one_incident_and_fire_the_rest_once(seeded, manual_clock, poison):
    bad, good, _state = poisoned_world(seeded, manual_clock, poison, "plain_bug", others=8)
    reports = sweep_in_parallel(seeded, 3)
    assert sum(r.fired for r in reports) == len(good)
    with db.read(seeded) as s:
        per_case = dict(s.execute(select(AuditEvent.case_id, func.count()).where(AuditEvent.action == "timer.fired")
                                  .group_by(AuditEvent.case_id)).all())
    assert per_case == {cid: 1 for cid in good}
    (inc,) = incidents_of(seeded, case_id=bad)
    assert (inc.status, inc.retry_count) == ("open", 0)  # met by several sweepers, still one failure


@pytest.mark.parametrize("variant", ["plain_bug", "recursion", "db_error"])
def test_a_failing_case_is_run_once_however_many_sweepers_meet_it(seeded, manual_clock, poison, variant):
    """The failed firing rolls back to a savepoint while the case row stays locked, and its incident is
    recorded in that same transaction: no other sweeper can fail on the case again in between (an
    expensive failure — the 2 s budget — would cost twice, and the audit would say it failed again)."""
    bad, good, state = poisoned_world(seeded, manual_clock, poison, variant, others=6)
    reports = sweep_in_parallel(seeded, 3)
    assert state.calls == 1
    assert sum(len(r.failed) for r in reports) == 1
    assert audit_actions(seeded, bad, "incident.") == [("incident.opened", None)]


# ------------------------------------------------------------------------------------------- people
def test_retry_clears_the_backoff_and_the_next_sweep_resolves_it(seeded, manual_clock, poison):
    bad, _good, state = poisoned_world(seeded, manual_clock, poison, "memory", others=1)
    timers.sweep(seeded, DUE)
    (inc,) = incidents_of(seeded, case_id=bad)
    state.active = False
    at = DUE + timedelta(seconds=5)
    assert timers.sweep(seeded, at).cases == 0  # still waiting for its backoff
    with db.transaction(seeded) as s:
        out = incidents.retry(s, inc.id, user(seeded, "admin"), now=at)
    assert out["next_retry_at"] == clock.local(at).isoformat(timespec="seconds")
    report = timers.sweep(seeded, at)
    assert (report.fired, report.failed) == (1, [])
    assert incidents_of(seeded, case_id=bad)[0].status == "resolved"
    admin_id = user(seeded, "admin").id
    assert audit_actions(seeded, bad) == [("incident.opened", None), ("incident.retry", admin_id),
                                          ("incident.resolved", None)]
    with db.transaction(seeded) as s, pytest.raises(Conflict):
        incidents.retry(s, inc.id, None)


def test_resolve_needs_a_note_is_audited_and_hands_the_timers_back(seeded, manual_clock, poison):
    bad, _good, state = poisoned_world(seeded, manual_clock, poison, "overflow", others=1)
    timers.sweep(seeded, DUE)
    (inc,) = incidents_of(seeded, case_id=bad)
    admin = user(seeded, "admin")
    for note in ("", "   ", "x" * 501, "ok\x00"):
        with db.transaction(seeded) as s, pytest.raises(InvalidInput):
            incidents.resolve(s, inc.id, admin, note)
    state.active = False
    with db.transaction(seeded) as s:
        out = incidents.resolve(s, inc.id, admin, "修复了流程版本", now=DUE + timedelta(seconds=10))
    assert (out["status"], out["resolved_by"], out["resolved_note"]) == ("resolved", "admin", "修复了流程版本")
    assert timer_states(seeded, bad) == {"Timer_Review": "armed"}  # back in the sweep
    with db.read(seeded) as s:
        row = s.scalar(select(AuditEvent).where(AuditEvent.action == "incident.resolved"))
    assert (row.case_id, row.actor_id, row.details["note"], row.details["incident_id"]) == (
        bad, admin.id, "修复了流程版本", inc.id)
    assert timers.sweep(seeded, DUE + timedelta(seconds=11)).fired == 1
    with db.transaction(seeded) as s, pytest.raises(Conflict):
        incidents.resolve(s, inc.id, admin, "again")


def test_a_retry_follows_what_users_did_meanwhile(seeded, manual_clock, poison):
    """While its timer was parked, the township completed the review (cancelling that timer) and a
    second case was withdrawn: the retry re-arms from the workflow, so nothing spins or fires late."""
    bad, good, state = poisoned_world(seeded, manual_clock, poison, "overflow", others=1)
    state2 = poison(good[0], "overflow")
    timers.sweep(seeded, DUE)
    assert len(incidents_of(seeded, status="open")) == 2
    state.active = state2.active = False
    manual_clock.set(DUE)
    (review,) = ready_tasks(seeded, case_row(seeded, bad).number)
    complete(seeded, review.id, "agent-430902102-1", {"township_decision": "approve"})
    with db.transaction(seeded) as s:
        cases.withdraw_case(s, case_row(seeded, good[0]).number, user(seeded, CLERK), "申请人撤回")
    report = timers.sweep(seeded, DUE + FIRST)
    assert (report.fired, report.failed) == (0, [])
    assert timer_states(seeded, bad) == {"Timer_Review": "cancelled", "Timer_Approve_Warn": "armed"}
    assert timer_states(seeded, good[0]) == {"Timer_Review": "cancelled"}
    assert [i.status for i in incidents_of(seeded)] == ["resolved", "resolved"]


def test_a_due_timer_the_workflow_does_not_fire_is_an_incident_not_a_spin(seeded, manual_clock):
    """Real bad data: a timer row armed and due whose workflow task is not waiting (a projection out of
    step). The sweep would pick that case first forever; it becomes an incident and the rest fire."""
    bad = relay_case(seeded, manual_clock)
    good = relay_case(seeded, manual_clock)
    with db.transaction(seeded) as s:  # a stray row: armed, due, for a timer the workflow does not have
        row = s.execute(select(TimerRow.__table__).where(TimerRow.case_id == bad)).mappings().one()
        s.execute(insert(TimerRow.__table__).values({**{k: v for k, v in row.items() if k != "id"},
                                                     "spiff_task_id": "0" * 36, "bpmn_id": "Timer_Stray"}))
    report = timers.sweep(seeded, DUE)
    assert [f["case_id"] for f in report.failed] == [bad] and ready_bpmn(seeded, good) == ["Task_HeadReview"]
    assert ready_bpmn(seeded, bad) == ["Task_HeadReview"]  # its real timer fired; the stray one cannot
    (inc,) = incidents_of(seeded, case_id=bad)
    assert (inc.error_type, inc.element) == ("NoProgress", "Timer_Stray")
    assert timer_states(seeded, bad) == {"Timer_Review": "fired", "Timer_Stray": "failed"}
    report = timers.sweep(seeded, DUE + FIRST)  # the retry re-arms from the workflow: the stray row is dropped
    assert report.failed == [] and timer_states(seeded, bad) == {"Timer_Review": "fired", "Timer_Stray": "cancelled"}
    assert incidents_of(seeded, case_id=bad)[0].status == "resolved"


def test_a_supervisor_sees_the_incidents_of_their_subtree_only(seeded, manual_clock, poison):
    bad, _good, _state = poisoned_world(seeded, manual_clock, poison, "plain_bug", others=1)
    timers.sweep(seeded, DUE)
    (inc,) = incidents_of(seeded, case_id=bad)
    number = case_row(seeded, bad).number
    with db.read(seeded) as s:
        for who in (SUPERVISOR_ZY, "supervisor", "admin", None):
            actor = user(seeded, who) if who else None
            assert [i["case_number"] for i in incidents.list_incidents(s, actor)] == [number], who
            assert incidents.show(s, inc.id, actor)["parked_timers"][0]["bpmn_id"] == "Timer_Review"
        other = user(seeded, SUPERVISOR_NX)
        assert incidents.list_incidents(s, other, "all") == []
        with pytest.raises(NotFound):
            incidents.show(s, inc.id, other)
        with pytest.raises(Forbidden):
            incidents.list_incidents(s, user(seeded, CLERK))
        with pytest.raises(InvalidInput):
            incidents.list_incidents(s, None, "bogus")
    with db.transaction(seeded) as s, pytest.raises(NotFound):
        incidents.resolve(s, inc.id, other, "not mine")
    assert incidents_of(seeded, case_id=bad)[0].status == "open"


# ------------------------------------------------------------------------------------------- warnings
def test_the_warning_sweep_goes_past_a_failing_case(seeded, manual_clock, monkeypatch):
    """Task_Review (PT72H) turns yellow after 48 h; the first case's check fails, the others get their card."""
    bad = relay_case(seeded, manual_clock)
    good = [relay_case(seeded, manual_clock) for _ in range(2)]
    state = Poison(bad)
    real = cases.evaluate_case

    def evaluate(session, cid, now):
        if state.active and cid == bad:
            state.calls += 1
            real(session, cid, now)  # writes, then fails: rolled back
            raise ZeroDivisionError("division by zero")
        return real(session, cid, now)
    monkeypatch.setattr(cases, "evaluate_case", evaluate)
    at = T0 + timedelta(hours=60)
    report = timers.sweep(seeded, at)
    assert report.cards == 2 and [(f["case_id"], f["kind"]) for f in report.failed] == [(bad, "warning")]
    assert cards_of(seeded, bad) == [] and all(cards_of(seeded, g) == ["yellow"] for g in good)
    (inc,) = incidents_of(seeded, case_id=bad)
    assert (inc.kind, inc.error_type, inc.element, inc.retry_count) == ("warning", "ZeroDivisionError",
                                                                        "Task_Review", 0)
    assert timers.sweep(seeded, at + timedelta(seconds=30)).failed == [] and state.calls == 1  # parked
    timers.sweep(seeded, at + FIRST)  # due: tried again, fails again
    assert state.calls == 2 and incidents_of(seeded, case_id=bad)[0].retry_count == 1
    state.active = False
    report = timers.sweep(seeded, at + 3 * FIRST)
    assert report.cards == 1 and cards_of(seeded, bad) == ["yellow"]
    assert incidents_of(seeded, case_id=bad)[0].status == "resolved"


def test_a_warning_check_that_does_not_advance_is_an_incident(seeded, manual_clock):
    """Real bad data: a ready step due for a check but without a due instant never moves its check."""
    bad = relay_case(seeded, manual_clock)
    good = relay_case(seeded, manual_clock)
    with db.transaction(seeded) as s:
        s.execute(update(TaskRow).where(TaskRow.case_id == bad, TaskRow.state == "ready")
                  .values(due_at=None, warning_check_at=T0))
    report = timers.sweep(seeded, T0 + timedelta(hours=60))
    assert [(f["case_id"], f["kind"]) for f in report.failed] == [(bad, "warning")]
    assert cards_of(seeded, good) == ["yellow"]
    (inc,) = incidents_of(seeded, case_id=bad)
    assert inc.error_type == "NoProgress"
    assert timers.sweep(seeded, T0 + timedelta(hours=60, seconds=1)).failed == []


def cards_of(engine, cid: int) -> list[str]:
    with db.read(engine) as s:
        return list(s.scalars(select(Card.color).where(Card.case_id == cid).order_by(Card.id)))


# ------------------------------------------------------------------------------------------- service day
SERVICE_DAY = date(2026, 11, 10)


def test_the_service_day_job_goes_past_a_failing_unit(seeded, manual_clock, monkeypatch):
    start(seeded)
    with db.read(seeded) as s:
        units = list(s.execute(select(OrgUnit.id, OrgUnit.code).where(OrgUnit.level.in_(service_day.DIGEST_LEVELS))
                               .order_by(OrgUnit.id)))
    bad_id, bad_code = next(u for u in units if u.code.startswith("430902"))  # the first one of 资阳区 it builds
    state = Poison(0)
    real = service_day.build_digest

    def build(session, unit, now, cal=None):
        if state.active and unit.id == bad_id:
            state.calls += 1
            raise RecursionError("maximum recursion depth exceeded")
        return real(session, unit, now, cal)
    monkeypatch.setattr(service_day, "build_digest", build)
    now = datetime(2026, 11, 10, 6, 0, tzinfo=clock.SHANGHAI)
    out = service_day.run(seeded, SERVICE_DAY, now=now)
    assert out["digests"] == len(units) - 1 and [f["unit_id"] for f in out["failed"]] == [bad_id]
    assert digest_units(seeded) == {u for u, _ in units} - {bad_id}
    (inc,) = incidents_of(seeded, kind="service_day")
    assert (inc.case_id, inc.unit_id, inc.element, inc.error_type) == (None, bad_id, "digest:2026-11-10",
                                                                      "RecursionError")
    assert audit_actions(seeded, None) == [("incident.opened", None)]
    again = service_day.run(seeded, SERVICE_DAY, now=now + timedelta(seconds=30))  # its retry is not due
    assert (again.get("failed"), again["held"], again["digests"], state.calls) == (None, 1, 0, 1)
    assert service_day.run(seeded, SERVICE_DAY, now=now + FIRST)["failed"][0]["unit_id"] == bad_id  # due: retried
    assert state.calls == 2 and incidents_of(seeded, kind="service_day")[0].retry_count == 1
    state.active = False
    assert service_day.retry_due(seeded, now + 3 * FIRST) == []  # the scheduler's sweep calls this
    assert digest_units(seeded) == {u for u, _ in units}
    assert incidents_of(seeded, kind="service_day")[0].status == "resolved"
    with db.read(seeded) as s:  # the county supervisor sees the unit's incident; another county's does not
        assert [i["unit_code"] for i in incidents.list_incidents(s, user(seeded, SUPERVISOR_ZY), "all")] == [bad_code]
        assert incidents.list_incidents(s, user(seeded, SUPERVISOR_NX), "all") == []


def digest_units(engine) -> set[int]:
    with db.read(engine) as s:
        return set(s.scalars(select(ServiceDayDigest.unit_id).where(ServiceDayDigest.service_date == SERVICE_DAY)))


# ------------------------------------------------------------------------------------------- CLI
def test_the_incidents_commands(seeded, db_url, manual_clock, poison, capsys):
    bad, _good, state = poisoned_world(seeded, manual_clock, poison, "plain_bug", others=1)
    timers.sweep(seeded, DUE)
    state.active = False
    number = case_row(seeded, bad).number

    def yicun(*args: str, code: int = 0) -> Any:
        rc = main(["--db", db_url, "--now", DUE.isoformat(), *args])
        out, err = capsys.readouterr()
        assert rc == code, (rc, out, err)
        return json.loads(out if rc == 0 else err) if "--json" in args else out

    (row,) = yicun("incidents", "list", "--json")
    assert (row["case_number"], row["kind"], row["element"], row["error_type"]) == (
        number, "timer", "Timer_Review", "AttributeError")
    assert number in yicun("incidents", "list", "--as", SUPERVISOR_ZY)
    assert yicun("incidents", "list", "--as", SUPERVISOR_NX).strip() == "no incidents"
    assert yicun("incidents", "show", str(row["id"]), "--json")["parked_timers"][0]["state"] == "failed"
    assert yicun("incidents", "show", "9999", "--json", code=4)["error"] == "not_found"
    assert yicun("incidents", "list", "--as", CLERK, "--json", code=5)["error"] == "forbidden"
    assert yicun("incidents", "resolve", str(row["id"]), "--note", " ", "--json", code=3)["error"] == "invalid_input"
    assert yicun("incidents", "retry", str(row["id"]), "--as", "admin", "--json")["next_retry_at"]
    assert timers.sweep(seeded, DUE).fired == 1
    assert yicun("incidents", "list", "--json") == []
    assert yicun("incidents", "list", "--status", "resolved", "--json")[0]["resolved_by"] is None
    assert yicun("incidents", "resolve", str(row["id"]), "--note", "x", "--json", code=6)["error"] == "conflict"
