"""SpiffWorkflow glue: the parser, timers on the engine clock, the safe workflow class and the serializer.

Everything that touches SpiffWorkflow's object model lives here (and in `bpmn.py` for parsing), so the
rest of the engine deals in plain values. Three fixes of SPIFFWORKFLOW.md are applied here:

* the restricted script engine is forced on every workflow, including one rebuilt by the serializer
  (SpiffWorkflow otherwise silently falls back to the unrestricted engine, §5);
* timers read the engine clock instead of ``datetime.now`` and accept bare ISO 8601 text (§3);
* instances are serialized without their spec, which is stored once per process version (§4).
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any
from uuid import UUID

from SpiffWorkflow import TaskState
from SpiffWorkflow.bpmn import BpmnWorkflow
from SpiffWorkflow.bpmn.serializer.default.event_definition import TimerConditionalEventDefinitionConverter
from SpiffWorkflow.bpmn.serializer.default.workflow import BpmnWorkflowConverter, WorkflowConverter
from SpiffWorkflow.bpmn.serializer.workflow import BpmnWorkflowSerializer
from SpiffWorkflow.bpmn.specs.event_definitions.timer import (
    CycleTimerEventDefinition,
    DurationTimerEventDefinition,
    TimeDateEventDefinition,
    TimerEventDefinition,
)
from SpiffWorkflow.bpmn.specs.mixins.events.end_event import EndEvent
from SpiffWorkflow.bpmn.specs.mixins.events.event_types import CatchingEvent
from SpiffWorkflow.spiff.parser.event_parsers import (
    SpiffBoundaryEventParser,
    SpiffIntermediateCatchEventParser,
    SpiffStartEventParser,
)
from SpiffWorkflow.spiff.parser.process import SpiffBpmnParser
from SpiffWorkflow.spiff.serializer.config import SPIFF_CONFIG
from SpiffWorkflow.bpmn.parser.util import full_tag
from SpiffWorkflow.bpmn.specs.event_definitions.base import EventDefinition

from . import clock
from .workdays import default_calendar
from .expressions import RESTRICTED_ENGINE, RestrictedScriptEngine, is_iso_literal

__all__ = ["YicunParser", "SafeBpmnWorkflow", "SERIALIZER", "dump_instance", "load_instance",
           "spec_to_json", "spec_from_json", "ready_user_tasks", "armed_timers", "TaskState"]


# --------------------------------------------------------------------------------------------- timers
def _timer_text(my_task: Any, expression: str) -> str:
    """Bare ISO 8601 (as Camunda Modeler writes it) is taken literally; anything else is an expression."""
    if is_iso_literal(expression):
        return expression.strip()
    return my_task.workflow.script_engine.evaluate(my_task, expression)


class ClockTimeDateEventDefinition(TimeDateEventDefinition):
    def has_fired(self, my_task: Any) -> bool:
        event_value = my_task._get_internal_data("event_value")
        if event_value is None:
            event_value = _timer_text(my_task, self.expression)
            my_task._set_internal_data(event_value=event_value)
        if TimerEventDefinition.parse_time_or_duration(event_value) <= clock.now():
            my_task._set_internal_data(event_fired=True)
        return my_task._get_internal_data("event_fired", False)


WORKDAYS_MARKER = re.compile(r"^P(\d+)WD$")
PAUSED_VALUE = "9999-12-31T00:00:00+00:00"  # the due of a timer whose case clock is stopped


class ClockDurationTimerEventDefinition(DurationTimerEventDefinition):
    def has_fired(self, my_task: Any) -> bool:
        event_value = my_task._get_internal_data("event_value")
        if event_value is None:
            text = _timer_text(my_task, self.expression)
            start = clock.now()
            marker = WORKDAYS_MARKER.match(text)
            if marker:  # workdays(N): the end of the N-th working day after today (Asia/Shanghai)
                due = default_calendar().due(start, int(marker.group(1)))
                event_value = due.end_instant.astimezone(timezone.utc).isoformat()
                my_task._set_internal_data(workdays=int(marker.group(1)), estimated=due.estimated)
            else:
                parsed = TimerEventDefinition.parse_iso_duration(text)
                event_value = (start + TimerEventDefinition.get_timedelta_from_start(parsed, start)).isoformat()
            my_task._set_internal_data(event_value=event_value)
        if TimerEventDefinition.get_datetime(event_value) <= clock.now():
            my_task._set_internal_data(event_fired=True)
        return my_task._get_internal_data("event_fired", False)


class ClockCycleTimerEventDefinition(CycleTimerEventDefinition):
    def cycle_complete(self, my_task: Any) -> bool:
        event_value = my_task._get_internal_data("event_value")
        if event_value is None:
            cycles, start, duration = _parse_cycle(_timer_text(my_task, self.expression))
            event_value = {"cycles": cycles, "next": start.isoformat(), "duration": duration.total_seconds()}
        ready = False
        if event_value["cycles"] != 0:
            next_event = datetime.fromisoformat(event_value["next"])
            if next_event <= clock.now():
                event_value["next"] = (next_event + timedelta(seconds=event_value["duration"])).isoformat()
                event_value["cycles"] -= 1
                ready = True
        else:
            my_task.internal_data.pop("event_value", None)
            my_task.internal_data["event_fired"] = True
        my_task._set_internal_data(event_value=event_value)
        return ready


def _parse_cycle(text: str) -> tuple[int, datetime, timedelta]:
    """Spiff's recurring-interval parser, but a duration-only cycle starts from the engine clock."""
    components = text.upper().replace("--", "/").strip("R").split("/")
    if len(components) == 2 and components[1].startswith("P"):
        cycles = int(components[0]) if components[0] else -1
        start = clock.now()
        duration = TimerEventDefinition.get_timedelta_from_start(
            TimerEventDefinition.parse_iso_duration(components[1]), start)
        return cycles, start + duration, duration
    return TimerEventDefinition.parse_iso_recurring_interval(text)


