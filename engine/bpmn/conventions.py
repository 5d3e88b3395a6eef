"""`yicun bpmn lint`: the conventions of DESIGN.md §6 for the catalogue's BPMN files, on top of what
deploy already refuses (`compiler`), and the cross-check between bpmn/ and catalog.yaml.

Each finding names the file, the element id and the line, so it can be fixed in any modeler.
"""
from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from lxml import etree

from ..errors import BpmnRejected, Finding
from .compiler import CompiledFile, compile_bpmn
from .loading import BPMN, BPMNDI, NS, load_xml
from .metadata import process_properties, user_task_meta

LANES = {"village": "村", "township": "乡镇", "county": "县"}
_CJK = re.compile(r"[\u4e00-\u9fff]")


def lint_file(path: Path, item: dict[str, Any] | None = None) -> list[Finding]:
    return lint_data(path.read_bytes(), path.name, item)


def lint_data(data: bytes, name: str, item: dict[str, Any] | None = None, compiled: CompiledFile | None = None,
              code: str | None = None) -> list[Finding]:
    """`lint_file` on a file's bytes (the browser's modeler sends no file): `compiled` when the caller has
    compiled it already, `code` the catalogue code the process id must equal (default: the file name's stem)."""
    if compiled is None:
        try:
            compiled = compile_bpmn(data, name)
        except BpmnRejected as exc:
            return list(exc.findings)
    findings = [f for f in compiled.findings if f.severity == "error"]
    root = load_xml(data, name).getroot()
    processes = root.findall("bpmn:process", NS)
    executable = [p for p in processes if p.get("isExecutable", "true").lower() != "false"]
    if len(executable) != 1:
        findings.append(Finding("error",
                                f"a catalogue file holds exactly one executable process, not {len(executable)}",
                                line=root.sourceline, file=name))
        return findings
    process = executable[0]
    pid = process.get("id")

    def err(message: str, element: etree._Element | None = None, element_id: str | None = None) -> None:
        el = element if element is not None else process
        findings.append(Finding("error", message, element_id or el.get("id"), el.sourceline, name))

    stem = code if code is not None else Path(name).stem
    if pid != stem:
        err(f"process id {pid!r} must equal the file name {stem!r} (the catalogue code)")
    if item is not None:
        _check_against_catalog(process, item, err)
    _check_lanes(process, err)
    _check_user_tasks(process, err)
    _check_gateways(process, err, findings, name)
    _check_diagram(root, process, err)
    return findings


def _check_lanes(process: etree._Element, err: Any) -> None:
    lanes = {lane.get("id"): lane for lane in process.iter(f"{BPMN}lane")}
    for lane_id, lane in lanes.items():
        if lane_id not in LANES:
            err(f"lane {lane_id!r} does not exist in Yicun: lanes are village, township and county", lane)
        elif (lane.get("name") or "") != LANES[lane_id]:
            err(f"lane {lane_id} must be named {LANES[lane_id]}", lane)
    for missing in sorted(set(LANES) - set(lanes)):
        err(f"lane {missing!r} ({LANES[missing]}) is missing")
    in_lane = {ref.text.strip() for ref in process.iter(f"{BPMN}flowNodeRef") if ref.text}
    for node in process:
        tag = etree.QName(node).localname
        if tag in ("laneSet", "sequenceFlow", "extensionElements", "documentation", "dataObject",
                   "dataObjectReference", "dataStoreReference", "textAnnotation", "association"):
            continue
        if node.get("id") and node.get("id") not in in_lane:
            err(f"{tag} is in no lane", node)


def _check_user_tasks(process: etree._Element, err: Any) -> None:
    timers = {b.get("attachedToRef") for b in process.iter(f"{BPMN}boundaryEvent")
              if b.find("bpmn:timerEventDefinition", NS) is not None}
    for meta in user_task_meta(process).values():
        el = process.xpath(".//*[@id=$id]", id=meta.bpmn_id)[0]
        if meta.level is None:
            err("user task is not in the village, township or county lane", el)
        if not _CJK.search(meta.name or ""):
            err("user task needs a Chinese name", el)
        if not meta.form_key:
            err("user task has no form (camunda:formKey)", el)
        if meta.bpmn_id not in timers:
            err("user task has no deadline (a timer boundary event)", el)


