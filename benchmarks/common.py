"""What the benchmarks share: a one-village slice of the Yiyang tree and a fresh engine set up on it."""
from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from engine import clock, db, orgs, processes  # noqa: E402

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
