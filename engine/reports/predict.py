"""A predicted finish date for an open case, beside its promised due date, from the history of its item and
units (issue #10 §6) — so a supervisor sees a case that will be late before it is — and the list of the
subtree's cases at risk (预计将超期).

The rule (`Prediction`):

- **History**: the cases of the same item completed in the last `HISTORY_DAYS` days, taken from the case's
  township if it has at least `MIN_HISTORY` of them, else from its county, else from the whole city, else
  none ("no history": no prediction). Their typical total T is the median of their working days taken
  (`cases.workdays_taken`: pauses not counted, the acceptance day not counted — exact, an integer histogram).
- **Elapsed** E: the working days of the promised limit (with any extension) already used — the limit less
  the working days left to the promised due (the due moves with every pause, so the clock's stops are not
  counted, as in T); for a case without a promised due, the working days since acceptance.
- **The step it is in**: for each ready step, its working time so far s (`workdays.work_hundredths`) against
  the same step's (item, BPMN id) completions at the same unit in the last `STEP_HISTORY_DAYS` days (at least
  `MIN_HISTORY`; every case's, not only the subtree's, so a case shows one date wherever it is listed):
  the step is expected to take the median of those that took longer than s (a step already held long is
  expected to take what the long ones took), minus s — at least one more working day when it has been held
  longer than every one of them.
- remaining = max(T − E, the longest step's expected rest, 0) working days, rounded up; the predicted date is
  that many working days after today (0: today, or the next working day when today is none). "Will be late"
  is a predicted date after the promised due date. A paused case (its clock stopped) gets none: its end
  depends on the applicant.

It is computed only for the cases being shown (a page of the list, a case page): the cases' histories of
their items (one statement, `ix_cases_completed_item`, index-only on PostgreSQL) and the steps' of their
(item, unit, step)s (one statement, `ix_tasks_completed_step`), whatever the number of cases behind them.

The list (`at_risk`, 预计将超期): the subtree's open cases whose clock runs and whose promised due is still
ahead, that
(A) belong to an (item, township) whose typical total T exceeds their promised limit (+ extension) — exactly
    the cases the rule above predicts late from the history alone, since E + the days left = the limit; or
(B) hold a step longer than 90 % of the same step at the same unit did this month and the month before (the
    subtree's steps: the numbers of the page's table by unit) — and at least a working day.
(B) is a warning, not a prediction: the predicted date of such a case may still be within its due, and the
page says which reason put each case on the list. Set-based and bounded: one statement groups the candidates
by (item, township, limit), one reads their items' histories, one groups their ready steps by (item, step,
unit) (the step histograms come from the page's own statement, or one more); the groups found in Python go
back to SQL as small tables (a UNION ALL of one-row SELECTs, at most `MAX_GROUPS` each: the worst first, the
page says when more were cut) joined to the candidates (PostgreSQL: a MATERIALIZED common table expression,
so each part hash-joins); the list is paged by keyset on (promised due, id) with its total counted in the same
statement (a window). The candidates' columns are all in `ix_cases_open_report` (migration 0011): their
statements are index-only scans of the subtree's open cases. The held steps are measured against the 90th
percentile of their (step, unit) pair, computed in SQL by the page's own statement (`histogram._p90_part`).
Measured with the whole waits page (benchmarks/reports.py; 1 million cases, 150,000 open; a 2-core machine,
p50): a township's ~0.26 s, a county's ~0.5 s, the whole city's ~2.0 s, of which this list ~0.7 s.
"""
from __future__ import annotations

import base64
import binascii
import json
import math
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Integer,
    Select,
    and_,
    false,
    func,
    literal,
    literal_column,
    null,
    or_,
    select,
    union,
    union_all,
)
from sqlalchemy.orm import Session, aliased

