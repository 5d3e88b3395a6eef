"""SpiffWorkflow glue: the parser, timers on the engine clock, the safe workflow class and the serializer.

Everything that touches SpiffWorkflow's object model lives here (and in `bpmn.py` for parsing), so the
rest of the engine deals in plain values. Three fixes of SPIFFWORKFLOW.md are applied here:

* the restricted script engine is forced on every workflow, including one rebuilt by the serializer
  (SpiffWorkflow otherwise silently falls back to the unrestricted engine, §5);
* timers read the engine clock instead of ``datetime.now`` and accept bare ISO 8601 text (§3);
* instances are serialized without their spec, which is stored once per process version (§4).
"""
from __future__ import annotations

import ast
import json
import re
import weakref
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from SpiffWorkflow import TaskState
from SpiffWorkflow.bpmn import BpmnWorkflow
from SpiffWorkflow.bpmn.parser.util import full_tag
from SpiffWorkflow.bpmn.serializer.default.event_definition import TimerConditionalEventDefinitionConverter
from SpiffWorkflow.bpmn.serializer.default.workflow import BpmnWorkflowConverter, WorkflowConverter
from SpiffWorkflow.bpmn.serializer.workflow import BpmnWorkflowSerializer
from SpiffWorkflow.bpmn.specs.event_definitions.base import EventDefinition
from SpiffWorkflow.bpmn.specs.event_definitions.simple import TerminateEventDefinition
from SpiffWorkflow.bpmn.specs.event_definitions.timer import (
    CycleTimerEventDefinition,
    DurationTimerEventDefinition,
    TimeDateEventDefinition,
    TimerEventDefinition,
)
from SpiffWorkflow.bpmn.specs.mixins.events.end_event import EndEvent
from SpiffWorkflow.bpmn.specs.mixins.events.event_types import CatchingEvent
from SpiffWorkflow.bpmn.specs.mixins.events.intermediate_event import BoundaryEvent
from SpiffWorkflow.bpmn.specs.mixins.inclusive_gateway import InclusiveGateway
from SpiffWorkflow.bpmn.specs.mixins.multiinstance_task import LoopTask
from SpiffWorkflow.bpmn.specs.mixins.parallel_gateway import ParallelGateway
from SpiffWorkflow.spiff.parser.event_parsers import (
    SpiffBoundaryEventParser,
    SpiffIntermediateCatchEventParser,
    SpiffStartEventParser,
)
from SpiffWorkflow.spiff.parser.process import SpiffBpmnParser
from SpiffWorkflow.spiff.serializer.config import SPIFF_CONFIG

from . import clock
from .expressions import RESTRICTED_ENGINE, RestrictedScriptEngine, is_iso_literal
from .workdays import default_calendar

__all__ = ["YicunParser", "SafeBpmnWorkflow", "SERIALIZER", "dump_instance", "load_instance",
           "spec_to_json", "spec_from_json", "ready_user_tasks", "armed_timers", "TaskState"]


# --------------------------------------------------------------------------------------------- timers
#: No timer may be due further ahead than this (a typo such as P99999999999999D overflows datetime, and
#: SpiffWorkflow adds a year's months one by one, so P99999999999Y would spin for hours).
MAX_TIMER_HORIZON = timedelta(days=3653)
#: The shortest interval of a timeCycle timer that repeats without a count (R/…): a sweep fires every
#: missed round at once. A counted cycle (R3/…) needs an interval above zero.
MIN_CYCLE_INTERVAL = timedelta(minutes=1)
_APPROX_DAYS = {"years": 366, "months": 31, "weeks": 7, "days": 1, "hours": 1 / 24, "minutes": 1 / 1440,
                "seconds": 1 / 86400}


class TimerValueError(ValueError):
    """A timer's value cannot be armed: not ISO 8601, or out of range. A ValueError, so the engine turns
    it into a WorkflowError naming the step instead of a traceback."""

    #: the timer's BPMN id, once known (see _armed; incidents blame that element)
    element_id: str | None = None


