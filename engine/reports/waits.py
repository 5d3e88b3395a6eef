"""Where cases wait (issue #10 §6): for a unit's subtree and a month (Asia/Shanghai; default this month,
compared with the month before), the working time each step took — count, median and 90th percentile in
working days — overall, by the unit the step sits at (`tasks.unit_id`) and by the person who completed it
(`tasks.completed_by_id`); and the steps where the overdue work sits now.

What is counted: the steps of the subtree's cases (whatever unit they sit at: a township's cases wait at the
county too) completed in the month, by their working time (`tasks.work_hundredths`, set with the completion:
working days' hours from ready to done, the case's clock stops *not* taken out — a 补正 wait is time the case
spends in that step; cancelled steps have none). A step is (service item, BPMN id); its name and level are
those it was completed under (the newest when versions differ).

How: one aggregate statement for the three breakdowns (`histogram.step_histograms`): the completed steps of
the two months (`ix_tasks_completed_at`, joined to the cases for the subtree — for a county or a township only
its cases open now or closed since, `scope.live_since`, a range of its indexes hashed against the months' steps)
read once as a common table expression, then grouped by step, key, month and histogram bucket (exact to a
tenth of a working day below ten days) — a UNION; the medians and percentiles are read off those histograms in
Python. The rows are bounded by steps × keys × buckets, never by cases. The page reads only the rows it shows:
its first (step, unit) and (step, person) pairs are ranked and cut in SQL (ORDER BY … LIMIT; a city has 59,000
of each, a page shows sixty), the files read them all. The same statement gives the list of cases at risk its
thresholds: the 90th percentile of each (step, unit) pair with enough steps, read off the buckets in SQL
(`histogram._p90_part`), so the city's pairs never leave the database. The overdue steps: one statement over
the ready steps of the subtree's open cases whose clock runs (`ix_tasks_ready_due`, the cases'
`ix_cases_open_report`), grouped by item, step, level and the unit the reader's row links to, ranked and cut in
SQL — each row's numbers are the totals of the overdue report it links to (the same predicates as
`overdue.overdue_query`, filtered by unit, item, step and level).

Why no stored summary of step times: at the grain the tables and the subtrees need (month, item, step, unit,
person, the case's township, bucket) October's 137,000 steps of the benchmark's city are 67,000 rows (a village
completes a given step a few times a month): half as many, saving the join to the cases but not the grouping —
not worth a second copy of every step time kept in step with each completion.

Cost (benchmarks/reports.py, PostgreSQL, 1 million cases, 143,000 steps completed in the two months, 150,000
open cases, a 2-core machine, p50): the whole page — these tables and the first page of the cases at risk —
~0.26 s for a township, ~0.5 s for a county, ~2.0 s for the city (~1.6 s when its pages are cached: the step
times ~0.65 s, the overdue steps ~0.2 s, the list of cases at risk ~0.7 s — each reads the city's
130,000–150,000 rows of its kind once).
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, case, func, literal, or_, select, true
from sqlalchemy.orm import Session

from .. import clock, policy
from ..errors import InvalidInput
from ..models import Case, OrgUnit, TaskRow, User
from ..queries.process_versions import service_choices
from ..queries.scope import Who, who
from ..queries.serialize import JsonModel
from . import export, predict, scope
from .histogram import Stat, StepHistogram, StepHistograms, step_histograms
from .measures import COMPLETED, OPEN, READY, Month, month_of
from .overdue import LEVELS as STEP_LEVELS

#: the breakdowns of the step times
BREAKDOWNS = ("step", "unit", "person")


#: the reasons a month is refused with (`measures.Month.parse`)
MONTH_REASONS = ("report.month_invalid", "report.month_future")


# ------------------------------------------------------------------------------------------- rows
@dataclass(frozen=True)
class WaitRow(JsonModel):
    """A step's working time in the month and the month before: the whole subtree's (`key` None), or at one
    unit (`key` its code, `who` its name) or of one person (`key` the username, `who` the display name)."""
    service_code: str
    service_name: str
    bpmn_id: str
    step: str
    level: str | None
    key: str | None
    who: str | None
    this: Stat
    last: Stat

    @property
    def change(self) -> float | None:
        """The median's change from the month before (working days; None when either month has none)."""
        if self.this.median is None or self.last.median is None:
            return None
        return round(self.this.median - self.last.median, 2)