from .. import clock
from ..clock import due_date
from ..errors import InvalidInput
from ..models import Case, OrgUnit, ProcessVersion, TaskRow, User
from ..queries.models import CaseDetail
from ..queries.pages import Page, check_limit
from ..queries.scope import Who, visible_case
from ..queries.serialize import JsonModel
from ..workdays import DayCalendar, MemoCalendar, WorkCalendar, default_calendar, work_hundredths, work_start
from . import scope
from .histogram import bucket_ceiling, bucket_floor, bucket_sql, percentile, step_histograms
from .measures import COMPLETED, OPEN, READY, Month

#: how far back the history of an item's cases reaches
HISTORY_DAYS = 180
#: how far back the history of a step at a unit reaches
STEP_HISTORY_DAYS = 60
#: the fewest cases (steps) a history needs to say anything
MIN_HISTORY = 5
#: the most flagged groups (item/township, or item/step/unit) the list's WHERE names
MAX_GROUPS = 1000
#: a step is "held long" beyond the 90th percentile of its history, and never before one working day
HELD_AT_LEAST = 100


@dataclass(frozen=True)
class Step:
    """A ready step of an open case, as the prediction needs it."""
    task_id: int
    bpmn_id: str
    name: str
    unit_id: int
    created_at: datetime


@dataclass(frozen=True)
class Subject:
    """An open case, as the prediction needs it."""
    case_id: int
    number: str
    service_code: str
    township_id: int
    county_id: int
    status: str
    accepted_at: datetime | None
    promised_due_at: datetime | None
    promised_limit_workdays: int | None
    extension_workdays: int | None
    paused_at: datetime | None
    steps: tuple[Step, ...] = ()


@dataclass(frozen=True)
class Prediction(JsonModel):
    """When an open case will likely finish, and from what. `basis`: township | county | city (whose history
    gave T), none (no history), paused (its clock stopped), closed. Working days throughout."""
    basis: str
    history: int = 0  # cases in the history used
    typical_workdays: int | None = None  # T
    elapsed_workdays: int | None = None  # E
    step: str | None = None  # the ready step expected to take longest still
    step_workdays: float | None = None  # its working time so far
    step_typical: float | None = None  # the median of the same step at the same unit
    remaining_workdays: int | None = None
    predicted: date | None = None
    promised: date | None = None
    late: bool = False


# ------------------------------------------------------------------------------------------- history
@dataclass
class History:
    """The histograms a set of predictions reads: {workdays_taken: cases} by (item, county, township), and
    {bucket: steps} by (item, unit, step)."""
    cases: dict[tuple[str, int, int], dict[int, int]]
    steps: dict[tuple[str, int, str], dict[int, int]]
    #: the histories merged by (item, county) and by item, once (a list asks for hundreds of groups)
    _merged: dict[tuple[str, int | None], dict[int, int]] | None = field(default=None, repr=False)

    def _level(self, item: str, county_id: int | None) -> dict[int, int]:
        if self._merged is None:
            merged: dict[tuple[str, int | None], dict[int, int]] = {}
            for (code, county, _), h in self.cases.items():
                for key in ((code, county), (code, None)):
                    into = merged.setdefault(key, {})
                    for v, n in h.items():
                        into[v] = into.get(v, 0) + n
            self._merged = merged
        return self._merged.get((item, county_id), {})

    def typical(self, item: str, county_id: int, township_id: int) -> tuple[str, int, int | None]:
        """(basis, cases, median working days taken) of the nearest history with enough cases: the
        township's, else the county's, else the city's."""
        for basis, h in (("township", self.cases.get((item, county_id, township_id), {})),
                         ("county", self._level(item, county_id)), ("city", self._level(item, None))):
            count = sum(h.values())
            if count >= MIN_HISTORY:
                return basis, count, percentile(h, 50)
        return "none", 0, None

    def step(self, item: str, unit_id: int, bpmn_id: str) -> dict[int, int] | None:
        """A step's histogram at a unit, if it has enough steps."""
        h = self.steps.get((item, unit_id, bpmn_id))
        return h if h and sum(h.values()) >= MIN_HISTORY else None


