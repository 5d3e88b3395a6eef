"""便民集中服务日: on the 10th of each month (the next working day when the 10th is not one), every
village and township gets a digest of its overdue, due-soon and paused cases, stored and viewable; every
county and the city get a summary digest of the units right below them (`summary_digest`).

The digest is computed from the projections (case and task rows), one indexed query per kind, and
stored once per unit and date (running it twice changes nothing). A county's or the city's digest is
aggregate SQL, never a list of its cases: per township (per county, for the city) the board's numbers as
of the run — open, due soon, overdue, paused, open cards — with last month's completions and on-time rate
(`engine.reports.boards`, one statement), and the `MOST_OVERDUE` cases longest overdue (one bounded
statement). Each unit's digest is built in its own
transaction: one that fails becomes an incident of that unit (no case) and the others are still made; the
incident is retried with backoff (by the scheduler's sweep and by every run) until its digest is stored.
"""
from __future__ import annotations

import logging
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, and_, func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, aliased, load_only

from . import clock, incidents
from .db import read, transaction
from .models import Case, OrgUnit, ServiceDayDigest, TaskRow
from .reports import boards, scope
from .reports.boards import Counts
from .reports.measures import Measure, Month, case_predicate
from .reports.overdue import days_overdue
from .workdays import WorkCalendar, default_calendar

log = logging.getLogger(__name__)

DAY_OF_MONTH = 10
DUE_SOON_WORKDAYS = 3
#: the units that get a digest: a village and a township their cases, a county and the city a summary
DIGEST_LEVELS = ("city", "county", "township", "village")
SUMMARY_LEVELS = ("city", "county")
#: how many of the longest-overdue cases a summary digest lists
MOST_OVERDUE = 20
#: how many cases a village's or a township's digest lists per kind (overdue, due soon, paused) — the soonest
#: due first; its counts are all of them (a busy township holds thousands of overdue steps: the overdue report
#: lists them all, a digest stored every month need not)
LISTED = 200


def service_date(year: int, month: int, cal: WorkCalendar | None = None) -> date:
    """The service day of a month: the 10th, or the first working day after it."""
    return (cal or default_calendar()).first_workday_on_or_after(date(year, month, DAY_OF_MONTH)).date


def is_service_day(day: date, cal: WorkCalendar | None = None) -> bool:
    return service_date(day.year, day.month, cal) == day


def _case_entry(case: Case, village: str, reason: str, due: datetime | None) -> dict[str, Any]:
    return {"number": case.number, "service_code": case.service_code, "applicant_name": case.applicant_name,
            "village": village, "reason": reason,
            "due_at": clock.local(due).isoformat(timespec="minutes") if due else None,
            "warning_level": case.warning_level}


#: what a digest shows of a case: never its stored workflow (kilobytes a row, read for every open case)
_DIGEST_COLUMNS = load_only(Case.id, Case.number, Case.service_code, Case.applicant_name, Case.promised_due_at,
                            Case.paused_at, Case.warning_level, raiseload=True)


def build_digest(session: Session, unit: OrgUnit, now: datetime, cal: WorkCalendar | None = None) -> dict[str, Any]:
    """Overdue, due-soon and paused open cases of a village (its cases) or a township (its villages' cases) —
    each kind's first LISTED (soonest due first; `counts` all of them); a county's or the city's summary
    (`summary_digest`)."""
    cal = cal or default_calendar()
    if unit.level in SUMMARY_LEVELS:
        return summary_digest(session, unit, now, cal)
    soon = cal.add_workdays(clock.local(now).date(), DUE_SOON_WORKDAYS).end_instant
    column = Case.village_id if unit.level == "village" else Case.township_id
    village = OrgUnit.__table__.alias("village")
    base = (select(Case, village.c.name).options(_DIGEST_COLUMNS).join(village, village.c.id == Case.village_id)
            .where(column == unit.id, Case.status == "open"))
    due = Case.promised_due_at
    late = base.where(Case.paused_at.is_(None), due <= now)
    overdue = [_case_entry(c, v, "超期", c.promised_due_at) for c, v in session.execute(
        late.order_by(due, Case.id).limit(LISTED))]
    step_late = (select(Case, village.c.name, TaskRow.name, TaskRow.due_at).options(_DIGEST_COLUMNS)
                 .join(village, village.c.id == Case.village_id)
                 .join(TaskRow, and_(TaskRow.case_id == Case.id, TaskRow.state == "ready"))
                 .where(column == unit.id, Case.status == "open", Case.paused_at.is_(None), TaskRow.due_at <= now,
                        or_(due.is_(None), due > now)))
    if len(overdue) < LISTED:  # then the cases with an overdue step (their own due still ahead or none)
        overdue += [_case_entry(c, v, f"环节「{t}」超时", d) for c, v, t, d in session.execute(
            step_late.order_by(TaskRow.due_at, TaskRow.id).limit(LISTED - len(overdue)))]
    soon_q = base.where(Case.paused_at.is_(None), due > now, due <= soon)
    due_soon = [_case_entry(c, v, "即将到期", c.promised_due_at) for c, v in session.execute(
        soon_q.order_by(due, Case.id).limit(LISTED))]
    paused_q = base.where(Case.paused_at.is_not(None))
    paused = [_case_entry(c, v, "暂停计时", None)
              | {"paused_at": clock.local(c.paused_at).isoformat(timespec="minutes")}
              for c, v in session.execute(paused_q.order_by(Case.paused_at, Case.id).limit(LISTED))]

    def total(listed: list[Any], *queries: Any) -> int:  # counted only when a list was cut
        if len(listed) < LISTED:
            return len(listed)
        return sum(session.scalar(select(func.count()).select_from(q.order_by(None).subquery())) or 0
                   for q in queries)

    return {"unit": {"code": unit.code, "name": unit.name, "level": unit.level},
            "overdue": overdue, "due_soon": due_soon, "paused": paused, "listed": LISTED,
            "counts": {"overdue": total(overdue, late, step_late), "due_soon": total(due_soon, soon_q),
                       "paused": total(paused, paused_q)}}


