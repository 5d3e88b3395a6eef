"""Cases as lists and as one page: the cases a user may see (newest first, paged by id), their counts,
and everything about one case — read from the case row's columns and the projections (tasks, timers,
pauses, cards, audit), never from the workflow state.
"""
from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import bindparam, func, select
from sqlalchemy.orm import Session, aliased, load_only

from .. import clock
from ..errors import InvalidInput
from ..models import Card, Case, OrgUnit, Pause, ProcessVersion, Rating, TimerRow, User
from ..vocab import CaseStatus
from .casework import case_work_of
from .models import CardItem, CaseDetail, CaseSummary, PauseItem, ProcessRef, RatingItem, SlaInfo, TimerItem
from .pages import Page, case_cursor, check_limit, page_before, page_of, read_case_cursor
from .scope import OPEN, Who, case_scope, visible_case
from .search import case_search
from .supervision import explanations_of, oversight_of, supervisions_of
from .tasks import SERVICE_CODE, case_tasks
from .timeline import audit_events, case_steps, timeline

CASE_STATUSES = CaseStatus.values()

#: The columns of a case that lists show; the instance JSON (the workflow state) is never among them.
CASE_LIST_COLUMNS = (Case.id, Case.number, Case.service_code, Case.applicant_name, Case.status, Case.outcome,
                     Case.created_at, Case.updated_at, Case.village_id, Case.accepted_at)


def list_cases(session: Session, user: Who = None, status: str | None = "open", limit: int = 100,
               cursor: str | None = None, *, search: str | None = None, service_code: str | None = None,
               accepted_from: date | None = None, accepted_to: date | None = None,
               before: str | None = None) -> Page[CaseSummary]:
    """The cases `user` may see, newest first (by id), `status` only unless None. The open-case lists of
    a village, township or county walk the partial indexes over open cases (unit, id) from the cursor.

    The search of 办件查询 narrows it: `search` a case number or applicant (`search.case_search`),
    `service_code` one item, `accepted_from`/`accepted_to` the days (Asia/Shanghai, both included) of
    acceptance (受理) — checked on the rows the walk meets, so closed cases stay findable at the cost of
    the walk through the reader's own cases, never of everyone's. `before` (a cursor of a later page's
    row): the page above it, read upwards from it."""
    if status is not None and status not in CASE_STATUSES:  # a typo must not look like "no cases"
        raise InvalidInput(f"case status must be one of {', '.join(CASE_STATUSES)}, not {str(status)[:20]!r}",
                           reason="case.status_invalid")
    limit = check_limit(limit)
    village = aliased(OrgUnit)
    stmt = (select(Case, village.name, ProcessVersion.name, ProcessVersion.version)
            .join(village, village.id == Case.village_id)
            .join(ProcessVersion, ProcessVersion.id == Case.process_version_id)
            .options(load_only(*CASE_LIST_COLUMNS, raiseload=True))
            .where(case_scope(user)).order_by(Case.id.desc()).limit(limit + 1))
    if status:  # inline (validated above): the open-case lists run on the partial indexes over open cases
        stmt = stmt.where(Case.status == bindparam("status", status, literal_execute=True))
    if before is not None:
        stmt = stmt.where(Case.id > read_case_cursor(before)).order_by(None).order_by(Case.id)
    elif cursor is not None:
        stmt = stmt.where(Case.id < read_case_cursor(cursor))
    found = case_search(search)
    if found is not None:
        stmt = stmt.where(found)
    if service_code:
        if not isinstance(service_code, str) or not SERVICE_CODE.fullmatch(service_code):
            raise InvalidInput(f"not a service item code: {str(service_code)[:40]!r}", reason="inbox.service_invalid")
        stmt = stmt.where(Case.service_code == service_code)
    if accepted_from is not None and accepted_to is not None and accepted_from > accepted_to:
        raise InvalidInput(f"the period ends ({accepted_to}) before it begins ({accepted_from})",
                           reason="search.period_reversed", start=accepted_from.isoformat(),
                           end=accepted_to.isoformat())
    accepted = func.coalesce(Case.accepted_at, Case.created_at)  # rows older than migration 0002 have none
    if accepted_from is not None:
        stmt = stmt.where(accepted >= _day_start(accepted_from))
    if accepted_to is not None:
        stmt = stmt.where(accepted < _day_start(accepted_to + timedelta(days=1)))
    rows = session.execute(stmt).all()
    if before is not None:
        return page_before(rows, limit, _summary, _case_key)
    return page_of(rows, limit, _summary, _case_key, after_cursor=cursor is not None)


