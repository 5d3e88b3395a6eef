"""Non-interrupting boundary events whose branches SpiffWorkflow 3.2 drops, and the spec transformation
that keeps them (issue 11 §4).

Checked on SpiffWorkflow 3.2.0 (tests/test_cycle_timers.py reproduces each point):

- **Structure.** A task with boundary events is parsed into `<id>.BoundaryEventSplit` → [the task, each
  boundary event] → `<id>.BoundaryEventJoin` (`bpmn/parser/TaskParser.py` `_add_boundary_event`). The join
  is a structured `Join(cancel=True)`: `BoundaryEventJoin._check_threshold_structured` (`bpmn/specs/
  control.py`) fires once the guarded task finished (or an interrupting event fired) and hands back every
  boundary event still WAITING, which `Join._update_hook` cancels with `Task.cancel()`.
- **A repeating timer keeps waiting.** A non-interrupting `timeCycle` timer (`R2/PT1H`) stays WAITING
  between rounds, and each round `CycleTimerEventDefinition.update_task` adds the event's outputs — the
  branch's first task and a copy of the join — as **children of the waiting timer task**
  (`bpmn/specs/event_definitions/timer.py`).
- **BUG: cancelling it drops what it spawned.** `Task.cancel()` on a WAITING task sets CANCELLED and calls
  `_drop_children()` (`task.py`), which removes every unfinished descendant from the tree. So the user
  task a round opened (a 催办 step) vanishes when the guarded task completes, the process EndJoin no
  longer waits for it and the case closes as completed: silently wrong. Reproduced: `R2/PT1H`, at +2 h two
  branch user tasks are ready; completing the guarded task leaves no ready task and `is_completed()`.
- **Not affected:** every other non-interrupting event — a duration or date timer, a message, a signal —
  fires once, becomes COMPLETED and its branch hangs under a finished task, which `cancel()` leaves
  alone: a user task on such a branch stays ready and the case waits for it (checked, same tests).
  A repeating timer whose branch only runs scripts finishes each round at once: nothing to drop.

**The workaround** (`keep_spawned_branches`, applied by `parser.YicunParser.get_spec` to every spec it
parses, so at compile time): the join of a task guarded by a non-interrupting `timeCycle` timer becomes a
`KeepBranchesJoin`. When it fires, a repeating timer that still has live work below it (anything
unfinished but the waiting join copies, EndJoins and gateway tokens it spawned) is **retired** instead of
cancelled: taken out of the event manager and set CANCELLED *without* dropping its children, so it never
fires again and its timer row reads "cancelled", while the branches it opened run on to their own end
events and the process end waits for them (BPMN: tokens of a non-interrupting event are independent of the
activity). The join copies below it are cancelled by the join itself (`Join._do_join`), as before.
`KeepBranchesJoin` is registered with the serializer under its own name, and `serializer.spec_from_json`
applies the transformation to every stored spec it restores, so versions deployed before it (stored with
SpiffWorkflow's join) and their running cases get it too.
"""
from __future__ import annotations

from typing import Any

from SpiffWorkflow import TaskState
from SpiffWorkflow.bpmn.specs.control import BoundaryEventJoin
from SpiffWorkflow.bpmn.specs.event_definitions.timer import CycleTimerEventDefinition
from SpiffWorkflow.bpmn.specs.mixins.events.intermediate_event import BoundaryEvent
from SpiffWorkflow.specs.Join import Join


class KeepBranchesJoin(BoundaryEventJoin):
    """A BoundaryEventJoin that retires a repeating non-interrupting timer instead of cancelling it when
    the timer has opened branches that are still running (see the module docstring)."""

    def _check_threshold_structured(self, my_task: Any) -> tuple[bool, list[Any]]:
        finished, cancel = super()._check_threshold_structured(my_task)
        if not finished:
            return finished, cancel
        keep = [t for t in cancel if _has_live_branch(t)]
        for task in keep:
            _retire(task)
        return finished, [t for t in cancel if t not in keep]


def _repeating(task_spec: Any) -> bool:
    return (isinstance(task_spec, BoundaryEvent) and not task_spec.cancel_activity
            and isinstance(task_spec.event_definition, CycleTimerEventDefinition))


def _has_live_branch(task: Any) -> bool:
    """Is something below this waiting repeating timer still to be done (a step, a timer, a script not yet
    run)? Waiting joins do not count: they are tokens that merge or end, never work of their own."""
    if task.state != TaskState.WAITING or not _repeating(task.task_spec):
        return False
    stack = list(task.children)
    while stack:  # explicit walk: a long-lived case can have a deep tree (see compaction)
        child = stack.pop()
        if child.has_state(TaskState.NOT_FINISHED_MASK) and not isinstance(child.task_spec, Join):
            return True
        stack.extend(child.children)
    return False


def _retire(task: Any) -> None:
    """Stop a repeating timer for good while leaving the branches it opened in place."""
    task.workflow.top_workflow.event_manager.remove_task(task)
    task._set_state(TaskState.CANCELLED)


def keep_spawned_branches(spec: Any) -> Any:
    """Give every task guarded by a non-interrupting repeating timer a `KeepBranchesJoin` (in place;
    returns the spec). Idempotent; other joins keep SpiffWorkflow's class, so their specs serialize as
    before."""
    for task_spec in list(spec.task_specs.values()):
        if type(task_spec) is not BoundaryEventJoin:
            continue
        split = spec.task_specs.get(task_spec.split_task)
        if split is not None and any(_repeating(out) for out in split.outputs):
            task_spec.__class__ = KeepBranchesJoin
    return spec
