"""The read models: what pages, the API and the CLI are given about tasks, cases and their history.

Frozen dataclasses holding aware UTC `datetime`s, never pre-formatted text: a page renders an instant
through its filters (`when`, `due`), the JSON through `serialize.to_json` — so how an instant is shown is
decided once per audience, not baked in here. Field order is the order of the JSON objects.
(Not to be confused with `engine.models`, the tables these are read from.)
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from ..vocab import WarningLevel
from .serialize import JsonModel

if TYPE_CHECKING:
    from .casework import CaseWork
    from .supervision import CardExplanationItem, CaseOversight, SupervisionItem

WARNING_ORDER = [w.value for w in WarningLevel]  # green < yellow < red


@dataclass(frozen=True)
class TaskItem(JsonModel):
    """A step of a case as inboxes and case pages list it. `warning_level` only while it is ready."""
    id: int
    case_id: int
    bpmn_id: str
    name: str
    lane: str | None
    level: str | None
    unit_id: int
    unit: str | None
    candidate_group: str | None
    assignee: str | None  # username
    assignee_display_name: str | None
    state: str
    created_at: datetime
    completed_at: datetime | None
    due_at: datetime | None
    limit_workdays: int | None
    warning_level: str | None
    case_number: str
    service_code: str
    service_name: str  # the item's name, as its process version calls it
    applicant_name: str


@dataclass(frozen=True)
class FormField(JsonModel):
    """A field of a step's form as deployed (camunda:formField); `readonly` for the case's own fields."""
    id: str
    label: str
    type: str
    required: bool
    options: tuple[tuple[str, str], ...]  # (value, name) of an enum
    constraints: Mapping[str, str]
    readonly: bool = False
    #: a gateway decides on it: each round of the step answers it anew (never prefilled from an earlier one)
    decision: bool = False

    @classmethod
    def from_meta(cls, meta: Mapping[str, Any], readonly: bool = False) -> FormField:
        """From a field as deployment stored it in `process_versions.task_meta` (bpmn.metadata.FormField)."""
        return cls(str(meta["id"]), str(meta.get("label") or meta["id"]), str(meta.get("type") or "string"),
                   bool(meta.get("required")), tuple((str(o[0]), str(o[1])) for o in meta.get("options") or ()),
                   dict(meta.get("constraints") or {}), readonly, bool(meta.get("decision")))


@dataclass(frozen=True)
class TaskDetail(TaskItem):
    """One task with its form and documentation, for a client to render the form."""
    form_key: str | None = None
    documentation: str | None = None
    fields: tuple[FormField, ...] = ()


@dataclass(frozen=True)
class CaseSummary(JsonModel):
    """A case in a list: what a row shows, never its workflow."""
    number: str
    service_code: str
    service_name: str
    process_version: int
    village: str
    applicant_name: str
    status: str
    outcome: str | None
    created_at: datetime
    updated_at: datetime
    accepted_at: datetime | None = None  # 受理: before created_at for an application entered late (补录)


@dataclass(frozen=True)
class ProcessRef(JsonModel):
    id: str
    name: str
    version: int


@dataclass(frozen=True)
class SlaInfo(JsonModel):
    """The case's clock: limits in working days, due instants, warning level, pause and extension."""
    legal_limit_workdays: int | None
    legal_due_at: datetime | None
    promised_limit_workdays: int | None
    promised_due_at: datetime | None
    estimated: bool
    warning_level: str
    paused_at: datetime | None
    extension_workdays: int | None


@dataclass(frozen=True)
class PauseItem(JsonModel):
    """An interval the clock stood still; `workdays_left` of each deadline when it began."""
    kind: str
    reason: str
    started_at: datetime
    ended_at: datetime | None
    workdays_left: Mapping[str, Any]


@dataclass(frozen=True)
class CardItem(JsonModel):
    """A yellow or red card (黄牌/红牌) as issued."""
    id: int
    color: str
    subject: str
    task_id: int | None
    reason: str
    issued_at: datetime
    due_at: datetime | None
    resolved_at: datetime | None
    responsible_clerk_id: int | None
    assignee_id: int | None


@dataclass(frozen=True)
class TimerItem(JsonModel):
    bpmn_id: str
    due_at: datetime
    state: str
    fired_at: datetime | None
    error: str | None


@dataclass(frozen=True)
class TimelineEntry(JsonModel):
    """One audit event of a case. `actor` is a username, the operator's login, or "system" (the engine's
    own moves); `actor_name` is how pages name them (the person's name, 服务器操作员（…）, 系统)."""
    at: datetime
    actor: str
    actor_name: str
    action: str
    old: str | None
    new: str | None
    details: Mapping[str, Any]


