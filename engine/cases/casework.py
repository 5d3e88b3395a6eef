"""Working a case besides completing its steps: comments (意见/备注), attachments (scans and photos of the
application's materials) and extension requests (申请延期: a step's worker asks, an officer of the
approving level decides).

Like every writer of case state these verbs run in the caller's transaction and take the case row's lock
first (`store.case_by_number`), so they are serialised with the step verbs: a comment cannot land on a
case a withdrawal just closed, two requests for the same case cannot both be pending, an approval cannot
race a second one. They do not touch the workflow — except an approved extension, which moves every
deadline through the SLA clock's own path (`sla.check_extension` + `sla.grant_extension`, what
`extend_case` runs) in the same transaction.

Who may do what (engine.policy): whoever cannot see the case is told it does not exist (NotFound, the
same answer as for an unknown number); comments and attachments are for those who work on the case
(`works_on_case`: its village, township and county staff, their leads); an attachment is removed only by
whoever uploaded it; an extension is asked for by a worker of one of the case's ready steps
(`may_work_on`) and decided by an officer of the approving level (`may_extend`, as `extend_case`). Every
change is audited (`comment.added`, `attachment.added`, `attachment.removed`, `extension.requested`,
`extension.rejected`; an approval is the `case.extended` event, naming the request).

Attachments: the bytes are checked and hashed before the lock and written to the file store before the
row (engine.files explains why a crash can leave an orphan file but never a row without its bytes).
"""
from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.orm import Session

from .. import clock, files, forms, policy
from ..errors import Conflict, InvalidInput, NotFound
from ..models import T_ATTACH, T_CASE, T_COMMENT, T_EXTREQ, T_NOTE, T_TASK, User
from ..policy import Actor, Chain, as_actor
from ..processes import LoadedSpec, case_spec_key, load_spec
from . import sla, store

#: the longest comment (the column's size)
MAX_COMMENT = 2000
#: the longest reason or decision note of an extension request (the columns' size)
MAX_REASON = 500
#: the longest name of the required document an attachment shows
MAX_DOCUMENT = 100


def clean_note(value: Any) -> Any:
    """A browser's textarea sends its line breaks as CR LF; a line break is text, a lone CR is not."""
    return value.replace("\r\n", "\n").replace("\r", "\n") if isinstance(value, str) else value


def locked_visible_case(session: Session, number: str, actor: Actor) -> Mapping[str, Any]:
    """The case row, locked, if `actor` may see the case; NotFound (the unknown number's answer) if not."""
    case = store.case_by_number(session, number)
    if not policy.may_see_case(actor, Chain.of(case)):
        raise NotFound(f"no case {number}", reason="case.not_found", case=number)
    return case


def require_open_case(case: Mapping[str, Any]) -> None:
    if case["status"] != "open":
        raise Conflict(f"case {case['number']} is {case['status']}", reason="case.not_open", case=case["number"],
                       status=case["status"])


def task_of(session: Session, case: Mapping[str, Any], task_id: Any) -> Mapping[str, Any] | None:
    """The step `task_id` names (None for none), which must be a step of this case."""
    if task_id is None:
        return None
    row = None
    if isinstance(task_id, int) and not isinstance(task_id, bool):
        row = store.conn(session).execute(select(T_TASK).where(T_TASK.c.id == task_id,
                                                               T_TASK.c.case_id == case["id"])).mappings().first()
    if row is None:
        raise NotFound(f"case {case['number']} has no step {task_id}", reason="task.not_found", task_id=str(task_id))
    return row


def _works_on(actor: Actor, case: Mapping[str, Any], reason: str, what: str) -> None:
    """A person who works on the case (the operator at the shell is no author: a comment or a file has one)."""
    policy.require(policy.is_staff(actor) and policy.works_on_case(actor, Chain.of(case)), reason,
                   f"{actor.username} does not work on case {case['number']} and may not {what}", case=case["number"])


def _notify(session: Session, users: list[int], case: Mapping[str, Any], kind: str, message: str,
            now: datetime) -> None:
    """Tell `users` about the case. No task id on these notices: the unique index over (user, task, kind)
    is for the sweep's one-notice-per-step warnings, and a second request on the same step (after a
    refusal) must reach the officers again."""
    if users:
        session.execute(insert(T_NOTE), [dict(user_id=u, case_id=case["id"], card_id=None, task_id=None, kind=kind,
                                              created_at=now, read_at=None, message=message[:500])
                                         for u in sorted(set(users))])


