"""Shared fixtures. Database tests (marker `db`) run on the database chosen with ``--db``:
``sqlite`` (a file per test) or ``postgresql`` (in $YICUN_TEST_PG_URL).

Every test starts from a freshly migrated database (`db_engine`), or a freshly migrated and seeded one
(`seeded`), as if it had run the migrations and the seeding itself; but those run once per session, into
a template (they used to take most of a database test's time):
- SQLite: the migrated and the seeded databases are frozen into two template files; `db_engine` copies
  the migrated file into the test's own, `seeded` then copies the seed rows in from the other one.
- PostgreSQL: one schema is migrated once; `seeded` copies in the seed rows (kept in a side schema since
  the session began) and puts each sequence where the seeding left it; after the test every table but
  alembic_version is emptied with TRUNCATE … RESTART IDENTITY CASCADE, which is the migrated state again.
A test that takes `db_url` without `db_engine` (it migrates by itself) gets an empty database of its own.
"""
from __future__ import annotations

import os
import shutil
import sqlite3
import uuid
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Connection, Engine, inspect, make_url, select, text

from engine import cases, clock, db, orgs, processes, settings
from engine.models import TaskRow, User

ROOT = Path(__file__).resolve().parent.parent
os.environ.setdefault("YICUN_MANUAL_CLOCK", "1")  # the tests drive the CLI on a manual clock (`--now`)
# PBKDF2 at 1,000 rounds instead of 120,000: ~300 hashes and logins cost 13 s of a `make test-fast` run.
# Only the cost changes (each hash records its count; test_accounts checks the production default).
os.environ.setdefault("YICUN_PASSWORD_HASH_ITERATIONS", "1000")
FIXTURES = Path(__file__).parent / "fixtures"
START = "2026-11-02T09:00:00+08:00"  # a Monday
SEED_FILES = ("relay.bpmn", "dibao.bpmn", "pension.bpmn", "homestead.bpmn")
# Focused tests run on fixed copies of three early catalogue processes (FX-*), so editing the
# catalogue does not move their expectations; the 176 real ones are driven by test_catalog.


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--db", default="sqlite", choices=("sqlite", "postgresql"),
                     help="database for the tests marked `db`")


@pytest.fixture(autouse=True)
def fresh_settings() -> Iterator[None]:
    """`settings.get()` reads the environment once per process; cleared around every test, a test may set
    a YICUN_* variable (monkeypatch.setenv) before the code it calls reads the settings, and leaves
    nothing behind."""
    settings.get.cache_clear()
    yield
    settings.get.cache_clear()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if "db_url" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.db)
        if item.get_closest_marker("browser"):  # each starts Chromium and waits on pages: seconds apiece
            item.add_marker(pytest.mark.slow)


def _pg_url() -> str:
    return os.environ.get("YICUN_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")


def _in_schema(url: str, schema: str) -> str:
    return url + ("&" if "?" in url else "?") + f"options=-csearch_path%3D{schema}"


def freeze_sqlite(source: Path, target: Path) -> None:
    """Write SQLite database `source` into `target` as one self-contained file (rollback journal, so no
    -wal file beside it) that a plain file copy reproduces exactly. The backup API reads a consistent
    snapshot with the WAL frames in it, even while another connection still has `source` open."""
    src, dst = sqlite3.connect(source), sqlite3.connect(target)
    try:
        src.backup(dst)
        mode = dst.execute("PRAGMA journal_mode=DELETE").fetchone()[0]
    finally:
        dst.close()
        src.close()
    if mode != "delete":
        raise RuntimeError(f"could not take {target} out of WAL mode (journal_mode is {mode})")


def seed_small_world(engine: Engine) -> None:
    """What `seeded` promises: the small Yiyang tree with staff and the fixture processes, deployed on
    the tests' manual clock at START."""
    with clock.using(clock.ManualClock(START)):
        with db.transaction(engine) as s:
            orgs.seed_org_tree(s, SMALL_TREE)
            orgs.seed_staff(s, SMALL_TREE)
        for path in [FIXTURES / name for name in SEED_FILES]:
            with db.transaction(engine) as s:
                processes.deploy(s, path.read_bytes(), path.name)


