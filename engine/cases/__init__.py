"""The only writer of case state (DESIGN.md §1, invariant 1), split by layer, not by verb:

- `service`     the verbs (accept, claim, release, reassign, complete, withdraw, fire timers);
- `sla`         the SLA clock's verbs (pause, resume, extend);
- `store`       prebuilt statements, load once, one version-checked save, audit rows;
- `projection`  the pure diff of workflow snapshots into task/timer/case rows;
- `clock_stops` stopping and restarting the clock (pauses, publicity, held timers);
- `warnings`    yellow/red levels, cards and notifications;
- `ratings`     the applicant's 好差评 of a closed case (number + 查询码, no login);
- `casework`    comments, attachments, extension requests and their decisions.
- `supervision` 督办 on a case at risk, and the 情况说明 that answers a card.
- `recompute`   a case's dues replayed on today's working-day calendar (a holiday schedule published).
- `migration`   running cases moved to another version of their process (dry run, bulk, rollback).

Callers use the names below; the modules are the package's own business.
"""
from __future__ import annotations

from . import intake, migration, recompute
from .casework import add_attachment, add_comment, decide_extension, remove_attachment, request_extension
from .clock_stops import MIN_EFFECTIVE_PAUSE, PAUSE_KINDS
from .ratings import COMMENT_MAX as RATING_COMMENT_MAX
from .ratings import rate_case
from .returns import return_for_supplement
from .service import (
                      STEP_BUDGET_SECONDS,
                      claim_task,
                      complete_task,
                      fire_timers,
                      reassign_task,
                      start_case,
                      unclaim_task,
                      withdraw_case,
)
from .sla import extend_case, pause_case, resume_case
from .store import MAX_INSTANCE_BYTES, StepResult, next_due_case, next_due_cases
from .supervision import explain_card, supervise
from .warnings import evaluate_case, mark_read, next_case_to_check

__all__ = ["MAX_INSTANCE_BYTES", "intake", "migration", "recompute", "return_for_supplement",
           "MIN_EFFECTIVE_PAUSE", "PAUSE_KINDS", "STEP_BUDGET_SECONDS", "StepResult",
           "claim_task", "complete_task", "evaluate_case", "extend_case", "fire_timers", "mark_read",
           "next_case_to_check", "next_due_case", "next_due_cases", "pause_case", "reassign_task", "resume_case",
           "start_case",
           "unclaim_task", "withdraw_case", "rate_case", "RATING_COMMENT_MAX",
           "add_attachment", "add_comment", "decide_extension", "remove_attachment", "request_extension",
           "explain_card", "supervise"]