def _timer_text(my_task: Any, expression: str) -> str:
    """Bare ISO 8601 (as Camunda Modeler writes it) is taken literally; anything else is an expression."""
    if is_iso_literal(expression):
        return expression.strip()
    value = my_task.workflow.script_engine.evaluate(my_task, expression)
    if not isinstance(value, str):
        raise TimerValueError(f"timer {my_task.task_spec.bpmn_id}: {expression!r} gave {str(value)[:60]!r}, "
                              "not an ISO 8601 text or workdays(N)")
    return value


def timer_delta(text: str, start: datetime) -> timedelta:
    """An ISO 8601 duration from `start`, as SpiffWorkflow computes it (calendar months), or
    TimerValueError — checked against MAX_TIMER_HORIZON before SpiffWorkflow's month loop runs."""
    try:
        if len(text) < 3 or text[0] not in "Pp":
            raise ValueError(text)
        parsed = TimerEventDefinition.parse_iso_duration(text)
    except Exception:  # SpiffWorkflow raises a bare Exception('Invalid duration'); int() a ValueError
        raise TimerValueError(f"{text[:60]!r} is not an ISO 8601 duration") from None
    if sum(float(value) * _APPROX_DAYS.get(unit, 0) for unit, value in parsed.items()) > MAX_TIMER_HORIZON.days + 31:
        raise TimerValueError(f"duration {text[:60]!r} is longer than {MAX_TIMER_HORIZON.days} days")
    try:
        delta = TimerEventDefinition.get_timedelta_from_start(parsed, start)
        start + delta
    except (OverflowError, ValueError):
        raise TimerValueError(f"duration {text[:60]!r} is out of range") from None
    if delta > MAX_TIMER_HORIZON:
        raise TimerValueError(f"duration {text[:60]!r} is longer than {MAX_TIMER_HORIZON.days} days")
    return delta


def timer_instant(text: str, now: datetime) -> datetime:
    """An ISO 8601 date-time (timeDate) or TimerValueError; no further ahead than MAX_TIMER_HORIZON."""
    try:
        due = TimerEventDefinition.parse_time_or_duration(text)
    except Exception:
        raise TimerValueError(f"{text[:60]!r} is not an ISO 8601 date-time") from None
    if not isinstance(due, datetime):
        raise TimerValueError(f"{text[:60]!r} is a duration; a timeDate needs a date-time")
    if due - now > MAX_TIMER_HORIZON:
        raise TimerValueError(f"{text[:60]!r} is more than {MAX_TIMER_HORIZON.days} days ahead")
    return due


def _armed(my_task: Any, compute: Any) -> Any:
    """Run a timer's arming computation; a bad value names the timer."""
    try:
        return compute()
    except TimerValueError as exc:
        named = TimerValueError(f"timer {my_task.task_spec.bpmn_id}: {exc}")
        named.element_id = my_task.task_spec.bpmn_id
        raise named from None


class ClockTimeDateEventDefinition(TimeDateEventDefinition):
    def has_fired(self, my_task: Any) -> bool:
        event_value = my_task._get_internal_data("event_value")
        if event_value is None:
            event_value = _timer_text(my_task, self.expression)
            _armed(my_task, lambda: timer_instant(event_value, clock.now()))
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
                event_value = due.end_instant.astimezone(UTC).isoformat()
                my_task._set_internal_data(workdays=int(marker.group(1)), estimated=due.estimated)
            else:
                event_value = (start + _armed(my_task, lambda: timer_delta(text, start))).isoformat()
            my_task._set_internal_data(event_value=event_value)
        if TimerEventDefinition.get_datetime(event_value) <= clock.now():
            my_task._set_internal_data(event_fired=True)
        return my_task._get_internal_data("event_fired", False)


class ClockCycleTimerEventDefinition(CycleTimerEventDefinition):
    def cycle_complete(self, my_task: Any) -> bool:
        event_value = my_task._get_internal_data("event_value")
        if event_value is None:
            text = _timer_text(my_task, self.expression)
            cycles, start, duration = _armed(my_task, lambda: _parse_cycle(text))
            event_value = {"cycles": cycles, "next": start.isoformat(), "duration": duration.total_seconds()}
        ready = False
        if event_value["cycles"] != 0:
            next_event = datetime.fromisoformat(event_value["next"])
            now = clock.now()
            if next_event <= now:
                # Fire once, and let the rounds whose time passed while nothing swept (server down, a case
                # parked by an incident, a start date in the past) go: firing each of them in one step
                # would never end for a long backlog (SpiffWorkflow's own loop fires one per call).
                interval = timedelta(seconds=event_value["duration"])
                passed = (now - next_event) // interval + 1
                event_value["next"] = (next_event + passed * interval).isoformat()
                if event_value["cycles"] > 0:
                    event_value["cycles"] = max(0, event_value["cycles"] - passed)
                ready = True
        else:
            my_task.internal_data.pop("event_value", None)
            my_task.internal_data["event_fired"] = True
        my_task._set_internal_data(event_value=event_value)
        return ready


