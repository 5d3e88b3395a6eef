"""Medians and 90th percentiles that both databases can compute: SQL counts the rows of each histogram bucket
(one `GROUP BY` — SQLite has no `percentile_cont`), Python reads the percentile off the small histogram.

A step's working time (`tasks.work_hundredths`, hundredths of a working day) falls in a bucket of a tenth of
a working day below 10 days, of a whole working day from 10 to 60, and one last bucket for 60 and more — at
most 151 buckets, whatever the number of steps. A percentile is exact to its bucket and shown as the bucket's
floor: a median of 1.3 means the middle step took at least 1.3 and less than 1.4 working days. Whole working
days (`cases.workdays_taken`) are integers already: their histogram is exact.

Percentiles are by nearest rank: the p-th percentile of n values is the ⌈p·n/100⌉-th smallest (the median of
an even count is the lower middle value), so every percentile is a value that occurred.
"""
from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Integer, Select, and_, case, func, literal_column, null, select, union_all
from sqlalchemy.orm import Session

from ..models import Case, TaskRow
from ..queries.serialize import JsonModel

#: the buckets: tenths of a day below 10 days (0–99), whole days from 10 to 60 (100–149), 60 and more (150)
TENTHS_BELOW = 1000
DAYS_BELOW = 6000
LAST_BUCKET = 150


