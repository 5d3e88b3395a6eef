"""The supervisor's reports, read side only (issue #10 §1, §2, §8): aggregate SQL over the projections (case,
task and card rows), never a workflow, never a loop over cases.

- `scope`     the unit a report is about, checked against its reader (`policy.may_see_reports`; anything
              else is "not found"), and its subtree as SQL
- `measures`  each number once, as a predicate: what the board counts and what its drill-down lists
- `boards`    the board: open, due soon, overdue, paused, completed this month, on-time rate, average working
              days, open cards — overall and by unit, item, department, clerk and holder (one statement each)
- `lists`     `cases_for`: the rows behind one number, keyset-paged, whose total is the number
- `overdue`   the overdue report: late steps, filtered, sorted, keyset-paged
- `export`    the same as Excel (openpyxl) and CSV files, bounded
- `trends`    the charts' numbers: cases opened and closed and the overdue trend week by week, on-time rate by
              township, open cards by item, and the lists behind them
- `ranking`   the monthly ranking of townships and villages by on-time rate and 好差评 (月度排名)
- `waits`     where cases wait: each step's working time (median, 90th percentile) this month against the last,
              by unit and person, and the steps holding the overdue work; `histogram` their portable percentiles
- `predict`   a predicted finish date for an open case from its item's and units' history, and the cases
              predicted to run late (预计将超期)

Like `engine.queries`, every function takes a session and the reader, and returns frozen dataclasses
holding datetimes (`to_json()` for the API).
"""
from __future__ import annotations

from .boards import Board, BoardRow, Counts, all_breakdowns, board, breakdowns
from .lists import ReportList, ReportRow, cases_for
from .measures import BREAKDOWNS, CLOSED_MEASURES, NONE, OPEN_MEASURES, Measure, Month, Subject, departments
from .overdue import CARD_STATES, LEVELS, SORTS, WARNINGS, OverdueReport, OverdueRow, overdue_report
from .scope import ReportUnit, Subtree, subtree

__all__ = [
    "BREAKDOWNS", "CARD_STATES", "CLOSED_MEASURES", "LEVELS", "NONE", "OPEN_MEASURES", "SORTS", "WARNINGS",
    "Board", "BoardRow", "Counts", "Measure", "Month", "OverdueReport", "OverdueRow", "ReportList", "ReportRow",
    "ReportUnit", "Subject", "Subtree", "all_breakdowns", "board", "breakdowns", "cases_for", "departments",
    "overdue_report", "subtree",
]