# ------------------------------------------------------------------------------------------- comments
def add_comment(session: Session, number: str, actor: Actor | User, body: str, task_id: int | None = None,
                now: datetime | None = None) -> int:
    """A remark on an open case (at a step, if `task_id`), by someone who works on it; returns its id."""
    actor = as_actor(actor)
    now = now or clock.now()
    body = forms.clean_text(clean_note(body), "the comment", MAX_COMMENT, field="body")
    case = locked_visible_case(session, number, actor)
    _works_on(actor, case, "comment.add", "comment on it")
    require_open_case(case)
    task = task_of(session, case, task_id)
    comment_id = int(store.conn(session).execute(insert(T_COMMENT).returning(T_COMMENT.c.id).values(
        case_id=case["id"], task_id=task["id"] if task else None, author_id=actor.id, at=now, body=body)).scalar_one())
    store.write_audit(session, [dict(case_id=case["id"], actor_id=actor.id, at=now, action="comment.added",
                                     details={"comment_id": comment_id, "task_id": task["id"] if task else None,
                                              "task": task["name"] if task else None, "body": body,
                                              **actor.audit_details},
                                     old_value=None, new_value=None)])
    return comment_id


# ------------------------------------------------------------------------------------------- attachments
def add_attachment(session: Session, number: str, actor: Actor | User, *, filename: str, content_type: str | None,
                   data: bytes, document: str | None = None, task_id: int | None = None,
                   now: datetime | None = None, file_store: files.FileStore | None = None) -> int:
    """A scan or photo of the application's materials on an open case, by someone who works on it;
    returns the attachment's id. `content_type` is what the browser declared: it is not trusted — the
    bytes decide (engine.files.check). `document` names the required document it shows (free text, as
    the catalogue names it). `file_store`: where the bytes go (default: the installation's, `files.store_for`)."""
    actor = as_actor(actor)
    now = now or clock.now()
    upload = files.check(data)  # size, type by signature, SHA-256: before any lock
    name = files.safe_filename(filename, upload.content_type)
    document = forms.clean_text(clean_note(document), "the document", MAX_DOCUMENT, required=False,
                                field="document") or None
    # the bytes on disk (a temporary file) while still outside the lock
    with (file_store or files.store_for()).staged(upload) as staged:
        case = locked_visible_case(session, number, actor)
        _works_on(actor, case, "attachment.add", "attach files to it")
        require_open_case(case)
        task = task_of(session, case, task_id)
        staged.commit()  # in place before the row: a row never points at missing bytes
        attachment_id = int(store.conn(session).execute(insert(T_ATTACH).returning(T_ATTACH.c.id).values(
            case_id=case["id"], task_id=task["id"] if task else None, document=document, filename=name,
            content_type=upload.content_type, size=upload.size, sha256=upload.sha256, uploaded_by_id=actor.id,
            uploaded_at=now, removed_at=None)).scalar_one())
    store.write_audit(session, [dict(case_id=case["id"], actor_id=actor.id, at=now, action="attachment.added",
                                     details={"attachment_id": attachment_id, "filename": name,
                                              "content_type": upload.content_type, "size": upload.size,
                                              "sha256": upload.sha256, "document": document,
                                              "declared_type": str(content_type or "")[:100] or None,
                                              "task_id": task["id"] if task else None, **actor.audit_details},
                                     old_value=None, new_value=name)])
    return attachment_id


