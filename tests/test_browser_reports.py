"""The supervisor's reports in Chromium (issue #10, "tests that must exist"): the county supervisor signs in,
opens 报表, drills from the county's board to a township's, to a village's, to the list behind the village's
overdue number and from there to a case; sends a 督办 on its late step; downloads the board as an Excel file
(opened with openpyxl: the same townships and numbers as the page); the clerk holding the step signs in and
sees the 督办. Screenshots: /tmp/yicun_reports_county.png, /tmp/yicun_reports_village.png,
/tmp/yicun_reports_list.png.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import openpyxl

from .conftest import CLERK
from .test_browser import demo_db, pytestmark, served_browser, sign_in  # noqa: F401
from .test_browser_supervision import SUPERVISOR, _overdue_case

COUNTY_SHOT = Path("/tmp/yicun_reports_county.png")
VILLAGE_SHOT = Path("/tmp/yicun_reports_village.png")
LIST_SHOT = Path("/tmp/yicun_reports_list.png")
TOWNSHIP, VILLAGE = "迎风桥镇", "邹家村"
MESSAGE = "请今日办结并说明超期原因。"


def _board_rows(page: Any) -> dict[str, list[str]]:
    """The board's breakdown table: row name → its numbers as shown."""
    rows: dict[str, list[str]] = {}
    for tr in page.locator("table.board tbody tr").all():
        name = tr.locator("th > a, th > bdi").first.inner_text().strip()  # the name (its code beside it)
        rows[name] = [td.inner_text().strip() for td in tr.locator("td").all()]
    return rows


def test_a_county_supervisor_drills_down_supervises_and_downloads(demo_db, tmp_path):  # noqa: F811
    number, task_id = _overdue_case(demo_db)
    with served_browser(demo_db, tmp_path) as (base, browser):
        errors: list[str] = []
        sup = browser.new_page(viewport={"width": 1366, "height": 768}, locale="zh-CN", accept_downloads=True)
        sup.on("pageerror", lambda exc: errors.append(str(exc)))
        sup.on("response", lambda r: errors.append(f"{r.status} {r.url}")
               if r.status >= 400 and not r.url.endswith("/favicon.ico") else None)
        sign_in(sup, base, SUPERVISOR)

        # county → township → village, each by clicking the unit's name on the board
        sup.click("nav.main >> text=报表")
        sup.wait_for_url(f"{base}/reports")
        county = _board_rows(sup)
        assert TOWNSHIP in county and county[TOWNSHIP][2] == "1"  # its one overdue case (超期 column)
        sup.screenshot(path=str(COUNTY_SHOT))
        sup.click(f"table.board th a:has-text('{TOWNSHIP}')")
        sup.wait_for_url(f"{base}/reports/430902102")
        assert TOWNSHIP in sup.inner_text("h1")
        sup.click(f"table.board th a:has-text('{VILLAGE}')")
        sup.wait_for_url(f"{base}/reports/430902102201")
        assert VILLAGE in sup.inner_text("h1")
        crumbs = sup.inner_text("nav.report-crumbs")
        assert "资阳区" in crumbs and TOWNSHIP in crumbs and VILLAGE in crumbs
        sup.screenshot(path=str(VILLAGE_SHOT))

        # the village's overdue number → the list behind it (its count equals the number) → the case
        tile = sup.locator("ul.tiles li.overdue a")
        shown = tile.locator("b").inner_text()
        tile.click()
        sup.wait_for_url(f"{base}/reports/430902102201/cases?measure=overdue")
        assert sup.inner_text("p.report-links .total") == f"共 {shown} 件"
        assert sup.locator("table.report-rows tbody tr").count() == int(shown) == 1
        sup.screenshot(path=str(LIST_SHOT))
        sup.click(f"table.report-rows a:has-text('{number}')")
        sup.wait_for_url(f"{base}/cases/{number}")

        # 督办 on the late step
        form = sup.locator("form[data-supervise]")
        form.locator("select[name=task]").select_option(str(task_id))
        form.locator("textarea[name=message]").fill(MESSAGE)
        form.locator("button[type=submit]").click()
        sup.wait_for_url(f"{base}/cases/{number}#supervision")
        assert MESSAGE in sup.inner_text("ol.supervisions")

        # the county board as Excel: the same townships and overdue numbers as the page
        sup.goto(f"{base}/reports")
        with sup.expect_download() as got:
            sup.click("a:has-text('下载 Excel')")
        path = tmp_path / "board.xlsx"
        got.value.save_as(path)
        book = openpyxl.load_workbook(path)
        sheet = book["按单位"]  # the breakdown by the units below (beside 总览 and the other breakdowns)
        header = [c.value for c in sheet[1]]
        overdue_col = header.index("超期")
        in_file = {row[0].value: row[overdue_col].value for row in sheet.iter_rows(min_row=2)
                   if row[0].value in county}
        assert in_file and all(str(v) == county[name][2] for name, v in in_file.items())

        # the clerk holding the step sees the 督办
        clerk = browser.new_page(viewport={"width": 1366, "height": 768}, locale="zh-CN")
        sign_in(clerk, base, CLERK)
        clerk.goto(f"{base}/notifications")
        assert MESSAGE in clerk.inner_text("ul.notes")
        clerk.goto(f"{base}/tasks/{task_id}")
        assert MESSAGE in clerk.inner_text("p.supervision-notice")
        assert errors == []
    for shot in (COUNTY_SHOT, VILLAGE_SHOT, LIST_SHOT):
        assert shot.stat().st_size > 10_000, shot