_CLOCKED = {
    TimeDateEventDefinition: ClockTimeDateEventDefinition,
    DurationTimerEventDefinition: ClockDurationTimerEventDefinition,
    CycleTimerEventDefinition: ClockCycleTimerEventDefinition,
}


class _ClockTimerParserMixin:
    def parse_timer_event(self, event: Any) -> EventDefinition:
        definition = super().parse_timer_event(event)  # type: ignore[misc]
        return _CLOCKED[type(definition)](definition.name, definition.expression,
                                          description=definition.description)


class _BoundaryEventParser(_ClockTimerParserMixin, SpiffBoundaryEventParser):
    pass


class _IntermediateCatchEventParser(_ClockTimerParserMixin, SpiffIntermediateCatchEventParser):
    pass


class _StartEventParser(_ClockTimerParserMixin, SpiffStartEventParser):
    pass


def _override(tag: str, parser_class: type) -> tuple[str, tuple[type, type]]:
    return full_tag(tag), (parser_class, SpiffBpmnParser.OVERRIDE_PARSER_CLASSES[full_tag(tag)][1])


class YicunParser(SpiffBpmnParser):
    """SpiffBpmnParser whose timers run on the engine clock."""

    OVERRIDE_PARSER_CLASSES = dict(
        SpiffBpmnParser.OVERRIDE_PARSER_CLASSES,
        **dict([
            _override("boundaryEvent", _BoundaryEventParser),
            _override("intermediateCatchEvent", _IntermediateCatchEventParser),
            _override("startEvent", _StartEventParser),
        ]),
    )


# --------------------------------------------------------------------------------------------- workflow
class SafeBpmnWorkflow(BpmnWorkflow):
    """A workflow that can only ever evaluate through the restricted engine.

    The property ignores whatever engine the base class stored, so neither a caller, nor the serializer
    (which builds workflows without an engine), nor a setting can put the unrestricted one back.
    """

    def __init__(self, spec: Any, subprocess_specs: Any = None, script_engine: Any = None, **kwargs: Any) -> None:
        if script_engine is not None and not isinstance(script_engine, RestrictedScriptEngine):
            raise PermissionError("Yicun workflows only run with the restricted script engine")
        super().__init__(spec, subprocess_specs, script_engine=RESTRICTED_ENGINE, **kwargs)

    @property  # type: ignore[override]
    def script_engine(self) -> RestrictedScriptEngine:
        return RESTRICTED_ENGINE

    @script_engine.setter
    def script_engine(self, engine: Any) -> None:
        if not isinstance(engine, RestrictedScriptEngine):
            raise PermissionError("Yicun workflows only run with the restricted script engine")