def _parse_cycle(text: str) -> tuple[int, datetime, timedelta]:
    """Spiff's recurring-interval parser, but a duration-only cycle starts from the engine clock; every
    part is range-checked first (TimerValueError), and the interval must be at least MIN_CYCLE_INTERVAL."""
    components = text.upper().replace("--", "/").strip("R").split("/")
    now = clock.now()
    if len(components) not in (2, 3) or not components[0].isdigit() and components[0]:
        raise TimerValueError(f"{text[:60]!r} is not an ISO 8601 repeating interval (R3/PT1H)")
    for part in components[1:]:  # SpiffWorkflow's month loop must never see an unchecked duration
        if part.startswith("P"):
            timer_delta(part, now)
        else:
            timer_instant(part, now)
    if len(components) == 2 and components[1].startswith("P"):
        cycles = int(components[0]) if components[0] else -1
        duration = timer_delta(components[1], now)
        start = now + duration
    else:
        try:
            cycles, start, duration = TimerEventDefinition.parse_iso_recurring_interval(text)
        except Exception:
            raise TimerValueError(f"{text[:60]!r} is not an ISO 8601 repeating interval (R3/PT1H)") from None
    if duration < MIN_CYCLE_INTERVAL:
        raise TimerValueError(f"a repeating timer needs an interval of at least {MIN_CYCLE_INTERVAL}, not {duration}")
    return cycles, start, duration


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

    @property
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
    workflow = SERIALIZER.registry.restore(dct, spec=spec, subprocess_specs=subprocess_specs)
    keep_bounded(workflow, tokens=False)  # a case saved too deep (before compaction existed) can move again
    return workflow


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
        result[str(task.id)] = TimerInfo(task.task_spec.bpmn_id, due.astimezone(UTC),
                                         task.internal_data.get("workdays"), bool(task.internal_data.get("paused")))
    return result


def timer_tasks(workflow: Any, spiff_ids: Any) -> list[Any]:
    return [t for t in (find_task(workflow, i) for i in spiff_ids) if t is not None]


def set_timer_due(task: Any, due: datetime | None, paused: bool = False) -> None:
    """Move an armed timer (pause: far future, flagged; resume/extension: the new instant)."""
    when = PAUSED_VALUE if paused or due is None else due.astimezone(UTC).isoformat()
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


# --------------------------------------------------------------------------------------------- long-running loops
# SpiffWorkflow 3.2 keeps every task a case ever ran in one tree, and a loop makes it one level deeper each
# round. Past a depth of 1000 its `TaskIterator` (util/task.py, max_depth=1000) silently stops descending,
# so `is_completed()`, `get_tasks()`, the EndJoin and the waiting-task refresh no longer see the live
# tasks below; and `Task.is_descendant_of` / `find_ancestor` recurse once per level, so the joins behind
# every boundary event raise RecursionError from a depth of about 980. Compaction keeps the tree small by
# contracting it onto the tasks something can still read; see `compact` for what that is and why.

#: A case is compacted at a save once its workflows hold more tasks than twice its specs' task count (a run
#: without loops creates about one task per spec) and at least COMPACT_MIN_TASKS; never later than
#: COMPACT_MAX_TASKS, well below the depth (~980) where SpiffWorkflow's recursion and iterator give out.
COMPACT_MIN_TASKS = 64
COMPACT_MAX_TASKS = 500


@dataclass(frozen=True)
class _SpecPlan:
    looped_joins: frozenset[str]  # parallel/inclusive gateways on a cycle: their spent tokens must go


