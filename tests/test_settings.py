"""Operator settings (engine/settings.py): read once, each with its default and bounds, a bad value refused
by name before any command runs — and what each one changes."""
from __future__ import annotations

import os
from datetime import date
from pathlib import Path

import pytest

from engine import catalog, deadlines, expressions, orgs, settings, workdays
from engine.cli import main

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def bare_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No YICUN_* variable at all (the suite sets a few: see conftest)."""
    for name in [n for n in os.environ if n.startswith("YICUN_")]:
        monkeypatch.delenv(name)
    settings.get.cache_clear()


def test_the_defaults(bare_environment):
    s = settings.get()
    assert s == settings.Settings()
    assert (s.pause_grace_workdays, s.accept_backdate_workdays, s.login_max_failures, s.login_ip_max_failures,
            s.login_ip_window_minutes, s.login_lock_minutes, s.password_min_length) == (1, 10, 5, 20, 15, 15, 10)
    assert (s.password_hash_iterations, s.yellow_ratio, s.expression_seconds, s.incident_retry_seconds,
            s.incident_retry_max_seconds) == (120_000, 0.2, 0.5, 60, 21_600)
    assert (s.calendar_file, s.catalog_file, s.bpmn_dir) == (ROOT / "calendar.yaml", ROOT / "catalog.yaml",
                                                             ROOT / "bpmn")
    assert (s.database_url, s.manual_clock, s.log_level) == ("sqlite:///instance/yicun.db", False, "INFO")


def test_production_password_hashes_cost_120000_rounds_and_older_ones_still_verify(bare_environment, monkeypatch):
    stored = orgs.hash_password("Qiaoyun-2026x")
    assert stored.startswith("pbkdf2_sha256$120000$") and orgs.check_password(stored, "Qiaoyun-2026x")
    monkeypatch.setenv("YICUN_PASSWORD_HASH_ITERATIONS", "1000")  # what the test suite uses
    settings.get.cache_clear()
    cheap = orgs.hash_password("Qiaoyun-2026x")
    assert cheap.startswith("pbkdf2_sha256$1000$")
    assert orgs.check_password(stored, "Qiaoyun-2026x") and not orgs.check_password(stored, "Qiaoyun-2026y")


@pytest.mark.parametrize("name, value, message", [
    ("YICUN_YELLOW_RATIO", "1.5", "YICUN_YELLOW_RATIO must be between 0.0 and 1.0, not 1.5"),
    ("YICUN_YELLOW_RATIO", "nan", "YICUN_YELLOW_RATIO must be between 0.0 and 1.0, not nan"),
    ("YICUN_YELLOW_RATIO", "a fifth", "YICUN_YELLOW_RATIO must be a number, not 'a fifth'"),
    ("YICUN_EXPRESSION_SECONDS", "0", "YICUN_EXPRESSION_SECONDS must be between 0.05 and 10.0, not 0"),
    ("YICUN_INCIDENT_RETRY_MAX_SECONDS", "-5", "YICUN_INCIDENT_RETRY_MAX_SECONDS must be between 1 and 2592000"),
    ("YICUN_PASSWORD_HASH_ITERATIONS", "999", "YICUN_PASSWORD_HASH_ITERATIONS must be between 1000 and 10000000"),
    ("YICUN_CALENDAR", "/nowhere/calendar.yaml", "YICUN_CALENDAR must name an existing file, not '/nowhere/"),
    ("YICUN_CATALOG", str(ROOT / "bpmn"), "YICUN_CATALOG must name an existing file"),
    ("YICUN_BPMN_DIR", str(ROOT / "catalog.yaml"), "YICUN_BPMN_DIR must name an existing folder"),
    ("YICUN_DATABASE_URL", "mysql://db/yicun", "YICUN_DATABASE_URL must be a sqlite:/// or postgresql:// URL"),
    ("YICUN_MANUAL_CLOCK", "sometimes", "YICUN_MANUAL_CLOCK must be 1 or 0, not 'sometimes'"),
    ("YICUN_LOG_LEVEL", "LOUD", "YICUN_LOG_LEVEL must be one of DEBUG, INFO, WARNING, ERROR, not 'LOUD'"),
])
def test_a_bad_value_is_refused_by_name_before_any_command_runs(name, value, message, monkeypatch, capsys):
    monkeypatch.setenv(name, value)
    settings.get.cache_clear()
    with pytest.raises(settings.SettingError) as info:
        settings.get()
    assert str(info.value).startswith(message)
    assert main(["calendar", "due", "--from", "2026-11-02", "--workdays", "5"]) == 3
    out, err = capsys.readouterr()
    assert out == "" and err.startswith(f"error: {message}")


def test_each_setting_reaches_the_code_that_uses_it(monkeypatch, tmp_path):
    calendar = tmp_path / "calendar.yaml"
    calendar.write_text("years:\n  2027:\n    holidays: ['2027-01-01..2027-01-03']\n    workdays: []\n",
                        encoding="utf-8")
    items = tmp_path / "catalog.yaml"
    items.write_text("items: []\n", encoding="utf-8")
    for name, value in (("YICUN_YELLOW_RATIO", "0.5"), ("YICUN_EXPRESSION_SECONDS", "2"),
                        ("YICUN_CALENDAR", str(calendar)), ("YICUN_CATALOG", str(items)),
                        ("YICUN_BPMN_DIR", str(tmp_path)), ("YICUN_DATABASE_URL", "sqlite:///elsewhere.db")):
        monkeypatch.setenv(name, value)
    settings.get.cache_clear()
    assert deadlines.yellow_threshold(10) == 5
    assert expressions.time_budget_seconds() == 2.0
    cal = workdays.default_calendar()
    assert cal.known_year(2027) and cal.add_workdays(date(2026, 12, 31), 1).date == date(2027, 1, 4)
    assert catalog.catalog_path() == items and catalog.load() == []
    assert settings.get().bpmn_dir == tmp_path
    from engine import db
    assert db.database_url() == "sqlite:///elsewhere.db"
