"""The reports as files: Excel (openpyxl) and CSV, with Chinese headers.

Excel: a sheet per table — the board gives one for its overall numbers and one per breakdown — with the
header row frozen, column widths set, instants as real date-time cells and dues as real date cells (both
Asia/Shanghai wall time: Excel has no time zones), rates as percentages. Written with openpyxl's write-only
workbook, so rows go to disk as they come; CSV is yielded line by line (UTF-8 with a BOM, which Excel needs
to read Chinese). Either holds at most `MAX_EXPORT_ROWS` rows: a longer list is refused before a row is
read ("narrow the filters"), never cut short silently.

The rows are the lists' own (`lists.walk`, `overdue.walk`: keyset pages of the same query the page shows),
so a file holds exactly the rows its page lists, in the same order.
"""
from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, cast

from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.styles import Font
from openpyxl.utils import get_column_letter
from openpyxl.worksheet._write_only import WriteOnlyWorksheet
from sqlalchemy.orm import Session

from .. import clock
from ..clock import due_date
from ..errors import InvalidInput
from ..queries.scope import Who
from ..vocab import CardColour, CaseStatus, Level, WarningLevel
from . import boards, lists, measures, overdue, scope
from .measures import Measure, Subject

#: the most rows one file may hold
MAX_EXPORT_ROWS = 100_000

MEASURE_NAMES = {
    Measure.OPEN: "在办", Measure.DUE_SOON: "即将到期", Measure.OVERDUE: "超期", Measure.PAUSED: "暂停计时",
    Measure.COMPLETED: "本月办结", Measure.ON_TIME: "按时办结", Measure.LATE: "超时办结",
    Measure.TIMED: "计入用时", Measure.CARDS: "未销黄红牌",
}
BREAKDOWN_NAMES = {"unit": "按单位", "item": "按事项", "department": "按部门", "clerk": "按首问责任人",
                   "agent": "按经办人"}


@dataclass(frozen=True)
class Column:
    """A column of a file: its header, how its cells are written, its width (Excel characters)."""
    header: str
    kind: str = "text"  # text | int | percent | decimal | datetime | date | bool
    width: int = 12


@dataclass(frozen=True)
class Table:
    """One sheet (or one CSV file): a title, the columns, the rows (an iterable, read once)."""
    title: str
    columns: tuple[Column, ...]
    rows: Iterable[Sequence[Any]]


def bounded(total: int) -> None:
    if total > MAX_EXPORT_ROWS:
        raise InvalidInput(f"{total} 行，超过导出上限 {MAX_EXPORT_ROWS} 行，请缩小范围 / {total} rows, more than the "
                           f"{MAX_EXPORT_ROWS} a file may hold: narrow the filters", reason="report.too_many_rows",
                           rows=total, limit=MAX_EXPORT_ROWS)


# ------------------------------------------------------------------------------------------- the board
def _measure_columns(counted: Sequence[Measure]) -> list[Column]:
    cols = [Column(MEASURE_NAMES[m], "int", 10) for m in counted if m is not Measure.TIMED]
    if Measure.COMPLETED in counted:
        cols += [Column("按时办结率", "percent", 11), Column("平均用时（工作日）", "decimal", 14)]
    return cols


def _measure_values(counted: Sequence[Measure], counts: boards.Counts) -> list[Any]:
    values: list[Any] = [counts.count(m) for m in counted if m is not Measure.TIMED]
    if Measure.COMPLETED in counted:
        values += [counts.on_time_rate, counts.average_workdays]
    return values


_FIRST_COLUMNS = {"unit": ("单位", "代码"), "item": ("事项", "事项编码"), "department": ("部门", ""),
                  "clerk": ("首问责任人", "账号"), "agent": ("经办人", "账号")}


def board_table(board: boards.Board) -> Table:
    """One breakdown of a board as a table (its rows as the page lists them)."""
    name, code = _FIRST_COLUMNS[board.by]
    cols = (Column(name, width=24), Column(code, width=16), *_measure_columns(board.measures))
    rows = [[r.name or "（无）", r.code or "", *_measure_values(board.measures, r.counts)] for r in board.rows]
    return Table(BREAKDOWN_NAMES[board.by], cols, rows)


