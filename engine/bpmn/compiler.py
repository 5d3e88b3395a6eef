"""`compile_bpmn`: a file in, checked specs and routing metadata out, or `BpmnRejected` listing every error.

Load safely → XSD → our checks → SpiffWorkflow's parser → per-process properties → a smoke run of a new
instance to its first wait state. Whatever goes wrong on the way is a finding, never a traceback.
"""
from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from lxml import etree
from SpiffWorkflow.bpmn.parser.ValidationException import ValidationException
from SpiffWorkflow.bpmn.specs.mixins.subworkflow_task import SubWorkflowTask as SubWorkflowTaskMixin
from SpiffWorkflow.exceptions import SpiffWorkflowException

from .. import clock
from ..errors import BpmnRejected, Finding
from ..expressions import ExpressionLimitExceeded, time_budget
from . import workflow as wfl
from .checks import convention_findings, lint_tree
from .loading import BPMN, DEPLOY_TIME_BUDGET_SECONDS, NS, _line_of, _xsd_findings, load_xml
from .metadata import CompiledProcess, _check_properties, end_statuses, publicity_events, user_task_meta
from .parser import YicunParser
from .timers import TimerValueError


@dataclass
class CompiledFile:
    filename: str
    sha256: str
    xml: bytes
    processes: list[CompiledProcess]
    findings: list[Finding]



# ------------------------------------------------------------------------------------------ compile
def _spiff_finding(exc: Exception, tree: etree._ElementTree, filename: str) -> Finding:
    element_id = getattr(exc, "id", None) or None
    store = re.search(r"Data Store with name (.+) has no implementation", str(exc))
    if store and not element_id:
        refs = tree.getroot().xpath("//bpmn:dataStoreReference[@name=$n] | //bpmn:dataStore[@name=$n]",
                                    n=store.group(1), namespaces=NS)
        if refs:
            return Finding("error", f"data store {store.group(1)!r} has no implementation in Yicun (case data lives "
                           "in the case)", refs[0].get("id"), refs[0].sourceline, filename)
    missing = re.search(r"The process '([^']+)' was not found", str(exc))
    if missing and not element_id:  # a call activity whose target is not in this file
        calls = tree.getroot().xpath("//bpmn:callActivity[@calledElement=$p]", p=missing.group(1), namespaces=NS)
        if calls:
            return Finding("error", f"call activity calls process {missing.group(1)!r}, which is not in this file; "
                           "deploy the file defining it first, or together with this one", calls[0].get("id"),
                           calls[0].sourceline, filename)
    line = getattr(exc, "line_number", None) or getattr(exc, "sourceline", None) or _line_of(tree, element_id)
    message = str(getattr(exc, "message", None) or exc).strip().rstrip(".")
    return Finding("error", message, element_id, line if isinstance(line, int) else None, filename)