def _tables_parents_first(conn: Connection) -> list[str]:
    """The tables a test may write (all but alembic_version), each after the tables it refers to."""
    return [name for name, _ in inspect(conn).get_sorted_table_and_fkc_names()
            if name is not None and name != "alembic_version"]


class SqliteTemplate:
    """Two frozen files: the migrated database and the seeded one."""

    def __init__(self, folder: Path) -> None:
        self.migrated, self.seeded = folder / "migrated.db", folder / "seeded.db"
        work = folder / "work.db"
        engine = db.make_engine(f"sqlite:///{work}")
        db.migrate(engine)
        freeze_sqlite(work, self.migrated)
        seed_small_world(engine)
        freeze_sqlite(work, self.seeded)
        with engine.connect() as conn:
            self.seed_tables = [t for t in _tables_parents_first(conn)
                                if conn.exec_driver_sql(f'SELECT EXISTS (SELECT 1 FROM "{t}")').scalar()]
        engine.dispose()

    def migrated_engine(self, url: str) -> Engine:
        shutil.copyfile(self.migrated, make_url(url).database)
        return db.make_engine(url)

    def seed(self, engine: Engine) -> None:
        raw = engine.raw_connection()
        try:
            conn = raw.driver_connection  # autocommit (isolation_level None): ATTACH must be outside a transaction
            conn.execute("ATTACH DATABASE ? AS template", (str(self.seeded),))
            try:
                conn.execute("BEGIN IMMEDIATE")
                try:
                    for table in self.seed_tables:
                        conn.execute(f'INSERT INTO main."{table}" SELECT * FROM template."{table}"')
                    conn.execute("COMMIT")
                except BaseException:
                    conn.execute("ROLLBACK")
                    raise
            finally:
                conn.execute("DETACH DATABASE template")
        finally:
            raw.close()

    def after_test(self) -> None:
        pass

    def close(self) -> None:
        pass


class PostgresTemplate:
    """One schema migrated once, shared by the tests one after another, and a side schema with the seed
    rows. Sequences not owned by a column would survive RESTART IDENTITY, so there must be none."""

    def __init__(self, base_url: str) -> None:
        name = f"t_{uuid.uuid4().hex[:12]}"
        self.schema, self.side = name, f"{name}_seed"
        self.admin = db.make_engine(base_url)
        with self.admin.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{self.schema}"'))
            conn.execute(text(f'CREATE SCHEMA "{self.side}"'))
        self.url = _in_schema(base_url, self.schema)
        self.engine = db.make_engine(self.url)
        db.migrate(self.engine)
        with self.engine.connect() as conn:
            self.tables = _tables_parents_first(conn)
            unowned = conn.execute(text(
                "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE c.relkind = 'S' AND n.nspname = :s AND NOT EXISTS (SELECT 1 FROM pg_depend d "
                "WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype IN ('a', 'i'))"),
                {"s": self.schema}).scalars().all()
            filled = [t for t in self.tables if conn.execute(text(f'SELECT EXISTS (SELECT 1 FROM "{t}")')).scalar()]
        if unowned or filled:
            raise RuntimeError(f"the migrated schema has sequences of no column {unowned} or rows in {filled}: "
                               "TRUNCATE … RESTART IDENTITY would not bring it back, so conftest must do more")
        with self.engine.connect() as conn:
            self.revision = conn.execute(text("SELECT version_num FROM alembic_version")).scalar_one()
        seed_small_world(self.engine)
        with self.engine.begin() as conn:
            self.seed_tables = [t for t in self.tables
                                if conn.execute(text(f'SELECT EXISTS (SELECT 1 FROM "{t}")')).scalar()]
            for table in self.seed_tables:
                conn.execute(text(f'CREATE TABLE "{self.side}"."{table}" AS SELECT * FROM "{table}"'))
            self.sequences = conn.execute(text(
                "SELECT format('%I.%I', schemaname, sequencename), last_value FROM pg_sequences "
                "WHERE schemaname = :s AND last_value IS NOT NULL"), {"s": self.schema}).all()
        self.after_test()

    def migrated_engine(self, url: str) -> Engine:
        return db.make_engine(url)

    def seed(self, engine: Engine) -> None:
        with engine.begin() as conn:
            for table in self.seed_tables:
                conn.execute(text(f'INSERT INTO "{table}" OVERRIDING SYSTEM VALUE '
                                  f'SELECT * FROM "{self.side}"."{table}"'))
            for sequence, value in self.sequences:
                conn.execute(text("SELECT setval(CAST(:q AS regclass), :v)"), {"q": sequence, "v": value})

    def after_test(self) -> None:
        """Back to the migrated state. A connection a test left inside a transaction would block this: give
        up after a while with the lock error rather than hang."""
        with self.engine.begin() as conn:
            revision = conn.execute(text("SELECT version_num FROM alembic_version")).scalar_one()
            if revision != self.revision:
                raise RuntimeError(f"a test moved the shared schema from revision {self.revision} to {revision}: a "
                                   "test that migrates must take `db_url` (a database of its own), not `db_engine`")
            conn.execute(text("SET LOCAL lock_timeout = '30s'"))
            conn.execute(text("TRUNCATE " + ", ".join(f'"{t}"' for t in self.tables) + " RESTART IDENTITY CASCADE"))

    def close(self) -> None:
        self.engine.dispose()
        with self.admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{self.side}" CASCADE'))
            conn.execute(text(f'DROP SCHEMA "{self.schema}" CASCADE'))
        self.admin.dispose()


