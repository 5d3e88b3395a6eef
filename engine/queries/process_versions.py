"""Deployed process versions as lists and the designer's pages show them (issue 11 §1, §5).

`process_items` and `service_choices` are the short lists (the rows of `processes.list_versions`, the 事项
filter). The designer's workspace reads the rest: `process_list` — every service item of the catalogue and
every process deployed outside it, each with its versions (who deployed, when, the file's hash, the findings
the deploy's checks stored, open cases per version) in four statements whatever the number of processes;
`process_page` — one version in detail (its steps, their deadlines, what it pins); `version_file` — the file
exactly as deployed; `version_diff` — what changed between two versions (engine/bpmn/diff.py).

Lint status is what the deploy stored (`process_versions.findings`: a deploy refuses errors, so these are
the warnings of the conventions), never recomputed for a list. Open cases are counted among the cases the
reader may see (`case_scope`): a clerk sees their village's, a designer at the city all of them.
"""
from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from sqlalchemy import func, literal, select, true
from sqlalchemy.orm import Session

from .. import catalog, db
from ..bpmn.diff import (
    REFERENCES,  # noqa: F401  (the diff page names a flow's ends by these properties)
    BpmnDiff,
    FileModel,
    diff_files,
    element_order,
    read_file,
    step_timers,
)
from ..errors import NotFound
from ..models import AuditEvent, Case, ProcessVersion, User
from ..processes import LISTED_COLUMNS
from .intake import initials, matches
from .models import ProcessVersionItem
from .scope import OPEN, Who, case_scope
from .serialize import JsonModel


def process_items(versions: Iterable[Any]) -> tuple[ProcessVersionItem, ...]:
    """Rows of `processes.list_versions` (listed columns and counts, never the BPMN, spec or metadata)."""
    return tuple(ProcessVersionItem(v.process_id, v.name, v.version, bool(v.executable), v.filename, v.sha256[:12],
                                    v.deployed_at, v.user_tasks or 0, v.warnings or 0) for v in versions)


def service_choices(session: Session) -> tuple[tuple[str, str], ...]:
    """(code, name) of every deployed service item, by code — the 事项 filter of the inbox and the case
    search. The name is the newest version's; only the two short columns are read (one row per version,
    a few hundred), never the BPMN or the spec."""
    newest = (select(ProcessVersion.process_id, func.max(ProcessVersion.version).label("v"))
              .group_by(ProcessVersion.process_id).subquery())
    rows = session.execute(select(ProcessVersion.process_id, ProcessVersion.name)
                           .join(newest, (newest.c.process_id == ProcessVersion.process_id)
                                 & (newest.c.v == ProcessVersion.version))
                           .order_by(ProcessVersion.process_id)).all()
    return tuple((r.process_id, r.name) for r in rows)


# ------------------------------------------------------------------------------------------ the designer's list
#: A step's deadline written as working days: `workdays(N)` (engine/bpmn/timers.py)
_WORKDAYS = re.compile(r"^workdays\((\d+)\)$")


@dataclass(frozen=True)
class VersionRow(JsonModel):
    """One deployed version as the process list and page show it: who deployed it and when, its file's hash,
    the findings the deploy's checks stored, and how many of its cases the reader may see are open."""
    id: int
    process_id: str
    version: int
    name: str
    filename: str
    sha256: str
    executable: bool
    deployed_at: datetime
    deployed_by: str | None   # the user's name; None: the server's operator (`operator` names them where known)
    operator: str | None
    errors: int
    warnings: int
    open_cases: int

    @property
    def short_sha(self) -> str:
        return self.sha256[:12]


@dataclass(frozen=True)
class ProcessEntry(JsonModel):
    """A service item of the catalogue (deployed or not) or a process deployed outside it, with its versions
    (newest first). `initials`: the pinyin initials of its name, so it is found as at the counter."""
    process_id: str
    name: str
    name_en: str
    department: str | None
    in_catalog: bool
    initials: str
    versions: tuple[VersionRow, ...]

    @property
    def code(self) -> str:
        return self.process_id

    @property
    def current(self) -> VersionRow | None:
        return self.versions[0] if self.versions else None

    @property
    def open_cases(self) -> int:
        return sum(v.open_cases for v in self.versions)


@dataclass(frozen=True)
class StepTimer(JsonModel):
    """A timer boundary event on a step: its deadline (`workdays` when written as working days) or warning."""
    id: str
    name: str
    expression: str
    workdays: int | None
    interrupting: bool


