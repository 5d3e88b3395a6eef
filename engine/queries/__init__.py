"""The read side: typed read models of tasks, cases and their history, built from the projections (case
columns, task/timer/pause/card rows, audit events) — never from a workflow.

- `scope`    who sees what, as SQL (the policy predicates drawn as WHERE conditions; `visible_case`)
- `models`   the read models (frozen dataclasses holding datetimes); `serialize` turns them into JSON
- `pages`    `Page[T]` and its keyset cursors
- `tasks`    inboxes, the tasks of a case, one task with its form
- `cases`    case lists and counts, one case with everything the case page shows
- `timeline` the audit trail as a timeline, and the steps with the form data each submitted
- `diagram`  a case's BPMN XML with the ids of its done, current and cancelled steps, for the drawing
- `notifications`, `process_versions` the remaining lists of the workbench
- `public`   办件查询: a case as its applicant reads it with number and 查询码 (no login, no staff names)
- `casework` a case's comments, attachments and extension requests; the requests an officer may decide
- `supervision` 督办 of a case and of the work in an inbox, 情况说明 of cards, what a reader may do about a
  late case

Access follows the org tree (DESIGN.md invariant 7): a user sees the cases of their own unit and, at
township/county/city level, of every unit below it; a case outside that is reported as not found.
"""
from __future__ import annotations

from .cases import CASE_STATUSES, case_detail, count_open_cases, estimated_open_cases, list_cases
from .casework import (
    AttachmentItem,
    CaseWork,
    CommentItem,
    ExtensionRequestItem,
    attachment,
    case_work,
    extension_requests_to_decide,
)
from .diagram import CaseDiagram, case_diagram
from .intake import (
    Centre,
    IntakeForm,
    NoticeDoc,
    Receipt,
    ServiceItem,
    Village,
    intake_form,
    notice,
    receipt,
    service_items,
    villages_for,
)
from .models import (
    CardItem,
    CaseDetail,
    CaseStep,
    CaseSummary,
    Colleague,
    FormField,
    InboxCounts,
    NotificationItem,
    PauseItem,
    ProcessRef,
    ProcessVersionItem,
    RatingItem,
    SlaInfo,
    StepField,
    TaskDetail,
    TaskItem,
    TimelineEntry,
    TimerItem,
)
from .notifications import list_notifications, notification_page
from .pages import MAX_PAGE, Page
from .process_versions import process_items, service_choices
from .public import PublicCase, PublicEvent, PublicStep, lookup
from .scope import Who, case_scope, visible_case, who
from .search import MAX_SEARCH
from .serialize import to_json
from .supervision import (
    CardExplanationItem,
    CaseOversight,
    ReassignChoice,
    SupervisionItem,
    card_explanations,
    case_supervisions,
    inbox_supervisions,
)
from .tasks import INBOX_TABS, TASK_LEVELS, colleagues, inbox, inbox_counts, list_tasks, task_detail, visible_task

__all__ = [
    "Centre", "IntakeForm", "NoticeDoc", "Receipt", "ServiceItem", "Village", "intake_form", "notice", "receipt",
    "service_items", "villages_for",
    "CASE_STATUSES", "MAX_PAGE", "CardItem", "CaseDetail", "CaseDiagram", "CaseStep", "CaseSummary", "FormField",
    "NotificationItem", "Page", "PauseItem", "ProcessRef", "ProcessVersionItem", "SlaInfo", "StepField",
    "TaskDetail", "TaskItem", "TimelineEntry", "TimerItem", "Who", "case_detail", "case_diagram", "case_scope",
    "count_open_cases", "estimated_open_cases", "inbox", "list_cases", "list_notifications", "list_tasks",
    "process_items", "task_detail", "to_json", "visible_case", "who",
    "INBOX_TABS", "Colleague", "InboxCounts", "MAX_SEARCH", "TASK_LEVELS", "colleagues", "inbox_counts",
    "notification_page", "service_choices", "visible_task",
    "PublicCase", "PublicEvent", "PublicStep", "RatingItem", "lookup",
    "AttachmentItem", "CaseWork", "CommentItem", "ExtensionRequestItem", "attachment", "case_work",
    "extension_requests_to_decide",
    "CardExplanationItem", "CaseOversight", "ReassignChoice", "SupervisionItem", "card_explanations",
    "case_supervisions", "inbox_supervisions",
]