@dataclass(frozen=True)
class HotStep(JsonModel):
    """A step where overdue work sits: how many of the subtree's steps there are overdue (`red`) and due
    soon (`yellow`), with the filters of the overdue report that lists exactly them (`filters`). `unit` is the
    unit the steps sit at — or, where the reader may not open that unit's report (an officer's villages), the
    report's own unit, the villages' steps counted together (`combined`)."""
    service_code: str
    service_name: str
    step: str
    level: str | None
    unit_code: str
    unit: str
    combined: bool
    red: int
    yellow: int
    filters: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class WaitsReport(JsonModel):
    unit: scope.ReportUnit
    chain: tuple[scope.ReportUnit, ...]
    month: date  # the first day of the month reported
    previous: date  # the first day of the month compared with
    steps: tuple[WaitRow, ...]
    by_unit: tuple[WaitRow, ...]
    by_person: tuple[WaitRow, ...]
    hot: tuple[HotStep, ...]
    generated_at: datetime
    #: the rows of each table before a page kept its first ones ("steps", "units", "people", "hot")
    totals: Mapping[str, int] = field(default_factory=dict)


# ------------------------------------------------------------------------------------------- step times
def histograms(session: Session, sub: scope.Subtree, this: Month, last: Month,
               keys: tuple[str, ...] = BREAKDOWNS, top: Mapping[str, int] | None = None,
               p90_min: int | None = None) -> StepHistograms:
    """The step-time histograms of the subtree's steps completed in the two months, per breakdown: one
    statement (`histogram.step_histograms`); `top` {"unit"/"person": n}: only the first n (step, key) pairs
    of that breakdown; `p90_min`: also the (step, unit) pairs' 90th percentiles (`StepHistograms.p90`)."""
    return step_histograms(session, completed_where(sub, this, last), this.start, keys, top, p90_min)


def completed_where(sub: scope.Subtree, this: Month, last: Month) -> tuple[ColumnElement[bool], ...]:
    """The completed steps a report counts (with `TaskRow.state` completed and a working time): those of
    the subtree's cases completed in the month before `this` or in `this` (by `ix_tasks_completed_at`)."""
    return (TaskRow.state == COMPLETED, TaskRow.completed_at >= last.start, TaskRow.completed_at < this.end,
            TaskRow.work_hundredths.is_not(None), sub.condition(), scope.live_since(sub, last.start))


def step_rows(session: Session, found: Mapping[tuple[str, str, Any], StepHistogram], by: str,
              names: Mapping[str, str], limit: int | None = None) -> tuple[WaitRow, ...]:
    """One breakdown's rows, most steps this month first (then last month's, then by item, step, key): the
    first `limit` of them (None: all), with the names of their units or people (one statement)."""
    def rank(kv: tuple[tuple[str, str, Any], StepHistogram]) -> tuple[Any, ...]:
        (item, step, key), h = kv
        this, last = h.counts
        return -this, -last, item, step, key if key is not None else -1

    chosen = sorted(found.items(), key=rank)[:limit]  # a page's units and people were cut in SQL already
    labels: dict[Any, tuple[str, str]] = {}
    ids = sorted({k[2] for k, _ in chosen if k[2] is not None})
    if by == "unit" and ids:
        labels = {r.id: (r.code, r.name) for r in session.execute(
            select(OrgUnit.id, OrgUnit.code, OrgUnit.name).where(OrgUnit.id.in_(ids)))}
    elif by == "person" and ids:
        labels = {r.id: (r.username, r.display_name) for r in session.execute(
            select(User.id, User.username, User.display_name).where(User.id.in_(ids)))}
    rows = []
    for (item, step, k), h in chosen:
        code, shown = labels.get(k, (None, None)) if by != "step" else (None, None)
        rows.append(WaitRow(item, names.get(item, item), step, h.name, h.level, code, shown, Stat.of(h.this),
                            Stat.of(h.last)))
    return tuple(rows)


