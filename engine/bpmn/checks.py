"""Deploy refusals over a loaded tree, before SpiffWorkflow parses it: every condition, timer and script
must be in the restricted language, timers in range, multi-instance bounded, waits sendable, calls
acyclic, loops able to wait, repeating timers only where SpiffWorkflow runs them right (a non-interrupting
boundary event, an event subprocess's start), message and signal boundary events thrown by their own case;
and the conventions whose absence is only a warning.
"""
from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from datetime import date, timedelta

from lxml import etree

from .. import clock
from ..errors import Finding
from ..expressions import (
    MAX_INSTANCES,
    ExpressionRejected,
    compile_expression,
    compile_script,
    evaluate,
    is_iso_literal,
)
from ..forms import form_field_name_problem
from ..patterns import PatternRejected, check_pattern
from .loading import BPMN, CAMUNDA, NS, SPIFF, _owner_id
from .loops import loop_findings
from .metadata import user_task_meta
from .timers import WORKDAYS_MARKER, _parse_cycle, timer_delta, timer_instant

_RESERVED_IDS = {"Start", "End", "Root"}
_ISO_ATTEMPT = re.compile(r"^(P|R\d*/)[0-9A-Z.,:/+-]*$", re.IGNORECASE)



# ------------------------------------------------------------------------------------------ expression lint
def _expression_sites(root: etree._Element) -> Iterable[tuple[str, etree._Element, str]]:
    """(kind, element, text) for every piece of text the engine would evaluate."""
    for cond in root.iter(f"{BPMN}conditionExpression", f"{BPMN}completionCondition",
                          f"{BPMN}loopCardinality", f"{BPMN}condition"):
        yield "expression", cond, cond.text or ""
    for kind in ("timeDuration", "timeDate", "timeCycle"):
        for timer in root.iter(f"{BPMN}{kind}"):
            yield kind, timer, timer.text or ""
    for script in root.iter(f"{BPMN}script"):
        yield "script", script, script.text or ""
    for kind in ("preScript", "postScript"):
        for script in root.iter(f"{SPIFF}{kind}"):
            yield "script", script, script.text or ""
    for expr in root.xpath("//spiffworkflow:messagePayload | //spiffworkflow:expression"
                           " | //spiffworkflow:parameter/@value", namespaces=NS):
        if isinstance(expr, etree._ElementUnicodeResult):  # an attribute's value: blame its element
            yield "expression", expr.getparent(), str(expr)
        else:
            yield "expression", expr, expr.text or ""


def _executable(element: etree._Element) -> bool:
    """Is the element inside a process that will run? (isExecutable missing counts as yes, as in Spiff)"""
    process = next((a for a in element.iterancestors(f"{BPMN}process")), None)
    return process is None or process.get("isExecutable", "true").lower() != "false"


def _check_timer(kind: str, text: str) -> None:
    """Validate a timer the way it will run: bare ISO literal, or a restricted expression whose value
    (when it does not depend on case data) is an ISO 8601 value or workdays(N)."""
    text = text.strip()
    if is_iso_literal(text):
        literal = text
    elif _ISO_ATTEMPT.match(text):
        raise ExpressionRejected(f"{text!r} is not a valid ISO 8601 {kind}")
    else:
        compile_expression(text)
        try:
            literal = evaluate(text, {})
        except (NameError, KeyError, TypeError, IndexError):
            return  # computed from case data; it is checked when it is armed
        except ExpressionRejected:
            raise
        except Exception as exc:  # ValueError of workdays(-1), 1/0 …: it would fail the same way when armed
            raise ExpressionRejected(f"{type(exc).__name__}: {exc}") from None
        if not isinstance(literal, str):
            raise ExpressionRejected(f"a {kind} must give an ISO 8601 text or workdays(N), not {str(literal)[:60]!r}")
    now = clock.now()
    marker = WORKDAYS_MARKER.match(literal)
    try:
        if marker:
            if kind != "timeDuration":
                raise ExpressionRejected("workdays(N) is a duration: use it in timeDuration")
            days = int(marker.group(1))
            most = _max_workdays_ahead(clock.local(now).date())
            if days > most:  # arming it would fail: the working-day calendar reaches ten years ahead
                raise ValueError(f"workdays({days}) is more than the {most} working days of the next ten years")
        elif kind == "timeDuration":
            timer_delta(literal, now)
        elif kind == "timeCycle":
            _parse_cycle(literal)
        else:
            timer_instant(literal, now)
    except (ValueError, OverflowError) as exc:  # TimerValueError: not ISO 8601, or out of range
        raise ExpressionRejected(str(exc)) from None


