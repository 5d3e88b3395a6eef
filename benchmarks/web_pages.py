"""The workbench's pages on a 100,000-case PostgreSQL database: time, SQL and weight (issue #9, Benchmark).

Builds (or with --reuse, finds) the database of `bigdb.py` (its own name, `yicun_web100k` for 100k cases),
checks that its schema is at this code's head, logs in through the real login form as a busy township's
agent, the county's 民政 officer and a village clerk, and for each of them requests through the Flask
test client (with `Accept-Encoding: gzip`, as a browser asks), at bigdb's fixed instant NOW:

- `GET /inbox`                 the inbox's first page (tab 全部, 25 rows);
- `GET /tasks/<id>`            the task page of the first task of that user's inbox;
- `GET /cases/<number>`        the case page of the busy village's case with the longest audit trail
                               (one case every one of the three may see);
- `GET /cases/<number>/diagram` the diagram's JSON that the case page's viewer fetches (a separate request).

Against the **floor measured in the same run**, sample by sample interleaved with the pages: the bare
read-model calls each view makes, in one `db.read` session on the app's own engine pool, without Flask,
templates, the session/actor load or the navigation's counts:
- inbox: `queries.inbox` + `queries.colleagues` + `queries.service_choices`;
- task page: `queries.task_detail` + `queries.case_detail` (+ `queries.receipt` for a 补正 step);
- case page: `queries.case_detail`;  diagram: `queries.case_diagram`.
Each floor call is also timed on its own (printed below the table), and as a reference the SpiffWorkflow
floor of benchmarks/engine_step.py, read side only: restoring a task page's case workflow from its
instance JSON (spec cached) — what any page would pay per case if it deserialized workflows.

Per page and user it prints p50/p95, floor p50, ratio (page p50 ÷ floor p50), the SQL statements one
request issues (with the slowest one's time), whether any of them reads `cases.instance_json`,
`process_versions.spec_json` or `process_versions.bpmn_xml` (only the diagram's JSON may, for its XML),
and the page weight: the HTML raw and gzip-compressed, and its first load compressed — the HTML and every
stylesheet, script and data file it names, fetched as tests/test_assets.py counts it (budget 300 KB).
With --explain, the slowest statement of every page is shown with EXPLAIN (ANALYZE, BUFFERS).

    python benchmarks/web_pages.py [--cases 100000] [--rounds 100] [--reuse] [--keep] [--explain]
        [--server postgresql://postgres@127.0.0.1:5432] [--name yicun_web100k]
"""
from __future__ import annotations

import argparse
import gzip
import os
import re
import secrets
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import bigdb  # first: its `common` puts the repository on sys.path
from bigdb import BUSY_COUNTY, BUSY_TOWNSHIP, BUSY_VILLAGE, NOW
from common import pct
from sqlalchemy import Engine, event, func, select

from engine import bpmn, clock, db, orgs, processes, queries
from engine.errors import NoDatabase
from engine.models import AuditEvent, Case, OrgUnit, TaskRow
from engine.policy import Actor

USERS = {  # label → username (bigdb's busy units)
    "township agent": f"agent-{BUSY_TOWNSHIP}-1",
    "county 民政 officer": f"officer-{BUSY_COUNTY}-mz",
    "village clerk": f"clerk-{BUSY_VILLAGE}-1",
}
#: Columns no page may read: a workflow's state, a spec, a BPMN text (the diagram's JSON reads the last).
HEAVY = ("instance_json", "spec_json", "bpmn_xml")
GZIP = {"Accept-Encoding": "gzip"}
WARMUP = 3
#: tests/test_assets.py's reading of a page: the stylesheets, scripts and data files it names.
STYLESHEET = re.compile(r'<link rel="stylesheet" href="([^"]+)"')
SCRIPT = re.compile(r'<script src="([^"]+)"')
DATA_SRC = re.compile(r'data-src="([^"]+)"')
_CSRF = re.compile(r'<meta name="csrf-token" content="([^"]+)">')


