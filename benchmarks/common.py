"""What the benchmarks share: a one-village slice of the Yiyang tree and a fresh engine set up on it."""
from __future__ import annotations

import multiprocessing as mp
import os
import statistics
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from engine import clock, db, orgs, processes, timers  # noqa: E402

TREE = [
    orgs.SeedUnit("4309", "益阳市", "city", None, 0, 0),
    orgs.SeedUnit("430902", "资阳区", "county", "4309", 0, 0),
    orgs.SeedUnit("430902102", "迎风桥镇", "township", "430902", 0, 2),
    orgs.SeedUnit("430902102201", "邹家村", "village", "430902102", 2, 0),
]
CLERK = "clerk-430902102201-1"
FIXTURES = ROOT / "tests" / "fixtures"


def prepare_database(url: str, fixture: str, at: str) -> None:
    """Migrate, seed the slice, deploy one fixture process (a fixed copy, so the figures stay comparable)."""
    engine = db.make_engine(url)
    db.migrate(engine)
    with clock.using(clock.ManualClock(at)), db.transaction(engine) as s:
        orgs.seed_org_tree(s, TREE)
        orgs.seed_staff(s, TREE)
        processes.deploy(s, (FIXTURES / fixture).read_bytes(), fixture)
    engine.dispose()


def _sweeper(url: str, now: datetime, barrier: Any, out: Any) -> None:
    engine = db.make_engine(url)
    barrier.wait()
    t0 = time.perf_counter()
    report = timers.sweep(engine, now)
    out.put((os.getpid(), report.fired, report.cases, len(report.failed), time.perf_counter() - t0))
    engine.dispose()


def run_sweepers(url: str, now: datetime, count: int = 2) -> tuple[list[tuple[int, int, int, int, float]], float]:
    """`count` sweeper processes started together on the database at `url`, all sweeping at `now`: each
    one's (pid, fired, cases, failed, seconds), and the wall time of the whole run."""
    ctx = mp.get_context("spawn")
    barrier, out = ctx.Barrier(count), ctx.Queue()
    procs = [ctx.Process(target=_sweeper, args=(url, now, barrier, out)) for _ in range(count)]
    t0 = time.perf_counter()
    for p in procs:
        p.start()
    results = [out.get() for _ in procs]
    for p in procs:
        p.join()
    return results, time.perf_counter() - t0


def big_database_arguments(ap: Any, name: str, cases: int = 1_000_000) -> None:
    """The options of a benchmark on `bigdb.py`'s PostgreSQL databases: their size, server and name, and
    whether a finished build is reused and kept."""
    ap.add_argument("--cases", type=int, default=cases)
    ap.add_argument("--server", default=os.environ.get("YICUN_SCALE_SERVER", "postgresql://postgres@127.0.0.1:5432"))
    ap.add_argument("--name", default=name)
    ap.add_argument("--reuse", action="store_true", help="use finished builds of the same size if there are")
    ap.add_argument("--keep", action="store_true", help="keep the databases afterwards (for --reuse)")


def pct(xs: list[float], p: int) -> float:
    """The p-th percentile of timings (inclusive quantiles; a single sample is its own percentile)."""
    return statistics.quantiles(xs, n=100, method="inclusive")[p - 1] if len(xs) > 1 else xs[0]