@functools.lru_cache(maxsize=4)
def _max_workdays_ahead(today: date) -> int:
    """Monday–Friday days in the ten years from `today`: the bound for workdays(N). Counted without the
    holiday calendar on purpose — it is a sanity bound, and asking the calendar about years nobody has
    published yet would log a "calendar unknown" warning for each of them on every deploy."""
    return sum(1 for i in range(1, 3651) if (today + timedelta(days=i)).weekday() < 5)


def lint_tree(tree: etree._ElementTree, filename: str) -> list[Finding]:
    """Our own checks on top of the XSD and SpiffWorkflow's parser."""
    root = tree.getroot()
    findings: list[Finding] = []

    def add(severity: str, message: str, element: etree._Element) -> None:
        findings.append(Finding(severity, message, _owner_id(element), element.sourceline, filename))

    for kind, element, text in _expression_sites(root):
        if not _executable(element):
            continue  # a descriptive model: it is stored and shown, never run
        if "${" in text or "#{" in text:
            add("error", f"{kind} uses a Camunda/JUEL expression ({text.strip()[:60]!r}); write a plain "
                         "expression such as  decision == \"approve\"", element)
            continue
        if text.strip().startswith("=") and kind != "script":
            add("error", f"{kind} is a FEEL expression of Camunda 8/Zeebe ({text.strip()[:60]!r}); write a plain "
                         "expression such as  decision == \"approve\"", element)
            continue
        if not text.strip():
            add("error", f"empty {kind}", element)
            continue
        try:
            if kind == "script":
                compile_script(text)
            elif kind.startswith("time"):
                _check_timer(kind, text)
            else:
                compile_expression(text)
        except ExpressionRejected as exc:
            add("error", f"{kind} refused: {exc}", element)
    for constraint in root.xpath("//camunda:constraint[@name='pattern' or @name='min' or @name='max' or "
                                 "@name='minlength' or @name='maxlength']", namespaces=NS):
        config = constraint.get("config", "")
        try:
            if constraint.get("name") == "pattern":
                check_pattern(config)  # RE2: matched in linear time, or refused here
            else:
                float(config)
        except (PatternRejected, ValueError) as exc:
            field_id = next((f.get("id") for f in constraint.iterancestors(f"{CAMUNDA}formField")), None)
            task = next((a for a in constraint.iterancestors() if a.get("id") and a.tag.startswith(BPMN)),
                        None)
            findings.append(Finding("error", f"form field {field_id!r}: constraint {constraint.get('name')}="
                                    f"{config[:80]!r} is invalid: {exc}", task.get("id") if task is not None
                                    else _owner_id(constraint), constraint.sourceline, filename))
    for field_el in root.iter(f"{CAMUNDA}formField"):
        problem = form_field_name_problem(field_el.get("id", ""))
        if problem and _executable(field_el):
            task = next((a for a in field_el.iterancestors() if a.get("id") and a.tag.startswith(BPMN)),
                        None)
            findings.append(Finding("error", f"form field {field_el.get('id', '')[:64]!r}: {problem}",
                                    task.get("id") if task is not None else None, field_el.sourceline, filename))
    for element in root.xpath("//*[@id]"):
        if element.get("id") in _RESERVED_IDS or element.get("id", "").endswith((".EndJoin", ".BoundaryEventSplit")):
            add("error", f"id {element.get('id')!r} is reserved by the workflow engine; rename it", element)
    for task in root.iter(f"{BPMN}serviceTask", f"{BPMN}sendTask"):
        if not _executable(task):
            continue
        add("error", "service and send tasks are not supported: nothing in Yicun would execute them "
                     "and the case would stall", task)
    for process in root.findall("bpmn:process", NS):
        if process.get("isExecutable", "true").lower() != "false":
            findings.extend(_unsendable_waits(process, filename))
    findings.extend(_call_cycles(root, filename))
    findings.extend(_multi_instance_findings(root, filename))
    findings.extend(loop_findings(root, filename))
    findings.extend(_cycle_timer_findings(root, filename))
    findings.extend(_unsent_boundary_findings(root, filename))
    return findings


