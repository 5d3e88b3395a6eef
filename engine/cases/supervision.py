"""What a supervisor does about late work, and how the people who did it answer: 督办 and 情况说明.

- `supervise` (督办): a supervisor whose subtree holds the case (`policy.may_supervise`) sends a reminder
  with a message on a case or one of its current steps that is at risk — due soon (yellow) or overdue
  (red). It is recorded (`supervisions`: the step, the unit that owns it and its holder at that moment,
  who sent it, when, the message), told to the step's holder if someone claimed it and to every worker of
  the owning unit (at county level, of the step's department) as notifications of kind `supervision`, and
  audited (`case.supervised`). A case and its steps all on time are refused (`supervision.not_at_risk`):
  督办 is for cases at risk, and one sent on a green case would count against a unit in the reports for
  nothing. A 督办 on the case as a whole goes to every current step (the record names the one due first).
- `explain_card` (情况说明): the people a yellow or red card names (the first-responsibility clerk, the
  step's holder) or a worker of the unit it was issued to write why the work ran late, once per card
  (`card.already_explained`, backed by the unique constraint on `card_explanations.card_id`). The card is
  an immutable record and stays as issued; the explanation is a record of its own, audited
  (`card.explained`).

Reassigning a step inside a supervisor's subtree needs nothing here: `service.reassign_task` takes a
reason and lets a lead of the step's unit (`policy.leads`: supervisors above it) hand it to a worker of
that unit (`policy.may_receive`).

Like every writer of case state these run in the caller's transaction and lock the case row first
(`store.case_by_number`), so they are serialised with the step verbs; a case the actor may not see is
NotFound (the unknown number's answer). The notifications carry no task id: the partial unique index over
(user, task, kind) is the sweep's one-notice-per-step guard, and a second 督办 on the same step must
reach its people again.
"""
from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from .. import clock, forms, policy
from ..errors import Conflict, NotFound
from ..models import T_CARD, T_CARD_EXPL, T_CASE, T_NOTE, T_SUPERVISION, T_TASK, T_USER
from ..policy import Actor, Chain, as_actor
from ..vocab import WarningLevel
from . import audit, store
from .casework import clean_note, locked_visible_case, require_open_case, task_of
from .warnings import workers_of

#: the longest 督办 message (the column's size)
MAX_MESSAGE = 500
#: the longest 情况说明 (the column's size)
MAX_EXPLANATION = 1000
#: the warning levels a 督办 is for
AT_RISK = frozenset({WarningLevel.YELLOW.value, WarningLevel.RED.value})
#: the notification kind of a 督办
KIND = "supervision"


def _at_risk(level: str | None, due_at: datetime | None, now: datetime) -> bool:
    """Due soon or overdue: the stored level (the sweep's), or a due already passed that the sweep has not
    looked at yet — a late step must not be refused as on time because the sweep runs every few minutes."""
    return level in AT_RISK or (due_at is not None and due_at <= now)


def notice(number: str, step: str | None, who: str, message: str) -> str:
    """The notification's text (web.engine_texts.FORMS reads it in English): the message last, so the
    column's bound can only shorten the message, never lose the case or the sender."""
    where = f"{number}「{step}」" if step else number
    return f"督办 {where}（{who}）：{message}"


def supervise(session: Session, number: str, actor: Actor | Any, message: str, task_id: int | None = None,
              now: datetime | None = None) -> int:
    """督办 on open case `number` — on its step `task_id`, or on the case as a whole — with `message`, by a
    supervisor whose subtree holds the case; returns the supervision's id. Refusals: NotFound (a case the
    actor may not see, a step not of this case), Forbidden `case.supervise` (not a supervisor over it),
    Conflict `case.not_open`, `task.not_open` (the step is done), `supervision.not_at_risk` (on time)."""
    actor = as_actor(actor)
    now = now or clock.now()
    message = forms.clean_text(clean_note(message), "the 督办 message", MAX_MESSAGE, field="message")
    case = locked_visible_case(session, number, actor)
    policy.require(policy.may_supervise(actor, Chain.of(case)), "case.supervise",
                   f"{actor.username} does not supervise case {number}", case=number)
    require_open_case(case)
    conn = store.conn(session)
    task = task_of(session, case, task_id)
    if task is not None:
        if task["state"] != "ready":
            raise Conflict(f"step {task['name']} of case {number} is {task['state']}", reason="task.not_open",
                           step=task["name"], state=task["state"])
        steps = [task]
        at_risk = _at_risk(task["warning_level"], task["due_at"], now)
    else:
        steps = list(conn.execute(select(T_TASK).where(T_TASK.c.case_id == case["id"], T_TASK.c.state == "ready")
                                  .order_by(T_TASK.c.due_at, T_TASK.c.id)).mappings())
        at_risk = (_at_risk(case["warning_level"], case["promised_due_at"] or case["legal_due_at"], now)
                   or any(_at_risk(t["warning_level"], t["due_at"], now) for t in steps))
    if not at_risk:
        raise Conflict(f"case {number} is on time; 督办 is for cases due soon or overdue",
                       reason="supervision.not_at_risk", case=number)
    first = steps[0] if steps else None  # a case with no current step (公示): its village answers for it
    supervision_id = int(conn.execute(insert(T_SUPERVISION).returning(T_SUPERVISION.c.id).values(
        case_id=case["id"], task_id=task["id"] if task else None,
        unit_id=first["unit_id"] if first else case["village_id"],
        assignee_id=first["assignee_id"] if first else None, sent_by_id=actor.id, sent_at=now,
        message=message)).scalar_one())
    people = _people(session, steps, case)
    people.discard(actor.id)
    text = notice(number, task["name"] if task else None, actor.display_name or actor.username, message)
    if people:
        conn.execute(insert(T_NOTE), [dict(user_id=u, case_id=case["id"], card_id=None, task_id=None, kind=KIND,
                                           created_at=now, read_at=None, message=text[:500])
                                      for u in sorted(people)])
    audit.record(session, "case.supervised", at=now, actor_id=actor.id, case_id=case["id"],
                 supervision_id=supervision_id, task_id=task["id"] if task else None,
                 task=task["name"] if task else None, unit_id=first["unit_id"] if first else case["village_id"],
                 assignee_id=first["assignee_id"] if first else None, message=message, notified=len(people),
                 **actor.audit_details)
    return supervision_id