@pytest.fixture(scope="session")
def db_template(request: pytest.FixtureRequest,
                tmp_path_factory: pytest.TempPathFactory) -> Iterator[SqliteTemplate | PostgresTemplate]:
    """The migrated (and the seeded) database of this session, for `db_engine` and `seeded`."""
    if request.config.getoption("--db") == "sqlite":
        template: SqliteTemplate | PostgresTemplate = SqliteTemplate(tmp_path_factory.mktemp("template"))
    else:
        template = PostgresTemplate(_pg_url())
    yield template
    template.close()


@pytest.fixture
def db_kind(request: pytest.FixtureRequest) -> str:
    return request.config.getoption("--db")


@pytest.fixture
def db_url(db_kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[str]:
    """A URL to an empty database of the chosen kind (migrated and maybe seeded by `db_engine` and
    `seeded` when the test takes those too)."""
    if db_kind == "sqlite":
        yield f"sqlite:///{tmp_path / 'yicun.db'}"
        return
    if "db_engine" in request.fixturenames:  # the session's shared schema, brought back after each test
        yield request.getfixturevalue("db_template").url
        return
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = db.make_engine(_pg_url())
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    yield _in_schema(_pg_url(), schema)
    with admin.begin() as conn:
        conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()


@pytest.fixture
def db_engine(db_url: str, db_template: SqliteTemplate | PostgresTemplate) -> Iterator[Engine]:
    """A freshly migrated database."""
    engine = db_template.migrated_engine(db_url)
    try:
        yield engine
    finally:
        engine.dispose()
        db_template.after_test()


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
def seeded(db_engine: Engine, manual_clock: clock.ManualClock,
           db_template: SqliteTemplate | PostgresTemplate) -> Engine:
    """A small Yiyang tree with staff, the relay test process and the bpmn/ examples deployed."""
    db_template.seed(db_engine)
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


@pytest.fixture
def app(seeded: Engine) -> Any:
    """The web app on the seeded database, CSRF protection on (tests/webtools.py posts forms with it)."""
    from .webtools import make_app
    return make_app(seeded)


@pytest.fixture
def client(app: Any) -> Any:
    return app.test_client()


@pytest.fixture(autouse=True)
def only_cases_write_case_state() -> Iterator[None]:
    """Every test also checks that nothing outside engine/cases/ wrote case state (tests/writers.py)."""
    from tests import writers

    writers.install()
    writers.seen.clear()
    yield
    found, writers.seen[:] = list(writers.seen), []
    assert not found, "case state written outside engine/cases/:\n" + "\n".join(map(str, found[:10]))
