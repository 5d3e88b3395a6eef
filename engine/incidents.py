"""Incidents: one failure stays one failure (DESIGN.md invariant 8).

When the sweep cannot fire a case's timers or check its warnings, or the service-day job cannot build a
unit's digest, the failed transaction is rolled back and the failure is recorded here in a transaction of
its own: what failed (the case, or the unit of a job; the kind; the element), the error, when first and
last, how many retries failed and when the next one is due (exponential backoff with a cap).

Meanwhile the failing work is *parked* so the sweep never meets it again before its retry is due, at no
cost to the sweep's hot query: a case's armed timers leave the armed-timer index (state ``failed`` for the
ones that were due, ``held`` for the later ones); a case's warning checks are cleared from their indexes.
A retry that is due runs the work again in one transaction (re-arming from the workflow's own state,
which is the truth) and, if it succeeds, resolves the incident in that same transaction. A person may
retry at once (the backoff is cleared) or resolve with a note (the parked work goes back to the sweep).
Every change is audited.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, RowMapping, and_, insert, literal_column, or_, select, true, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, aliased

from . import clock, forms, policy, settings
from .bpmn.failures import locate
from .cases import audit, parking
from .db import is_sqlite, transaction
from .errors import Conflict, InvalidInput, NotFound
from .models import (
    T_CASE,
    T_INC,
    T_TASK,
    T_TIMER,
    Case,
    Incident,
    OrgUnit,
    TimerRow,
    User,
)
from .queries.scope import Who, case_scope, who

log = logging.getLogger(__name__)

KINDS = ("timer", "warning", "service_day")
STATUSES = ("open", "resolved")
MESSAGE_MAX, TYPE_MAX, ELEMENT_MAX, NOTE_MAX = 1000, 100, 100, 500
DEFAULT_RETRY_SECONDS = settings.Settings().incident_retry_seconds  # 60
DEFAULT_RETRY_MAX_SECONDS = settings.Settings().incident_retry_max_seconds  # 6 h


class NoProgress(RuntimeError):
    """The work ran without error but left the case where the sweep would pick it again at once (e.g. a
    timer row armed and due that the workflow does not fire): left alone, the sweep would spin on it."""


# ------------------------------------------------------------------------------------------- backoff
@dataclass(frozen=True)
class Backoff:
    first_seconds: int
    max_seconds: int

    def delay(self, retry_count: int) -> timedelta:
        """first × 2^retries, capped: 1 min, 2, 4, … 6 h by default."""
        return timedelta(seconds=min(self.max_seconds, self.first_seconds * 2 ** min(retry_count, 40)))


def backoff() -> Backoff:
    """The retry policy of the settings: $YICUN_INCIDENT_RETRY_SECONDS (first retry, default 60) and
    $YICUN_INCIDENT_RETRY_MAX_SECONDS (cap, default 21600 = 6 h). `yicun` checks the settings before any
    command runs; should they be bad all the same (a process that never checked them), the error is logged
    and the defaults used: a bad setting must not stop the very code that records failures."""
    try:
        current = settings.get()
    except settings.SettingError as exc:
        log.error("%s; retrying incidents on the default schedule", exc)
        current = settings.Settings()
    first = current.incident_retry_seconds
    return Backoff(first, max(first, current.incident_retry_max_seconds))


# ------------------------------------------------------------------------------------------- describing
def _clean(text: str, limit: int) -> str:
    """Bounded and storable: PostgreSQL refuses NUL, and control characters garble a terminal."""
    text = "".join(ch if ch in "\n\t" or ch >= " " else " " for ch in text.replace("\x00", ""))
    return text if len(text) <= limit else text[:limit - 1] + "…"


def describe(exc: BaseException) -> tuple[str, str]:
    """(error type, bounded message) of an exception; never raises, whatever the exception holds."""
    etype = getattr(exc, "cause_type", None) or type(exc).__name__  # ProcessCrashed: what really broke
    if not isinstance(etype, str):
        etype = type(exc).__name__
    try:
        message = str(exc)
    except Exception:  # a broken __str__ must not stop the recording of the failure
        message = ""
    return _clean(etype, TYPE_MAX), _clean(message or etype, MESSAGE_MAX)


def element_of(exc: BaseException) -> str | None:
    """The BPMN id of the element to blame (`bpmn.failures.locate`)."""
    element = locate(exc).element_id
    return _clean(element, ELEMENT_MAX) if element else None


# ------------------------------------------------------------------------------------------- recording
def record(engine: Engine, *, kind: str, exc: BaseException, now: datetime, case_id: int | None = None,
           unit_id: int | None = None, element: str | None = None) -> int:
    """Record a failure in a transaction of its own (the failed one has rolled back) and park the work.

    The first failure opens an incident whose retry is due after the first backoff step. A failure of a
    retry that was due counts one more retry and doubles the wait; a failure met before the retry was due
    (another sweeper, a new timer of the same case) updates the error but not the schedule.
    Returns the incident id.
    """
    if kind not in KINDS:
        raise ValueError(f"unknown incident kind {kind!r}")
    etype, message = describe(exc)
    element = element_of(exc) or element
    for attempt in (1, 2):
        try:
            with transaction(engine) as session:
                return _record(session, kind, etype, message, now, case_id, unit_id, element)
        except IntegrityError:  # two sweepers opened it at once (PostgreSQL): the loser updates it
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


def record_in(session: Session, *, kind: str, exc: BaseException, now: datetime, case_id: int,
              element: str | None = None) -> int:
    """Record a case's failure inside the caller's transaction, which still holds the case row lock (the
    failed work was rolled back to a savepoint): no other sweeper can pick the case up and fail on it
    again between the rollback and the parking of its timers."""
    if kind not in KINDS:
        raise ValueError(f"unknown incident kind {kind!r}")
    etype, message = describe(exc)
    return _record(session, kind, etype, message, now, case_id, None, element_of(exc) or element)


def _record(session: Session, kind: str, etype: str, message: str, now: datetime, case_id: int | None,
            unit_id: int | None, element: str | None) -> int:
    if case_id is not None:
        unit_id = session.execute(_lock(session, select(T_CASE.c.village_id).where(T_CASE.c.id == case_id),
                                        of=T_CASE)).scalar_one()
        parked = parking.PARK[kind](session, case_id, now, _clean(f"{etype}: {message}", MESSAGE_MAX))
        element = element or parked
        match = T_INC.c.case_id == case_id
    else:
        match = and_(T_INC.c.case_id.is_(None),
                     T_INC.c.unit_id.is_(None) if unit_id is None else T_INC.c.unit_id == unit_id)
    found = session.execute(_lock(session, select(T_INC).where(match, T_INC.c.kind == kind,
                                                               T_INC.c.status == "open"), of=T_INC)
                            ).mappings().first()
    policy = backoff()
    if found is None:
        incident_id = session.execute(insert(T_INC).returning(T_INC.c.id).values(
            case_id=case_id, unit_id=unit_id, kind=kind, element=element, error_type=etype, error_message=message,
            first_at=now, last_at=now, retry_count=0, next_retry_at=now + policy.delay(0), status="open",
            resolved_by_id=None, resolved_at=None, resolved_note=None)).scalar_one()
        _audit(session, incident_id, case_id, None, now, "incident.opened", None, "open",
               kind=kind, element=element, error=f"{etype}: {message}")
        log.error("incident %s opened: %s of %s failed: %s: %s", incident_id, kind,
                  f"case {case_id}" if case_id else f"unit {unit_id}", etype, message)
        return incident_id
    due = found["next_retry_at"] is None or found["next_retry_at"] <= now
    retries = found["retry_count"] + (1 if due else 0)
    next_at = now + policy.delay(retries) if due else found["next_retry_at"]
    session.execute(update(T_INC).where(T_INC.c.id == found["id"]).values(
        last_at=now, error_type=etype, error_message=message, element=element or found["element"],
        retry_count=retries, next_retry_at=next_at))
    _audit(session, found["id"], case_id, None, now, "incident.failed", str(found["retry_count"]), str(retries),
           kind=kind, error=f"{etype}: {message}", next_retry_at=next_at.isoformat())
    log.error("incident %s: %s failed again (%s retries failed; next at %s): %s: %s", found["id"], kind,
              retries, next_at.isoformat(), etype, message)
    return found["id"]


def _lock(session: Session, stmt: Any, of: Any) -> Any:
    """Wait for the row lock on PostgreSQL (a failure is recorded after whoever holds the case is done);
    SQLite's write transaction already serialises."""
    return stmt if is_sqlite(session) else stmt.with_for_update(of=of)


