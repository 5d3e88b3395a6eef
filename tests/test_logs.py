"""What a `yicun` process logs: SpiffWorkflow's per-task messages only when asked for, and the warning about
a year the calendar does not know once per process and year, however many commands run in it."""
from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import date

import pytest
from sqlalchemy import Engine

from engine import logs, settings, workdays
from engine.cli import main
from engine.workdays import WorkCalendar

from .conftest import CLERK, VILLAGE


@pytest.fixture
def unwarned(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(workdays, "_warned_years", set())  # as if this process had met no unknown year yet


@pytest.fixture
def spiff_levels() -> Iterator[None]:
    yield
    logs.quiet_spiffworkflow()  # --verbose turned them on for the rest of the process


def _unknown(caplog: pytest.LogCaptureFixture, year: int) -> list[logging.LogRecord]:
    return [r for r in caplog.records
            if r.name == "engine.workdays" and f"calendar unknown for {year}" in r.getMessage()]


def test_the_unknown_year_warning_comes_once_per_process(unwarned, caplog, capsys):
    due = ["calendar", "due", "--from", "2027-03-01", "--workdays", "5"]
    for _ in range(2):
        assert main(due) == 0
        assert "ESTIMATED" in capsys.readouterr().out  # every result still says so
    assert WorkCalendar().add_workdays(date(2027, 6, 1), 3).estimated  # a calendar of its own: no repeat either
    assert len(_unknown(caplog, 2027)) == 1
    assert main(["calendar", "due", "--from", "2028-03-01", "--workdays", "5"]) == 0
    assert len(_unknown(caplog, 2028)) == 1 and len(_unknown(caplog, 2027)) == 1  # another year, its own warning


def test_spiffworkflow_says_nothing_unless_verbose(seeded: Engine, caplog, capsys, spiff_levels):
    caplog.set_level(logging.INFO)  # a process logging INFO, as `yicun serve` and `yicun scheduler` do
    start = ["--db", seeded.url.render_as_string(hide_password=False), "case", "start", "--service", "FX-DIBAO",
             "--village", VILLAGE, "--applicant", "符建英", "--as", CLERK]
    assert main(start) == 0 and main(start) == 0  # two commands in one process, each running the workflow
    assert [r.name for r in caplog.records if r.name.startswith("spiff")] == []
    assert logging.getLogger("spiff.task").level == logging.WARNING  # so SpiffWorkflow builds no task-data extras
    assert main(["--verbose", *start]) == 0
    said = [r for r in caplog.records if r.name.startswith("spiff")]
    assert said and {r.name for r in said} >= {"spiff.task"} and "State changed to" in said[0].getMessage()
    capsys.readouterr()


def test_a_long_running_process_logs_at_the_configured_level(monkeypatch):
    assert logs.service_level(verbose=False) == logging.INFO  # the default
    for value, level in (("debug", logging.DEBUG), ("WARNING", logging.WARNING)):
        monkeypatch.setenv("YICUN_LOG_LEVEL", value)
        settings.get.cache_clear()
        assert logs.service_level(verbose=False) == level
    assert logs.service_level(verbose=True) == logging.DEBUG