@dataclass(frozen=True)
class StepItem(JsonModel):
    """A user task of a version as the process page lists it (from the stored task metadata and the file)."""
    bpmn_id: str
    name: str
    lane: str | None
    level: str | None
    candidate_groups: tuple[str, ...]
    pauses_clock: str | None
    fields: int
    first: bool
    timers: tuple[StepTimer, ...]
    called: bool  # a step of a process deployed from another file that this version calls


@dataclass(frozen=True)
class FindingItem(JsonModel):
    severity: str
    message: str
    element_id: str | None
    line: int | None


@dataclass(frozen=True)
class CallPin(JsonModel):
    """A process of another file that the version calls, pinned at deploy (`process_versions.calls`)."""
    process_id: str
    version: int
    sha256: str
    via: str | None


@dataclass(frozen=True)
class ProcessPage(JsonModel):
    """A process with its versions and one of them (`shown`, the newest unless asked) in detail; `shown` is
    None for a catalogue item not deployed yet."""
    entry: ProcessEntry
    shown: VersionRow | None
    steps: tuple[StepItem, ...]
    findings: tuple[FindingItem, ...]
    calls: tuple[CallPin, ...]
    properties: Mapping[str, Any]


@dataclass(frozen=True)
class VersionFile:
    """A version's file exactly as it was deployed (the bytes whose SHA-256 the version records)."""
    process_id: str
    version: int
    filename: str
    data: bytes
    sha256: str
    executable: bool


@dataclass(frozen=True)
class VersionDiagram(JsonModel):
    """A version's file for the diagram viewer (web/static/diagram.js), with the elements a diff marks."""
    process_id: str
    version: int
    sha256: str
    xml: str
    added: tuple[str, ...] = ()
    changed: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()

    @property
    def validator(self) -> str:
        """An ETag: the file's hash (a version is immutable) and the marks."""
        marks = json.dumps([self.process_id, self.version, self.sha256, self.added, self.changed, self.removed])
        return hashlib.sha256(marks.encode()).hexdigest()[:32]


@dataclass(frozen=True)
class VersionDiff(JsonModel):
    """Two versions of a process and what changed from `old` to `new` (engine/bpmn/diff.py)."""
    entry: ProcessEntry
    old: VersionRow
    new: VersionRow
    diff: BpmnDiff


def _lint_counts(session: Session, version_ids: Sequence[int] | None) -> dict[int, dict[str, int]]:
    """Findings the deploy stored, counted by severity per version, by the database (one grouped statement)."""
    if db.is_sqlite(session):
        found = func.json_each(ProcessVersion.findings).table_valued("value").alias("f")
        severity: Any = func.json_extract(found.c.value, "$.severity")
    else:
        found = func.json_array_elements(ProcessVersion.findings).table_valued("value").alias("f")
        severity = found.c.value.op("->>")(literal("severity"))
    stmt = (select(ProcessVersion.id, severity.label("severity"), func.count().label("n"))
            .select_from(ProcessVersion).join(found, true()).group_by(ProcessVersion.id, severity))
    if version_ids is not None:
        stmt = stmt.where(ProcessVersion.id.in_(version_ids))
    counts: dict[int, dict[str, int]] = {}
    for row in session.execute(stmt):
        counts.setdefault(row.id, {})[str(row.severity)] = int(row.n)
    return counts


def _open_counts(session: Session, reader: Who, version_ids: Sequence[int] | None) -> dict[int, int]:
    """Open cases per version among those the reader may see (one grouped statement)."""
    stmt = (select(Case.process_version_id, func.count().label("n")).where(Case.status == OPEN, case_scope(reader))
            .group_by(Case.process_version_id))
    if version_ids is not None:
        stmt = stmt.where(Case.process_version_id.in_(version_ids))
    return {row.process_version_id: int(row.n) for row in session.execute(stmt)}


def _operators(session: Session, rows: Sequence[Any]) -> dict[int, str]:
    """Who deployed the versions the server's operator deployed, from their audit events (by instant)."""
    wanted = {(r.process_id, r.version): r.id for r in rows if r.deployed_by_id is None}
    if not wanted:
        return {}
    names: dict[int, str] = {}
    events = session.execute(select(AuditEvent.details).where(
        AuditEvent.action == "process.deployed", AuditEvent.case_id.is_(None),
        AuditEvent.at.in_({r.deployed_at for r in rows if r.deployed_by_id is None})))
    for (details,) in events:
        details = details if isinstance(details, dict) else json.loads(details or "{}")
        key = (details.get("process_id"), details.get("version"))
        if key in wanted and details.get("operator"):
            names[wanted[key]] = str(details["operator"]).removeprefix("operator:")
    return names


