"""Moving running cases to another version of their process, and back (issue 11 §6, §8).

A case runs on the version it started with (DESIGN.md invariant 2) unless a designer moves it. Three verbs:

- `plan` — the dry run: the cases chosen (by the version they run on, the step they wait at, the unit they
  belong to, or by number), a page at a time, each **really moved in memory** the way `migrate` would move it
  and then dropped, so "can move" and "why not" are exactly what `migrate` will find (short of what changes
  in between). Nothing is written.
- `migrate` — moves the movable ones, at most `MIGRATE_CHUNK` per call (a set larger than that is gone through
  call after call, `next_after`, under one batch). Each case in its own savepoint: one that fails is refused
  with its reason and the others go on. Per case: the row locked, the workflow moved (`bpmn.upgrade`:
  SpiffWorkflow's own `migrate_workflow`, guarded), saved with the new version id in one version-checked
  update, the open steps' rows renamed where the new version renames them, the previous state kept in
  `case_migrations`, audited `case.migrated` (from → to version).
- `rollback` — puts migrated cases back exactly as they were (workflow, version, their steps' names), each in
  its own savepoint, audited `case.migration_rolled_back`; refused for a case whose workflow moved on since
  (a step completed, a timer fired, the clock paused): restoring the old one would undo that work. Such a case
  can be migrated back to the older version like any other (`migrate --to` it), which keeps what it did.

**Deadlines keep their instants.** SpiffWorkflow re-arms a migrated case's timers from "now" (SPIFFWORKFLOW.md
§4); here every armed timer is re-armed at the due instant its timer row holds (`timers.due_at`), and nothing
else about a deadline is touched: the steps' `due_at`, the timer rows, the case's legal and promised dues and
its limits stay as they were (a version that changes a limit applies to cases started on it). A case whose
step would gain or lose a deadline cannot move (`step.boundary_changed`), nor can one whose clock is stopped
(its timers are held by the pause) or that has a timer incident open.

Only designers and the operator (`policy.may_migrate`); the unit chosen must be within the actor's part of
the tree (else "not found"). Scale: the cases are chosen by SQL on indexed columns, a page at a time; each
case is restored once, as a step restores it.
"""
from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import exists, func, insert, select, update
from sqlalchemy.orm import Session

from .. import clock, forms, policy
from ..bpmn import Instance
from ..bpmn.upgrade import Blocked, Upgrade
from ..errors import Conflict, InvalidInput, NotFound, YicunError
from ..expressions import time_budget
from ..models import T_CASE, T_CASE_MIG, T_INC, T_MIG_BATCH, T_PV, T_TASK, T_TIMER, T_UNIT, User
from ..policy import Actor, as_actor
from ..processes import LoadedSpec, load_spec, spec_key
from . import audit, store

log = logging.getLogger("engine.cases.migration")

#: cases a dry-run page judges (each restored and moved in memory: about a millisecond or two apiece)
PLAN_DEFAULT, PLAN_MAX = 100, 500
#: cases one `migrate` or `rollback` call goes through (one transaction; callers go on with `next_after`)
MIGRATE_CHUNK = 200
#: case numbers one selection may name
CASE_NUMBERS_MAX = 500
#: refused cases a batch keeps with their reasons (its count keeps them all)
REFUSALS_KEPT = 200
#: the longest step id a selection may name (the column's size)
STEP_MAX = 100
#: the step budget a move shares (the re-arming of timers evaluates the new version's expressions)
MOVE_BUDGET_SECONDS = 2.0


# ------------------------------------------------------------------------------------------- read models
@dataclass(frozen=True)
class Selection:
    """Which cases of a process to move, and where to: its version `to_version`; the cases on `from_version`
    (None: on any other version), waiting at step `step` (a BPMN id), of unit `unit` (a code: its villages'
    cases), or named in `case_numbers` (then also cases already on the target, reported as such)."""
    process_id: str
    to_version: int
    from_version: int | None = None
    step: str | None = None
    unit: str | None = None
    case_numbers: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {"process_id": self.process_id, "to_version": self.to_version, "from_version": self.from_version,
                "step": self.step, "unit": self.unit, "case_numbers": list(self.case_numbers)}


@dataclass(frozen=True)
class Verdict:
    """One case of a selection: whether it can move and, if not, why (`reason` stable, `message` English,
    `params` for the pages' translation)."""
    case_id: int
    case_number: str
    version: int  # the version it runs on now
    steps: tuple[str, ...]  # the names of the steps it waits at
    village: str
    movable: bool
    reason: str | None = None
    message: str | None = None
    params: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Plan:
    """A page of the dry run: `total` cases match the selection, `items` are judged, `next_after` pages on."""
    selection: Selection
    name: str  # the target version's process name
    total: int
    items: tuple[Verdict, ...]
    next_after: int | None

    @property
    def movable(self) -> int:
        return sum(1 for v in self.items if v.movable)


