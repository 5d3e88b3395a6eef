"""The case tables' one door: prebuilt Core statements, loading a case once (row locked), restoring its
workflow, the one version-checked save, and the audit rows.

Why prebuilt: SQLAlchemy caches the compiled form of a statement *object*, so building the hot path's
statements once (with bindparams) instead of per call makes each execution ~5× cheaper; the engine step
budget (benchmarks/engine_step.py) depends on it. Why here: DESIGN invariant 1 — only `engine.cases`
writes case, task, timer, pause, card and audit rows (tests/test_layout.py checks it).
"""
from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, insert, literal_column, select, update
from sqlalchemy.orm import Session

from .. import clock, db
from ..bpmn import Instance
from ..errors import Conflict, NotFound, WorkflowError
from ..models import T_CASE, T_PAUSE, T_PV, T_SEQ, T_TASK, T_TIMER, Pause
from ..processes import LoadedSpec, case_spec_key, load_spec
from . import audit

# Prebuilt statements for the write path. SQLAlchemy caches the compiled form of a statement object,
# so building these once (with bindparams) instead of per call makes each execution ~5× cheaper;
# the engine step budget (benchmarks/engine_step.py) depends on it.
CASE_COLUMNS = (T_CASE.c.id, T_CASE.c.number, T_CASE.c.status, T_CASE.c.version, T_CASE.c.instance_json,
                 T_CASE.c.village_id, T_CASE.c.township_id, T_CASE.c.county_id, T_CASE.c.first_clerk_id,
                 T_CASE.c.process_version_id, T_CASE.c.paused_at, T_PV.c.sha256, T_PV.c.process_id,
                 T_PV.c.calls.label("process_calls"))  # with sha256 and process_id: the spec cache key
_TASK_COLUMNS = tuple(T_TASK.c[name].label(f"task_{name}") for name in (
    "id", "case_id", "spiff_task_id", "bpmn_id", "name", "unit_id", "candidate_group", "assignee_id", "state",
    "warning_level", "created_at"))
SEL_CASE = (select(*CASE_COLUMNS).join(T_PV, T_PV.c.id == T_CASE.c.process_version_id)
             .where(T_CASE.c.id == bindparam("case_id")))
SEL_TASK_CASE = (select(*_TASK_COLUMNS, *CASE_COLUMNS)
                  .join(T_CASE, T_CASE.c.id == T_TASK.c.case_id)
                  .join(T_PV, T_PV.c.id == T_CASE.c.process_version_id)
                  .where(T_TASK.c.id == bindparam("task_id")))
# The SLA verbs (pause, resume, extend) find the case by number and need its clock columns too: one
# statement reads the whole row with the lock, so they need neither an id lookup nor a second read.
SEL_CASE_BY_NUMBER = (select(T_CASE, T_PV.c.sha256, T_PV.c.process_id, T_PV.c.calls.label("process_calls"))
                      .join(T_PV, T_PV.c.id == T_CASE.c.process_version_id)
                      .where(T_CASE.c.number == bindparam("number")))
_LOCKED = {id(stmt): stmt.with_for_update(of=T_CASE) for stmt in (SEL_CASE, SEL_TASK_CASE, SEL_CASE_BY_NUMBER)}
# the step's working time (`workdays.work_hundredths`, what the reports of where cases wait count) is written
# with its completion; a cancelled step has none
UPD_TASK_DONE = (update(T_TASK).where(T_TASK.c.id == bindparam("b_id"), T_TASK.c.state == "ready")
                  .values(state="completed", completed_at=bindparam("b_now"), completed_by_id=bindparam("b_actor"),
                          assignee_id=bindparam("b_actor"), work_hundredths=bindparam("b_work"),
                          warning_check_at=None))  # nothing left to check
UPD_TASKS_CANCEL = (update(T_TASK).where(T_TASK.c.case_id == bindparam("b_case"),
                                          T_TASK.c.spiff_task_id.in_(bindparam("b_ids", expanding=True)),
                                          T_TASK.c.state == "ready")
                     .values(state="cancelled", completed_at=bindparam("b_now"), warning_check_at=None)
                     .returning(T_TASK.c.id, T_TASK.c.name, T_TASK.c.warning_level))
INS_TASK = insert(T_TASK).returning(T_TASK.c.id)
INS_TIMER = insert(T_TIMER)
UPD_TIMERS_DISARM = (update(T_TIMER).where(T_TIMER.c.case_id == bindparam("b_case"),
                                            T_TIMER.c.spiff_task_id.in_(bindparam("b_ids", expanding=True)),
                                            T_TIMER.c.state.in_(("armed", "paused")))
                      .values(state=bindparam("b_state"), fired_at=bindparam("b_fired")))