def load_history(session: Session, items: Iterable[str], steps: Iterable[tuple[str, int, str]],
                 now: datetime) -> History:
    """The histories of `items` (their completed cases of the last HISTORY_DAYS, by county and township)
    and of `steps` ((item, unit, step): their completions of the last STEP_HISTORY_DAYS): one statement."""
    items, steps = sorted(set(items)), sorted(set(steps))
    parts: list[Select[Any]] = []
    if items:
        parts.append(select(literal_column("'c'").label("kind"), Case.service_code.label("item"),
                            Case.county_id.label("a"), Case.township_id.label("b"), null().label("step"),
                            Case.workdays_taken.label("value"), func.count().label("n"))
                     .where(Case.status == COMPLETED, Case.service_code.in_(items),
                            Case.closed_at >= now - timedelta(days=HISTORY_DAYS), Case.closed_at <= now,
                            Case.workdays_taken.is_not(None))
                     .group_by(Case.service_code, Case.county_id, Case.township_id, Case.workdays_taken))
    if steps:
        rows = (select(Case.service_code.label("item"), TaskRow.unit_id.label("a"), TaskRow.bpmn_id.label("step"),
                       bucket_sql(TaskRow.work_hundredths).label("value"))
                .select_from(TaskRow).join(Case, Case.id == TaskRow.case_id)
                .where(TaskRow.state == COMPLETED, TaskRow.completed_at >= now - timedelta(days=STEP_HISTORY_DAYS),
                       TaskRow.completed_at <= now, TaskRow.work_hundredths.is_not(None),
                       or_(*[and_(TaskRow.unit_id == unit, TaskRow.bpmn_id == bpmn, Case.service_code == item)
                             for item, unit, bpmn in steps]))
                .subquery("steps"))
        parts.append(select(literal_column("'s'").label("kind"), rows.c.item, rows.c.a,
                            null().cast(Integer).label("b"), rows.c.step, rows.c.value, func.count().label("n"))
                     .group_by(rows.c.item, rows.c.a, rows.c.step, rows.c.value))
    history = History({}, {})
    if not parts:
        return history
    stmt = parts[0] if len(parts) == 1 else union_all(*parts)
    cases, steps_of = history.cases, history.steps
    for kind, item, a, b, step, value, n in session.execute(stmt).tuples():
        if kind == "c":
            cases.setdefault((item, int(a), int(b)), {})[int(value)] = int(n)
        else:
            steps_of.setdefault((item, int(a), step), {})[int(value)] = int(n)
    return history


# ------------------------------------------------------------------------------------------- the rule
def elapsed_workdays(subject: Subject, today: date, cal: WorkCalendar) -> int | None:
    """E: the working days of the promised limit used (the limit less the days left to the promised due),
    or, without a promised due, the working days since acceptance."""
    if subject.promised_due_at is not None and subject.promised_limit_workdays is not None:
        limit = subject.promised_limit_workdays + (subject.extension_workdays or 0)
        due = due_date(subject.promised_due_at)
        if due >= today:
            return max(0, limit - cal.count_workdays(today, due)[0])
        return limit + cal.count_workdays(due, today)[0]
    if subject.accepted_at is not None:
        return cal.count_workdays(clock.local(subject.accepted_at).date(), today)[0]
    return None


def step_rest(history: Mapping[int, int], held: int) -> int:
    """The working time (hundredths) a step held for `held` is still expected to take: the median of the
    history's steps that took longer, less `held`; one working day when none took longer."""
    longer = {b: n for b, n in history.items() if bucket_floor(b) > held}
    if not longer:
        return 100
    mid = percentile(longer, 50)
    assert mid is not None
    return max(0, bucket_floor(mid) - held)