# ------------------------------------------------------------------------------------------- overdue steps
def hot_steps(session: Session, actor: Who, sub: scope.Subtree, now: datetime, names: Mapping[str, str],
              limit: int | None = None) -> tuple[tuple[HotStep, ...], int]:
    """The steps where the subtree's overdue (and due-soon) work sits, most overdue first — the first `limit`
    (None: all) and how many there are: one statement (and one over the subtree's units). The predicates are
    the overdue report's: ready steps of open cases whose clock runs, red when due by `now`, yellow when due
    soon (the sweep's warning) and not yet due. Each step is counted at its unit where the reader may open
    that unit's report and it lies in the subtree, else at the subtree's own unit (`combined` when some of
    those steps sit below it: an officer's villages; a county above a township's subtree holds exactly the
    subtree's county steps) — decided here for the subtree's units, then folded, ranked and cut in SQL, so a
    city's tens of thousands of (step, unit) groups never leave the database."""
    red = TaskRow.due_at <= now
    yellow = and_(TaskRow.warning_level == "yellow", TaskRow.due_at > now)
    reader = who(actor)
    units = session.execute(select(OrgUnit.id, OrgUnit.path).where(OrgUnit.path.startswith(sub.unit.path))).all()
    seen = [u.id for u in units if policy.may_see_reports(reader, u.path)]
    above = [u.id for u in sub.chain if u.id != sub.unit.id]
    # the whole tree read by one who may open every unit of it (the city's supervisor: 1,286 units): every
    # step is at its own unit, with no list of them tested on every row
    own: ColumnElement[bool] = true() if not above and len(seen) == len(units) else TaskRow.unit_id.in_(seen)
    held = (select(Case.service_code.label("item"), TaskRow.name.label("step"), TaskRow.level.label("level"),
                   case((own, TaskRow.unit_id), else_=literal(sub.unit.id)).label("link"),
                   case((red, 1), else_=0).label("red"), case((yellow, 1), else_=0).label("yellow"),
                   case((or_(own, TaskRow.unit_id.in_(above)), 0), else_=1).label("combined"))
            .select_from(TaskRow).join(Case, Case.id == TaskRow.case_id)
            .where(TaskRow.state == READY, Case.status == OPEN, Case.paused_at.is_(None), sub.condition(),
                   or_(red, yellow))
            .subquery("held"))
    hot = (select(held.c.item, held.c.step, held.c.level, held.c.link, func.sum(held.c.red).label("red"),
                  func.sum(held.c.yellow).label("yellow"), func.max(held.c.combined).label("combined"))
           .group_by(held.c.item, held.c.step, held.c.level, held.c.link).subquery("hot"))
    stmt = (select(hot.c.item, hot.c.step, hot.c.level, OrgUnit.code, OrgUnit.name, hot.c.combined, hot.c.red,
                   hot.c.yellow, func.count().over().label("total"))
            .join(OrgUnit, OrgUnit.id == hot.c.link)
            .order_by(hot.c.red.desc(), hot.c.yellow.desc(), hot.c.item, hot.c.step, OrgUnit.code))
    raw = session.execute(stmt.limit(limit) if limit is not None else stmt).tuples().all()
    rows = []
    for item, step, level, code, shown, combined, n_red, n_yellow, _ in raw:
        filters = {"unit": code, "item": item, "step": step}
        if level in STEP_LEVELS:  # the report's level filter (a step of no level: its unit's steps, any level)
            filters["level"] = level
        rows.append(HotStep(item, names.get(item, item), step, level, code, shown, bool(combined), int(n_red or 0),
                            int(n_yellow or 0), filters))
    return tuple(rows), int(raw[0][-1]) if raw else 0