def overall_table(board: boards.Board) -> Table:
    """The unit's own numbers this month (the board's summary line)."""
    cols = (Column("单位", width=24), Column("代码", width=16), Column("月份", "date", 12),
            *_measure_columns(tuple(Measure)))
    return Table("总览", cols, [[board.unit.name, board.unit.code, board.month,
                                *_measure_values(tuple(Measure), board.overall)]])


def board_tables(session: Session, actor: Who, unit_code: str | None = None,
                 now: datetime | None = None) -> list[Table]:
    """The board as sheets: the overall numbers, then one per breakdown."""
    found = boards.all_breakdowns(session, actor, unit_code, now)
    return [overall_table(found[0]), *(board_table(b) for b in found)]


# ------------------------------------------------------------------------------------------- drill-down lists
CASE_COLUMNS = (Column("办件号", width=16), Column("事项编码", width=12), Column("事项", width=28),
                 Column("申请人", width=10), Column("村", width=12), Column("状态", width=8),
                 Column("预警", width=8), Column("受理时间", "datetime", 17), Column("承诺期限", "date", 12),
                 Column("暂停计时起", "datetime", 17), Column("办结时间", "datetime", 17),
                 Column("按时办结", "bool", 9), Column("用时（工作日）", "int", 13), Column("首问责任人", width=12))
SUBJECT_COLUMNS = {
    Subject.CASE: (),
    Subject.TASK: (Column("环节", width=20), Column("环节期限", "date", 12), Column("环节预警", width=9),
                   Column("经办人", width=12)),
    Subject.CARD: (Column("黄红牌", width=8), Column("发牌时间", "datetime", 17), Column("原因", width=36),
                   Column("经办人", width=12)),
}


def _label(kind: type[Any], value: str | None) -> str:
    try:
        return str(kind(value).zh) if value else ""
    except ValueError:
        return value or ""


def list_row(row: lists.ReportRow, subject: Subject) -> list[Any]:
    values: list[Any] = [
        row.case_number, row.service_code, row.service_name, row.applicant_name, row.village,
        _label(CaseStatus, row.status), _label(WarningLevel, row.warning_level), row.accepted_at,
        due_date(row.promised_due_at) if row.promised_due_at else None, row.paused_at, row.closed_at, row.on_time,
        row.workdays_taken, row.first_clerk or ""]
    if subject is Subject.TASK:
        values += [row.step or "", due_date(row.step_due_at) if row.step_due_at else None,
                   _label(WarningLevel, row.step_warning_level), row.assignee or ""]
    elif subject is Subject.CARD:
        values += [_label(CardColour, row.card_color), row.card_issued_at, row.card_reason or "", row.assignee or ""]
    return values


def list_table(session: Session, actor: Who, unit_code: str | None, measure: Any, *, now: datetime | None = None,
               month: Any = None, **filters: Any) -> Table:
    """Every row behind a number of the board (what `lists.cases_for` pages through; `month` as there),
    bounded."""
    sub = scope.subtree(session, actor, unit_code)
    m = measures.parse_measure(measure)
    now = now or clock.now()
    chosen = measures.month_of(month, now) if month not in (None, "") else None
    query, _ = lists.list_query(session, sub, m, filters, now, chosen)
    bounded(session.scalar(query.count()) or 0)
    rows = (list_row(r, query.subject) for r in lists.walk(session, query))
    return Table(MEASURE_NAMES[m], CASE_COLUMNS + SUBJECT_COLUMNS[query.subject], rows)


# ------------------------------------------------------------------------------------------- overdue report
_OVERDUE_COLUMNS = (Column("办件号", width=16), Column("事项编码", width=12), Column("事项", width=28),
                    Column("申请人", width=10), Column("部门", width=10), Column("环节", width=20),
                    Column("层级", width=8), Column("所在单位", width=14), Column("村", width=12),
                    Column("经办人", width=12), Column("首问责任人", width=12), Column("环节期限", "date", 12),
                    Column("超期（工作日）", "int", 13), Column("预警", width=8), Column("办件预警", width=9),
                    Column("黄红牌", width=8), Column("情况说明", width=9))


