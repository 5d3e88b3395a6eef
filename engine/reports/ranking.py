"""The monthly ranking (月度排名, issue #10 §4): a unit's townships and villages ranked by the on-time rate of
the cases they completed in a month, and by their 好差评.

Who is ranked: the city ranks all its townships and all its villages, a county its townships and its
villages, a township its villages; a village has nothing below it (no levels). The month is an Asia/Shanghai
calendar month: by default the last complete one, else the one the reader chose (`Month.parse`: a month to
come, or anything but YYYY-MM, is `InvalidInput`); the current month may be chosen too, counted up to now.

The numbers, per unit:
- **on time**: of the cases completed (办结) in the month, those closed by their promised due, those closed
  after it, and the working days taken — the predicates of the board (`measures.case_predicate`, COMPLETED,
  ON_TIME, LATE, TIMED), so a unit's numbers here equal its board row for that month and the drill-down
  lists they link to (`lists.cases_for(…, month=…)`, unit=<the unit>). The rate is on time / judged (on time
  + late), as `boards.Counts` computes it; a case without a promised due is neither.
- **好差评**: the applicants' ratings of the cases **closed in the month** (办结, 不予办理 or 撤回: a citizen
  rates the handling whatever its outcome), as given up to now. Why this cohort and not "ratings given in the
  month": it is the same closed-case range of the same index as the on-time numbers (one statement per level,
  the rating joined by its unique case id; `ratings.at` has no index), and a month's rating then speaks of that
  month's work. The price: a past month's rating count still grows while late ratings come in (a citizen
  rates after closure). The score is the average (5 非常满意 … 1 非常不满意); 好评 are the ratings of 基本满意
  and above, 差评 the two below, as in the national 好差评 rules.

Ranking: competition ranking (1, 2, 2, 4) on the exact value (equal fractions tie; 2/3 is not 0.667). A unit
with fewer than `MIN_SAMPLE` judged cases (on-time order) or ratings (好差评 order) is not ranked: it is listed
after the ranked ones as 样本不足 — five cases are too few to put a village last in a city of 1,184.

Cost: one aggregate statement per level — the month's closed cases of the subtree (`ix_cases_closed_county`,
`ix_cases_closed_township` or `ix_cases_closed_at`, as the subtree's condition names the column), left-joined
to their ratings, grouped by township or village, joined to the units of that level (those with no closed
case are listed with zeros). The ranks are computed over the units (at most 1,184 rows), never over cases.
"""
from __future__ import annotations

from bisect import bisect_left
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from fractions import Fraction
from typing import Any

from sqlalchemy import ColumnElement, case, func, select
from sqlalchemy.orm import Session, aliased

from .. import clock
from ..errors import InvalidInput
from ..models import Case, OrgUnit, Rating
from ..queries.scope import Who
from ..queries.serialize import JsonModel
from ..vocab import Level
from . import scope
from .export import Column, Table
from .measures import CLOSED_MEASURES, Measure, Month, case_predicate

#: a unit needs this many judged cases (on-time order) or ratings (好差评 order) to be ranked
MIN_SAMPLE = 5
#: the orders of a ranking: by on-time rate, by 好差评 (average score)
ORDERS = ("on_time", "rating")
#: the lowest 好评 score: 基本满意 (3) and above; 不满意 (2) and 非常不满意 (1) are 差评
GOOD_SCORE = 3
#: the levels a unit's ranking ranks
LEVELS: dict[str, tuple[str, ...]] = {
    Level.CITY: (Level.TOWNSHIP, Level.VILLAGE), Level.COUNTY: (Level.TOWNSHIP, Level.VILLAGE),
    Level.TOWNSHIP: (Level.VILLAGE,), Level.VILLAGE: ()}
#: what one statement yields per unit
COLUMNS = ("completed", "on_time", "late", "timed", "workdays", "closed", "rated", "score_sum", "good")