def bucket_sql(hundredths: Any) -> ColumnElement[int]:
    """The bucket of a working time in SQL (integer division on both databases; literals, so that the same
    expression may be grouped by)."""
    def n(value: int) -> ColumnElement[int]:
        return literal_column(str(value), Integer)

    return case((hundredths < n(TENTHS_BELOW), hundredths // n(10)),
                (hundredths < n(DAYS_BELOW), n(90) + hundredths // n(100)), else_=n(LAST_BUCKET))


def bucket_of(hundredths: int) -> int:
    """The bucket of a working time (what `bucket_sql` computes)."""
    if hundredths < TENTHS_BELOW:
        return hundredths // 10
    if hundredths < DAYS_BELOW:
        return 90 + hundredths // 100
    return LAST_BUCKET


def bucket_floor(bucket: int) -> int:
    """The least working time (hundredths) in a bucket."""
    if bucket < 100:
        return bucket * 10
    if bucket < LAST_BUCKET:
        return (bucket - 90) * 100
    return DAYS_BELOW


def bucket_ceiling(bucket: int) -> int | None:
    """The least working time (hundredths) above a bucket (None for the last, which has no end)."""
    return None if bucket >= LAST_BUCKET else bucket_floor(bucket + 1)


def percentile(histogram: Mapping[int, int], p: int) -> int | None:
    """The p-th percentile (nearest rank) of a histogram {value: count}; None when it is empty."""
    n = sum(histogram.values())
    if n <= 0:
        return None
    rank, seen = max(1, math.ceil(p * n / 100)), 0
    for value in sorted(histogram):
        seen += histogram[value]
        if seen >= rank:
            return value
    return None  # unreachable: the ranks add up to n


def merged(histograms: Iterable[Mapping[int, int]]) -> dict[int, int]:
    out: dict[int, int] = {}
    for h in histograms:
        for value, n in h.items():
            out[value] = out.get(value, 0) + n
    return out


@dataclass(frozen=True)
class Stat(JsonModel):
    """How many steps, and the median and 90th percentile of their working time in working days (to the
    bucket: its floor; None without steps). `open_ended`: the 90th percentile is in the last bucket (60
    working days or more)."""
    count: int = 0
    median: float | None = None
    p90: float | None = None
    open_ended: bool = False

    @classmethod
    def of(cls, buckets: Mapping[int, int]) -> Stat:
        count = sum(buckets.values())
        if not count:
            return cls()
        mid, p90 = percentiles(buckets, count, (50, 90))
        return cls(count, bucket_floor(mid) / 100, bucket_floor(p90) / 100, p90 >= LAST_BUCKET)


def percentiles(histogram: Mapping[int, int], n: int, ps: Sequence[int]) -> list[int]:
    """Several percentiles (nearest rank, ascending `ps`) of a histogram of `n` > 0 values, in one pass."""
    ranks = [max(1, math.ceil(p * n / 100)) for p in ps]
    out: list[int] = []
    seen = 0
    for value in sorted(histogram):
        seen += histogram[value]
        while len(out) < len(ranks) and seen >= ranks[len(out)]:
            out.append(value)
        if len(out) == len(ranks):
            break
    return out


# ------------------------------------------------------------------------------------------- step times
#: what a histogram of step times may be keyed by, besides the step: the unit it sits at, who completed it
STEP_KEYS: dict[str, Any] = {"step": None, "unit": TaskRow.unit_id, "person": TaskRow.completed_by_id}


@dataclass
class StepHistogram:
    """The buckets of one step's working time (this month, the month before), with the name and level it
    was completed under (the greatest when versions differ)."""
    name: str
    level: str | None
    this: dict[int, int]
    last: dict[int, int]

    @property
    def counts(self) -> tuple[int, int]:
        return sum(self.this.values()), sum(self.last.values())


@dataclass
class StepHistograms:
    """Per key ("step", "unit", "person"): {(item, step, key value): StepHistogram} — for a key read with a
    `top`, only its first keys (most steps this month, then last month, then by item, step and key value) —
    and how many keys there are in all (`keys`)."""
    rows: dict[str, dict[tuple[str, str, Any], StepHistogram]]
    keys: dict[str, int]
    #: with `p90_min`: {(item, step, unit id): the bucket of the 90th percentile of both months' steps} for the
    #: (step, unit) pairs with at least that many steps
    p90: dict[tuple[str, str, int], int] = field(default_factory=dict)

    def __getitem__(self, key: str) -> dict[tuple[str, str, Any], StepHistogram]:
        return self.rows[key]


def step_histograms(session: Session, where: Sequence[ColumnElement[bool]], this_start: datetime,
                    keys: Sequence[str], top: Mapping[str, int] | None = None,
                    p90_min: int | None = None) -> StepHistograms:
    """One statement: the steps under `where` (tasks joined to their cases; `where` names them completed, with
    a working time), counted by item, step, each of `keys` (STEP_KEYS), month (completed since `this_start`,
    or before) and bucket — the steps read once (a common table expression), one GROUP BY per key, as a UNION.
    The grouped rows stay narrow: a step's name and level (the greatest when versions differ) are grouped once
    per step, not carried through every key's groups; and when the units' histograms or percentiles are read,
    the steps are counted by unit, month and bucket once (`unit_buckets`), and the units' part, their ranking,
    the step's own histograms (a step sits at one unit: its rows at every unit are exactly its rows) and the
    percentiles are read off those rows. With `top` {key: n}, a key's (item, step, key value) triples are ranked in SQL
    (most steps this month, then last month, then by item, step, key value), only the first n are returned
    (a city has tens of thousands of (step, person) pairs; a page shows sixty), and how many there are
    (`StepHistograms.keys`). The key value of "step" is 0.

    `p90_min`: also the 90th percentile of each (step, unit) pair's working time over both months, for the
    pairs with at least `p90_min` steps (`StepHistograms.p90`) — read off the histogram in SQL (a running
    sum of the buckets' counts: the first bucket where it reaches 90 % of the pair's steps, nearest rank as
    `percentile`), so that a city's tens of thousands of pairs, most with a step or two, never leave the
    database: what the list of cases at risk measures held steps against (`predict.at_risk_query`)."""
    top = top or {}
    keyed = [column.label(f"k_{key}") for key, column in STEP_KEYS.items()
             if column is not None and (key in keys or (key == "unit" and p90_min is not None))]
    done = (select(Case.service_code.label("item"), TaskRow.bpmn_id.label("step"), TaskRow.name.label("name"),
                   TaskRow.level.label("level"), *keyed,
                   case((TaskRow.completed_at >= this_start, 1), else_=0).label("this"),
                   bucket_sql(TaskRow.work_hundredths).label("bucket"))
            .select_from(TaskRow).join(Case, Case.id == TaskRow.case_id)
            .where(*where)
            .cte("done"))
    zero, nothing = literal_column("0", Integer), literal_column("NULL", Integer)

    def part(by: str, key: Any, *, name: Any = None, level: Any = None, n: Any = None,
             grouped: bool = True) -> Select[Any]:
        return select(literal_column(f"'{by}'").label("by"), done.c.item, done.c.step, key.label("key"),
                      done.c.this if grouped else zero.label("this"),
                      done.c.bucket if grouped else zero.label("bucket"),
                      (name if name is not None else null()).label("name"),
                      (level if level is not None else null()).label("level"),
                      (n if n is not None else func.count()).label("n"),
                      zero.label("keys"))

    # the steps' names, for the breakdowns' rows (only the percentiles asked for: none)
    parts = [part("name", zero, name=func.max(done.c.name), level=func.max(done.c.level), n=zero, grouped=False)
             .group_by(done.c.item, done.c.step)] if keys else []
    # the steps counted by unit, month and bucket once (a city's 143,000 steps: 66,000 rows) when the units'
    # histograms or their percentiles are read: the units' part, their ranking, the step's own histograms
    # and the percentiles are read off these rows instead of grouping every step again
    units = None
    if "unit" in keys or p90_min is not None:
        units = (select(done.c.item, done.c.step, done.c.k_unit.label("key"), done.c.this, done.c.bucket,
                        func.count().label("n"))
                 .group_by(done.c.item, done.c.step, done.c.k_unit, done.c.this, done.c.bucket).cte("unit_buckets"))

    def unit_part() -> Select[Any]:
        assert units is not None
        return select(literal_column("'unit'").label("by"), units.c.item, units.c.step, units.c.key,
                      units.c.this, units.c.bucket, null().label("name"), null().label("level"), units.c.n,
                      zero.label("keys"))

    def count_part(by: str, per: Any) -> Select[Any]:  # how many (item, step, key value) triples there are
        return select(literal_column(f"'{by}'").label("by"), nothing.label("item"), nothing.label("step"),
                      nothing.label("key"), zero.label("this"), zero.label("bucket"), null().label("name"),
                      null().label("level"), zero.label("n"), func.count().label("keys")).select_from(per)

    def ranked(per: Any, limit: int, key: str) -> Any:
        return (select(per.c.item, per.c.step, per.c.key)
                .order_by(per.c.n_this.desc(), (per.c.n - per.c.n_this).desc(), per.c.item, per.c.step, per.c.key)
                .limit(limit).cte(f"first_{key}"))

    per_unit = None
    for key in keys:
        limit = top.get(key)
        if key == "step" and units is not None and limit is None:  # the units' rows added up per step
            parts.append(select(literal_column("'step'").label("by"), units.c.item, units.c.step, zero.label("key"),
                                units.c.this, units.c.bucket, null().label("name"), null().label("level"),
                                func.sum(units.c.n).label("n"), zero.label("keys"))
                         .group_by(units.c.item, units.c.step, units.c.this, units.c.bucket))
            continue
        if key == "unit" and units is not None:
            if limit is None:
                parts.append(unit_part())
                continue
            per_unit = (select(units.c.item, units.c.step, units.c.key,
                               func.sum(case((units.c.this == 1, units.c.n), else_=0)).label("n_this"),
                               func.sum(units.c.n).label("n"))
                        .group_by(units.c.item, units.c.step, units.c.key).cte("per_unit"))
            first = ranked(per_unit, limit, key)
            parts.append(unit_part().select_from(units.join(first, and_(
                first.c.item == units.c.item, first.c.step == units.c.step, first.c.key == units.c.key))))
            parts.append(count_part(key, per_unit))
            continue
        value = done.c[f"k_{key}"] if STEP_KEYS[key] is not None else zero
        by_key = (done.c.item, done.c.step, *([value] if STEP_KEYS[key] is not None else []))
        if limit is None:
            parts.append(part(key, value).group_by(*by_key, done.c.this, done.c.bucket))
            continue
        per = select(done.c.item, done.c.step, value.label("key"), func.sum(done.c.this).label("n_this"),
                     func.count().label("n")).group_by(*by_key).cte(f"per_{key}")
        first = ranked(per, limit, key)
        parts.append(part(key, value).select_from(done.join(first, and_(
            first.c.item == done.c.item, first.c.step == done.c.step, first.c.key.is_not_distinct_from(value))))
            .group_by(*by_key, done.c.this, done.c.bucket))
        parts.append(count_part(key, per))
    if p90_min is not None and units is not None:
        parts.append(_p90_part(units, p90_min, per_unit))
    found = StepHistograms({key: {} for key in keys}, {})
    names: dict[tuple[str, str], tuple[str, str | None]] = {}
    rows = found.rows
    for by, item, step, key, this, bucket, name, level, n, total in session.execute(union_all(*parts)).tuples():
        if by == "name":
            names[(item, step)] = (name, level)
        elif by == "p90":
            found.p90[(item, step, int(key))] = int(bucket)
        elif item is None:  # how many keys there are
            found.keys[by] = int(total)
        else:
            into = rows[by]
            entry = into.get((item, step, key))
            if entry is None:
                entry = into[(item, step, key)] = StepHistogram("", None, {}, {})
            (entry.this if this else entry.last)[int(bucket)] = int(n)
    for key in keys:
        for (item, step, _), entry in found.rows[key].items():
            entry.name, entry.level = names.get((item, step), (step, None))
        found.keys.setdefault(key, len(found.rows[key]))
    return found


def _p90_part(units: Any, at_least: int, per_unit: Any = None) -> Select[Any]:
    """The 90th percentile bucket per (item, step, unit) of the counted steps `units` (item, step, key = unit,
    this, bucket, n; both months added up), for the pairs with at least `at_least` steps: the buckets' counts,
    their running sum and the pair's total (window functions, on both databases), the first bucket whose running
    sum reaches 90 % of the total — nearest rank: rank ⌈0.9·n⌉ ≤ running sum ⇔ 90·n ≤ 100·running sum. The pairs
    with too few steps are left out before the buckets are sorted (a city's 59,000 pairs: 4,500 kept), from
    `per_unit`, the pairs' counts, when the units' top was read."""
    buckets = (select(units.c.item, units.c.step, units.c.key.label("unit"), units.c.bucket,
                      func.sum(units.c.n).label("n"))
               .group_by(units.c.item, units.c.step, units.c.key, units.c.bucket).subquery("p90_buckets"))
    if per_unit is not None:
        pairs = (select(per_unit.c.item, per_unit.c.step, per_unit.c.key.label("unit"))
                 .where(per_unit.c.n >= at_least).subquery("p90_pairs"))
    else:
        pairs = (select(buckets.c.item, buckets.c.step, buckets.c.unit)
                 .group_by(buckets.c.item, buckets.c.step, buckets.c.unit)
                 .having(func.sum(buckets.c.n) >= at_least).subquery("p90_pairs"))
    counted = (select(buckets).join(pairs, and_(pairs.c.item == buckets.c.item, pairs.c.step == buckets.c.step,
                                                pairs.c.unit == buckets.c.unit)).subquery("p90_counted"))
    pair = (counted.c.item, counted.c.step, counted.c.unit)
    running = (select(*pair, counted.c.bucket,
                      func.sum(counted.c.n).over(partition_by=pair, order_by=counted.c.bucket).label("below"),
                      func.sum(counted.c.n).over(partition_by=pair).label("total"))
               .subquery("p90_running"))
    n = literal_column("0", Integer)
    return (select(literal_column("'p90'").label("by"), running.c.item, running.c.step, running.c.unit.label("key"),
                   n.label("this"), func.min(running.c.bucket).label("bucket"), null().label("name"),
                   null().label("level"), func.max(running.c.total).label("n"), n.label("keys"))
            .where(running.c.total >= at_least, running.c.below * 100 >= running.c.total * 90)
            .group_by(running.c.item, running.c.step, running.c.unit))
