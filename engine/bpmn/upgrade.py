"""Moving a running case onto another version of its process (issue 11 §6) with SpiffWorkflow's own
mechanism, `SpiffWorkflow.bpmn.util.diff` (SpecDiff → WorkflowDiff → migrate_workflow), and the guards it
lacks. The case services use it through `Upgrade` (engine/cases/migration.py); nothing here writes rows.

What SpiffWorkflow 3.2.0 does, checked by running it (tests/test_case_migration.py reproduces each point):

- `SpecDiff` aligns the old version's task specs with the new one's by BPMN id (then, for ids it cannot
  find, by position in the graph); `migrate_workflow` points every task of the top-level workflow at its
  aligned new spec and resets every READY and WAITING branch (`Task.reset_branch`): those tasks keep their
  **ids** — so a case's task and timer rows stay valid — but lose their internal data, and what lies ahead
  of them is predicted again from the new spec.
- **A reset timer is re-armed from "now"** (SPIFFWORKFLOW.md §4: a 72 h deadline armed two days ago is due
  72 h after the migration). Here each armed timer gets back its own internal data (workdays count, cycle
  rounds left) and the due instant the caller stored (the timer row's `due_at`): deadlines keep their
  instants.
- It aligns nothing it cannot find and leaves subprocesses alone (`skip_subprocesses`). A waiting step whose
  id is gone, a step whose boundary events change (its BoundaryEventJoin looks for a split that is not its
  ancestor, or a new deadline would never be armed), a timer no longer attached to its step, a case inside a
  call activity whose called process differs: refused before anything moves, each with a `Blocker` saying
  why. Finished history that no live task reads is contracted away (`compaction.compact`), so a step the
  case passed long ago may be gone from the new version; history a live task still reads may not.
- The result is serialized and restored on the new spec (what the next step of the case will do) and must
  show the same ready steps and the same armed timers at the same instants, or the move is refused.
"""
from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from SpiffWorkflow import TaskState
from SpiffWorkflow.bpmn.specs.event_definitions.timer import TimerEventDefinition
from SpiffWorkflow.bpmn.specs.mixins.events.event_types import CatchingEvent
from SpiffWorkflow.bpmn.specs.mixins.events.intermediate_event import BoundaryEvent
from SpiffWorkflow.bpmn.specs.mixins.subworkflow_task import SubWorkflowTask
from SpiffWorkflow.bpmn.util.diff import SpecDiff, WorkflowDiff, migrate_workflow

from .. import clock
from . import compaction, serializer
from .instance import Instance
from .workflow import find_task, flows, set_timer_due

_SPLIT = ".BoundaryEventSplit"
_LIVE = TaskState.READY | TaskState.WAITING | TaskState.STARTED


@dataclass(frozen=True)
class Blocker:
    """Why a case cannot move: a stable `reason` (the pages translate it), the element it is about and
    an English `message` for the command line."""
    reason: str
    message: str
    params: dict[str, Any] = field(default_factory=dict)


class Blocked(Exception):
    """The move was refused (nothing of the case was changed): `blockers` say why."""

    def __init__(self, blockers: list[Blocker]) -> None:
        super().__init__("; ".join(b.message for b in blockers))
        self.blockers = blockers


def _kind(spec: Any) -> str:
    if getattr(spec, "manual", False):
        return "step"
    if isinstance(spec, CatchingEvent) and isinstance(getattr(spec, "event_definition", None), TimerEventDefinition):
        return "timer"
    if isinstance(spec, SubWorkflowTask):
        return "call"
    return "wait"


def _label(spec: Any) -> str:
    return spec.bpmn_name or spec.bpmn_id or spec.name


def _guards(spec: Any, task_specs: Mapping[str, Any]) -> set[str] | None:
    """The boundary events attached to a task spec (names), or None when it has none (no split)."""
    split = task_specs.get(spec.name + _SPLIT)
    if split is None or split not in spec.inputs:
        return None
    return {o.name for o in split.outputs if isinstance(o, BoundaryEvent)}


