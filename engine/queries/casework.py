"""Comments, attachments and extension requests of a case as the case and task pages show them, and the
pending extension requests an officer may decide (their inbox) — with what the reader may do about each,
so a page shows only the forms that would work (the engine's verbs, `cases.casework`, enforce the same
rules: `engine.policy`).

Scoped like `case_detail`: a case the reader may not see is NotFound (`scope.visible_case`); the officer's
list asks the database for the cases of the reader's own unit only.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, literal_column, select
from sqlalchemy.orm import Session, aliased

from .. import catalog, policy
from ..errors import NotFound
from ..models import Attachment, Case, Comment, ExtensionRequest, ProcessVersion, TaskRow, User
from ..policy import Actor, Chain
from ..vocab import Role
from .models import TaskItem
from .pages import check_limit
from .scope import OPEN, Who, visible_case, who
from .serialize import JsonModel
from .tasks import case_tasks

#: what `content_type` of an attachment a page may show as a picture (the rest are links)
IMAGE_TYPES = frozenset({"image/jpeg", "image/png"})
#: a literal, so both databases can use the partial index over pending requests
PENDING: ColumnElement[str] = literal_column("'pending'")


@dataclass(frozen=True)
class CommentItem(JsonModel):
    """A remark on a case, by whom (username and name), when, at which step if any."""
    id: int
    task_id: int | None
    task_name: str | None
    author: str
    author_name: str
    at: datetime
    body: str


@dataclass(frozen=True)
class AttachmentItem(JsonModel):
    """An attachment not removed: what it is, who brought it in; the bytes are served by their id."""
    id: int
    task_id: int | None
    document: str | None
    filename: str
    content_type: str
    size: int
    sha256: str
    uploaded_by: str
    uploaded_by_name: str
    uploaded_at: datetime

    @property
    def is_image(self) -> bool:
        return self.content_type in IMAGE_TYPES


@dataclass(frozen=True)
class ExtensionRequestItem(JsonModel):
    """A request for more time (申请延期) and, once decided, the decision."""
    id: int
    case_number: str
    task_id: int | None
    workdays: int
    reason: str
    requested_by: str
    requested_by_name: str
    requested_at: datetime
    status: str  # pending | approved | rejected
    decided_by: str | None = None
    decided_by_name: str | None = None
    decided_at: datetime | None = None
    decision_note: str | None = None
    service_code: str | None = None
    applicant_name: str | None = None


@dataclass(frozen=True)
class CaseWork(JsonModel):
    """A case's comments (oldest first), attachments (not removed, oldest first) and extension requests
    (newest first); the documents the item asks for (the catalogue's list, for the upload form's choice; empty
    for an item the catalogue does not know); and what the reader may do: comment and attach
    (`may_work`: works on the open case), ask for an extension (`may_request_extension`: works on one of
    its ready steps, and the case may still be extended), decide the pending request
    (`may_decide_extension`: an officer of the approving level). `extension_max_workdays`: the item's cap."""
    comments: tuple[CommentItem, ...] = ()
    attachments: tuple[AttachmentItem, ...] = ()
    extension_requests: tuple[ExtensionRequestItem, ...] = ()
    documents: tuple[str, ...] = ()
    may_work: bool = False
    may_request_extension: bool = False
    may_decide_extension: bool = False
    extension_max_workdays: int = policy.DEFAULT_EXTENSION_MAX_WORKDAYS

    @property
    def pending_extension(self) -> ExtensionRequestItem | None:
        return next((r for r in self.extension_requests if r.status == "pending"), None)


def case_work(session: Session, number: str, user: Who = None) -> CaseWork:
    """What `case_detail` carries as `work`, for a page that needs only this (the task page)."""
    case = visible_case(session, user, number)
    return case_work_of(session, case, user, case_tasks(session, case.id))


def case_work_of(session: Session, case: Case, user: Who, tasks: Sequence[TaskItem]) -> CaseWork:
    """The case's comments, attachments and extension requests, for a case the caller already found
    visible (with its tasks, which `case_detail` has read anyway)."""
    actor = who(user)
    chain = Chain(case.village_id, case.township_id, case.county_id)
    pv = session.execute(select(ProcessVersion.properties, ProcessVersion.task_meta)
                         .where(ProcessVersion.id == case.process_version_id)).one()
    requests = extension_requests(session, case)
    is_open = case.status == "open"
    pending = any(r.status == "pending" for r in requests)
    may_request = (is_open and case.extension_workdays is None and case.paused_at is None and not pending
                   and any(t.state == "ready" and t.assignee in (None, actor.username)
                           and policy.may_work_on(actor, t.unit_id, t.candidate_group) for t in tasks))
    approver = policy.approver_for(pv.properties or {}, pv.task_meta or {}, chain)
    return CaseWork(
        comments=comments(session, case), attachments=attachments(session, case), extension_requests=requests,
        documents=documents(case.service_code),
        may_work=is_open and policy.is_staff(actor) and policy.works_on_case(actor, chain),
        may_request_extension=may_request,
        may_decide_extension=is_open and pending and policy.may_extend(actor, approver),
        extension_max_workdays=policy.extension_cap(pv.properties or {}))


def documents(service_code: str) -> tuple[str, ...]:
    """The documents the catalogue asks for with an application of this item (required first, then those
    marked 如有), or () for an item it does not list."""
    entry = catalog.items_by_code().get(service_code)
    if entry is None:
        return ()
    required, optional = catalog.required_documents(dict(entry))
    return tuple(required) + tuple(optional)


