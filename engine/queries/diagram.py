"""The BPMN diagram of one case: the XML of the process version the case runs on, and which of its
elements the case has been through — read from the task and timer rows (the projections), never from the
workflow state, so drawing a case costs three indexed reads however long the case has run.

The XML is the deployed file as stored (process versions are immutable, DESIGN invariant 2): what the
browser draws is exactly what the engine runs. The page colours the elements by their bpmn ids.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..models import ProcessVersion, TaskRow, TimerRow
from ..vocab import TaskState, TimerState
from .scope import Who, visible_case
from .serialize import JsonModel


@dataclass(frozen=True)
class CaseDiagram(JsonModel):
    """What the case page's diagram needs. Each id list is in the order the case first reached the
    element, without repeats; a step done once and ready again (returned for 补正) is in `done` and in
    `current`, and the page lets `current` win."""
    number: str
    process_id: str
    version: int
    xml: str
    done: tuple[str, ...]        # user tasks with a completed row
    current: tuple[str, ...]     # user tasks ready now
    cancelled: tuple[str, ...]   # user tasks left without being completed (withdrawn, an interrupting timer)
    fired: tuple[str, ...]       # timer events whose timer fired
    sha256: str                  # of the deployed BPMN file

    @property
    def validator(self) -> str:
        """A digest of everything above, for an HTTP ETag: the same case drawn twice in the same state has
        the same validator, any step taken changes it. The XML is stood for by its file's hash (immutable per
        version), so the digest costs nothing like the XML's size."""
        state = [self.number, self.process_id, self.version, self.sha256, self.done, self.current,
                 self.cancelled, self.fired]
        return hashlib.sha256(json.dumps(state, ensure_ascii=False).encode()).hexdigest()[:32]


def case_diagram(session: Session, number: str, user: Who = None) -> CaseDiagram:
    """The diagram of case `number` if `user` may see it (`NotFound` otherwise, as `case_detail`): the
    BPMN XML of its process version (one column read, the spec never deserialized) and the bpmn ids of
    its done, current and cancelled steps and of its fired timers."""
    case = visible_case(session, user, number)
    pv = session.execute(select(ProcessVersion.process_id, ProcessVersion.version, ProcessVersion.bpmn_xml,
                                ProcessVersion.sha256)
                         .where(ProcessVersion.id == case.process_version_id)).one()
    by_state: dict[str, dict[str, None]] = {s.value: {} for s in TaskState}
    for bpmn_id, state in session.execute(select(TaskRow.bpmn_id, TaskRow.state)
                                          .where(TaskRow.case_id == case.id).order_by(TaskRow.id)):
        by_state.setdefault(state, {})[bpmn_id] = None
    fired = session.scalars(select(TimerRow.bpmn_id)
                            .where(TimerRow.case_id == case.id, TimerRow.state == TimerState.FIRED.value)
                            .order_by(TimerRow.id))
    return CaseDiagram(
        number=case.number, process_id=pv.process_id, version=pv.version, xml=pv.bpmn_xml,
        done=tuple(by_state[TaskState.COMPLETED.value]), current=tuple(by_state[TaskState.READY.value]),
        cancelled=tuple(by_state[TaskState.CANCELLED.value]), fired=tuple(dict.fromkeys(fired)),
        sha256=pv.sha256,
    )
