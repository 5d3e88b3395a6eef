"""A realistic large PostgreSQL database for the scale benchmarks, built quickly and reusable.

How it is built (``build``):

1. **Templates through the engine.** The schema is migrated, the Yiyang tree and its staff seeded and the
   176 catalogue processes deployed (what ``yicun init`` does), then a few hundred real cases are run
   through the engine's services over a simulated month (2026-10-05 … NOW, with the daily timer/warning
   sweep): for every process one case completed (approve) and one open at a random step, plus in turn
   a rejected, a withdrawn, a paused and a just-started one — so every state, cards included, comes
   from the engine itself.
2. **The empty twin.** That database is copied (``CREATE DATABASE … TEMPLATE``) as ``<name>_empty``: the
   same org, processes and templates, no history — the "empty" side of the comparisons.
3. **Replication with set-based SQL.** The templates are copied into ``--cases`` cases with
   ``INSERT … SELECT`` over a replica table: new ids (in time order), case numbers per year, villages
   (a share of the open work concentrated on one busy township), the staff of the new units in every
   user column, and shifted dates (closed history spread over three years; open cases keep their
   template's recent dates, so their armed timers and warning checks stay in the future of NOW).
   Tasks, timers, audit events, pauses, cards and notifications come along; the closing facts the reports
   read (a case's on-time flag and working days taken, a step's working time) are the template's, not
   recounted for the shifted dates (a shift may move a span across a weekend: the figures stay plausible).
   Secondary indexes are dropped during the copy and rebuilt after it, foreign-key triggers are off
   (``session_replication_role``),
   then ``VACUUM ANALYZE``.

Everything happens at the fixed instant NOW (a manual clock), so figures are comparable between runs.
The database carries a ``bench_info`` row; ``open_database(..., reuse=True)`` finds a finished build.

    from bigdb import build, BUSY_TOWNSHIP, NOW
    info = build("postgresql://postgres@127.0.0.1:5432", "yicun_scale", cases=1_000_000)
"""
from __future__ import annotations

import io
import json
import random
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from common import FIXTURES, ROOT
from sqlalchemy import Engine, select, text

from engine import cases, clock, db, demo, orgs, processes, timers
from engine.errors import YicunError
from engine.models import Case, ProcessVersion, TaskRow, User
from engine.policy import Actor

NOW = clock.to_utc("2026-11-02T09:00:00+08:00")  # a Monday; every measurement runs at this instant
HISTORY_START = clock.to_utc("2026-10-05T09:00:00+08:00")  # the simulated month of the templates
BUSY_TOWNSHIP = "430902102"  # 资阳区 迎风桥镇: gets a large share of the open work
BUSY_COUNTY = "430902"
BUSY_VILLAGE = "430902102201"  # 邹家村
SWEEP_SERVICE = "TEST-RELAY"  # the 10k-timer sweep fires the relay fixture's PT72H review timer
BUILD_VERSION = 2  # 2: closing facts (on_time, workdays_taken, work_hundredths) copied

Progress = Callable[[str], None]


def stderr_progress(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def bar(done: int, total: int, width: int = 30) -> str:
    filled = int(width * done / max(total, 1))
    return "[" + "#" * filled + "." * (width - filled) + f"] {done:,}/{total:,}"


@dataclass
class BuildInfo:
    url: str
    cases: int
    seconds: float
    reused: bool


def _server_url(base: str, name: str) -> str:
    return base.rstrip("/") + "/" + name


def _admin(base: str) -> Engine:
    return db.make_engine(_server_url(base, "postgres"), isolation_level="AUTOCOMMIT")


def database_exists(base: str, name: str) -> bool:
    admin = _admin(base)
    try:
        with admin.connect() as conn:
            return bool(conn.scalar(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}))
    finally:
        admin.dispose()


def drop_database(base: str, name: str) -> None:
    admin = _admin(base)
    try:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()


def finished_build(base: str, name: str) -> int | None:
    """The case count of a finished build of this version, or None."""
    if not database_exists(base, name):
        return None
    engine = db.make_engine(_server_url(base, name))
    try:
        with engine.connect() as conn:
            if not conn.scalar(text("SELECT to_regclass('bench_info') IS NOT NULL")):
                return None
            row = conn.execute(text("SELECT cases, version FROM bench_info")).first()
            return row.cases if row and row.version == BUILD_VERSION else None
    finally:
        engine.dispose()


# ------------------------------------------------------------------------------------------ templates
def _form(session: Any, task: TaskRow, decision: str) -> dict[str, Any]:
    meta = session.scalar(select(ProcessVersion.task_meta).join(Case, Case.process_version_id == ProcessVersion.id)
                          .where(Case.id == task.case_id))
    return demo.sample_form((meta or {}).get(task.bpmn_id, {}).get("fields", []), decision)


