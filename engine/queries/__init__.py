"""The read side: typed read models of tasks, cases and their history, built from the projections (case
columns, task/timer/pause/card rows, audit events) — never from a workflow.

- `scope`    who sees what, as SQL (the policy predicates drawn as WHERE conditions; `visible_case`)
- `models`   the read models (frozen dataclasses holding datetimes); `serialize` turns them into JSON
- `pages`    `Page[T]` and its keyset cursors
- `tasks`    inboxes, the tasks of a case, one task with its form
- `cases`    case lists and counts, one case with everything the case page shows
- `timeline` the audit trail as a timeline, and the steps with the form data each submitted
- `notifications`, `process_versions` the remaining lists of the workbench

Access follows the org tree (DESIGN.md invariant 7): a user sees the cases of their own unit and, at
township/county/city level, of every unit below it; a case outside that is reported as not found.
"""
from __future__ import annotations

from .cases import CASE_STATUSES, case_detail, count_open_cases, estimated_open_cases, list_cases
from .models import (
    CardItem,
    CaseDetail,
    CaseStep,
    CaseSummary,
    FormField,
    NotificationItem,
    PauseItem,
    ProcessRef,
    ProcessVersionItem,
    SlaInfo,
    StepField,
    TaskDetail,
    TaskItem,
    TimelineEntry,
    TimerItem,
)
from .notifications import list_notifications
from .pages import MAX_PAGE, Page
from .process_versions import process_items
from .scope import Who, case_scope, visible_case, who
from .serialize import to_json
from .tasks import inbox, list_tasks, task_detail

__all__ = [
    "CASE_STATUSES", "MAX_PAGE", "CardItem", "CaseDetail", "CaseStep", "CaseSummary", "FormField",
    "NotificationItem", "Page", "PauseItem", "ProcessRef", "ProcessVersionItem", "SlaInfo", "StepField",
    "TaskDetail", "TaskItem", "TimelineEntry", "TimerItem", "Who", "case_detail", "case_scope",
    "count_open_cases", "estimated_open_cases", "inbox", "list_cases", "list_notifications", "list_tasks",
    "process_items", "task_detail", "to_json", "visible_case", "who",
]