UPD_CASE = (update(T_CASE).where(T_CASE.c.id == bindparam("b_id"), T_CASE.c.version == bindparam("b_version"))
             .values(instance_json=bindparam("b_json"), version=bindparam("b_version") + 1,
                     updated_at=bindparam("b_now"), status=bindparam("b_status"),
                     closed_at=bindparam("b_closed"), outcome=bindparam("b_outcome")))


@dataclass
class StepResult:
    """What a service did, for the caller to show; reading the full case is `queries.case_detail`."""
    case_number: str
    status: str
    outcome: str | None = None
    opened_tasks: list[int] = field(default_factory=list)
    closed_tasks: list[int] = field(default_factory=list)
    fired_timers: list[str] = field(default_factory=list)


@dataclass
class Loaded:
    case: Mapping[str, Any]
    spec: LoadedSpec
    instance: Instance


# ------------------------------------------------------------------------------------------- helpers
def conn(session: Session) -> Any:
    """The session's connection: Core statements on it skip the ORM layer (the hot path is all Core)."""
    return session.connection()


write_audit = audit.write  # the verbs write their rows in bulk, with the workflow's own moves


def _locked(session: Session, stmt: Any) -> Any:
    """Take the case row lock on PostgreSQL; SQLite's write transaction (BEGIN IMMEDIATE) already holds it."""
    return stmt if db.is_sqlite(session) else _LOCKED[id(stmt)]


def lock_case(session: Session, case_id: int) -> Mapping[str, Any]:
    row = conn(session).execute(_locked(session, SEL_CASE), {"case_id": case_id}).mappings().first()
    if row is None:
        raise NotFound(f"no case with id {case_id}", reason="case.id_not_found", case_id=case_id)
    return row


def restore(session: Session, case: Mapping[str, Any]) -> Loaded:
    spec = load_spec(session, case["process_version_id"], key=case_spec_key(case))
    try:
        instance = Instance.load(case["instance_json"], spec.spec, spec.subprocess_specs)
    except Exception as exc:  # a corrupt row must not take the caller down with a stack trace
        raise WorkflowError(f"case {case['number']} could not be restored: {exc}", reason="workflow.unreadable",
                            case=case["number"]) from exc
    return Loaded(case, spec, instance)


def task_with_case(session: Session, task_id: int) -> tuple[dict[str, Any], Mapping[str, Any]]:
    """The task and its case, case row locked, in one round trip (the hot path's first statement).

    On PostgreSQL the task columns may predate a concurrent writer that held the lock; every write
    below re-checks them (`state = 'ready'` in the WHERE, the spiff task's own state), so a stale read
    can only turn into a Conflict, never a double completion.
    """
    row = conn(session).execute(_locked(session, SEL_TASK_CASE), {"task_id": task_id}).mappings().first()
    if row is None:
        raise NotFound(f"no task {task_id}", reason="task.not_found", task_id=task_id)
    task = {k[5:]: v for k, v in row.items() if k.startswith("task_")}
    return task, row


# ------------------------------------------------------------------------------------------- services
def new_query_code() -> str:
    """The citizen's 查询码: six random digits from the OS's CSPRNG. With the case number it opens 办件查询;
    guessing is bounded by the public door's rate limit (10⁶ codes, a few tries per minute)."""
    return f"{secrets.randbelow(1_000_000):06d}"


def next_number(session: Session, now: datetime) -> str:
    """YY-<year>-<6 digits>, counted per Asia/Shanghai year; an upsert, so the first cases of a new year
    started at the same moment cannot collide."""
    from sqlalchemy.dialects import postgresql, sqlite

    year = clock.local(now).year
    table = T_SEQ
    dialect_insert = sqlite.insert if db.is_sqlite(session) else postgresql.insert
    upsert = dialect_insert(table).values(year=year, last_value=1).on_conflict_do_update(
        index_elements=[table.c.year], set_={"last_value": table.c.last_value + 1})
    value = conn(session).execute(upsert.returning(table.c.last_value)).scalar_one()
    return f"YY-{year}-{value:06d}"


_SEL_DUE_CASE = (select(*CASE_COLUMNS).select_from(T_TIMER)
                 .join(T_CASE, T_CASE.c.id == T_TIMER.c.case_id)
                 .join(T_PV, T_PV.c.id == T_CASE.c.process_version_id)
                 .where(T_TIMER.c.state == literal_column("'armed'"),  # a literal, or the partial index is unused
                        T_TIMER.c.due_at <= bindparam("now"))
                 .order_by(T_TIMER.c.due_at)  # exactly the armed-timers index: no sort, stops at the limit
                 .limit(bindparam("limit")))
