"""Processes that span files (issue 11 §3): a call activity whose called process is not in its own file is
linked, when the file is deployed, to a version of that process deployed from another file (or deployed
together with it), and the caller's version **pins** that version.

How: the called process's spec — with everything it calls in turn, its own pins included — is put into
the caller's `subprocess_specs`, which the caller's version stores in its spec JSON; the called steps'
metadata goes into the caller's task metadata, and the pins (`{process id: {version, sha256[, via]}}`)
into `process_versions.calls`. So a case restores exactly the callee it started with, whatever is deployed
later, and the spec cache, the restore and the serializer work as for a file that holds everything.

Why resolve at deploy and not when a case starts: SpiffWorkflow needs every called spec when the workflow
is built (`BpmnWorkflow(spec, subprocess_specs)` — without it `WorkflowTaskException: The called process
… was not found` at run time, SPIFFWORKFLOW.md §9) and keys them by process id, one spec per id per case;
and a version that names what it runs can be checked (smoke run, step ids) before anyone starts a case.

Refused (findings naming the call activity): a called process that is neither deployed nor in the files
deployed with it; calls that lead back to the caller (a cycle, e.g. through a version deployed earlier);
one process id that would run in two different versions in one case; a step id of the caller that is a
different step of a called process (steps are routed by id).
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from lxml import etree

from ..errors import Finding
from ..expressions import time_budget
from .loading import DEPLOY_TIME_BUDGET_SECONDS, NS
from .metadata import CompiledProcess


@dataclass(frozen=True)
class Callee:
    """A version of a process that a call activity of another file may call."""

    process_id: str
    version: int
    sha256: str  # of the file it was deployed from
    spec: Any
    subprocess_specs: Mapping[str, Any]
    task_meta: Mapping[str, Mapping[str, Any]]  # its steps, those of what it calls included
    calls: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)  # its own pins

    def pin(self) -> dict[str, Any]:
        return {"version": self.version, "sha256": self.sha256}


#: In `link`'s callees: the process is deployed (or in the set) only as a model, so it cannot be called.
MODEL_ONLY = "model only"


@dataclass(frozen=True)
class Linked:
    """A process with the processes it calls from other files put in."""

    subprocess_specs: dict[str, Any]
    task_meta: dict[str, dict[str, Any]]
    calls: dict[str, dict[str, Any]]  # the pins, for process_versions.calls (empty: calls nothing elsewhere)


def link(proc: CompiledProcess, task_meta: Mapping[str, Mapping[str, Any]], callees: Mapping[str, Callee | str],
         xml: bytes, filename: str) -> tuple[Linked, list[Finding]]:
    """Put the called processes (`callees`, by process id; MODEL_ONLY or absent: cannot be called) into
    `proc`; `task_meta` is its own steps' metadata. Returns the linked process and the findings (refusals)
    — none when it calls nothing elsewhere."""
    subs = dict(proc.subprocess_specs)
    meta = {tid: dict(m) for tid, m in task_meta.items()}
    calls: dict[str, dict[str, Any]] = {}
    findings: list[Finding] = []
    for callee_id, sites in sorted(proc.external_calls.items()):
        element, line = sites[0] if sites else (None, None)

        def refuse(message: str, element: str | None = element, line: int | None = line) -> None:
            findings.append(Finding("error", message, element, line, filename))

        callee = callees.get(callee_id)
        if callee is MODEL_ONLY:
            refuse(f"call activity calls process {callee_id!r}, which is deployed as a model only (not "
                   "executable): it cannot run in a case")
            continue
        if not isinstance(callee, Callee):
            refuse(f"call activity calls process {callee_id!r}, which is not in this file, not deployed and not among "
                   f"the files deployed with it: deploy the file defining {callee_id!r} first, or together with "
                   "this one")
            continue
        if proc.process_id in (callee_id, *callee.subprocess_specs, *callee.calls):
            via = callee.calls.get(proc.process_id, {}).get("via")
            refuse(f"process {proc.process_id!r} calls {callee_id!r} (version {callee.version}), which calls "
                   f"{proc.process_id!r} back{f' through {via!r}' if via else ''}: a cycle of calls would never "
                   "finish")
            continue
        offered = {callee_id: callee.spec, **callee.subprocess_specs}
        clash = next((name for name, spec in offered.items() if name in subs and not _same(subs[name], spec)), None)
        if clash is not None:
            pinned = calls.get(clash)
            refuse(f"process {clash!r} would run in two versions in one case: "
                   + (f"version {pinned['version']} (through {pinned.get('via') or clash!r}) and the one "
                      if pinned else "the one in this file and the one ")
                   + f"{callee_id!r} version {callee.version} calls; deploy them so that they call the same version")
            continue
        steps = {tid: _step(m) for tid, m in callee.task_meta.items()}
        same_id = next((tid for tid, m in steps.items() if tid in meta and _step(meta[tid]) != m), None)
        if same_id is not None:
            refuse(f"step id {same_id!r} is both a step of this file and a different step of the called process "
                   f"{callee_id!r}: steps are routed by id, so ids must be unique across the processes one case "
                   "runs; rename one")
            continue
        subs.update(offered)
        meta = {**steps, **meta}
        calls[callee_id] = callee.pin()
        for name, pin in callee.calls.items():
            calls.setdefault(name, {**pin, "via": pin.get("via") or callee_id})
    linked = Linked(subs, meta, calls)
    if proc.external_calls and not findings:
        findings += _smoke(proc, subs, xml, filename)
    return linked, findings


def _step(meta: Mapping[str, Any]) -> dict[str, Any]:
    """A step's metadata without what the deploy adds for its own process (first step, decision fields)."""
    out = {k: v for k, v in meta.items() if k != "first"}
    if out.get("fields"):
        out["fields"] = [{k: v for k, v in f.items() if k != "decision"} for f in out["fields"]]
    return out


def _same(a: Any, b: Any) -> bool:
    """Two specs of one process id: the same object, or the same content (two callees pinning one version)."""
    if a is b:
        return True
    from .serializer import SERIALIZER
    return bool(SERIALIZER.registry.convert(a) == SERIALIZER.registry.convert(b))


def _smoke(proc: CompiledProcess, subs: dict[str, Any], xml: bytes, filename: str) -> list[Finding]:
    """The compile's smoke run (a new case to its first wait), now that the called processes are in."""
    from .compiler import _smoke_run
    from .loading import load_xml
    root = load_xml(xml, filename).getroot()
    process = next((p for p in root.findall("bpmn:process", NS) if p.get("id") == proc.process_id), None)
    if process is None:  # not reachable: the process came from this file
        process = etree.Element("process", id=proc.process_id)
    with time_budget(DEPLOY_TIME_BUDGET_SECONDS):
        return _smoke_run(proc.spec, subs, process, filename)
