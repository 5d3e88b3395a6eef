"""Database engines, transactions and migrations.

SQLite (the embedded default) runs in WAL mode with foreign keys on. Its writers are serialised with
``BEGIN IMMEDIATE``; on PostgreSQL the services lock the case row (``SELECT … FOR UPDATE``). Either
way a service runs inside :func:`transaction`, which commits once or rolls everything back.
"""
from __future__ import annotations

import contextlib
import functools
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, inspect, make_url, text
from sqlalchemy.exc import ArgumentError, DataError, OperationalError
from sqlalchemy.orm import Session

from . import settings, workdays

MIGRATIONS = Path(__file__).parent / "migrations"


def database_url() -> str:
    """$YICUN_DATABASE_URL, else the SQLite file instance/yicun.db (`settings.get().database_url`)."""
    return settings.get().database_url


def make_engine(url: str | None = None, **kwargs: Any) -> Engine:
    url = url or database_url()
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 30}, **kwargs)
        _configure_sqlite(engine)
        event.listen(engine, "before_cursor_execute", _refuse_nul)
        return engine
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://"):]
    engine = create_engine(url, pool_pre_ping=True, **kwargs)
    event.listen(engine, "before_cursor_execute", _refuse_nul)
    return engine


def open_reports(url: str) -> Engine:
    """An engine for the reports' database (`YICUN_REPORTS_DATABASE_URL`, DESIGN §7): a read replica, or any
    copy at this code's schema, refused like `open_existing` refuses. Every connection it makes is read-only
    (PostgreSQL `default_transaction_read_only`, SQLite `query_only`), so a report that tried to write would
    fail loudly instead of writing to a replica (which refuses anyway) or to a copy nobody reads back."""
    if not url.startswith("sqlite"):  # the URL's own options (a search_path…) kept, read-only added
        given = make_url(url).query.get("options") or ""
        given = " ".join(given) if isinstance(given, tuple) else given
        return open_existing(url, connect_args={"options": f"{given} -c default_transaction_read_only=on".strip()})
    engine = open_existing(url)

    @event.listens_for(engine, "connect")
    def _read_only(dbapi_conn: Any, _record: Any) -> None:
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA query_only = ON")
        cur.close()

    engine.dispose()  # the schema check's connection was made before the hooks: open fresh ones
    return engine


def open_existing(url: str | None = None, **kwargs: Any) -> Engine:
    """An engine on a database that `yicun init` made and brought to this code's schema — what every
    command but `init` works on. A SQLite URL naming a file that does not exist is refused *before*
    connecting (connecting would create an empty file, and the command would then die on a missing
    table); a database without the schema, at an older (or unknown) schema, or that cannot be reached is
    refused too, each with `NoDatabase` saying what to run."""
    url = url or database_url()
    path = sqlite_file(url)
    if path is not None and not path.is_file():
        from .errors import NoDatabase
        raise NoDatabase(f"no database at {path.absolute()}; run `yicun init` (or set YICUN_DATABASE_URL / --db)",
                         reason="db.missing", path=str(path.absolute()))
    engine = make_engine(url, **kwargs)
    try:
        check_schema(engine, shown=make_url(url).render_as_string(hide_password=True))
    except BaseException:
        engine.dispose()
        raise
    return engine