@dataclass
class _Plan:
    service: str
    village: str
    start: datetime
    steps: int  # user steps to complete (a large number: to the end)
    decision: str
    then: str | None = None  # "withdraw" | "pause" after the steps


def _plans(services: list[str], villages: list[str], rng: random.Random) -> list[_Plan]:
    span = (NOW - HISTORY_START).total_seconds() - 3 * 86400
    extra = ("reject", "withdraw", "pause", "fresh")
    plans = []
    for i, code in enumerate(services):
        def at() -> datetime:
            return HISTORY_START + timedelta(seconds=rng.uniform(0, span))
        plans.append(_Plan(code, rng.choice(villages), at(), 99, "approve"))
        plans.append(_Plan(code, rng.choice(villages), at(), rng.randint(0, 3), "approve"))
        kind = extra[i % len(extra)]
        if kind == "reject":
            plans.append(_Plan(code, rng.choice(villages), at(), 99, "reject"))
        elif kind == "withdraw":
            plans.append(_Plan(code, rng.choice(villages), at(), rng.randint(0, 1), "approve", "withdraw"))
        elif kind == "pause":
            plans.append(_Plan(code, rng.choice(villages), at(), rng.randint(0, 2), "approve", "pause"))
        else:
            plans.append(_Plan(code, rng.choice(villages), NOW - timedelta(hours=rng.uniform(2, 40)), 0, "approve"))
    return plans


def make_templates(engine: Engine, progress: Progress, seed: int = 7) -> dict[str, int]:
    """Run the template cases through the engine over the simulated month, sweeping once a day."""
    rng = random.Random(seed)
    with db.read(engine) as s:
        services = sorted(s.scalars(select(ProcessVersion.process_id).where(
            ProcessVersion.executable.is_(True), ProcessVersion.process_id != SWEEP_SERVICE).distinct()))
        villages = [u.code for u in orgs.list_units(s, "village")]
    plans = _plans(services, villages, rng)
    # events: (when, order, plan index, what); steps ~0.5–2 working days apart
    events: list[tuple[datetime, int, int, str]] = []
    for i, p in enumerate(plans):
        t = p.start
        events.append((t, 0, i, "start"))
        for k in range(min(p.steps, 12)):
            t = t + timedelta(hours=rng.uniform(10, 40))
            if t >= NOW - timedelta(minutes=5):
                break
            events.append((t, 1, i, f"step{k}"))
        if p.then:
            events.append((min(t + timedelta(hours=2), NOW - timedelta(minutes=1)), 2, i, p.then))
    events.sort()
    numbers: dict[int, str] = {}
    failures: dict[str, int] = {}
    next_sweep = HISTORY_START + timedelta(days=1)
    done = 0
    for when, _order, i, what in events:
        while next_sweep <= when:
            timers.sweep(engine, next_sweep)
            next_sweep += timedelta(days=1)
        p = plans[i]
        try:
            with clock.using(clock.ManualClock(when)), db.transaction(engine) as s:
                if what == "start":
                    clerk = orgs.list_users(s, "clerk", p.village, limit=1)[0]
                    numbers[i] = cases.start_case(s, service_code=p.service, village_code=p.village,
                                                  applicant_name=orgs._person_name(rng), actor=clerk,
                                                  now=when).case_number
                elif i not in numbers:
                    continue
                elif what == "withdraw":
                    case = s.scalar(select(Case).where(Case.number == numbers[i]))
                    if case.status == "open":
                        cases.withdraw_case(s, numbers[i], s.get(User, case.first_clerk_id), "申请人撤回", now=when)
                elif what == "pause":
                    case = s.scalar(select(Case).where(Case.number == numbers[i]))
                    if case.status == "open" and case.paused_at is None:
                        cases.pause_case(s, numbers[i], Actor.operator(), "等待申请人补正材料", "supplement", now=when)
                else:
                    task = s.scalar(select(TaskRow).join(Case).where(Case.number == numbers[i],
                                                                    TaskRow.state == "ready").order_by(TaskRow.id))
                    if task is not None:
                        cases.complete_task(s, task.id, demo.eligible_worker(s, task), _form(s, task, p.decision),
                                            now=when)
        except (YicunError, LookupError) as exc:
            key = f"{what.rstrip('0123456789')}: {type(exc).__name__}"
            failures[key] = failures.get(key, 0) + 1
        done += 1
        if done % 200 == 0:
            progress(f"templates {bar(done, len(events))} engine events")
    while next_sweep <= NOW:
        timers.sweep(engine, next_sweep)
        next_sweep += timedelta(days=1)
    timers.sweep(engine, NOW)
    if failures:
        progress(f"templates: steps refused (the case stays where it was): {failures}")
    return {"plans": len(plans), "events": len(events), "refused": sum(failures.values())}