@dataclass(frozen=True)
class MigrationReport:
    batch_id: int
    moved: tuple[Verdict, ...]
    refused: tuple[Verdict, ...]
    next_after: int | None  # more cases to go through: call again with `batch_id` and this


@dataclass(frozen=True)
class RollbackReport:
    batch_id: int
    restored: tuple[str, ...]  # case numbers
    refused: tuple[dict[str, Any], ...]  # {case, reason, message}
    next_after: int | None  # more migrations of the batch to go through


@dataclass(frozen=True)
class VersionChoice:
    id: int
    version: int
    executable: bool
    deployed_at: datetime
    open_cases: int


@dataclass(frozen=True)
class StepChoice:
    bpmn_id: str
    name: str
    open_cases: int


@dataclass(frozen=True)
class Choices:
    """What the page offers to choose cases by: the process's versions (with their open cases) and the steps
    its open cases wait at."""
    process_id: str
    name: str
    versions: tuple[VersionChoice, ...]
    steps: tuple[StepChoice, ...]


@dataclass(frozen=True)
class BatchCase:
    migration_id: int
    case_number: str
    from_version: int
    to_version: int
    state: str  # migrated | rolled_back
    migrated_at: datetime
    rolled_back_at: datetime | None


@dataclass(frozen=True)
class Batch:
    id: int
    process_id: str
    to_version: int
    selection: dict[str, Any]
    created_at: datetime
    created_by: str
    moved: int
    refused: int
    rolled_back: int
    refusals: tuple[dict[str, Any], ...]
    cases: tuple[BatchCase, ...]  # a page, in migration order
    next_after: int | None


# ------------------------------------------------------------------------------------------- checks
def _require(actor: Actor) -> None:
    policy.require(policy.may_migrate(actor), "process.migrate",
                   f"{actor.username} may not migrate running cases (designers only)")


def _versions(session: Session, process_id: str) -> dict[int, Any]:
    """The process's versions: number → row (id, version, executable, name, sha256, calls)."""
    rows = store.conn(session).execute(
        select(T_PV.c.id, T_PV.c.version, T_PV.c.executable, T_PV.c.name, T_PV.c.sha256, T_PV.c.calls,
               T_PV.c.deployed_at).where(T_PV.c.process_id == process_id)).all()
    if not rows:
        raise NotFound(f"no deployed process {process_id!r}", reason="process.not_deployed", service=process_id)
    return {row.version: row for row in rows}


def _version(versions: Mapping[int, Any], process_id: str, number: int | None) -> Any:
    row = versions.get(number) if isinstance(number, int) and not isinstance(number, bool) else None
    if row is None:
        raise NotFound(f"process {process_id} has no version {number}", reason="migration.version_not_found",
                       process=process_id, version=str(number)[:20])
    return row


def _selection(session: Session, actor: Actor, selection: Selection) -> tuple[dict[int, Any], Any, Any]:
    """The checked selection: the process's versions, the target version row, the unit (or None)."""
    _require(actor)
    process_id = forms.clean_text(selection.process_id, "the process", 100, field="process")
    versions = _versions(session, process_id)
    target = _version(versions, process_id, selection.to_version)
    if not target.executable:
        raise Conflict(f"{process_id} v{target.version} is a model only: cases cannot run on it",
                       reason="migration.target_model_only", process=process_id, version=target.version)
    if selection.from_version is not None:
        _version(versions, process_id, selection.from_version)
    if selection.step is not None:
        forms.clean_text(selection.step, "the step", STEP_MAX, field="step")
    if len(selection.case_numbers) > CASE_NUMBERS_MAX:
        raise InvalidInput(f"at most {CASE_NUMBERS_MAX} case numbers at once", reason="migration.too_many_cases",
                           limit=CASE_NUMBERS_MAX)
    for number in selection.case_numbers:
        forms.clean_text(number, "a case number", 20, field="cases")
    unit = None
    if selection.unit:
        code = forms.clean_text(selection.unit, "the unit", 20, field="unit")
        unit = store.conn(session).execute(select(T_UNIT.c.id, T_UNIT.c.level, T_UNIT.c.path, T_UNIT.c.name)
                                           .where(T_UNIT.c.code == code)).first()
        if unit is None or not policy.may_view_unit(actor, unit.path):  # outside the actor's tree: not found
            raise NotFound(f"no org unit with code {code!r}", reason="unit.not_found", unit=code)
    return versions, target, unit