_PLANS: weakref.WeakKeyDictionary[Any, _SpecPlan] = weakref.WeakKeyDictionary()


def _plan(spec: Any) -> _SpecPlan:
    plan = _PLANS.get(spec)
    if plan is None:
        joins = {name for name, ts in spec.task_specs.items()
                 if isinstance(ts, (ParallelGateway, InclusiveGateway)) and _on_cycle(ts)}
        plan = _PLANS[spec] = _SpecPlan(frozenset(joins))
    return plan


def _on_cycle(task_spec: Any) -> bool:
    """Can the spec graph lead from this task spec back to itself?"""
    seen, stack = set(), list(task_spec.outputs)
    while stack:
        ts = stack.pop()
        if ts is task_spec:
            return True
        if id(ts) not in seen:
            seen.add(id(ts))
            stack.extend(ts.outputs)
    return False


def _flows(workflow: Any) -> list[Any]:
    return [workflow, *workflow.subprocesses.values()]


_LIMITS: weakref.WeakKeyDictionary[Any, int] = weakref.WeakKeyDictionary()


def _case_limit(workflow: Any) -> int:
    """The task count (over the process and all its subprocesses) above which a case is compacted:
    finished subprocesses stay in `workflow.subprocesses` until their task leaves the tree, so a loop
    around a subprocess grows the case even while each tree is small."""
    limit = _LIMITS.get(workflow.spec)
    if limit is None:
        specs = len(workflow.spec.task_specs) + sum(len(s.task_specs) for s in workflow.subprocess_specs.values())
        limit = _LIMITS[workflow.spec] = max(COMPACT_MIN_TASKS, min(COMPACT_MAX_TASKS, 2 * specs))
    return limit


def needs_compaction(workflow: Any, tokens: bool = True) -> bool:
    """Cheap test (no tree walk): does the case hold more tasks than its limit, or (with `tokens`) does
    the process loop through a parallel/inclusive join, whose spent tokens SpiffWorkflow would count
    again? A loop-free run stays under the limit, so it is never compacted."""
    total = 0
    for flow in _flows(workflow):
        if tokens and _plan(flow.spec).looped_joins:
            return True
        total += len(flow.tasks)
    return total > _case_limit(workflow)


def keep_bounded(workflow: Any, tokens: bool = True) -> int:
    """Compact the case's task trees when `needs_compaction` says so; returns how many tasks went. Called
    where an open case's instance is saved, so a normal step pays one `len()` per (sub)workflow; and on
    load for size only (`tokens=False`), which also repairs a case saved too deep by an older version."""
    return compact(workflow) if needs_compaction(workflow, tokens) else 0


def compact(workflow: Any) -> int:
    """Contract every task tree of the case onto the tasks something can still read; returns how many
    tasks were removed. Live tasks keep their ids, data, parents and children, so the `tasks` and `timers`
    rows, the event manager and everything SpiffWorkflow does next see the same workflow.

    Kept (each kept task's new parent is its nearest kept ancestor; children keep their depth-first order):
    * the root (the serializer stores its data in full; every other task is a delta from its parent);
    * every unfinished task (predicted, waiting, ready, started) and every errored one, and the parent of
      each: a task copies its parent's data when it becomes ready (`Task._inherit_data`), a ready user
      task's parent is the BoundaryEventSplit its deadline timers are read from (`attached_timer_ids`),
      and parallel/inclusive joins look at the parent of each of their instances;
    * for a live structured join (a BoundaryEventJoin: `split_task` set), the split it finds with
      `find_ancestor` and all the split's children (it reads main task and boundary events from them);
      WAITING duplicates of that join hanging under a non-interrupting boundary event (a repeating timer
      adds one per round) are dropped when another live instance remains: any one of them does the join;
    * all children of a live loop or multi-instance activity (it merges them as they finish);
    * for a parallel/inclusive gateway on a cycle, the finished instances (tokens) of the round in
      progress and their parents, i.e. those whose nearest COMPLETED ancestor instance of that gateway
      is also a live task's; older tokens were spent when the gateway fired, and SpiffWorkflow 3.2's
      `ParallelGateway._check_threshold_unstructured` would count them again (it fires a round early);
    * the latest completed end event, and the End task with its EndJoin and end event (`final_end_event`,
      `reached_end`), and `last_task`.
    Everything else is finished history (the audit and the projections hold what people see); finished
    subprocesses under removed tasks go with them.
    """
    removed = 0
    for flow in _flows(workflow):
        if flow is workflow or flow.parent_task_id in workflow.subprocesses:
            removed += _contract(workflow, flow)
    return removed