def make_sweep_blueprint(engine: Engine) -> None:
    """One relay case whose review timer (PT72H) is due before NOW, kept aside in bench_sweep_* tables
    (and removed from the live ones): `insert_sweep_cases` copies it as often as a sweep test needs."""
    start = NOW - timedelta(days=4)
    with clock.using(clock.ManualClock(start)), db.transaction(engine) as s:
        clerk = orgs.actor_by_name(s, f"clerk-{BUSY_VILLAGE}-1")
        r = cases.start_case(s, service_code=SWEEP_SERVICE, village_code=BUSY_VILLAGE, applicant_name="符建英",
                             actor=clerk, now=start)
        cases.complete_task(s, r.opened_tasks[0], clerk, {"documents_complete": True}, now=start)
        case_id = s.scalar(select(Case.id).where(Case.number == r.case_number))
    with engine.begin() as conn:
        for table in ("cases", "tasks", "timers", "audit_events"):
            key = "id" if table == "cases" else "case_id"
            conn.execute(text(f"CREATE TABLE bench_sweep_{table} AS SELECT * FROM {table} WHERE {key} = :c"),
                         {"c": case_id})
        for table in ("notifications", "cards", "audit_events", "pauses", "timers", "tasks"):
            conn.execute(text(f"DELETE FROM {table} WHERE case_id = :c"), {"c": case_id})
        conn.execute(text("DELETE FROM cases WHERE id = :c"), {"c": case_id})


def insert_sweep_cases(engine: Engine, n: int) -> tuple[int, int]:
    """n open relay cases with a due review timer (copies of the blueprint); returns their id range."""
    with engine.begin() as conn:
        first = (conn.scalar(text("SELECT max(id) FROM cases")) or 0) + 1_000_000
        task0 = (conn.scalar(text("SELECT max(id) FROM tasks")) or 0) + 1_000_000
        cols = [c for c in conn.execute(text("SELECT * FROM bench_sweep_cases LIMIT 0")).keys() if c != "id"]
        other = ", ".join(c for c in cols if c not in ("number", "instance_json"))
        conn.execute(text(f"""
            INSERT INTO cases (id, number, instance_json, {other})
            SELECT :first + g, 'SW-' || lpad(((:first + g) % 100000000)::text, 8, '0'),
                   replace(b.instance_json, b.number, 'SW-' || lpad(((:first + g) % 100000000)::text, 8, '0')),
                   {', '.join('b.' + c for c in cols if c not in ('number', 'instance_json'))}
            FROM bench_sweep_cases b, generate_series(0, :n - 1) g"""), {"first": first, "n": n})
        for table in ("tasks", "timers", "audit_events"):
            tcols = [c for c in conn.execute(text(f"SELECT * FROM bench_sweep_{table} LIMIT 0")).keys()
                     if c not in ("id", "case_id")]
            ident = ("(:task0 + g * 10 + row_number() OVER (PARTITION BY g ORDER BY b.id))::int, "
                     if table == "tasks" else "")
            conn.execute(text(f"""
                INSERT INTO {table} ({'id, ' if ident else ''}case_id, {', '.join(tcols)})
                SELECT {ident}:first + g, {', '.join('b.' + c for c in tcols)}
                FROM bench_sweep_{table} b, generate_series(0, :n - 1) g"""),
                         {"first": first, "n": n, "task0": task0})
        conn.execute(text("SELECT setval(pg_get_serial_sequence('tasks', 'id'), (SELECT max(id) FROM tasks))"))
    return first, first + n - 1


def delete_cases(engine: Engine, first: int, last: int) -> None:
    """Remove cases [first, last] and every row that refers to them (whatever tables the schema has)."""
    with engine.begin() as conn:
        # every referring row goes here, so the foreign-key checks (one scan of notifications per deleted
        # case: notifications.case_id has no index) are switched off for this transaction
        conn.execute(text("SET LOCAL session_replication_role = replica"))
        referring = conn.execute(text("""
            SELECT c.relname FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid
            WHERE k.contype = 'f' AND k.confrelid = 'cases'::regclass
            ORDER BY CASE c.relname WHEN 'notifications' THEN 0 WHEN 'cards' THEN 1 WHEN 'tasks' THEN 3 ELSE 2 END
            """)).scalars().all()
        for table in referring:  # notifications → cards → tasks, each before what it refers to
            conn.execute(text(f'DELETE FROM "{table}" WHERE case_id BETWEEN :a AND :b'), {"a": first, "b": last})
        conn.execute(text("DELETE FROM cases WHERE id BETWEEN :a AND :b"), {"a": first, "b": last})