class SpecRefWorkflowConverter(BpmnWorkflowConverter):
    """Serializes an instance without its spec; the caller supplies the cached spec on restore."""

    def to_dict(self, workflow: Any) -> dict[str, Any]:
        dct = WorkflowConverter.to_dict(self, workflow)
        dct["subprocesses"] = self.mapping_to_dict(workflow.subprocesses)
        dct["bpmn_events"] = self.registry.convert(workflow.bpmn_events)
        return dct

    def from_dict(self, dct: dict[str, Any], spec: Any = None, subprocess_specs: Any = None) -> Any:
        if spec is None:
            raise ValueError("an instance is restored with the spec of its process version")
        workflow = self.target_class(spec, subprocess_specs or {}, deserializing=True)
        workflow.tasks = self.mapping_from_dict(dct["tasks"], UUID, workflow=workflow)
        workflow.task_tree = workflow.tasks.get(UUID(dct["root"]))
        self.set_default_attributes(workflow, dct)
        self.subprocesses_from_dict(dct["subprocesses"], workflow)
        workflow.bpmn_events = self.registry.restore(dct.pop("bpmn_events", []))
        return workflow


_CONFIG = dict(SPIFF_CONFIG)
_CONFIG.pop(BpmnWorkflow, None)
_CONFIG[SafeBpmnWorkflow] = SpecRefWorkflowConverter
for _cls in _CLOCKED.values():
    _CONFIG[_cls] = TimerConditionalEventDefinitionConverter
SERIALIZER = BpmnWorkflowSerializer(BpmnWorkflowSerializer.configure(_CONFIG))


def spec_to_json(spec: Any, subprocess_specs: dict[str, Any]) -> str:
    registry = SERIALIZER.registry
    return json.dumps({
        "spec": registry.convert(spec),
        "subprocess_specs": {name: registry.convert(s) for name, s in subprocess_specs.items()},
    })


def spec_from_json(text: str) -> tuple[Any, dict[str, Any]]:
    dct = json.loads(text)
    registry = SERIALIZER.registry
    return registry.restore(dct["spec"]), {k: registry.restore(v) for k, v in dct["subprocess_specs"].items()}


def new_workflow(spec: Any, subprocess_specs: dict[str, Any]) -> SafeBpmnWorkflow:
    return SafeBpmnWorkflow(spec, subprocess_specs)


def dump_instance(workflow: SafeBpmnWorkflow) -> str:
    SERIALIZER.registry._encoder_mode = True  # what serialize_json does; keeps data conversion identical
    try:
        dct = SERIALIZER.registry.convert(workflow)
        dct[SERIALIZER.VERSION_KEY] = SERIALIZER.VERSION
        return json.dumps(dct, cls=SERIALIZER._encoder_cls, ensure_ascii=False)
    finally:
        SERIALIZER.registry._encoder_mode = False


def load_instance(text: str, spec: Any, subprocess_specs: dict[str, Any]) -> SafeBpmnWorkflow:
    dct = json.loads(text)
    SERIALIZER.migrate(dct)
    return SERIALIZER.registry.restore(dct, spec=spec, subprocess_specs=subprocess_specs)


# --------------------------------------------------------------------------------------------- reading
def ready_user_tasks(workflow: Any) -> list[Any]:
    return workflow.get_tasks(state=TaskState.READY, manual=True)


@dataclass(frozen=True)
class TimerInfo:
    bpmn_id: str
    due: datetime
    workdays: int | None  # set for workdays(N) timers
    paused: bool


def armed_timers(workflow: Any) -> dict[str, TimerInfo]:
    """Armed (waiting) timer events: spiff task id → what the engine needs to project and move them."""
    result: dict[str, TimerInfo] = {}
    for task in workflow.event_manager.tasks.values():
        definition = getattr(task.task_spec, "event_definition", None)
        if not isinstance(definition, TimerEventDefinition) or not isinstance(task.task_spec, CatchingEvent):
            continue
        if task.state != TaskState.WAITING or task.workflow.tasks.get(task.id) is not task:
            continue
        value = task.internal_data.get("event_value")
        if value is None:
            continue
        if isinstance(value, dict):
            due = datetime.fromisoformat(value["next"])
        else:
            due = TimerEventDefinition.parse_time_or_duration(value)
            if not isinstance(due, datetime):
                continue
        result[str(task.id)] = TimerInfo(task.task_spec.bpmn_id, due.astimezone(timezone.utc),
                                         task.internal_data.get("workdays"), bool(task.internal_data.get("paused")))
    return result