@dataclass(frozen=True)
class StepField(JsonModel):
    """One value a step submitted, with its label from the step's form; `choice` is the name of the
    chosen option of an enum field."""
    id: str
    label: str
    value: Any
    choice: str | None = None

    @property
    def text(self) -> str:
        """The value as a person reads it (是/否, the option's name, lists joined)."""
        if self.choice is not None:
            return self.choice
        if self.value is None or self.value == "":
            return "—"
        if isinstance(self.value, bool):
            return "是" if self.value else "否"
        if isinstance(self.value, (list, tuple)):
            return "、".join(str(v) for v in self.value)
        return str(self.value)


@dataclass(frozen=True)
class CaseStep(JsonModel):
    """What one step of a case recorded: acceptance (受理, `task_id` None) or a completed task — who, when,
    at which level, and the form data they submitted."""
    task_id: int | None
    bpmn_id: str | None
    name: str
    level: str | None
    unit: str | None
    actor: str  # as `TimelineEntry.actor`: a username, the operator's login, or "system"
    actor_name: str
    at: datetime
    fields: tuple[StepField, ...] = ()


@dataclass(frozen=True)
class RatingItem(JsonModel):
    """The applicant's 好差评 of a closed case (cases.ratings): 5 非常满意 … 1 非常不满意 (vocab.RATING_SCORES),
    an optional comment, when it was given."""
    score: int
    comment: str | None
    at: datetime


@dataclass(frozen=True)
class CaseDetail(JsonModel):
    """Everything the case page shows, from projections and the audit trail."""
    number: str
    service_code: str
    process: ProcessRef | None
    applicant_name: str
    status: str
    outcome: str | None
    village: str
    township: str
    county: str
    first_clerk: str | None
    first_clerk_name: str | None
    created_at: datetime
    updated_at: datetime
    closed_at: datetime | None
    version: int
    accepted_at: datetime | None
    sla: SlaInfo
    pauses: tuple[PauseItem, ...] = ()
    cards: tuple[CardItem, ...] = ()
    tasks: tuple[TaskItem, ...] = ()
    timers: tuple[TimerItem, ...] = ()
    audit: tuple[TimelineEntry, ...] = ()
    steps: tuple[CaseStep, ...] = ()
    rating: RatingItem | None = None  # the applicant's 好差评, once the case is closed and they gave one
    work: CaseWork | None = None  # comments, attachments, extension requests, and what the reader may do there
    supervisions: tuple[SupervisionItem, ...] = ()  # 督办 on the case and its steps, newest first
    explanations: tuple[CardExplanationItem, ...] = ()  # 情况说明 of its cards
    oversight: CaseOversight | None = None  # what the reader may do about it being late

    @property
    def step_warning_level(self) -> str:
        """The worst warning of the open steps: a step can be overdue long before the case is (a step
        has days, the case weeks), and the page must not say 正常 then."""
        levels = [t.warning_level for t in self.tasks if t.state == "ready" and t.warning_level]
        return max(levels, key=WARNING_ORDER.index, default="green")


@dataclass(frozen=True)
class NotificationItem(JsonModel):
    """A notification: `message` as the engine stored it (web.engine_texts reads it in the reader's
    language); `kind` (None on rows older than migration 0005: cards) and `task_id` say what it is about —
    `unclaimed_yellow`/`unclaimed_red`: a step of the reader's unit that nobody claimed is due soon/over."""
    id: int
    case_number: str | None
    message: str
    created_at: datetime
    read: bool
    kind: str | None = None
    task_id: int | None = None

    @property
    def colour(self) -> str:
        """red or yellow: how urgent it looks (a red card, an overdue step, a 督办), read from the kind or, for
        rows without one, from the stored text."""
        if self.kind:
            return "red" if self.kind.endswith("red") or self.kind == "supervision" else "yellow"
        return "red" if self.message.startswith("红牌") else "yellow"


@dataclass(frozen=True)
class Colleague(JsonModel):
    """A worker of one's unit, as a reassignment (转办) offers them."""
    id: int
    username: str
    display_name: str
    role: str
    department: str | None


@dataclass(frozen=True)
class InboxCounts(JsonModel):
    """The numbers beside the navigation's links: ready tasks waiting in my unit's queue (of my department
    at county level), those I claimed, how many of both are overdue (red), and my unread notifications."""
    queue: int
    claimed: int
    overdue: int
    unread: int

    @property
    def tasks(self) -> int:
        return self.queue + self.claimed


@dataclass(frozen=True)
class ProcessVersionItem(JsonModel):
    """A deployed process version in a list: counts of its user tasks and findings, never its BPMN."""
    process_id: str
    name: str
    version: int
    executable: bool
    file: str
    sha256: str  # the first 12 hex digits
    deployed_at: datetime
    user_tasks: int
    warnings: int