def predict_one(subject: Subject, history: History, now: datetime, cal: WorkCalendar,
                days: DayCalendar | None = None) -> Prediction:
    """The prediction for one case, from histories already read (no statement). `days`: a memo of `cal`
    for the steps' working times."""
    days = days or cal
    promised = due_date(subject.promised_due_at) if subject.promised_due_at is not None else None
    if subject.status != "open":
        return Prediction("closed", promised=promised)
    if subject.paused_at is not None:
        return Prediction("paused", promised=promised)
    basis, count, typical = history.typical(subject.service_code, subject.county_id, subject.township_id)
    if typical is None:
        return Prediction("none", promised=promised)
    today = clock.local(now).date()
    elapsed = elapsed_workdays(subject, today, cal)
    rest, step, held_days, step_typical = 0, None, None, None
    for s in subject.steps:
        h = history.step(subject.service_code, s.unit_id, s.bpmn_id)
        if h is None:
            continue
        held = work_hundredths(s.created_at, now, days) or 0
        expected = math.ceil(step_rest(h, held) / 100)
        if step is None or expected > rest:
            mid = percentile(h, 50)
            rest, step, held_days = expected, s.name, held / 100
            step_typical = bucket_floor(mid) / 100 if mid is not None else None
    remaining = max(typical - (elapsed or 0), rest, 0)
    predicted = (cal.add_workdays(today, remaining) if remaining else cal.first_workday_on_or_after(today)).date
    return Prediction(basis, count, typical, elapsed, step, held_days, step_typical, remaining, predicted, promised,
                      promised is not None and predicted > promised)


def predict(session: Session, subjects: Sequence[Subject], now: datetime | None = None,
            history: History | None = None) -> dict[int, Prediction]:
    """Predictions for `subjects` (a page of cases), by case id: one statement (none with `history`)."""
    now = now or clock.now()
    live = [s for s in subjects if s.status == "open" and s.paused_at is None]
    if history is None:
        history = load_history(session, (s.service_code for s in live),
                               ((s.service_code, t.unit_id, t.bpmn_id) for s in live for t in s.steps), now)
    cal = default_calendar()
    days = MemoCalendar(cal)
    return {s.case_id: predict_one(s, history, now, cal, days) for s in subjects}


# ------------------------------------------------------------------------------------------- subjects
_SUBJECT_COLUMNS = (Case.id, Case.number, Case.service_code, Case.township_id, Case.county_id, Case.status,
                    Case.accepted_at, Case.promised_due_at, Case.promised_limit_workdays, Case.extension_workdays,
                    Case.paused_at)


def _subjects(session: Session, case_ids: Sequence[int]) -> list[Subject]:
    """The cases `case_ids` with their ready steps, in the order given: one statement."""
    if not case_ids:
        return []
    ready = aliased(TaskRow, name="ready")
    rows = session.execute(
        select(*_SUBJECT_COLUMNS, ready.id.label("task_id"), ready.bpmn_id, ready.name, ready.unit_id,
               ready.created_at)
        .select_from(Case).outerjoin(ready, and_(ready.case_id == Case.id, ready.state == READY))
        .where(Case.id.in_(list(case_ids))).order_by(Case.id, ready.id)).all()
    found: dict[int, Subject] = {}
    steps: dict[int, list[Step]] = {}
    for r in rows:
        if r.id not in found:
            found[r.id] = Subject(r.id, r.number, r.service_code, r.township_id, r.county_id, r.status,
                                  r.accepted_at, r.promised_due_at, r.promised_limit_workdays, r.extension_workdays,
                                  r.paused_at)
            steps[r.id] = []
        if r.task_id is not None:
            steps[r.id].append(Step(r.task_id, r.bpmn_id, r.name, r.unit_id, r.created_at))
    return [replace(found[i], steps=tuple(steps[i])) for i in case_ids if i in found]


def for_detail(session: Session, detail: CaseDetail, now: datetime | None = None) -> Prediction | None:
    """The prediction a case page shows beside the promised due, from the `queries.case_detail` it has
    already read (the reader may see the case): its units' ids (one statement on the case number's index)
    and the histories (one statement). None for a case that is not open."""
    if detail.status != "open":
        return None
    row = session.execute(select(Case.id, Case.township_id, Case.county_id)
                          .where(Case.number == detail.number)).one()
    sla = detail.sla
    subject = Subject(row.id, detail.number, detail.service_code, row.township_id, row.county_id, detail.status,
                      detail.accepted_at, sla.promised_due_at, sla.promised_limit_workdays, sla.extension_workdays,
                      sla.paused_at, tuple(Step(t.id, t.bpmn_id, t.name, t.unit_id, t.created_at)
                                           for t in detail.tasks if t.state == "ready"))
    return predict(session, [subject], now)[row.id]


