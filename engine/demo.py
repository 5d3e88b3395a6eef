"""Demo cases for `yicun init --demo`: a few applications at different stages, so a fresh demo shows
full inboxes at village, township and county level. Everything goes through the real services."""
from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import Engine, func, select

from . import cases, clock, db, orgs
from .models import Case, ProcessVersion, TaskRow, User

#: (service, village code, applicant, how many steps to complete, decision)
DEMO_CASES = [
    ("MZ-01", "430902102201", "符建英", 0, "approve"),
    ("MZ-01", "430902102201", "邹德福", 2, "approve"),
    ("RS-02", "430902102201", "盛秋兰", 1, "approve"),
    ("RS-02", "430902102201", "曾建国", 2, "approve"),
    ("ZR-01", "430902102201", "邹春林", 1, "approve"),
    ("ZR-01", "430902102201", "黄志强", 4, "approve"),
    ("RS-02", "430902102201", "蒋玉珍", 2, "reject"),
]


def sample_form(fields: list[dict[str, Any]], decision: str = "approve") -> dict[str, Any]:
    """Plausible values for every field of a task form; enums take `decision` where it is offered."""
    data: dict[str, Any] = {}
    today = clock.local(clock.now()).date().isoformat()
    for f in fields:
        kind = f["type"]
        if kind == "enum":
            options = [o[0] for o in f["options"]]
            data[f["id"]] = decision if decision in options else options[0]
        elif kind == "boolean":
            data[f["id"]] = True
        elif kind == "long":
            data[f["id"]] = 2
        elif kind == "date":
            data[f["id"]] = today
        elif "id_number" in f["id"]:
            data[f["id"]] = "430902196601020023"
        else:
            data[f["id"]] = "材料齐全，情况属实"
    return data


def _worker(session: Any, task: TaskRow) -> User:
    if task.assignee_id:
        return session.get(User, task.assignee_id)
    for user in session.scalars(select(User).where(User.unit_id == task.unit_id).order_by(User.username)):
        if cases.can_work_on(user, task.unit_id, task.candidate_group):
            return user
    raise LookupError(f"nobody can work on task {task.id}")


def create_demo_cases(engine: Engine) -> list[str]:
    """Start the demo cases (once: skipped when the database already has cases)."""
    with db.read(engine) as s:
        if s.scalar(select(func.count()).select_from(Case)):
            return []
    numbers = []
    three_days_ago = clock.local(clock.now()) - timedelta(days=3)
    start = three_days_ago.replace(hour=9, minute=0, second=0, microsecond=0)  # office hours, for realism
    for i, (service, village, applicant, steps, decision) in enumerate(DEMO_CASES):
        at = start + timedelta(minutes=40 * i)
        with db.transaction(engine) as s:
            clerk = orgs.list_users(s, "clerk", village, limit=1)[0]
            number = cases.start_case(s, service_code=service, village_code=village, applicant_name=applicant,
                                      actor=clerk, now=at).case_number
        numbers.append(number)
        for step in range(steps):
            at += timedelta(hours=3)
            with db.transaction(engine) as s:
                task = s.scalar(select(TaskRow).join(Case).where(Case.number == number, TaskRow.state == "ready")
                                .order_by(TaskRow.id))
                if task is None:
                    break
                meta = s.scalar(select(ProcessVersion.task_meta).join(Case).where(Case.number == number))
                form = sample_form(meta.get(task.bpmn_id, {}).get("fields", []), decision)
                cases.complete_task(s, task.id, _worker(s, task), form, now=at)
    return numbers
