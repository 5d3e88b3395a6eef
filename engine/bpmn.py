"""Untrusted BPMN in, checked specs out: safe XML loading, lint, parsing, and the task metadata the
engine routes by.

SpiffWorkflow parses with lxml defaults and runs whatever Python the file holds (SPIFFWORKFLOW.md §5,
§7), so a file goes through here before anything else sees it: no DOCTYPE (hence no entities, no
XXE, no billion laughs), no network, a size cap, the BPMN XSD, SpiffWorkflow's own parser, and then
our checks — every condition, timer and script must be in the restricted language. Each problem is a
:class:`~engine.errors.Finding` with the element id and source line, so a designer can fix it in any
modeler.
"""
from __future__ import annotations

import functools
import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from lxml import etree
from SpiffWorkflow.bpmn.parser.ValidationException import ValidationException
from SpiffWorkflow.exceptions import SpiffWorkflowException
from SpiffWorkflow.spiff.parser.process import VALIDATOR

from . import clock
from .errors import BpmnRejected, Finding
from .expressions import (
    MAX_INSTANCES,
    ExpressionLimitExceeded,
    ExpressionRejected,
    compile_expression,
    compile_script,
    evaluate,
    is_iso_literal,
    time_budget,
)
from .forms import form_field_name_problem
from .patterns import PatternRejected, check_pattern
from .runtime import WORKDAYS_MARKER, TimerValueError, YicunParser, _parse_cycle, timer_delta, timer_instant

MAX_BPMN_BYTES = 2 * 1024 * 1024
#: Checked on the safely parsed tree before the XSD and SpiffWorkflow's parser see it (both cost far more
#: per element, and lint compares elements pairwise). The largest catalogue file has 525 XML elements,
#: 58 flow elements and a nesting depth of 7.
MAX_XML_ELEMENTS = 10_000
MAX_FLOW_ELEMENTS = 500  # tasks, events, gateways, sequence flows … of all processes in the file
MAX_PROCESSES = 20
MAX_XML_DEPTH = 40
MAX_TEXT_LENGTH = 64 * 1024  # one element's text (a script is at most 16,000 characters, see expressions)
MAX_ATTRIBUTES = 64  # on one element (bpmn-js writes at most about a dozen)
MAX_ATTRIBUTE_LENGTH = 4000
#: Wall-clock budget shared by every expression a deploy evaluates (constant timers, the smoke run).
DEPLOY_TIME_BUDGET_SECONDS = 2.0

NS = {
    "bpmn": "http://www.omg.org/spec/BPMN/20100524/MODEL",
    "bpmndi": "http://www.omg.org/spec/BPMN/20100524/DI",
    "camunda": "http://camunda.org/schema/1.0/bpmn",
    "spiffworkflow": "http://spiffworkflow.org/bpmn/schema/1.0/core",
    "xsi": "http://www.w3.org/2001/XMLSchema-instance",
}
# Clark-notation prefixes ("{namespace}") for lxml tag names: f"{BPMN}userTask"
BPMN, CAMUNDA, SPIFF, BPMNDI = (f"{{{NS[k]}}}" for k in ("bpmn", "camunda", "spiffworkflow", "bpmndi"))

#: Lanes the engine routes to, by lane id or by the Chinese lane name a designer may have typed.
LEVEL_OF_LANE = {
    "village": "village", "村": "village", "村级": "village",
    "township": "township", "乡镇": "township", "乡": "township", "镇": "township", "乡镇级": "township",
    "county": "county", "县": "county", "县级": "county", "区": "county", "县区": "county", "县(区)": "county",
}
_RESERVED_IDS = {"Start", "End", "Root"}
PAUSE_KINDS = ("supplement", "special", "publicity")
_ISO_ATTEMPT = re.compile(r"^(P|R\d*/)[0-9A-Z.,:/+-]*$", re.IGNORECASE)
_DOCTYPE = re.compile(rb"<!\s*(DOCTYPE|ENTITY)", re.IGNORECASE)