# ------------------------------------------------------------------------------------------- the report
def waits_report(session: Session, actor: Who, unit_code: str | None = None, month: Any = None,
                 now: datetime | None = None, limits: Mapping[str, int] | None = None,
                 found: StepHistograms | None = None) -> WaitsReport:
    """Where the cases of `unit_code`'s subtree (default: the reader's unit) wait: the steps' working time in
    `month` ("YYYY-MM", default this month; `measures.Month.parse` refuses anything else) against the month
    before — overall, by unit, by person — and the steps holding overdue work now. Two aggregate statements
    (the step times, every breakdown at once; the overdue steps) plus the names of items, units and people.
    `limits`: the rows each table keeps ("steps", "units", "people", "hot"; the page shows the first ones,
    the files all), the totals in `WaitsReport.totals`. `found`: the histograms, if already read."""
    now = now or clock.now()
    sub = scope.subtree(session, actor, unit_code)
    this = month_of(month, now)
    last = this.previous()
    names = dict(service_choices(session))
    found = found if found is not None else histograms(session, sub, this, last)
    limits = limits or {}
    hot, hot_total = hot_steps(session, actor, sub, now, names, limits.get("hot"))
    return WaitsReport(sub.unit, sub.chain, this.first_day, last.first_day,
                       step_rows(session, found["step"], "step", names, limits.get("steps")),
                       step_rows(session, found["unit"], "unit", names, limits.get("units")),
                       step_rows(session, found["person"], "person", names, limits.get("people")),
                       hot, now, {"steps": found.keys["step"], "units": found.keys["unit"],
                                  "people": found.keys["person"], "hot": hot_total})


def page(session: Session, actor: Who, unit_code: str | None, month: Any, cursor: str | None, *,
         limits: Mapping[str, int] | None = None, page_size: int = 25,
         now: datetime | None = None) -> tuple[WaitsReport, predict.AtRiskList]:
    """What the page shows: the report (its tables cut at `limits`: only the first units and people are
    read, chosen in SQL) and a page of the cases at risk. When the month is the current one, the list's
    thresholds (the (step, unit) pairs' 90th percentiles this month and the last) come from the report's own
    statement, so the month's steps are read once."""
    now = now or clock.now()
    sub = scope.subtree(session, actor, unit_code)
    this = month_of(month, now)
    current = this.first_day == Month.of(now).first_day
    top = {key: n for key, n in (("unit", (limits or {}).get("units")), ("person", (limits or {}).get("people")))
           if n is not None}
    found = histograms(session, sub, this, this.previous(), top=top,
                       p90_min=predict.MIN_HISTORY if current else None)
    report = waits_report(session, actor, unit_code, this, now, limits, found)
    late = predict.at_risk(session, actor, unit_code, cursor, limit=page_size, now=now,
                           p90s=found.p90 if current else None)
    return report, late


# ------------------------------------------------------------------------------------------- files
#: the tables of the waits report, as the page names them (a CSV is one of them: `?table=`)
TABLES = ("steps", "units", "people", "hot", "late")
_STEP_COLUMNS = (export.Column("事项编码", width=12), export.Column("事项", width=28), export.Column("环节", width=20),
                 export.Column("层级", width=8))
_STAT_COLUMNS = (export.Column("本月件数", "int", 9), export.Column("本月中位（工作日）", "decimal", 14),
                 export.Column("本月P90（工作日）", "decimal", 14), export.Column("上月件数", "int", 9),
                 export.Column("上月中位（工作日）", "decimal", 14), export.Column("上月P90（工作日）", "decimal", 14),
                 export.Column("中位变化", "decimal", 10))
_KEY_COLUMNS = {"steps": (), "units": (export.Column("所在单位", width=16), export.Column("代码", width=14)),
                "people": (export.Column("经办人", width=12), export.Column("账号", width=18))}
_TITLES = {"steps": "各环节用时", "units": "按单位", "people": "按经办人", "hot": "超期集中的环节",
           "late": "预计将超期"}
_LEVEL_NAMES = {"village": "村", "township": "乡镇", "county": "县"}


