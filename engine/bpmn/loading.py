"""Untrusted BPMN in, an lxml tree out: no DOCTYPE (hence no entities, no XXE, no billion laughs), no
network, caps on size, elements, depth, attributes and text, and the BPMN XSD.

SpiffWorkflow parses with lxml defaults (SPIFFWORKFLOW.md §5, §7), so every file passes here before
SpiffWorkflow sees it. Each problem is a `Finding` with the element id and source line, so a designer
can fix it in any modeler.
"""
from __future__ import annotations

import re

from lxml import etree
from SpiffWorkflow.spiff.parser.process import VALIDATOR

from ..errors import BpmnRejected, Finding

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


_DOCTYPE = re.compile(rb"<!\s*(DOCTYPE|ENTITY)", re.IGNORECASE)


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


def _owner_id(element: etree._Element) -> str | None:
    while element is not None:
        if element.get("id"):
            return element.get("id")
        element = element.getparent()
    return None
