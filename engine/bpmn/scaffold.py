"""`yicun bpmn scaffold`: write a BPMN file for a catalogue item from its stage chain.

The files are generated once and then committed and edited as files (in bpmn-js, Camunda Modeler or a
text editor); re-running the scaffold on an existing file needs ``--force``. One generator covers the
catalogue because the shape follows the item: every stage is a user task in its level's lane with its
own form and a ``workdays(N)`` deadline timer; the intake checks the documents and loops through 补正
(an interrupting timeout closes the case as withdrawn); review-type stages decide, and any refusal goes
to a village step that tells the applicant why; a 公示 wait appears where the item has one; the last
step hands the result to the applicant at the village. Appraisal (低保), inspection (宅基地) and assign
(法律援助) stages give those items their own shape.

Layout (diagram interchange, so modelers open the files readably): three horizontal lanes 村/乡镇/县,
one column per flow node in flow order; in each lane a main row, a row above (补正 and the refusal
path) and a row below (deadline warnings).
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any
from xml.sax.saxutils import escape

LANES = (("village", "村"), ("township", "乡镇"), ("county", "县"))
LEVEL_ZH = {"village": "村", "township": "乡镇", "county": "县"}
KIND_EN = {"intake": "Intake", "review": "Review", "survey": "Survey", "inspection": "Inspection",
           "appraisal": "Appraisal", "approve": "Approval", "assign": "Assign", "deliver": "Deliver"}
DECIDING = ("review", "survey", "inspection", "appraisal", "approve")
END_STATUS = {"End_Done": "completed", "End_Rejected": "rejected", "End_Withdrawn": "withdrawn"}

# geometry
POOL_X, POOL_Y, LABEL_W, LANE_H, COL_W, FIRST_X = 120, 60, 30, 300, 160, 230
ROW_ABOVE, ROW_MAIN, ROW_BELOW = 60, 160, 255
SIZE = {"task": (100, 80), "event": (36, 36), "gateway": (50, 50)}


@dataclass
class Node:
    id: str
    tag: str  # userTask, startEvent, endEvent, exclusiveGateway, intermediateCatchEvent, boundaryEvent
    name: str
    lane: str
    col: float
    row: int
    body: str = ""  # inner XML
    attrs: dict[str, str] = field(default_factory=dict)

    @property
    def kind(self) -> str:
        return "task" if self.tag == "userTask" else "gateway" if "Gateway" in self.tag else "event"

    def center(self) -> tuple[float, float]:
        lane_top = POOL_Y + [name for name, _ in LANES].index(self.lane) * LANE_H
        return FIRST_X + self.col * COL_W, lane_top + self.row

    def bounds(self) -> tuple[float, float, float, float]:
        (cx, cy), (w, h) = self.center(), SIZE[self.kind]
        return cx - w / 2, cy - h / 2, w, h


@dataclass
class Flow:
    id: str
    source: str
    target: str
    name: str = ""
    condition: str | None = None
    waypoints: list[tuple[float, float]] = field(default_factory=list)


class _Builder:
    def __init__(self, item: dict[str, Any]) -> None:
        self.item = item
        self.code = item["code"]
        self.nodes: dict[str, Node] = {}
        self.flows: list[Flow] = []
        self.col = 0.0

    # ------------------------------------------------------------------ structure
    def add(self, node: Node) -> Node:
        self.nodes[node.id] = node
        return node

    def flow(self, source: str, target: str, name: str = "", condition: str | None = None) -> Flow:
        f = Flow(f"Flow_{source.split('_', 1)[-1]}_{target.split('_', 1)[-1]}", source, target, name, condition)
        if any(x.id == f.id for x in self.flows):
            f.id += f"_{len(self.flows)}"
        self.flows.append(f)
        return f

    def task(self, tid: str, name: str, lane: str, doc: str, fields: list[str], workdays: int,
             groups: str | None = None, row: int = ROW_MAIN, col: float | None = None,
             warn: bool = True, pauses_clock: str | None = None) -> Node:
        attrs = {"camunda:formKey": f"{self.code}:{tid}"}
        if groups:
            attrs["camunda:candidateGroups"] = groups
        props = ("        <camunda:properties>\n"
                 f"          <camunda:property name=\"pausesClock\" value=\"{pauses_clock}\" />\n"
                 "        </camunda:properties>\n") if pauses_clock else ""
        body = (f"      <bpmn:documentation>{escape(doc)}</bpmn:documentation>\n"
                "      <bpmn:extensionElements>\n" + props + "        <camunda:formData>\n"
                + "".join(fields) + "        </camunda:formData>\n      </bpmn:extensionElements>\n")
        node = self.add(Node(tid, "userTask", name, lane, self.col if col is None else col, row, body, attrs))
        if warn:
            timer = self.add(Node(f"Timer_{tid[5:]}_Warn", "boundaryEvent", "办理时限预警", lane, node.col, row,
                                  _timer(f"workdays({workdays})"),
                                  {"attachedToRef": tid, "cancelActivity": "false"}))
            end = self.add(Node(f"End_{tid[5:]}_Warn", "endEvent", "超时预警已发出", lane, node.col, ROW_BELOW))
            self.flow(timer.id, end.id)
        return node

    def next_col(self, step: float = 1.0) -> float:
        self.col += step
        return self.col

    # ------------------------------------------------------------------ the process
    def build(self) -> None:
        it, stages = self.item, self.item["stages"]
        accept = it["accept_level"]
        start = self.add(Node("StartEvent_Apply", "startEvent", "受理申请", accept, self.col, ROW_MAIN))
        self.next_col(0.8)
        names_used: dict[str, int] = {}
        task_ids = []
        for st in stages:
            base = f"Task_{st['level'].capitalize()}{KIND_EN[st['kind']]}"
            names_used[base] = names_used.get(base, 0) + 1
            task_ids.append(base if names_used[base] == 1 else f"{base}{names_used[base]}")
        dept = it["department"] if it["department"] not in ("村委会",) else None

        # intake + 补正 loop
        intake = self.task(task_ids[0], stages[0]["name"], accept,
                           f"核对申请人身份和{'、'.join(it['documents'][:4])}等材料，材料不全的一次性告知补正。",
                           _intake_fields(it), stages[0]["workdays"])
        self.flow(start.id, intake.id)
        self.next_col(0.8)
        gw_docs = self.add(Node("Gateway_Documents", "exclusiveGateway", "材料是否齐全", accept, self.col, ROW_MAIN))
        self.flow(intake.id, gw_docs.id)
        supplement = self.task("Task_Supplement", "一次性告知并等待补正", accept,
                               "一次性告知申请人需补正的全部材料；申请人补齐后重新核对。补正期间办理时限暂停计算。",
                               [_field("supplement_items", "需补正的材料（一次性告知）", "string", True),
                                _field("supplement_received", "申请人已补齐材料", "boolean", True)],
                               stages[0]["workdays"], row=ROW_ABOVE, col=self.col + 0.7, warn=False,
                               pauses_clock="supplement")
        timeout = self.add(Node("Timer_Supplement_Withdraw", "boundaryEvent", "补正超时", accept, supplement.col + 0.31,
                                ROW_ABOVE, _timer(f"P{it['supplement_days']}D"),
                                {"attachedToRef": supplement.id, "cancelActivity": "true"}))
        withdrawn = self.add(Node("End_Withdrawn", "endEvent", "逾期未补正，视为撤回", accept, supplement.col + 1.0,
                                  ROW_ABOVE, _status("withdrawn")))
        self.flow(timeout.id, withdrawn.id)
        self.flow(gw_docs.id, supplement.id, "材料不全", "documents_complete == False")
        self.flow(supplement.id, intake.id, "已补正")
        previous = gw_docs

        decision_gateways: list[Node] = []
        publicity_after = _publicity_stage(it) if it.get("publicity_days") else None
        if publicity_after == 0:
            previous = self._publicity(previous, it)
        for n, st in enumerate(stages[1:], start=1):
            self.next_col(1.3 if previous.kind != "task" else 1.0)
            tid = task_ids[n]
            key = f"{st['level']}_{st['kind']}" + ("" if tid == f"Task_{st['level'].capitalize()}{KIND_EN[st['kind']]}"
                                                   else tid[-1])
            groups = dept if st["level"] == "county" else None
            if st["kind"] in DECIDING:
                fields = _decision_fields(key, st)
                doc = f"{LEVEL_ZH[st['level']]}级{st['name']}：作出同意或不同意的意见，并说明理由。"
            elif st["kind"] == "assign":
                fields = [_field(f"{key}_person", "承办人", "string", True),
                          _field(f"{key}_date", "指派日期", "date", True)]
                doc = f"{st['name']}，并告知承办人联系方式。"
            else:  # deliver
                fields = [_field("delivered", "已将办理结果送达申请人", "boolean", True),
                          _enum("delivery_method", "送达方式", [("on_site", "现场领取"), ("by_village", "村代领转交"),
                                                              ("by_post", "邮寄")], True),
                          _field("delivery_date", "送达日期", "date", False)]
                doc = "将办理结果（证件、批复或告知书）送达申请人，并请申请人签收。"
            task = self.task(tid, st["name"], st["level"], doc, fields, st["workdays"], groups)
            self.flow(previous.id, task.id)
            previous = task
            if st["kind"] in DECIDING:
                self.next_col(0.8)
                gw = self.add(Node(f"Gateway_{tid[5:]}", "exclusiveGateway", f"{st['name']}结果", st["level"],
                                   self.col, ROW_MAIN))
                self.flow(task.id, gw.id)
                gw.attrs["_approve"] = f'{key}_decision == "approve"'
                decision_gateways.append(gw)
                previous = gw
            if n == publicity_after:
                previous = self._publicity(previous, it)
        self.next_col(0.8)
        done = self.add(Node("End_Done", "endEvent", "办结", "village", self.col, ROW_MAIN, _status("completed")))
        self.flow(previous.id, done.id)

        # the refusal path, along the top of the village lane
        self.next_col(1.0)
        merge = self.add(Node("Gateway_Rejected", "exclusiveGateway", "不予办理", "village", self.col, ROW_ABOVE))
        self.next_col(1.0)
        notify = self.task("Task_VillageNotifyReject", "告知申请人不予办理结果及理由", "village",
                           "向申请人书面告知不予办理的结果和理由，以及申请复议或诉讼的途径。",
                           [_field("notified", "已书面告知申请人", "boolean", True),
                            _enum("notify_method", "告知方式", [("in_person", "当面告知"), ("by_phone", "电话告知"),
                                                             ("by_post", "邮寄告知书")], True)],
                           2, row=ROW_ABOVE)
        self.next_col(1.0)
        rejected = self.add(Node("End_Rejected", "endEvent", "不予办理", "village", self.col, ROW_ABOVE,
                                 _status("rejected")))
        for gw in decision_gateways:
            reject = self.flow(gw.id, merge.id, "不同意")
            gw.attrs["default"] = reject.id
        self.flow(merge.id, notify.id)
        self.flow(notify.id, rejected.id)
        # approval flows carry the conditions
        for f in self.flows:
            src = self.nodes[f.source]
            if src in decision_gateways and f.target != merge.id:
                f.condition, f.name = src.attrs["_approve"], "同意"
            if src.id == gw_docs.id and f.condition is None:
                gw_docs.attrs["default"] = f.id
                f.name = "材料齐全"

    def _publicity(self, previous: Node, it: dict[str, Any]) -> Node:
        self.next_col(1.0)
        level = it["publicity_level"]
        event = self.add(Node("Event_Publicity", "intermediateCatchEvent", f"公示{it['publicity_days']}天", level,
                              self.col, ROW_MAIN, _timer(f"P{it['publicity_days']}D"), {}))
        self.flow(previous.id, event.id)
        return event


def _publicity_stage(item: dict[str, Any]) -> int:
    """Index of the stage the 公示 follows: the last one at the publicity level before the decision
    (公示 precedes approval, as for 低保 and 宅基地), else the decision itself."""
    stages = item["stages"]
    approve = next(i for i, s in enumerate(stages) if s["kind"] == "approve")
    before = [i for i in range(approve) if stages[i]["level"] == item["publicity_level"]]
    return before[-1] if before else approve


def _timer(expression: str) -> str:
    return ("      <bpmn:timerEventDefinition>\n"
            f"        <bpmn:timeDuration xsi:type=\"bpmn:tFormalExpression\">{escape(expression)}</bpmn:timeDuration>\n"
            "      </bpmn:timerEventDefinition>\n")


def _status(status: str) -> str:
    return ("      <bpmn:extensionElements>\n        <camunda:properties>\n"
            f"          <camunda:property name=\"caseStatus\" value=\"{status}\" />\n"
            "        </camunda:properties>\n      </bpmn:extensionElements>\n")


def _field(fid: str, label: str, kind: str, required: bool, constraints: dict[str, Any] | None = None) -> str:
    cons = dict(constraints or {})
    if required:
        cons = {"required": None, **cons}
    inner = ""
    if cons:
        inner = "            <camunda:validation>\n" + "".join(
            f'              <camunda:constraint name="{k}"' + ("" if v is None else f' config="{_attr(v)}"')
            + " />\n" for k, v in cons.items()) + "            </camunda:validation>\n"
    return (f"          <camunda:formField id=\"{fid}\" label=\"{_attr(label)}\" type=\"{kind}\""
            + (">\n" + inner + "          </camunda:formField>\n" if inner else " />\n"))


def _attr(value: Any) -> str:
    return escape(str(value), {'"': "&quot;"})


def _enum(fid: str, label: str, options: list[tuple[str, str]], required: bool) -> str:
    values = "".join(f"            <camunda:value id=\"{o}\" name=\"{_attr(n)}\" />\n" for o, n in options)
    req = ("            <camunda:validation>\n              <camunda:constraint name=\"required\" />\n"
           "            </camunda:validation>\n") if required else ""
    return (f"          <camunda:formField id=\"{fid}\" label=\"{_attr(label)}\" type=\"enum\">\n"
            + values + req + "          </camunda:formField>\n")


def _intake_fields(item: dict[str, Any]) -> list[str]:
    out = []
    for f in item["form"]:
        if f["type"] == "enum":
            options = [(o["id"], o["name"]) for o in f["options"]]
            out.append(_enum(f["id"], f["label"], options, f.get("required", False)))
            continue
        cons = {}
        if "pattern" in f:
            cons["pattern"] = f["pattern"]
        if "min" in f:
            cons["min"] = f["min"]
        if "max" in f:
            cons["max"] = f["max"]
        if "max_length" in f:
            cons["maxlength"] = f["max_length"]
        out.append(_field(f["id"], f["label"], f["type"], bool(f.get("required")), cons))
    out.append(_field("documents_complete", "申请材料齐全", "boolean", True))
    out.append(_field("remarks", "备注", "string", False, {"maxlength": 500}))
    return out


DECISION_WORDS = {
    "survey": ("属实，同意", "不属实，不同意"), "inspection": ("符合条件，同意", "不符合条件，不同意"),
    "appraisal": ("评议通过", "评议未通过"), "approve": ("批准", "不予批准"), "review": ("同意", "不同意"),
}


def _decision_fields(key: str, st: dict[str, Any]) -> list[str]:
    yes, no = DECISION_WORDS[st["kind"]]
    fields = [_enum(f"{key}_decision", f"{st['name']}结论", [("approve", yes), ("reject", no)], True),
              _field(f"{key}_opinion", "意见和理由", "string", True, {"maxlength": 1000})]
    if st["kind"] in ("survey", "inspection", "appraisal"):
        fields.append(_field(f"{key}_date", {"survey": "入户调查日期", "inspection": "实地核查日期",
                                             "appraisal": "评议日期"}[st["kind"]], "date", True))
    return fields


# ------------------------------------------------------------------------------------------ layout + XML
def _waypoints(b: _Builder, f: Flow) -> list[tuple[float, float]]:
    s, t = b.nodes[f.source], b.nodes[f.target]
    (sx, sy), (tx, ty) = s.center(), t.center()
    sw, sh = SIZE[s.kind]
    tw, th = SIZE[t.kind]
    if s.tag == "boundaryEvent":
        if t.row == ROW_BELOW:
            return [(sx, sy + sh / 2), (tx, ty - th / 2)]
        return [(sx + sw / 2, sy), (tx - tw / 2, ty)]
    if t.id == "Gateway_Rejected" and s.kind == "gateway":  # refusals run along the top of the pool
        channel = POOL_Y + 18
        return [(sx, sy - sh / 2), (sx, channel), (tx, channel), (tx, ty - th / 2)]
    if t.id == "Task_Supplement":
        return [(sx, sy - sh / 2), (sx, ty), (tx - tw / 2, ty)]
    if s.id == "Task_Supplement":  # back to the intake, over its top
        up = ty - th / 2 - 35
        return [(sx - sw / 2 + 20, sy - sh / 2), (sx - sw / 2 + 20, up), (tx, up), (tx, ty - th / 2)]
    if abs(sy - ty) < 1:
        return [(sx + sw / 2, sy), (tx - tw / 2, ty)]
    mid = (sx + sw / 2 + tx - tw / 2) / 2
    return [(sx + sw / 2, sy), (mid, sy), (mid, ty), (tx - tw / 2, ty)]


def render(item: dict[str, Any]) -> str:
    """The BPMN 2.0 XML of a catalogue item."""
    b = _Builder(item)
    b.build()
    code, name = item["code"], item["name"]
    width = FIRST_X + (b.col + 1.2) * COL_W - POOL_X
    height = LANE_H * len(LANES)
    props = {"legalLimitWorkdays": item["legal_limit_workdays"],
             "promisedLimitWorkdays": item["promised_limit_workdays"],
             "extensionMaxWorkdays": item["extension_max_workdays"], "approveLevel": item["approve_level"]}
    out = ['<?xml version="1.0" encoding="UTF-8"?>',
           '<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" '
           'xmlns:bpmndi="http://www.omg.org/spec/BPMN/20100524/DI" xmlns:dc="http://www.omg.org/spec/DD/20100524/DC" '
           'xmlns:di="http://www.omg.org/spec/DD/20100524/DI" xmlns:camunda="http://camunda.org/schema/1.0/bpmn" '
           'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
           f'id="Definitions_{code}" targetNamespace="http://yicun.example/bpmn" exporter="yicun bpmn scaffold" '
           'exporterVersion="1">',
           f'  <bpmn:collaboration id="Collaboration_{code}">',
           f'    <bpmn:participant id="Participant_{code}" name="{_attr(name)}" processRef="{code}" />',
           '  </bpmn:collaboration>',
           f'  <bpmn:process id="{code}" name="{_attr(name)}" isExecutable="true">',
           '    <bpmn:documentation>' + escape(f"{name}（{item['department']}）："
                                            f"法定{item['legal_limit_workdays']}个工作日，"
                                            f"承诺{item['promised_limit_workdays']}个工作日。"
                                            f"所需材料：{'、'.join(item['documents'])}。")
           + '</bpmn:documentation>',
           '    <bpmn:extensionElements>', '      <camunda:properties>']
    out += [f'        <camunda:property name="{k}" value="{v}" />' for k, v in props.items()]
    out += ['      </camunda:properties>', '    </bpmn:extensionElements>', f'    <bpmn:laneSet id="LaneSet_{code}">']
    for lane, zh in LANES:
        out.append(f'      <bpmn:lane id="{lane}" name="{zh}">')
        out += [f'        <bpmn:flowNodeRef>{n.id}</bpmn:flowNodeRef>' for n in b.nodes.values() if n.lane == lane]
        out.append('      </bpmn:lane>')
    out.append('    </bpmn:laneSet>')
    incoming: dict[str, list[str]] = {}
    outgoing: dict[str, list[str]] = {}
    for f in b.flows:
        outgoing.setdefault(f.source, []).append(f.id)
        incoming.setdefault(f.target, []).append(f.id)
    for n in b.nodes.values():
        attrs = "".join(f' {k}="{_attr(v)}"' for k, v in n.attrs.items() if not k.startswith("_"))
        refs = "".join(f"      <bpmn:incoming>{i}</bpmn:incoming>\n" for i in incoming.get(n.id, [])) + \
            "".join(f"      <bpmn:outgoing>{o}</bpmn:outgoing>\n" for o in outgoing.get(n.id, []))
        out.append(f'    <bpmn:{n.tag} id="{n.id}" name="{_attr(n.name)}"{attrs}>\n'
                   f'{_order_body(n, refs)}    </bpmn:{n.tag}>')
    for f in b.flows:
        name = f' name="{_attr(f.name)}"' if f.name else ""
        if f.condition:
            out.append(f'    <bpmn:sequenceFlow id="{f.id}"{name} sourceRef="{f.source}" targetRef="{f.target}">\n'
                       f'      <bpmn:conditionExpression xsi:type="bpmn:tFormalExpression">{escape(f.condition)}'
                       '</bpmn:conditionExpression>\n    </bpmn:sequenceFlow>')
        else:
            out.append(f'    <bpmn:sequenceFlow id="{f.id}"{name} sourceRef="{f.source}" targetRef="{f.target}" />')
    out += ['  </bpmn:process>', f'  <bpmndi:BPMNDiagram id="Diagram_{code}">',
            f'    <bpmndi:BPMNPlane id="Plane_{code}" bpmnElement="Collaboration_{code}">',
            f'      <bpmndi:BPMNShape id="Participant_{code}_di" bpmnElement="Participant_{code}" isHorizontal="true">',
            f'        <dc:Bounds x="{POOL_X}" y="{POOL_Y}" width="{width:.0f}" height="{height}" />',
            '      </bpmndi:BPMNShape>']
    for i, (lane, _) in enumerate(LANES):
        out += [f'      <bpmndi:BPMNShape id="{lane}_di" bpmnElement="{lane}" isHorizontal="true">',
                f'        <dc:Bounds x="{POOL_X + LABEL_W}" y="{POOL_Y + i * LANE_H}" width="{width - LABEL_W:.0f}" '
                f'height="{LANE_H}" />', '      </bpmndi:BPMNShape>']
    for n in b.nodes.values():
        x, y, w, h = n.bounds()
        if n.tag == "boundaryEvent":
            host = b.nodes[n.attrs["attachedToRef"]]
            hx, hy, hw, hh = host.bounds()
            x, y = ((hx + hw - 18, hy + hh / 2 - 18) if n.attrs.get("cancelActivity") == "true"
                    else (hx + hw / 2 - 18, hy + hh - 18))
        marker = ' isMarkerVisible="true"' if n.kind == "gateway" else ""
        out += [f'      <bpmndi:BPMNShape id="{n.id}_di" bpmnElement="{n.id}"{marker}>',
                f'        <dc:Bounds x="{x:.0f}" y="{y:.0f}" width="{w}" height="{h}" />']
        if n.kind != "task" and n.name:
            lx, ly = (x - 22, y + h + 4) if n.tag != "boundaryEvent" else (x + 30, y + 30)
            out += ['        <bpmndi:BPMNLabel>',
                    f'          <dc:Bounds x="{lx:.0f}" y="{ly:.0f}" width="80" height="27" />',
                    '        </bpmndi:BPMNLabel>']
        out.append('      </bpmndi:BPMNShape>')
    for f in b.flows:
        pts = _waypoints_fixed(b, f)
        out.append(f'      <bpmndi:BPMNEdge id="{f.id}_di" bpmnElement="{f.id}">')
        out += [f'        <di:waypoint x="{px:.0f}" y="{py:.0f}" />' for px, py in pts]
        if f.name:  # the label beside the edge's longest segment, clear of the shapes it connects
            (ax, ay), (bx, by) = max(itertools.pairwise(pts),
                                     key=lambda seg: abs(seg[0][0] - seg[1][0]) + abs(seg[0][1] - seg[1][1]))
            lx, ly = ((ax + 6, (ay + by) / 2 - 7) if abs(ax - bx) < 1 else ((ax + bx) / 2 - 20, ay + 3))
            out += ['        <bpmndi:BPMNLabel>',
                    f'          <dc:Bounds x="{lx:.0f}" y="{ly:.0f}" width="44" height="14" />',
                    '        </bpmndi:BPMNLabel>']
        out.append('      </bpmndi:BPMNEdge>')
    out += ['    </bpmndi:BPMNPlane>', '  </bpmndi:BPMNDiagram>', '</bpmn:definitions>', '']
    return "\n".join(out)


def _waypoints_fixed(b: _Builder, f: Flow) -> list[tuple[float, float]]:
    """Waypoints, with boundary sources starting where their shape really is (bottom or right edge)."""
    s = b.nodes[f.source]
    pts = _waypoints(b, f)
    if s.tag == "boundaryEvent":
        host = b.nodes[s.attrs["attachedToRef"]]
        hx, hy, hw, hh = host.bounds()
        t = b.nodes[f.target]
        (tx, ty), (tw, th) = t.center(), SIZE[t.kind]
        if s.attrs.get("cancelActivity") == "true":  # on the right edge, into an end event to the right
            return [(hx + hw + 18, hy + hh / 2), (tx - tw / 2, ty)]
        return [(hx + hw / 2, hy + hh + 18), (tx, ty - th / 2)]
    return pts


def _order_body(n: Node, refs: str) -> str:
    """BPMN's XSD wants documentation, extensionElements, incoming/outgoing, then event definitions."""
    body = n.body
    if n.tag in ("boundaryEvent", "intermediateCatchEvent"):
        return refs + body
    if n.tag == "endEvent":
        return body + refs
    return body + refs