@dataclass
class FormField:
    id: str
    label: str
    type: str = "string"
    required: bool = False
    options: list[tuple[str, str]] = field(default_factory=list)
    constraints: dict[str, str] = field(default_factory=dict)  # minlength, maxlength, min, max, pattern

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "label": self.label, "type": self.type, "required": self.required,
                "options": [list(o) for o in self.options], "constraints": self.constraints}


@dataclass
class UserTaskMeta:
    bpmn_id: str
    name: str
    lane_id: str | None
    lane_name: str | None
    level: str | None
    candidate_groups: list[str]
    form_key: str | None
    fields: list[FormField]
    documentation: str | None
    pauses_clock: str | None = None  # while this step is open the case's clock stands still (e.g. 补正)

    def to_dict(self) -> dict[str, Any]:
        d = dict(self.__dict__)
        d["fields"] = [f.to_dict() for f in self.fields]
        return d


@dataclass
class CompiledProcess:
    """One executable (or model-only) process of a deployed file."""
    process_id: str
    name: str
    executable: bool
    spec: Any = None
    subprocess_specs: dict[str, Any] = field(default_factory=dict)
    user_tasks: dict[str, UserTaskMeta] = field(default_factory=dict)
    properties: dict[str, Any] = field(default_factory=dict)


#: Process-level properties the engine reads (camunda:properties or spiffworkflow:properties on the
#: process) until the catalogue (catalog.yaml) carries them: integer working-day limits, and the level
#: whose officers approve an extension.
INT_PROPERTIES = ("legalLimitWorkdays", "promisedLimitWorkdays", "extensionMaxWorkdays")
LEVEL_PROPERTIES = ("approveLevel",)


def process_properties(process: etree._Element) -> dict[str, str]:
    props = {}
    for prop in process.xpath("./bpmn:extensionElements/camunda:properties/camunda:property"
                              " | ./bpmn:extensionElements/spiffworkflow:properties/spiffworkflow:property",
                              namespaces=NS):
        props[prop.get("name", "")] = prop.get("value", "")
    return props


def _check_properties(process: etree._Element, filename: str) -> tuple[dict[str, Any], list[Finding]]:
    raw = process_properties(process)
    out: dict[str, Any] = {}  # whole numbers of working days, and level names
    findings: list[Finding] = []
    for name in INT_PROPERTIES:
        if name in raw:
            try:
                value = int(raw[name])
                if value < 0:
                    raise ValueError
                out[name] = value
            except ValueError:
                findings.append(Finding("error", f"property {name} must be a whole number of working days, "
                                        f"not {raw[name]!r}", process.get("id"), process.sourceline, filename))
    for name in LEVEL_PROPERTIES:
        if name in raw:
            if raw[name] not in ("village", "township", "county"):
                findings.append(Finding("error", f"property {name} must be village, township or county",
                                        process.get("id"), process.sourceline, filename))
            else:
                out[name] = raw[name]
    if out.get("promisedLimitWorkdays", 0) > out.get("legalLimitWorkdays", 10 ** 6):
        findings.append(Finding("error", "the promised limit may not exceed the legal limit",
                                process.get("id"), process.sourceline, filename))
    return out, findings


def publicity_events(process: etree._Element) -> list[str]:
    """Intermediate timer events that are publicity periods (公示): named 公示…, or with the property
    publicity=true. While a case waits in one, its clock stands still (calendar days, outside the limit)."""
    found = []
    for event in process.iter(f"{BPMN}intermediateCatchEvent"):
        if event.find("bpmn:timerEventDefinition", NS) is None:
            continue
        flagged = event.xpath("./bpmn:extensionElements/camunda:properties/camunda:property[@name='publicity']"
                              "/@value", namespaces=NS)
        if "公示" in (event.get("name") or "") or (flagged and flagged[0].lower() == "true"):
            found.append(event.get("id", ""))
    return found


CASE_STATUSES = ("completed", "rejected", "withdrawn")


