"""The rule that only engine/cases/ writes case state is checked on every test (conftest); these show the
check itself can fail."""
from __future__ import annotations

from sqlalchemy import Engine, update

from engine import db
from engine.models import T_CASE
from tests import writers
from tests.conftest import ROOT


def _write_as(filename: str, engine: Engine) -> None:
    """Run an UPDATE of the cases table from code that claims to live in `filename`."""
    code = compile("with db.transaction(engine) as s:\n    s.execute(update(T_CASE).values(version=T_CASE.c.version))\n",
                   str(ROOT / filename), "exec")
    exec(code, {"db": db, "engine": engine, "update": update, "T_CASE": T_CASE})


def test_a_write_from_outside_the_cases_package_is_caught(seeded):
    writers.install()
    _write_as("engine/orgs.py", seeded)
    _write_as("web/workbench/__init__.py", seeded)
    found, writers.seen[:] = list(writers.seen), []  # taken, so this test's own teardown check passes
    assert [(v.table, v.where.split(":")[0]) for v in found] == [
        ("cases", "engine/orgs.py"), ("cases", "web/workbench/__init__.py")]


def test_the_cases_package_and_test_code_may_write(seeded):
    writers.install()
    _write_as("engine/cases/store.py", seeded)
    _write_as("tests/test_writers.py", seeded)
    assert writers.seen == []

