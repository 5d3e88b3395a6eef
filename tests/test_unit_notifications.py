"""Issue #9 §6: a step that turns due-soon (yellow) or overdue (red) while nobody has claimed it tells every
worker of the unit who could pick it up — not only the supervisors — once per person and colour, however
often the sweep looks; a claimed step tells its holder (through its card) and nobody else of the unit; at
county level only the officers of the step's department. On SQLite and PostgreSQL."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import select, update

from engine import cases, db, orgs, queries, timers
from engine.cases import warnings
from engine.clock import SHANGHAI
from engine.models import Notification, TaskRow, User

from .conftest import (
    AGENT,
    AGENT2,
    CLERK,
    CLERK2,
    COUNTY_MZ,
    COUNTY_RS,
    TOWNSHIP,
    complete,
    form_for,
    ready_tasks,
    start,
    user,
)

OTHER_AGENT = "agent-430902103-1"  # the other township of the same county


def sh(*args: int) -> datetime:
    return datetime(*args, tzinfo=SHANGHAI)


def notes(engine, kind_prefix: str | None = "unclaimed_") -> list[tuple[str, str | None, int | None, str]]:
    """(username, kind, task id, message) of the notifications whose kind starts so (None: all of them,
    the cards' too), in insertion order."""
    stmt = (select(Notification, User.username).join(User, User.id == Notification.user_id)
            .order_by(Notification.id))
    if kind_prefix is not None:
        stmt = stmt.where(Notification.kind.like(kind_prefix + "%"))
    with db.read(engine) as s:
        return [(u, n.kind, n.task_id, n.message) for n, u in s.execute(stmt)]


def to_township(engine) -> tuple[str, TaskRow]:
    """An FX-PENSION case (Mon 11-02 09:00) past its village intake: the township review (3 working days,
    due 24:00 Thu 11-05, yellow from 00:00 Wed 11-04, red from 00:00 Fri 11-06) waits in the township's queue."""
    number = start(engine, service="FX-PENSION").case_number
    (intake,) = ready_tasks(engine, number)
    complete(engine, intake.id, CLERK, form_for(engine, intake))
    (review,) = ready_tasks(engine, number)
    assert review.level == "township" and review.assignee_id is None
    return number, review


def test_an_unclaimed_step_turning_yellow_then_red_tells_every_worker_of_its_unit_once(seeded):
    number, review = to_township(seeded)
    with db.transaction(seeded) as s:  # a disabled account hears nothing
        s.execute(update(User).where(User.username == AGENT2).values(active=False))
    timers.sweep(seeded, sh(2026, 11, 3, 23, 59))
    assert notes(seeded) == []  # still green
    timers.sweep(seeded, sh(2026, 11, 4, 0, 1))
    yellow = notes(seeded)
    assert sorted(u for u, *_ in yellow) == sorted([AGENT, TOWNSHIP])
    assert {(k, t) for _, k, t, _ in yellow} == {("unclaimed_yellow", review.id)}
    assert yellow[0][3] == f"无人领取 {number}: 环节「乡镇社保所审核」将到期（2026-11-05）"
    for at in (sh(2026, 11, 4, 9, 0), sh(2026, 11, 5, 23, 59)):  # the sweep looks again: nobody twice
        timers.sweep(seeded, at)
        assert notes(seeded) == yellow
    timers.sweep(seeded, sh(2026, 11, 6, 0, 1))
    red = notes(seeded)[len(yellow):]
    assert sorted(u for u, *_ in red) == sorted([AGENT, TOWNSHIP])
    assert {k for _, k, _, _ in red} == {"unclaimed_red"}
    assert red[0][3] == f"无人领取 {number}: 环节「乡镇社保所审核」已超时（2026-11-05）"
    timers.sweep(seeded, sh(2026, 11, 9, 10, 0))
    assert notes(seeded) == yellow + red
    everyone = {u for u, *_ in notes(seeded, None)}
    assert not everyone & {CLERK, CLERK2, OTHER_AGENT, COUNTY_MZ, COUNTY_RS}  # other units hear nothing
    with db.read(seeded) as s:  # the supervisors' card notifications are as they were
        supervisors = set(s.scalars(select(User.username).join(Notification, Notification.user_id == User.id)
                                    .where(Notification.card_id.is_not(None))))
        agent = orgs.actor_by_name(s, AGENT)
        page = queries.notification_page(s, agent, limit=10)
        counts = queries.inbox_counts(s, agent, now=sh(2026, 11, 9, 10, 0))
    assert supervisors == {"supervisor", "supervisor-430902"}
    red_note, yellow_note = page.items
    assert (red_note.kind, yellow_note.kind) == ("unclaimed_red", "unclaimed_yellow") and page.next_cursor is None
    assert red_note.task_id == review.id and red_note.case_number == number
    assert (red_note.colour, yellow_note.colour) == ("red", "yellow")
    assert counts.unread == 2 and counts.queue == 1 and counts.overdue == 1


def test_a_claimed_step_tells_only_its_holder_and_a_release_tells_the_rest(seeded):
    number, review = to_township(seeded)
    with db.transaction(seeded) as s:
        cases.claim_task(s, review.id, user(seeded, AGENT))
    timers.sweep(seeded, sh(2026, 11, 4, 0, 1))
    assert notes(seeded) == []  # nobody of the unit is told about a step someone holds …
    with db.read(seeded) as s:  # … but its holder, through the card's notification
        told = set(s.scalars(select(User.username).join(Notification, Notification.user_id == User.id)
                             .where(Notification.card_id.is_not(None))))
    assert AGENT in told and not told & {AGENT2, TOWNSHIP, CLERK}
    with db.transaction(seeded) as s:  # given back to the queue while yellow: the others hear of it now
        cases.unclaim_task(s, review.id, user(seeded, AGENT), now=sh(2026, 11, 5, 9, 0))
    assert sorted(u for u, *_ in notes(seeded)) == sorted([AGENT2, TOWNSHIP])
    with db.transaction(seeded) as s:  # claimed and released again: nobody is told twice
        cases.claim_task(s, review.id, user(seeded, AGENT2), now=sh(2026, 11, 5, 10, 0))
    with db.transaction(seeded) as s:
        cases.unclaim_task(s, review.id, user(seeded, AGENT2), now=sh(2026, 11, 5, 11, 0))
    assert sorted(u for u, *_ in notes(seeded)) == sorted([AGENT2, TOWNSHIP, AGENT])
    with db.transaction(seeded) as s:  # held when it turns red: only the holder's card says so
        cases.claim_task(s, review.id, user(seeded, AGENT2), now=sh(2026, 11, 5, 12, 0))
    timers.sweep(seeded, sh(2026, 11, 6, 0, 1))
    assert all(k == "unclaimed_yellow" for _, k, _, _ in notes(seeded))


def test_a_county_step_tells_only_the_officers_of_its_department(seeded):
    number, review = to_township(seeded)
    complete(seeded, review.id, AGENT, form_for(seeded, review))
    (approve,) = ready_tasks(seeded, number)
    assert (approve.level, approve.candidate_group, approve.assignee_id) == ("county", "人社", None)
    timers.sweep(seeded, approve.due_at)  # overdue (red) the instant its due passes
    told = notes(seeded)
    assert [(u, k, t) for u, k, t, _ in told] == [(COUNTY_RS, "unclaimed_red", approve.id)]
    timers.sweep(seeded, sh(2026, 11, 30))
    assert notes(seeded) == told


def test_a_county_step_for_no_department_tells_every_officer_of_the_county(seeded):
    """`notify_unclaimed` on its own: a county step naming no department is any county officer's."""
    number, review = to_township(seeded)
    complete(seeded, review.id, AGENT, form_for(seeded, review))
    (approve,) = ready_tasks(seeded, number)
    with db.read(seeded) as s:
        officers = set(s.scalars(select(User.username).where(User.role == "county_officer",
                                                             User.unit_id == approve.unit_id)))
        case_id = approve.case_id
    task = {"id": approve.id, "name": approve.name, "unit_id": approve.unit_id, "candidate_group": None,
            "assignee_id": None, "due_at": approve.due_at}
    for _ in range(2):
        with db.transaction(seeded) as s:
            told = warnings.notify_unclaimed(s, task=task, case_id=case_id, case_number=number, color="yellow",
                                             now=approve.due_at)
        assert told == (len(officers) if _ == 0 else 0)
    assert {u for u, *_ in notes(seeded)} == officers and len(officers) == 15
    assert COUNTY_MZ in officers and "officer-430921-mz" not in officers  # 南县's are another county's
