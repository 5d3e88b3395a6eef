"""Demo cases for `yicun init --demo`: a few applications at different stages, so a fresh demo shows
full inboxes at village, township and county level. Everything goes through the real services."""
from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import Engine, func, select

from . import cases, clock, db, orgs, patterns, policy
from .forms import CASE_FIELDS
from .models import Case, ProcessVersion, TaskRow, User
from .policy import Actor

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


_TEXT_SAMPLES = ("430902196601020023", "13907371234", "6217001234567890123", "430902102201", "湘H12345",
                 "材料齐全，情况属实", "2026", "A1", "12345678", "符建英", "0737-4221234", "A12345678",
                 "43090219660102002311", "Q430123456")
_SAMPLE_BIRTH_DATE = "1966-01-02"  # the birth date inside the first sample, an ID number


def sample_form(fields: list[dict[str, Any]], decision: str = "approve") -> dict[str, Any]:
    """Plausible values for every field of a task form, within its constraints; enums take `decision`
    where it is offered."""
    data: dict[str, Any] = {}
    today = clock.local(clock.now()).date().isoformat()
    for f in fields:
        if f["id"] in CASE_FIELDS:
            continue  # shown read-only: the case fields are set at acceptance
        kind, cons = f["type"], f.get("constraints") or {}
        if kind == "enum":
            options = [o[0] for o in f["options"]]
            data[f["id"]] = decision if decision in options else options[0]
        elif kind == "boolean":
            data[f["id"]] = True
        elif kind == "long":
            low = int(float(cons.get("min", 1)))
            high = int(float(cons.get("max", max(low, 2))))
            data[f["id"]] = min(max(low, 2), high)
        elif kind == "date":  # a birth date is the sample ID number's (1966-01-02), not the day of the demo
            data[f["id"]] = _SAMPLE_BIRTH_DATE if "birth" in f["id"] else today
        else:
            pattern = cons.get("pattern")
            if pattern:
                value = next((c for c in _TEXT_SAMPLES if patterns.full_match(pattern, c)), "材料齐全，情况属实")
            else:
                value = _TEXT_SAMPLES[0] if "id_number" in f["id"] else "材料齐全，情况属实"
            if "maxlength" in cons:
                value = value[: int(cons["maxlength"])]
            data[f["id"]] = value
    return data


def eligible_worker(session: Any, task: TaskRow) -> User:
    """Who would pick the task up: its assignee, else the first user of its unit allowed to work on it."""
    if task.assignee_id:
        return session.get(User, task.assignee_id)
    for user in session.scalars(select(User).where(User.unit_id == task.unit_id).order_by(User.username)):
        if policy.may_work_on(Actor.of(user), task.unit_id, task.candidate_group):
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
        for _ in range(steps):
            at += timedelta(hours=3)
            with db.transaction(engine) as s:
                task = s.scalar(select(TaskRow).join(Case).where(Case.number == number, TaskRow.state == "ready")
                                .order_by(TaskRow.id))
                if task is None:
                    break
                meta = s.scalars(select(ProcessVersion.task_meta).join(Case).where(Case.number == number)).one()
                form = sample_form(meta.get(task.bpmn_id, {}).get("fields", []), decision)
                cases.complete_task(s, task.id, eligible_worker(s, task), form, now=at)
    return numbers
