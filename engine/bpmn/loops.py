"""Deploy-time refusal of loops that can never wait.

A loop whose round holds no user task and no timer runs round after round inside one request (or one
sweep): SpiffWorkflow's task tree grows a level per step until its iterator gives out at depth 1000 and
the case looks finished, or the engine's step budget stops it. The deploy smoke run only sees the loops
before a new case's first wait, so loops after a user task, inside a subprocess or behind a boundary
timer passed. This module finds them statically, in every executable process and every (embedded or
called) subprocess: it removes from each flow graph the elements that wait — user, manual and plain
tasks, timer events that really wait, subprocesses and call activities every path of which waits — and
refuses every cycle that is left, whatever gateways (exclusive, inclusive, parallel) it runs through.
"""
from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from lxml import etree
from SpiffWorkflow.bpmn.specs.event_definitions.timer import TimerEventDefinition

from ..errors import Finding
from ..expressions import evaluate, is_iso_literal

_BPMN = "http://www.omg.org/spec/BPMN/20100524/MODEL"
_NS = {"bpmn": _BPMN}
#: Activities that wait for a person: SpiffWorkflow makes `task` (a NoneTask) manual, like user tasks.
_PERSON = {"userTask", "manualTask", "task"}
#: Catch events that wait for something other than time; nothing in Yicun sends them (they are refused
#: as stalls elsewhere), so for loops they count as waiting rather than being reported twice.
_OTHER_WAITS = {"messageEventDefinition", "signalEventDefinition", "conditionalEventDefinition"}
_CONTAINERS = {"subProcess", "transaction", "adHocSubProcess"}
_NOT_NODES = {"sequenceFlow", "laneSet", "dataObject", "dataObjectReference", "dataStoreReference",
              "textAnnotation", "association", "extensionElements", "documentation", "ioSpecification",
              "property", "dataInputAssociation", "dataOutputAssociation", "group", "category"}


def _local(element: etree._Element) -> str:
    return etree.QName(element).localname if isinstance(element.tag, str) else ""


@dataclass
class _Graph:
    """The flow nodes directly inside one process or subprocess, and what leads from one to the next."""
    container: etree._Element
    nodes: dict[str, etree._Element] = field(default_factory=dict)
    edges: dict[str, list[str]] = field(default_factory=dict)

    @classmethod
    def of(cls, container: etree._Element) -> _Graph:
        graph = cls(container)
        for child in container:
            if _local(child) and _local(child) not in _NOT_NODES and child.get("id"):
                graph.nodes[child.get("id")] = child
                graph.edges.setdefault(child.get("id"), [])
        for flow in container.findall("bpmn:sequenceFlow", _NS):
            source, target = flow.get("sourceRef"), flow.get("targetRef")
            if source in graph.nodes and target in graph.nodes:
                graph.edges[source].append(target)
        for node_id, node in graph.nodes.items():
            attached = node.get("attachedToRef") if _local(node) == "boundaryEvent" else None
            if attached in graph.nodes:  # a boundary event can happen whenever its activity is active
                graph.edges[attached].append(node_id)
        return graph

    def starts(self) -> list[str]:
        """Start events, or (BPMN's implicit start) nodes nothing flows into that are not boundary events."""
        explicit = [i for i, n in self.nodes.items() if _local(n) == "startEvent"]
        if explicit:
            return explicit
        targets = {t for ts in self.edges.values() for t in ts}
        return [i for i, n in self.nodes.items() if i not in targets and _local(n) != "boundaryEvent"
                and n.get("triggeredByEvent") != "true"]


class _Analysis:
    """Which elements of a file wait, memoised per subprocess and called process."""

    def __init__(self, root: etree._Element) -> None:
        self.processes = {p.get("id"): p for p in root.findall("bpmn:process", _NS)}
        self._must_wait: dict[int, bool] = {}

    def waits(self, node: etree._Element) -> bool:
        kind = _local(node)
        if kind in _PERSON or kind == "receiveTask":
            return True
        if kind in ("intermediateCatchEvent", "boundaryEvent"):
            return self._event_waits(node)
        if kind in _CONTAINERS and node.get("triggeredByEvent") != "true":
            return self.must_wait(node)
        if kind == "callActivity":
            called = self.processes.get(node.get("calledElement"))
            return True if called is None else self.must_wait(called)  # a missing callee is refused elsewhere
        return False

    @staticmethod
    def _event_waits(event: etree._Element) -> bool:
        kinds = {_local(d) for d in event}
        if kinds & _OTHER_WAITS:
            return True
        timer = event.find("bpmn:timerEventDefinition", _NS)
        if timer is None:
            return False  # error, escalation, compensation, link, none: nothing to wait for
        return _timer_waits(timer)

    def must_wait(self, container: etree._Element) -> bool:
        """Does every path through this (sub)process pass something that waits?"""
        key = id(container)
        if key not in self._must_wait:
            self._must_wait[key] = True  # a call cycle is refused elsewhere; assume it waits meanwhile
            graph = _Graph.of(container)
            free = {i for i, n in graph.nodes.items() if not self.waits(n)}
            seen, stack = set(), [s for s in graph.starts() if s in free]
            while stack:
                node_id = stack.pop()
                if node_id in seen:
                    continue
                seen.add(node_id)
                stack.extend(t for t in graph.edges[node_id] if t in free)
            ends = {i for i in seen if not graph.edges[i]}  # an end event, or any node that leads nowhere
            self._must_wait[key] = not ends
        return self._must_wait[key]