_UNIT_COLUMN = {"village": T_CASE.c.village_id, "township": T_CASE.c.township_id, "county": T_CASE.c.county_id}


def _where(selection: Selection, versions: Mapping[int, Any], target: Any, unit: Any) -> list[Any]:
    """The SQL conditions of a selection (open cases of the process, on the chosen version, …)."""
    ids = [row.id for row in versions.values()]
    conds = [T_CASE.c.process_version_id.in_(ids), T_CASE.c.status == "open"]
    if selection.from_version is not None:
        conds.append(T_CASE.c.process_version_id == versions[selection.from_version].id)
    elif not selection.case_numbers:
        conds.append(T_CASE.c.process_version_id != target.id)
    if selection.step:
        conds.append(exists().where(T_TASK.c.case_id == T_CASE.c.id, T_TASK.c.state == "ready",
                                    T_TASK.c.bpmn_id == selection.step))
    if unit is not None and unit.level in _UNIT_COLUMN:
        conds.append(_UNIT_COLUMN[unit.level] == unit.id)
    if selection.case_numbers:
        conds.append(T_CASE.c.number.in_(list(selection.case_numbers)))
    return conds


_CASE_COLUMNS = (T_CASE.c.id, T_CASE.c.number, T_CASE.c.status, T_CASE.c.version, T_CASE.c.instance_json,
                 T_CASE.c.process_version_id, T_CASE.c.paused_at, T_CASE.c.village_id, T_CASE.c.township_id,
                 T_CASE.c.county_id, T_PV.c.version.label("pv_version"), T_UNIT.c.name.label("village"))


def _page(session: Session, conds: Sequence[Any], after_id: int, limit: int, *, state: bool = True) -> list[Any]:
    """A page of the selection; `state` False: without the workflows (a migration reads each under its lock)."""
    columns = _CASE_COLUMNS if state else tuple(c for c in _CASE_COLUMNS if c.key != "instance_json")
    stmt = (select(*columns).join(T_PV, T_PV.c.id == T_CASE.c.process_version_id)
            .join(T_UNIT, T_UNIT.c.id == T_CASE.c.village_id)
            .where(*conds, T_CASE.c.id > after_id).order_by(T_CASE.c.id).limit(limit + 1))
    return list(store.conn(session).execute(stmt).all())


def _limit(limit: Any, high: int) -> int:
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= high:
        raise InvalidInput(f"limit must be a whole number from 1 to {high}", reason="migration.limit_invalid",
                           limit=str(limit)[:20], max=high)
    return limit


def _after(after_id: Any) -> int:
    if isinstance(after_id, bool) or not isinstance(after_id, int) or not 0 <= after_id < 2 ** 63:
        raise InvalidInput("the cursor must be a case id", reason="migration.cursor_invalid")
    return after_id


# ------------------------------------------------------------------------------------------- judging a case
class _Target:
    """The target version's spec and, per version a case runs on, the `Upgrade` from it (built once)."""

    def __init__(self, session: Session, process_id: str, versions: Mapping[int, Any], target: Any) -> None:
        self.session, self.process_id, self.row = session, process_id, target
        self.by_id = {row.id: row for row in versions.values()}
        self.spec = self._spec(target)
        self._from: dict[int, tuple[LoadedSpec, Upgrade]] = {}

    def _spec(self, row: Any) -> LoadedSpec:
        return load_spec(self.session, row.id, key=spec_key(row.sha256, self.process_id, row.calls))

    def upgrade(self, version_id: int) -> tuple[LoadedSpec, Upgrade]:
        if version_id not in self._from:
            old = self._spec(self.by_id[version_id])
            self._from[version_id] = (old, Upgrade(old.spec, old.subprocess_specs, self.spec.spec,
                                                   self.spec.subprocess_specs, f"v{self.row.version}"))
        return self._from[version_id]


