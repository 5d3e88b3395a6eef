"""办件查询: what a citizen may read of their case with its number and 查询码, without logging in.

What it shows and what it leaves out. The item, where it was accepted, where it stands (受理中, 办理中,
补正中…, 已办结), the step(s) now open by name and level (村/乡镇/县), the promised due date, and a history
in plain words (受理; 乡镇入户调查审核 已办; 暂停计时（补正）; 办结) — never who did what (no staff names,
usernames or ids), never what a step recorded (form data), reasons typed by staff, cards or timers: those
are the workbench's. An unknown number and a wrong code both give None, after the same work
(`query_code.matching_case`). Read from the case columns and the projections (task, pause, rating rows
and a filtered slice of the audit trail), never from the workflow.

The door in front of it (rate limits per client address and per case number) is `engine.ratelimit`;
the rating itself is written by `engine.cases.ratings`.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from .. import clock
from ..models import T_AUDIT, T_CASE, T_PAUSE, T_PV, T_RATING, T_TASK, T_UNIT
from ..query_code import matching_case
from ..vocab import AuditAction, CasePhase, CaseStatus, Level, PauseKind, TaskState
from .models import RatingItem
from .serialize import JsonModel

#: The audit actions a citizen's history shows (claims, reassignments, cards, timers and step openings
#: are the staff's business); `case.withdrawn` is told by its `case.closed`.
PUBLIC_ACTIONS: tuple[str, ...] = (
    AuditAction.CASE_STARTED, AuditAction.TASK_COMPLETED, AuditAction.CASE_PAUSED,
    AuditAction.CASE_PAUSED_BACKDATED, AuditAction.CASE_RESUMED, AuditAction.CASE_EXTENDED,
    AuditAction.CASE_PUBLICITY, AuditAction.CASE_CLOSED, AuditAction.CASE_RATED)
#: The most history lines shown (a case that looped through 补正 many times shows its latest ones).
HISTORY_MAX = 200
#: A step's level as a citizen reads it (vocab.Level's 县（区） would put brackets in brackets): (Chinese, English).
LEVEL_WORDS: Mapping[str, tuple[str, str]] = {
    Level.VILLAGE: ("村", "village"), Level.TOWNSHIP: ("乡镇", "township"), Level.COUNTY: ("县", "county")}


@dataclass(frozen=True)
class PublicStep(JsonModel):
    """A step now open: its name as the process calls it and the level that works on it."""
    name: str
    level: str | None  # village | township | county (vocab.Level)

    @property
    def text(self) -> str:
        words = LEVEL_WORDS.get(self.level or "")
        return f"{self.name}（{words[0]}）" if words else self.name


@dataclass(frozen=True)
class PublicEvent(JsonModel):
    """One line of the citizen's history. `action` is the audit action; `step`/`level` name the step of
    a `task.completed`, `pause_kind` the kind of a pause, `status` the status a `case.closed` reached,
    `workdays` the length of an extension. `text` is the line in plain Chinese (the web composes its own
    in the reader's language from the same fields)."""
    at: datetime
    action: str
    text: str
    step: str | None = None
    level: str | None = None
    pause_kind: str | None = None
    status: str | None = None
    workdays: int | None = None


@dataclass(frozen=True)
class PublicCase(JsonModel):
    """A case as 办件查询 shows it to whoever holds its number and 查询码. No staff names, no form data."""
    number: str
    service_code: str
    service_name: str
    village: str
    township: str
    county: str
    status: str  # vocab.CaseStatus
    phase: str  # vocab.CasePhase: the status in plain words, finer while open
    phase_text: str
    current_steps: tuple[PublicStep, ...]
    accepted_at: datetime | None
    promised_limit_workdays: int | None
    promised_due_at: datetime | None
    paused: bool
    pause_kind: str | None  # vocab.PauseKind while the clock stands still
    paused_since: datetime | None
    closed_at: datetime | None
    outcome: str | None  # the end event's name, e.g. 办结 or 不予办理
    history: tuple[PublicEvent, ...]
    rating: RatingItem | None
    can_rate: bool  # closed and not rated yet


def lookup(session: Session, number: Any, code: Any, now: datetime | None = None) -> PublicCase | None:
    """The case `number` as 办件查询 shows it, if `code` is its 查询码; None for an unknown number and a
    wrong code alike. Rate limiting is the caller's (`ratelimit.enter_lookup` before, `lookup_failed`
    after a None)."""
    case_id = matching_case(session, number, code)
    if case_id is None:
        return None
    return public_case(session, case_id, now or clock.now())


_CASE_COLUMNS = (T_CASE.c.id, T_CASE.c.number, T_CASE.c.service_code, T_CASE.c.village_id, T_CASE.c.township_id,
                 T_CASE.c.county_id, T_CASE.c.status, T_CASE.c.outcome, T_CASE.c.accepted_at, T_CASE.c.created_at,
                 T_CASE.c.promised_limit_workdays, T_CASE.c.promised_due_at, T_CASE.c.paused_at,
                 T_CASE.c.closed_at, T_PV.c.name.label("service_name"))


def public_case(session: Session, case_id: int, now: datetime) -> PublicCase:
    """The citizen's view of case `case_id` (whose code the caller has checked): six small indexed reads,
    none of them of the workflow state."""
    conn = session.connection()
    case = conn.execute(select(*_CASE_COLUMNS).join(T_PV, T_PV.c.id == T_CASE.c.process_version_id)
                        .where(T_CASE.c.id == case_id)).mappings().one()
    units: dict[int, str] = {row.id: row.name for row in conn.execute(select(T_UNIT.c.id, T_UNIT.c.name).where(
        T_UNIT.c.id.in_([case["village_id"], case["township_id"], case["county_id"]])))}
    tasks = conn.execute(select(T_TASK.c.id, T_TASK.c.name, T_TASK.c.level, T_TASK.c.state)
                         .where(T_TASK.c.case_id == case_id).order_by(T_TASK.c.id)).mappings().all()
    pause = conn.execute(select(T_PAUSE.c.kind, T_PAUSE.c.started_at).where(
        T_PAUSE.c.case_id == case_id, T_PAUSE.c.started_at <= now,
        or_(T_PAUSE.c.ended_at.is_(None), T_PAUSE.c.ended_at > now)).order_by(T_PAUSE.c.id.desc()).limit(1)).first()
    events = conn.execute(select(T_AUDIT.c.at, T_AUDIT.c.action, T_AUDIT.c.new_value, T_AUDIT.c.details)
                          .where(T_AUDIT.c.case_id == case_id, T_AUDIT.c.action.in_(PUBLIC_ACTIONS))
                          .order_by(T_AUDIT.c.id.desc()).limit(HISTORY_MAX)).mappings().all()
    rated = conn.execute(select(T_RATING.c.score, T_RATING.c.comment, T_RATING.c.at)
                         .where(T_RATING.c.case_id == case_id)).first()
    status = case["status"]
    is_open = status == CaseStatus.OPEN
    paused = is_open and pause is not None
    rating = RatingItem(rated.score, rated.comment, rated.at) if rated else None
    phase = _phase(status, pause.kind if paused and pause else None,
                   any(t["state"] == TaskState.COMPLETED for t in tasks))
    return PublicCase(
        number=case["number"], service_code=case["service_code"], service_name=case["service_name"],
        village=units.get(case["village_id"], ""), township=units.get(case["township_id"], ""),
        county=units.get(case["county_id"], ""), status=status, phase=phase.value, phase_text=phase.zh,
        current_steps=tuple(PublicStep(t["name"], t["level"]) for t in tasks if t["state"] == TaskState.READY)
        if is_open else (),
        accepted_at=case["accepted_at"] or case["created_at"],
        promised_limit_workdays=case["promised_limit_workdays"], promised_due_at=case["promised_due_at"],
        paused=paused, pause_kind=pause.kind if paused and pause else None,
        paused_since=pause.started_at if paused and pause else None,
        closed_at=case["closed_at"], outcome=case["outcome"],
        history=_history(reversed(events), {t["id"]: t["level"] for t in tasks}),
        rating=rating, can_rate=not is_open and rating is None,
    )


def _phase(status: str, pause_kind: str | None, any_step_done: bool) -> CasePhase:
    if status != CaseStatus.OPEN:
        return CasePhase(status) if status in CasePhase.values() else CasePhase.COMPLETED
    if pause_kind in CasePhase.values():
        return CasePhase(pause_kind)
    return CasePhase.PROCESSING if any_step_done else CasePhase.ACCEPTED


def _history(events: Sequence[Mapping[str, Any]] | Any, levels: Mapping[int, str | None]) -> tuple[PublicEvent, ...]:
    """The audit events a citizen may read, each as a plain line without who did it or why."""
    out = []
    for e in events:
        action, details = e["action"], e["details"] or {}
        label = AuditAction(action).zh
        if action == AuditAction.TASK_COMPLETED:
            task_id = details.get("task_id")
            level = levels.get(task_id) if isinstance(task_id, int) else None
            step = str(details.get("task") or "")
            words = LEVEL_WORDS.get(level or "")
            where = f"（{words[0]}）" if words else ""
            text = f"{step}{where}已办" if where else f"{step} 已办"
            out.append(PublicEvent(e["at"], action, text, step=step, level=level))
        elif action in (AuditAction.CASE_PAUSED, AuditAction.CASE_PAUSED_BACKDATED):
            kind = details.get("kind") if details.get("kind") in PauseKind.values() else None
            text = f"暂停计时（{PauseKind(kind).zh}）" if kind else "暂停计时"
            out.append(PublicEvent(e["at"], action, text, pause_kind=kind))
        elif action == AuditAction.CASE_EXTENDED:
            days = details.get("workdays") if isinstance(details.get("workdays"), int) else None
            out.append(PublicEvent(e["at"], action, f"延期 {days} 个工作日" if days else label, workdays=days))
        elif action == AuditAction.CASE_CLOSED:
            status = e["new_value"] if e["new_value"] in CaseStatus.values() else CaseStatus.COMPLETED
            out.append(PublicEvent(e["at"], action, CaseStatus(status).zh, status=status))
        elif action == AuditAction.CASE_PUBLICITY:
            out.append(PublicEvent(e["at"], action, "公示（暂停计时）"))
        elif action == AuditAction.CASE_RATED:
            out.append(PublicEvent(e["at"], action, "已评价"))
        else:  # case.started 受理, case.resumed 恢复计时
            out.append(PublicEvent(e["at"], action, label))
    return tuple(out)
