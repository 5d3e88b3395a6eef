"""A case's dues counted again on today's working-day calendar — after an admin publishes a year's holiday
schedule (`engine.calendar_admin`), the dues that were estimated Monday–Friday for that year become exact.

How: the case's deadlines are **replayed** on the current calendar with the engine's own moves, in the
order they happened — the dues of the acceptance (`deadlines.case_dues`), each pause taking what was left
and giving it back on resume (`clock_stops.dues_left` / `dues_after` / `time_left`, the same
shorter-than-a-day rule), the extension (`deadlines.shift_workdays`) — and each armed `workdays(N)`
timer the same way from the instant it was armed. Nothing is shifted by a difference: a replay gives what
the dues would be had the calendar known the year all along, whatever was published before or after the
case was accepted, and running it twice changes nothing (the publish page, `yicun calendar recompute` and
a retry after a failure may all meet the same case). Calendar-time timers (ISO 8601) are not touched.

Moves are the pause machinery's: timers and the steps' dues through `clock_stops.retime`, the case row in
the one version-checked save; a stopped clock keeps its dues as they stood and gets its `left` counts
replayed. Every case that changes is audited as `case.dues_recomputed` with old → new.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import and_, exists, func, or_, select, update
from sqlalchemy.orm import Session

from .. import clock, deadlines, policy
from ..bpmn import TimerInfo
from ..models import T_AUDIT, T_CASE, T_PAUSE, T_TIMER
from ..policy import Actor
from ..workdays import WorkCalendar, default_calendar
from . import clock_stops, store, warnings

KEYS = ("legal", "promised")
#: the most cases one call lists (`affected_cases`)
LIST_MAX = 1000


@dataclass(frozen=True)
class Recomputed:
    """What recounting one case did: `changed` False when its dues were already right (nothing written)."""
    case_number: str
    changed: bool
    due_estimated: bool
    changes: dict[str, list[str | None]] = field(default_factory=dict)  # what → [old, new] (local ISO)


def year_bounds(year: int) -> tuple[datetime, datetime]:
    """The first instant of `year` and of the next, Asia/Shanghai (as aware instants)."""
    return (datetime(year, 1, 1, tzinfo=clock.SHANGHAI), datetime(year + 1, 1, 1, tzinfo=clock.SHANGHAI))


def affected_cases(session: Session, year: int, *, after_id: int = 0, limit: int = 200) -> list[tuple[int, str]]:
    """(id, number) of open cases whose dues may count days of `year`, in id order after `after_id`:
    accepted before `year` ended, and estimated or with a due (legal, promised, an armed `workdays()`
    timer) in `year` or later. A paused case's dues as they stood count too."""
    if not 1 <= limit <= LIST_MAX:
        raise ValueError(f"limit 1–{LIST_MAX}")
    first, after = year_bounds(year)
    timer_in_year = exists().where(T_TIMER.c.case_id == T_CASE.c.id, T_TIMER.c.state == "armed",
                                   T_TIMER.c.workdays.is_not(None), T_TIMER.c.due_at >= first)
    stmt = (select(T_CASE.c.id, T_CASE.c.number)
            .where(T_CASE.c.status == "open", T_CASE.c.id > after_id,
                   func.coalesce(T_CASE.c.accepted_at, T_CASE.c.created_at) < after,
                   or_(T_CASE.c.due_estimated.is_(True), T_CASE.c.legal_due_at >= first,
                       T_CASE.c.promised_due_at >= first, timer_in_year))
            .order_by(T_CASE.c.id).limit(limit))
    return [(row.id, row.number) for row in store.conn(session).execute(stmt)]