def _live_rows(session: Session, case_ids: Sequence[int]) -> tuple[dict[int, list[Any]], dict[int, list[Any]],
                                                                   set[int]]:
    """The open steps' rows, the live timers' rows and whether a timer incident is open, per case."""
    conn = store.conn(session)
    tasks: dict[int, list[Any]] = {i: [] for i in case_ids}
    timers: dict[int, list[Any]] = {i: [] for i in case_ids}
    if not case_ids:
        return tasks, timers, set()
    for row in conn.execute(select(T_TASK.c.id, T_TASK.c.case_id, T_TASK.c.spiff_task_id, T_TASK.c.bpmn_id,
                                   T_TASK.c.name, T_TASK.c.lane, T_TASK.c.level, T_TASK.c.candidate_group,
                                   T_TASK.c.due_at, T_TASK.c.limit_workdays)
                            .where(T_TASK.c.case_id.in_(case_ids), T_TASK.c.state == "ready").order_by(T_TASK.c.id)):
        tasks[row.case_id].append(row)
    for row in conn.execute(select(T_TIMER.c.id, T_TIMER.c.case_id, T_TIMER.c.spiff_task_id, T_TIMER.c.bpmn_id,
                                   T_TIMER.c.due_at, T_TIMER.c.state, T_TIMER.c.workdays)
                            .where(T_TIMER.c.case_id.in_(case_ids),
                                   T_TIMER.c.state.in_(("armed", "paused", "failed", "held")))
                            .order_by(T_TIMER.c.id)):
        timers[row.case_id].append(row)
    incidents = set(conn.execute(select(T_INC.c.case_id).where(T_INC.c.case_id.in_(case_ids),
                                                               T_INC.c.status == "open")).scalars())
    return tasks, timers, incidents


def _verdict(case: Mapping[str, Any], tasks: Sequence[Any], movable: bool, reason: str | None = None,
             message: str | None = None, **params: Any) -> Verdict:
    return Verdict(case["id"], case["number"], case["pv_version"], tuple(t.name for t in tasks),
                   case.get("village") or "", movable, reason, message, params)


def _judge(target: _Target, case: Mapping[str, Any], tasks: Sequence[Any], timers: Sequence[Any],
           incident: bool, now: datetime) -> tuple[Verdict, Instance | None]:
    """Can this case move to the target — and the moved workflow if so (nothing is written)."""
    version = f"v{target.row.version}"
    if case["process_version_id"] == target.row.id:
        return _verdict(case, tasks, False, "case.on_target", f"already on {version}", version=version), None
    if case["process_version_id"] not in target.by_id:
        return _verdict(case, tasks, False, "case.other_process", f"a case of another process, not "
                        f"{target.process_id}", process=target.process_id), None
    if case["status"] != "open":
        return _verdict(case, tasks, False, "case.closed", f"the case is {case['status']}",
                        status=case["status"]), None
    if case["paused_at"] is not None:
        return _verdict(case, tasks, False, "case.paused", "its clock is stopped (补正, 特别程序 or 公示): it can "
                        "move once the clock runs again"), None
    if incident or any(t.state in ("failed", "held") for t in timers):
        return _verdict(case, tasks, False, "case.incident", "a timer of the case failed (an open incident): "
                        "resolve the incident first"), None
    meta = target.spec.task_meta
    for task in tasks:  # who works on a waiting step must not change under them
        m = meta.get(task.bpmn_id)
        if m is None:
            continue  # not a user task of the target: the upgrade names it (step.missing)
        groups = m.get("candidate_groups") or []
        level, group = m.get("level"), groups[0] if groups else None
        if (level, group) != (task.level, task.candidate_group):
            return _verdict(case, tasks, False, "step.moved",
                            f"step {task.name} ({task.bpmn_id}) is done by another level or department in "
                            f"{version} ({task.level or '-'}/{task.candidate_group or '-'} → {level or '-'}/"
                            f"{group or '-'}): finish the step first", step=task.name, element=task.bpmn_id,
                            version=version), None
    old, upgrade = target.upgrade(case["process_version_id"])
    dues = {t.spiff_task_id: t.due_at for t in timers if t.state == "armed"}
    try:
        instance = Instance.load(case["instance_json"], old.spec, old.subprocess_specs)
        with time_budget(MOVE_BUDGET_SECONDS):
            moved = upgrade.apply(instance, dues, now)
    except Blocked as exc:
        first = exc.blockers[0]
        return _verdict(case, tasks, False, first.reason, "; ".join(b.message for b in exc.blockers),
                        **first.params), None
    except Exception as exc:  # the new version's expressions failed on this case, or the case is unreadable
        log.info("case %s cannot move to %s: %s", case["number"], version, exc, exc_info=True)
        return _verdict(case, tasks, False, "workflow.failed", f"moving it failed ({type(exc).__name__}: "
                        f"{str(exc)[:300]})", version=version), None
    return _verdict(case, tasks, True), moved