# Built once (a statement built per call costs more to compile than to run); on PostgreSQL the case rows are
# taken FOR UPDATE SKIP LOCKED, so sweepers on several nodes never wait for each other or fire twice.
_DUE_CASE_STATEMENTS = {
    (locking, skipping): (stmt.with_for_update(of=T_CASE, skip_locked=True) if locking else stmt)
    for locking in (False, True)
    for skipping, stmt in ((False, _SEL_DUE_CASE),
                           (True, _SEL_DUE_CASE.where(T_TIMER.c.case_id.not_in(bindparam("skip", expanding=True)))))}


def next_due_cases(session: Session, now: datetime, skip: set[int], limit: int = 1) -> list[Mapping[str, Any]]:
    """The cases of the next armed timers due at `now` (not in `skip`), at most `limit`, in due order, their
    rows locked: what :func:`service.fire_timers` needs, in the one query that finds them. A case with
    several due timers is listed once."""
    stmt = _DUE_CASE_STATEMENTS[(not db.is_sqlite(session), bool(skip))]
    params = {"now": now, "limit": limit, **({"skip": list(skip)} if skip else {})}
    seen: dict[int, Mapping[str, Any]] = {}
    for row in conn(session).execute(stmt, params).mappings():
        seen.setdefault(row["id"], row)
    return list(seen.values())


def next_due_case(session: Session, now: datetime, skip: set[int]) -> Mapping[str, Any] | None:
    """The case of the next armed timer due at `now` (not in `skip`), its row locked."""
    found = next_due_cases(session, now, skip, 1)
    return found[0] if found else None


# ------------------------------------------------------------------------------------------- the SLA clock
def case_by_number(session: Session, case_number: str) -> Mapping[str, Any]:
    """The whole case row (its clock columns too: what `sla_row` reads) with its process version's
    keys, locked — one statement."""
    row = conn(session).execute(_locked(session, SEL_CASE_BY_NUMBER), {"number": case_number}).mappings().first()
    if row is None:
        raise NotFound(f"no case {case_number}", reason="case.not_found", case=case_number)
    return row


def sla_row(session: Session, case_id: int) -> Mapping[str, Any]:
    return conn(session).execute(select(T_CASE).where(T_CASE.c.id == case_id)).mappings().one()


#: the most a case's stored workflow may take. An ordinary case is 6–30 kB however long it runs (loops are
#: compacted); the bound stops a process whose scripts copy large values into many fields (each value
#: within the expression limits, together megabytes) from filling the database case by case.
MAX_INSTANCE_BYTES = 2 * 1024 * 1024


def dump(instance: Instance, number: str) -> str:
    text = instance.dump()
    if len(text) > MAX_INSTANCE_BYTES:
        raise WorkflowError(f"case {number}'s data grew to {len(text):,} characters, more than the "
                            f"{MAX_INSTANCE_BYTES:,} a case may hold: its process copies too much data",
                            reason="workflow.too_large", case=number, size=len(text), limit=MAX_INSTANCE_BYTES)
    return text


def save_instance(session: Session, loaded: Loaded, now: datetime, **columns: Any) -> str:
    """The one version-checked save of the workflow, with any other `columns` of the case row that the
    verb changed (so a verb writes its case row once); the text saved."""
    loaded.instance.keep_bounded()
    text = dump(loaded.instance, loaded.case["number"])
    save_text(session, loaded.case, text, now, **columns)
    return text


def save_text(session: Session, case: Mapping[str, Any], text: str, now: datetime, **columns: Any) -> None:
    """The version-checked write of a case's workflow as stored text (`save_instance`; a migration's rollback
    puts back the text it kept): Conflict if someone changed the case since it was read."""
    res = conn(session).execute(update(T_CASE).where(T_CASE.c.id == case["id"], T_CASE.c.version == case["version"])
                                .values(instance_json=text, version=case["version"] + 1, updated_at=now, **columns))
    if res.rowcount != 1:
        raise Conflict(f"case {case['number']} was changed by someone else; reload and try again",
                       reason="case.changed", case=case["number"])


def open_pause(session: Session, case_id: int) -> Mapping[str, Any] | None:
    return conn(session).execute(select(T_PAUSE).where(Pause.case_id == case_id, Pause.ended_at.is_(None))
                                  .order_by(Pause.id.desc()).limit(1)).mappings().first()


def iso_or_none(value: datetime | None) -> str | None:
    return clock.local(value).isoformat(timespec="minutes") if value else None
