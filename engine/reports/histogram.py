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
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Integer, case, func, literal_column, select, union_all
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

    def __getitem__(self, key: str) -> dict[tuple[str, str, Any], StepHistogram]:
        return self.rows[key]


def step_histograms(session: Session, where: Sequence[ColumnElement[bool]], this_start: datetime,
                    keys: Sequence[str], top: Mapping[str, int] | None = None) -> StepHistograms:
    """One statement: the steps under `where` (tasks joined to their cases; `where` names them completed, with
    a working time), counted by item, step, each of `keys` (STEP_KEYS), month (completed since `this_start`,
    or before) and bucket — the steps read once (a common table expression), one GROUP BY per key, as a UNION.
    With `top` {key: n}, a key's histograms are ranked in SQL (window functions) and only its first n keys
    are returned (a city has tens of thousands of (step, person) pairs; a page shows sixty). The key value
    of "step" is 0."""
    keyed = [column.label(f"k_{key}") for key, column in STEP_KEYS.items() if column is not None and key in keys]
    done = (select(Case.service_code.label("item"), TaskRow.bpmn_id.label("step"), TaskRow.name.label("name"),
                   TaskRow.level.label("level"), *keyed,
                   case((TaskRow.completed_at >= this_start, 1), else_=0).label("this"),
                   bucket_sql(TaskRow.work_hundredths).label("bucket"))
            .select_from(TaskRow).join(Case, Case.id == TaskRow.case_id)
            .where(*where)
            .cte("done"))
    parts = []
    for key in keys:
        value = done.c[f"k_{key}"] if STEP_KEYS[key] is not None else None
        grouped = (select(literal_column(f"'{key}'").label("by"), done.c.item, done.c.step,
                          (value if value is not None else literal_column("0", Integer)).label("key"),
                          done.c.this, done.c.bucket, func.max(done.c.name).label("name"),
                          func.max(done.c.level).label("level"), func.count().label("n"))
                   .group_by(done.c.item, done.c.step, *([value] if value is not None else []), done.c.this,
                             done.c.bucket))
        limit = (top or {}).get(key)
        if limit is None:
            parts.append(grouped.add_columns(literal_column("0", Integer).label("keys")))
            continue
        g = grouped.subquery(f"g_{key}")
        same = (g.c.item, g.c.step, g.c.key)
        w = select(g, func.sum(case((g.c.this == literal_column("1"), g.c.n), else_=literal_column("0")))
                   .over(partition_by=same).label("n_this"),
                   func.sum(case((g.c.this == literal_column("0"), g.c.n), else_=literal_column("0")))
                   .over(partition_by=same).label("n_last")).subquery(f"w_{key}")
        r = select(w, func.dense_rank().over(order_by=(w.c.n_this.desc(), w.c.n_last.desc(), w.c.item, w.c.step,
                                                       w.c.key)).label("rank")).subquery(f"r_{key}")
        counted = select(r, func.max(r.c.rank).over().label("keys")).subquery(f"c_{key}")
        parts.append(select(counted.c.by, counted.c.item, counted.c.step, counted.c.key, counted.c.this,
                            counted.c.bucket, counted.c.name, counted.c.level, counted.c.n, counted.c["keys"])
                     .where(counted.c.rank <= limit))
    found = StepHistograms({key: {} for key in keys}, {})
    stmt = parts[0] if len(parts) == 1 else union_all(*parts)
    for by, item, step, key, this, bucket, name, level, n, total in session.execute(stmt).tuples().all():
        if total:
            found.keys[by] = int(total)
        entry = found.rows[by].get((item, step, key))
        if entry is None:
            entry = found.rows[by][(item, step, key)] = StepHistogram(name, level, {}, {})
        elif name > entry.name:
            entry.name = name
        if entry.level is None:
            entry.level = level
        (entry.this if this else entry.last)[int(bucket)] = int(n)
    for key in keys:
        found.keys.setdefault(key, len(found.rows[key]))
    return found