def _contract(top: Any, flow: Any) -> int:
    tasks, root = flow.tasks, flow.task_tree
    looped = _plan(flow.spec).looped_joins
    order: list[Any] = []
    near: dict[Any, dict[str, Any]] = {}  # task id → looped join name → nearest COMPLETED ancestor instance
    stack: list[tuple[Any, dict[str, Any]]] = [(root, {})]
    while stack:
        task, above = stack.pop()
        order.append(task)
        near[task.id] = above
        if task.task_spec.name in looped and task.state == TaskState.COMPLETED:
            above = dict(above, **{task.task_spec.name: task.id})
        stack.extend((tasks[c], above) for c in reversed(task._children))
    keep = {root.id}

    def keep_with_parent(task: Any) -> None:
        keep.add(task.id)
        if task._parent is not None:
            keep.add(task._parent)

    live = [t for t in order if not t.has_state(TaskState.FINISHED_MASK) and not _redundant_join(t)]
    for task in live:
        keep_with_parent(task)
        split_name = getattr(task.task_spec, "split_task", None)
        if split_name:
            split = _ancestor(task, split_name)  # the grandparent, for a BoundaryEventJoin
            if split is not None:
                keep.add(split.id)
                keep.update(split._children)
        if isinstance(task.task_spec, LoopTask):
            keep.update(task._children)
    spans = {(name, near[t.id].get(name)) for t in live for name in looped}
    ends = []
    for task in order:
        name = task.task_spec.name
        if task.has_state(TaskState.ERROR):
            keep.add(task.id)
        elif name in looped and (name, near[task.id].get(name)) in spans:
            keep_with_parent(task)
        elif isinstance(task.task_spec, EndEvent) and task.state == TaskState.COMPLETED:
            ends.append(task)
        elif name == "End" and task.state == TaskState.COMPLETED:
            keep_with_parent(task)
            keep_with_parent(task.parent)
    if ends:
        keep.add(max(ends, key=lambda t: t.last_state_change).id)
    if flow.last_task is not None:
        keep.add(flow.last_task.id)
    if len(keep) == len(order):
        return 0
    return _rebuild(top, flow, root, keep)


def _ancestor(task: Any, spec_name: str) -> Any | None:
    """`Task.find_ancestor` without its recursion (which fails on the very trees being repaired)."""
    current = task.parent
    while current is not None and current.task_spec.name != spec_name:
        current = current.parent
    return current


def _redundant_join(task: Any) -> bool:
    """A WAITING BoundaryEventJoin under a non-interrupting boundary event while the main task is still
    open: the main task's own instance does the join (and cancels these), so it adds nothing."""
    if task.state != TaskState.WAITING or not getattr(task.task_spec, "split_task", None):
        return False
    event = task.parent
    if event is None or getattr(event.task_spec, "cancel_activity", True) is not False:
        return False
    split = event.parent
    return split is not None and any(not isinstance(c.task_spec, BoundaryEvent)
                                     and not c.has_state(TaskState.FINISHED_MASK) for c in split.children)


def _rebuild(top: Any, flow: Any, root: Any, keep: set[Any]) -> int:
    """Re-link kept tasks to their nearest kept ancestor (depth-first order preserved), drop the rest."""
    tasks = flow.tasks
    children: dict[Any, list[Any]] = {tid: [] for tid in keep}
    gone: list[Any] = []
    stack = [(root, None)]
    while stack:
        task, up = stack.pop()
        if task.id in keep:
            if up is not None:
                children[up].append(task.id)
            up = task.id
        else:
            gone.append(task)
        stack.extend((tasks[c], up) for c in reversed(task._children))
    for tid, kids in children.items():
        tasks[tid]._children = kids
        for kid in kids:
            tasks[kid]._parent = tid
    for task in gone:
        del tasks[task.id]
        top.event_manager.remove_task(task)
        _drop_subprocess(top, task.id)
    return len(gone)


