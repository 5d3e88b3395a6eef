"""Process versions: deploy a BPMN file — or a file set, whose processes may call each other's — as new
immutable versions, find the one a case runs on, and keep restored specs in memory (a spec is restored
once per process, not once per request).

A call activity may call a process of another file: at deploy it is linked to the newest executable
version of that process (or to the one deployed in the same set), and the caller's version pins it — the
called specs are stored in the caller's spec, the pinned versions in `process_versions.calls` — so a
running case keeps its callee when a newer one is deployed (bpmn/linking.py). Deploying the same file
again after a newer callee is a new version that pins the newer callee; with the same callee it is
"unchanged"."""
from __future__ import annotations

import hashlib
import json
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import func, insert, select, text
from sqlalchemy.orm import Session, load_only

from . import catalog, clock, db, policy
from .bpmn import MAX_BPMN_BYTES as MAX_BPMN_BYTES  # re-exported: the web's upload reads no more of a file
from .bpmn import (
    NS,
    CompiledFile,
    CompiledProcess,
    compile_bpmn,
    decision_names,
    first_steps,
    load_xml,
    spec_from_json,
    spec_to_json,
)
from .bpmn.conventions import lint_data
from .bpmn.linking import MODEL_ONLY, Callee, link
from .errors import BpmnRejected, Conflict, Finding, NotFound
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
    created: bool  # False when the same file (calling the same versions) was already the newest version
    findings: list[dict[str, Any]]
    #: the versions of processes from other files it calls (process id → {version, sha256[, via]})
    calls: dict[str, Any] = field(default_factory=dict)


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
    A file set (several files) is `deploy_files`.
    """
    return deploy_files(session, [(data, filename)], actor, now, None if compiled is None else [compiled])


def deploy_files(session: Session, files: Sequence[tuple[bytes, str]], actor: Actor | User | None = None,
                 now: datetime | None = None, compiled: Sequence[CompiledFile] | None = None, *,
                 override_reason: str | None = None, check_scenarios: bool = True) -> list[DeployResult]:
    """Deploy a file set — (data, filename) pairs — together: every process of every file, callees before
    their callers (a call activity may call a process of another file of the set, or one deployed before:
    the newest executable version, which the caller's version pins; bpmn/linking.py), all in the caller's
    transaction. All or nothing: any refusal (a file's own, a called process missing, calls in a cycle,
    one process in two files) raises BpmnRejected listing every finding before anything is written.
    `compiled` as for `deploy`, one per file. Results come in the order the processes were deployed.
    A process getting a new version that has process tests (engine/scenarios.py) must pass them first, or
    the set is refused unless `override_reason` is given (audited); `check_scenarios=False` is the
    scenario runner's own deploy into its throwaway database."""
    from .cases import audit  # engine.cases imports this module (specs), so its writer is imported here
    actor = Actor.operator() if actor is None else as_actor(actor)
    policy.require(policy.may_deploy(actor), "process.deploy", f"{actor.username} may not deploy processes")
    now = now or clock.now()
    if compiled is None:
        compiled = [compile_bpmn(data, filename) for data, filename in files]  # before the first statement
    elif len(compiled) != len(files) or any(c.sha256 != hashlib.sha256(data).hexdigest()
                                            for c, (data, _name) in zip(compiled, files, strict=False)):
        raise ValueError("the compiled files are not the files being deployed")
    for process_id in sorted({proc.process_id for cf in compiled for proc in cf.processes}):
        _lock_process_id(session, process_id)  # all at once, in one order: two file sets never deadlock
    results = []
    plans = _plan(session, compiled)
    if check_scenarios:
        from . import scenarios  # process tests: a stat per process without a scenario file
        scenarios.guard(session, files, [p.proc.process_id for p in plans if p.created and p.proc.executable],
                        actor.id, actor.audit_details, now, override_reason)
    for plan in plans:
        cf, proc = plan.file, plan.proc
        findings = [f.to_dict() for f in cf.findings]
        if not plan.created and plan.latest is not None:
            results.append(DeployResult(proc.process_id, proc.name, plan.version, plan.latest.id, proc.executable,
                                        False, findings, dict(plan.calls)))
            continue
        meta = plan.task_meta
        if proc.executable:
            _mark_intake(meta, proc.spec, plan.subprocess_specs)
        spec_json = spec_to_json(proc.spec, plan.subprocess_specs) if proc.executable else None
        version_id = session.execute(insert(ProcessVersion).returning(ProcessVersion.id).values(
            process_id=proc.process_id, version=plan.version, name=proc.name, filename=cf.filename,
            bpmn_xml=cf.xml.decode("utf-8"), sha256=cf.sha256, spec_json=spec_json, task_meta=meta,
            findings=findings, executable=proc.executable, properties=proc.properties,
            calls=plan.calls or None, deployed_at=now, deployed_by_id=actor.id)).scalar_one()
        details: dict[str, Any] = {"process_id": proc.process_id, "version": plan.version, "file": cf.filename,
                                   "sha256": cf.sha256, "executable": proc.executable, **actor.audit_details}
        if plan.calls:
            details["calls"] = {pid: pin["version"] for pid, pin in plan.calls.items()}
        audit.record(session, "process.deployed", at=now, actor_id=actor.id,
                     old=str(plan.latest.version) if plan.latest else None, new=str(plan.version), **details)
        results.append(DeployResult(proc.process_id, proc.name, plan.version, version_id, proc.executable, True,
                                    findings, dict(plan.calls)))
    return results


@dataclass
class _Planned:
    """One process of a file set, linked and numbered, not yet written."""
    file: CompiledFile
    proc: CompiledProcess
    latest: Any  # the newest stored version's row (id, version, sha256, calls), or None
    version: int
    created: bool
    subprocess_specs: dict[str, Any]
    task_meta: dict[str, dict[str, Any]]
    calls: dict[str, Any]


def _plan(session: Session | None, compiled: Sequence[CompiledFile]) -> list[_Planned]:
    """The processes of a file set in deploy order, each linked to what it calls and given its version
    number (an unchanged one keeps the newest); BpmnRejected with every finding if the set cannot deploy.
    Without a session (a dry run with no database) nothing counts as deployed before."""
    nodes = [(cf, proc) for cf in compiled for proc in cf.processes]
    findings = _set_findings(nodes)
    if findings:
        raise BpmnRejected(f"the file set could not be deployed: {len(findings)} error(s)", findings)
    in_set: dict[str, Callee] = {}
    model_only = {proc.process_id for _cf, proc in nodes if not proc.executable}
    plans = []
    for cf, proc in nodes:
        latest = None if session is None else session.execute(
            select(ProcessVersion.id, ProcessVersion.version, ProcessVersion.sha256, ProcessVersion.calls)
            .where(ProcessVersion.process_id == proc.process_id)
            .order_by(ProcessVersion.version.desc()).limit(1)).first()
        meta = {tid: m.to_dict() for tid, m in proc.user_tasks.items()}
        subs, calls = proc.subprocess_specs, {}
        if proc.external_calls:
            callees: dict[str, Callee | str] = {}
            for callee_id in proc.external_calls:
                callee = in_set.get(callee_id) or (None if callee_id in model_only else
                                                   _deployed_callee(session, callee_id))
                if callee is not None:
                    callees[callee_id] = callee
                elif callee_id in model_only or (session is not None and _model_only(session, callee_id)):
                    callees[callee_id] = MODEL_ONLY
            linked, found = link(proc, meta, callees, cf.xml, cf.filename)
            findings += found
            subs, meta, calls = linked.subprocess_specs, linked.task_meta, linked.calls
        newest = latest.version if latest is not None else 0
        unchanged = latest is not None and latest.sha256 == cf.sha256 and (latest.calls or {}) == calls
        version = newest if unchanged else newest + 1
        plans.append(_Planned(cf, proc, latest, version, not unchanged, subs, meta, calls))
        if proc.executable:
            in_set[proc.process_id] = Callee(proc.process_id, version, cf.sha256, proc.spec, subs, meta, calls)
    if findings:
        raise BpmnRejected(f"the file set could not be deployed: {len(findings)} error(s)", findings)
    return plans


def _set_findings(nodes: list[tuple[CompiledFile, CompiledProcess]]) -> list[Finding]:
    """One process in two files of the set, and calls between the set's files that form a cycle; on
    success `nodes` is reordered in place so that every process comes after the ones it calls."""
    findings: list[Finding] = []
    seen: dict[str, str] = {}
    for cf, proc in nodes:
        if proc.process_id in seen and seen[proc.process_id] != cf.filename:
            findings.append(Finding("error", f"process {proc.process_id!r} is defined in both {seen[proc.process_id]} "
                                    f"and {cf.filename}: a file set defines each process once", proc.process_id,
                                    None, cf.filename))
        elif proc.process_id in seen:
            findings.append(Finding("error", f"{cf.filename} is in the file set twice", None, None, cf.filename))
        seen.setdefault(proc.process_id, cf.filename)
    if findings:
        return findings
    index = {proc.process_id: i for i, (_cf, proc) in enumerate(nodes) if proc.executable}
    order: list[int] = []
    state: dict[int, int] = {}  # 1: on the path being walked, 2: placed
    for first in range(len(nodes)):
        if first in state:
            continue
        path = [(first, iter(sorted(nodes[first][1].external_calls)))]
        state[first] = 1
        while path:
            i, pending = path[-1]
            callee = next((c for c in pending if c in index), None)
            if callee is None:
                path.pop()
                state[i] = 2
                order.append(i)
                continue
            j = index[callee]
            if state.get(j) == 1:  # back to a process on the path: a cycle
                ring = [nodes[k][1] for k, _ in path[[k for k, _ in path].index(j):]]
                cf, proc = nodes[i]
                element, line = proc.external_calls[callee][0]
                chain = " → ".join(f"{p.process_id} ({nodes[index[p.process_id]][0].filename})" for p in ring)
                return [Finding("error", f"processes call each other across files: {chain} → {callee}; a cycle of "
                                "calls would never finish", element, line, cf.filename)]
            if j not in state:
                state[j] = 1
                path.append((j, iter(sorted(nodes[j][1].external_calls))))
    nodes[:] = [nodes[i] for i in order]
    return []


def _deployed_callee(session: Session | None, process_id: str) -> Callee | None:
    """The newest executable version of a process, as a call activity of another file would pin it."""
    if session is None:
        return None
    row = session.execute(select(ProcessVersion.id, ProcessVersion.version, ProcessVersion.sha256,
                                 ProcessVersion.calls)
                          .where(ProcessVersion.process_id == process_id, ProcessVersion.executable.is_(True))
                          .order_by(ProcessVersion.version.desc()).limit(1)).first()
    if row is None:
        return None
    loaded = load_spec(session, row.id, key=spec_key(row.sha256, process_id, row.calls))
    return Callee(process_id, row.version, row.sha256, loaded.spec, loaded.subprocess_specs, loaded.task_meta,
                  row.calls or {})


def _model_only(session: Session, process_id: str) -> bool:
    return bool(session.scalar(select(func.count()).where(ProcessVersion.process_id == process_id)))


def spec_key(sha256: str, process_id: str, calls: Any = None) -> tuple[str, str]:
    """The spec cache's key for a version: its file's hash and process id — and, for a version that calls
    processes of other files, the versions it pins (the same file deployed again after a newer callee is a
    new version with another spec). Content, not row ids: ids differ between databases."""
    if not calls:
        return sha256, process_id
    if isinstance(calls, str):
        calls = json.loads(calls)
    pins = hashlib.sha256(json.dumps(calls, sort_keys=True).encode()).hexdigest()[:16]
    return f"{sha256}+{pins}", process_id


def case_spec_key(case: Any) -> tuple[str, str]:
    """`spec_key` from a case row read with its version's sha256, process_id and calls (`process_calls`)."""
    return spec_key(case["sha256"], case["process_id"], case["process_calls"])


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
    """What deploying the file would do, without a database: deploys / model only / refused (and why). A
    process it calls from another file counts as missing here (`dry_run_files` with a session looks)."""
    return dry_run_files([(data, filename)])[0]


def dry_run_files(files: Sequence[tuple[bytes, str]], session: Session | None = None) -> list[dict[str, Any]]:
    """What deploying the file set would do, one outcome per file: deploys / model only / refused (and why).
    With a session, processes deployed before count as callable (read only: nothing is locked or written).
    The set deploys all or nothing, so a file with no fault of its own is refused with its set."""
    compiled, outcomes = [], {}
    for data, filename in files:
        try:
            compiled.append(compile_bpmn(data, filename))
        except BpmnRejected as exc:
            outcomes[filename] = _refused(filename, exc.findings)
    if compiled and not outcomes:
        try:
            _plan(session, compiled)
        except BpmnRejected as exc:
            for cf in compiled:
                mine = [f for f in exc.findings if f.file == cf.filename]
                if mine:
                    outcomes[cf.filename] = _refused(cf.filename, mine)
    refused = list(outcomes)
    out = []
    for _data, filename in files:
        if filename in outcomes:
            out.append(outcomes[filename])
            continue
        if refused:
            out.append({"file": filename, "outcome": "refused", "element": None, "line": None, "errors": 0,
                        "message": f"not deployed: the file set is refused ({', '.join(refused)})"})
            continue
        cf = next(c for c in compiled if c.filename == filename)
        runnable = [p.process_id for p in cf.processes if p.executable]
        out.append({"file": filename, "outcome": "deploys" if runnable else "model only", "element": None,
                    "line": None, "message": ", ".join(runnable) if runnable
                    else "no executable process: kept as a model (viewable, not startable)", "errors": 0})
    return out


@dataclass(frozen=True)
class FileCheck:
    """One file of a set as the designer's modeler and upload page show it (`check_files`): would it deploy,
    the ids of its processes, and every finding with its element id — refusals (`error`, rule `deploy`),
    the compiler's warnings, and the conventions of DESIGN.md §6 (`yicun bpmn lint`, rule `convention`),
    which are shown as warnings: a Camunda Modeler file without our lanes still deploys."""
    file: str
    outcome: str  # deploys | model only | refused
    process_ids: tuple[str, ...]
    findings: tuple[dict[str, Any], ...]

    def to_dict(self) -> dict[str, Any]:
        return {"file": self.file, "outcome": self.outcome, "process_ids": list(self.process_ids),
                "findings": [dict(f) for f in self.findings]}


def check_files(files: Sequence[tuple[bytes, str]], session: Session | None = None) -> list[FileCheck]:
    """`dry_run_files` with every finding instead of the first, plus the conventions lint (each file compiled
    once): what a designer fixes before deploying. Read only, like the dry run."""
    compiled: list[CompiledFile | None] = []
    errors: list[list[Finding]] = []
    for data, filename in files:
        try:
            compiled.append(compile_bpmn(data, filename))
            errors.append([])
        except BpmnRejected as exc:
            compiled.append(None)
            errors.append(list(exc.findings))
    ready = [cf for cf in compiled if cf is not None]
    if ready and len(ready) == len(files):
        try:
            _plan(session, ready)
        except BpmnRejected as exc:
            for finding in exc.findings:
                index = next((i for i, (_d, name) in enumerate(files) if name == finding.file), 0)
                errors[index].append(finding)
    refused = [name for (_d, name), errs in zip(files, errors, strict=True) if errs]
    try:
        items = catalog.items_by_code() if catalog.catalog_path().exists() else {}
    except (OSError, ValueError):
        items = {}
    out = []
    for (data, filename), cf, errs in zip(files, compiled, errors, strict=True):
        try:  # the engine's safe loader: no DTD, no entities, size caps
            processes_in_file = load_xml(data, filename).getroot().findall("bpmn:process", NS)
        except BpmnRejected:
            processes_in_file = []
        ids = tuple(p.get("id", "") for p in processes_in_file)
        if errs:
            out.append(FileCheck(filename, "refused", ids, tuple(dict(f.to_dict(), rule="deploy") for f in errs)))
            continue
        if refused:
            note = Finding("error", f"not deployed: the file set is refused ({', '.join(refused)})", file=filename)
            out.append(FileCheck(filename, "refused", ids, (dict(note.to_dict(), rule="deploy"),)))
            continue
        assert cf is not None
        runnable = [p for p in cf.processes if p.executable]
        executable = [p.get("id", "") for p in processes_in_file if p.get("isExecutable", "true").lower() != "false"]
        # the lint of one executable process covers the compiler's convention warnings (lanes, deadlines, DI)
        findings = [] if len(executable) == 1 else [dict(f.to_dict(), rule="deploy") for f in cf.findings]
        code = executable[0] if len(executable) == 1 else None
        for f in lint_data(data, filename, items.get(code) if code else None, compiled=cf, code=code):
            findings.append(dict(f.to_dict(), severity="warning", rule="convention"))
        out.append(FileCheck(filename, "deploys" if runnable else "model only", ids, tuple(findings)))
    return out


def _refused(filename: str, findings: Sequence[Finding]) -> dict[str, Any]:
    first = findings[0]
    return {"file": filename, "outcome": "refused", "element": first.element_id, "line": first.line,
            "message": first.message, "errors": len(findings)}


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
    """The restored spec of a process version, cached by content (`spec_key`: file hash, process id and
    the versions it pins), because ids differ between databases. Callers that already hold the key save a
    query on the hot path."""
    if key is None:
        key_row = session.execute(select(ProcessVersion.sha256, ProcessVersion.process_id, ProcessVersion.calls)
                                  .where(ProcessVersion.id == version_id)).first()
        if key_row is None:
            raise NotFound(f"no process version {version_id}", reason="process.version_not_found",
                           version_id=version_id)
        key = spec_key(key_row.sha256, key_row.process_id, key_row.calls)
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