# ------------------------------------------------------------------------------------------- the verbs
def plan(session: Session, actor: Actor | User, process_id: str, to_version: int, *, from_version: int | None = None,
         step: str | None = None, unit: str | None = None, case_numbers: Iterable[str] | None = None,
         after_id: int = 0, limit: int = PLAN_DEFAULT, now: datetime | None = None) -> Plan:
    """The dry run: a page of the chosen cases (id order after `after_id`, at most `limit`), each judged by
    moving it in memory; `total` counts every case the selection matches. Nothing is written."""
    actor = as_actor(actor)
    selection = Selection(process_id, to_version, from_version, step or None, unit or None,
                          tuple(case_numbers or ()))
    versions, target_row, unit_row = _selection(session, actor, selection)
    limit, after_id = _limit(limit, PLAN_MAX), _after(after_id)
    now = now or clock.now()
    conds = _where(selection, versions, target_row, unit_row)
    total = store.conn(session).execute(select(func.count()).select_from(T_CASE).where(*conds)).scalar_one()
    rows = _page(session, conds, after_id, limit)
    shown = rows[:limit]
    tasks, timers, incidents = _live_rows(session, [r.id for r in shown])
    target = _Target(session, selection.process_id, versions, target_row)
    items = tuple(_judge(target, r._mapping, tasks[r.id], timers[r.id], r.id in incidents, now)[0] for r in shown)
    return Plan(selection, target_row.name, total, items, shown[-1].id if len(rows) > limit else None)


def migrate(session: Session, actor: Actor | User, process_id: str, to_version: int, *, from_version: int | None = None,
            step: str | None = None, unit: str | None = None, case_numbers: Iterable[str] | None = None,
            batch_id: int | None = None, after_id: int = 0, limit: int = MIGRATE_CHUNK,
            now: datetime | None = None) -> MigrationReport:
    """Move the movable cases of the selection (at most `limit`, id order after `after_id`), each in its own
    savepoint; the others are refused with their reason. A new batch unless `batch_id` goes on with one
    (then its own selection is used and must be of this process and target)."""
    actor = as_actor(actor)
    now = now or clock.now()
    if batch_id is not None:
        _require(actor)
        batch = store.conn(session).execute(select(T_MIG_BATCH).where(T_MIG_BATCH.c.id == batch_id)).first()
        if batch is None or batch.process_id != process_id:
            raise NotFound(f"no migration batch {batch_id} of {process_id}", reason="migration.batch_not_found",
                           batch=batch_id)
        stored = batch.selection
        from_version, step, unit = stored.get("from_version"), stored.get("step"), stored.get("unit")
        case_numbers = stored.get("case_numbers") or ()
        if stored.get("to_version") != to_version:
            raise Conflict(f"batch {batch_id} moves cases to v{stored.get('to_version')}, not v{to_version}",
                           reason="migration.batch_target", batch=batch_id, version=stored.get("to_version"))
    selection = Selection(process_id, to_version, from_version, step or None, unit or None,
                          tuple(case_numbers or ()))
    versions, target_row, unit_row = _selection(session, actor, selection)
    limit, after_id = _limit(limit, MIGRATE_CHUNK), _after(after_id)
    conn = store.conn(session)
    if batch_id is None:
        batch = None
        batch_id = conn.execute(insert(T_MIG_BATCH).returning(T_MIG_BATCH.c.id).values(
            process_id=selection.process_id, to_version_id=target_row.id, selection=selection.to_json(),
            created_at=now, created_by_id=actor.id, created_by=actor.username, moved=0, refused=0, rolled_back=0,
            refusals=[])).scalar_one()
    rows = _page(session, _where(selection, versions, target_row, unit_row), after_id, limit, state=False)
    target = _Target(session, selection.process_id, versions, target_row)
    moved: list[Verdict] = []
    refused: list[Verdict] = []
    for row in rows[:limit]:
        try:
            with session.begin_nested():
                verdict = _move(session, actor, target, row, batch_id, now)
        except YicunError as exc:  # e.g. a conflict on the save, a case grown too large: this case only
            verdict = Verdict(row.id, row.number, row.pv_version, (), row.village, False, exc.reason, str(exc)[:300],
                              {k: v for k, v in exc.details.items() if isinstance(v, (str, int))})
        except Exception as exc:  # one failure stays one failure (invariant 8): logged, the others go on
            log.exception("migrating case %s failed", row.number)
            verdict = Verdict(row.id, row.number, row.pv_version, (), row.village, False, "workflow.failed",
                              f"moving it failed ({type(exc).__name__}: {str(exc)[:300]})",
                              {"version": f"v{target_row.version}"})
        (moved if verdict.movable else refused).append(verdict)
    kept = list(batch.refusals or []) if batch is not None else []
    kept += [{"case": v.case_number, "reason": v.reason, "message": v.message, "params": v.params}
             for v in refused][:max(0, REFUSALS_KEPT - len(kept))]
    conn.execute(update(T_MIG_BATCH).where(T_MIG_BATCH.c.id == batch_id).values(
        moved=T_MIG_BATCH.c.moved + len(moved), refused=T_MIG_BATCH.c.refused + len(refused), refusals=kept))
    details: dict[str, Any] = {"process_id": selection.process_id, "batch": batch_id, "to_version": target_row.version,
                               "moved": len(moved), "refused": len(refused), "selection": selection.to_json(),
                               **actor.audit_details}
    audit.record(session, "process.migrated", at=now, actor_id=actor.id, **details)
    return MigrationReport(batch_id, tuple(moved), tuple(refused), rows[limit - 1].id if len(rows) > limit else None)