def _audit(session: Session, incident_id: int, case_id: int | None, actor_id: int | None, now: datetime,
           action: str, old: str | None, new: str | None, **details: Any) -> None:
    audit.write(session, [dict(case_id=case_id, actor_id=actor_id, at=now, action=action,
                               details={"incident_id": incident_id, **details},
                               old_value=_clean(old, audit.VALUE_MAX) if old else None,
                               new_value=_clean(new, audit.VALUE_MAX) if new else None)])


def require_timer_progress(session: Session, case_id: int, now: datetime) -> None:
    """After a firing that fired nothing: a timer row still armed and due would bring the sweep straight
    back to this case, forever. That is a failure of the case, not a reason to spin."""
    stuck = session.scalar(select(T_TIMER.c.bpmn_id).where(T_TIMER.c.case_id == case_id, T_TIMER.c.state == "armed",
                                                           T_TIMER.c.due_at <= now).limit(1))
    if stuck is not None:
        raise NoProgress(f"timer {stuck} is due but its workflow does not fire it")


def require_warning_progress(session: Session, case_id: int, now: datetime) -> None:
    """After a warning check: the case must not still be due for one (the sweep would spin on it)."""
    case_due = session.scalar(select(T_CASE.c.id).where(T_CASE.c.id == case_id, T_CASE.c.status == "open",
                                                        T_CASE.c.paused_at.is_(None),
                                                        T_CASE.c.warning_check_at <= now))
    step_due = session.scalar(select(T_TASK.c.bpmn_id).where(T_TASK.c.case_id == case_id, T_TASK.c.state == "ready",
                                                             T_TASK.c.warning_check_at <= now).limit(1))
    if case_due is not None or step_due is not None:
        raise NoProgress(f"the warning check of case {case_id} does not move past {now.isoformat()}"
                         + (f" (step {step_due})" if step_due else ""))