def for_case(session: Session, number: str, user: Who = None, now: datetime | None = None) -> Prediction | None:
    """The prediction shown on a case page beside its promised due (None for a case that is not open):
    the case and its ready steps in one statement, the histories in another. `NotFound` for a case the
    reader may not see."""
    case = visible_case(session, user, number)
    if case.status != "open":
        return None
    subjects = _subjects(session, [case.id])
    return predict(session, subjects, now)[case.id]


# ------------------------------------------------------------------------------------------- the list
@dataclass(frozen=True)
class Reason(JsonModel):
    """Why a case is on the list: `typical` (its item's cases usually take `typical` working days, more
    than its `limit`), or `held` (its step `step` has been held `held` working days, longer than 90 % of
    the same step at the same unit: `p90`)."""
    kind: str
    typical: int | None = None
    limit: int | None = None
    step: str | None = None
    held: float | None = None
    p90: float | None = None


@dataclass(frozen=True)
class AtRiskRow(JsonModel):
    case_number: str
    service_code: str
    service_name: str
    applicant_name: str
    village: str
    accepted_at: datetime | None
    promised_due_at: datetime
    warning_level: str
    steps: tuple[tuple[str, str], ...]  # the ready steps: (name, the unit it sits at)
    holders: tuple[str, ...]  # who holds them (display names; empty: in the units' queues)
    reasons: tuple[Reason, ...]
    prediction: Prediction


@dataclass(frozen=True)
class AtRiskList(JsonModel):
    unit: scope.ReportUnit
    chain: tuple[scope.ReportUnit, ...]
    total: int
    page: Page[AtRiskRow]
    truncated: bool  # more groups were flagged than MAX_GROUPS: the list holds those with the oldest steps
    generated_at: datetime


@dataclass
class _Flags:
    """The thresholds the list was chosen by (to say, row by row, why a case is on it)."""
    typical: dict[tuple[str, int], int]  # (item, township) → T, where T exceeds some case's limit
    held: dict[tuple[str, str, int], tuple[datetime, int]]  # (item, step, unit) → (opened before, p90 hundredths)
    history: History  # the cases' histories of every item the candidates have (the predictions reuse them)
    truncated: bool


@dataclass(frozen=True)
class AtRiskQuery:
    """The list as SQL: `ids` selects (id, promised_due_at) of its cases, each once."""
    sub: scope.Subtree
    ids: Any
    flags: _Flags
    now: datetime


def _limit_of() -> ColumnElement[Any]:
    return Case.promised_limit_workdays + func.coalesce(Case.extension_workdays, 0)


def _table(name: str, columns: Sequence[tuple[str, Any]], rows: Sequence[Sequence[Any]]) -> Any:
    """Rows given in Python as a table SQL can join (a UNION ALL of one-row SELECTs: both databases read it;
    SQLite has no VALUES with column names)."""
    selects = [select(*[literal(v, t).label(c) for (c, t), v in zip(columns, row, strict=True)]) for row in rows]
    return (selects[0] if len(selects) == 1 else union_all(*selects)).subquery(name)


def running(sub: scope.Subtree, now: datetime) -> list[ColumnElement[bool]]:
    """The cases the list may hold: the subtree's open cases whose clock runs and whose promised due is
    still ahead (none is overdue yet)."""
    return [Case.status == OPEN, Case.paused_at.is_(None), Case.promised_due_at.is_not(None),
            Case.promised_due_at > now, Case.promised_limit_workdays.is_not(None), sub.condition()]