@dataclass
class Row:
    """One page as one user: its request, its floor, and what was measured."""
    page: str
    user: str
    path: str
    floor: Callable[[Any], dict[str, float]]  # session → {call: ms}
    page_ms: list[float] = field(default_factory=list)
    floor_ms: list[float] = field(default_factory=list)
    calls_ms: dict[str, list[float]] = field(default_factory=dict)
    statements: list[tuple[str, Any, float]] = field(default_factory=list)  # (sql, params, ms) of one request
    weight: dict[str, Any] = field(default_factory=dict)


# ------------------------------------------------------------------------------------------ the ids
@dataclass
class Targets:
    actors: dict[str, Actor]
    tasks: dict[str, int | None]  # the first task of each inbox
    inbox_sizes: dict[str, int]  # its tasks: the unit's queue and the ones claimed (the navigation's counts)
    case_number: str
    case_events: int
    case_tasks: int
    case_status: str


def pick_targets(engine: Engine) -> Targets:
    """The users, the first task of each one's inbox, and the busy village's case with the longest trail."""
    from web.workbench.inbox import PAGE_SIZE
    with db.read(engine) as s:
        actors = {label: orgs.actor_by_name(s, name) for label, name in USERS.items()}
        tasks: dict[str, int | None] = {}
        sizes: dict[str, int] = {}
        for label, actor in actors.items():
            page = queries.inbox(s, actor, PAGE_SIZE, tab="all")
            tasks[label] = page.items[0].id if page.items else None
            counts = queries.inbox_counts(s, actor, NOW)
            sizes[label] = counts.queue + counts.claimed
        village = s.scalar(select(OrgUnit.id).where(OrgUnit.code == BUSY_VILLAGE))
        events = func.count(AuditEvent.id).label("events")
        row = s.execute(select(Case.id, Case.number, Case.status, events)
                        .join(AuditEvent, AuditEvent.case_id == Case.id)
                        .where(Case.village_id == village)
                        .group_by(Case.id, Case.number, Case.status)
                        .order_by(events.desc(), Case.id).limit(1)).one()
        n_tasks = s.scalar(select(func.count()).select_from(TaskRow).where(TaskRow.case_id == row.id)) or 0
    return Targets(actors, tasks, sizes, row.number, row.events, n_tasks, row.status)


# ------------------------------------------------------------------------------------------ floors
def _timed_calls(calls: list[tuple[str, Callable[[], Any]]]) -> dict[str, float]:
    out = {}
    for name, call in calls:
        t0 = time.perf_counter()
        call()
        out[name] = (time.perf_counter() - t0) * 1000
    return out


def inbox_floor(actor: Actor) -> Callable[[Any], dict[str, float]]:
    from web.workbench.inbox import PAGE_SIZE

    def run(s: Any) -> dict[str, float]:
        return _timed_calls([
            ("queries.inbox", lambda: queries.inbox(s, actor, PAGE_SIZE, None, tab="all", service_code="",
                                                    level="", warning="", search="")),
            ("queries.colleagues", lambda: queries.colleagues(s, actor)),
            ("queries.service_choices", lambda: queries.service_choices(s))])
    return run


def task_floor(actor: Actor, task_id: int) -> Callable[[Any], dict[str, float]]:
    def run(s: Any) -> dict[str, float]:
        held: dict[str, Any] = {}
        out = _timed_calls([("queries.task_detail", lambda: held.update(task=queries.task_detail(s, task_id, actor)))])
        number = held["task"].case_number
        out |= _timed_calls([("queries.case_detail", lambda: queries.case_detail(s, number, actor))])
        if any(f.id == "supplement_items" for f in held["task"].fields):  # the view reads it when none is held
            out |= _timed_calls([("queries.receipt", lambda: queries.receipt(s, number, actor))])
        return out
    return run


def case_floor(actor: Actor, number: str) -> Callable[[Any], dict[str, float]]:
    return lambda s: _timed_calls([("queries.case_detail", lambda: queries.case_detail(s, number, actor))])


def diagram_floor(actor: Actor, number: str) -> Callable[[Any], dict[str, float]]:
    return lambda s: _timed_calls([("queries.case_diagram", lambda: queries.case_diagram(s, number, actor))])