def timer_tasks(workflow: Any, spiff_ids: Any) -> list[Any]:
    return [t for t in (find_task(workflow, i) for i in spiff_ids) if t is not None]


def set_timer_due(task: Any, due: datetime | None, paused: bool = False) -> None:
    """Move an armed timer (pause: far future, flagged; resume/extension: the new instant)."""
    when = PAUSED_VALUE if paused or due is None else due.astimezone(timezone.utc).isoformat()
    value = task.internal_data.get("event_value")
    if isinstance(value, dict):  # a cycle timer: move its next round
        value = dict(value, next=when)
    else:
        value = when
    task._set_internal_data(event_value=value, paused=paused)


def find_task(workflow: Any, spiff_task_id: str) -> Any | None:
    try:
        return workflow.get_task_from_id(UUID(spiff_task_id))
    except Exception:
        return None


def final_end_event(workflow: Any) -> tuple[str, str] | None:
    """(BPMN id, name) of the end event that finished the process: the last one completed (a warning
    branch's end event completes when its timer fires, long before the main path ends)."""
    ends = [t for t in workflow.tasks.values()
            if isinstance(t.task_spec, EndEvent) and t.state == TaskState.COMPLETED and t.task_spec.bpmn_id]
    if not ends:
        return None
    last = max(ends, key=lambda t: t.last_state_change)
    return last.task_spec.bpmn_id, last.task_spec.bpmn_name or last.task_spec.bpmn_id


def attached_timer_ids(task: Any) -> list[str]:
    """Spiff ids of the timer boundary events guarding a user task (siblings under its BoundaryEventSplit)."""
    parent = task.parent
    if parent is None or not parent.task_spec.name.endswith(".BoundaryEventSplit"):
        return []
    return [str(c.id) for c in parent.children
            if c is not task and isinstance(getattr(c.task_spec, "event_definition", None), TimerEventDefinition)]


class EndlessLoop(RuntimeError):
    """The process keeps running automatic steps without ever waiting (a loop with no user task)."""


def run_until_waiting(workflow: Any, max_steps: int = 5000) -> None:
    """`do_engine_steps` until nothing automatic is READY, with a budget of automatic steps.

    One `do_engine_steps` ends with `refresh_timers`, which can leave a just-fired timer READY but not
    run (SPIFFWORKFLOW.md §3); looping makes a step leave the workflow at a true wait state, so the
    projections never see a timer that fired but did not act. The budget turns a loop of gateways and
    scripts that never waits into an error instead of a hung request.
    """
    steps = 0

    def count(_task: Any) -> None:
        nonlocal steps
        steps += 1
        if steps > max_steps:
            raise EndlessLoop(f"the process ran {max_steps} automatic steps without reaching a user task "
                              "or a timer (a loop with no wait state?)")

    while True:
        workflow.do_engine_steps(did_complete_task=count)
        if not workflow.get_tasks(state=TaskState.READY, manual=False):
            return


def stalled_at(workflow: Any) -> list[str]:
    """If the workflow can never move on by itself or by a user (no ready user task, no armed timer, not
    finished), the BPMN ids it waits in — e.g. a message nothing sends, a service task nothing runs."""
    if workflow.is_completed() or ready_user_tasks(workflow) or armed_timers(workflow):
        return []
    waiting = workflow.get_tasks(state=TaskState.WAITING | TaskState.STARTED)
    return sorted({t.task_spec.bpmn_id or t.task_spec.name for t in waiting if t.task_spec.bpmn_id}) or ["?"]


def timer_fired(workflow: Any, spiff_task_id: str) -> bool:
    """Did the timer event with this id fire (COMPLETED), as opposed to being cancelled or removed?"""
    task = find_task(workflow, spiff_task_id)
    return task is not None and task.state == TaskState.COMPLETED