def end_statuses(process: etree._Element, filename: str) -> tuple[dict[str, str], list[Finding]]:
    """End events that close the case with a status other than completed (caseStatus property)."""
    out, findings = {}, []
    for end in process.iter(f"{BPMN}endEvent"):
        values = end.xpath("./bpmn:extensionElements/camunda:properties/camunda:property[@name='caseStatus']/@value",
                           namespaces=NS)
        if values:
            if values[0] not in CASE_STATUSES:
                findings.append(Finding("error", f"caseStatus must be one of {', '.join(CASE_STATUSES)}",
                                        end.get("id"), end.sourceline, filename))
            else:
                out[end.get("id", "")] = values[0]
    return out, findings


@dataclass
class CompiledFile:
    filename: str
    sha256: str
    xml: bytes
    processes: list[CompiledProcess]
    findings: list[Finding]


# ------------------------------------------------------------------------------------------ loading
def load_xml(data: bytes, filename: str = "<upload>") -> etree._ElementTree:
    """Parse untrusted XML with no DTD, no entities and no network, or raise BpmnRejected."""
    if len(data) > MAX_BPMN_BYTES:
        raise BpmnRejected(f"{filename} is too large", [Finding(
            "error", f"file is {len(data)} bytes; the limit is {MAX_BPMN_BYTES}", file=filename)])
    try:
        data.decode("utf-8")  # stored and shown as text
    except UnicodeDecodeError as exc:
        raise BpmnRejected(f"{filename} is not UTF-8", [Finding(
            "error", "BPMN files must be encoded in UTF-8", line=data.count(b"\n", 0, exc.start) + 1,
            file=filename)]) from None
    match = _DOCTYPE.search(data)
    if match:
        line = data.count(b"\n", 0, match.start()) + 1
        raise BpmnRejected(f"{filename} was refused", [Finding(
            "error", "DOCTYPE and ENTITY declarations are not allowed in BPMN files", line=line, file=filename)])
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, dtd_validation=False,
                             huge_tree=False, remove_blank_text=False)
    try:
        root = etree.fromstring(data, parser)
    except etree.XMLSyntaxError as exc:
        raise BpmnRejected(f"{filename} is not well-formed XML", [Finding(
            "error", str(exc.msg), line=exc.lineno, file=filename)]) from None
    tree = root.getroottree()
    if tree.docinfo.doctype or tree.docinfo.internalDTD is not None:
        raise BpmnRejected(f"{filename} was refused", [Finding(
            "error", "DOCTYPE declarations are not allowed in BPMN files", line=1, file=filename)])
    if root.tag != f"{BPMN}definitions":
        raise BpmnRejected(f"{filename} is not BPMN 2.0", [Finding(
            "error", f"root element is {root.tag}, expected bpmn:definitions", line=root.sourceline, file=filename)])
    problem = _size_problem(root)
    if problem:
        message, element = problem
        raise BpmnRejected(f"{filename} is too large to deploy", [Finding(
            "error", message, _owner_id(element), element.sourceline, filename)])
    return tree


_FLOW_CONTAINERS = {f"{BPMN}{tag}" for tag in ("process", "subProcess", "transaction", "adHocSubProcess")}
_NOT_FLOW = {f"{BPMN}{tag}" for tag in (
    "laneSet", "extensionElements", "documentation", "ioSpecification", "property", "dataObject",
    "multiInstanceLoopCharacteristics", "standardLoopCharacteristics")}