# ------------------------------------------------------------------------------------------- retries
def next_due(session: Session, kind: str, now: datetime, skip: set[int]) -> RowMapping | None:
    """The open incident of `kind` whose retry is due first, locked (with its case) SKIP LOCKED on
    PostgreSQL so sweepers share the retries. A range scan of the partial index over open incidents: it
    does not grow with resolved incidents, nor with open ones that are not due."""
    if kind not in KINDS:
        raise ValueError(f"unknown incident kind {kind!r}")
    stmt = (select(T_INC).where(T_INC.c.status == literal_column("'open'"), T_INC.c.kind == literal_column(f"'{kind}'"),
                                T_INC.c.next_retry_at <= now)
            .order_by(T_INC.c.next_retry_at).limit(1))
    if skip:
        stmt = stmt.where(T_INC.c.id.not_in(skip))
    if not is_sqlite(session):
        if kind == "service_day":
            stmt = stmt.with_for_update(of=T_INC, skip_locked=True)
        else:
            stmt = stmt.join(T_CASE, T_CASE.c.id == T_INC.c.case_id).with_for_update(of=(T_INC, T_CASE),
                                                                                    skip_locked=True)
    return session.execute(stmt).mappings().first()


def resolve_automatically(session: Session, incident_id: int, case_id: int | None, now: datetime,
                          why: str = "the retry succeeded") -> None:
    """The retry worked: close the incident in the retry's own transaction."""
    session.execute(update(T_INC).where(T_INC.c.id == incident_id, T_INC.c.status == "open").values(
        status="resolved", resolved_at=now, resolved_by_id=None, resolved_note=why, next_retry_at=None))
    _audit(session, incident_id, case_id, None, now, "incident.resolved", "open", "resolved", note=why,
           automatic=True)
    log.info("incident %s resolved: %s", incident_id, why)


def units_with_open_incident(session: Session, kind: str) -> set[int]:
    """Units whose job incident of `kind` is open (they wait for its retry)."""
    return set(session.scalars(select(T_INC.c.unit_id).where(T_INC.c.status == literal_column("'open'"),
                                                             T_INC.c.kind == kind, T_INC.c.case_id.is_(None),
                                                             T_INC.c.unit_id.is_not(None))))


# ------------------------------------------------------------------------------------------- people
def _scope(user: Who) -> Any:
    """Incidents a user may see (`policy.may_see_incidents`): the operator and admins all; a supervisor
    those of the cases (and of the job units) in their subtree, as `queries.case_scope` draws it."""
    actor = who(user)
    policy.require(policy.may_see_incidents(actor), "incident.see",
                   f"{actor.username} may not see incidents (supervisors and admins may)")
    if policy.sees_all(actor):
        return true()
    unit = aliased(OrgUnit)
    in_subtree = select(unit.id).where(unit.id == Incident.unit_id, unit.path.startswith(actor.unit_path)).exists()
    return or_(and_(Incident.case_id.is_not(None), case_scope(actor)),
               and_(Incident.case_id.is_(None), in_subtree))


def _rows(session: Session, user: Who, *where: Any, limit: int | None = None) -> list[dict[str, Any]]:
    unit, resolver = aliased(OrgUnit), aliased(User)
    stmt = (select(Incident, Case.number, unit.code, unit.name, resolver.username)
            .outerjoin(Case, Case.id == Incident.case_id)
            .outerjoin(unit, unit.id == Incident.unit_id)
            .outerjoin(resolver, resolver.id == Incident.resolved_by_id)
            .where(_scope(user), *where).order_by(Incident.id.desc())
            .execution_options(populate_existing=True))  # after a Core update in the same session
    if limit is not None:
        stmt = stmt.limit(limit)
    return [_dict(i, number, code, name, by) for i, number, code, name, by in session.execute(stmt)]


