"""Costs that must not grow with the database: a 1,000,000-case PostgreSQL database beside an empty one.

Builds (or with --reuse, finds) the database of `bigdb.py` and its empty twin (same org, 176 processes
and template cases, no history), then measures both at the same instant and prints them side by side:

- step cost: `start_case` + `complete_task` of the first step through the engine (median), 1M ÷ empty;
- the warning sweep's "next case to check" lookup (what took 5.5 s a case at 1M before tasks that left
  `ready` cleared their check);
- inbox p50/p95 (`queries.list_tasks`, limit 200) for a busy township's agent (~10k open tasks at the
  township), the county's 民政 officer and a village clerk — with the size of each inbox;
- the home page (Flask test client, logged in, GET /) p50/p95, and how many statements of it read a
  spec, a BPMN text or a workflow state (must be 0);
- a 10k-timer sweep with 2 sweeper processes: wall time (goal ≤ 20 s), timers fired, fired twice (must be 0);
- sizes: the database, and the closed cases' instance JSON as stored vs. before compaction.

    python benchmarks/scale.py [--cases 1000000] [--reuse] [--keep] [--explain]
        [--server postgresql://postgres@127.0.0.1:5432] [--name yicun_scale]
"""
from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from typing import Any

import bigdb
from bigdb import BUSY_COUNTY, BUSY_TOWNSHIP, BUSY_VILLAGE, NOW
from common import big_database_arguments, pct, run_sweepers
from sqlalchemy import event, func, select, text

from engine import cases, clock, db, orgs, queries
from engine.models import AuditEvent, TaskRow, TimerRow
from engine.queries.scope import claimed_filter, queue_filter
from engine.queries.tasks import page_select, task_select

INBOX_USERS = {  # label → username
    "township agent (busy)": f"agent-{BUSY_TOWNSHIP}-1",
    "county 民政 officer": f"officer-{BUSY_COUNTY}-mz",
    "village clerk": f"clerk-{BUSY_VILLAGE}-1",
}
HOME_USERS = ("township agent (busy)", "county 民政 officer")
STEP_SERVICE = "MZ-01"
HEAVY = ("spec_json", "bpmn_xml", "instance_json")


def _timed(fn: Callable[[], Any], n: int) -> list[float]:
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t0) * 1000)
    return out


# ------------------------------------------------------------------------------------------ measurements
def step_costs(engines: dict[str, Any], rounds: int) -> dict[str, list[float]]:
    """start + complete of the first step, alternating between the databases round by round."""
    out: dict[str, list[float]] = {k: [] for k in engines}
    for i in range(rounds + 3):
        for label, engine in engines.items():
            with db.read(engine) as s:
                clerk = orgs.actor_by_name(s, INBOX_USERS["village clerk"])
            t0 = time.perf_counter()
            with db.transaction(engine) as s:
                r = cases.start_case(s, service_code=STEP_SERVICE, village_code=BUSY_VILLAGE,
                                     applicant_name="符建英", actor=clerk, now=NOW)
            with db.transaction(engine) as s:
                task = s.get(TaskRow, r.opened_tasks[0])
                form = bigdb._form(s, task, "approve")
                cases.complete_task(s, task.id, clerk, form, now=NOW)
            if i >= 3:  # the first rounds warm the spec cache and the connection pool
                out[label].append((time.perf_counter() - t0) * 1000)
    return out


def warning_lookup(engine: Any, n: int) -> list[float]:
    def once() -> None:
        with db.transaction(engine) as s:
            cases.next_case_to_check(s, NOW, set())
    return _timed(once, n)


def inbox_size(session: Any, user: Any) -> int:
    """How many tasks a user's inbox holds: its pages walked to the end."""
    size, cursor = 0, None
    while True:
        page = queries.inbox(session, user, limit=queries.MAX_PAGE, cursor=cursor)
        size += len(page)
        if page.next_cursor is None:
            return size
        cursor = page.next_cursor


def inbox_times(engines: dict[str, Any], username: str, n: int) -> dict[str, tuple[list[float], int]]:
    """p50/p95 material of `list_tasks` for one user on every database, alternating sample by sample so
    the load of a shared machine falls on both alike; with the size of the inbox."""
    users, sizes = {}, {}
    for k, engine in engines.items():
        with db.read(engine) as s:
            users[k] = orgs.actor_by_name(s, username)
            sizes[k] = inbox_size(s, users[k])
    times: dict[str, list[float]] = {k: [] for k in engines}
    for i in range(n + 2):
        for k, engine in engines.items():
            t0 = time.perf_counter()
            with db.read(engine) as s:
                queries.list_tasks(s, users[k])
            if i >= 2:
                times[k].append((time.perf_counter() - t0) * 1000)
    return {k: (times[k], sizes[k]) for k in engines}


