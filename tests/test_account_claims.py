"""An account that can no longer work on the tasks it claimed gives them back: disabled, or moved to another
unit, role or department. Otherwise the step would wait on someone who cannot open it, and nobody else
could pick it up."""
from __future__ import annotations

from sqlalchemy import Engine, select

from engine import accounts, db
from engine.models import AuditEvent, TaskRow
from engine.policy import Actor

from .conftest import CLERK, start

OPERATOR = Actor.operator("root")


def held_by_clerk(engine: Engine) -> tuple[int, int]:
    """A village step the clerk holds (they took the application, so it is theirs) and the clerk's id."""
    r = start(engine)
    with db.read(engine) as s:
        task = s.scalars(select(TaskRow).where(TaskRow.id.in_(r.opened_tasks))).one()
    assert task.assignee_id is not None
    return task.id, task.assignee_id


def task_and_audit(engine: Engine, task_id: int) -> tuple[int | None, list[tuple[str, dict]]]:
    with db.read(engine) as s:
        task = s.get(TaskRow, task_id)
        rows = s.scalars(select(AuditEvent).where(AuditEvent.action == "task.unclaimed")).all()
        return task.assignee_id, [(r.old_value, r.details) for r in rows]


def test_disabling_an_account_gives_its_claimed_tasks_back(seeded):
    task_id, clerk_id = held_by_clerk(seeded)
    with db.transaction(seeded) as s:
        accounts.disable_user(s, OPERATOR, CLERK)
    assignee, unclaimed = task_and_audit(seeded, task_id)
    assert assignee is None
    assert [(old, d["task_id"], d["why"], d["operator"]) for old, d in unclaimed] == \
        [(str(clerk_id), task_id, "user.disabled", "operator:root")]


def test_moving_an_account_to_another_village_gives_its_tasks_back(seeded):
    task_id, _ = held_by_clerk(seeded)
    with db.transaction(seeded) as s:
        accounts.update_user(s, OPERATOR, CLERK, unit_code="430921101201")
    assignee, unclaimed = task_and_audit(seeded, task_id)
    assert assignee is None and [d["why"] for _, d in unclaimed] == ["user.updated"]


def test_a_change_that_keeps_the_work_keeps_the_claims(seeded):
    task_id, clerk_id = held_by_clerk(seeded)
    with db.transaction(seeded) as s:
        accounts.update_user(s, OPERATOR, CLERK, display_name="符秋兰")
    assert task_and_audit(seeded, task_id) == (clerk_id, [])