def comments(session: Session, case: Case) -> tuple[CommentItem, ...]:
    rows = session.execute(select(Comment, User.username, User.display_name, TaskRow.name)
                           .join(User, User.id == Comment.author_id)
                           .outerjoin(TaskRow, TaskRow.id == Comment.task_id)
                           .where(Comment.case_id == case.id).order_by(Comment.id))
    return tuple(CommentItem(c.id, c.task_id, task_name, username, display_name, c.at, c.body)
                 for c, username, display_name, task_name in rows)


def attachments(session: Session, case: Case) -> tuple[AttachmentItem, ...]:
    rows = session.execute(select(Attachment, User.username, User.display_name)
                           .join(User, User.id == Attachment.uploaded_by_id)
                           .where(Attachment.case_id == case.id, Attachment.removed_at.is_(None))
                           .order_by(Attachment.id))
    return tuple(AttachmentItem(a.id, a.task_id, a.document, a.filename, a.content_type, a.size, a.sha256,
                                username, display_name, a.uploaded_at) for a, username, display_name in rows)


def attachment(session: Session, number: str, attachment_id: int, user: Who = None) -> AttachmentItem:
    """One attachment of case `number` (not removed) for a reader who may see the case; NotFound otherwise
    (whether it does not exist, was removed, belongs to another case or to a case they may not see)."""
    try:
        case = visible_case(session, user, number)
    except NotFound:
        raise NotFound(f"no attachment {attachment_id}", reason="attachment.not_found",
                       attachment_id=str(attachment_id)) from None
    found = next((a for a in _attachment_rows(session, case, attachment_id)), None)
    if found is None:
        raise NotFound(f"no attachment {attachment_id}", reason="attachment.not_found",
                       attachment_id=str(attachment_id))
    return found


def _attachment_rows(session: Session, case: Case, attachment_id: int) -> tuple[AttachmentItem, ...]:
    if isinstance(attachment_id, bool) or not isinstance(attachment_id, int):
        return ()
    rows = session.execute(select(Attachment, User.username, User.display_name)
                           .join(User, User.id == Attachment.uploaded_by_id)
                           .where(Attachment.id == attachment_id, Attachment.case_id == case.id,
                                  Attachment.removed_at.is_(None)))
    return tuple(AttachmentItem(a.id, a.task_id, a.document, a.filename, a.content_type, a.size, a.sha256,
                                username, display_name, a.uploaded_at) for a, username, display_name in rows)


def _request_select(*where: ColumnElement[bool]) -> Any:
    asker, decider = aliased(User), aliased(User)
    return (select(ExtensionRequest, Case.number, Case.service_code, Case.applicant_name, asker.username,
                   asker.display_name, decider.username, decider.display_name)
            .join(Case, Case.id == ExtensionRequest.case_id)
            .join(asker, asker.id == ExtensionRequest.requested_by_id)
            .outerjoin(decider, decider.id == ExtensionRequest.decided_by_id)
            .where(*where))


def _request_item(row: Any) -> ExtensionRequestItem:
    r, number, service_code, applicant_name, asker, asker_name, decider, decider_name = tuple(row)[:8]
    return ExtensionRequestItem(r.id, number, r.task_id, r.workdays, r.reason, asker, asker_name, r.requested_at,
                                r.status, decider, decider_name, r.decided_at, r.decision_note, service_code,
                                applicant_name)


def extension_requests(session: Session, case: Case) -> tuple[ExtensionRequestItem, ...]:
    """Every extension request of the case, pending or decided, newest first."""
    rows = session.execute(_request_select(ExtensionRequest.case_id == case.id).order_by(ExtensionRequest.id.desc()))
    return tuple(_request_item(r) for r in rows)


#: the case column that holds the unit an officer of each role decides for (policy.approver_of)
_APPROVER_UNIT = {Role.COUNTY_OFFICER: Case.county_id, Role.TOWNSHIP_OFFICER: Case.township_id,
                  Role.CLERK: Case.village_id}


def extension_requests_to_decide(session: Session, user: Actor | User, limit: int = 50
                                 ) -> tuple[ExtensionRequestItem, ...]:
    """The pending requests of open cases the reader may decide (`policy.may_extend` on each case's
    approver), oldest first: the officer's inbox of requests. The database is asked only for the cases of
    the reader's own unit at the level their role decides for; the approver rule (department, level)
    then picks among those few."""
    actor = who(user)
    limit = check_limit(limit)
    column = _APPROVER_UNIT.get(actor.role)  # type: ignore[call-overload]
    if column is None or not policy.is_staff(actor):
        return ()
    stmt = (_request_select(ExtensionRequest.status == PENDING, Case.status == OPEN, column == actor.unit_id)
            .add_columns(Case.village_id, Case.township_id, Case.county_id, ProcessVersion.properties,
                         ProcessVersion.task_meta)
            .join(ProcessVersion, ProcessVersion.id == Case.process_version_id)
            .order_by(ExtensionRequest.requested_at, ExtensionRequest.id))
    out = []
    for row in session.execute(stmt):
        chain = Chain(row.village_id, row.township_id, row.county_id)
        if policy.may_extend(actor, policy.approver_for(row.properties or {}, row.task_meta or {}, chain)):
            out.append(_request_item(row))
            if len(out) == limit:
                break
    return tuple(out)