def spiff_floor(engine: Engine, task_id: int, rounds: int) -> tuple[str, list[float]]:
    """engine_step.py's floor, read side: restore the task's case workflow from its instance JSON with
    the spec cached (no database in the timing)."""
    with db.read(engine) as s:
        number, version_id, state = s.execute(select(Case.number, Case.process_version_id, Case.instance_json)
                                              .join(TaskRow, TaskRow.case_id == Case.id)
                                              .where(TaskRow.id == task_id)).one()
        spec = processes.load_spec(s, version_id)
    out = []
    for i in range(rounds + WARMUP):
        t0 = time.perf_counter()
        bpmn.load_instance(state, spec.spec, spec.subprocess_specs)
        if i >= WARMUP:
            out.append((time.perf_counter() - t0) * 1000)
    return f"{number} ({len(state) / 1024:.1f} KB of instance JSON)", out


# ------------------------------------------------------------------------------------------ the web side
class Recorder:
    """Every statement the app's engine runs while `on`, with its parameters and duration."""

    def __init__(self, engine: Engine) -> None:
        self.on = False
        self.seen: list[tuple[str, Any, float]] = []
        event.listen(engine, "before_cursor_execute", self._before)
        event.listen(engine, "after_cursor_execute", self._after)

    def _before(self, conn: Any, _cur: Any, _stmt: str, _params: Any, _ctx: Any, _many: bool) -> None:
        conn.info["web_bench_t0"] = time.perf_counter()

    def _after(self, conn: Any, _cur: Any, stmt: str, params: Any, _ctx: Any, _many: bool) -> None:
        if self.on:
            self.seen.append((stmt, params, (time.perf_counter() - conn.info.pop("web_bench_t0")) * 1000))

    def request(self, client: Any, path: str) -> list[tuple[str, Any, float]]:
        self.seen, self.on = [], True
        try:
            resp = client.get(path, headers=GZIP)
            assert resp.status_code == 200, (path, resp.status_code)
        finally:
            self.on = False
        return self.seen


def login(client: Any, username: str) -> None:
    """The real login form: GET for the CSRF token, POST the demo password (bigdb's staff share it)."""
    token = _CSRF.search(client.get("/login").get_data(as_text=True))
    assert token, "no csrf-token on /login"
    resp = client.post("/login", data={"username": username, "password": orgs.DEMO_PASSWORD,
                                       "csrf_token": token.group(1)})
    assert resp.status_code == 302, (username, resp.status_code, resp.get_data(as_text=True)[:300])


def weight(client: Any, path: str) -> dict[str, Any]:
    """Bytes of a page: its HTML (or JSON) raw and gzip, and its first load gzip-compressed — the HTML
    and every stylesheet, script and data file it names, each fetched (tests/test_assets.py's `_weight`)."""
    resp = client.get(path, headers=GZIP)
    assert resp.status_code == 200, path
    body = gzip.decompress(resp.data) if resp.headers.get("Content-Encoding") == "gzip" else resp.data
    parts = {path: len(resp.data)}
    if resp.mimetype == "text/html":
        html = body.decode()
        for ref in STYLESHEET.findall(html) + SCRIPT.findall(html) + DATA_SRC.findall(html):
            asset = client.get(ref, headers=GZIP)
            assert asset.status_code == 200, ref
            parts[urlsplit(ref).path] = len(asset.data)
    return {"raw": len(body), "gzip": len(resp.data), "first_load": sum(parts.values()), "parts": parts}


def make_rows(t: Targets) -> list[Row]:
    rows = []
    for label, actor in t.actors.items():
        rows.append(Row("inbox", label, "/inbox", inbox_floor(actor)))
    for label, actor in t.actors.items():
        task_id = t.tasks[label]
        if task_id is not None:  # an empty inbox has no task page to open
            rows.append(Row("task page", label, f"/tasks/{task_id}", task_floor(actor, task_id)))
    for label, actor in t.actors.items():
        rows.append(Row("case page", label, f"/cases/{t.case_number}", case_floor(actor, t.case_number)))
    for label, actor in t.actors.items():
        rows.append(Row("diagram JSON", label, f"/cases/{t.case_number}/diagram", diagram_floor(actor, t.case_number)))
    return rows