def at_risk_query(session: Session, actor: Who, unit_code: str | None, now: datetime,
                  p90s: Mapping[tuple[str, str, int], int] | None = None) -> AtRiskQuery:
    """The list as SQL, from three statements: the candidates by (item, township, limit), their items'
    histories, their ready steps by (item, step, unit) — plus, unless given as `p90s`, the 90th percentile
    buckets of the subtree's (step, unit) pairs with at least MIN_HISTORY steps completed this month and the
    last (`histogram.step_histograms`' `p90`: what the held steps are measured against)."""
    sub = scope.subtree(session, actor, unit_code)
    where = running(sub, now)
    groups = session.execute(select(Case.service_code, Case.county_id, Case.township_id,
                                    Case.promised_limit_workdays, Case.extension_workdays)
                             .where(*where).group_by(Case.service_code, Case.county_id, Case.township_id,
                                                     Case.promised_limit_workdays, Case.extension_workdays)).all()
    history = load_history(session, {g.service_code for g in groups}, (), now)
    typical: dict[tuple[str, int], int] = {}
    flagged: set[tuple[str, int, int]] = set()
    for g in groups:
        t = history.typical(g.service_code, g.county_id, g.township_id)[2]
        limit = g.promised_limit_workdays + (g.extension_workdays or 0)
        if t is not None and t > limit:
            typical[(g.service_code, g.township_id)] = t
            flagged.add((g.service_code, g.township_id, limit))
    flagged_a = list(flagged)
    # (B): the ready steps held longer than 90 % of the same step at the same unit (this month and last)
    if p90s is None:
        this = Month.of(now)
        p90s = step_histograms(session, (TaskRow.state == COMPLETED, TaskRow.completed_at >= this.previous().start,
                                         TaskRow.completed_at < now, TaskRow.work_hundredths.is_not(None),
                                         sub.condition(), scope.live_since(sub, this.previous().start)),
                               this.start, (), p90_min=MIN_HISTORY).p90
    cal = MemoCalendar(default_calendar())
    held: dict[tuple[str, str, int], tuple[datetime, int]] = {}
    oldest_of: dict[tuple[str, str, int], datetime] = {}
    if p90s:
        # the oldest ready step of each (step, unit) held at least HELD_AT_LEAST (no threshold is below it), then
        # the thresholds (a working-time inversion each) of only the pairs that have such a step
        latest = work_start(now, HELD_AT_LEAST, cal)
        oldest = session.execute(
            select(Case.service_code, TaskRow.bpmn_id, TaskRow.unit_id, func.min(TaskRow.created_at).label("oldest"))
            .select_from(TaskRow).join(Case, Case.id == TaskRow.case_id)
            .where(TaskRow.state == READY, TaskRow.created_at < latest, *where)
            .group_by(Case.service_code, TaskRow.bpmn_id, TaskRow.unit_id))
        for item, bpmn, unit, first in oldest:
            top = p90s.get((item, bpmn, unit))
            ceiling = bucket_ceiling(top) if top is not None else None
            if top is None or ceiling is None:  # no threshold, or open-ended (60 working days or more)
                continue
            before = work_start(now, max(ceiling, HELD_AT_LEAST), cal)
            if first < before:
                held[(item, bpmn, unit)] = (before, bucket_floor(top))
                oldest_of[(item, bpmn, unit)] = first
    truncated = len(flagged_a) > MAX_GROUPS or len(held) > MAX_GROUPS
    flagged_a = sorted(flagged_a, key=lambda f: f[2] - typical[(f[0], f[1])])[:MAX_GROUPS]  # the worst first
    flagged_b = sorted(held.items(), key=lambda kv: oldest_of[kv[0]])[:MAX_GROUPS]  # the longest held first
    # the candidates once (PostgreSQL: materialized, so each part hash-joins its flagged groups to them)
    candidates = (select(Case.id, Case.promised_due_at, Case.service_code, Case.township_id, _limit_of().label("lim"))
                  .where(*where).cte("candidates").prefix_with("MATERIALIZED", dialect="postgresql"))
    parts: list[Select[Any]] = []
    if flagged_a:
        a = _table("typical", (("item", Case.service_code.type), ("township", Integer()), ("lim", Integer())),
                   flagged_a)
        parts.append(select(candidates.c.id, candidates.c.promised_due_at).join(
            a, and_(a.c.item == candidates.c.service_code, a.c.township == candidates.c.township_id,
                    a.c.lim == candidates.c.lim)))
    if flagged_b:
        b = _table("held", (("item", Case.service_code.type), ("step", TaskRow.bpmn_id.type), ("unit", Integer()),
                            ("before", TaskRow.created_at.type)),
                   [(item, bpmn, unit, before) for (item, bpmn, unit), (before, _) in flagged_b])
        parts.append(select(candidates.c.id, candidates.c.promised_due_at).select_from(TaskRow)
                     .join(candidates, candidates.c.id == TaskRow.case_id)
                     .join(b, and_(b.c.item == candidates.c.service_code, b.c.step == TaskRow.bpmn_id,
                                   b.c.unit == TaskRow.unit_id, TaskRow.created_at < b.c.before))
                     .where(TaskRow.state == READY, TaskRow.created_at < max(f[1][0] for f in flagged_b)))
    if not parts:
        parts.append(select(candidates.c.id, candidates.c.promised_due_at).where(false()))
    ids = (parts[0] if len(parts) == 1 else union(*parts)).subquery("at_risk")
    return AtRiskQuery(sub, ids, _Flags(typical, dict(flagged_b), history, truncated), now)