def _version_rows(session: Session, reader: Who, process_id: str | None = None,
                  with_operators: bool = False) -> list[VersionRow]:
    """Deployed versions (of one process, or all), newest first per process: four statements whatever their
    number — the listed columns, the findings counts, the open cases, the operators' names (one process only)."""
    stmt = (select(*LISTED_COLUMNS, ProcessVersion.deployed_by_id, User.display_name.label("deployer"))
            .outerjoin(User, User.id == ProcessVersion.deployed_by_id)
            .order_by(ProcessVersion.process_id, ProcessVersion.version.desc()))
    if process_id is not None:
        stmt = stmt.where(ProcessVersion.process_id == process_id)
    rows = session.execute(stmt).all()
    if not rows:
        return []
    ids = [r.id for r in rows] if process_id is not None else None
    lint, open_cases = _lint_counts(session, ids), _open_counts(session, reader, ids)
    operators = _operators(session, rows) if with_operators else {}
    return [VersionRow(r.id, r.process_id, r.version, r.name, r.filename, r.sha256, bool(r.executable),
                       r.deployed_at, r.deployer, operators.get(r.id), lint.get(r.id, {}).get("error", 0),
                       lint.get(r.id, {}).get("warning", 0), open_cases.get(r.id, 0)) for r in rows]


def _entry(process_id: str, versions: Sequence[VersionRow], item: Mapping[str, Any] | None) -> ProcessEntry:
    name = versions[0].name if versions else str((item or {}).get("name") or process_id)
    return ProcessEntry(process_id, name, str((item or {}).get("name_en") or ""), (item or {}).get("department"),
                        item is not None, initials(name), tuple(versions))


def process_list(session: Session, reader: Who, q: str = "") -> tuple[ProcessEntry, ...]:
    """Every service item of the catalogue and every process deployed outside it, by code, each with its
    versions; `q` narrows them as the counter's search does (code, name, pinyin initials). Never reads a
    file, a spec or task metadata: counts come from the database."""
    by_process: dict[str, list[VersionRow]] = {}
    for row in _version_rows(session, reader):
        by_process.setdefault(row.process_id, []).append(row)
    items = catalog.items_by_code()
    entries = [_entry(pid, by_process.get(pid, []), items.get(pid)) for pid in sorted(set(items) | set(by_process))]
    return tuple(e for e in entries if matches(e, q))


def _versions_or_404(session: Session, reader: Who, process_id: str) -> tuple[ProcessEntry, list[VersionRow]]:
    versions = _version_rows(session, reader, process_id, with_operators=True)
    item = catalog.items_by_code().get(process_id)
    if not versions and item is None:
        raise NotFound(f"no process {process_id!r}", reason="process.not_found", process=process_id)
    return _entry(process_id, versions, item), versions


def process_entry(session: Session, reader: Who, process_id: str) -> ProcessEntry:
    """A process with its versions (newest first), without any file: NotFound if it is neither deployed nor
    in the catalogue."""
    return _versions_or_404(session, reader, process_id)[0]


def _pick(process_id: str, versions: Sequence[VersionRow], version: int) -> VersionRow:
    found = next((v for v in versions if v.version == version), None)
    if found is None:
        known = ", ".join(f"v{v.version}" for v in sorted(versions, key=lambda v: v.version)) or "-"
        raise NotFound(f"process {process_id} has no version {version} (deployed: {known})",
                       reason="process.version_unknown", process=process_id, version=version, versions=known)
    return found


def _timers(model: FileModel) -> dict[str, tuple[StepTimer, ...]]:
    out = {}
    for host, events in step_timers(model).items():
        timers = []
        for e in events:
            expression = e.props.get("deadline", "")
            days = _WORKDAYS.match(expression)
            timers.append(StepTimer(e.id, e.name, expression, int(days.group(1)) if days else None,
                                    e.props.get("cancelActivity", "true").lower() != "false"))
        out[host] = tuple(timers)
    return out