def measure(url: str, t: Targets, rounds: int) -> tuple[list[Row], Recorder, Engine]:
    from web import create_app
    app = create_app({"DATABASE_URL": url, "TESTING": True, "SECRET_KEY": secrets.token_hex(32)})
    engine: Engine = app.extensions["yicun_engine"]
    recorder = Recorder(engine)
    clients = {}
    for label, username in USERS.items():
        clients[label] = app.test_client()
        login(clients[label], username)
    rows = make_rows(t)
    for row in rows:  # once each: its statements (warm) and its weight
        client = clients[row.user]
        recorder.request(client, row.path)
        row.statements = recorder.request(client, row.path)
        row.weight = weight(client, row.path)
    bigdb.stderr_progress(f"timing {len(rows)} pages × {rounds} rounds against their floors")
    for i in range(rounds + WARMUP):
        for row in rows:
            client = clients[row.user]
            t0 = time.perf_counter()
            resp = client.get(row.path, headers=GZIP)
            page_ms = (time.perf_counter() - t0) * 1000
            assert resp.status_code == 200, (row.path, resp.status_code)
            t0 = time.perf_counter()
            with db.read(engine) as s:
                calls = row.floor(s)
            floor_ms = (time.perf_counter() - t0) * 1000
            if i >= WARMUP:
                row.page_ms.append(page_ms)
                row.floor_ms.append(floor_ms)
                for name, ms in calls.items():
                    row.calls_ms.setdefault(name, []).append(ms)
    return rows, recorder, engine


def heavy_reads(row: Row) -> list[str]:
    """The heavy columns the request's statements name (a deferred column is not in the SQL at all)."""
    return sorted({h for sql, _p, _ms in row.statements for h in HEAVY if h in sql})


def writes(row: Row) -> int:
    return sum(1 for sql, _p, _ms in row.statements
               if sql.lstrip().split(None, 1)[0].upper() in ("INSERT", "UPDATE", "DELETE"))


def explain(engine: Engine, rows: list[Row]) -> None:
    """EXPLAIN (ANALYZE, BUFFERS) of each page's slowest statement, as its request ran it."""
    done: set[str] = set()
    with engine.connect() as conn:
        for row in rows:
            sql, params, ms = max(row.statements, key=lambda st: st[2])
            if sql in done:
                continue
            done.add(sql)
            print(f"\n-- {row.page} as {row.user}: slowest statement ({ms:.1f} ms in the request)\n   "
                  + " ".join(sql.split())[:600])
            for line in conn.exec_driver_sql("EXPLAIN (ANALYZE, BUFFERS) " + sql, params or {}).scalars():
                print("   " + line)
            conn.rollback()


# ------------------------------------------------------------------------------------------ main
def _kb(n: int) -> str:
    return f"{n / 1024:.1f}"