def _move(session: Session, actor: Actor, target: _Target, row: Any, batch_id: int, now: datetime) -> Verdict:
    """Move one case of the page (`row`; the caller's savepoint): lock (the case as it is now, workflow
    included), judge, save, rename its steps, keep the past, audit."""
    conn = store.conn(session)
    case_id = row.id
    locked = store.lock_case(session, case_id)
    known = target.by_id.get(locked["process_version_id"])
    case = {**locked, "pv_version": known.version if known is not None else row.pv_version, "village": row.village}
    tasks, timers, incidents = _live_rows(session, [case_id])
    verdict, moved = _judge(target, case, tasks[case_id], timers[case_id], case_id in incidents, now)
    if moved is None:
        return verdict
    text = store.save_instance(session, store.Loaded(case, target.spec, moved), now, process_version_id=target.row.id)
    steps = moved.ready_steps()
    renamed: dict[str, list[str | None]] = {}
    for task in tasks[case_id]:
        step = steps.get(task.spiff_task_id)
        m = target.spec.task_meta.get(task.bpmn_id, {})
        name = (m.get("name") or (step.name if step else None) or task.name)[:200]
        lane = m.get("lane_name") or (step.lane if step else None) or task.lane
        if (name, lane) != (task.name, task.lane):
            conn.execute(update(T_TASK).where(T_TASK.c.id == task.id).values(name=name, lane=lane))
            renamed[task.bpmn_id] = [task.name, name]
    from_version = target.by_id[case["process_version_id"]].version
    migration_id = conn.execute(insert(T_CASE_MIG).returning(T_CASE_MIG.c.id).values(
        batch_id=batch_id, case_id=case_id, from_version_id=case["process_version_id"], to_version_id=target.row.id,
        migrated_at=now, instance_json=case["instance_json"], after_sha256=_sha(text),
        tasks=[_task_json(t) for t in tasks[case_id]], timers=[_timer_json(t) for t in timers[case_id]],
        state="migrated", rolled_back_at=None, rolled_back_by_id=None)).scalar_one()
    store.write_audit(session, [dict(
        case_id=case_id, actor_id=actor.id, at=now, action="case.migrated",
        details={"process_id": target.process_id, "from_version": from_version, "to_version": target.row.version,
                 "batch": batch_id, "migration": migration_id, "renamed": renamed, **actor.audit_details},
        old_value=f"v{from_version}", new_value=f"v{target.row.version}")])
    return verdict


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _task_json(row: Any) -> dict[str, Any]:
    return {"id": row.id, "spiff_task_id": row.spiff_task_id, "bpmn_id": row.bpmn_id, "name": row.name,
            "lane": row.lane, "level": row.level, "candidate_group": row.candidate_group, "due_at": _iso(row.due_at),
            "limit_workdays": row.limit_workdays}


def _timer_json(row: Any) -> dict[str, Any]:
    return {"id": row.id, "spiff_task_id": row.spiff_task_id, "bpmn_id": row.bpmn_id, "due_at": _iso(row.due_at),
            "state": row.state, "workdays": row.workdays}


