"""Two versions of a process compared element by element (issue 11 §5): which elements a new version added,
removed and changed, and which process-level properties changed — what a designer checks before deploying
and before moving running cases (§6), and what the diff page marks on the two diagrams.

Why by element id and not by text: two files of the same process differ in layout, attribute order,
indentation and the `incoming`/`outgoing` lists a modeler writes, none of which changes what runs; the
engine routes by element ids (steps, timers, flows), so an id is the identity of an element across
versions. Each element is reduced to named properties — its type, name, lane, documentation, our extension
properties (form fields, `pausesClock`, candidate groups, the process's limits), a timer's expression (a
step's deadline, `workdays(N)`), a flow's source, target and condition, a script — and whatever else its
XML holds is compared as one normalised remainder (`other`), so no change goes unreported and none is
reported twice. The diagram interchange (positions, waypoints) is not compared: moving a shape changes
nothing a case does.

Reads only with lxml (files already checked at deploy, parsed again by `load_xml`'s safe parser); never
SpiffWorkflow, never the database.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from lxml import etree

from .loading import BPMN, NS, load_xml
from .metadata import _form_fields, _lanes, _spiff_properties

#: BPMN elements compared on their own (by id); anything else with an id (an event definition, a data
#: input, a loop characteristic) belongs to the element that holds it.
FLOW_NODES = frozenset({
    "task", "userTask", "manualTask", "scriptTask", "serviceTask", "sendTask", "receiveTask", "businessRuleTask",
    "callActivity", "subProcess", "transaction", "adHocSubProcess",
    "startEvent", "endEvent", "intermediateCatchEvent", "intermediateThrowEvent", "boundaryEvent",
    "exclusiveGateway", "inclusiveGateway", "parallelGateway", "eventBasedGateway", "complexGateway",
})
ELEMENTS = FLOW_NODES | frozenset({
    "sequenceFlow", "lane", "participant", "messageFlow", "textAnnotation", "association", "group",
    "dataObject", "dataObjectReference", "dataStoreReference", "process",
    "message", "signal", "error", "escalation", "dataStore",
})
#: attributes with a property of their own name (the rest are `attribute:<name>`)
_NAMED_ATTRIBUTES = {
    "name": "name", "sourceRef": "source", "targetRef": "target", "attachedToRef": "attachedTo",
    "default": "default", "calledElement": "calledElement", "cancelActivity": "cancelActivity",
    "isExecutable": "isExecutable", "processRef": "processRef",
    f"{{{NS['camunda']}}}candidateGroups": "candidateGroups", f"{{{NS['camunda']}}}formKey": "formKey",
}
#: properties whose values are element ids (the page shows the element's name beside them)
REFERENCES = frozenset({"source", "target", "attachedTo", "default", "processRef"})
#: what a boundary event's or a start event's missing attribute means (so writing the default is no change)
_DEFAULTS = {("boundaryEvent", "cancelActivity"): "true", ("process", "isExecutable"): "true"}
_PREFIXES = {uri: prefix for prefix, uri in NS.items()}
_CAPTURED_EXTENSIONS = {f"{{{NS['camunda']}}}properties", f"{{{NS['camunda']}}}formData",
                        f"{{{NS['spiffworkflow']}}}properties"}
_SKIPPED_CHILDREN = {f"{BPMN}{tag}" for tag in ("incoming", "outgoing", "flowNodeRef", "laneSet", "childLaneSet",
                                                "documentation", "conditionExpression", "script")}


@dataclass(frozen=True)
class Element:
    """One element of a version's file as the diff compares it: its properties by name (see the module)."""
    id: str
    type: str
    name: str
    props: Mapping[str, str]

    @property
    def lane(self) -> str | None:
        return self.props.get("lane")


@dataclass(frozen=True)
class FileModel:
    """A version's file reduced to its elements (document order) and its own process's properties."""
    process_id: str
    process: Mapping[str, str]
    elements: Mapping[str, Element]


@dataclass(frozen=True)
class PropertyChange:
    """One property of an element (or of the process) in the older and the newer version; None: absent."""
    key: str
    old: str | None
    new: str | None


@dataclass(frozen=True)
class ElementChange:
    """An element added, removed or changed. `type`, `name` and `lane` are the newer version's (the older's
    for a removed element); `changes` lists every property that differs (for an added or removed element:
    every property it has)."""
    id: str
    kind: str  # added | removed | changed
    type: str
    name: str
    lane: str | None
    changes: tuple[PropertyChange, ...]

    def change(self, key: str) -> PropertyChange | None:
        return next((c for c in self.changes if c.key == key), None)


