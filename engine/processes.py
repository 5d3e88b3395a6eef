"""Process versions: deploy a BPMN file as a new immutable version, find the one a case runs on, and
keep restored specs in memory (a spec is restored once per process, not once per request)."""
from __future__ import annotations

import hashlib
import json
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, insert, select, text
from sqlalchemy.orm import Session, load_only

from . import clock, db, policy
from .bpmn import CompiledFile, compile_bpmn, decision_names, first_steps, spec_from_json, spec_to_json
from .errors import Conflict, NotFound
from .models import ProcessVersion, User
from .policy import Actor, as_actor


@dataclass(frozen=True)
class LoadedSpec:
    spec: Any
    subprocess_specs: dict[str, Any]
    task_meta: dict[str, dict[str, Any]]
    properties: dict[str, Any]
    #: names the process's logic reads (conditions, scripts, timers): only the step that declares one sets it
    decision_fields: frozenset[str] = frozenset()
    #: the user tasks that take the application: their fields are what a case may be started with
    first_steps: frozenset[str] = frozenset()

    def fields_of(self, bpmn_id: str) -> list[dict[str, Any]]:
        return self.task_meta.get(bpmn_id, {}).get("fields") or []

    def intake_fields(self) -> list[dict[str, Any]]:
        """What an application may carry when it is accepted: the fields of the steps that take it, except
        the decisions (those are set by their step) — all optional here, each step checks its own."""
        seen: dict[str, dict[str, Any]] = {}
        for bpmn_id, meta in self.task_meta.items():
            if bpmn_id not in self.first_steps:
                continue
            for f in meta.get("fields") or []:
                if f["id"] not in self.decision_fields:
                    seen.setdefault(f["id"], dict(f, required=False))
        return list(seen.values())


@dataclass
class DeployResult:
    process_id: str
    name: str
    version: int
    version_id: int
    executable: bool
    created: bool  # False when the same file was already the newest version
    findings: list[dict[str, Any]]


_CACHE: OrderedDict[tuple[str, str], LoadedSpec] = OrderedDict()
_CACHE_LOCK = threading.Lock()
_CACHE_SIZE = 512


def deploy(session: Session, data: bytes, filename: str, actor: Actor | User | None = None,
           now: datetime | None = None, compiled: CompiledFile | None = None) -> list[DeployResult]:
    """Check and store a BPMN file; each process in it becomes version N+1 unless unchanged.

    Compiling takes up to bpmn.DEPLOY_TIME_BUDGET_SECONDS and on SQLite the first statement of the
    session takes the database's write lock, so a caller that reads anything first (the actor) should
    pass `compiled` = compile_bpmn(data, filename), made before its transaction began. No `actor` is the
    server's operator (the seed, `yicun init`, benchmarks), recorded by name in the audit trail.
    """
    from .cases import audit  # engine.cases imports this module (specs), so its writer is imported here
    actor = Actor.operator() if actor is None else as_actor(actor)
    policy.require(policy.may_deploy(actor), "process.deploy", f"{actor.username} may not deploy processes")
    now = now or clock.now()
    if compiled is None:
        compiled = compile_bpmn(data, filename)  # before this function's first statement
    elif compiled.sha256 != hashlib.sha256(data).hexdigest():
        raise ValueError("the compiled file is not the file being deployed")
    findings = [f.to_dict() for f in compiled.findings]
    results = []
    for process_id in sorted({proc.process_id for proc in compiled.processes}):
        _lock_process_id(session, process_id)  # all at once, in one order: two files never deadlock
    for proc in compiled.processes:
        latest = session.execute(
            select(ProcessVersion.id, ProcessVersion.version, ProcessVersion.sha256)
            .where(ProcessVersion.process_id == proc.process_id)
            .order_by(ProcessVersion.version.desc()).limit(1)).first()
        if latest is not None and latest.sha256 == compiled.sha256:
            results.append(DeployResult(proc.process_id, proc.name, latest.version, latest.id, proc.executable,
                                        False, findings))
            continue
        version = (latest.version if latest else 0) + 1
        meta = {tid: m.to_dict() for tid, m in proc.user_tasks.items()}
        if proc.executable:
            _mark_intake(meta, proc.spec, proc.subprocess_specs)
        spec_json = spec_to_json(proc.spec, proc.subprocess_specs) if proc.executable else None
        version_id = session.execute(insert(ProcessVersion).returning(ProcessVersion.id).values(
            process_id=proc.process_id, version=version, name=proc.name, filename=filename,
            bpmn_xml=data.decode("utf-8"), sha256=compiled.sha256, spec_json=spec_json, task_meta=meta,
            findings=findings, executable=proc.executable, properties=proc.properties, deployed_at=now,
            deployed_by_id=actor.id)).scalar_one()
        details: dict[str, Any] = {"process_id": proc.process_id, "version": version, "file": filename,
                                   "sha256": compiled.sha256, "executable": proc.executable, **actor.audit_details}
        audit.record(session, "process.deployed", at=now, actor_id=actor.id,
                     old=str(latest.version) if latest else None, new=str(version), **details)
        results.append(DeployResult(proc.process_id, proc.name, version, version_id, proc.executable, True,
                                    findings))
    return results


def _mark_intake(meta: dict[str, dict[str, Any]], spec: Any, subprocess_specs: dict[str, Any]) -> None:
    """Write into the stored task metadata what the intake page must know without restoring the spec: which
    steps take the application (`first`) and which fields a gateway decides on (`decision`: set only by
    the step that declares it, so an intake form shows it only where the first step asks for it)."""
    decisions = decision_names(spec, subprocess_specs)
    for bpmn_id in first_steps(spec, meta):
        meta[bpmn_id]["first"] = True
    for task in meta.values():
        for f in task.get("fields") or []:
            if f.get("id") in decisions:
                f["decision"] = True