def home_times(urls: dict[str, str], username: str, n: int) -> dict[str, tuple[list[float], int, int]]:
    """GET / as the user on every database (alternating); the times, the statements per request and how
    many of them read a spec, a BPMN text or a workflow state."""
    from web import create_app
    clients, counts = {}, {}
    for k, url in urls.items():
        app = create_app({"DATABASE_URL": url, "TESTING": True})
        statements: list[str] = []
        event.listen(app.extensions["yicun_engine"], "before_cursor_execute",
                     lambda _c, _cur, stmt, *_a, seen=statements: seen.append(stmt))
        with db.read(app.extensions["yicun_engine"]) as s:
            person = orgs.user_by_name(s, username)
            uid, stamp = person.id, orgs.credential_stamp(person)
        client = app.test_client()
        with client.session_transaction() as sess:  # what a login leaves in the session (web.auth)
            sess["uid"], sess["stamp"] = uid, stamp
        with clock.using(clock.ManualClock(NOW)):
            assert client.get("/").status_code == 200
            statements.clear()
            assert client.get("/").status_code == 200
        counts[k] = (len(statements), sum(any(h in st for h in HEAVY) for st in statements))
        clients[k] = (app, client)
    times: dict[str, list[float]] = {k: [] for k in urls}
    with clock.using(clock.ManualClock(NOW)):
        for _ in range(n):
            for k, (_app, client) in clients.items():
                t0 = time.perf_counter()
                assert client.get("/").status_code == 200
                times[k].append((time.perf_counter() - t0) * 1000)
    for app, _client in clients.values():
        app.extensions["yicun_engine"].dispose()
    return {k: (times[k], *counts[k]) for k in urls}



def sweep_run(url: str, n: int) -> dict[str, Any]:
    engine = db.make_engine(url)
    first, last = bigdb.insert_sweep_cases(engine, n)
    with engine.connect() as conn:
        conn.execute(text("ANALYZE timers"))
        conn.commit()
    try:
        with db.read(engine) as s:
            armed = s.scalar(select(func.count()).select_from(TimerRow).where(
                TimerRow.state == "armed", TimerRow.due_at <= NOW))
        results, wall = run_sweepers(url, NOW)
        with db.read(engine) as s:
            per_case = s.execute(select(AuditEvent.case_id, func.count()).where(
                AuditEvent.action == "timer.fired", AuditEvent.case_id.between(first, last))
                .group_by(AuditEvent.case_id)).all()
        return {"due": armed, "fired": sum(r[1] for r in results), "wall": wall,
                "split": [r[1] for r in results], "failed": sum(r[3] for r in results),
                "twice": sum(1 for _, k in per_case if k > 1), "cases_fired": len(per_case)}
    finally:
        bigdb.delete_cases(engine, first, last)
        engine.dispose()


def explain(url: str) -> None:
    """The plans of the sweep and inbox queries on this database (EXPLAIN ANALYZE)."""
    from sqlalchemy.dialects import postgresql
    engine = db.make_engine(url)
    with db.read(engine) as s:
        agent = orgs.actor_by_name(s, INBOX_USERS["township agent (busy)"])
        officer = orgs.actor_by_name(s, INBOX_USERS["county 民政 officer"])
        stmts = {
            "inbox queue (township)": task_select(queue_filter(agent), 201),
            "inbox claimed (township agent)": task_select(claimed_filter(agent), 201),
            "inbox queue (county 民政)": task_select(queue_filter(officer), 201),
        }
        first = queries.inbox(s, agent, limit=200)
        if first.next_cursor is not None:  # a later page starts from its key in the index, not by skipping
            stmts["inbox queue (township), page 2"] = page_select(queue_filter(agent), first.next_cursor, 201)
    captured: list[tuple[str, Any]] = []

    def capture(_c: Any, _cur: Any, stmt: str, params: Any, *_a: Any) -> None:
        captured.append((stmt, params))
    event.listen(engine, "before_cursor_execute", capture)
    with db.transaction(engine) as s:
        cases.next_case_to_check(s, NOW, set())
        cases.next_due_case(s, NOW, set())
        s.rollback()
    event.remove(engine, "before_cursor_execute", capture)
    with engine.connect() as conn:
        for label, stmt in stmts.items():
            sql = str(stmt.compile(dialect=postgresql.dialect(), compile_kwargs={"literal_binds": True}))
            _print_plan(conn, label, sql)
        for label, (sql, params) in zip(("warning check: steps", "warning check: cases", "timer sweep: next due"),
                                        [c for c in captured if "FOR UPDATE" in c[0]]):
            _print_plan(conn, label, sql, params)
    engine.dispose()


def _print_plan(conn: Any, label: str, sql: str, params: Any = None) -> None:
    rows = conn.exec_driver_sql("EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) " + sql, params or {}).scalars().all()
    print(f"\n-- {label}")
    for row in rows:
        print("   " + row)
    conn.rollback()