def _drop_subprocess(top: Any, task_id: Any) -> None:
    sub = top.subprocesses.pop(task_id, None)
    if sub is not None:
        for tid in list(sub.tasks):
            top.event_manager.tasks.pop(tid, None)
            _drop_subprocess(top, tid)


def tree_depth(workflow: Any) -> int:
    """The deepest task of any task tree of the case (for checks and benchmarks; it walks every task)."""
    deepest = 0
    for flow in _flows(workflow):
        depth: dict[Any, int] = {}
        for task in flow.tasks.values():  # parents come before children in the dict, as the serializer needs
            depth[task.id] = depth.get(task._parent, -1) + 1
        deepest = max(deepest, max(depth.values(), default=0))
    return deepest


def reached_end(workflow: Any) -> bool:
    """Did the top-level process really finish through an end event?

    `is_completed()` only says that SpiffWorkflow's depth-limited iterator found no unfinished task, which
    is also what a too-deep tree looks like. A real end is the process's End task COMPLETED after its
    EndJoin, entered from a completed end event (or a completed terminate end event), with no task of
    the case left in a definite unfinished state (checked over the task dicts, which have no depth limit).
    """
    through_end = False
    for task in workflow.tasks.values():
        if task.state != TaskState.COMPLETED:
            continue
        spec = task.task_spec
        if spec.name == "End":
            join = task.parent
            entry = join.parent if join is not None else None
            through_end = through_end or (join is not None and join.state == TaskState.COMPLETED and
                                          entry is not None and isinstance(entry.task_spec, EndEvent) and
                                          entry.state == TaskState.COMPLETED)
        elif isinstance(spec, EndEvent) and isinstance(spec.event_definition, TerminateEventDefinition):
            through_end = True
    if not through_end:
        return False
    return not any(t.has_state(TaskState.DEFINITE_MASK) for flow in _flows(workflow) for t in flow.tasks.values()
                   if flow is workflow or not flow.completed)


def unreached_end(workflow: Any) -> str:
    """Why a workflow that stopped without reaching an end event cannot be closed (an incident's text)."""
    open_ids = sorted({t.task_spec.bpmn_id for flow in _flows(workflow) for t in flow.tasks.values()
                       if t.has_state(TaskState.DEFINITE_MASK) and t.task_spec.bpmn_id})
    depth = tree_depth(workflow)
    hint = (f"; its task tree is {depth} levels deep, past what SpiffWorkflow can walk" if depth >= 900 else "")
    where = f" (still open: {', '.join(open_ids[:8])})" if open_ids else ""
    return (f"the process stopped without reaching an end event{where}{hint}; "
            "the case is not closed and needs an administrator")


# --------------------------------------------------------------------------------------------- closed cases
def compact_instance(dct: dict[str, Any], original_bytes: int | None = None) -> dict[str, Any]:
    """The serialized form of a finished workflow reduced to what a closed case still needs.

    A closed case is never restored to run again (every service refuses a closed case first), and what
    its pages, audit and reports show lives in projections (task, timer, pause, card and audit rows;
    the case row's status, outcome and dues). So the task tree goes — it grows with every step and is
    most of the database — and what stays is the final process data, how it ended (success/completed)
    and the root task, which keeps the document loadable: restored, it is a finished workflow with no
    ready task and no armed timer, so a caller that restores it by mistake can move nothing.
    `compacted` records what was dropped (task count, bytes) and marks the document as compact.
    """
    root_id = dct["root"]
    root = dict(dct["tasks"][root_id], children=[])
    small = {key: dct[key] for key in ("data", "success", "typename", SERIALIZER.VERSION_KEY) if key in dct}
    small.update(correlations={}, last_task=None, completed=True, tasks={root_id: root}, root=root_id,
                 subprocesses={}, bpmn_events=[], compacted={"tasks": len(dct["tasks"]), "bytes": original_bytes})
    return small


def dump_closed_instance(workflow: SafeBpmnWorkflow) -> str:
    """The instance JSON stored when a case closes: `compact_instance` of the finished workflow."""
    full = dump_instance(workflow)
    return json.dumps(compact_instance(json.loads(full), len(full.encode())), ensure_ascii=False)