def _multi_instance_findings(root: etree._Element, filename: str) -> list[Finding]:
    """A multi-instance activity creates its instances at once: their number must be bounded. A constant
    loopCardinality is checked here (MAX_INSTANCES), one computed from case data when it runs; a loop over
    a data collection has no bound the engine could check, so it is refused."""
    out = []
    for mi in root.iter(f"{BPMN}multiInstanceLoopCharacteristics"):
        if not _executable(mi):
            continue
        owner = mi.getparent()
        outer = next((a for a in owner.iterancestors()
                      if a.find("bpmn:multiInstanceLoopCharacteristics", NS) is not None), None)
        if outer is not None:  # instances multiply: 100 × 100 tasks at once, past every budget
            out.append(Finding("error", f"a multi-instance activity inside the multi-instance {outer.get('id')!r}: "
                               "their instances multiply; make only one of them multi-instance",
                               owner.get("id"), mi.sourceline, filename))
            continue
        if mi.find("bpmn:loopDataInputRef", NS) is not None:
            out.append(Finding("error", "a multi-instance activity over a data collection is not supported (its "
                               f"size has no bound); use loopCardinality (at most {MAX_INSTANCES})",
                               owner.get("id"), mi.sourceline, filename))
        cardinality = mi.find("bpmn:loopCardinality", NS)
        if cardinality is None or not (cardinality.text or "").strip():
            continue
        try:
            value = evaluate(cardinality.text.strip(), {})
        except ExpressionRejected:
            continue  # reported with the other expressions
        except Exception:
            continue  # computed from case data: bounded when it runs (RestrictedScriptEngine.evaluate)
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_INSTANCES:
            out.append(Finding("error", f"loopCardinality {str(value)[:40]!r}: a multi-instance activity has 0 to "
                               f"{MAX_INSTANCES} instances", owner.get("id"), cardinality.sourceline, filename))
    return out


_WAITS = ("messageEventDefinition", "signalEventDefinition", "conditionalEventDefinition")


def _unsendable_waits(process: etree._Element, filename: str) -> list[Finding]:
    """Steps a case would wait in forever: nothing in Yicun sends messages or signals to a case."""
    out = []
    for el in process.iter(f"{BPMN}receiveTask"):
        out.append(Finding("error", "receive tasks wait for a message, and nothing in Yicun sends one: the case "
                           "would stall here; use a user task", el.get("id"), el.sourceline, filename))
    for el in process.iter(f"{BPMN}intermediateCatchEvent"):
        kinds = [etree.QName(d).localname for d in el if etree.QName(d).localname in _WAITS]
        if kinds:
            out.append(Finding("error", f"this event waits for a {kinds[0].replace('EventDefinition', '')} that "
                               "nothing in Yicun sends: the case would stall here", el.get("id"), el.sourceline,
                               filename))
    flows = list(process.iter(f"{BPMN}sequenceFlow"))
    for gw in process.iter(f"{BPMN}eventBasedGateway"):
        targets = [f.get("targetRef") for f in flows if f.get("sourceRef") == gw.get("id")]
        timers = [t for t in targets if process.xpath(".//*[@id=$id]/bpmn:timerEventDefinition", id=t,
                                                     namespaces=NS)]
        if len(timers) >= 2:
            out.append(Finding("error", "an event-based gateway with two or more timers fires the wrong one in "
                               "SpiffWorkflow 3.2 (they share one due time); use timer boundary events",
                               gw.get("id"), gw.sourceline, filename))
    return out


def _cycle_timer_findings(root: etree._Element, filename: str) -> list[Finding]:
    """A repeating timer (timeCycle) is sound only on a non-interrupting boundary event (boundary.py keeps
    the branches it opens) or as the start of an event subprocess; elsewhere SpiffWorkflow 3.2 runs it
    wrongly without a word (checked in tests/test_cycle_timers.py)."""
    out = []
    for cycle in root.iter(f"{BPMN}timeCycle"):
        definition = cycle.getparent()
        event = definition.getparent() if definition is not None else None
        if event is None or not _executable(event):
            continue
        tag = etree.QName(event).localname
        if tag == "boundaryEvent" and event.get("cancelActivity", "true").lower() != "false":
            message = ("an interrupting boundary timer with a timeCycle: SpiffWorkflow 3.2 opens its branch every "
                       "round and interrupts the task only after the last one; use timeDuration or timeDate for a "
                       "deadline that interrupts, or cancelActivity=\"false\" for a repeating reminder")
        elif tag == "intermediateCatchEvent":
            message = ("a timeCycle on an intermediate timer event: SpiffWorkflow 3.2 runs the path after it once "
                       "per round, so the case's steps multiply; use timeDuration or timeDate (a repeating reminder "
                       "is a non-interrupting boundary timer)")
        elif tag == "startEvent" and event.getparent().get("triggeredByEvent", "false").lower() != "true":
            message = ("a timeCycle on the start event: SpiffWorkflow 3.2 runs the whole process again every round "
                       "inside the one case; a case starts once, so use a plain start event (a repeating reminder "
                       "is a non-interrupting boundary timer or an event subprocess with a timer start)")
        else:
            continue
        out.append(Finding("error", message, event.get("id"), event.sourceline, filename))
    return out