# ------------------------------------------------------------------------------------------ main
def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    big_database_arguments(ap, "yicun_scale")
    ap.add_argument("--rounds", type=int, default=100, help="step-cost rounds per database")
    ap.add_argument("--samples", type=int, default=200, help="inbox samples per user and database")
    ap.add_argument("--timers", type=int, default=10_000)
    ap.add_argument("--explain", action="store_true", help="print the query plans on the big database")
    args = ap.parse_args()

    t0 = time.perf_counter()
    big, empty = bigdb.build(args.server, args.name, args.cases, reuse=args.reuse)
    build_s = time.perf_counter() - t0
    urls = {"1M" if args.cases == 1_000_000 else f"{args.cases:,}": big.url, "empty": empty.url}
    labels = list(urls)
    try:
        engines = {k: db.make_engine(u) for k, u in urls.items()}
        res: dict[str, dict[str, Any]] = {k: {} for k in urls}
        with clock.using(clock.ManualClock(NOW)):
            bigdb.stderr_progress("measuring the step cost")
            for k, xs in step_costs(engines, args.rounds).items():
                res[k]["step"] = xs
            bigdb.stderr_progress("measuring the warning lookup and the inboxes")
            for k, engine in engines.items():
                res[k]["warn"] = warning_lookup(engine, 50)
            for label, username in INBOX_USERS.items():
                for k, measured in inbox_times(engines, username, args.samples).items():
                    res[k][label] = measured
        for e in engines.values():
            e.dispose()
        bigdb.stderr_progress("measuring the home page")
        for label in HOME_USERS:
            for k, measured in home_times(urls, INBOX_USERS[label], 60).items():
                res[k]["home " + label] = measured
        for k, url in urls.items():
            bigdb.stderr_progress(f"sweeping {args.timers:,} timers with 2 sweepers ({k})")
            res[k]["sweep"] = sweep_run(url, args.timers)
        size = {k: bigdb.sizes(u) for k, u in urls.items()}

        a, b = labels
        w = 34
        print(f"\nscale benchmark at {clock.local(NOW):%Y-%m-%d %H:%M} (PostgreSQL); build "
              + ("reused" if big.reused else f"{build_s:,.0f} s") + f"; cases {size[a]['cases']:,} vs {size[b]['cases']:,}")
        print(f"{'':<{w}} {a:>22} {b:>22}   {a} ÷ {b}")
        sa, sb = statistics.median(res[a]["step"]), statistics.median(res[b]["step"])
        print(f"{'step: start + complete (median)':<{w}} {sa:>19.1f} ms {sb:>19.1f} ms   {sa / sb:.2f}")
        wa, wb = statistics.median(res[a]["warn"]), statistics.median(res[b]["warn"])
        print(f"{'warning sweep: next case lookup':<{w}} {wa:>19.2f} ms {wb:>19.2f} ms   {wa / wb:.2f}")
        for label in INBOX_USERS:
            (xa, na), (xb, nb) = res[a][label], res[b][label]
            print(f"{'inbox ' + label:<{w}} {pct(xa, 50):>6.1f}/{pct(xa, 95):>5.1f} ms ({na:>6,}) "
                  f"{pct(xb, 50):>6.1f}/{pct(xb, 95):>5.1f} ms ({nb:>6,})   p95 {pct(xa, 95) / pct(xb, 95):.2f}")
        for label in HOME_USERS:
            (xa, qa, ha), (xb, qb, hb) = res[a]["home " + label], res[b]["home " + label]
            print(f"{'GET / ' + label:<{w}} {pct(xa, 50):>6.1f}/{pct(xa, 95):>5.1f} ms "
                  f"{f'({qa} st, {ha} heavy)':>9} {pct(xb, 50):>6.1f}/{pct(xb, 95):>5.1f} ms "
                  f"{f'({qb} st, {hb} heavy)':>9}   p95 {pct(xa, 95) / pct(xb, 95):.2f}")
        for k in labels:
            sw = res[k]["sweep"]
            print(f"{'sweep ' + k + ' (2 sweepers)':<{w}} {sw['wall']:.1f} s for {sw['fired']:,} fired of "
                  f"{sw['due']:,} due (split {sw['split']}), {sw['failed']} failed, fired twice: {sw['twice']}"
                  f"  (goal ≤ 20 s, 0 twice)")
        for k in labels:
            z = size[k]
            before = z["closed_before"] or 0
            print(f"{'size ' + k:<{w}} database {z['db'] / 2**30:.2f} GiB; closed cases' instance JSON "
                  f"{(z['closed_now'] or 0) / 2**20:,.0f} MiB (was {before / 2**20:,.0f} MiB before compaction, "
                  f"{z['closed']:,} closed)")
        if args.explain:
            explain(big.url)
    finally:
        if not args.keep:
            for dbname in (args.name, f"{args.name}_empty"):
                bigdb.drop_database(args.server, dbname)


if __name__ == "__main__":
    main()
