"""The file a designer opens in the browser's modeler: the newest deployed version of a process with its BPMN
text exactly as deployed (process versions are immutable, DESIGN invariant 2), read as one row of plain
columns — never the serialized spec or the task metadata, and never through the deploy code."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..errors import NotFound
from ..models import ProcessVersion
from .serialize import JsonModel


@dataclass(frozen=True)
class EditableProcess(JsonModel):
    """The newest version of a process, as the modeler opens it. `version` is the base a working copy kept in
    the browser belongs to: a newer deploy (by anyone) makes that copy stale."""
    process_id: str
    name: str
    version: int
    filename: str
    sha256: str
    executable: bool
    deployed_at: datetime
    xml: str


def editable_process(session: Session, process_id: str) -> EditableProcess:
    """The newest version of `process_id` (executable or a model only) with its BPMN, or NotFound."""
    row = session.execute(select(ProcessVersion.process_id, ProcessVersion.name, ProcessVersion.version,
                                 ProcessVersion.filename, ProcessVersion.sha256, ProcessVersion.executable,
                                 ProcessVersion.deployed_at, ProcessVersion.bpmn_xml)
                          .where(ProcessVersion.process_id == process_id)
                          .order_by(ProcessVersion.version.desc()).limit(1)).first()
    if row is None:
        raise NotFound(f"no deployed process {process_id!r}", reason="process.not_deployed", service=process_id)
    return EditableProcess(row.process_id, row.name, row.version, row.filename, row.sha256, bool(row.executable),
                           row.deployed_at, row.bpmn_xml)


def deployed_process_ids(session: Session, process_ids: list[str]) -> frozenset[str]:
    """Which of `process_ids` have a deployed version (the upload page says 'new version of' or 'new')."""
    if not process_ids:
        return frozenset()
    return frozenset(session.scalars(select(ProcessVersion.process_id).distinct()
                                     .where(ProcessVersion.process_id.in_(process_ids))))