def overdue_row(row: overdue.OverdueRow) -> list[Any]:
    return [row.case_number, row.service_code, row.service_name, row.applicant_name, row.department or "",
            row.step, _label(Level, row.level), row.unit, row.village, row.assignee or "", row.first_clerk or "",
            due_date(row.due_at), row.days_overdue, _label(WarningLevel, row.warning_level),
            _label(WarningLevel, row.case_warning_level), _label(CardColour, row.card_color),
            ("已说明" if row.explained else "未说明") if row.card_color else ""]


def overdue_table(session: Session, actor: Who, filters: Any = None, sort: str = "overdue",
                  now: datetime | None = None) -> Table:
    """Every row of the overdue report under `filters`, in the order `sort` (bounded)."""
    now = now or clock.now()
    if sort not in overdue.SORTS:
        raise InvalidInput(f"sort must be one of {', '.join(overdue.SORTS)}", reason="report.sort_invalid",
                           sort=str(sort)[:20])
    query = overdue.overdue_query(session, actor, filters, now)
    bounded(session.scalar(query.count()) or 0)
    return Table("超期报告", _OVERDUE_COLUMNS, (overdue_row(r) for r in overdue.walk(session, query, sort, now)))


# ------------------------------------------------------------------------------------------- writers
_FORMATS = {"datetime": "yyyy-mm-dd hh:mm", "date": "yyyy-mm-dd", "percent": "0.0%", "decimal": "0.0", "int": "0"}
_BAD_TITLE = str.maketrans({c: "_" for c in "[]:*?/\\"})


def _excel_value(col: Column, value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, datetime):
        return clock.local(value).replace(tzinfo=None)  # Excel has no time zones: Asia/Shanghai wall time
    if col.kind == "bool":
        return "是" if value else "否"
    return value


def _cell(ws: WriteOnlyWorksheet, col: Column, value: Any) -> Any:
    value = _excel_value(col, value)
    if isinstance(value, str):
        if not value.startswith("="):
            return value
        cell = WriteOnlyCell(ws, value=value)
        cell.data_type = "s"  # what a person typed ("=…") is text, never a formula Excel would run
        return cell
    if value is None or col.kind not in _FORMATS or not isinstance(value, (int, float, date)):
        return value
    cell = WriteOnlyCell(ws, value=cast(Any, value))  # a date is a real date cell too (the stubs say datetime)
    cell.number_format = _FORMATS[col.kind]
    return cell


def xlsx(tables: Sequence[Table]) -> bytes:
    """An Excel workbook of the tables, a sheet each."""
    wb = Workbook(write_only=True)
    bold = Font(bold=True)
    for table in tables:
        ws = wb.create_sheet(title=table.title.translate(_BAD_TITLE)[:31])
        ws.freeze_panes = "A2"
        for i, col in enumerate(table.columns, 1):
            ws.column_dimensions[get_column_letter(i)].width = col.width
        header = []
        for col in table.columns:
            cell = WriteOnlyCell(ws, value=col.header)
            cell.font = bold
            header.append(cell)
        ws.append(header)
        for row in table.rows:
            ws.append([_cell(ws, col, value) for col, value in zip(table.columns, row, strict=True)])
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


def _text(col: Column, value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return f"{clock.local(value):%Y-%m-%d %H:%M}"
    if isinstance(value, date):
        return value.isoformat()
    if col.kind == "bool":
        return "是" if value else "否"
    if col.kind == "percent":
        return f"{value * 100:.1f}%"
    if col.kind == "decimal":
        return f"{value:.1f}"
    text = str(value)
    # what a person typed must not become a formula when the file is opened in a spreadsheet (CSV injection)
    return "'" + text if col.kind == "text" and text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def csv_lines(table: Table) -> Iterator[str]:
    """The table as CSV, line by line: a BOM (Excel then reads UTF-8), the header, the rows."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")

    def line(values: Sequence[str]) -> str:
        buf.seek(0)
        buf.truncate()
        writer.writerow(values)
        return buf.getvalue()

    yield "\ufeff" + line([c.header for c in table.columns])
    for row in table.rows:
        yield line([_text(col, value) for col, value in zip(table.columns, row, strict=True)])