def _unsent_boundary_findings(root: etree._Element, filename: str) -> list[Finding]:
    """A message or signal boundary event fires only when the case itself throws that message or signal:
    Yicun sends none to a case, and each process of a file runs as its own case (with the processes it
    calls). One nothing in its case throws never fires — its branch never runs, and a join after it waits
    for ever (the non-interrupting message boundary of tests/conformance/…/noninterrupting-
    MessageBoundary.bpmn stalled its case at the parallel join behind it)."""
    def key(definition: etree._Element) -> tuple[str, str | None]:
        kind = etree.QName(definition).localname.replace("EventDefinition", "")
        ref = definition.get(f"{kind}Ref")
        target = root.xpath("//*[@id=$id]", id=ref) if ref else []
        return kind, (target[0].get("name") or ref) if target else ref

    processes = {p.get("id", ""): p for p in root.findall("bpmn:process", NS)}
    linked: dict[str, set[str]] = {pid: {pid} for pid in processes}
    for pid, process in processes.items():
        for call in process.iter(f"{BPMN}callActivity"):
            called = call.get("calledElement", "")
            if called in linked:
                linked[pid].add(called)
                linked[called].add(pid)
    out = []
    for pid, process in processes.items():
        if process.get("isExecutable", "true").lower() == "false":
            continue
        case, stack = set(), [pid]  # every process a case of this one can share with it
        while stack:
            current = stack.pop()
            if current not in case:
                case.add(current)
                stack.extend(linked[current])
        thrown = {key(d) for other in case for d in processes[other].xpath(
            ".//bpmn:intermediateThrowEvent/bpmn:messageEventDefinition | .//bpmn:intermediateThrowEvent/"
            "bpmn:signalEventDefinition | .//bpmn:endEvent/bpmn:messageEventDefinition | .//bpmn:endEvent/"
            "bpmn:signalEventDefinition", namespaces=NS)}
        for definition in process.xpath(".//bpmn:boundaryEvent/bpmn:messageEventDefinition | "
                                        ".//bpmn:boundaryEvent/bpmn:signalEventDefinition", namespaces=NS):
            kind, name = key(definition)
            if (kind, name) in thrown:
                continue
            event = definition.getparent()
            out.append(Finding("error", f"this boundary event waits for the {kind} {name or '(unnamed)'!r}, which "
                               "nothing sends: no event of its case throws it and Yicun sends none to a case, so its "
                               "branch would never run (and a join after it would wait for ever); throw it in this "
                               "process, or model the trigger as a user task or a timer", event.get("id"),
                               event.sourceline, filename))
    return out


def _call_cycles(root: etree._Element, filename: str) -> list[Finding]:
    calls: dict[str, list[tuple[str, etree._Element]]] = {}
    for process in root.findall("bpmn:process", NS):
        pid = process.get("id", "")
        for call in process.iter(f"{BPMN}callActivity"):
            calls.setdefault(pid, []).append((call.get("calledElement", ""), call))
    findings = []
    for start in calls:
        stack, seen = [(start, None)], set()
        while stack:
            pid, via = stack.pop()
            for target, element in calls.get(pid, []):
                if target == start:
                    findings.append(Finding("error", f"process {start!r} calls itself (through {pid!r}); "
                                            "it would never finish", element.get("id"), element.sourceline, filename))
                elif target not in seen:
                    seen.add(target)
                    stack.append((target, element))
    return findings


def convention_findings(tree: etree._ElementTree, filename: str) -> list[Finding]:
    """Conventions of DESIGN.md §6 that the engine can live without (warnings, not refusals)."""
    root = tree.getroot()
    findings = []
    if root.find("bpmndi:BPMNDiagram", NS) is None:
        findings.append(Finding("warning", "no diagram interchange: modelers cannot lay this file out",
                                line=root.sourceline, file=filename))
    for process in root.findall("bpmn:process", NS):
        timers = {b.get("attachedToRef") for b in process.iter(f"{BPMN}boundaryEvent")
                  if b.find("bpmn:timerEventDefinition", NS) is not None}
        for meta in user_task_meta(process).values():
            el = process.xpath(".//*[@id=$id]", id=meta.bpmn_id)[0]
            if meta.level is None:
                findings.append(Finding("warning", f"user task is not in a village/township/county lane "
                                        f"(lane {meta.lane_id!r}); it will go to the case's village",
                                        meta.bpmn_id, el.sourceline, filename))
            if meta.bpmn_id not in timers:
                findings.append(Finding("warning", "user task has no deadline timer boundary event",
                                        meta.bpmn_id, el.sourceline, filename))
    return findings