def _size_problem(root: etree._Element) -> tuple[str, etree._Element] | None:
    """The first limit the file passes (message, element), in one linear walk that stops there."""
    elements = flow = processes = depth = 0
    for event, element in etree.iterwalk(root, events=("start", "end")):
        if event == "end":
            depth -= 1
            continue
        depth += 1
        elements += 1
        if elements > MAX_XML_ELEMENTS:
            return f"the file has more than {MAX_XML_ELEMENTS:,} XML elements", element
        if depth > MAX_XML_DEPTH:
            return f"elements are nested more than {MAX_XML_DEPTH} deep", element
        if element.text is not None and len(element.text) > MAX_TEXT_LENGTH:
            return f"a text of {len(element.text):,} characters; the limit is {MAX_TEXT_LENGTH:,}", element
        if len(element.attrib) > MAX_ATTRIBUTES:  # counted first: reading 100k attributes by name is quadratic
            return f"an element has {len(element.attrib):,} attributes; the limit is {MAX_ATTRIBUTES}", element
        for name, value in element.attrib.items():
            if len(value) > MAX_ATTRIBUTE_LENGTH:
                return (f"attribute {etree.QName(name).localname} has {len(value):,} characters; "
                        f"the limit is {MAX_ATTRIBUTE_LENGTH:,}"), element
        parent = element.getparent()
        if parent is not None and parent.tag in _FLOW_CONTAINERS and element.tag not in _NOT_FLOW:
            flow += 1
            if flow > MAX_FLOW_ELEMENTS:
                return f"the file has more than {MAX_FLOW_ELEMENTS:,} flow elements (tasks, events, " \
                       "gateways, sequence flows); split it into called processes", element
        if element.tag == f"{BPMN}process":
            processes += 1
            if processes > MAX_PROCESSES:
                return f"the file has more than {MAX_PROCESSES} processes", element
    return None


def _line_of(tree: etree._ElementTree, element_id: str | None) -> int | None:
    if not element_id:
        return None
    found = tree.getroot().xpath("//*[@id=$id]", id=element_id)
    return found[0].sourceline if found else None


def _xsd_findings(tree: etree._ElementTree, filename: str) -> list[Finding]:
    VALIDATOR.preprocess(tree)
    schema = VALIDATOR.validator
    if schema.validate(tree):
        return []
    by_line: dict[int, str] = {}
    for el in tree.getroot().iter():
        if isinstance(el.tag, str) and el.get("id") and el.sourceline not in by_line:
            by_line[el.sourceline] = el.get("id")
    out = []
    for e in schema.error_log:
        message = re.sub(r"\{http://www\.omg\.org/spec/BPMN/20100524/MODEL\}", "bpmn:", e.message)
        dup = re.search(r"'([^']+)' is not a valid value of the atomic type 'xs:ID'", message)
        if dup:
            message = f"duplicate id {dup.group(1)!r}: every element id must be unique in the file"
        out.append(Finding("error", message, by_line.get(e.line), e.line, filename))
    return out


# ------------------------------------------------------------------------------------------ metadata
def _lanes(process: etree._Element) -> dict[str, tuple[str, str]]:
    """flow node id → (lane id, lane name); the innermost lane wins, as in SpiffWorkflow."""
    result: dict[str, tuple[str, str]] = {}
    for lane in process.iter(f"{BPMN}lane"):  # document order: outer lanes come first
        for ref in lane.findall("bpmn:flowNodeRef", NS):
            if ref.text:
                result[ref.text.strip()] = (lane.get("id", ""), lane.get("name", "") or "")
    return result


def _spiff_properties(task: etree._Element) -> dict[str, str]:
    """Extension properties of an element: spiffworkflow:properties, spiffworkflow:* texts and
    camunda:properties (what Camunda Modeler's properties panel writes)."""
    props = {}
    for prop in task.xpath("./bpmn:extensionElements/camunda:properties/camunda:property", namespaces=NS):
        props[prop.get("name", "")] = prop.get("value", "")
    for prop in task.xpath("./bpmn:extensionElements/spiffworkflow:properties/spiffworkflow:property", namespaces=NS):
        props[prop.get("name", "")] = prop.get("value", "")
    for child in task.xpath("./bpmn:extensionElements/spiffworkflow:*", namespaces=NS):
        if child.text and child.text.strip():
            props.setdefault(etree.QName(child).localname, child.text.strip())
    return props