def recompute_case(session: Session, case_number: str, actor: Actor, now: datetime | None = None, *,
                   year: int | None = None) -> Recomputed:
    """Count case `case_number`'s dues again on the current calendar (the caller's transaction: the case
    row is locked; `year` is the published year that asked for it, for the audit trail). An admin or the
    operator (`policy.may_administer_calendar`); a closed case is left alone."""
    policy.require(policy.may_administer_calendar(actor), "calendar.administer",
                   "只有系统管理员可以发布节假日安排、重算期限 / only administrators may publish holiday schedules "
                   "and recount due dates")
    now = now or clock.now()
    case = store.case_by_number(session, case_number)
    if case["status"] != "open":
        return Recomputed(case["number"], False, bool(case["due_estimated"]))
    cal = default_calendar()
    loaded = store.restore(session, case)
    conn = store.conn(session)
    pauses = conn.execute(select(T_PAUSE).where(T_PAUSE.c.case_id == case["id"])
                          .order_by(T_PAUSE.c.started_at, T_PAUSE.c.id)).mappings().all()
    extended_at = conn.execute(select(func.min(T_AUDIT.c.at)).where(
        and_(T_AUDIT.c.case_id == case["id"], T_AUDIT.c.action == "case.extended"))).scalar()
    extension = (extended_at, case["extension_workdays"]) if case["extension_workdays"] else None
    start = case["accepted_at"] or case["created_at"]

    dues, dues_left = replay_dues(cal, case, start, pauses, extension)
    armed_at = dict(conn.execute(select(T_TIMER.c.spiff_task_id, T_TIMER.c.created_at).where(
        T_TIMER.c.case_id == case["id"], T_TIMER.c.state.in_(("armed", "paused")))).tuples().all())
    moves: dict[str, datetime | None] = {}
    timers_left: dict[str, int] = {}
    changes: dict[str, list[str | None]] = {}
    latest = [d for d in dues.values() if d is not None]
    for tid, info in loaded.instance.armed_timers().items():
        if info.workdays is None or tid not in armed_at:
            continue  # calendar time is not counted in working days
        due, left = replay_timer(cal, tid, info.workdays, armed_at[tid], pauses, extension)
        if due is None:  # held by the running pause: what it has left is replayed
            timers_left[tid] = left
            continue
        latest.append(due)
        if not info.paused and due != info.due:
            moves[tid] = due
            changes[f"timer:{info.bpmn_id}"] = [store.iso_or_none(info.due), store.iso_or_none(due)]
    estimated = any(not cal.known_year(y) for y in _years(start, latest))

    columns: dict[str, Any] = {}
    for key in KEYS:
        column = f"{key}_due_at"
        if dues[column] != case[column]:
            columns[column] = dues[column]
            changes[key] = [store.iso_or_none(case[column]), store.iso_or_none(dues[column])]
    if estimated != bool(case["due_estimated"]):
        columns["due_estimated"] = estimated
        changes["estimated"] = [str(bool(case["due_estimated"])).lower(), str(estimated).lower()]
    pause = next((p for p in pauses if p["ended_at"] is None), None)
    new_left = _left_replayed(pause, dues_left, timers_left)
    if new_left is not None and pause is not None:
        changes["left"] = [_left_text(pause["left"]), _left_text(new_left)]
    if not changes:
        return Recomputed(case["number"], False, estimated)

    if moves:
        clock_stops.retime(session, loaded.instance, case["id"], moves, now)
    if new_left is not None and pause is not None:
        conn.execute(update(T_PAUSE).where(T_PAUSE.c.id == pause["id"]).values(left=new_left))
    if case["paused_at"] is None:
        columns["warning_check_at"] = now
    store.save_instance(session, loaded, now, **columns)
    warnings.evaluate_case(session, case["id"], now)
    old_due = case["promised_due_at"] or case["legal_due_at"]
    new_due = dues["promised_due_at"] or dues["legal_due_at"]
    store.write_audit(session, [dict(
        case_id=case["id"], actor_id=actor.id, at=now, action="case.dues_recomputed",
        details={"year": year, "changes": changes, "estimated": estimated, **actor.audit_details},
        old_value=store.iso_or_none(old_due), new_value=store.iso_or_none(new_due))])
    return Recomputed(case["number"], True, estimated, changes)


# ------------------------------------------------------------------------------------------- the replay
#: the extension a case got: when (None: its audit row is missing — applied after every pause) and how long
Extension = tuple[datetime | None, int] | None