def report(rows: list[Row], t: Targets, spiff: tuple[str, list[float]], header: str) -> None:
    print(header)
    print(f"case page case: {t.case_number} ({t.case_status}; {t.case_events} audit events, {t.case_tasks} task rows); "
          f"task pages: " + ", ".join(f"{u} #{i}" for u, i in t.tasks.items()))
    print("inbox sizes (ready tasks, queue + claimed): " + ", ".join(f"{u} {n:,}" for u, n in t.inbox_sizes.items()))
    print("times in ms (GET with Accept-Encoding: gzip, logged in); weights in KB: HTML raw / gzip / first load gzip "
          "(the HTML + every stylesheet, script and data file it names)\n")
    cols = (f"{'page':<13} {'as':<20} {'p50':>7} {'p95':>7} {'floor p50':>9} {'ratio':>6} {'stmts':>5} "
            f"{'slowest':>7} {'heavy reads':<12} {'HTML raw':>8} {'gzip':>6} {'1st load':>8}")
    print(cols)
    print("-" * len(cols))
    for r in rows:
        p50, p95, f50 = pct(r.page_ms, 50), pct(r.page_ms, 95), pct(r.floor_ms, 50)
        heavy = ",".join(heavy_reads(r)) or "none"
        slow = max(ms for _s, _p, ms in r.statements)
        w = r.weight
        print(f"{r.page:<13} {r.user:<20} {p50:>7.1f} {p95:>7.1f} {f50:>9.1f} {p50 / f50:>6.1f} "
              f"{len(r.statements):>5} {slow:>7.1f} {heavy:<12} {_kb(w['raw']):>8} {_kb(w['gzip']):>6} "
              f"{_kb(w['first_load']):>8}" + (f"  ({writes(r)} writes!)" if writes(r) else ""))
    print("\nfloor calls (p50 ms, each on its own):")
    for r in rows:
        calls = ", ".join(f"{name} {statistics.median(xs):.2f}" for name, xs in r.calls_ms.items())
        print(f"  {r.page:<13} {r.user:<20} {calls}")
    label, xs = spiff
    print(f"\nSpiffWorkflow floor (engine_step.py's, read side): restore the workflow of {label} with the spec "
          f"cached: p50 {pct(xs, 50):.2f} ms, p95 {pct(xs, 95):.2f} ms — no page pays it")
    print("\nfirst-load parts of the first row of each page (KB gzip):")
    seen: set[str] = set()
    for r in rows:
        if r.page not in seen:
            seen.add(r.page)
            print(f"  {r.page:<13} " + ", ".join(f"{p} {_kb(n)}" for p, n in r.weight["parts"].items()))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", type=int, default=100_000)
    ap.add_argument("--rounds", type=int, default=100, help="samples per page (and per floor)")
    ap.add_argument("--server", default=os.environ.get("YICUN_SCALE_SERVER", "postgresql://postgres@127.0.0.1:5432"))
    ap.add_argument("--name", default=None, help="the database's name (default yicun_web<cases/1000>k)")
    ap.add_argument("--reuse", action="store_true", help="use a finished build of the same size if there is one")
    ap.add_argument("--keep", action="store_true", help="keep the database afterwards (for --reuse)")
    ap.add_argument("--explain", action="store_true", help="EXPLAIN ANALYZE each page's slowest statement")
    args = ap.parse_args()
    name = args.name or f"yicun_web{args.cases // 1000}k"

    t0 = time.perf_counter()
    big, _empty = bigdb.build(args.server, name, args.cases, reuse=args.reuse)
    probe = db.make_engine(big.url)
    try:
        db.check_schema(probe)
    except NoDatabase as exc:
        if not big.reused:
            raise
        bigdb.stderr_progress(f"the kept build's schema is not at head ({exc.reason}): building it again")
        probe.dispose()
        big, _empty = bigdb.build(args.server, name, args.cases, reuse=False)
        probe = db.make_engine(big.url)
        db.check_schema(probe)
    build_s = time.perf_counter() - t0
    try:
        with clock.using(clock.ManualClock(NOW)):
            targets = pick_targets(probe)
            probe.dispose()
            rows, _recorder, engine = measure(big.url, targets, args.rounds)
            first_task = next((i for i in targets.tasks.values() if i is not None), None)
            with db.read(engine) as s:
                n_cases = s.scalar(select(func.count()).select_from(Case)) or 0
            spiff = spiff_floor(engine, first_task, args.rounds) if first_task else ("no task", [0.0])
            report(rows, targets, spiff,
                   f"\nweb pages at {clock.local(NOW):%Y-%m-%d %H:%M} on PostgreSQL, {n_cases:,} cases ({name}; build "
                   + ("reused" if big.reused else f"{build_s:,.0f} s") + f"); {args.rounds} rounds, interleaved")
            if args.explain:
                explain(engine, rows)
            engine.dispose()
    finally:
        if not args.keep:
            for dbname in (name, f"{name}_empty"):
                bigdb.drop_database(args.server, dbname)


if __name__ == "__main__":
    main()