def _case_key(row: Any) -> str:
    return case_cursor(row[0].id)


def _day_start(day: date) -> datetime:
    """00:00 of a day in Asia/Shanghai, as the UTC instant the columns hold."""
    return datetime.combine(day, time(0), tzinfo=clock.SHANGHAI).astimezone(UTC)


def _summary(row: Any) -> CaseSummary:
    c, village_name, service_name, version = row
    return CaseSummary(c.number, c.service_code, service_name, version, village_name, c.applicant_name, c.status,
                       c.outcome, c.created_at, c.updated_at, c.accepted_at)


def count_open_cases(session: Session, user: Who = None) -> int:
    return session.scalar(select(func.count()).select_from(Case).where(Case.status == OPEN, case_scope(user))) or 0


def estimated_open_cases(session: Session, user: Who = None) -> int:
    """Open cases whose dues rest on a year the calendar does not know yet (shown as a warning)."""
    return session.scalar(select(func.count()).select_from(Case).where(
        Case.status == OPEN, Case.due_estimated.is_(True), case_scope(user))) or 0


def case_detail(session: Session, number: str, user: Who = None) -> CaseDetail:
    """Everything about one case `user` may see (`NotFound` otherwise): its clock, pauses, cards, tasks,
    timers, the audit timeline, and the steps with the form data each submitted."""
    case = visible_case(session, user, number)
    pv = session.execute(select(ProcessVersion.process_id, ProcessVersion.name, ProcessVersion.version,
                                ProcessVersion.task_meta)
                         .where(ProcessVersion.id == case.process_version_id)).first()
    units = {u.id: u.name for u in session.scalars(select(OrgUnit).options(load_only(OrgUnit.id, OrgUnit.name))
                                                   .where(OrgUnit.id.in_([case.village_id, case.township_id,
                                                                          case.county_id])))}
    first_clerk = session.execute(select(User.username, User.display_name)
                                  .where(User.id == case.first_clerk_id)).first() if case.first_clerk_id else None
    tasks = case_tasks(session, case.id)
    events, actors = audit_events(session, case.id)
    pauses = session.scalars(select(Pause).where(Pause.case_id == case.id).order_by(Pause.id))
    cards = session.scalars(select(Card).where(Card.case_id == case.id).order_by(Card.id))
    timers = session.scalars(select(TimerRow).where(TimerRow.case_id == case.id).order_by(TimerRow.id))
    rating = session.execute(select(Rating.score, Rating.comment, Rating.at).where(Rating.case_id == case.id)).first()
    card_items = tuple(CardItem(c.id, c.color, c.subject, c.task_id, c.reason, c.issued_at, c.due_at, c.resolved_at,
                                c.responsible_clerk_id, c.assignee_id) for c in cards)
    explanations = explanations_of(session, case.id)
    return CaseDetail(
        number=case.number, service_code=case.service_code,
        process=ProcessRef(pv.process_id, pv.name, pv.version) if pv else None,
        applicant_name=case.applicant_name, status=case.status, outcome=case.outcome,
        village=units[case.village_id], township=units[case.township_id], county=units[case.county_id],
        first_clerk=first_clerk.username if first_clerk else None,
        first_clerk_name=first_clerk.display_name if first_clerk else None,
        created_at=case.created_at, updated_at=case.updated_at, closed_at=case.closed_at, version=case.version,
        accepted_at=case.accepted_at,
        sla=SlaInfo(case.legal_limit_workdays, case.legal_due_at, case.promised_limit_workdays,
                    case.promised_due_at, bool(case.due_estimated), case.warning_level, case.paused_at,
                    case.extension_workdays),
        pauses=tuple(PauseItem(p.kind, p.reason, p.started_at, p.ended_at,
                               {k: v for k, v in (p.left or {}).items() if k != "timers"}) for p in pauses),
        cards=card_items,
        tasks=tasks,
        timers=tuple(TimerItem(t.bpmn_id, t.due_at, t.state, t.fired_at, t.error) for t in timers),
        audit=timeline(events, actors),
        steps=case_steps(events, actors, tasks, (pv.task_meta if pv else None) or {}, units[case.village_id]),
        rating=RatingItem(rating.score, rating.comment, rating.at) if rating else None,
        work=case_work_of(session, case, user, tasks),
        supervisions=supervisions_of(session, case.id), explanations=explanations,
        oversight=oversight_of(session, case, user, tasks, card_items, explanations),
    )