def replay_dues(cal: WorkCalendar, case: Mapping[str, Any], start: datetime, pauses: Sequence[Mapping[str, Any]],
                extension: Extension) -> tuple[dict[str, datetime | None], dict[str, int] | None]:
    """The case's legal and promised dues replayed on `cal`: acceptance, then each pause and the extension
    in the order they happened. With a pause still running: the dues as they stood when it began, and
    what it keeps of each (else None)."""
    sla = deadlines.case_dues({"legalLimitWorkdays": case["legal_limit_workdays"],
                               "promisedLimitWorkdays": case["promised_limit_workdays"]}, start, cal)
    dues: dict[str, datetime | None] = {f"{k}_due_at": sla[f"{k}_due_at"] for k in KEYS}
    pending = extension
    for pause in pauses:
        if pending is not None and pending[0] is not None and pending[0] <= pause["started_at"]:
            dues, pending = _extended(cal, dues, pending[1]), None
        left = clock_stops.dues_left(cal, dues, pause["started_at"])
        if pause["ended_at"] is None:
            return dues, left
        moved, _ = clock_stops.dues_after(cal, _restart(pause), left)
        dues.update(moved)
    if pending is not None:
        dues = _extended(cal, dues, pending[1])
    return dues, None


def replay_timer(cal: WorkCalendar, tid: str, workdays: int, armed_at: datetime,
                 pauses: Sequence[Mapping[str, Any]], extension: Extension) -> tuple[datetime | None, int]:
    """An armed `workdays(N)` timer replayed on `cal` from the instant it was armed, through the pauses
    that held it (those whose `left` names it) and an extension granted after it was armed. Returns its
    due, or (None, the working days it keeps) while a running pause holds it."""
    due = cal.due(armed_at, workdays).end_instant
    pending = extension if extension is not None and (extension[0] is None or extension[0] > armed_at) else None
    for pause in pauses:
        rest = (pause["left"] or {}).get("timers", {}).get(tid)
        if rest is None or "workdays" not in rest:
            continue
        if pending is not None and pending[0] is not None and pending[0] <= pause["started_at"]:
            due, pending = deadlines.shift_workdays(due, pending[1], True, cal), None
        at = max(pause["started_at"], armed_at)  # armed while the clock stood still: its whole limit
        left = int(clock_stops.time_left(cal, TimerInfo("", due, workdays, False), at)["workdays"])
        if pause["ended_at"] is None:
            return None, left
        due = cal.due(_restart(pause), left).end_instant
    if pending is not None:
        due = deadlines.shift_workdays(due, pending[1], True, cal)
    return due, 0


def _restart(pause: Mapping[str, Any]) -> datetime:
    """Where what a pause kept counts again from: its end — but a pause (not 公示) shorter than a day gives
    no day back (`clock_stops.start_clock`), so from its start."""
    if pause["kind"] != "publicity" and pause["ended_at"] - pause["started_at"] < clock_stops.MIN_EFFECTIVE_PAUSE:
        return pause["started_at"]
    return pause["ended_at"]


def _extended(cal: WorkCalendar, dues: dict[str, datetime | None], workdays: int) -> dict[str, datetime | None]:
    return {k: deadlines.shift_workdays(v, workdays, True, cal) if v is not None else None for k, v in dues.items()}


def _years(start: datetime, dues: list[datetime]) -> range:
    """The years a case's deadlines count days in: from its acceptance to its last due."""
    first = clock.local(start).year
    last = max([clock.local(d).year for d in dues if d.year < 9999], default=first)
    return range(first, max(first, last) + 1)


def _left_replayed(pause: Mapping[str, Any] | None, dues_left: dict[str, int] | None,
                   timers_left: dict[str, int]) -> dict[str, Any] | None:
    """The running pause's `left` with the replayed counts, or None when they are what it holds."""
    if pause is None:
        return None
    old = dict(pause["left"] or {})
    new = dict(old)
    if dues_left is not None:
        new.update(dues_left)
    if timers_left:
        timers = {tid: dict(rest) for tid, rest in old.get("timers", {}).items()}
        for tid, left in timers_left.items():
            if tid in timers and "workdays" in timers[tid]:
                timers[tid]["workdays"] = left
        new["timers"] = timers
    return new if new != old else None


def _left_text(left: Mapping[str, Any]) -> str:
    """What a pause keeps, for the audit trail: "legal 5 · promised 3 · 2 step(s)"."""
    parts = [f"{k} {left[k]}" for k in KEYS if k in left]
    steps = [r["workdays"] for r in left.get("timers", {}).values() if "workdays" in r]
    return " · ".join(parts + ([f"steps {steps}"] if steps else []))