def _lock_process_id(session: Session, process_id: str) -> None:
    """Serialise deploys of one process id until commit, so two designers deploying at once get N+1 and
    N+2 (or "unchanged" for the same file) instead of a duplicate-key error. SQLite's write transaction
    (BEGIN IMMEDIATE) already serialises; PostgreSQL takes a transaction-scoped advisory lock."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))"),
                        {"key": f"yicun.process:{process_id}"})


def dry_run(data: bytes, filename: str) -> dict[str, Any]:
    """What deploying the file would do, without a database: deploys / model only / refused (and why)."""
    from .errors import BpmnRejected
    try:
        compiled = compile_bpmn(data, filename)
    except BpmnRejected as exc:
        first = exc.findings[0]
        return {"file": filename, "outcome": "refused", "element": first.element_id, "line": first.line,
                "message": first.message, "errors": len(exc.findings)}
    runnable = [p.process_id for p in compiled.processes if p.executable]
    return {"file": filename, "outcome": "deploys" if runnable else "model only", "element": None, "line": None,
            "message": ", ".join(runnable) if runnable
            else "no executable process: kept as a model (viewable, not startable)",
            "errors": 0}


def latest_version(session: Session, process_id: str) -> ProcessVersion:
    # a case start needs the id and number only; the spec comes from the cache (load_spec), not from here
    pv = session.scalar(select(ProcessVersion).options(load_only(
                            ProcessVersion.process_id, ProcessVersion.version, ProcessVersion.name,
                            ProcessVersion.sha256, ProcessVersion.executable))
                        .where(ProcessVersion.process_id == process_id, ProcessVersion.executable.is_(True))
                        .order_by(ProcessVersion.version.desc()).limit(1))
    if pv is None:
        model_only = session.scalar(select(func.count()).where(ProcessVersion.process_id == process_id))
        if model_only:
            raise Conflict(f"process {process_id!r} is deployed as a model only (not executable)",
                           reason="process.model_only", service=process_id)
        raise NotFound(f"no deployed process for service {process_id!r}", reason="process.not_deployed",
                       service=process_id)
    return pv


def load_spec(session: Session, version_id: int, key: tuple[str, str] | None = None) -> LoadedSpec:
    """The restored spec of a process version, cached by content: (sha256, process id), because ids
    differ between databases. Callers that already hold the key save a query on the hot path."""
    if key is None:
        key_row = session.execute(select(ProcessVersion.sha256, ProcessVersion.process_id)
                                  .where(ProcessVersion.id == version_id)).first()
        if key_row is None:
            raise NotFound(f"no process version {version_id}", reason="process.version_not_found",
                           version_id=version_id)
        key = (key_row.sha256, key_row.process_id)
    with _CACHE_LOCK:
        hit = _CACHE.get(key)
        if hit is not None:
            _CACHE.move_to_end(key)
            return hit
    row = session.execute(select(ProcessVersion.spec_json, ProcessVersion.task_meta, ProcessVersion.properties)
                          .where(ProcessVersion.id == version_id)).one()
    if row.spec_json is None:
        raise Conflict(f"process version {version_id} is a model only and cannot run", reason="process.model_only",
                       version_id=version_id)
    spec, subs = spec_from_json(row.spec_json)
    meta = row.task_meta if isinstance(row.task_meta, dict) else json.loads(row.task_meta)
    loaded = LoadedSpec(spec, subs, meta, dict(row.properties or {}), decision_names(spec, subs),
                        first_steps(spec, meta))
    with _CACHE_LOCK:
        _CACHE[key] = loaded
        while len(_CACHE) > _CACHE_SIZE:
            _CACHE.popitem(last=False)
    return loaded


#: What a list of processes shows: never the BPMN text, the serialized spec or the task metadata (≈ 60 kB a
#: process; the 176 of the catalogue are 11 MB) — their user tasks and findings are counted by the database.
LISTED_COLUMNS = (ProcessVersion.id, ProcessVersion.process_id, ProcessVersion.version, ProcessVersion.name,
                  ProcessVersion.filename, ProcessVersion.sha256, ProcessVersion.executable,
                  ProcessVersion.deployed_at)


def _json_counts(session: Session) -> tuple[Any, Any]:
    """SQL for the number of user tasks (keys of `task_meta`) and of findings, per dialect."""
    keys = (func.json_each(ProcessVersion.task_meta) if db.is_sqlite(session)
            else func.json_object_keys(ProcessVersion.task_meta)).table_valued("key")
    user_tasks = select(func.count()).select_from(keys).scalar_subquery()
    return user_tasks.label("user_tasks"), func.json_array_length(ProcessVersion.findings).label("warnings")


def list_versions(session: Session, latest_only: bool = True) -> Sequence[Any]:
    """Deployed versions (the newest of each process, or all): rows of the listed columns plus
    `user_tasks` and `warnings` counts."""
    stmt = (select(*LISTED_COLUMNS, *_json_counts(session))
            .order_by(ProcessVersion.process_id, ProcessVersion.version.desc()))
    if latest_only:
        newest = (select(ProcessVersion.process_id, func.max(ProcessVersion.version).label("v"))
                  .group_by(ProcessVersion.process_id).subquery())
        stmt = stmt.join(newest, (newest.c.process_id == ProcessVersion.process_id)
                         & (newest.c.v == ProcessVersion.version))
    return session.execute(stmt).all()


def count_processes(session: Session) -> int:
    """How many processes are deployed (each counted once, whatever its number of versions)."""
    return session.scalar(select(func.count(func.distinct(ProcessVersion.process_id)))) or 0