@dataclass(frozen=True)
class BpmnDiff:
    """What changed from one version's file to another's. `names`: every element id of both files with its
    name (the newer's where both have it), for showing a flow's source or target by name."""
    process: tuple[PropertyChange, ...]
    added: tuple[ElementChange, ...]
    removed: tuple[ElementChange, ...]
    changed: tuple[ElementChange, ...]
    names: Mapping[str, str] = field(default_factory=dict)

    @property
    def empty(self) -> bool:
        return not (self.process or self.added or self.removed or self.changed)

    def ids(self, kind: str) -> tuple[str, ...]:
        return tuple(e.id for e in getattr(self, kind))


# ------------------------------------------------------------------------------------------ reading a file
def _qname(name: str) -> str:
    """`{uri}local` as `prefix:local` for the namespaces we know (the remainder reads like the file)."""
    if not name.startswith("{"):
        return name
    uri, local = name[1:].split("}", 1)
    prefix = _PREFIXES.get(uri)
    return f"{prefix}:{local}" if prefix else name


def _local(element: etree._Element) -> str:
    return etree.QName(element).localname if isinstance(element.tag, str) else ""


def _is_element(node: Any) -> bool:
    return isinstance(node.tag, str) and node.tag.startswith(BPMN) and _local(node) in ELEMENTS \
        and bool(node.get("id"))


def _text(node: etree._Element | None) -> str:
    return " ".join((node.text or "").split()) if node is not None else ""


def _remainder(node: etree._Element, top: bool = True) -> str:
    """The element's XML beyond its named properties, normalised: tags and attributes (ids of nested parts
    left out — they name nothing a case uses), stripped text, children in order; the elements compared on
    their own, the incoming/outgoing lists, lane references and what the properties already hold, left out."""
    parts: list[str] = []
    for child in node:
        if not isinstance(child.tag, str) or _is_element(child) or child.tag in _SKIPPED_CHILDREN:
            continue
        if child.tag in _CAPTURED_EXTENSIONS or (child.tag.startswith(f"{{{NS['spiffworkflow']}}}")
                                                 and _local(node) == "extensionElements" and _text(child)):
            continue
        if _local(child) == "timerEventDefinition":
            continue
        inner = _remainder(child, top=False)
        if _local(child) == "extensionElements" and not inner:
            continue
        attrs = " ".join(f'{_qname(k)}="{v}"' for k, v in sorted(child.attrib.items()) if k != "id")
        body = _text(child) + inner
        parts.append(f"<{_qname(child.tag)}{' ' + attrs if attrs else ''}>{body}</{_qname(child.tag)}>"
                     if body else f"<{_qname(child.tag)}{' ' + attrs if attrs else ''}/>")
    return "".join(parts)


def _timer(node: etree._Element) -> str | None:
    definition = node.find("bpmn:timerEventDefinition", NS)
    if definition is None:
        return None
    for kind in ("timeDuration", "timeDate", "timeCycle"):
        value = definition.find(f"bpmn:{kind}", NS)
        if value is not None:
            text = _text(value)
            return text if kind == "timeDuration" else f"{kind}: {text}"
    return ""


def _field_text(f: Any) -> str:
    """A form field as one comparable line: label, type, required, options, constraints."""
    parts = [f"label={f.label}", f"type={f.type}"]
    if f.required:
        parts.append("required")
    if f.options:
        parts.append("options=" + ", ".join(f"{k}:{v}" for k, v in f.options))
    parts += [f"{k}={v}" for k, v in sorted(f.constraints.items())]
    return "; ".join(parts)


