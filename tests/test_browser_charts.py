"""The charts page in Chromium (issue #10 §3): the county supervisor opens 图表 from the board's tabs; every
chart is drawn as SVG by the vendored ECharts under the app's Content-Security-Policy; the table under each
chart, one click away, holds the numbers the chart draws; clicking a bar opens the list behind it, whose total
is the bar's number; the page fits a 1366×768 screen and a 360-px phone. Screenshots:
/tmp/yicun_charts.png (1366×768, the whole page) and /tmp/yicun_charts_phone.png (360 px).

The server answers at the real time, so the cases are placed in the last weeks before it (a manual clock
while they are made), and the sweep at the real time issues the red cards of the late ones.
"""
from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

from engine import cases, clock, db, timers

from .conftest import CLERK, start, user
from .test_browser import demo_db, pytestmark, served_browser, sign_in  # noqa: F401
from .test_reports import finish

SUPERVISOR = "supervisor-430902"  # 资阳区监察员
SHOT = Path("/tmp/yicun_charts.png")
PHONE_SHOT = Path("/tmp/yicun_charts_phone.png")
CHARTS = ("weekly", "overdue", "on_time_township", "cards")


def _world(engine: Any) -> None:
    """Cases over the last three weeks at 邹家村: some completed, one withdrawn, the rest left to run late."""
    now = clock.now()
    with clock.using(clock.ManualClock(now - timedelta(days=20))):
        for _ in range(3):
            start(engine, service="FX-PENSION")
        start(engine, service="FX-DIBAO")
    with clock.using(clock.ManualClock(now - timedelta(days=13))):
        done = start(engine, service="FX-PENSION").case_number
        gone = start(engine, service="FX-DIBAO").case_number
        with db.transaction(engine) as s:
            cases.withdraw_case(s, gone, user(engine, CLERK), "申请人撤回")
    with clock.using(clock.ManualClock(now - timedelta(days=12))):
        finish(engine, done)
    with clock.using(clock.ManualClock(now - timedelta(days=1))):
        quick = start(engine, service="FX-PENSION").case_number
        finish(engine, quick)
    timers.sweep(engine, now)


def _drawn(page: Any, chart: str) -> list[list[Any]]:
    """What ECharts draws in a chart: each series' data."""
    return page.evaluate("id => echarts.getInstanceByDom(document.querySelector(`#chart-${id} .chart-canvas`))"
                         ".getOption().series.map(s => s.data)", chart)


def _table(page: Any, chart: str) -> tuple[list[str], list[list[str]]]:
    """A chart's table as shown: its column headers and its rows' cells."""
    box = page.locator(f"#chart-{chart} details.chart-data")
    head = [th.inner_text().strip() for th in box.locator("thead th").all()]
    rows = [[td.inner_text().strip() for td in tr.locator("th, td").all()] for tr in box.locator("tbody tr").all()]
    return head, rows


def _as_shown(value: Any, percent: bool) -> str:
    if isinstance(value, dict):  # a rate of no closures: an empty bar labelled "—"
        assert value["none"] and value["value"] == 0 and percent, value
        return "—"
    if value in (None, "-"):
        return "—"
    return f"{value * 100:.1f}%" if percent else str(value)