def remove_attachment(session: Session, attachment_id: int, actor: Actor | User, now: datetime | None = None) -> str:
    """Withdraw an attachment (uploaded by mistake, the wrong page): only its uploader, while the case is
    open. The row stays, marked removed, and so do the bytes; returns the case's number."""
    actor = as_actor(actor)
    now = now or clock.now()
    number = _attachment_case(session, attachment_id)
    try:
        case = locked_visible_case(session, number, actor)
    except NotFound:  # an id must not tell whether it exists on a case the reader may not see
        raise NotFound(f"no attachment {attachment_id}", reason="attachment.not_found",
                       attachment_id=str(attachment_id)) from None
    row = store.conn(session).execute(select(T_ATTACH).where(T_ATTACH.c.id == attachment_id)).mappings().one()
    policy.require(row["uploaded_by_id"] is not None and row["uploaded_by_id"] == actor.id and policy.is_staff(actor),
                   "attachment.remove", "only whoever uploaded an attachment may remove it",
                   attachment_id=attachment_id)
    require_open_case(case)
    if row["removed_at"] is not None:
        raise Conflict(f"attachment {attachment_id} was already removed", reason="attachment.already_removed",
                       attachment_id=attachment_id)
    store.conn(session).execute(update(T_ATTACH).where(T_ATTACH.c.id == attachment_id).values(removed_at=now))
    store.write_audit(session, [dict(case_id=case["id"], actor_id=actor.id, at=now, action="attachment.removed",
                                     details={"attachment_id": attachment_id, "filename": row["filename"],
                                              "sha256": row["sha256"], **actor.audit_details},
                                     old_value=row["filename"], new_value=None)])
    return str(case["number"])


def _attachment_case(session: Session, attachment_id: Any) -> str:
    number = None
    if isinstance(attachment_id, int) and not isinstance(attachment_id, bool):
        number = session.scalar(select(T_CASE.c.number).join(T_ATTACH, T_ATTACH.c.case_id == T_CASE.c.id)
                                .where(T_ATTACH.c.id == attachment_id))
    if number is None:
        raise NotFound(f"no attachment {attachment_id}", reason="attachment.not_found",
                       attachment_id=str(attachment_id))
    return str(number)


# ------------------------------------------------------------------------------------------- extensions
def request_extension(session: Session, number: str, actor: Actor | User, workdays: int, reason: str,
                      task_id: int | None = None, now: datetime | None = None) -> int:
    """申请延期: a worker of one of the case's ready steps (the one `task_id` names, if given) asks for
    `workdays` more working days, with a reason (it is told to the applicant). The rules `extend_case`
    applies are checked now, on the locked row (open, not paused, never extended, within the item's cap,
    before the due), and one request at a time may wait. The officers who may decide are notified
    (kind `extension`); returns the request's id."""
    actor = as_actor(actor)
    now = now or clock.now()
    reason = forms.clean_text(clean_note(reason), "the reason for the extension (it is told to the applicant)",
                              MAX_REASON, field="reason")
    case = locked_visible_case(session, number, actor)
    require_open_case(case)  # a closed case has no current step: say why, not "you do not work on it"
    task = task_of(session, case, task_id)
    steps = [task] if task is not None else list(store.conn(session).execute(
        select(T_TASK).where(T_TASK.c.case_id == case["id"], T_TASK.c.state == "ready")).mappings())
    policy.require(any(t["state"] == "ready" and t["assignee_id"] in (None, actor.id)
                       and policy.may_work_on(actor, t["unit_id"], t["candidate_group"]) for t in steps),
                   "extension.request", f"{actor.username} does not work on a current step of case {number}",
                   case=number)
    pending = store.conn(session).execute(select(T_EXTREQ.c.id).where(T_EXTREQ.c.case_id == case["id"],
                                                                       T_EXTREQ.c.status == "pending")).first()
    if pending is not None:
        raise Conflict(f"case {number} already has an extension request waiting for a decision",
                       reason="extension.pending", case=number)
    spec = sla.check_extension(session, case, workdays, asked_at=now)
    request_id = int(store.conn(session).execute(insert(T_EXTREQ).returning(T_EXTREQ.c.id).values(
        case_id=case["id"], task_id=task["id"] if task else None, workdays=workdays, reason=reason,
        requested_by_id=actor.id, requested_at=now, status="pending", decided_by_id=None, decided_at=None,
        decision_note=None)).scalar_one())
    approver = policy.approver_for(spec.properties, spec.task_meta, Chain.of(case))
    _notify(session, _deciders(session, approver), case, "extension",
            f"延期申请 {number}：{actor.display_name or actor.username} 申请延期 {workdays} 个工作日，"
            f"待您审批。理由：{reason}", now)
    store.write_audit(session, [dict(case_id=case["id"], actor_id=actor.id, at=now, action="extension.requested",
                                     details={"request_id": request_id, "workdays": workdays, "reason": reason,
                                              "task_id": task["id"] if task else None, **actor.audit_details},
                                     old_value=None, new_value=None)])
    return request_id