_VILLAGE = aliased(OrgUnit, name="village")
_STEP_UNIT = aliased(OrgUnit, name="step_unit")
_HOLDER = aliased(User, name="holder")


def _page_ids(session: Session, query: AtRiskQuery, limit: int, after: tuple[datetime, int] | None) -> list[Any]:
    """A page of (id, promised_due_at, total): the keyset after `after`, with the list's total counted in the
    same statement (a window over the whole list, so the list is computed once)."""
    counted = select(query.ids.c.id, query.ids.c.promised_due_at, func.count().over().label("total")).subquery("c")
    stmt = (select(counted.c.id, counted.c.promised_due_at, counted.c.total)
            .order_by(counted.c.promised_due_at, counted.c.id).limit(limit + 1))
    if after is not None:
        stmt = stmt.where(or_(counted.c.promised_due_at > after[0],
                              and_(counted.c.promised_due_at == after[0], counted.c.id > after[1])))
    return list(session.execute(stmt).all())


def count(session: Session, query: AtRiskQuery) -> int:
    return session.scalar(select(func.count()).select_from(query.ids)) or 0


def _rows(session: Session, query: AtRiskQuery, ids: list[int]) -> list[AtRiskRow]:
    """The rows of a page: its cases with their steps (one statement), their names (two), their predictions
    (the step histories of the page's steps: one statement; the cases' histories were read for the list)."""
    if not ids:
        return []
    subjects = {s.case_id: s for s in _subjects(session, ids)}
    page_steps = load_history(session, (), ((s.service_code, t.unit_id, t.bpmn_id) for s in subjects.values()
                                            for t in s.steps), query.now)
    history = History(query.flags.history.cases, page_steps.steps)
    predictions = predict(session, list(subjects.values()), query.now, history)
    info = {r.id: r for r in session.execute(
        select(Case.id, Case.number, Case.service_code, ProcessVersion.name.label("service_name"),
               Case.applicant_name, _VILLAGE.name.label("village"), Case.accepted_at, Case.promised_due_at,
               Case.warning_level, Case.promised_limit_workdays, Case.extension_workdays)
        .join(ProcessVersion, ProcessVersion.id == Case.process_version_id)
        .join(_VILLAGE, _VILLAGE.id == Case.village_id).where(Case.id.in_(ids)))}
    where = {r.id: (r.unit, r.holder) for r in session.execute(
        select(TaskRow.id, _STEP_UNIT.name.label("unit"), _HOLDER.display_name.label("holder"))
        .join(_STEP_UNIT, _STEP_UNIT.id == TaskRow.unit_id).outerjoin(_HOLDER, _HOLDER.id == TaskRow.assignee_id)
        .where(TaskRow.case_id.in_(ids), TaskRow.state == READY))}
    flags, cal = query.flags, MemoCalendar(default_calendar())
    out = []
    for case_id in ids:
        r, s = info[case_id], subjects[case_id]
        reasons = []
        limit = (r.promised_limit_workdays or 0) + (r.extension_workdays or 0)
        t = flags.typical.get((s.service_code, s.township_id))
        if t is not None and limit < t:
            reasons.append(Reason("typical", typical=t, limit=limit))
        for step in s.steps:
            found = flags.held.get((s.service_code, step.bpmn_id, step.unit_id))
            if found is not None and step.created_at < found[0]:
                held = work_hundredths(step.created_at, query.now, cal) or 0
                reasons.append(Reason("held", step=step.name, held=held / 100, p90=found[1] / 100))
        names = tuple((t.name, where[t.task_id][0]) for t in s.steps if t.task_id in where)
        holders = tuple(h for t in s.steps if t.task_id in where for h in [where[t.task_id][1]] if h)
        out.append(AtRiskRow(r.number, r.service_code, r.service_name, r.applicant_name, r.village, r.accepted_at,
                             r.promised_due_at, r.warning_level, names, holders, tuple(reasons),
                             predictions[case_id]))
    return out