class Upgrade:
    """Moving instances from one process version's spec to another's. Built once per pair of versions (the
    spec comparison is what costs) and used for each case: `check` says what stops a case, `apply` moves it."""

    def __init__(self, old_spec: Any, old_subs: Mapping[str, Any], new_spec: Any, new_subs: Mapping[str, Any],
                 target: str) -> None:
        self.old_spec, self.new_spec = old_spec, new_spec
        self.new_subs = dict(new_subs)
        self.target = target  # "v3": how messages name the new version
        registry = serializer.SERIALIZER.registry
        self.diff = SpecDiff(registry, old_spec, new_spec)
        # called processes that are the same in both versions (a case inside one may move)
        self.same_subs = frozenset(name for name, sub in old_subs.items() if name in new_subs and (
            sub is new_subs[name] or registry.convert(sub) == registry.convert(new_subs[name])))

    # ------------------------------------------------------------------ what stops a case
    def check(self, instance: Instance) -> list[Blocker]:
        """Everything that keeps this case from moving, read from its live tasks (nothing is changed)."""
        workflow = instance.workflow
        found: list[Blocker] = []
        new = self.new_spec.task_specs
        for task in workflow.tasks.values():
            if not task.has_state(_LIVE):
                continue
            spec = task.task_spec
            kind, name = _kind(spec), spec.name
            if kind == "wait" and not isinstance(spec, CatchingEvent) and task.state == TaskState.WAITING \
                    and name in new:
                continue  # a join waiting for its other branches: predicted again from the new spec
            target = new.get(name)
            params = {"element": spec.bpmn_id or name, "name": _label(spec), "version": self.target}
            if target is None:
                found.append(Blocker(f"{kind}.missing", f"{kind} {_label(spec)} ({params['element']}) where the case "
                                     f"waits is not in {self.target}", params))
            elif _kind(target) != kind or type(target).__name__ != type(spec).__name__:
                found.append(Blocker(f"{kind}.changed", f"{kind} {_label(spec)} ({params['element']}) where the case "
                                     f"waits is a different kind of element in {self.target}", params))
            elif kind == "step":
                old_guards, new_guards = _guards(spec, self.old_spec.task_specs), _guards(target, new)
                if old_guards != new_guards:
                    added = sorted((new_guards or set()) - (old_guards or set()))
                    removed = sorted((old_guards or set()) - (new_guards or set()))
                    found.append(Blocker("step.boundary_changed", f"the boundary events of step {_label(spec)} "
                                         f"({params['element']}) change in {self.target} (added: "
                                         f"{', '.join(added) or '-'}; removed: {', '.join(removed) or '-'})",
                                         dict(params, added=", ".join(added), removed=", ".join(removed))))
            elif kind == "timer" and isinstance(spec, BoundaryEvent):
                parent = task.parent
                if parent is None or parent.task_spec.name not in {i.name for i in target.inputs}:
                    step = parent.task_spec.name.removesuffix(_SPLIT) if parent is not None else "?"
                    found.append(Blocker("timer.missing", f"timer {_label(spec)} ({params['element']}) no longer "
                                         f"guards step {step} in {self.target}", dict(params, step=step)))
            elif kind == "call" and task.state == TaskState.STARTED:
                called = getattr(spec, "spec", None)
                if getattr(target, "spec", None) != called or called not in self.same_subs:
                    found.append(Blocker("call.changed", f"the case is inside call activity {_label(spec)} "
                                         f"({params['element']}), whose called process {called} differs in "
                                         f"{self.target}", dict(params, process=called)))
        return found

    # ------------------------------------------------------------------ the move
    def apply(self, instance: Instance, dues: Mapping[str, datetime], now: datetime) -> Instance:
        """The case's workflow on the new spec — a new `Instance`, restored from its serialized form as the
        next step will restore it — with every armed timer due at `dues[timer id]` (its stored instant), or
        `Blocked`. `instance` itself is left in an undefined state: the caller drops it."""
        blockers = self.check(instance)
        if blockers:
            raise Blocked(blockers)
        workflow = instance.workflow
        ready_before = {tid: step.bpmn_id for tid, step in instance.ready_steps().items()}
        timers_before = instance.armed_timers()
        kept = {}
        for tid in timers_before:
            task = find_task(workflow, tid)
            if task is not None:
                kept[tid] = copy.deepcopy(task.internal_data)
        with clock.using(clock.ManualClock(now)):
            migrate_workflow(WorkflowDiff(workflow, self.diff), workflow, self.new_spec)
        workflow.subprocess_specs = self.new_subs
        for tid, internal in kept.items():  # SpiffWorkflow re-armed them from now: their own values back
            task = find_task(workflow, tid)
            if task is None or task.state != TaskState.WAITING:
                raise Blocked([Blocker("timer.lost", f"timer {timers_before[tid].bpmn_id} would be lost",
                                       {"element": timers_before[tid].bpmn_id, "version": self.target})])
            task.internal_data = internal
            due = dues.get(tid)
            if due is not None:
                set_timer_due(task, due)
        if self._stale(workflow):  # steps the case passed may be gone in the new version: the history no live
            if workflow.last_task is not None and \
                    workflow.last_task.task_spec.name not in self.new_spec.task_specs:  # task reads goes
                workflow.last_task = None
            compaction.compact(workflow)
        stale = self._repair(workflow)
        if stale:
            raise Blocked(stale)
        try:
            moved = Instance.load(serializer.dump_instance(workflow), self.new_spec, self.new_subs)
        except Exception as exc:  # the new spec cannot restore it: refused, named
            raise Blocked([Blocker("flow.unreadable", f"the case could not be restored on {self.target}: "
                                   f"{type(exc).__name__}: {str(exc)[:200]}", {"version": self.target})]) from exc
        return self._verified(moved, ready_before, timers_before, dues)

    def _names(self, workflow: Any, flow: Any) -> Mapping[str, Any]:
        """The task specs a flow of the moved case must find its tasks' specs among."""
        specs = self.new_spec if flow is workflow else self.new_subs.get(flow.spec.name)
        return specs.task_specs if specs is not None else {}

    def _stale(self, workflow: Any) -> bool:
        return any(t.task_spec.name not in self._names(workflow, flow)
                   for flow in flows(workflow) for t in flow.tasks.values())

    def _repair(self, workflow: Any) -> list[Blocker]:
        """Tasks still pointing at a spec the new version lacks: predicted tasks ahead of a running call
        activity are predicted again from the new spec; cancelled or predicted leftovers under finished tasks
        are dropped; anything else (a finished step a live task still reads) stops the move."""
        found: list[Blocker] = []
        for flow in flows(workflow):
            names = self._names(workflow, flow)
            for _round in range(3):  # a repair can expose nothing new; a second pass confirms
                stale = [t for t in flow.tasks.values() if t.task_spec.name not in names]
                if not stale:
                    break
                changed = False
                for task in stale:
                    if task.id not in flow.tasks:
                        continue
                    parent = task.parent
                    subtree = list(task)
                    if parent is not None and parent.has_state(TaskState.STARTED) and flow is workflow \
                            and parent.task_spec.name in names and \
                            all(t.has_state(TaskState.PREDICTED_MASK | TaskState.FUTURE) for t in subtree):
                        parent._drop_children(force=True)
                        parent.task_spec._predict(parent, mask=TaskState.NOT_FINISHED_MASK)
                        changed = True
                    elif parent is not None and parent.has_state(TaskState.FINISHED_MASK) and all(
                            t.has_state(TaskState.PREDICTED_MASK | TaskState.CANCELLED) for t in subtree):
                        flow._remove_task(task.id)
                        workflow.event_manager.remove_task(task)
                        changed = True
                if not changed:
                    break
            for task in flow.tasks.values():
                if task.task_spec.name not in names:
                    spec = task.task_spec
                    found.append(Blocker("history.missing", f"{_label(spec)} ({spec.bpmn_id or spec.name}), which "
                                         f"the case still needs, is not in {self.target}",
                                         {"element": spec.bpmn_id or spec.name, "name": _label(spec),
                                          "version": self.target}))
                    break
        return found

    def _verified(self, moved: Instance, ready_before: Mapping[str, str], timers_before: Mapping[str, Any],
                  dues: Mapping[str, datetime]) -> Instance:
        """The moved case must wait where it waited, on the timers it had, due when they were due."""
        ready = {tid: step.bpmn_id for tid, step in moved.ready_steps().items()}
        timers = moved.armed_timers()
        problems = []
        if ready != dict(ready_before):
            problems.append(f"its open steps would change ({', '.join(sorted(ready_before.values())) or '-'} → "
                            f"{', '.join(sorted(ready.values())) or '-'})")
        if set(timers) != set(timers_before) or any(timers[t].bpmn_id != timers_before[t].bpmn_id for t in timers):
            old = ", ".join(sorted(i.bpmn_id for i in timers_before.values())) or "-"
            new = ", ".join(sorted(i.bpmn_id for i in timers.values())) or "-"
            problems.append(f"its armed timers would change ({old} → {new})")
        else:
            moved_dues = [t for t in timers if timers[t].due != dues.get(t, timers_before[t].due)]
            if moved_dues:
                problems.append(f"the due instant of {', '.join(timers[t].bpmn_id for t in moved_dues)} would move")
        if moved.finished or moved.stalled_at():
            problems.append("it would stop where nothing can move it on")
        if problems:
            raise Blocked([Blocker("flow.differs", f"on {self.target} " + "; ".join(problems),
                                   {"version": self.target, "detail": "; ".join(problems)})])
        return moved
