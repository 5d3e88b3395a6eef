"""The workflow class and what the engine reads from and does to a running SpiffWorkflow.

`SafeBpmnWorkflow` can only ever evaluate through the restricted engine (SPIFFWORKFLOW.md §5: otherwise
SpiffWorkflow silently falls back to the unrestricted one, e.g. in a workflow the serializer rebuilt).
The functions below are the only places that walk SpiffWorkflow's task objects; the case services use
them through `instance.Instance`.
"""
from __future__ import annotations

import weakref
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from SpiffWorkflow import TaskState
from SpiffWorkflow.bpmn import BpmnWorkflow
from SpiffWorkflow.bpmn.specs.event_definitions.simple import TerminateEventDefinition
from SpiffWorkflow.bpmn.specs.event_definitions.timer import TimerEventDefinition
from SpiffWorkflow.bpmn.specs.mixins.events.end_event import EndEvent
from SpiffWorkflow.bpmn.specs.mixins.events.event_types import CatchingEvent
from SpiffWorkflow.bpmn.specs.mixins.events.intermediate_event import BoundaryEvent
from SpiffWorkflow.bpmn.specs.mixins.subworkflow_task import SubWorkflowTask

from .script_engine import RESTRICTED_ENGINE, RestrictedScriptEngine
from .timers import PAUSED_VALUE, spent_cycle


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



# --------------------------------------------------------------------------------------------- reading
def new_workflow(spec: Any, subprocess_specs: dict[str, Any]) -> SafeBpmnWorkflow:
    return SafeBpmnWorkflow(spec, subprocess_specs)


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
        if value is None or spent_cycle(value):  # a repeating timer past its last round has no due
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
    """(BPMN id, name) of the end event that finished the process: the last one completed on the main path,
    else the last one completed. An end event reached only through a non-interrupting boundary event is a
    side branch's (a warning, a 催办 step): its branch can finish before the main path (a warning timer's
    end completes when it fires) or after it (a reminder step still open when the main task completed),
    and either way the case's outcome is the main path's."""
    ends = [t for t in workflow.tasks.values()
            if isinstance(t.task_spec, EndEvent) and t.state == TaskState.COMPLETED and t.task_spec.bpmn_id]
    if not ends:
        return None
    side = side_end_events(workflow.spec)
    last = max(ends, key=lambda t: (t.task_spec.name not in side, t.last_state_change))
    return last.task_spec.bpmn_id, last.task_spec.bpmn_name or last.task_spec.bpmn_id


_SIDE_ENDS: weakref.WeakKeyDictionary[Any, frozenset[str]] = weakref.WeakKeyDictionary()


def side_end_events(spec: Any) -> frozenset[str]:
    """Names of the end event specs a process reaches only through a non-interrupting boundary event (once
    per spec): walked from the start without entering such an event."""
    found = _SIDE_ENDS.get(spec)
    if found is None:
        main, seen, stack = set(), set(), [spec.start]
        while stack:
            task_spec = stack.pop()
            if task_spec.name in seen:
                continue
            seen.add(task_spec.name)
            if isinstance(task_spec, BoundaryEvent) and not task_spec.cancel_activity:
                continue
            if isinstance(task_spec, EndEvent):
                main.add(task_spec.name)
            stack.extend(task_spec.outputs)
        found = _SIDE_ENDS[spec] = frozenset(name for name, ts in spec.task_specs.items()
                                             if isinstance(ts, EndEvent) and name not in main)
    return found


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
    """Did the timer event with this id fire (COMPLETED, or a repeating timer whose last round just fired),
    as opposed to being cancelled or removed?"""
    task = find_task(workflow, spiff_task_id)
    if task is None:
        return False
    return task.state == TaskState.COMPLETED or (task.state == TaskState.WAITING
                                                 and spent_cycle(task.internal_data.get("event_value")))



def flows(workflow: Any) -> list[Any]:
    return [workflow, *workflow.subprocesses.values()]



def tree_depth(workflow: Any) -> int:
    """The deepest task of any task tree of the case (for checks and benchmarks; it walks every task)."""
    deepest = 0
    for flow in flows(workflow):
        depth: dict[Any, int] = {}
        for task in flow.tasks.values():  # parents come before children in the dict, as the serializer needs
            depth[task.id] = depth.get(task._parent, -1) + 1
        deepest = max(deepest, max(depth.values(), default=0))
    return deepest


def reached_end(workflow: Any) -> bool:
    """Did the top-level process really finish through an end event?

    `is_completed()` only says that SpiffWorkflow's depth-limited iterator found no unfinished task, which
    is also what a too-deep tree looks like. A real end is the process's End task COMPLETED after its
    EndJoin, entered from a completed end event — or from a completed event subprocess, which SpiffWorkflow
    connects straight to the EndJoin, so the EndJoin is entered from it when it finishes last — (or a
    completed terminate end event), with no task of the case left in a definite unfinished state (checked
    over the task dicts, which have no depth limit).
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
                                          entry is not None and entry.state == TaskState.COMPLETED and
                                          (isinstance(entry.task_spec, EndEvent) or _event_subprocess(entry)))
        elif isinstance(spec, EndEvent) and isinstance(spec.event_definition, TerminateEventDefinition):
            through_end = True
    if not through_end:
        return False
    return not any(t.has_state(TaskState.DEFINITE_MASK) for flow in flows(workflow) for t in flow.tasks.values()
                   if flow is workflow or not flow.completed)


def _event_subprocess(task: Any) -> bool:
    """An event subprocess's task: a subworkflow SpiffWorkflow starts from the process's Start task
    (`BpmnStartTask.connect_or_add_trigger`), not from a sequence flow."""
    return isinstance(task.task_spec, SubWorkflowTask) and any(i.name == "Start" for i in task.task_spec.inputs)


def unreached_end(workflow: Any) -> str:
    """Why a workflow that stopped without reaching an end event cannot be closed (an incident's text)."""
    open_ids = sorted({t.task_spec.bpmn_id for flow in flows(workflow) for t in flow.tasks.values()
                       if t.has_state(TaskState.DEFINITE_MASK) and t.task_spec.bpmn_id})
    depth = tree_depth(workflow)
    hint = (f"; its task tree is {depth} levels deep, past what SpiffWorkflow can walk" if depth >= 900 else "")
    where = f" (still open: {', '.join(open_ids[:8])})" if open_ids else ""
    return (f"the process stopped without reaching an end event{where}{hint}; "
            "the case is not closed and needs an administrator")

