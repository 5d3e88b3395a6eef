"""Shared fixtures. Database tests (marker `db`) run on the database chosen with ``--db``:
``sqlite`` (a fresh file per test) or ``postgresql`` (a fresh schema per test in $YICUN_TEST_PG_URL)."""
from __future__ import annotations

import os
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any, Iterator

import pytest
from sqlalchemy import Engine, select, text

from engine import cases, clock, db, orgs, processes
from engine.models import TaskRow, User

ROOT = Path(__file__).resolve().parent.parent
os.environ.setdefault("YICUN_MANUAL_CLOCK", "1")  # the tests drive the CLI on a manual clock (`--now`)
FIXTURES = Path(__file__).parent / "fixtures"
START = "2026-11-02T09:00:00+08:00"  # a Monday
# Focused tests run on fixed copies of three early catalogue processes (FX-*), so editing the
# catalogue does not move their expectations; the 176 real ones are driven by test_catalog.


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--db", default="sqlite", choices=("sqlite", "postgresql"),
                     help="database for the tests marked `db`")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if "db_url" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.db)


def _pg_url() -> str:
    return os.environ.get("YICUN_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")


@pytest.fixture
def db_kind(request: pytest.FixtureRequest) -> str:
    return request.config.getoption("--db")


@pytest.fixture
def db_url(db_kind: str, tmp_path: Path) -> Iterator[str]:
    """A URL to an empty database of the chosen kind."""
    if db_kind == "sqlite":
        yield f"sqlite:///{tmp_path / 'yicun.db'}"
        return
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = db.make_engine(_pg_url())
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    base = _pg_url()
    yield base + ("&" if "?" in base else "?") + f"options=-csearch_path%3D{schema}"
    with admin.begin() as conn:
        conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()


@pytest.fixture
def db_engine(db_url: str) -> Iterator[Engine]:
    engine = db.make_engine(db_url)
    db.migrate(engine)
    yield engine
    engine.dispose()


SMALL_TREE = [
    orgs.SeedUnit("4309", "益阳市", "city", None, 0, 0),
    orgs.SeedUnit("430902", "资阳区", "county", "4309", 0, 0),
    orgs.SeedUnit("430902102", "迎风桥镇", "township", "430902", 0, 2),
    orgs.SeedUnit("430902102201", "邹家村", "village", "430902102", 2, 0),
    orgs.SeedUnit("430902102202", "周家村", "village", "430902102", 2, 0),
    orgs.SeedUnit("430902103", "沙头镇", "township", "430902", 0, 2),
    orgs.SeedUnit("430902103201", "石塘村", "village", "430902103", 2, 0),
    orgs.SeedUnit("430921", "南县", "county", "4309", 0, 0),
    orgs.SeedUnit("430921101", "南洲镇", "township", "430921", 0, 2),
    orgs.SeedUnit("430921101201", "青山村", "village", "430921101", 2, 0),
]
VILLAGE = "430902102201"
CLERK = "clerk-430902102201-1"
CLERK2 = "clerk-430902102201-2"
AGENT = "agent-430902102-1"
AGENT2 = "agent-430902102-2"
TOWNSHIP = "officer-430902102"
COUNTY_MZ = "officer-430902-mz"
COUNTY_RS = "officer-430902-rs"
OTHER_CLERK = "clerk-430921101201-1"


@pytest.fixture
def manual_clock() -> Iterator[clock.ManualClock]:
    c = clock.ManualClock(START)
    with clock.using(c):
        yield c


@pytest.fixture
def seeded(db_engine: Engine, manual_clock: clock.ManualClock) -> Engine:
    """A small Yiyang tree with staff, the relay test process and the bpmn/ examples deployed."""
    with db.transaction(db_engine) as s:
        orgs.seed_org_tree(s, SMALL_TREE)
        orgs.seed_staff(s, SMALL_TREE)
    for path in [FIXTURES / name for name in ("relay.bpmn", "dibao.bpmn", "pension.bpmn", "homestead.bpmn")]:
        with db.transaction(db_engine) as s:
            processes.deploy(s, path.read_bytes(), path.name)
    return db_engine


def user(engine: Engine, username: str) -> User:
    with db.read(engine) as s:
        u = orgs.user_by_name(s, username)
        _ = u.unit  # load before the session closes
        return u


def start(engine: Engine, service: str = "TEST-RELAY", actor: str = CLERK, village: str = VILLAGE,
          data: dict[str, Any] | None = None, now: datetime | None = None) -> cases.StepResult:
    with db.transaction(engine) as s:
        return cases.start_case(s, service_code=service, village_code=village, applicant_name="符建英",
                                actor=user(engine, actor), data=data, now=now)


def complete(engine: Engine, task_id: int, actor: str, data: dict[str, Any] | None = None) -> cases.StepResult:
    with db.transaction(engine) as s:
        return cases.complete_task(s, task_id, user(engine, actor), data)


def ready_tasks(engine: Engine, case_number: str) -> list[TaskRow]:
    from engine.models import Case
    with db.read(engine) as s:
        return list(s.scalars(select(TaskRow).join(Case).where(Case.number == case_number,
                                                               TaskRow.state == "ready").order_by(TaskRow.id)))


def snapshot(engine: Engine) -> dict[str, list[tuple]]:
    """Every row of every table, for 'nothing changed' assertions."""
    from engine.models import Base
    out = {}
    with engine.connect() as conn:
        for table in Base.metadata.sorted_tables:
            out[table.name] = sorted(tuple(map(str, r)) for r in conn.execute(select(table)))
    return out


def form_for(engine: Engine, task: TaskRow, decision: str = "approve") -> dict[str, Any]:
    """Fill a task's form the way a clerk would: every field, enums set to `decision` where offered."""
    from engine.demo import sample_form
    from engine.models import Case, ProcessVersion
    with db.read(engine) as s:
        meta = s.scalar(select(ProcessVersion.task_meta).join(Case, Case.process_version_id == ProcessVersion.id)
                        .where(Case.id == task.case_id))
    return sample_form(meta.get(task.bpmn_id, {}).get("fields", []), decision)


def worker_for(engine: Engine, task: TaskRow) -> str:
    """A user who may work on the task (its unit's first eligible account)."""
    from engine.demo import eligible_worker
    with db.read(engine) as s:
        return eligible_worker(s, task).username