def _timer_waits(timer: etree._Element) -> bool:
    """A timer waits unless its literal value makes it fire at once in every round after the first: a
    zero duration or interval, or a fixed date (it waits once, then every later round passes straight on).
    An expression that reads no case data (`"PT" + "0S"`) is judged by its value, as it will run; one
    computed from case data is taken to wait."""
    for kind in ("timeDuration", "timeCycle", "timeDate"):
        element = timer.find(f"bpmn:{kind}", _NS)
        if element is None:
            continue
        text = _constant_value((element.text or "").strip())
        if text is None or not is_iso_literal(text):
            return True
        if kind == "timeDate":
            return False
        period = text.rsplit("/", 1)[-1] if kind == "timeCycle" else text
        try:
            parsed = TimerEventDefinition.parse_iso_duration(period)
            return any(float(v) > 0 for v in parsed.values())
        except Exception:  # a bare Exception from SpiffWorkflow, an OverflowError: the timer lint reports it
            return True
    return True


def _constant_value(text: str) -> str | None:
    """The text a timer will see: the literal itself, or the value of an expression that reads no case
    data; None when it depends on the case (or does not evaluate: the timer lint reports that)."""
    if is_iso_literal(text):
        return text
    try:
        value = evaluate(text, {})
    except Exception:  # NameError: it reads case data; anything else is the timer lint's to report
        return None
    return value.strip() if isinstance(value, str) else None


def _cycles(graph: _Graph, free: set[str]) -> Iterator[list[str]]:
    """Strongly connected components of the non-waiting part of the graph that contain a cycle
    (Tarjan's algorithm, iterative: a file may hold thousands of elements)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    counter = 0
    for start in graph.nodes:
        if start not in free or start in index:
            continue
        work = [(start, iter([t for t in graph.edges[start] if t in free]))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, successors = work[-1]
            advanced = False
            for succ in successors:
                if succ not in index:
                    index[succ] = low[succ] = counter
                    counter += 1
                    stack.append(succ)
                    on_stack.add(succ)
                    work.append((succ, iter([t for t in graph.edges[succ] if t in free])))
                    advanced = True
                    break
                if succ in on_stack:
                    low[node] = min(low[node], index[succ])
            if advanced:
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1 or node in graph.edges[node]:
                    yield component


def _containers(process: etree._Element) -> Iterable[etree._Element]:
    yield process
    for kind in _CONTAINERS:
        yield from process.iter(f"{{{_BPMN}}}{kind}")


def loop_findings(root: etree._Element, filename: str) -> list[Finding]:
    """One error per loop that can run round without ever waiting, at its first element in the file."""
    analysis = _Analysis(root)
    findings = []
    for process in root.findall("bpmn:process", _NS):
        if process.get("isExecutable", "true").lower() == "false":
            continue
        for container in _containers(process):
            graph = _Graph.of(container)
            free = {i for i, n in graph.nodes.items() if not analysis.waits(n)}
            for component in _cycles(graph, free):
                members = sorted(component, key=lambda i: graph.nodes[i].sourceline or 0)
                first = graph.nodes[members[0]]
                shown = ", ".join(members[:6]) + (", …" if len(members) > 6 else "")
                timed = any(graph.nodes[m].find("bpmn:timerEventDefinition", _NS) is not None for m in members)
                why = ("its timer fires at once (a zero duration, or a fixed date that waits in the first round "
                       "only)" if timed else "no user task, timer or waiting subprocess in it")
                findings.append(Finding(
                    "error", f"this loop never waits ({shown}): {why}, so a case would run it round and round "
                    "without stopping; put a user task or a timer on the way back", members[0], first.sourceline,
                    filename))
            findings.extend(_standard_loops(graph, analysis, filename))
    return findings


#: the most rounds a standard loop (loop marker) may make: SpiffWorkflow keeps every round of one under the
#: looping activity and merges their data, so its size grows with each round — a rework loop belongs in
#: the flow (a gateway back), which the engine keeps compact however long it runs
MAX_STANDARD_LOOP = 100


def _standard_loops(graph: _Graph, analysis: _Analysis, filename: str) -> list[Finding]:
    """An activity marked as a loop (standardLoopCharacteristics) needs a loopMaximum of at most
    MAX_STANDARD_LOOP: without one, one that does not wait repeats itself in one step without end, and one
    that waits grows the case with every round."""
    out = []
    for node_id, node in graph.nodes.items():
        loop = node.find("bpmn:standardLoopCharacteristics", _NS)
        if loop is None:
            continue
        maximum = (loop.get("loopMaximum") or "").strip()
        if maximum.isdigit() and int(maximum) <= MAX_STANDARD_LOOP:
            continue
        what = "without waiting" if not analysis.waits(node) else "and keeps every round in the case"
        out.append(Finding("error", f"this activity repeats itself (standard loop) {what}: give it a loopMaximum "
                           f"of at most {MAX_STANDARD_LOOP} (not {maximum[:20] or 'none'}), or loop through a "
                           "gateway back to it", node_id, node.sourceline, filename))
    return out