# ------------------------------------------------------------------------------------------ replication
_BIG_TABLES = ("cases", "tasks", "timers", "audit_events", "pauses", "cards", "notifications")


def _drop_secondary_indexes(conn: Any) -> list[str]:
    """Drop the plain (non-unique, non-primary) indexes of the big tables; returns their definitions."""
    rows = conn.execute(text("""
        SELECT i.relname AS name, pg_get_indexdef(x.indexrelid) AS ddl
        FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid JOIN pg_class t ON t.oid = x.indrelid
        WHERE t.relname = ANY(:tables) AND NOT x.indisprimary AND NOT x.indisunique
          AND t.relnamespace = 'public'::regnamespace"""), {"tables": list(_BIG_TABLES)}).all()
    for r in rows:
        conn.execute(text(f'DROP INDEX "{r.name}"'))
    return [r.ddl for r in rows]


def _replica_plan(conn: Any, n: int, rng: random.Random, open_share: float = 0.03) -> int:
    """Fill bench_replica: one row per new case (template, village, time shift), ids in time order;
    `open_share` of them open (the scale benchmark: 3 %, the reports benchmark: 15 %)."""
    templates = conn.execute(text("""
        SELECT c.id, c.status, c.created_at,
               bool_or(t.state = 'ready' AND t.level = 'township' AND t.assignee_id IS NULL) AS township_ready
        FROM cases c LEFT JOIN tasks t ON t.case_id = c.id GROUP BY c.id ORDER BY c.id""")).all()
    closed = [t for t in templates if t.status != "open"]
    open_ = [t for t in templates if t.status == "open"]
    at_township = [t for t in open_ if t.township_ready] or open_
    villages = conn.execute(text("SELECT v.id, v.code, v.parent_id FROM org_units v WHERE level = 'village'")).all()
    busy = [v for v in villages if v.code.startswith(BUSY_TOWNSHIP)]
    # the open work: `open_share` of the cases, a township's ~10k on the busy one (most waiting at the township)
    n_busy_township = min(10_000, n // 60)
    n_busy_other = n_busy_township // 3
    n_open = max(int(n * open_share), n_busy_township + n_busy_other)
    rows: list[tuple[int, int, float]] = []  # (template, village, shift seconds)
    for _ in range(n_busy_township):
        rows.append((rng.choice(at_township).id, rng.choice(busy).id, 0.0))
    for _ in range(n_busy_other):
        rows.append((rng.choice(open_).id, rng.choice(busy).id, 0.0))
    for _ in range(n_open - n_busy_township - n_busy_other):
        rows.append((rng.choice(open_).id, rng.choice(villages).id, 0.0))
    weights = [rng.paretovariate(1.5) for _ in villages]  # some villages far busier than others
    history_villages = rng.choices(villages, weights=weights, k=n - len(rows))
    created = {t.id: t.created_at for t in templates}
    for v in history_villages:
        rows.append((rng.choice(closed).id, v.id, rng.uniform(30, 3 * 365) * 86400))
    rows.sort(key=lambda r: created[r[0]] - timedelta(seconds=r[2]))  # ids grow with time, as in production
    first = (conn.scalar(text("SELECT max(id) FROM cases")) or 0) + 1
    buf = io.StringIO()
    for i, (template, village, shift) in enumerate(rows):
        buf.write(f"{first + i}\t{template}\t{village}\t{shift:.0f}\n")
    conn.execute(text("""CREATE UNLOGGED TABLE bench_replica (case_id int PRIMARY KEY, template_id int, village_id int,
                         shift_s bigint)"""))
    raw = conn.connection.driver_connection
    with raw.cursor() as cur, cur.copy("COPY bench_replica FROM STDIN") as copy:
        copy.write(buf.getvalue())
    return first


_PREPARE = """
ALTER TABLE bench_replica ADD COLUMN township_id int, ADD COLUMN county_id int, ADD COLUMN shift interval,
                          ADD COLUMN number text, ADD COLUMN task_base int, ADD COLUMN card_base int;
UPDATE bench_replica r SET township_id = t.id, county_id = t.parent_id, shift = make_interval(secs => r.shift_s)
FROM org_units v JOIN org_units t ON t.id = v.parent_id WHERE v.id = r.village_id;
-- the templates' rows, aside: the copies join these small tables, never the growing live ones
CREATE UNLOGGED TABLE bench_t_cases AS SELECT * FROM cases;
CREATE UNLOGGED TABLE bench_t_tasks AS SELECT * FROM tasks;
CREATE UNLOGGED TABLE bench_t_timers AS SELECT * FROM timers;
CREATE UNLOGGED TABLE bench_t_audit_events AS SELECT * FROM audit_events;
CREATE UNLOGGED TABLE bench_t_pauses AS SELECT * FROM pauses;
CREATE UNLOGGED TABLE bench_t_cards AS SELECT * FROM cards;
CREATE UNLOGGED TABLE bench_t_notifications AS SELECT * FROM notifications;
CREATE UNIQUE INDEX ON bench_t_cases (id);
CREATE UNIQUE INDEX ON bench_t_tasks (id);
CREATE UNIQUE INDEX ON bench_t_cards (id);
CREATE UNLOGGED TABLE bench_template_task AS
  SELECT case_id AS template_id, id AS task_id, (row_number() OVER (PARTITION BY case_id ORDER BY id))::int - 1 AS ord
  FROM tasks;
CREATE UNLOGGED TABLE bench_template_card AS
  SELECT case_id AS template_id, id AS card_id, (row_number() OVER (PARTITION BY case_id ORDER BY id))::int - 1 AS ord
  FROM cards;
CREATE INDEX ON bench_template_task (task_id);
CREATE INDEX ON bench_template_card (card_id);
-- the staff who stand in for a template's staff in a replica: the first of each role (and department) per unit
CREATE UNLOGGED TABLE bench_staff AS
  SELECT DISTINCT ON (unit_id, role, coalesce(department, '')) unit_id, role, coalesce(department, '') AS dept, id
  FROM users WHERE role IN ('clerk', 'agent', 'township_officer', 'county_officer', 'supervisor')
  ORDER BY unit_id, role, coalesce(department, ''), id;
CREATE UNIQUE INDEX ON bench_staff (unit_id, role, dept);
CREATE UNLOGGED TABLE bench_user AS
  SELECT u.id, u.role, coalesce(u.department, '') AS dept, o.level FROM users u JOIN org_units o ON o.id = u.unit_id;
CREATE UNIQUE INDEX ON bench_user (id);
CREATE FUNCTION bench_map_user(uid int, v int, t int, c int) RETURNS int LANGUAGE sql STABLE AS $$
  SELECT coalesce((SELECT s.id FROM bench_user u JOIN bench_staff s
                   ON s.role = u.role AND s.dept = u.dept
                  AND s.unit_id = CASE u.level WHEN 'village' THEN v WHEN 'township' THEN t WHEN 'county' THEN c END
                   WHERE u.id = uid), uid)
$$;
CREATE FUNCTION bench_map_unit(unit int, tv int, tt int, tc int, v int, t int, c int) RETURNS int
  LANGUAGE sql IMMUTABLE AS $$
  SELECT CASE unit WHEN tv THEN v WHEN tt THEN t WHEN tc THEN c ELSE unit END
$$;
"""

_NUMBERS = """
WITH years AS (
  SELECT r.case_id, extract(year FROM (c.created_at - r.shift) AT TIME ZONE 'Asia/Shanghai')::int AS y
  FROM bench_replica r JOIN bench_t_cases c ON c.id = r.template_id),
numbered AS (
  SELECT case_id, y, row_number() OVER (PARTITION BY y ORDER BY case_id) AS k FROM years)
UPDATE bench_replica r
SET number = 'YY-' || n.y || '-' || lpad((n.k + coalesce((SELECT last_value FROM case_sequences WHERE year = n.y), 0))::text,
                                          6, '0')
FROM numbered n WHERE n.case_id = r.case_id;
WITH nt AS (SELECT template_id, count(*) AS n FROM bench_template_task GROUP BY 1),
nc AS (SELECT template_id, count(*) AS n FROM bench_template_card GROUP BY 1),
sizes AS (
  SELECT r.case_id, coalesce(nt.n, 0) AS nt, coalesce(nc.n, 0) AS nc
  FROM bench_replica r LEFT JOIN nt ON nt.template_id = r.template_id LEFT JOIN nc ON nc.template_id = r.template_id),
bases AS (
  SELECT case_id, sum(nt) OVER (ORDER BY case_id) - nt AS tb, sum(nc) OVER (ORDER BY case_id) - nc AS cb FROM sizes)
UPDATE bench_replica r SET task_base = b.tb + (SELECT max(id) FROM tasks) + 1,
                           card_base = b.cb + coalesce((SELECT max(id) FROM cards), 0) + 1
FROM bases b WHERE b.case_id = r.case_id;
"""

_MAP = "bench_map_user({col}, r.village_id, r.township_id, r.county_id)"
_UNIT = "bench_map_unit({col}, tc.village_id, tc.township_id, tc.county_id, r.village_id, r.township_id, r.county_id)"


def _copy_statements() -> dict[str, str]:
    """INSERT … SELECT per table for the replicas with case ids in [:lo, :hi]."""
    sh = lambda col: f"{col} - r.shift"  # noqa: E731
    return {
        "cases": f"""
INSERT INTO cases (id, number, service_code, process_version_id, village_id, township_id, county_id, applicant_name,
  first_clerk_id, status, outcome, instance_json, serializer_version, version, created_at, updated_at, closed_at,
  accepted_at, legal_limit_workdays, promised_limit_workdays, legal_due_at, promised_due_at, due_estimated, paused_at,
  extension_workdays, warning_level, warning_check_at, on_time, workdays_taken)
SELECT r.case_id, r.number, tc.service_code, tc.process_version_id, r.village_id, r.township_id, r.county_id,
  tc.applicant_name, {_MAP.format(col='tc.first_clerk_id')}, tc.status, tc.outcome,
  replace(tc.instance_json, tc.number, r.number), tc.serializer_version, tc.version, {sh('tc.created_at')},
  {sh('tc.updated_at')}, {sh('tc.closed_at')}, {sh('tc.accepted_at')}, tc.legal_limit_workdays,
  tc.promised_limit_workdays, {sh('tc.legal_due_at')}, {sh('tc.promised_due_at')}, tc.due_estimated,
  {sh('tc.paused_at')}, tc.extension_workdays, tc.warning_level, {sh('tc.warning_check_at')}, tc.on_time,
  tc.workdays_taken
FROM bench_replica r JOIN bench_t_cases tc ON tc.id = r.template_id WHERE r.case_id BETWEEN :lo AND :hi""",
        "tasks": f"""
INSERT INTO tasks (id, case_id, spiff_task_id, bpmn_id, name, lane, level, unit_id, candidate_group, assignee_id, state,
  created_at, completed_at, completed_by_id, due_at, limit_workdays, warning_level, warning_check_at, work_hundredths)
SELECT r.task_base + tt.ord, r.case_id, t.spiff_task_id, t.bpmn_id, t.name, t.lane, t.level,
  {_UNIT.format(col='t.unit_id')}, t.candidate_group, {_MAP.format(col='t.assignee_id')}, t.state,
  {sh('t.created_at')}, {sh('t.completed_at')}, {_MAP.format(col='t.completed_by_id')}, {sh('t.due_at')},
  t.limit_workdays, t.warning_level, {sh('t.warning_check_at')}, t.work_hundredths
FROM bench_replica r JOIN bench_t_cases tc ON tc.id = r.template_id JOIN bench_template_task tt ON tt.template_id = r.template_id
JOIN bench_t_tasks t ON t.id = tt.task_id WHERE r.case_id BETWEEN :lo AND :hi""",
        "timers": f"""
INSERT INTO timers (case_id, spiff_task_id, bpmn_id, due_at, state, fired_at, error, workdays, created_at)
SELECT r.case_id, t.spiff_task_id, t.bpmn_id, {sh('t.due_at')}, t.state, {sh('t.fired_at')}, t.error, t.workdays,
  {sh('t.created_at')}
FROM bench_replica r JOIN bench_t_timers t ON t.case_id = r.template_id WHERE r.case_id BETWEEN :lo AND :hi""",
        "audit_events": f"""
INSERT INTO audit_events (case_id, actor_id, at, action, details, old_value, new_value)
SELECT r.case_id, {_MAP.format(col='a.actor_id')}, {sh('a.at')}, a.action,
  CASE WHEN a.action = 'case.started' THEN replace(a.details::text, tc.number, r.number)::json ELSE a.details END,
  a.old_value, a.new_value
FROM bench_replica r JOIN bench_t_cases tc ON tc.id = r.template_id JOIN bench_t_audit_events a ON a.case_id = r.template_id
WHERE r.case_id BETWEEN :lo AND :hi""",
        "pauses": f"""
INSERT INTO pauses (case_id, kind, reason, started_at, ended_at, started_by_id, ended_by_id, "left")
SELECT r.case_id, p.kind, p.reason, {sh('p.started_at')}, {sh('p.ended_at')}, {_MAP.format(col='p.started_by_id')},
  {_MAP.format(col='p.ended_by_id')}, p."left"
FROM bench_replica r JOIN bench_t_pauses p ON p.case_id = r.template_id WHERE r.case_id BETWEEN :lo AND :hi""",
        "cards": f"""
INSERT INTO cards (id, case_id, task_id, subject, color, unit_id, responsible_clerk_id, assignee_id, due_at, issued_at,
  reason, resolved_at)
SELECT r.card_base + tk.ord, r.case_id, r.task_base + tt.ord,
  CASE WHEN k.task_id IS NULL THEN k.subject ELSE 'task:' || (r.task_base + tt.ord) END, k.color,
  {_UNIT.format(col='k.unit_id')}, {_MAP.format(col='k.responsible_clerk_id')}, {_MAP.format(col='k.assignee_id')},
  {sh('k.due_at')}, {sh('k.issued_at')}, k.reason, {sh('k.resolved_at')}
FROM bench_replica r JOIN bench_t_cases tc ON tc.id = r.template_id JOIN bench_template_card tk ON tk.template_id = r.template_id
JOIN bench_t_cards k ON k.id = tk.card_id LEFT JOIN bench_template_task tt ON tt.task_id = k.task_id
WHERE r.case_id BETWEEN :lo AND :hi""",
        "notifications": f"""
INSERT INTO notifications (user_id, case_id, card_id, created_at, read_at, message)
SELECT {_MAP.format(col='n.user_id')}, r.case_id, r.card_base + tk.ord, {sh('n.created_at')}, {sh('n.read_at')},
  replace(n.message, tc.number, r.number)
FROM bench_replica r JOIN bench_t_cases tc ON tc.id = r.template_id JOIN bench_t_notifications n ON n.case_id = r.template_id
JOIN bench_template_card tk ON tk.card_id = n.card_id WHERE r.case_id BETWEEN :lo AND :hi""",
    }


def replicate(engine: Engine, n_new: int, progress: Progress, seed: int = 11, chunk: int = 50_000,
              open_share: float = 0.03) -> None:
    rng = random.Random(seed)
    with engine.connect() as conn:
        conn.execute(text("SET synchronous_commit = off"))
        conn.execute(text("SET maintenance_work_mem = '512MB'"))
        conn.execute(text("SET work_mem = '64MB'"))
        conn.execute(text("SET session_replication_role = replica"))  # no FK triggers while copying
        conn.commit()
        first = _replica_plan(conn, n_new, rng, open_share)
        for sql in (_PREPARE + _NUMBERS).split(";\n"):
            if sql.strip():
                conn.exec_driver_sql(sql)
        for name in ("bench_replica", "bench_template_task", "bench_template_card"):
            conn.exec_driver_sql(f"ANALYZE {name}")
        indexes = _drop_secondary_indexes(conn)
        conn.commit()
        progress(f"replicas planned ({n_new:,}); dropped {len(indexes)} secondary indexes for the copy")
        statements = _copy_statements()
        t0 = time.perf_counter()
        for lo in range(first, first + n_new, chunk):
            hi = min(lo + chunk, first + n_new) - 1
            for table, sql in statements.items():
                conn.execute(text(sql), {"lo": lo, "hi": hi})
            conn.commit()
            done = hi - first + 1
            rate = done / (time.perf_counter() - t0)
            progress(f"replicating {bar(done, n_new)} cases  ({rate:,.0f}/s, "
                     f"~{(n_new - done) / rate:,.0f} s left)")
        conn.execute(text("""
            INSERT INTO case_sequences (year, last_value)
            SELECT substr(number, 4, 4)::int, max(substr(number, 9)::int) FROM cases WHERE number LIKE 'YY-%'
            GROUP BY 1 ON CONFLICT (year) DO UPDATE SET last_value = excluded.last_value"""))
        for table in ("cases", "tasks", "cards"):
            conn.execute(text(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))"))
        conn.commit()
        progress(f"rebuilding {len(indexes)} indexes")
        for ddl in indexes:
            t1 = time.perf_counter()
            conn.exec_driver_sql(ddl)
            conn.commit()
            progress(f"  {ddl.split(' ON ')[0].replace('CREATE INDEX ', '')} ({time.perf_counter() - t1:.0f} s)")
        for name in ("bench_replica", "bench_template_task", "bench_template_card", "bench_staff", "bench_user",
                     *(f"bench_t_{t}" for t in _BIG_TABLES)):
            conn.execute(text(f"DROP TABLE {name}"))
        conn.execute(text("DROP FUNCTION bench_map_user(int, int, int, int)"))
        conn.execute(text("DROP FUNCTION bench_map_unit(int, int, int, int, int, int, int)"))
        conn.execute(text("SET session_replication_role = DEFAULT"))
        conn.commit()
    progress("VACUUM ANALYZE")
    with engine.execution_options(isolation_level="AUTOCOMMIT").connect() as conn:
        conn.execute(text("VACUUM ANALYZE"))


# ------------------------------------------------------------------------------------------ the build
def _seed(url: str, progress: Progress) -> None:
    engine = db.make_engine(url)
    try:
        with clock.using(clock.ManualClock(HISTORY_START - timedelta(days=1))):
            db.migrate(engine)
            with db.transaction(engine) as s:
                orgs.seed_org_tree(s)
                orgs.seed_staff(s)
            files = sorted((ROOT / "bpmn").glob("*.bpmn")) + [FIXTURES / "relay.bpmn"]
            for path in files:
                with db.transaction(engine) as s:
                    processes.deploy(s, path.read_bytes(), path.name)
        progress(f"seeded the Yiyang tree and deployed {len(files)} process files")
    finally:
        engine.dispose()


def _mark(url: str, n: int) -> None:
    engine = db.make_engine(url)
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE IF NOT EXISTS bench_info (cases int, version int, built_at timestamptz)"))
        conn.execute(text("DELETE FROM bench_info"))
        conn.execute(text("INSERT INTO bench_info VALUES (:n, :v, now())"), {"n": n, "v": BUILD_VERSION})
    engine.dispose()


def build(base: str, name: str, cases_total: int, *, reuse: bool = False, open_share: float = 0.03,
          progress: Progress = stderr_progress) -> tuple[BuildInfo, BuildInfo]:
    """The big database `name` with `cases_total` cases (`open_share` of them open) and its empty twin
    `<name>_empty` (same seed, processes and templates). With `reuse`, a finished build of the same size
    is kept as it is."""
    empty = f"{name}_empty"
    if reuse and finished_build(base, name) == cases_total and finished_build(base, empty) is not None:
        progress(f"reusing {name} ({cases_total:,} cases) and {empty}")
        return (BuildInfo(_server_url(base, name), cases_total, 0.0, True),
                BuildInfo(_server_url(base, empty), 0, 0.0, True))
    t0 = time.perf_counter()
    for dbname in (name, empty):
        drop_database(base, dbname)
    admin = _admin(base)
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = _server_url(base, name)
    _seed(url, progress)
    engine = db.make_engine(url)
    t1 = time.perf_counter()
    stats = make_templates(engine, progress)
    make_sweep_blueprint(engine)
    with engine.connect() as conn:
        n_templates = conn.scalar(text("SELECT count(*) FROM cases"))
    progress(f"{n_templates} template cases through the engine ({stats['events']} events, "
             f"{time.perf_counter() - t1:.0f} s)")
    engine.dispose()
    _mark(url, n_templates)
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{empty}" TEMPLATE "{name}"'))
    t_empty = time.perf_counter() - t0
    engine = db.make_engine(url)
    if cases_total > n_templates:
        replicate(engine, cases_total - n_templates, progress, open_share=open_share)
    engine.dispose()
    admin.dispose()
    _mark(url, cases_total)
    total = time.perf_counter() - t0
    progress(f"built {name}: {cases_total:,} cases in {total:,.0f} s")
    return (BuildInfo(url, cases_total, total, False), BuildInfo(_server_url(base, empty), n_templates, t_empty, False))


def sizes(url: str) -> dict[str, Any]:
    """Database size, and the instance JSON of closed cases as stored and as it was before compaction."""
    engine = db.make_engine(url)
    try:
        with engine.connect() as conn:
            row = conn.execute(text("""
                SELECT pg_database_size(current_database()) AS db,
                       (SELECT count(*) FROM cases) AS cases,
                       (SELECT sum(octet_length(instance_json)) FROM cases WHERE status <> 'open') AS closed_now,
                       (SELECT sum(coalesce((instance_json::json->'compacted'->>'bytes')::bigint,
                                            octet_length(instance_json)))
                        FROM cases WHERE status <> 'open') AS closed_before,
                       (SELECT count(*) FROM cases WHERE status <> 'open') AS closed""")).first()
            return dict(row._mapping)
    finally:
        engine.dispose()


if __name__ == "__main__":
    import argparse
    ap = argparse.ArgumentParser(description="build the scale-benchmark database (see benchmarks/scale.py)")
    ap.add_argument("--server", default="postgresql://postgres@127.0.0.1:5432")
    ap.add_argument("--name", default="yicun_scale")
    ap.add_argument("--cases", type=int, default=1_000_000)
    ap.add_argument("--reuse", action="store_true")
    ap.add_argument("--open-share", type=float, default=0.03, help="the share of the cases that are open")
    a = ap.parse_args()
    big, small = build(a.server, a.name, a.cases, reuse=a.reuse, open_share=a.open_share)
    print(json.dumps({"big": big.__dict__, "empty": small.__dict__, "sizes": sizes(big.url)}, default=str, indent=2))