def test_the_charts_are_drawn_with_their_numbers_one_click_away(demo_db, tmp_path):  # noqa: F811
    _world(demo_db)
    with served_browser(demo_db, tmp_path) as (base, browser):
        errors: list[str] = []

        def watch(page: Any) -> None:
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.on("console", lambda m: errors.append(m.text) if "Content Security Policy" in m.text or (
                m.type == "error" and not m.text.startswith("Failed to load resource")) else None)  # (favicon)
            page.on("response", lambda r: errors.append(f"{r.status} {r.url}")
                    if r.status >= 400 and not r.url.endswith("/favicon.ico") else None)

        page = browser.new_page(viewport={"width": 1366, "height": 768}, locale="zh-CN")
        watch(page)
        sign_in(page, base, SUPERVISOR)
        page.click("nav.main >> text=报表")
        page.wait_for_url(f"{base}/reports")
        page.click("nav.report-nav >> text=图表")
        page.wait_for_url(f"{base}/reports/430902/charts")
        for chart in CHARTS:
            page.wait_for_selector(f"#chart-{chart} .chart-canvas svg path", state="attached")
            assert page.locator(f"#chart-{chart} details.chart-data").get_attribute("open") is None  # closed
        svg_text = page.inner_text("#chart-weekly .chart-canvas")  # SVG: its words are the page's
        assert "本周" in svg_text and "新收" in svg_text and "办结" in svg_text
        assert "%" in page.inner_text("#chart-on_time_township .chart-canvas")
        assert page.evaluate("document.documentElement.scrollWidth") <= 1366

        # the table under each chart holds the numbers it draws
        for chart in CHARTS:
            page.click(f"#chart-{chart} details.chart-data summary")
            head, rows = _table(page, chart)
            drawn = _drawn(page, chart)
            names = page.evaluate("id => echarts.getInstanceByDom(document.querySelector(`#chart-${id} "
                                  ".chart-canvas`)).getOption().series.map(s => s.name)", chart)
            assert rows and drawn and len(drawn) == len(names)
            for name, data in zip(names, drawn, strict=True):
                col = head.index(name)
                assert [row[col] for row in rows] == [_as_shown(v, chart.startswith("on_time")) for v in data], (
                    chart, name)
            assert "收起数据" in page.inner_text(f"#chart-{chart} details.chart-data summary")
        weekly_head, weekly = _table(page, "weekly")
        opened = [int(row[weekly_head.index("新收")]) for row in weekly]
        assert sum(opened) == 7 and weekly[-1][0].endswith("（本周，截至目前）")
        _, cards = _table(page, "cards")
        assert cards and int(cards[0][1]) > 0  # the late cases' red cards
        page.screenshot(path=str(SHOT), full_page=True)

        # a bar clicked: the list behind it, whose total is the bar's number
        week = max(range(len(opened)), key=lambda i: opened[i])
        box = page.locator("#chart-weekly .chart-canvas")
        box.scroll_into_view_if_needed()
        x, y = page.evaluate("i => { const c = echarts.getInstanceByDom(document.querySelector('#chart-weekly "
                             ".chart-canvas')); const bar = c.getModel().getSeriesByIndex(0).getData()"
                             ".getItemLayout(i); return [bar.x + bar.width / 2, bar.y + bar.height / 2]; }", week)
        rect = box.bounding_box()
        assert rect is not None
        with page.expect_navigation():
            page.mouse.click(rect["x"] + x, rect["y"] + y)
        assert "/reports/430902/charts/cases?series=opened&week=" in page.url
        assert page.inner_text("p.report-links .total") == f"共 {opened[week]} 件"
        assert page.locator("table.report-rows tbody tr").count() == opened[week]
        page.go_back()

        # a number of a table clicked: the same list
        page.click("#chart-overdue details.chart-data summary")
        head, rows = _table(page, "overdue")
        red = head.index("红牌")
        last = page.locator("#chart-overdue details.chart-data tbody tr").last.locator("td").nth(red - 1)
        assert last.inner_text().strip() == rows[-1][red] and int(rows[-1][red]) > 0
        last.locator("a").click()
        page.wait_for_url("**/charts/cases?series=red_cards&week=*")
        assert page.inner_text("p.report-links .total") == f"共 {rows[-1][red]} 张"

        # a 360-px phone: nothing wider than the screen, every chart drawn
        phone = browser.new_page(viewport={"width": 360, "height": 740}, locale="zh-CN", is_mobile=True,
                                 has_touch=True, device_scale_factor=2)
        watch(phone)
        sign_in(phone, base, SUPERVISOR)
        phone.goto(f"{base}/reports/430902/charts")
        for chart in CHARTS:
            phone.wait_for_selector(f"#chart-{chart} .chart-canvas svg path", state="attached")
            width = phone.evaluate("id => document.querySelector(`#chart-${id} .chart-canvas svg`)"
                                   ".getBoundingClientRect().width", chart)
            assert 250 < width <= 360, (chart, width)
        phone.click("#chart-weekly details.chart-data summary")
        assert phone.evaluate("document.documentElement.scrollWidth") <= 360
        phone.screenshot(path=str(PHONE_SHOT), full_page=True)
        assert errors == []
    for shot in (SHOT, PHONE_SHOT):
        assert shot.stat().st_size > 10_000, shot
