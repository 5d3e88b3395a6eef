"""`Instance`: one case's running workflow as the case services see it — its ready steps, its armed timers,
completing a step, moving timers, a snapshot to save — so `engine/cases/` never touches SpiffWorkflow's
task objects, states or iterators (SPIFFWORKFLOW.md's traps stay in this package).
"""
from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from . import compaction, serializer
from . import workflow as wfl
from .workflow import SafeBpmnWorkflow, TaskState, TimerInfo


@dataclass(frozen=True, slots=True)
class Step:
    """A ready user task: what the projections record of it."""

    id: str  # SpiffWorkflow's task id, as the task row stores it
    bpmn_id: str
    name: str  # the BPMN name, or its id when the designer gave none
    lane: str | None
    guards: tuple[str, ...]  # ids of the timer boundary events guarding it (its deadline among them)


class StepNotReady(LookupError):
    """The step is not (or no longer) ready in the workflow: completed by a concurrent writer, cancelled."""


class Instance:
    """A thin handle over a `SafeBpmnWorkflow`; every method is one of the engine's moves or reads."""

    __slots__ = ("workflow",)

    def __init__(self, workflow: SafeBpmnWorkflow) -> None:
        self.workflow = workflow

    # ------------------------------------------------------------------ life cycle
    @classmethod
    def start(cls, spec: Any, subprocess_specs: dict[str, Any], data: Mapping[str, Any]) -> Instance:
        """A new instance with `data` (a deep copy per start task) in its start, not run yet."""
        workflow = wfl.new_workflow(spec, subprocess_specs)
        for task in workflow.get_tasks(state=TaskState.READY):
            task.data.update(copy.deepcopy(dict(data)))
        return cls(workflow)

    @classmethod
    def load(cls, text: str, spec: Any, subprocess_specs: dict[str, Any]) -> Instance:
        return cls(serializer.load_instance(text, spec, subprocess_specs))

    def dump(self) -> str:
        return serializer.dump_instance(self.workflow)

    def dump_closed(self) -> str:
        """What a closed case keeps (`serializer.compact_instance`)."""
        return serializer.dump_closed_instance(self.workflow)

    def keep_bounded(self) -> int:
        """Compact the task tree if loops grew it (before every save of an open case)."""
        return compaction.keep_bounded(self.workflow)

    # ------------------------------------------------------------------ moves
    def run(self, action: Callable[[], None] | None = None, max_steps: int = 5000) -> None:
        """Do `action` (if any), then run automatic steps until the process waits (`EndlessLoop` past the budget)."""
        if action is not None:
            action()
        wfl.run_until_waiting(self.workflow, max_steps=max_steps)

    def step_data(self, step_id: str) -> dict[str, Any]:
        """The data a ready step sees (what the form validation compares against)."""
        return self._ready_task(step_id).data

    def complete(self, step_id: str, data: Mapping[str, Any]) -> Callable[[], None]:
        """The action completing a ready step with `data`, to pass to `run`; StepNotReady now if it is not ready."""
        task = self._ready_task(step_id)

        def act() -> None:
            task.data.update(data)
            task.run()
        return act

    def fire_due_timers(self) -> None:
        """Let the workflow look at the clock: timers now due become ready (run them with `run`)."""
        self.workflow.refresh_timers()

    def cancel(self) -> None:
        self.workflow.cancel()

    def move_timers(self, moves: Mapping[str, datetime | None], *, paused: bool = False) -> None:
        """Move armed timers to new instants (None, or paused: held far in the future, flagged)."""
        for task in wfl.timer_tasks(self.workflow, moves):
            wfl.set_timer_due(task, moves[str(task.id)], paused=paused)

    # ------------------------------------------------------------------ reads
    def ready_steps(self) -> dict[str, Step]:
        return {str(t.id): Step(str(t.id), t.task_spec.bpmn_id, t.task_spec.bpmn_name or t.task_spec.bpmn_id,
                                t.task_spec.lane, tuple(wfl.attached_timer_ids(t)))
                for t in wfl.ready_user_tasks(self.workflow)}

    def armed_timers(self) -> dict[str, TimerInfo]:
        return wfl.armed_timers(self.workflow)

    def timer_fired(self, timer_id: str) -> bool:
        return wfl.timer_fired(self.workflow, timer_id)

    @property
    def finished(self) -> bool:
        """SpiffWorkflow thinks nothing is left to do — which a too-deep tree also looks like; see `reached_end`."""
        return bool(self.workflow.is_completed())

    def reached_end(self) -> bool:
        return wfl.reached_end(self.workflow)

    def why_not_ended(self) -> str:
        return wfl.unreached_end(self.workflow)

    def stalled_at(self) -> list[str]:
        return wfl.stalled_at(self.workflow)

    def final_end_event(self) -> tuple[str, str] | None:
        return wfl.final_end_event(self.workflow)

    def _ready_task(self, step_id: str) -> Any:
        task = wfl.find_task(self.workflow, step_id)
        if task is None or task.state != TaskState.READY:
            raise StepNotReady(step_id)
        return task