def _props(node: etree._Element, lanes: Mapping[str, tuple[str, str]]) -> dict[str, str]:
    kind = _local(node)
    props: dict[str, str] = {}
    for attr, value in node.attrib.items():
        if attr == "id":
            continue
        props[_NAMED_ATTRIBUTES.get(attr) or f"attribute:{_qname(attr)}"] = value
    for (of, key), default in _DEFAULTS.items():
        if of == kind:
            props.setdefault(key, default)
    docs = [_text(d) for d in node.findall("bpmn:documentation", NS)]
    if any(docs):
        props["documentation"] = "\n".join(d for d in docs if d)
    lane = lanes.get(node.get("id", ""))
    if lane is not None and kind in FLOW_NODES:
        props["lane"] = lane[1] or lane[0]
    timer = _timer(node)
    if timer is not None:
        props["deadline" if kind == "boundaryEvent" else "timer"] = timer
    condition = node.find("bpmn:conditionExpression", NS)
    if condition is not None:
        props["condition"] = _text(condition)
    script = node.find("bpmn:script", NS)
    if script is not None:
        props["script"] = (script.text or "").strip()
    for name, value in _spiff_properties(node).items():
        props[f"property:{name}"] = value
    for f in _form_fields(node):
        props[f"field:{f.id}"] = _field_text(f)
    rest = _remainder(node)
    if rest:
        props["other"] = rest
    return props


def read_file(xml: str | bytes, process_id: str | None = None) -> FileModel:
    """A version's file as the diff sees it. `process_id`: the version's process (its properties are the
    process-level ones; any other process of the file is an element); None: the first executable one."""
    data = xml.encode("utf-8") if isinstance(xml, str) else xml
    root = load_xml(data, "<stored>").getroot()
    processes = root.findall("bpmn:process", NS)
    main = next((p for p in processes if p.get("id") == process_id), None) if process_id else next(
        (p for p in processes if p.get("isExecutable", "true").lower() != "false"), processes[0] if processes else None)
    lanes: dict[str, tuple[str, str]] = {}
    for process in processes:
        lanes.update(_lanes(process))
    elements: dict[str, Element] = {}
    for node in root.iter():
        if node is main or not _is_element(node):
            continue
        props = _props(node, lanes)
        elements[node.get("id", "")] = Element(node.get("id", ""), _local(node), node.get("name") or "", props)
    return FileModel(main.get("id", "") if main is not None else "", _props(main, {}) if main is not None else {},
                     elements)


# ------------------------------------------------------------------------------------------ comparing
def _compare(old: Mapping[str, str], new: Mapping[str, str]) -> tuple[PropertyChange, ...]:
    keys = list(dict.fromkeys([*old, *new]))
    return tuple(PropertyChange(k, old.get(k), new.get(k)) for k in keys if old.get(k) != new.get(k))


def _whole(element: Element, kind: str) -> ElementChange:
    props = element.props.items()
    changes = tuple(PropertyChange(k, None, v) if kind == "added" else PropertyChange(k, v, None) for k, v in props)
    return ElementChange(element.id, kind, element.type, element.name, element.lane, changes)


def compare(old: FileModel, new: FileModel) -> BpmnDiff:
    """The differences from `old` to `new` (two versions of one process), by element id."""
    added, changed = [], []
    for element_id, element in new.elements.items():
        before = old.elements.get(element_id)
        if before is None:
            added.append(_whole(element, "added"))
            continue
        changes = _compare(before.props, element.props)
        if before.type != element.type:
            changes = (PropertyChange("type", before.type, element.type), *changes)
        if changes:
            changed.append(ElementChange(element_id, "changed", element.type, element.name, element.lane, changes))
    removed = [_whole(e, "removed") for i, e in old.elements.items() if i not in new.elements]
    names = {i: e.name for i, e in old.elements.items()} | {i: e.name for i, e in new.elements.items()}
    return BpmnDiff(_compare(old.process, new.process), tuple(added), tuple(removed), tuple(changed), names)


def diff_files(old_xml: str | bytes, new_xml: str | bytes, process_id: str) -> BpmnDiff:
    """The differences between two versions' files of process `process_id`."""
    return compare(read_file(old_xml, process_id), read_file(new_xml, process_id))


def step_timers(model: FileModel) -> dict[str, tuple[Element, ...]]:
    """The timer boundary events of each element they are attached to (a step's deadlines and warnings)."""
    found: dict[str, list[Element]] = {}
    for element in model.elements.values():
        host = element.props.get("attachedTo")
        if element.type == "boundaryEvent" and host and "deadline" in element.props:
            found.setdefault(host, []).append(element)
    return {host: tuple(timers) for host, timers in found.items()}


def element_order(model: FileModel, ids: Iterable[str]) -> list[str]:
    """`ids` in the file's document order (ids not in the file last, in their given order)."""
    position = {element_id: n for n, element_id in enumerate(model.elements)}
    return sorted(ids, key=lambda i: position.get(i, len(position)))