def process_page(session: Session, reader: Who, process_id: str, version: int | None = None) -> ProcessPage:
    """A process's versions and one version in detail (the newest unless `version`): its steps with lane,
    deadlines and candidate groups, the findings its deploy stored, the versions of other files it pins.
    NotFound for a process neither deployed nor in the catalogue, or a version it does not have."""
    entry, versions = _versions_or_404(session, reader, process_id)
    if not versions and version is None:
        return ProcessPage(entry, None, (), (), (), {})
    shown = _pick(process_id, versions, version) if version is not None else versions[0]
    row = session.execute(select(ProcessVersion.bpmn_xml, ProcessVersion.task_meta, ProcessVersion.findings,
                                 ProcessVersion.calls, ProcessVersion.properties)
                          .where(ProcessVersion.id == shown.id)).one()
    model = read_file(row.bpmn_xml, process_id)
    timers = _timers(model)
    meta: Mapping[str, Any] = _json(row.task_meta) or {}
    steps = tuple(StepItem(bpmn_id, str(m.get("name") or bpmn_id), m.get("lane_name") or m.get("lane_id"),
                           m.get("level"), tuple(m.get("candidate_groups") or ()), m.get("pauses_clock"),
                           len(m.get("fields") or ()), bool(m.get("first")), timers.get(bpmn_id, ()),
                           bpmn_id not in model.elements)
                  for bpmn_id in element_order(model, meta) for m in [meta[bpmn_id]])
    findings = tuple(FindingItem(str(f.get("severity", "")), str(f.get("message", "")), f.get("element_id"),
                                 f.get("line")) for f in _json(row.findings) or ())
    calls = tuple(CallPin(pid, int(pin["version"]), str(pin.get("sha256", ""))[:12], pin.get("via"))
                  for pid, pin in sorted((_json(row.calls) or {}).items()))
    return ProcessPage(entry, shown, steps, findings, calls, dict(_json(row.properties) or {}))


def _json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


def _version_id(session: Session, process_id: str, version: int) -> int:
    found = session.scalar(select(ProcessVersion.id).where(ProcessVersion.process_id == process_id,
                                                           ProcessVersion.version == version))
    if found is not None:
        return int(found)
    known = sorted(session.scalars(select(ProcessVersion.version).where(ProcessVersion.process_id == process_id)))
    if not known and process_id not in catalog.items_by_code():
        raise NotFound(f"no process {process_id!r}", reason="process.not_found", process=process_id)
    listed = ", ".join(f"v{v}" for v in known) or "-"
    raise NotFound(f"process {process_id} has no version {version} (deployed: {listed})",
                   reason="process.version_unknown", process=process_id, version=version, versions=listed)


def version_file(session: Session, process_id: str, version: int) -> VersionFile:
    """The file a version was deployed from, byte for byte: deploying it again is "unchanged" (the same
    version), whether the file was executable or kept as a model only."""
    row = session.execute(select(ProcessVersion.filename, ProcessVersion.bpmn_xml, ProcessVersion.sha256,
                                 ProcessVersion.executable)
                          .where(ProcessVersion.id == _version_id(session, process_id, version))).one()
    return VersionFile(process_id, version, row.filename, row.bpmn_xml.encode("utf-8"), row.sha256,
                       bool(row.executable))


def version_diagram(session: Session, process_id: str, version: int) -> VersionDiagram:
    """A version's file for the diagram viewer (one row, the XML column only)."""
    row = session.execute(select(ProcessVersion.bpmn_xml, ProcessVersion.sha256)
                          .where(ProcessVersion.id == _version_id(session, process_id, version))).one()
    return VersionDiagram(process_id, version, row.sha256, row.bpmn_xml)


def _diff(session: Session, reader: Who, process_id: str, old: int, new: int) -> tuple[VersionDiff, dict[int, Any]]:
    entry, versions = _versions_or_404(session, reader, process_id)
    before, after = _pick(process_id, versions, old), _pick(process_id, versions, new)
    rows = session.execute(select(ProcessVersion.id, ProcessVersion.bpmn_xml, ProcessVersion.sha256)
                           .where(ProcessVersion.id.in_({before.id, after.id}))).all()
    files = {r.id: r for r in rows}
    found = diff_files(files[before.id].bpmn_xml, files[after.id].bpmn_xml, process_id)
    return VersionDiff(entry, before, after, found), files


def version_diff(session: Session, reader: Who, process_id: str, old: int, new: int) -> VersionDiff:
    """What changed from version `old` to version `new` of a process (either order), element by element.
    NotFound for an unknown process, and naming the deployed versions for a version it does not have."""
    return _diff(session, reader, process_id, old, new)[0]


def diff_diagram(session: Session, reader: Who, process_id: str, old: int, new: int, side: str) -> VersionDiagram:
    """One side of a diff drawn: the newer version (`side` "new") with its added and changed elements marked,
    or the older ("old") with its removed and changed ones."""
    found, files = _diff(session, reader, process_id, old, new)
    shown = found.new if side == "new" else found.old
    drawn = VersionDiagram(process_id, shown.version, files[shown.id].sha256, files[shown.id].bpmn_xml)
    changed = found.diff.ids("changed")
    if side == "new":
        return replace(drawn, added=found.diff.ids("added"), changed=changed)
    return replace(drawn, removed=found.diff.ids("removed"), changed=changed)