def _cursor(row: Any) -> str:
    text = json.dumps({"k": "at_risk", "d": row.promised_due_at.isoformat(), "i": row.id}, separators=(",", ":"))
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def _read_cursor(cursor: Any) -> tuple[datetime, int]:
    bad = InvalidInput("翻页标记无效，请从第一页重新开始 / bad page cursor", reason="page.cursor_invalid")
    if not isinstance(cursor, str) or not cursor or len(cursor) > 300:
        raise bad
    try:
        value = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode("utf-8"))
        if not isinstance(value, dict) or value.get("k") != "at_risk":
            raise ValueError
        ident = value.get("i")
        if isinstance(ident, bool) or not isinstance(ident, int) or not 0 <= ident < 2 ** 63:
            raise ValueError
        return clock.to_utc(str(value.get("d"))), ident
    except (binascii.Error, ValueError, UnicodeDecodeError, TypeError):
        raise bad from None


def at_risk(session: Session, actor: Who, unit_code: str | None = None, cursor: str | None = None, *,
            limit: int = 25, now: datetime | None = None,
            p90s: Mapping[tuple[str, str, int], int] | None = None) -> AtRiskList:
    """A page of the subtree's cases at risk of running late (预计将超期), soonest promised due first, with
    their total: the list's statements (`at_risk_query`), a count, the page and its rows."""
    now = now or clock.now()
    limit = check_limit(limit)
    after = _read_cursor(cursor) if cursor is not None else None
    query = at_risk_query(session, actor, unit_code, now, p90s)
    raw = _page_ids(session, query, limit, after)
    total = int(raw[0].total) if raw else (count(session, query) if after is not None else 0)
    shown = raw[:limit]
    page = Page(tuple(_rows(session, query, [r.id for r in shown])),
                _cursor(shown[-1]) if len(raw) > limit else None)
    return AtRiskList(query.sub.unit, query.sub.chain, total, page, query.flags.truncated, now)


def walk(session: Session, query: AtRiskQuery, batch: int = 500) -> Iterator[AtRiskRow]:
    """Every row of the list in its order, a keyset page at a time (the exports)."""
    after: tuple[datetime, int] | None = None
    while True:
        raw = _page_ids(session, query, batch, after)
        yield from _rows(session, query, [r.id for r in raw[:batch]])
        if len(raw) <= batch:
            return
        last = raw[batch - 1]
        after = (last.promised_due_at, last.id)