def rollback(session: Session, actor: Actor | User, batch_id: int, *, case_number: str | None = None,
             migration_id: int | None = None, after_id: int = 0, limit: int = MIGRATE_CHUNK,
             now: datetime | None = None) -> RollbackReport:
    """Put the cases of batch `batch_id` (or only `case_number` / migration `migration_id` of it) back as they
    were before it moved them, at most `limit` migrations per call (id order after `after_id`), each in its own
    savepoint. A case whose workflow moved on since is refused (`migration.moved_on`) and stays as it is."""
    actor = as_actor(actor)
    _require(actor)
    now = now or clock.now()
    limit, after_id = _limit(limit, MIGRATE_CHUNK), _after(after_id)
    conn = store.conn(session)
    batch = conn.execute(select(T_MIG_BATCH).where(T_MIG_BATCH.c.id == batch_id)).first() \
        if isinstance(batch_id, int) and not isinstance(batch_id, bool) and 0 < batch_id < 2 ** 63 else None
    if batch is None:
        raise NotFound(f"no migration batch {batch_id}", reason="migration.batch_not_found", batch=str(batch_id)[:20])
    conds = [T_CASE_MIG.c.batch_id == batch_id, T_CASE_MIG.c.id > after_id]
    if migration_id is not None:
        conds.append(T_CASE_MIG.c.id == migration_id)
    if case_number is not None:
        conds.append(T_CASE.c.number == forms.clean_text(case_number, "a case number", 20, field="case"))
    rows = conn.execute(select(T_CASE_MIG.c.id, T_CASE_MIG.c.state, T_CASE.c.number)
                        .join(T_CASE, T_CASE.c.id == T_CASE_MIG.c.case_id).where(*conds)
                        .order_by(T_CASE_MIG.c.id).limit(limit + 1)).all()
    if (case_number is not None or migration_id is not None) and not rows:
        raise NotFound(f"batch {batch_id} did not move case {case_number or migration_id}",
                       reason="migration.case_not_in_batch", batch=batch_id, case=case_number or str(migration_id))
    restored: list[str] = []
    refused: list[dict[str, Any]] = []
    for row in rows[:limit]:
        if row.state != "migrated":
            if case_number is not None or migration_id is not None:
                refused.append({"case": row.number, "reason": "migration.rolled_back",
                                "message": "already rolled back"})
            continue
        try:
            with session.begin_nested():
                _restore(session, actor, row.id, now)
            restored.append(row.number)
        except YicunError as exc:
            refused.append({"case": row.number, "reason": exc.reason, "message": str(exc)[:300]})
    if restored:
        conn.execute(update(T_MIG_BATCH).where(T_MIG_BATCH.c.id == batch_id)
                     .values(rolled_back=T_MIG_BATCH.c.rolled_back + len(restored)))
    details: dict[str, Any] = {"process_id": batch.process_id, "batch": batch_id, "restored": len(restored),
                               "refused": len(refused), "case": case_number, **actor.audit_details}
    audit.record(session, "process.migration_rolled_back", at=now, actor_id=actor.id, **details)
    return RollbackReport(batch_id, tuple(restored), tuple(refused),
                          rows[limit - 1].id if len(rows) > limit else None)


def _restore(session: Session, actor: Actor, migration_id: int, now: datetime) -> None:
    """Put one migrated case back (the caller's savepoint), or Conflict saying why not."""
    conn = store.conn(session)
    mig = conn.execute(select(T_CASE_MIG).where(T_CASE_MIG.c.id == migration_id)).one()
    case = store.lock_case(session, mig.case_id)
    if case["status"] != "open":
        raise Conflict(f"case {case['number']} is {case['status']} since it moved: it stays as it is",
                       reason="migration.closed_since", case=case["number"], status=case["status"])
    if case["process_version_id"] != mig.to_version_id or _sha(case["instance_json"]) != mig.after_sha256:
        raise Conflict(f"case {case['number']} moved on since the migration (a step completed, a timer fired or its "
                       "clock stopped): restoring the old workflow would undo that; migrate it back to the older "
                       "version instead", reason="migration.moved_on", case=case["number"])
    store.save_text(session, case, mig.instance_json, now, process_version_id=mig.from_version_id)
    for task in mig.tasks or []:  # the steps' names as they were (the migration changed nothing else of them)
        conn.execute(update(T_TASK).where(T_TASK.c.id == task["id"], T_TASK.c.case_id == mig.case_id)
                     .values(name=task["name"], lane=task["lane"]))
    conn.execute(update(T_CASE_MIG).where(T_CASE_MIG.c.id == migration_id).values(
        state="rolled_back", rolled_back_at=now, rolled_back_by_id=actor.id))
    versions = dict(conn.execute(select(T_PV.c.id, T_PV.c.version)
                                 .where(T_PV.c.id.in_((mig.from_version_id, mig.to_version_id)))).tuples().all())
    store.write_audit(session, [dict(
        case_id=mig.case_id, actor_id=actor.id, at=now, action="case.migration_rolled_back",
        details={"batch": mig.batch_id, "migration": migration_id, "from_version": versions[mig.to_version_id],
                 "to_version": versions[mig.from_version_id], **actor.audit_details},
        old_value=f"v{versions[mig.to_version_id]}", new_value=f"v{versions[mig.from_version_id]}")])


