"""Long-running loops: keeping a case's task tree small enough for SpiffWorkflow to walk."""
from __future__ import annotations

import weakref
from dataclasses import dataclass
from typing import Any

from SpiffWorkflow import TaskState
from SpiffWorkflow.bpmn.specs.mixins.events.end_event import EndEvent
from SpiffWorkflow.bpmn.specs.mixins.events.intermediate_event import BoundaryEvent
from SpiffWorkflow.bpmn.specs.mixins.inclusive_gateway import InclusiveGateway
from SpiffWorkflow.bpmn.specs.mixins.multiinstance_task import LoopTask
from SpiffWorkflow.bpmn.specs.mixins.parallel_gateway import ParallelGateway

from .workflow import flows, side_end_events

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
    for flow in flows(workflow):
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
    * the latest completed end event, the latest one of the main path (not reached only through a
      non-interrupting boundary event), and the End task with its EndJoin and end event
      (`final_end_event`, `reached_end`), and `last_task`.
    Everything else is finished history (the audit and the projections hold what people see); finished
    subprocesses under removed tasks go with them.
    """
    removed = 0
    for flow in flows(workflow):
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
        side = side_end_events(flow.spec)
        main = [t for t in ends if t.task_spec.name not in side]
        if main:  # the outcome comes from the main path's end (`final_end_event`), however late a side branch ends
            keep.add(max(main, key=lambda t: t.last_state_change).id)
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


