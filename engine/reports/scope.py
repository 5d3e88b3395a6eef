"""Whose numbers a report holds: the unit it is about, checked against its reader, and that unit's subtree
as SQL on the case columns (`village_id`, `township_id`, `county_id`).

Who may see which unit's reports is `policy.may_see_reports`; a unit outside that is "not found", exactly
as a unit that does not exist (DESIGN invariant 7): the reader learns nothing about the rest of the tree.
The subtree conditions name the columns the report indexes lead with: a county's cases by `county_id`, a
township's by its county *and* its own id, a village's by its county, its township and its own id. So the open
cases of any unit are one range of `ix_cases_open_report` (county, township, village, …; migration 0011), the
closed cases of a township or a village a range of the township's closed-case index (migration 0008, a village
having none of its own); the extra equalities always hold (a case's units are one chain), and on PostgreSQL
the statistics `st_cases_units` tell the planner so, lest it multiply their selectivities.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, literal_column, or_, select, true
from sqlalchemy.orm import InstrumentedAttribute, Session

from .. import policy
from ..errors import NotFound
from ..models import Case, OrgUnit
from ..policy import Actor
from ..queries.scope import Who, who
from ..queries.serialize import JsonModel
from ..vocab import Level

#: a unit code as the seed writes them (statistical division codes); anything else cannot be a unit
UNIT_CODE = re.compile(r"[0-9]{2,20}")
#: the case column that names a unit of each level
UNIT_COLUMN: dict[str, InstrumentedAttribute[int]] = {
    Level.COUNTY: Case.county_id, Level.TOWNSHIP: Case.township_id, Level.VILLAGE: Case.village_id}
#: the level below each level (the child units a board breaks its numbers down by)
CHILD_LEVEL = {Level.CITY: Level.COUNTY, Level.COUNTY: Level.TOWNSHIP, Level.TOWNSHIP: Level.VILLAGE}


@dataclass(frozen=True)
class ReportUnit(JsonModel):
    """A unit of the org tree as a report names it."""
    id: int
    code: str
    name: str
    level: str
    path: str


@dataclass(frozen=True)
class Subtree:
    """The unit a report is about, with its chain from the city down to it (the breadcrumbs)."""
    unit: ReportUnit
    chain: tuple[ReportUnit, ...]

    def condition(self) -> ColumnElement[bool]:
        """The cases of the unit and below, as SQL (the units above it named too: see the module docstring)."""
        level = self.unit.level
        if level == Level.CITY:
            return true()
        if level == Level.COUNTY:
            return Case.county_id == self.unit.id
        # a township's or a village's cases name the units above it too (see the module docstring)
        above = tuple(UNIT_COLUMN[u.level] == u.id for u in self.chain
                      if u.level in (Level.COUNTY, Level.TOWNSHIP) and u.id != self.unit.id)
        return and_(*above, UNIT_COLUMN[level] == self.unit.id)

    @property
    def child_level(self) -> str | None:
        """The level of the units right below (None for a village)."""
        return CHILD_LEVEL.get(Level(self.unit.level))

    def child_column(self) -> InstrumentedAttribute[int] | None:
        """The case column naming the unit right below this one (None for a village)."""
        child = self.child_level
        return UNIT_COLUMN[child] if child else None


def live_since(sub: Subtree, since: datetime) -> ColumnElement[bool]:
    """The subtree's cases that may hold a step completed since `since`: those open now or closed since (a step
    is completed while its case is open; none completes after its case closed) — the same rows as without it,
    but for a county or a township a range of the open-case and closed-case indexes, small enough to hash and
    join to the months' completed steps instead of looking up each of the city's steps' case one by one. The
    city: no condition (every case may)."""
    if sub.unit.level == Level.CITY:
        return true()
    return or_(Case.status == literal_column("'open'"), Case.closed_at >= since)  # a literal: the partial index


def not_found(code: Any) -> NotFound:
    shown = str(code)[:20]
    return NotFound(f"没有代码为 {shown} 的单位，或您无权查看 / no unit {shown}", reason="unit.not_found", unit=shown)


def _unit(row: Any) -> ReportUnit:
    return ReportUnit(row.id, row.code, row.name, row.level, row.path)


_UNIT_COLUMNS = (OrgUnit.id, OrgUnit.code, OrgUnit.name, OrgUnit.level, OrgUnit.path)


def require_reader(actor: Actor) -> None:
    """Only those who may see the reports of their own unit read reports at all (`Forbidden` otherwise:
    a clerk asking is not told "not found" about something every supervisor has)."""
    policy.require(policy.may_see_reports(actor, actor.unit_path), "report.see",
                   f"{actor.username} may not see reports")


def subtree(session: Session, user: Who, unit_code: str | None = None) -> Subtree:
    """The subtree of `unit_code` (default: the reader's own unit; the city for the operator), if the reader
    may see its reports; `NotFound` otherwise, whether it exists or not."""
    actor = who(user)
    require_reader(actor)
    if unit_code is None or unit_code == "":
        if actor.unit_id is None:  # the operator: the whole tree
            row = session.execute(select(*_UNIT_COLUMNS).where(OrgUnit.level == Level.CITY)).first()
        else:
            row = session.execute(select(*_UNIT_COLUMNS).where(OrgUnit.id == actor.unit_id)).first()
        if row is None:
            raise not_found("-")
    else:
        if not isinstance(unit_code, str) or not UNIT_CODE.fullmatch(unit_code):
            raise not_found(unit_code)
        row = session.execute(select(*_UNIT_COLUMNS).where(OrgUnit.code == unit_code)).first()
        if row is None or not policy.may_see_reports(actor, row.path):
            raise not_found(unit_code)
    unit = _unit(row)
    codes = unit.path.strip("/").split("/")
    chain = tuple(sorted((_unit(r) for r in session.execute(select(*_UNIT_COLUMNS).where(OrgUnit.code.in_(codes)))),
                         key=lambda u: len(u.path)))
    return Subtree(unit, chain)


def within(session: Session, sub: Subtree, unit_code: Any) -> ReportUnit:
    """A unit of the subtree (the subtree's own unit or one below it), named by a filter; `NotFound` for
    any other code."""
    if not isinstance(unit_code, str) or not UNIT_CODE.fullmatch(unit_code):
        raise not_found(unit_code)
    row = session.execute(select(*_UNIT_COLUMNS).where(OrgUnit.code == unit_code)).first()
    if row is None or not row.path.startswith(sub.unit.path):
        raise not_found(unit_code)
    return _unit(row)


def unit_condition(unit: ReportUnit) -> ColumnElement[bool]:
    """The cases of one unit of the subtree (a filter of a drill-down list)."""
    if unit.level == Level.CITY:
        return true()
    return UNIT_COLUMN[unit.level] == unit.id