def _deciders(session: Session, approver: policy.Approver) -> list[int]:
    """The active users `policy.may_extend` lets decide (the officers of the approving level's unit, of
    its departments if it names any)."""
    rows = session.execute(select(User.id, User.username, User.role, User.unit_id, User.department, User.active)
                           .where(User.role == approver.role, User.unit_id == approver.unit_id,
                                  User.active.is_(True)))
    return [r.id for r in rows if policy.may_extend(Actor(id=r.id, username=r.username, role=r.role, unit_id=r.unit_id,
                                                          department=r.department, active=bool(r.active)), approver)]


def decide_extension(session: Session, request_id: int, actor: Actor | User, approve: bool, note: str | None = None,
                     now: datetime | None = None) -> str:
    """An officer of the approving level decides a pending request. Approved: the case is extended by the
    requested working days through `extend_case`'s own path, the extension rules checked again with the
    request's time (what must precede the due is the application, not the decision). Refused: `note`
    (why) is required. The requester is notified (kind `extension_decided`); returns the case's number."""
    actor = as_actor(actor)
    now = now or clock.now()
    if not isinstance(approve, bool):
        raise InvalidInput("the decision is approve or reject", reason="extension.decision_invalid")
    note = forms.clean_text(clean_note(note), "the note on the decision", MAX_REASON, required=not approve,
                            field="note") or None
    number = None
    if isinstance(request_id, int) and not isinstance(request_id, bool):
        number = session.scalar(select(T_CASE.c.number).join(T_EXTREQ, T_EXTREQ.c.case_id == T_CASE.c.id)
                                .where(T_EXTREQ.c.id == request_id))
    if number is None:
        raise NotFound(f"no extension request {request_id}", reason="extension_request.not_found",
                       request_id=str(request_id))
    try:
        case = locked_visible_case(session, number, actor)
    except NotFound:
        raise NotFound(f"no extension request {request_id}", reason="extension_request.not_found",
                       request_id=str(request_id)) from None
    req = store.conn(session).execute(select(T_EXTREQ).where(T_EXTREQ.c.id == request_id)).mappings().one()  # locked
    spec = _spec_of(session, case)
    approver = policy.approver_for(spec.properties, spec.task_meta, Chain.of(case))
    policy.require(policy.may_extend(actor, approver), "case.extend",
                   f"an extension of this item is approved by {approver.describe()}", case=number)
    if req["status"] != "pending":
        raise Conflict(f"extension request {request_id} was already decided ({req['status']})",
                       reason="extension.already_decided", request_id=str(request_id))
    if approve:
        sla.check_extension(session, case, req["workdays"], asked_at=req["requested_at"])
        sla.grant_extension(session, case, actor, req["workdays"], req["reason"], now, request_id=request_id,
                            requested_by_id=req["requested_by_id"], **({"note": note} if note else {}),
                            **actor.audit_details)
    store.conn(session).execute(update(T_EXTREQ).where(T_EXTREQ.c.id == request_id, T_EXTREQ.c.status == "pending")
                                .values(status="approved" if approve else "rejected", decided_by_id=actor.id,
                                        decided_at=now, decision_note=note))
    if not approve:
        store.write_audit(session, [dict(case_id=case["id"], actor_id=actor.id, at=now, action="extension.rejected",
                                         details={"request_id": request_id, "workdays": req["workdays"],
                                                  "note": note, **actor.audit_details},
                                         old_value=None, new_value=None)])
    verdict = (f"已批准，延期 {req['workdays']} 个工作日" if approve else f"未获批准：{note}")
    _notify(session, [req["requested_by_id"]], case, "extension_decided", f"延期申请 {number} {verdict}", now)
    return str(number)


def _spec_of(session: Session, case: Mapping[str, Any]) -> LoadedSpec:
    """The case's process spec (cached by content; no workflow is restored): who approves for it."""
    return load_spec(session, case["process_version_id"], key=case_spec_key(case))