@dataclass(frozen=True)
class RankCounts(JsonModel):
    """A unit's month. `completed`, `on_time`, `late`, `timed`, `workdays` as on the board; `closed` every
    case closed in the month (any outcome: the rating's cohort), `rated` how many of those were rated,
    `score_sum` their scores, `good` the 好评 among them. Rates and averages are derived (None: no base)."""
    completed: int = 0
    on_time: int = 0
    late: int = 0
    timed: int = 0
    workdays: int = 0
    closed: int = 0
    rated: int = 0
    score_sum: int = 0
    good: int = 0
    on_time_rate: float | None = None
    average_workdays: float | None = None
    average_score: float | None = None
    good_share: float | None = None

    @classmethod
    def of(cls, values: Any) -> RankCounts:
        v = {c: int(getattr(values, c, None) or 0) for c in COLUMNS}
        judged = v["on_time"] + v["late"]
        return cls(**v, on_time_rate=v["on_time"] / judged if judged else None,
                   average_workdays=round(v["workdays"] / v["timed"], 2) if v["timed"] else None,
                   average_score=round(v["score_sum"] / v["rated"], 2) if v["rated"] else None,
                   good_share=v["good"] / v["rated"] if v["rated"] else None)

    @property
    def judged(self) -> int:
        """The cases the on-time rate is of (completed with a promised due)."""
        return self.on_time + self.late

    @property
    def bad(self) -> int:
        """差评: the ratings below 基本满意."""
        return self.rated - self.good

    def sample(self, order: str) -> int:
        return self.judged if order == "on_time" else self.rated

    def value(self, order: str) -> Fraction | None:
        """The exact value the order ranks by (None: nothing to rank)."""
        if order == "on_time":
            return Fraction(self.on_time, self.judged) if self.judged else None
        return Fraction(self.score_sum, self.rated) if self.rated else None


@dataclass(frozen=True)
class RankingRow(JsonModel):
    """A ranked unit. `parent` is the unit above it (a village's township, a township's county)."""
    code: str
    name: str
    path: str  # its place in the tree (/4309/430902/…/): whose reports may see it
    parent: str
    counts: RankCounts
    on_time_rank: int | None  # None: 样本不足 (fewer than the minimum of judged cases)
    rating_rank: int | None  # None: 样本不足 (fewer than the minimum of ratings)

    def rank(self, order: str) -> int | None:
        return self.on_time_rank if order == "on_time" else self.rating_rank


@dataclass(frozen=True)
class RankingLevel(JsonModel):
    """One level's table: the ranked units by rank, then the units short of the sample (样本不足)."""
    level: str
    rows: tuple[RankingRow, ...]
    ranked: int  # how many of the rows have a rank in the ranking's order


@dataclass(frozen=True)
class Ranking(JsonModel):
    unit: scope.ReportUnit
    chain: tuple[scope.ReportUnit, ...]
    month: date  # its first day
    month_complete: bool  # False: the current month, counted up to `generated_at`
    order: str
    min_sample: int
    levels: tuple[RankingLevel, ...]
    generated_at: datetime

    @property
    def month_code(self) -> str:
        return f"{self.month:%Y-%m}"


def check_order(order: Any) -> str:
    if order not in ORDERS:
        shown = str(order)[:20]
        raise InvalidInput(f"排名方式只能是 {' 或 '.join(ORDERS)} / order must be one of {', '.join(ORDERS)}",
                           reason="report.order_invalid", order=shown)
    return str(order)


def ranks(values: Sequence[Fraction | None]) -> list[int | None]:
    """Competition ranks, the highest value first: 1, 2, 2, 4 (None stays unranked)."""
    descending = sorted(-v for v in values if v is not None)
    return [None if v is None else bisect_left(descending, -v) + 1 for v in values]


def _sum(cond: ColumnElement[bool], value: Any = 1) -> ColumnElement[Any]:
    return func.sum(case((cond, value), else_=0))


def level_rows(session: Session, sub: scope.Subtree, month: Month, level: str) -> list[Any]:
    """The month's numbers of every unit of `level` in the subtree, by code: one statement."""
    key = scope.UNIT_COLUMN[level]
    timed = case_predicate(Measure.TIMED, month)
    closed = (select(key.label("key"),
                     *[_sum(case_predicate(m, month)).label(m.value) for m in CLOSED_MEASURES],
                     _sum(timed, Case.workdays_taken).label("workdays"),
                     func.count().label("closed"),
                     func.count(Rating.id).label("rated"),
                     func.coalesce(func.sum(Rating.score), 0).label("score_sum"),
                     _sum(Rating.score >= GOOD_SCORE).label("good"))
              .select_from(Case).outerjoin(Rating, Rating.case_id == Case.id)
              .where(Case.closed_at >= month.start, Case.closed_at < month.end, sub.condition())
              .group_by(key).subquery("closed"))
    parent = aliased(OrgUnit, name="parent")
    return list(session.execute(
        select(OrgUnit.code, OrgUnit.name, OrgUnit.path, parent.name.label("parent"), *[closed.c[c] for c in COLUMNS])
        .select_from(OrgUnit).join(parent, parent.id == OrgUnit.parent_id)
        .outerjoin(closed, closed.c.key == OrgUnit.id)
        .where(OrgUnit.level == level, OrgUnit.path.startswith(sub.unit.path))
        .order_by(OrgUnit.code)))


