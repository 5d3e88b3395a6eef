"""Instances serialized without their spec (SPIFFWORKFLOW.md §4): the spec is stored once per process
version and supplied on restore; a closed case keeps only what its pages can still need."""
from __future__ import annotations

import json
from typing import Any
from uuid import UUID

from SpiffWorkflow.bpmn import BpmnWorkflow
from SpiffWorkflow.bpmn.serializer.default.event_definition import TimerConditionalEventDefinitionConverter
from SpiffWorkflow.bpmn.serializer.default.workflow import BpmnWorkflowConverter, WorkflowConverter
from SpiffWorkflow.bpmn.serializer.workflow import BpmnWorkflowSerializer
from SpiffWorkflow.bpmn.specs.control import BoundaryEventJoin
from SpiffWorkflow.spiff.serializer.config import SPIFF_CONFIG

from . import compaction
from .boundary import KeepBranchesJoin, keep_spawned_branches
from .timers import _CLOCKED
from .workflow import SafeBpmnWorkflow


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
_CONFIG[KeepBranchesJoin] = _CONFIG[BoundaryEventJoin]
SERIALIZER = BpmnWorkflowSerializer(BpmnWorkflowSerializer.configure(_CONFIG))


def spec_to_json(spec: Any, subprocess_specs: dict[str, Any]) -> str:
    registry = SERIALIZER.registry
    return json.dumps({
        "spec": registry.convert(spec),
        "subprocess_specs": {name: registry.convert(s) for name, s in subprocess_specs.items()},
    })


def spec_from_json(text: str) -> tuple[Any, dict[str, Any]]:
    """The stored spec, with `boundary.keep_spawned_branches` applied (a version stored before it existed,
    with SpiffWorkflow's join, gets it too: its running cases keep the steps a repeating timer opened)."""
    dct = json.loads(text)
    registry = SERIALIZER.registry
    spec = keep_spawned_branches(registry.restore(dct["spec"]))
    return spec, {k: keep_spawned_branches(registry.restore(v)) for k, v in dct["subprocess_specs"].items()}


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
    compaction.keep_bounded(workflow, tokens=False)  # a case saved too deep (before compaction existed) can move again
    return workflow



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
