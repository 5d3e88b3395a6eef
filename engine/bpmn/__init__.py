"""SpiffWorkflow glue, along SpiffWorkflow's own seams — and the only package that imports it.

    loading      untrusted XML in: no DOCTYPE, no network, size/element/depth caps, the BPMN XSD
    checks       deploy refusals (restricted expressions, timers in range, waits, calls, loops) and warnings
    loops        the loop analysis behind "a loop that can never wait" refusals
    timers       timer event definitions on the engine clock, `workdays(N)`, range checks
    boundary     the branches of repeating non-interrupting timers outlive their task (SpiffWorkflow drops them)
    parser       SpiffWorkflow's parser with those timers and that join in place
    metadata     what the engine routes by: user tasks, lanes, forms, limits, end statuses
    compiler     `compile_bpmn`: load → checks → parse → smoke run → CompiledFile
    linking      call activities calling another file's process: linked and pinned at deploy
    workflow     the restricted workflow class and the walks over SpiffWorkflow's tasks
    compaction   keeping long-running loops' task trees walkable
    serializer   instances without their spec; closed cases compacted
    instance     `Instance`: a case's workflow as the case services use it
    upgrade      moving a running case onto another version's spec (migration), deadlines kept
    conventions  `yicun bpmn lint` for the catalogue's files
    scaffold     generating a catalogue item's BPMN

The names below are the package's public face (what the rest of the engine, the tests and the benchmarks
use); anything else is imported from its module.
"""
from .compaction import compact, keep_bounded
from .compiler import CompiledFile, compile_bpmn
from .instance import Instance, Step, StepNotReady
from .loading import (
    DEPLOY_TIME_BUDGET_SECONDS,
    MAX_ATTRIBUTE_LENGTH,
    MAX_BPMN_BYTES,
    MAX_FLOW_ELEMENTS,
    MAX_PROCESSES,
    MAX_TEXT_LENGTH,
    MAX_XML_ELEMENTS,
    NS,
    load_xml,
)
from .metadata import CompiledProcess, FormField, UserTaskMeta, decision_names, first_steps, user_task_meta
from .serializer import (
    SERIALIZER,
    compact_instance,
    dump_closed_instance,
    dump_instance,
    load_instance,
    spec_from_json,
    spec_to_json,
)
from .timers import TimerValueError, timer_delta, timer_instant
from .workflow import (
    EndlessLoop,
    SafeBpmnWorkflow,
    TaskState,
    TimerInfo,
    armed_timers,
    attached_timer_ids,
    final_end_event,
    find_task,
    new_workflow,
    reached_end,
    ready_user_tasks,
    run_until_waiting,
    set_timer_due,
    stalled_at,
    timer_fired,
    timer_tasks,
    tree_depth,
    unreached_end,
)

__all__ = [
    "DEPLOY_TIME_BUDGET_SECONDS", "MAX_ATTRIBUTE_LENGTH", "MAX_BPMN_BYTES", "MAX_FLOW_ELEMENTS", "MAX_PROCESSES",
    "MAX_TEXT_LENGTH", "MAX_XML_ELEMENTS", "NS", "SERIALIZER", "CompiledFile", "CompiledProcess", "EndlessLoop",
    "FormField", "Instance", "SafeBpmnWorkflow", "Step", "StepNotReady", "TaskState", "TimerInfo", "TimerValueError",
    "UserTaskMeta", "armed_timers", "attached_timer_ids", "compact", "compact_instance", "compile_bpmn",
    "decision_names", "dump_closed_instance", "dump_instance", "final_end_event", "find_task", "first_steps",
    "keep_bounded", "load_instance", "load_xml", "new_workflow", "reached_end", "ready_user_tasks",
    "run_until_waiting", "set_timer_due", "spec_from_json", "spec_to_json", "stalled_at", "timer_delta",
    "timer_fired", "timer_instant", "timer_tasks", "tree_depth", "unreached_end", "user_task_meta",
]
