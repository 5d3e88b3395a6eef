"""What the engine routes by, read from a file and from a parsed spec: user tasks with their lane, level,
form fields, candidate groups and clock stops; the process's limit properties, 公示 events and end
statuses; the names a process's own logic reads; the steps that take an application.
"""
from __future__ import annotations

import ast
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from lxml import etree

from ..errors import Finding
from .loading import BPMN, CAMUNDA, NS

#: Lanes the engine routes to, by lane id or by the Chinese lane name a designer may have typed.
LEVEL_OF_LANE = {
    "village": "village", "村": "village", "村级": "village",
    "township": "township", "乡镇": "township", "乡": "township", "镇": "township", "乡镇级": "township",
    "county": "county", "县": "county", "县级": "county", "区": "county", "县区": "county", "县(区)": "county",
}
PAUSE_KINDS = ("supplement", "special", "publicity")




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
    #: processes its call activities call that are not in the file (deployed from another file): called
    #: process id → the calling call activities (element id, line); resolved at deploy (linking.py)
    external_calls: dict[str, list[tuple[str, int | None]]] = field(default_factory=dict)


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



# --------------------------------------------------------------------------------------------- what a spec reads
def decision_names(spec: Any, subprocess_specs: dict[str, Any]) -> frozenset[str]:
    """Every name the process's own logic reads — gateway conditions, scripts, pre/post scripts, timer
    and multi-instance expressions — in the process and the processes it calls. A field read there
    steers the case (directly, or through a script computing what a gateway reads), so only the step that
    declares it may set it."""
    names: set[str] = set()

    def read(text: Any, mode: str) -> None:
        if not isinstance(text, str) or not text.strip():
            return
        try:
            tree = ast.parse(text.strip(), mode=mode)
        except (SyntaxError, ValueError, RecursionError, MemoryError):
            return
        names.update(n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load))

    for process in (spec, *subprocess_specs.values()):
        for task_spec in process.task_specs.values():
            for condition, _target in getattr(task_spec, "cond_task_specs", ()):
                read((getattr(condition, "args", None) or [None])[0], "eval")
            for attr in ("script", "prescript", "postscript"):
                read(getattr(task_spec, attr, None), "exec")
            for attr in ("cardinality", "condition"):
                read(getattr(task_spec, attr, None), "eval")
            read(getattr(getattr(task_spec, "event_definition", None), "expression", None), "eval")
    return frozenset(names)


def first_steps(spec: Any, user_tasks: Iterable[str]) -> frozenset[str]:
    """The user tasks a new case can reach without passing another one: the steps that take the
    application (受理). Walked on the spec's outputs from its start."""
    tasks, found, seen = set(user_tasks), set(), set()
    stack = [spec.start]
    while stack:
        task_spec = stack.pop()
        if task_spec.name in seen:
            continue
        seen.add(task_spec.name)
        bpmn_id = getattr(task_spec, "bpmn_id", None)
        if bpmn_id in tasks:
            found.add(bpmn_id)
            continue
        stack.extend(task_spec.outputs)
    return frozenset(found)