def _people(session: Session, steps: list[Mapping[str, Any]], case: Mapping[str, Any]) -> set[int]:
    """Whom a 督办 reaches: each step's holder, and everyone who may work on it (`policy.may_work_on` as
    SQL); with no current step, the workers of the case's village."""
    conn = store.conn(session)
    people: set[int] = set()
    for step in steps:
        if step["assignee_id"] is not None:
            people.add(step["assignee_id"])
        people.update(conn.execute(select(T_USER.c.id).where(workers_of(step["unit_id"],
                                                                         step["candidate_group"]))).scalars())
    if not steps:
        people.update(conn.execute(select(T_USER.c.id).where(workers_of(case["village_id"], None))).scalars())
    return people


def explain_card(session: Session, card_id: int, actor: Actor | Any, explanation: str,
                 now: datetime | None = None) -> str:
    """The 情况说明 of card `card_id`, by someone it names or a worker of its unit
    (`policy.may_explain_card`), once; returns the case's number. The card row is not touched. Refusals:
    NotFound `card.not_found` (no such card, or on a case the actor may not see), Forbidden `card.explain`,
    Conflict `card.already_explained`."""
    actor = as_actor(actor)
    now = now or clock.now()
    explanation = forms.clean_text(clean_note(explanation), "the explanation", MAX_EXPLANATION, field="explanation")
    number = None
    if isinstance(card_id, int) and not isinstance(card_id, bool):
        number = session.scalar(select(T_CASE.c.number).join(T_CARD, T_CARD.c.case_id == T_CASE.c.id)
                                .where(T_CARD.c.id == card_id))
    if number is None:
        raise _no_card(card_id)
    try:
        case = locked_visible_case(session, number, actor)  # locks the case: one explanation at a time
    except NotFound:  # an id must not tell whether it exists on a case the reader may not see
        raise _no_card(card_id) from None
    conn = store.conn(session)
    card = conn.execute(select(T_CARD).where(T_CARD.c.id == card_id)).mappings().one()
    group = conn.scalar(select(T_TASK.c.candidate_group).where(T_TASK.c.id == card["task_id"])) \
        if card["task_id"] is not None else None
    policy.require(policy.may_explain_card(actor, card["responsible_clerk_id"], card["assignee_id"], card["unit_id"],
                                           group),
                   "card.explain", f"{actor.username} may not explain card {card_id}", card_id=card_id)
    if conn.execute(select(T_CARD_EXPL.c.id).where(T_CARD_EXPL.c.card_id == card_id)).first() is not None:
        raise _already(card_id)
    try:
        explanation_id = int(conn.execute(insert(T_CARD_EXPL).returning(T_CARD_EXPL.c.id).values(
            card_id=card_id, author_id=actor.id, at=now, explanation=explanation)).scalar_one())
    except IntegrityError:  # written at the same moment by another request (the unique constraint)
        raise _already(card_id) from None
    audit.record(session, "card.explained", at=now, actor_id=actor.id, case_id=case["id"], card_id=card_id,
                 explanation_id=explanation_id, color=card["color"], subject=card["subject"],
                 task_id=card["task_id"], explanation=explanation, **actor.audit_details)
    return str(number)


def _no_card(card_id: Any) -> NotFound:
    return NotFound(f"no card {card_id}", reason="card.not_found", card_id=str(card_id))


def _already(card_id: int) -> Conflict:
    return Conflict(f"card {card_id} has been explained already; a card is explained once",
                    reason="card.already_explained", card_id=card_id)