def sqlite_file(url: str) -> Path | None:
    """The file a SQLite URL names (relative to the working directory, as SQLite opens it); None for
    in-memory and URI-style SQLite databases and for every other kind of database."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        return None
    if parsed.get_backend_name() != "sqlite":
        return None
    name = parsed.database or ""
    if not name or name == ":memory:" or name.startswith("file:") or parsed.query.get("uri"):
        return None
    return Path(name)


def check_schema(engine: Engine, shown: str | None = None) -> None:
    """Refuse (`NoDatabase`) a database that is unreachable, has no Alembic version table (never
    initialised), or whose revision is not this code's head (an older schema: `yicun init` upgrades it;
    an unknown one: made by a newer Yicun). One connection and one small query."""
    from .errors import NoDatabase
    shown = shown or engine.url.render_as_string(hide_password=True)
    try:
        with engine.connect() as conn:
            if not inspect(conn).has_table("alembic_version"):
                raise NoDatabase(f"the database at {shown} has no Yicun schema; run `yicun init` "
                                 "(or set YICUN_DATABASE_URL / --db)", reason="db.not_initialised", database=shown)
            current = list(conn.execute(text("SELECT version_num FROM alembic_version")).scalars())
    except OperationalError as exc:
        first = str(exc.orig).strip().splitlines()[0][:300] if str(exc.orig).strip() else type(exc.orig).__name__
        raise NoDatabase(f"cannot open the database at {shown}: {first}; check YICUN_DATABASE_URL / --db, "
                         "then run `yicun init`", reason="db.unreachable", database=shown) from None
    head, known = _revisions()
    if current == [head]:
        return
    if len(current) == 1 and current[0] in known:
        raise NoDatabase(f"the database at {shown} has schema {current[0]}, this Yicun needs {head}: "
                         "run `yicun init` to upgrade it", reason="db.outdated", database=shown,
                         schema=current[0], needed=head)
    raise NoDatabase(f"the database at {shown} has schema {', '.join(current) or 'none'}, which this Yicun "
                     f"does not know (it needs {head}); was it made by a newer version?",
                     reason="db.unknown_schema", database=shown, schema=", ".join(current), needed=head)


@functools.lru_cache(maxsize=1)
def _revisions() -> tuple[str, frozenset[str]]:
    """This code's newest Alembic revision and all it knows, read from the `revision =` and
    `down_revision =` lines of the version files: importing Alembic to ask it takes half a second, on
    every command (tests/test_accounts.py checks the answer against Alembic's)."""
    revisions: set[str] = set()
    parents: set[str] = set()
    for path in (MIGRATIONS / "versions").glob("*.py"):
        source = path.read_text(encoding="utf-8")
        rev = re.search(r"^revision\s*=\s*['\"]([^'\"]+)['\"]", source, re.M)
        down = re.search(r"^down_revision\s*=\s*['\"]([^'\"]+)['\"]", source, re.M)
        if rev:
            revisions.add(rev.group(1))
        if down:
            parents.add(down.group(1))
    heads = revisions - parents
    if len(heads) != 1:
        raise RuntimeError(f"the migrations have {len(heads)} heads ({', '.join(sorted(heads))}); expected one")
    return heads.pop(), frozenset(revisions)


def _refuse_nul(_conn: Any, _cursor: Any, _statement: str, parameters: Any, _context: Any,
                executemany: bool) -> None:
    """PostgreSQL text cannot hold NUL: a username or case number with one would end in a driver error
    (HTTP 500) instead of "not found". Refuse it the same way on both databases, before the query."""
    # The shape of `parameters` depends on the driver and on how SQLAlchemy batched the statement (a dict, a
    # tuple, a list of either — or, for an "insertmanyvalues" batch on SQLite, one flat tuple even though
    # `executemany` is set), so every value is found by walking it, whatever the nesting.
    stack = [parameters]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if "\x00" in item:
                from .errors import InvalidInput
                raise InvalidInput("text may not contain NUL characters", reason="input.nul")
        elif isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, (list, tuple)):
            stack.extend(item)


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # we issue BEGIN ourselves (see _on_begin)
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA synchronous=NORMAL")  # durable across crashes in WAL mode; fsync at checkpoint
        cur.execute("PRAGMA busy_timeout=30000")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        immediate = conn.get_execution_options().get("yicun_write", False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def is_sqlite(session_or_engine: Session | Engine) -> bool:
    bind = session_or_engine.get_bind() if isinstance(session_or_engine, Session) else session_or_engine
    return bind.dialect.name == "sqlite"


def _write_engine(engine: Engine) -> Engine:
    """The engine with the write flag (BEGIN IMMEDIATE on SQLite), built once per engine: it is on
    the path of every write."""
    cached = engine.__dict__.get("_yicun_write")
    if cached is None:
        cached = engine.__dict__["_yicun_write"] = engine.execution_options(yicun_write=True)
    return cached


@contextlib.contextmanager
def transaction(engine: Engine, write: bool = True) -> Iterator[Session]:
    """One unit of work: commit on success, roll back everything on any exception. Deadlines counted in
    it see this database's published holiday schedules (`workdays.bind_database`)."""
    bind = _write_engine(engine) if write else engine
    session = Session(bind=bind, expire_on_commit=False)
    calendar = workdays.bind_database(engine)
    try:
        yield session
        session.commit()
    except DataError as exc:
        session.rollback()  # a value the database cannot hold (an id past its integer range, bad text)
        from .errors import InvalidInput
        raise InvalidInput(f"a value is out of range for the database: {str(exc.orig).splitlines()[0][:200]}",
                           reason="input.out_of_range") from exc
    except OperationalError as exc:
        session.rollback()
        if _busy(exc):  # another writer held the database past the busy timeout: a retryable conflict
            from .errors import Busy
            raise Busy("the database is busy with another change; try again in a moment",
                       reason="database.busy") from exc
        raise
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()
        workdays.unbind(calendar)


def _busy(exc: OperationalError) -> bool:
    text = str(exc.orig).lower()
    return "database is locked" in text or "database is busy" in text or "lock timeout" in text \
        or "could not obtain lock" in text


#: the memory a report statement's sort or hash may take before spilling to disk (PostgreSQL's work_mem)
REPORT_WORK_MEM = "32MB"


def read(engine: Engine, reports: bool = False) -> contextlib.AbstractContextManager[Session]:
    """A unit of work that only reads. `reports`: the aggregate reads of `engine.reports` (the board, the
    overdue report, the charts, where cases wait, the ranking) — on PostgreSQL their transaction runs with
    JIT off (`SET LOCAL jit = off`, this transaction only: the app's other reads keep the server's setting).
    A report statement is a sub-second aggregate whose estimated cost passes `jit_above_cost`, and compiling
    it costs 50–130 ms at a million cases — more than the compiled code saves (benchmarks/reports.py) — and
    with `work_mem` REPORT_WORK_MEM."""
    if not reports:
        return transaction(engine, write=False)
    return _report_read(engine)


@contextlib.contextmanager
def _report_read(engine: Engine) -> Iterator[Session]:
    with transaction(engine, write=False) as session:
        if engine.dialect.name == "postgresql":
            session.execute(text("SET LOCAL jit = off"))
            # the city's reports group tens of thousands of (step, unit) pairs: with the default 4 MB their
            # sorts spill to disk; this transaction only, per sort or hash (a report runs a handful)
            session.execute(text(f"SET LOCAL work_mem = '{REPORT_WORK_MEM}'"))
        yield session


def _raw_execute(conn: Connection, statement: str) -> None:
    """Run a statement on the driver's own connection, outside SQLAlchemy's transaction handling."""
    raw = conn.connection.driver_connection
    if raw is None:  # only once the connection has been invalidated
        raise RuntimeError("the database connection is closed")
    raw.execute(statement)


def migrate(engine: Engine, revision: str = "head") -> None:
    """Bring the schema to the newest (or the given) Alembic revision."""
    from alembic import command
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            # a batch migration copies and drops tables, which foreign keys would forbid; the pragma only
            # takes effect outside a transaction, hence on the raw connection before BEGIN
            _raw_execute(conn, "PRAGMA foreign_keys=OFF")
        try:
            with conn.begin():
                cfg.attributes["connection"] = conn
                command.upgrade(cfg, revision)
        finally:
            if engine.dialect.name == "sqlite":
                _raw_execute(conn, "PRAGMA foreign_keys=ON")