def _check_gateways(process: etree._Element, err: Any, findings: list[Finding], name: str) -> None:
    flows = {f.get("id"): f for f in process.iter(f"{BPMN}sequenceFlow")}
    for gw in process.iter(f"{BPMN}exclusiveGateway"):
        outgoing = [f for f in flows.values() if f.get("sourceRef") == gw.get("id")]
        if len(outgoing) < 2 or gw.get("default"):
            continue
        if any(f.find("bpmn:conditionExpression", NS) is None for f in outgoing):
            err("exclusive gateway has a flow with neither a condition nor the default mark", gw)
        else:
            findings.append(Finding("warning", "exclusive gateway has no default flow: make sure its conditions "
                                    "cover every case", gw.get("id"), gw.sourceline, name))


def _check_diagram(root: etree._Element, process: etree._Element, err: Any) -> None:
    shapes = {s.get("bpmnElement") for s in root.iter(f"{BPMNDI}BPMNShape")}
    edges = {e.get("bpmnElement") for e in root.iter(f"{BPMNDI}BPMNEdge")}
    if not shapes:
        err("no diagram interchange (BPMNDiagram): modelers cannot show this file")
        return
    for node in process.iter():
        if not isinstance(node.tag, str) or not node.get("id"):
            continue
        tag = etree.QName(node).localname
        if tag == "sequenceFlow" and node.get("id") not in edges:
            err("sequence flow has no diagram edge", node)
        elif tag not in ("sequenceFlow", "laneSet", "timerEventDefinition", "conditionExpression", "process",
                         "property", "formField", "formData", "value", "constraint", "validation", "properties") \
                and not tag.endswith("EventDefinition") and node.get("id") not in shapes:
            err(f"{tag} has no diagram shape", node)


def _check_against_catalog(process: etree._Element, item: dict[str, Any], err: Any) -> None:
    if (process.get("name") or "") != item.get("name"):
        err(f"process name {process.get('name')!r} differs from the catalogue name {item.get('name')!r}")
    props = process_properties(process)
    for prop, key in (("legalLimitWorkdays", "legal_limit_workdays"),
                      ("promisedLimitWorkdays", "promised_limit_workdays"),
                      ("extensionMaxWorkdays", "extension_max_workdays"), ("approveLevel", "approve_level")):
        if str(props.get(prop)) != str(item.get(key)):
            err(f"property {prop}={props.get(prop)!r} differs from the catalogue's {key}={item.get(key)!r}")
    names = {m.name for m in user_task_meta(process).values()}
    for n, stage in enumerate(item.get("stages", [])):
        if stage.get("name") not in names:
            err(f"catalogue stage {n} {stage.get('name')!r} has no user task of that name")


def lint_tree(bpmn_dir: Path, items: Iterable[dict[str, Any]] | None) -> list[Finding]:
    """Every file of bpmn/, and the two-way match with the catalogue."""
    catalog = {i.get("code"): i for i in items or []}
    files = {p.stem: p for p in sorted(Path(bpmn_dir).glob("*.bpmn"))}
    findings: list[Finding] = []
    for code, item in catalog.items():
        if code not in files:
            findings.append(Finding("error", f"catalogue item {code} ({item.get('name')}) has no BPMN file",
                                    file=f"bpmn/{code}.bpmn"))
    for code, path in files.items():
        if items is not None and code not in catalog:
            findings.append(Finding("error", "file has no catalogue entry in catalog.yaml", file=path.name))
        findings += lint_file(path, catalog.get(code))
    findings += _calls_outside(files)
    return findings


def _calls_outside(files: dict[str, Path]) -> list[Finding]:
    """A call activity calling a process of another file calls another catalogue item (process id = code):
    that file must be in the directory too, or the deploy of the set is refused (linking.py)."""
    findings = []
    for path in files.values():
        try:
            root = load_xml(path.read_bytes(), path.name).getroot()
        except BpmnRejected:
            continue  # reported by lint_file
        own = {p.get("id") for p in root.findall("bpmn:process", NS)}
        for call in root.iter(f"{BPMN}callActivity"):
            target = call.get("calledElement")
            if target and target not in own and target not in files:
                findings.append(Finding("error", f"call activity calls process {target!r}, which is neither in this "
                                        f"file nor a file of this directory ({target}.bpmn)", call.get("id"),
                                        call.sourceline, path.name))
    return findings