def _iso(value: datetime | None) -> str | None:
    return clock.local(value).isoformat(timespec="seconds") if value is not None else None


def _dict(i: Incident, number: str | None, unit_code: str | None, unit_name: str | None,
          resolved_by: str | None) -> dict[str, Any]:
    return {"id": i.id, "status": i.status, "kind": i.kind, "case_number": number, "unit_code": unit_code,
            "unit": unit_name, "element": i.element, "error_type": i.error_type, "error_message": i.error_message,
            "first_at": _iso(i.first_at), "last_at": _iso(i.last_at), "retry_count": i.retry_count,
            "next_retry_at": _iso(i.next_retry_at), "resolved_by": resolved_by if i.resolved_at else None,
            "resolved_at": _iso(i.resolved_at), "resolved_note": i.resolved_note}


def list_incidents(session: Session, user: Who = None, status: str | None = "open",
                   limit: int = 200) -> list[dict[str, Any]]:
    """The incidents `user` may see, newest first; `status` None (or "all") for every one."""
    if status == "all":
        status = None
    if status is not None and status not in STATUSES:
        raise InvalidInput(f"status must be one of {', '.join(STATUSES)} or all, not {status!r}",
                           reason="incident.status_invalid", status=status)
    if not 1 <= limit <= 10_000:
        raise InvalidInput(f"limit must be between 1 and 10000, not {limit}", reason="page.limit_invalid",
                           limit=limit, max_limit=10_000)
    return _rows(session, user, *([Incident.status == status] if status else []), limit=limit)


def show(session: Session, incident_id: int, user: Who = None) -> dict[str, Any]:
    """One incident, with the case's timers parked behind it; one outside the user's subtree is not found."""
    rows = _rows(session, user, Incident.id == incident_id)
    if not rows:
        raise NotFound(f"no incident {incident_id}", reason="incident.not_found", incident_id=incident_id)
    out = rows[0]
    case_id = session.scalar(select(Incident.case_id).where(Incident.id == incident_id))
    out["parked_timers"] = [
        {"bpmn_id": t.bpmn_id, "state": t.state, "due_at": _iso(t.due_at), "error": t.error}
        for t in session.scalars(select(TimerRow).where(TimerRow.case_id == case_id, TimerRow.state.in_(parking.PARKED))
                                 .order_by(TimerRow.due_at, TimerRow.id))] if case_id else []
    return out


def _locked_for_action(session: Session, incident_id: int, user: Who) -> Incident:
    visible = show(session, incident_id, user)  # scope first: a hidden incident is simply not found
    if visible["status"] != "open":
        raise Conflict(f"incident {incident_id} is already resolved", reason="incident.already_resolved",
                       incident_id=incident_id)
    stmt = select(Incident).where(Incident.id == incident_id).execution_options(populate_existing=True)
    incident = session.scalar(stmt if is_sqlite(session) else stmt.with_for_update())
    if incident is None or incident.status != "open":
        raise Conflict(f"incident {incident_id} was resolved meanwhile", reason="incident.already_resolved",
                       incident_id=incident_id)
    return incident


def retry(session: Session, incident_id: int, user: Who = None,
          now: datetime | None = None) -> dict[str, Any]:
    """Clear the backoff: the next sweep (or service-day run) tries the work again."""
    now = now or clock.now()
    incident = _locked_for_action(session, incident_id, user)
    before = incident.next_retry_at
    session.execute(update(T_INC).where(T_INC.c.id == incident_id).values(next_retry_at=now))
    actor = who(user)
    _audit(session, incident_id, incident.case_id, actor.id, now, "incident.retry",
           _iso(before), _iso(now), kind=incident.kind, **actor.audit_details)
    return show(session, incident_id, user)


def resolve(session: Session, incident_id: int, user: Who, note: str,
            now: datetime | None = None) -> dict[str, Any]:
    """A person closes the incident with a note (what was done). The parked work goes back to the sweep:
    if it still fails, a new incident opens — nothing is left silently stopped."""
    now = now or clock.now()
    note = forms.clean_text(note, "a note (what was done about it)", NOTE_MAX)
    incident = _locked_for_action(session, incident_id, user)
    if incident.case_id is not None and incident.kind == "timer":
        parking.rearm_timers(session, incident.case_id, strict=False)
    elif incident.case_id is not None and incident.kind == "warning":
        parking.recheck_warnings(session, incident.case_id, now)
    actor = who(user)
    session.execute(update(T_INC).where(T_INC.c.id == incident_id).values(
        status="resolved", resolved_at=now, resolved_by_id=actor.id, resolved_note=note, next_retry_at=None))
    _audit(session, incident_id, incident.case_id, actor.id, now, "incident.resolved", "open",
           "resolved", kind=incident.kind, note=note, **actor.audit_details)
    return show(session, incident_id, user)