# ------------------------------------------------------------------------------------------- reads
def choices(session: Session, actor: Actor | User, process_id: str) -> Choices:
    """The versions of a process with their open cases, and the steps its open cases wait at (two
    aggregate statements), for choosing which cases to move."""
    _require(as_actor(actor))
    versions = _versions(session, forms.clean_text(process_id, "the process", 100, field="process"))
    ids = [row.id for row in versions.values()]
    conn = store.conn(session)
    open_by_version = dict(conn.execute(
        select(T_CASE.c.process_version_id, func.count()).where(T_CASE.c.process_version_id.in_(ids),
                                                                T_CASE.c.status == "open")
        .group_by(T_CASE.c.process_version_id)).tuples().all())
    steps = conn.execute(
        select(T_TASK.c.bpmn_id, func.min(T_TASK.c.name), func.count(func.distinct(T_TASK.c.case_id)))
        .join(T_CASE, T_CASE.c.id == T_TASK.c.case_id)
        .where(T_CASE.c.process_version_id.in_(ids), T_CASE.c.status == "open", T_TASK.c.state == "ready")
        .group_by(T_TASK.c.bpmn_id).order_by(T_TASK.c.bpmn_id)).all()
    newest = versions[max(versions)]
    return Choices(process_id, newest.name,
                   tuple(VersionChoice(r.id, r.version, bool(r.executable), r.deployed_at, open_by_version.get(r.id, 0))
                         for r in sorted(versions.values(), key=lambda r: r.version, reverse=True)),
                   tuple(StepChoice(bpmn_id, name, count) for bpmn_id, name, count in steps))


def batches(session: Session, actor: Actor | User, process_id: str, limit: int = 20) -> tuple[Batch, ...]:
    """The process's latest migration batches, newest first (without their cases)."""
    _require(as_actor(actor))
    rows = store.conn(session).execute(
        select(T_MIG_BATCH, T_PV.c.version.label("to_version")).join(T_PV, T_PV.c.id == T_MIG_BATCH.c.to_version_id)
        .where(T_MIG_BATCH.c.process_id == process_id).order_by(T_MIG_BATCH.c.id.desc())
        .limit(_limit(limit, 100))).all()
    return tuple(_batch(r, (), None) for r in rows)


def batch(session: Session, actor: Actor | User, batch_id: int, *, after_id: int = 0, limit: int = 100) -> Batch:
    """A migration batch with a page of the cases it moved (migration order after `after_id`)."""
    _require(as_actor(actor))
    conn = store.conn(session)
    row = conn.execute(select(T_MIG_BATCH, T_PV.c.version.label("to_version"))
                       .join(T_PV, T_PV.c.id == T_MIG_BATCH.c.to_version_id)
                       .where(T_MIG_BATCH.c.id == batch_id)).first()
    if row is None:
        raise NotFound(f"no migration batch {batch_id}", reason="migration.batch_not_found", batch=str(batch_id)[:20])
    old = T_PV.alias("old")
    cases = conn.execute(
        select(T_CASE_MIG.c.id, T_CASE.c.number, old.c.version.label("from_version"), T_PV.c.version.label("to_v"),
               T_CASE_MIG.c.state, T_CASE_MIG.c.migrated_at, T_CASE_MIG.c.rolled_back_at)
        .join(T_CASE, T_CASE.c.id == T_CASE_MIG.c.case_id)
        .join(old, old.c.id == T_CASE_MIG.c.from_version_id)
        .join(T_PV, T_PV.c.id == T_CASE_MIG.c.to_version_id)
        .where(T_CASE_MIG.c.batch_id == batch_id, T_CASE_MIG.c.id > _after(after_id))
        .order_by(T_CASE_MIG.c.id).limit(_limit(limit, PLAN_MAX) + 1)).all()
    shown = cases[:limit]
    return _batch(row, tuple(BatchCase(c.id, c.number, c.from_version, c.to_v, c.state, c.migrated_at,
                                       c.rolled_back_at) for c in shown),
                  shown[-1].id if len(cases) > limit else None)


def _batch(row: Any, cases: tuple[BatchCase, ...], next_after: int | None) -> Batch:
    selection, refusals = row.selection or {}, row.refusals or []
    return Batch(row.id, row.process_id, row.to_version, selection, row.created_at, row.created_by, row.moved,
                 row.refused, row.rolled_back, tuple(refusals), cases, next_after)


__all__ = ["CASE_NUMBERS_MAX", "MIGRATE_CHUNK", "PLAN_DEFAULT", "PLAN_MAX", "Batch", "BatchCase", "Choices",
           "MigrationReport", "Plan", "RollbackReport", "Selection", "StepChoice", "Verdict", "VersionChoice",
           "batch", "batches", "choices", "migrate", "plan", "rollback"]