def _wait_values(row: WaitRow, keyed: bool) -> list[Any]:
    values: list[Any] = [row.service_code, row.service_name, row.step, _LEVEL_NAMES.get(row.level or "", "")]
    if keyed:
        values += [row.who or "（无）", row.key or ""]
    return values + [row.this.count, row.this.median, row.this.p90, row.last.count, row.last.median,
                     row.last.p90, row.change]


def _late_reason(reason: predict.Reason) -> str:
    if reason.kind == "typical":
        return f"同类办件通常需 {reason.typical} 个工作日，承诺 {reason.limit} 个"
    return f"环节“{reason.step}”已办 {reason.held:.1f} 个工作日，超过同类九成（{reason.p90:.1f}）"


_LATE_COLUMNS = (export.Column("办件号", width=16), export.Column("事项编码", width=12),
                 export.Column("事项", width=28), export.Column("申请人", width=10), export.Column("村", width=12),
                 export.Column("当前环节", width=24),
                 export.Column("经办人", width=12), export.Column("受理时间", "datetime", 17),
                 export.Column("承诺期限", "date", 12), export.Column("预计办结", "date", 12),
                 export.Column("将超期", "bool", 8), export.Column("依据", width=8),
                 export.Column("同类用时（工作日）", "int", 14), export.Column("已用（工作日）", "int", 12),
                 export.Column("原因", width=48))
_BASIS_NAMES = {"township": "本乡镇", "county": "本县", "city": "全市", "none": "无历史", "paused": "暂停计时"}


def late_values(row: predict.AtRiskRow) -> list[Any]:
    p = row.prediction
    return [row.case_number, row.service_code, row.service_name, row.applicant_name, row.village,
            "、".join(f"{name}（{unit}）" for name, unit in row.steps), "、".join(row.holders), row.accepted_at,
            p.promised, p.predicted, p.late if p.predicted is not None else None, _BASIS_NAMES.get(p.basis, p.basis),
            p.typical_workdays, p.elapsed_workdays, "；".join(_late_reason(r) for r in row.reasons)]


def table(session: Session, actor: Who, unit_code: str | None, month: Any, name: str,
          now: datetime | None = None, report: WaitsReport | None = None) -> export.Table:
    """One table of the report as a file (`name` one of TABLES): every row, not only those the page shows."""
    if name not in TABLES:
        raise InvalidInput(f"没有这张表 / no table {str(name)[:20]!r}: one of {', '.join(TABLES)}",
                           reason="report.filter_invalid", key="table", value=str(name)[:20])
    now = now or clock.now()
    if name == "late":
        query = predict.at_risk_query(session, actor, unit_code, now)
        export.bounded(predict.count(session, query))  # the files' one bound (refused before a row is read)
        return export.Table(_TITLES[name], _LATE_COLUMNS, (late_values(r) for r in predict.walk(session, query)))
    report = report or waits_report(session, actor, unit_code, month, now)
    if name == "hot":
        cols = (*_STEP_COLUMNS, export.Column("所在单位", width=16), export.Column("超期", "int", 8),
                export.Column("即将到期", "int", 9))
        return export.Table(_TITLES[name], cols, [
            [h.service_code, h.service_name, h.step, _LEVEL_NAMES.get(h.level or "", ""),
             h.unit + ("（合计）" if h.combined else ""), h.red, h.yellow] for h in report.hot])
    rows = {"steps": report.steps, "units": report.by_unit, "people": report.by_person}[name]
    return export.Table(_TITLES[name], (*_STEP_COLUMNS, *_KEY_COLUMNS[name], *_STAT_COLUMNS),
                        [_wait_values(r, name != "steps") for r in rows])


def tables(session: Session, actor: Who, unit_code: str | None, month: Any,
           now: datetime | None = None) -> list[export.Table]:
    """The whole report as sheets: the step times (overall, by unit, by person), the overdue steps, the
    cases at risk (the list's every row, bounded)."""
    now = now or clock.now()
    report = waits_report(session, actor, unit_code, month, now)
    return [table(session, actor, unit_code, month, name, now, report) for name in TABLES]