def _counts_entry(counts: Counts) -> dict[str, Any]:
    return {k: getattr(counts, k) for k in ("open", "due_soon", "overdue", "paused", "completed", "on_time", "late",
                                            "on_time_rate", "average_workdays", "cards")}


def summary_digest(session: Session, unit: OrgUnit, now: datetime, cal: WorkCalendar | None = None) -> dict[str, Any]:
    """A county's or the city's digest: per unit right below it (its townships; the city's counties) the
    board's numbers as of `now` — open, due soon, overdue, paused, open cards — and those completed in the
    month before `now`'s with their on-time rate (the board's predicates, so the digest agrees with the board
    of that morning), their totals, and the `MOST_OVERDUE` cases longest overdue (the board's overdue:
    clock running, past the promised due), oldest due first. Two statements, whatever the unit's size."""
    cal = cal or default_calendar()
    month = Month.of(now).previous()
    sub = scope.Subtree(scope.ReportUnit(unit.id, unit.code, unit.name, unit.level, unit.path), ())
    rows = boards.rows_by(session, sub, month, "unit")
    total = Counts.of({})
    for row in rows:
        total = total.plus(row.counts)
    child = sub.child_column()
    village, below = aliased(OrgUnit, name="village"), aliased(OrgUnit, name="below")
    due = func.coalesce(Case.promised_due_at, Case.legal_due_at)
    longest = session.execute(
        select(Case.number, Case.service_code, Case.applicant_name, Case.warning_level, due.label("due_at"),
               village.name.label("village"), below.name.label("below"))
        .select_from(Case).join(village, village.id == Case.village_id).join(below, below.id == child)
        .where(case_predicate(Measure.OVERDUE, month), sub.condition())
        .order_by(due, Case.id).limit(MOST_OVERDUE)).all()
    return {"unit": {"code": unit.code, "name": unit.name, "level": unit.level}, "kind": "summary",
            "month": month.code,
            "children": [{"code": r.key, "name": r.name, **_counts_entry(r.counts)} for r in rows],
            "totals": _counts_entry(total),
            "most_overdue": [{"number": r.number, "service_code": r.service_code, "applicant_name": r.applicant_name,
                              "village": r.village, "unit": r.below, "reason": "超期",
                              "due_at": clock.local(r.due_at).isoformat(timespec="minutes"),
                              "warning_level": r.warning_level, "days_overdue": days_overdue(r.due_at, now, cal)}
                             for r in longest],
            "most_overdue_limit": MOST_OVERDUE,
            "counts": {"overdue": total.overdue, "due_soon": total.due_soon, "paused": total.paused}}


def run(engine: Engine, day: date | None = None, now: datetime | None = None, force: bool = False) -> dict[str, Any]:
    """Produce the digests of `day` (default today) if it is the service day (or `force`) — every village,
    township, county and the city —, one unit per transaction; first retry the failed units whose retry is
    due. A unit with an open incident waits for its retry (`held`: how many); `failed` lists the units that
    failed now. Both keys appear only when there is something to say, so the result of a clean run is what
    it always was."""
    now = now or clock.now()
    day = day or clock.local(now).date()
    failed = retry_due(engine, now)
    if not force and not is_service_day(day):
        return _result(day, False, 0, failed, 0)
    with read(engine) as session:
        done = set(session.scalars(select(ServiceDayDigest.unit_id).where(ServiceDayDigest.service_date == day)))
        held = incidents.units_with_open_incident(session, "service_day") - done
        units = [u for u in session.scalars(select(OrgUnit.id).where(OrgUnit.level.in_(DIGEST_LEVELS))
                                            .order_by(OrgUnit.id)) if u not in done and u not in held]
    made = 0
    for unit_id in units:
        try:
            with transaction(engine) as session:
                made += _store_digest(session, unit_id, day, now)
        except Exception as exc:
            failed.append(_failed(engine, unit_id, day, exc, now))
    return _result(day, True, made, failed, len(held))


