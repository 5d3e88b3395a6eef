"""A case's history from its audit trail: the timeline (every event, who did it by name) and the steps
(acceptance and each completed task, with the form data submitted there, labelled from the step's form).

Both are read from the audit events alone — the form data a step submitted is in its `task.completed`
event, what was given at acceptance in `case.started` — so the case page shows everything entered so
far without restoring the workflow that carries the same data.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..models import AuditEvent, User
from ..vocab import AuditAction, Level, Role
from .models import CaseStep, StepField, TaskItem, TimelineEntry

#: user id → (username, the person's name)
Actors = Mapping[int, tuple[str, str]]


def audit_events(session: Session, case_id: int) -> tuple[Sequence[AuditEvent], Actors]:
    """A case's audit events in order, and the people who appear in them (two queries, whatever the length)."""
    events = session.scalars(select(AuditEvent).where(AuditEvent.case_id == case_id).order_by(AuditEvent.id)).all()
    actors = {uid: (name, shown) for uid, name, shown in session.execute(
        select(User.id, User.username, User.display_name).distinct()
        .join(AuditEvent, AuditEvent.actor_id == User.id).where(AuditEvent.case_id == case_id))}
    return events, actors


def who_did(event: AuditEvent, actors: Actors) -> tuple[str, str]:
    """(`actor`, `actor_name`) of an event: a user's username and name; the server's operator by login
    (服务器操作员（login）); or "system" / 系统 for the engine's own moves (timers, sweeps)."""
    if event.actor_id is not None and event.actor_id in actors:
        return actors[event.actor_id]
    operator = (event.details or {}).get("operator")
    if operator:
        return operator, f"{Role.OPERATOR.zh}（{operator.removeprefix('operator:')}）"
    return "system", "系统"


def timeline(events: Iterable[AuditEvent], actors: Actors) -> tuple[TimelineEntry, ...]:
    return tuple(TimelineEntry(e.at, *who_did(e, actors), e.action, e.old_value, e.new_value, e.details or {})
                 for e in events)


def _fields(data: Any, declared: Sequence[Mapping[str, Any]], labels: Mapping[str, Mapping[str, Any]]
            ) -> tuple[StepField, ...]:
    """The submitted values in the order of the step's form, each with its label (and, for an enum, the
    name of the chosen option); a value the form does not declare (an older version's) by its id."""
    if not isinstance(data, Mapping):
        return ()
    order = [f["id"] for f in declared if f.get("id") in data]
    order += [k for k in data if k not in order]
    out = []
    for fid in order:
        meta = next((f for f in declared if f.get("id") == fid), None) or labels.get(fid) or {}
        value = data[fid]
        choice = next((str(o[1]) for o in meta.get("options") or () if o and o[0] == value), None)
        out.append(StepField(str(fid), str(meta.get("label") or fid), value, choice))
    return tuple(out)


def case_steps(events: Iterable[AuditEvent], actors: Actors, tasks: Sequence[TaskItem],
               task_meta: Mapping[str, Any], village: str) -> tuple[CaseStep, ...]:
    """Acceptance and every completed task, in order, with what each submitted. Labels come from the
    step's own form in the process version's metadata; values given at acceptance take the label of the
    first form that declares them."""
    by_id = {t.id: t for t in tasks}
    labels: dict[str, Mapping[str, Any]] = {}
    for meta in task_meta.values():
        for f in (meta or {}).get("fields") or ():
            labels.setdefault(f["id"], f)
    steps = []
    for e in events:
        details = e.details or {}
        if e.action == AuditAction.CASE_STARTED:
            by, by_name = who_did(e, actors)
            steps.append(CaseStep(None, None, AuditAction.CASE_STARTED.zh, Level.VILLAGE.value, village, by,
                                  by_name, e.at, _fields(details.get("data") or {}, (), labels)))
        elif e.action == AuditAction.TASK_COMPLETED:
            task_id = details.get("task_id") if isinstance(details.get("task_id"), int) else None
            task = by_id.get(task_id) if task_id is not None else None
            bpmn_id = task.bpmn_id if task else None
            declared = (task_meta.get(bpmn_id or "") or {}).get("fields") or ()
            name = str(details.get("task") or (task.name if task else ""))
            by, by_name = who_did(e, actors)
            steps.append(CaseStep(task_id, bpmn_id, name, task.level if task else None, task.unit if task else None,
                                  by, by_name, e.at,
                                  _fields(details.get("data") or {}, declared, labels)))
    return tuple(steps)
