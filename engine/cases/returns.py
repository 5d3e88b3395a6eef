"""退回补正: a step above the village finds a document missing or insufficient and sends the case back to
the village for it. The case's clock stops (a 补正 pause: the time the applicant takes does not count),
the step stays where it is (its worker goes on once the documents are in), and the people who can fetch
the documents — the first-responsibility clerk, else the village's clerks — are told. When the
documents are in, a clerk restarts the clock (`sla.resume_case`) and the step's worker is told.
"""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from .. import clock, forms, policy
from ..errors import Conflict
from ..models import T_NOTE, User
from ..policy import Actor, as_actor
from ..vocab import Role
from . import service, sla, store


def return_for_supplement(session: Session, task_id: int, actor: Actor | User, reason: str,
                          now: datetime | None = None) -> store.StepResult:
    """Return the case of ready task `task_id` to its village for documents (see the module docstring).
    Only someone who may work the step may return it; a case already waiting is refused."""
    actor = as_actor(actor)
    now = now or clock.now()
    reason = forms.clean_text(reason, "the reason for returning the case", 500, field="reason")
    task, case = store.task_with_case(session, task_id)
    service.require_open(task)
    policy.require(policy.may_work_on(actor, task["unit_id"], task["candidate_group"]), "task.work",
                   f"{actor.username} may not work on task {task_id}", task_id=task_id)
    if task["unit_id"] == case["village_id"]:
        raise Conflict("the village itself asks the applicant for documents (一次性告知); a return is for the "
                       "levels above it", reason="task.return_at_village", task_id=task_id)
    result = sla.pause_case(session, case["number"], actor, reason=f"退回补正：{reason}", kind="supplement", now=now)
    village_id, first = case["village_id"], case["first_clerk_id"]
    users = [first] if first and session.scalar(select(User.active).where(User.id == first)) else \
        list(session.scalars(select(User.id).where(User.unit_id == village_id, User.role == Role.CLERK,
                                                   User.active.is_(True))))
    message = f"办件 {case['number']} 被退回补正（{task['name']}）：{reason}"
    if users:
        store.conn(session).execute(insert(T_NOTE), [dict(user_id=u, case_id=case["id"], card_id=None, task_id=None,
                                                          kind="returned", created_at=now, read_at=None,
                                                          message=message[:500]) for u in users])
    store.write_audit(session, [dict(case_id=case["id"], actor_id=actor.id, at=now, action="task.returned",
                                     details={"task_id": task_id, "task": task["name"], "reason": reason,
                                              "notified": users},
                                     old_value=None, new_value="supplement")])
    return result