def _result(day: date, is_day: bool, made: int, failed: list[dict[str, Any]], held: int) -> dict[str, Any]:
    out: dict[str, Any] = {"date": day.isoformat(), "service_day": is_day, "digests": made}
    if failed:
        out["failed"] = failed
    if held:
        out["held"] = held
    return out


def _store_digest(session: Session, unit_id: int, day: date, now: datetime, incident_id: int | None = None) -> int:
    """Store one unit's digest unless another run did (then 0); the retry of an incident resolves it."""
    made = 0
    exists = select(ServiceDayDigest.id).where(ServiceDayDigest.unit_id == unit_id,
                                               ServiceDayDigest.service_date == day)
    if session.scalar(exists) is None:
        unit = session.get_one(OrgUnit, unit_id)
        content = build_digest(session, unit, now)
        try:
            with session.begin_nested():
                session.add(ServiceDayDigest(unit_id=unit_id, service_date=day, generated_at=now, content=content))
            made = 1
        except IntegrityError:  # a run on another node stored it first
            if session.scalar(exists) is None:
                raise
    if incident_id is not None:
        incidents.resolve_automatically(session, incident_id, None, now, f"the digest of {day.isoformat()} was stored")
    return made


def _failed(engine: Engine, unit_id: int, day: date, exc: Exception, now: datetime) -> dict[str, Any]:
    etype, message = incidents.describe(exc)
    entry: dict[str, Any] = {"unit_id": unit_id, "date": day.isoformat(), "error": f"{etype}: {message}",
                             "incident_id": None}
    try:
        entry["incident_id"] = incidents.record(engine, kind="service_day", exc=exc, now=now, unit_id=unit_id,
                                                element=f"digest:{day.isoformat()}")
    except Exception:
        log.exception("the service-day failure of unit %s could not be recorded as an incident", unit_id)
    return entry


def retry_due(engine: Engine, now: datetime | None = None) -> list[dict[str, Any]]:
    """Retry each unit whose service-day incident is due (its digest of the date it failed for, as of
    now); returns the ones that failed again."""
    now = now or clock.now()
    failed: list[dict[str, Any]] = []
    skip: set[int] = set()
    while True:
        incident = None
        try:
            with transaction(engine) as session:
                incident = incidents.next_due(session, "service_day", now, skip)
                if incident is None:
                    return failed
                skip.add(incident["id"])
                _store_digest(session, incident["unit_id"], _incident_day(incident, now), now, incident["id"])
        except Exception as exc:
            if incident is None:
                raise
            failed.append(_failed(engine, incident["unit_id"], _incident_day(incident, now), exc, now))


def _incident_day(incident: Any, now: datetime) -> date:
    """The service date an incident was recorded for (its element, digest:<date>); today if unreadable."""
    try:
        return date.fromisoformat((incident["element"] or "").removeprefix("digest:"))
    except ValueError:
        return clock.local(now).date()


def get_digest(session: Session, unit_code: str, day: date | None = None) -> dict[str, Any]:
    """The stored digest of a unit (the latest, or of a given service day)."""
    from .errors import NotFound
    stmt = (select(ServiceDayDigest).join(OrgUnit, OrgUnit.id == ServiceDayDigest.unit_id)
            .where(OrgUnit.code == unit_code).order_by(ServiceDayDigest.service_date.desc()).limit(1))
    if day:
        stmt = stmt.where(ServiceDayDigest.service_date == day)
    digest = session.scalar(stmt)
    if digest is None:
        if day:
            raise NotFound(f"no service-day digest for {unit_code} on {day}", reason="service_day.not_found",
                           unit=unit_code, day=day.isoformat())
        raise NotFound(f"no service-day digest for {unit_code}", reason="service_day.none_yet", unit=unit_code)
    return {"service_date": digest.service_date.isoformat(),
            "generated_at": clock.local(digest.generated_at).isoformat(timespec="minutes"), **digest.content}


def next_service_day(after: date, cal: WorkCalendar | None = None) -> date:
    candidate = service_date(after.year, after.month, cal)
    if candidate >= after:
        return candidate
    first_next = (after.replace(day=1) + timedelta(days=32)).replace(day=1)
    return service_date(first_next.year, first_next.month, cal)