def _causes(exc: BaseException) -> Iterable[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def _bound_exceeded(exc: BaseException) -> BaseException | None:
    """The resource or timer-range refusal behind an error of the smoke run (SpiffWorkflow wraps it), if any;
    unlike a missing field, such an error does not depend on what a case will hold."""
    for cause in _causes(exc):
        if isinstance(cause, (ExpressionLimitExceeded, TimerValueError)):
            return cause
        if getattr(cause, "error_type", None) == ExpressionLimitExceeded.__name__:
            return cause
    return None


def _failed_element(exc: BaseException) -> str | None:
    for cause in _causes(exc):
        task = getattr(cause, "task", None)
        spec = getattr(task, "task_spec", None) or getattr(cause, "task_spec", None)
        element_id = getattr(cause, "element_id", None) or getattr(spec, "bpmn_id", None)
        if element_id:
            return element_id
    return None


def _smoke_run(spec: Any, subs: dict[str, Any], process: etree._Element, filename: str) -> list[Finding]:
    """Run a new instance to its first wait state: a process that loops without waiting, or that would
    stall with nothing a user or a timer can do, is refused now rather than found stuck in production."""
    wf = wfl.new_workflow(spec, subs)
    try:
        with clock.using(clock.ManualClock("2026-01-05T09:00:00+08:00")):
            wfl.run_until_waiting(wf, max_steps=2000)
    except wfl.EndlessLoop as exc:
        return [Finding("error", str(exc), process.get("id"), process.sourceline, filename)]
    except Exception as exc:
        bound = _bound_exceeded(exc)
        if bound is None:
            return []  # it needs case data (a condition on an intake field): judged when it runs
        element_id = _failed_element(exc) or process.get("id")
        found = process.xpath(".//*[@id=$id]", id=element_id)
        return [Finding("error", f"a new case fails here: {bound}", element_id,
                        found[0].sourceline if found else process.sourceline, filename)]
    stuck = wfl.stalled_at(wf)
    if not stuck:
        return []
    first = process.xpath(".//*[@id=$id]", id=stuck[0])
    return [Finding("error", f"a new case would stall at {', '.join(stuck)}: it waits for something Yicun "
                    "never sends (a message, signal or external service) and has no user task or timer",
                    stuck[0], first[0].sourceline if first else process.sourceline, filename)]


def compile_bpmn(data: bytes, filename: str = "<upload>") -> CompiledFile:
    """Load, check and parse a BPMN file; raise BpmnRejected listing every error found.

    Whatever goes wrong on the way — SpiffWorkflow's parser meeting something it did not expect, or
    MemoryError/RecursionError/OverflowError — is a refusal with the element and line where known, never
    a traceback; and every expression evaluated for the file shares DEPLOY_TIME_BUDGET_SECONDS.
    """
    try:
        tree = load_xml(data, filename)
    except BpmnRejected:
        raise
    except Exception as exc:  # lxml meeting something it did not expect
        raise BpmnRejected(f"{filename} could not be read", [Finding(
            "error", f"the file could not be read ({type(exc).__name__}: {str(exc)[:200]})", file=filename)]) from None
    try:
        with time_budget(DEPLOY_TIME_BUDGET_SECONDS):
            return _compile_tree(data, tree, filename)
    except BpmnRejected:
        raise
    except Exception as exc:
        raise BpmnRejected(f"{filename} could not be processed", [_unexpected_finding(exc, tree, filename)]) from None


def _unexpected_finding(exc: Exception, tree: etree._ElementTree, filename: str) -> Finding:
    if isinstance(exc, (ValidationException, SpiffWorkflowException)):
        return _spiff_finding(exc, tree, filename)
    element_id = getattr(exc, "id", None) or _failed_element(exc)
    what = {MemoryError: "the file needs too much memory to process",
            RecursionError: "the file is nested too deeply to process"}.get(type(exc))
    message = what or f"the file could not be processed ({type(exc).__name__}: {str(exc)[:200]})"
    return Finding("error", message, element_id, _line_of(tree, element_id), filename)


def _called_specs(parser: YicunParser, spec: Any) -> tuple[dict[str, Any], set[str]]:
    """The specs of the subprocesses and called processes a process runs that are in this file, and the ids of
    the called processes that are not (deployed from another file, linked at deploy: linking.py).
    SpiffWorkflow's `get_subprocess_specs` raises for the latter (and does not pass `required` down)."""
    found: dict[str, Any] = {}
    elsewhere: set[str] = set()
    stack = [spec]
    while stack:
        for task_spec in stack.pop().task_specs.values():
            name = getattr(task_spec, "spec", None)
            if not isinstance(task_spec, SubWorkflowTaskMixin) or not isinstance(name, str) or name in found \
                    or name in elsewhere:
                continue
            sub = parser.get_spec(name, required=False)
            if sub is None:
                elsewhere.add(name)
            else:
                found[name] = sub
                stack.append(sub)
    return found, elsewhere


def _compile_tree(data: bytes, tree: etree._ElementTree, filename: str) -> CompiledFile:
    root = tree.getroot()
    errors = _xsd_findings(tree, filename)
    errors += lint_tree(tree, filename)
    if errors:
        raise BpmnRejected(f"{filename}: {len(errors)} error(s)", errors)

    all_processes = root.findall("bpmn:process", NS)
    if all_processes and not any(p.get("isExecutable", "true").lower() != "false" for p in all_processes):
        # a descriptive model: kept and shown, never run, so SpiffWorkflow need not understand it
        return CompiledFile(filename, hashlib.sha256(data).hexdigest(), data,
                            [CompiledProcess(p.get("id", ""), p.get("name") or p.get("id", ""), executable=False)
                             for p in all_processes], [])
    parser = YicunParser()
    try:
        parser.add_bpmn_xml(tree, filename)
    except (ValidationException, SpiffWorkflowException, KeyError, ValueError) as exc:
        raise BpmnRejected(f"{filename} could not be parsed", [_spiff_finding(exc, tree, filename)]) from None
    executable = set(parser.get_process_ids())
    called = {c.get("calledElement") for c in root.iter(f"{BPMN}callActivity")}
    processes: list[CompiledProcess] = []
    errors = []
    for process in root.findall("bpmn:process", NS):
        pid = process.get("id", "")
        name = process.get("name") or pid
        if pid not in executable:
            processes.append(CompiledProcess(pid, name, executable=False))
            continue
        if pid in called and len(executable) > 1:
            continue  # a callee: carried as a subprocess spec of its caller
        try:
            spec = parser.get_spec(pid)
            subs, elsewhere = _called_specs(parser, spec)
        except (ValidationException, SpiffWorkflowException, KeyError, ValueError, NotImplementedError) as exc:
            errors.append(_spiff_finding(exc, tree, filename))
            continue
        props, prop_errors = _check_properties(process, filename)
        errors += prop_errors
        publicity = publicity_events(process)
        if publicity:
            props["publicityEvents"] = publicity
        end_status, status_errors = end_statuses(process, filename)
        errors += status_errors
        if end_status:
            props["endStatus"] = end_status
        if not elsewhere:  # else it runs when the deploy has linked the called processes (linking.py)
            errors += _smoke_run(spec, subs, process, filename)
        meta = user_task_meta(process)
        for other in root.findall("bpmn:process", NS):  # the steps of the processes it calls, in this file
            if other.get("id") in subs:
                meta = {**user_task_meta(other), **meta}
        external = {callee: [(c.get("id", ""), c.sourceline) for c in
                             root.xpath("//bpmn:callActivity[@calledElement=$p]", p=callee, namespaces=NS)]
                    for callee in sorted(elsewhere)}
        processes.append(CompiledProcess(pid, name, True, spec, subs, meta, props, external))
    if errors:
        raise BpmnRejected(f"{filename} could not be parsed", errors)
    if not processes:
        raise BpmnRejected(f"{filename} has no process", [Finding("error", "no bpmn:process element", file=filename)])
    return CompiledFile(filename, hashlib.sha256(data).hexdigest(), data, processes,
                        convention_findings(tree, filename))