def rank_level(level: str, found: Sequence[Any], order: str, min_sample: int) -> RankingLevel:
    """Rank one level's units both ways and list them in `order`: ranked by rank (more cases first among
    equals, then by code), then those short of the sample (the most cases first)."""
    counts = [RankCounts.of(r) for r in found]
    by: dict[str, list[int | None]] = {
        o: ranks([c.value(o) if c.sample(o) >= min_sample else None for c in counts]) for o in ORDERS}
    rows = [RankingRow(r.code, r.name, r.path, r.parent or "", c, by["on_time"][i], by["rating"][i])
            for i, (r, c) in enumerate(zip(found, counts, strict=True))]
    rows.sort(key=lambda r: (r.rank(order) is None, r.rank(order) or 0, -r.counts.sample(order), r.code))
    return RankingLevel(level, tuple(rows), sum(1 for r in rows if r.rank(order) is not None))


def ranking(session: Session, actor: Who, unit_code: str | None = None, month: Any = None, order: str = "on_time",
            *, now: datetime | None = None, min_sample: int = MIN_SAMPLE) -> Ranking:
    """The ranking of the units below `unit_code` (default: the reader's unit; outside the reader's subtree:
    `NotFound`) for `month` (YYYY-MM; default the last complete month), in `order` (one of ORDERS). One
    statement per level."""
    sub = scope.subtree(session, actor, unit_code)
    order = check_order(order)
    now = now or clock.now()
    chosen = Month.parse(month, now) if month not in (None, "") else Month.of(now).previous()
    if isinstance(min_sample, bool) or not isinstance(min_sample, int) or min_sample < 1:
        raise ValueError("min_sample must be a positive int")
    levels = tuple(rank_level(level, level_rows(session, sub, chosen, level), order, min_sample)
                   for level in LEVELS[Level(sub.unit.level)])
    return Ranking(sub.unit, sub.chain, chosen.first_day, chosen.end <= now, order, min_sample, levels, now)


# ------------------------------------------------------------------------------------------- files
LEVEL_TITLES = {Level.TOWNSHIP: "乡镇排名", Level.VILLAGE: "村排名"}
_PARENT_HEADERS = {Level.TOWNSHIP: "所属县（市、区）", Level.VILLAGE: "所属乡镇"}
ORDER_NAMES = {"on_time": "按时办结率", "rating": "好差评"}


def level_table(r: Ranking, level: RankingLevel) -> Table:
    """One level of a ranking as a sheet: every unit, in the page's order (the page shows the top and the
    bottom of a long one)."""
    cols = (Column("名次", "int", 6), Column("单位", width=18), Column("代码", width=14),
            Column(_PARENT_HEADERS[Level(level.level)], width=14), Column("办结", "int", 8),
            Column("按时办结", "int", 9), Column("超时办结", "int", 9), Column("按时办结率", "percent", 11),
            Column("平均用时（工作日）", "decimal", 14), Column("评价数", "int", 8), Column("平均评分", "decimal", 9),
            Column("好评率", "percent", 9), Column("差评", "int", 7), Column("说明", width=10))
    rows = [[row.rank(r.order), row.name, row.code, row.parent, c.completed, c.on_time, c.late, c.on_time_rate,
             c.average_workdays, c.rated, c.average_score, c.good_share, c.bad,
             "" if row.rank(r.order) is not None else "样本不足"]
            for row in level.rows for c in (row.counts,)]
    return Table(LEVEL_TITLES[Level(level.level)], cols, rows)


def ranking_tables(r: Ranking) -> list[Table]:
    """The ranking as files: a sheet per level."""
    return [level_table(r, level) for level in r.levels]