def _form_fields(task: etree._Element) -> list[FormField]:
    fields = []
    for f in task.xpath("./bpmn:extensionElements/camunda:formData/camunda:formField", namespaces=NS):
        required = bool(f.xpath("./camunda:validation/camunda:constraint[@name='required']", namespaces=NS))
        options = [(v.get("id", ""), v.get("name", v.get("id", ""))) for v in f.findall("camunda:value", NS)]
        constraints = {c.get("name", ""): c.get("config", "") for c in
                       f.xpath("./camunda:validation/camunda:constraint", namespaces=NS)
                       if c.get("name") in ("minlength", "maxlength", "min", "max", "pattern")}
        fields.append(FormField(f.get("id", ""), f.get("label") or f.get("id", ""), f.get("type", "string"),
                                required, options, constraints))
    return fields


def _split_groups(text: str | None) -> list[str]:
    return [g.strip() for g in re.split(r"[,，;；]", text or "") if g.strip()]


def user_task_meta(process: etree._Element) -> dict[str, UserTaskMeta]:
    lanes = _lanes(process)
    result = {}
    for task in process.iter(f"{BPMN}userTask", f"{BPMN}manualTask"):
        tid = task.get("id", "")
        props = _spiff_properties(task)
        lane_id, lane_name = lanes.get(tid, (None, None))
        level = LEVEL_OF_LANE.get(lane_id or "") or LEVEL_OF_LANE.get((lane_name or "").strip())
        doc = task.find("bpmn:documentation", NS)
        result[tid] = UserTaskMeta(
            bpmn_id=tid,
            name=task.get("name") or tid,
            lane_id=lane_id,
            lane_name=lane_name,
            level=level,
            candidate_groups=_split_groups(task.get(CAMUNDA + "candidateGroups") or props.get("candidateGroups")),
            form_key=task.get(CAMUNDA + "formKey") or props.get("formKey") or props.get("formJsonSchemaFilename"),
            fields=_form_fields(task),
            documentation=(doc.text or "").strip() if doc is not None else None,
            pauses_clock=props.get("pausesClock") if props.get("pausesClock") in PAUSE_KINDS else None,
        )
    return result


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


def _owner_id(element: etree._Element) -> str | None:
    while element is not None:
        if element.get("id"):
            return element.get("id")
        element = element.getparent()
    return None


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
    from .loops import loop_findings  # here, not at the top: loops.py is a leaf the linter calls
    findings.extend(loop_findings(root, filename))
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
                           "deploy the called process in the same file", calls[0].get("id"), calls[0].sourceline,
                           filename)
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
    from . import clock, runtime

    wf = runtime.new_workflow(spec, subs)
    try:
        with clock.using(clock.ManualClock("2026-01-05T09:00:00+08:00")):
            runtime.run_until_waiting(wf, max_steps=2000)
    except runtime.EndlessLoop as exc:
        return [Finding("error", str(exc), process.get("id"), process.sourceline, filename)]
    except Exception as exc:
        bound = _bound_exceeded(exc)
        if bound is None:
            return []  # it needs case data (a condition on an intake field): judged when it runs
        element_id = _failed_element(exc) or process.get("id")
        found = process.xpath(".//*[@id=$id]", id=element_id)
        return [Finding("error", f"a new case fails here: {bound}", element_id,
                        found[0].sourceline if found else process.sourceline, filename)]
    stuck = runtime.stalled_at(wf)
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
            subs = parser.get_subprocess_specs(pid)
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
        errors += _smoke_run(spec, subs, process, filename)
        meta = user_task_meta(process)
        for called in root.findall("bpmn:process", NS):  # the steps of the processes it calls, in this file
            if called.get("id") in subs:
                meta = {**user_task_meta(called), **meta}
        processes.append(CompiledProcess(pid, name, True, spec, subs, meta, props))
    if errors:
        raise BpmnRejected(f"{filename} could not be parsed", errors)
    if not processes:
        raise BpmnRejected(f"{filename} has no process", [Finding("error", "no bpmn:process element", file=filename)])
    return CompiledFile(filename, hashlib.sha256(data).hexdigest(), data, processes,
                        convention_findings(tree, filename))
