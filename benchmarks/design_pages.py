"""The designers' read side on a million cases (issue #11): the process list (every service item with its
versions and each version's running cases), a process's page, and the statement behind their counts — on the
reports benchmark's 1,000,000-case database (`bigdb.py`, 15 % of the cases open: 150,000 running cases over the
176 processes) and its empty twin, so what the cases alone cost is seen.

Timed end to end through the engine calls the pages make (`engine.queries.process_versions`), each in its own
read transaction as a page opens it, as the city's designer (who sees every case): p50/p95 over `--samples`
after two warm-up rounds, the databases in turn. The running-case counts are one grouped statement over the open
cases (`ix_cases_open_version`, migration 0013: a range of the index per version); its EXPLAIN (ANALYZE,
BUFFERS) on the 1M database is printed at the end.

    python benchmarks/design_pages.py [--reuse] [--keep] [--samples 30] [--process MZ-01]
        [--server postgresql://postgres@127.0.0.1:5432] [--name yicun_reports]
"""
from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from typing import Any

import bigdb
from common import big_database_arguments, pct
from sqlalchemy import Engine, text

from engine import db, orgs
from engine.queries import process_versions

DESIGNER = "designer"  # the city's process designer
OPEN_SHARE = 0.15  # as benchmarks/reports.py builds it (the same database is reused)


def measure(engines: dict[str, Engine], request: Callable[[Any, Any], Any], samples: int) -> dict[str, list[float]]:
    readers = {}
    for k, engine in engines.items():
        with db.read(engine) as s:
            readers[k] = orgs.actor_by_name(s, DESIGNER)
    out: dict[str, list[float]] = {k: [] for k in engines}
    for i in range(samples + 2):
        for k, engine in engines.items():
            t0 = time.perf_counter()
            with db.read(engine) as s:
                request(s, readers[k])
            if i >= 2:
                out[k].append((time.perf_counter() - t0) * 1000)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    big_database_arguments(ap, "yicun_reports")
    ap.add_argument("--samples", type=int, default=30)
    ap.add_argument("--process", default="MZ-01", help="the process whose page is timed")
    a = ap.parse_args()

    big, empty = bigdb.build(a.server, a.name, a.cases, reuse=a.reuse, open_share=OPEN_SHARE)
    engines = {f"{a.cases:,}": db.make_engine(big.url), "empty": db.make_engine(empty.url)}
    for engine in engines.values():
        db.check_schema(engine, shown=str(engine.url))
    big_key = f"{a.cases:,}"
    with engines[big_key].connect() as conn:
        running = conn.execute(text("SELECT count(*) FROM cases WHERE status = 'open'")).scalar_one()
    print(f"running cases: {running:,} on {big_key}; process page: {a.process}")
    requests: dict[str, Callable[[Any, Any], Any]] = {
        "process list": lambda s, r: process_versions.process_list(s, r),
        "process list, searched": lambda s, r: process_versions.process_list(s, r, "低保"),
        f"process page {a.process}": lambda s, r: process_versions.process_page(s, r, a.process),
    }
    print(f"\n{'request':<32}" + "".join(f"{k + ' p50/p95 ms':>24}" for k in engines) + f"{'1M ÷ empty':>12}")
    for label, request in requests.items():
        timed = measure(engines, request, a.samples)
        cells = "".join(f"{pct(ms, 50):>13.1f} /{pct(ms, 95):>8.1f}" for ms in timed.values())
        print(f"{label:<32}{cells}{pct(timed[big_key], 50) / pct(timed['empty'], 50):>12.2f}")

    print(f"\nthe running cases per version on {big_key} — EXPLAIN (ANALYZE, BUFFERS):")
    with engines[big_key].connect() as conn:
        for (line,) in conn.execute(text(
                "EXPLAIN (ANALYZE, BUFFERS) SELECT process_version_id, count(*) FROM cases "
                "WHERE status = 'open' GROUP BY process_version_id")):
            print("   ", line)
    for engine in engines.values():
        engine.dispose()
    if not a.keep:
        for name in (a.name, f"{a.name}_empty"):
            bigdb.drop_database(a.server, name)


if __name__ == "__main__":
    main()
