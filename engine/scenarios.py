"""Process tests (issue #11 §7): scenarios a process must pass before a new version of it is deployed.

A scenario file is YAML, one per process, `<bpmn dir>/scenarios/<PROCESS_ID>.yaml` (bpmn/scenarios/ or
$YICUN_BPMN_DIR/scenarios/): written by hand or by `record` from a finished real case. README ("Process
tests") documents the format; in short::

    process: MZ-01
    scenarios:
      - name: 批准并送达
        steps:
          - start: {village: any, as: clerk, at: "2026-11-02 09:00", data: {household_size: 3}}
          - expect_ready: [Task_VillageIntake]
          - complete: Task_VillageIntake
            as: clerk                      # clerk | agent | township_officer | county_officer
            department: 民政               # county officers only; default: whoever may work on the step
            data: {documents_complete: true}
          - advance: 3 workdays            # or "2 days", "4 hours", PT72H, P2D; then the timer sweep runs
          - expect_due: {promised: 2026-11-30, step: Task_TownshipSurvey, due: 2026-11-13}
          - expect_end: {status: completed, outcome: 办结}

A scenario runs in a throwaway SQLite database (a temporary file, migrated once per server process and
copied per run), seeded with the seed tree's chain of every village the file names and its generated
staff, with the process version deployed on the scenario's manual clock — never the live database, so
running one changes nothing a user sees. Deadlines count on the configured calendar file (the live
database's published years are not copied). Each step reports pass or fail with the first difference;
a scenario stops at its first failure.

`processes.deploy_files` calls `guard` before it writes anything: the scenarios of every process of the
set that has a scenario file run against the new file, and a failure refuses the deploy unless the
designer gives an override reason (audited as `process.scenarios_overridden`). A process without a
scenario file costs one `stat`, so the tests and the benchmarks deploying hundreds of files pay nothing.
"""
from __future__ import annotations

import atexit
import re
import shutil
import sqlite3
import tempfile
import threading
import time as _time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from datetime import time as dtime
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import select
from sqlalchemy.orm import Session

from . import clock, db, orgs, settings
from .errors import Finding, InvalidInput, NotFound, YicunError
from .models import AuditEvent, Case, OrgUnit, ProcessVersion, TaskRow, User

DEFAULT_START = "2026-11-02T09:00:00+08:00"  # a Monday
DEFAULT_VILLAGE = "430902102201"  # 资阳区迎风桥镇邹家村 of the seed tree
ANY_VILLAGE = "any"
LEVELS = ("clerk", "agent", "township_officer", "county_officer")
ACTIONS = ("start", "complete", "advance", "expect_ready", "expect_end", "expect_due")
_STEP_OPTIONS = {"start": set(), "complete": {"as", "department", "data"}, "advance": {"time"},
                 "expect_ready": set(), "expect_end": set(), "expect_due": set()}
_START_KEYS = {"village", "as", "at", "applicant", "data"}
_DUE_KEYS = {"promised", "legal", "step", "due"}
MAX_FILE_BYTES = 512 * 1024
MAX_STEPS = 500
#: the longest override reason kept in the audit trail (the browser refuses a longer one; the CLI's is cut)
MAX_OVERRIDE_REASON_CHARS = 500
_ADVANCE = re.compile(r"^\s*(\d{1,4})\s*(workdays?|working days?|days?|hours?|minutes?)\s*$", re.I)
_ISO = re.compile(r"^P(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)S)?)?$")
_HHMM = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")


# ------------------------------------------------------------------ the file format
@dataclass(frozen=True)
class Step:
    number: int  # 1-based, as the designer counts them in the file
    action: str
    value: Any
    options: Mapping[str, Any] = field(default_factory=dict)

    def label(self) -> str:
        target = self.value if isinstance(self.value, str) else ""
        return f"{self.action} {target}".strip()


@dataclass(frozen=True)
class Scenario:
    name: str
    steps: tuple[Step, ...]

    @property
    def villages(self) -> set[str]:
        start = self.steps[0].value
        return {_village(start.get("village"))}


@dataclass(frozen=True)
class ScenarioFile:
    process_id: str
    source: str  # the file's name (errors and reports say it)
    scenarios: tuple[Scenario, ...]


def _invalid(source: str, problem: str, scenario: str | None = None, step: int | None = None) -> InvalidInput:
    where = source + (f", scenario {scenario!r}" if scenario is not None else "") \
        + (f", step {step}" if step is not None else "")
    return InvalidInput(f"{where}: {problem}", reason="scenario.invalid", file=where, problem=problem)


def _village(value: Any) -> str:
    return DEFAULT_VILLAGE if value in (None, ANY_VILLAGE, "any village") else str(value)


def _plain(value: Any) -> Any:
    """YAML reads 2026-11-02 as a date: form data and instants go on as the text a user would type."""
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def parse(text: str | bytes, source: str, process_id: str | None = None) -> ScenarioFile:
    """Read and check a scenario file; every mistake is InvalidInput naming the file, scenario and step."""
    if len(text) > MAX_FILE_BYTES:
        raise _invalid(source, f"the file is larger than {MAX_FILE_BYTES} bytes")
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise _invalid(source, f"not valid YAML: {str(exc).splitlines()[0]}") from None
    if not isinstance(doc, dict):
        raise _invalid(source, "the file must be a mapping with `process` and `scenarios`")
    unknown = set(doc) - {"process", "scenarios"}
    if unknown:
        raise _invalid(source, f"unknown key(s) {', '.join(sorted(map(str, unknown)))} (expected process, scenarios)")
    pid = doc.get("process")
    if not isinstance(pid, str) or not pid:
        raise _invalid(source, "`process` must name the process id (e.g. MZ-01)")
    if process_id is not None and pid != process_id:
        raise _invalid(source, f"the file is for process {pid}, not {process_id}")
    items = doc.get("scenarios")
    if not isinstance(items, list) or not items:
        raise _invalid(source, "`scenarios` must be a non-empty list")
    out, names = [], set()
    for i, item in enumerate(items, 1):
        if not isinstance(item, dict) or set(item) - {"name", "steps"}:
            raise _invalid(source, f"scenario {i} must be a mapping with `name` and `steps`")
        name = item.get("name")
        if not isinstance(name, str) or not name.strip():
            raise _invalid(source, f"scenario {i} has no `name`")
        if name in names:
            raise _invalid(source, "two scenarios have this name", name)
        names.add(name)
        steps = item.get("steps")
        if not isinstance(steps, list) or not steps:
            raise _invalid(source, "`steps` must be a non-empty list", name)
        if len(steps) > MAX_STEPS:
            raise _invalid(source, f"more than {MAX_STEPS} steps", name)
        out.append(Scenario(name, tuple(_step(source, name, n, raw) for n, raw in enumerate(steps, 1))))
    return ScenarioFile(pid, source, tuple(out))


def _step(source: str, scenario: str, n: int, raw: Any) -> Step:
    def bad(problem: str) -> InvalidInput:
        return _invalid(source, problem, scenario, n)
    if not isinstance(raw, dict):
        raise bad(f"a step is a mapping with one of {', '.join(ACTIONS)}")
    actions = [k for k in raw if k in ACTIONS]
    if len(actions) != 1:
        raise bad(f"a step has exactly one of {', '.join(ACTIONS)} (found {', '.join(map(str, raw)) or 'none'})")
    action = actions[0]
    value = _plain(raw[action])
    options = {str(k): _plain(v) for k, v in raw.items() if k != action}
    extra = set(options) - _STEP_OPTIONS[action]
    if extra:
        raise bad(f"`{action}` does not take {', '.join(sorted(extra))}")
    if (action == "start") != (n == 1):
        raise bad("the first step, and only the first, is `start`")
    if action == "start":
        value = {} if value is None else value
        if not isinstance(value, dict) or set(value) - _START_KEYS:
            raise bad(f"`start` takes {', '.join(sorted(_START_KEYS))}")
        if value.get("as", "clerk") not in ("clerk", "agent"):
            raise bad("a case is started by a `clerk` (village) or an `agent` (township)")
        if "at" in value:
            _instant(value["at"], bad)
        if not isinstance(value.get("data", {}), dict):
            raise bad("`data` is a mapping of form fields")
    elif action == "complete":
        if not isinstance(value, str) or not value:
            raise bad("`complete` names the step's BPMN id")
        if options.get("as", "clerk") not in LEVELS:
            raise bad(f"`as` is one of {', '.join(LEVELS)}")
        if "department" in options and (options.get("as") != "county_officer"
                                        or options["department"] not in orgs.DEPARTMENTS):
            raise bad(f"`department` is for a county_officer, one of {', '.join(orgs.DEPARTMENTS)}")
        if not isinstance(options.get("data", {}), dict):
            raise bad("`data` is a mapping of form fields")
    elif action == "advance":
        _delta_kind(value, bad)
        if "time" in options and not (isinstance(options["time"], str) and _HHMM.match(options["time"])):
            raise bad("`time` is the local time of day HH:MM")
    elif action == "expect_ready":
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise bad("`expect_ready` is a list of BPMN ids ([] when no step is ready)")
    elif action == "expect_end":
        value = {"status": value} if isinstance(value, str) else value
        if not isinstance(value, dict) or not value or set(value) - {"status", "outcome"}:
            raise bad("`expect_end` is a status, or a mapping with status and/or outcome")
    elif action == "expect_due":
        if not isinstance(value, dict) or not value or set(value) - _DUE_KEYS:
            raise bad(f"`expect_due` takes {', '.join(sorted(_DUE_KEYS))}")
        if ("step" in value) != ("due" in value):
            raise bad("a step's deadline is given as `step` and `due` together")
        for key in ("promised", "legal", "due"):
            if key in value and value[key] is not None:
                _due_value(value[key], bad)
    return Step(n, action, value, options)


def _instant(value: Any, bad: Any) -> datetime:
    try:
        return clock.to_utc(str(value))
    except (ValueError, YicunError):
        raise bad(f"{value!r} is not an instant (YYYY-MM-DD HH:MM, Asia/Shanghai)") from None


def _due_value(value: Any, bad: Any) -> str:
    text = str(value)
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}( \d{2}:\d{2})?", text):
        raise bad(f"{text!r} is not a due date (YYYY-MM-DD, or YYYY-MM-DD HH:MM for an hours deadline)")
    return text


def _delta_kind(value: Any, bad: Any) -> tuple[str, int | timedelta]:
    """`N workdays` → ("workdays", N); `N days|hours|minutes` or ISO 8601 PnDTnHnMnS → ("delta", timedelta)."""
    text = str(value).strip()
    m = _ADVANCE.match(text)
    if m:
        n, unit = int(m.group(1)), m.group(2).lower()
        if unit.startswith("work"):
            return "workdays", n
        return "delta", timedelta(**{("days" if unit.startswith("day") else
                                      "hours" if unit.startswith("hour") else "minutes"): n})
    m = _ISO.match(text)
    if m and text not in ("P", "PT"):
        d, h, mi, s = (int(g or 0) for g in m.groups())
        return "delta", timedelta(days=d, hours=h, minutes=mi, seconds=s)
    raise bad(f"`advance` is `N workdays`, `N days`, `N hours`, `N minutes` or an ISO duration (PT72H), not {text!r}")


def folder() -> Path:
    return Path(settings.get().bpmn_dir) / "scenarios"


def path_of(process_id: str, where: Path | None = None) -> Path:
    return (where or folder()) / f"{process_id}.yaml"


def has_scenarios(process_id: str, where: Path | None = None) -> bool:
    return "/" not in process_id and path_of(process_id, where).is_file()


def load(process_id: str, where: Path | None = None) -> ScenarioFile:
    path = path_of(process_id, where)
    try:
        data = path.read_bytes()
    except OSError:
        raise NotFound(f"no scenario file {path}", reason="scenario.no_file", process=process_id) from None
    return parse(data, path.name, process_id)


# ------------------------------------------------------------------ results
@dataclass(frozen=True)
class StepOutcome:
    number: int
    action: str
    target: str
    ok: bool
    expected: str = ""
    actual: str = ""
    message: str = ""


@dataclass(frozen=True)
class ScenarioOutcome:
    name: str
    passed: bool
    steps: tuple[StepOutcome, ...]
    total_steps: int
    case_number: str | None = None

    @property
    def failure(self) -> StepOutcome | None:
        return next((s for s in self.steps if not s.ok), None)


@dataclass(frozen=True)
class RunOutcome:
    process_id: str
    source: str
    against: str  # the file name, or "v3" of a deployed version
    scenarios: tuple[ScenarioOutcome, ...]
    seconds: float
    error: str | None = None  # the version could not even be deployed in the throwaway database

    @property
    def passed(self) -> bool:
        return self.error is None and all(s.passed for s in self.scenarios)

    def findings(self) -> list[Finding]:
        if self.error:
            return [Finding("error", f"process tests ({self.source}): {self.error}", file=self.against)]
        out = []
        for s in self.scenarios:
            f = s.failure
            if f is not None:
                out.append(Finding("error", f"process test {s.name!r} ({self.source}) step {f.number} "
                                            f"({f.action} {f.target}): {f.message}".replace("  ", " "),
                                   element_id=f.target or None, file=self.against))
        return out

    def to_dict(self) -> dict[str, Any]:
        return {"process_id": self.process_id, "source": self.source, "against": self.against,
                "passed": self.passed, "seconds": round(self.seconds, 2), "error": self.error,
                "scenarios": [{"name": s.name, "passed": s.passed, "case_number": s.case_number,
                               "total_steps": s.total_steps,
                               "steps": [s_.__dict__ for s_ in s.steps]} for s in self.scenarios]}


# ------------------------------------------------------------------ the throwaway database
_TEMPLATE: Path | None = None
_TEMPLATE_LOCK = threading.Lock()


def _template() -> Path:
    """A migrated empty SQLite file, made once per server process (migrating takes ~1.5 s, a copy ~ms)."""
    global _TEMPLATE
    with _TEMPLATE_LOCK:
        if _TEMPLATE is None or not _TEMPLATE.exists():
            work = Path(tempfile.mkdtemp(prefix="yicun-scenarios-"))
            engine = db.make_engine(f"sqlite:///{work / 'work.db'}")
            try:
                db.migrate(engine)
            finally:
                engine.dispose()
            src, dst = sqlite3.connect(work / "work.db"), sqlite3.connect(work / "template.db")
            try:
                src.backup(dst)
                dst.execute("PRAGMA journal_mode=DELETE")
            finally:
                dst.close()
                src.close()
            _TEMPLATE = work / "template.db"
            atexit.register(shutil.rmtree, work, True)  # the server process's own copy goes with it
        return _TEMPLATE


def _units_for(villages: Iterable[str]) -> list[orgs.SeedUnit]:
    seed = orgs.read_seed()
    by_code = {u.code: u for u in seed}
    wanted: set[str] = set()
    for code in villages:
        unit = by_code.get(code)
        if unit is None or unit.level != "village":
            raise InvalidInput(f"{code} is not a village of the seed tree", reason="scenario.village_unknown",
                               village=code)
        while unit is not None:
            wanted.add(unit.code)
            unit = by_code.get(unit.parent_code) if unit.parent_code else None
    return [u for u in seed if u.code in wanted]  # the seed lists parents first


def _callee_files(live: Session | None, files: Sequence[tuple[bytes, str]]) -> list[tuple[bytes, str]]:
    """The newest executable versions (from the live database) of the processes the files call but do not
    define: deployed first in the throwaway database, as the live deploy would link them."""
    if live is None:
        return []
    from .bpmn import NS, load_xml
    defined, called = set(), set()
    for data, name in files:
        root = load_xml(data, name).getroot()
        defined |= {p.get("id") for p in root.findall("bpmn:process", NS)}
        called |= {c.get("calledElement") for c in root.iter(f"{{{NS['bpmn']}}}callActivity")}
    out = []
    for pid in sorted(p for p in called - defined if p):
        row = live.execute(select(ProcessVersion.bpmn_xml, ProcessVersion.filename)
                           .where(ProcessVersion.process_id == pid, ProcessVersion.executable.is_(True))
                           .order_by(ProcessVersion.version.desc()).limit(1)).first()
        if row is not None:
            out.append((row.bpmn_xml.encode("utf-8"), row.filename))
    return out


def run(files: Sequence[tuple[bytes, str]], scenario_file: ScenarioFile, against: str | None = None,
        live: Session | None = None) -> RunOutcome:
    """Run every scenario of `scenario_file` against the process in `files` (a file set: its processes and
    the processes they call), each as a case of its own in a fresh throwaway database. `live` (read only)
    supplies the callees the set does not hold."""
    began = _time.monotonic()
    against = against or ", ".join(name for _d, name in files)
    work = Path(tempfile.mkdtemp(prefix="yicun-scenario-run-"))
    engine = None
    try:
        target = work / "run.db"
        shutil.copyfile(_template(), target)
        engine = db.make_engine(f"sqlite:///{target}")
        starts = [_instant(s.steps[0].value.get("at", DEFAULT_START), None) for s in scenario_file.scenarios]
        try:
            units = _units_for(set().union(*(s.villages for s in scenario_file.scenarios)))
            extra = _callee_files(live, files)
            from . import processes
            with clock.using(clock.ManualClock(min(starts))):
                with db.transaction(engine) as s:
                    orgs.seed_org_tree(s, units)
                    orgs.seed_staff(s, units)
                with db.transaction(engine) as s:
                    processes.deploy_files(s, [*extra, *files], check_scenarios=False)
                with db.read(engine) as s:
                    deployed = s.scalar(select(ProcessVersion.executable).where(
                        ProcessVersion.process_id == scenario_file.process_id))
            if deployed is None:
                raise InvalidInput(f"the files do not hold process {scenario_file.process_id}",
                                   reason="scenario.process_missing", process=scenario_file.process_id)
            if not deployed:
                raise InvalidInput(f"process {scenario_file.process_id} is a model only: it cannot run",
                                   reason="scenario.process_missing", process=scenario_file.process_id)
        except YicunError as exc:
            return RunOutcome(scenario_file.process_id, scenario_file.source, against, (),
                              _time.monotonic() - began, error=str(exc))
        results = tuple(_run_one(engine, scenario_file.process_id, sc, at)
                        for sc, at in zip(scenario_file.scenarios, starts, strict=True))
        return RunOutcome(scenario_file.process_id, scenario_file.source, against, results,
                          _time.monotonic() - began)
    finally:
        if engine is not None:
            engine.dispose()
        shutil.rmtree(work, ignore_errors=True)


def run_version(session: Session, version_id: int, scenario_file: ScenarioFile | None = None) -> RunOutcome:
    """The scenarios of a deployed version's process against that version (its file as deployed)."""
    pv = session.get(ProcessVersion, version_id)
    if pv is None:
        raise NotFound(f"no process version {version_id}", reason="process.version_not_found", version_id=version_id)
    sf = scenario_file or load(pv.process_id)
    return run([(pv.bpmn_xml.encode("utf-8"), pv.filename)], sf, f"v{pv.version}", live=session)


# ------------------------------------------------------------------ one scenario
class _StepFailed(Exception):
    def __init__(self, message: str, expected: Any = "", actual: Any = "") -> None:
        super().__init__(message)
        self.message, self.expected, self.actual = message, str(expected), str(actual)


def _run_one(engine: Any, process_id: str, scenario: Scenario, start_at: datetime) -> ScenarioOutcome:
    c = clock.ManualClock(start_at)
    done: list[StepOutcome] = []
    state: dict[str, Any] = {}
    with clock.using(c):
        for step in scenario.steps:
            try:
                _do(engine, process_id, step, c, state)
            except _StepFailed as exc:
                done.append(StepOutcome(step.number, step.action, _target(step), False, exc.expected, exc.actual,
                                        exc.message))
                break
            except YicunError as exc:
                done.append(StepOutcome(step.number, step.action, _target(step), False, "", "",
                                        f"refused: {exc.message}"))
                break
            done.append(StepOutcome(step.number, step.action, _target(step), True))
    passed = len(done) == len(scenario.steps) and all(s.ok for s in done)
    return ScenarioOutcome(scenario.name, passed, tuple(done), len(scenario.steps), state.get("number"))


def _target(step: Step) -> str:
    if step.action in ("complete", "advance"):
        return str(step.value)
    if step.action == "expect_due" and "step" in step.value:
        return str(step.value["step"])
    return ""


def _actor(s: Session, level: str, village_code: str, task: TaskRow | None,
           department: str | None) -> User:
    from . import policy
    from .policy import Actor
    village = s.scalar(select(OrgUnit).where(OrgUnit.code == village_code))
    assert village is not None
    township = s.get(OrgUnit, village.parent_id)
    unit = {"clerk": village, "agent": township, "township_officer": township,
            "county_officer": s.get(OrgUnit, township.parent_id) if township else None}[level]
    if unit is None:
        raise _StepFailed(f"{village_code} has no {level} level above it", level, "")
    q = select(User).where(User.unit_id == unit.id, User.role == level, User.active.is_(True)).order_by(User.username)
    if department:
        q = q.where(User.department == department)
    for user in s.scalars(q):
        if task is None or policy.may_work_on(Actor.of(user), task.unit_id, task.candidate_group):
            return user
    who = level + (f" ({department})" if department else "")
    if task is not None:
        raise _StepFailed(f"no {who} may work on {task.bpmn_id}: it is a step of unit {task.unit_id} "
                          f"for {task.candidate_group or 'its unit'}", who, task.lane or task.level or "")
    raise _StepFailed(f"no {who} at {village_code}'s chain", who, "")


def _do(engine: Any, process_id: str, step: Step, c: clock.ManualClock, state: dict[str, Any]) -> None:
    from . import cases, timers
    from .policy import Actor
    if step.action == "start":
        v = step.value
        village = _village(v.get("village"))
        state["village"] = village
        with db.transaction(engine) as s:
            user = _actor(s, v.get("as", "clerk"), village, None, None)
            res = cases.start_case(s, service_code=process_id, village_code=village,
                                   applicant_name=str(v.get("applicant") or "符建英"), actor=user,
                                   data=v.get("data") or None)
        state["number"] = res.case_number
        return
    number = state["number"]
    if step.action == "complete":
        with db.read(engine) as s:
            ready = _ready(s, number)
            task = next((t for t in ready if t.bpmn_id == step.value), None)
            if task is None:
                raise _StepFailed(f"{step.value} is not ready", step.value,
                                  ", ".join(t.bpmn_id for t in ready) or "none")
            if "as" in step.options:
                user = _actor(s, step.options["as"], state["village"], task, step.options.get("department"))
            else:
                from .demo import eligible_worker
                try:
                    user = eligible_worker(s, task)
                except LookupError:
                    raise _StepFailed(f"nobody may work on {task.bpmn_id}", step.value, "") from None
            task_id, actor = task.id, Actor.of(user)  # read while the session is open
        with db.transaction(engine) as s:
            cases.complete_task(s, task_id, actor, step.options.get("data") or {})
    elif step.action == "advance":
        kind, amount = _delta_kind(step.value, None)
        now = c.now()
        if kind == "workdays":
            from .workdays import default_calendar
            local = clock.local(now)
            day = default_calendar().add_workdays(local.date(), int(amount)).date  # type: ignore[arg-type]
            hhmm = step.options.get("time")
            at = dtime(int(hhmm[:2]), int(hhmm[3:])) if hhmm else local.time().replace(tzinfo=None)
            c.set(datetime.combine(day, at, clock.SHANGHAI))
        else:
            c.advance(amount)  # type: ignore[arg-type]
            if step.options.get("time"):
                hhmm = step.options["time"]
                c.set(datetime.combine(clock.local(c.now()).date(), dtime(int(hhmm[:2]), int(hhmm[3:])),
                                       clock.SHANGHAI))
        report = timers.sweep(engine, c.now())
        if report.failed:
            raise _StepFailed(f"a timer failed to fire: {report.failed[0]}", "", "")
    elif step.action == "expect_ready":
        with db.read(engine) as s:
            got = sorted(t.bpmn_id for t in _ready(s, number))
        want = sorted(step.value)
        if got != want:
            raise _StepFailed(f"ready steps differ: expected {', '.join(want) or 'none'}, "
                              f"got {', '.join(got) or 'none'}", ", ".join(want) or "-", ", ".join(got) or "-")
    elif step.action == "expect_end":
        with db.read(engine) as s:
            case = s.scalar(select(Case).where(Case.number == number))
            assert case is not None
            for key in ("status", "outcome"):
                if key in step.value and str(step.value[key]) != str(getattr(case, key)):
                    raise _StepFailed(f"{key}: expected {step.value[key]}, got {getattr(case, key)}",
                                      step.value[key], getattr(case, key))
    elif step.action == "expect_due":
        with db.read(engine) as s:
            case = s.scalar(select(Case).where(Case.number == number))
            assert case is not None
            checks = [(k, step.value[k], getattr(case, f"{k}_due_at")) for k in ("promised", "legal")
                      if k in step.value]
            if "step" in step.value:
                task = s.scalar(select(TaskRow).where(TaskRow.case_id == case.id,
                                                      TaskRow.bpmn_id == step.value["step"])
                                .order_by(TaskRow.id.desc()).limit(1))
                if task is None:
                    raise _StepFailed(f"step {step.value['step']} was never reached", step.value["step"], "none")
                checks.append((f"step {task.bpmn_id}", step.value["due"], task.due_at))
            for what, want, instant in checks:
                shown = _due_text(instant, str(want or ""))
                if str(want or "") != shown:
                    raise _StepFailed(f"{what} due: expected {want or 'none'}, got {shown or 'none'}", want or "-",
                                      shown or "-")


def _due_text(instant: datetime | None, like: str) -> str:
    if instant is None:
        return ""
    if len(like) > 10:  # an hours deadline: the local instant
        return clock.local(clock.to_utc(instant)).strftime("%Y-%m-%d %H:%M")
    return clock.due_date(clock.to_utc(instant)).isoformat()


def _ready(s: Session, number: str) -> list[TaskRow]:
    return list(s.scalars(select(TaskRow).join(Case, Case.id == TaskRow.case_id)
                          .where(Case.number == number, TaskRow.state == "ready").order_by(TaskRow.id)))


# ------------------------------------------------------------------ the deploy guard
def guard(session: Session, files: Sequence[tuple[bytes, str]], process_ids: Iterable[str],
          actor_id: int | None, actor_details: Mapping[str, Any], now: datetime,
          override_reason: str | None) -> list[RunOutcome]:
    """Before a deploy writes anything: run the scenarios of each process about to get a new version that
    has a scenario file. A failure refuses the whole set (ScenariosFailed, a BpmnRejected with one finding
    per failing scenario, so callers can offer the override) unless `override_reason` is given, which is
    audited with the failures (the reason cut to MAX_OVERRIDE_REASON_CHARS; the web refuses a longer one)."""
    from .cases import audit
    from .errors import ScenariosFailed
    outcomes = [run(files, load(pid), live=session) for pid in sorted(set(process_ids)) if has_scenarios(pid)]
    failed = [o for o in outcomes if not o.passed]
    if not failed:
        return outcomes
    failures = {o.process_id: o.findings() for o in failed}
    reason = (override_reason or "").strip()
    if not reason:
        count = sum(len(found) for found in failures.values())
        raise ScenariosFailed(f"{count} process test(s) failed: deploy refused (give an override reason to "
                              f"deploy anyway)", failures)
    for o in failed:
        audit.record(session, "process.scenarios_overridden", at=now, actor_id=actor_id, process_id=o.process_id,
                     reason=reason[:MAX_OVERRIDE_REASON_CHARS], failures=[f.message[:300] for f in o.findings()],
                     **actor_details)
    return outcomes


# ------------------------------------------------------------------ recording a real case
def record(session: Session, case_number: str) -> dict[str, Any]:
    """A scenario (as the file's mapping) from a finished real case: its start and every completed step in
    order, from the audit trail, with their form data and the level (and department) of who did them; the
    clock moves between them in working days (same local time) or, within a day, as a duration; and the
    case's end and promised/legal due dates as expectations."""
    case = session.scalar(select(Case).where(Case.number == case_number))
    if case is None:
        raise NotFound(f"no case {case_number}", reason="case.not_found", case=case_number)
    if case.status == "open":
        raise InvalidInput(f"case {case_number} is still open: only a finished case is recorded",
                           reason="scenario.case_open", case=case_number)
    events = session.execute(select(AuditEvent.at, AuditEvent.action, AuditEvent.details, AuditEvent.actor_id)
                             .where(AuditEvent.case_id == case.id,
                                    AuditEvent.action.in_(("case.started", "task.completed")))
                             .order_by(AuditEvent.at, AuditEvent.id)).all()
    task_ids = [e.details.get("task_id") for e in events if e.action == "task.completed"]
    bpmn_ids = dict(session.execute(select(TaskRow.id, TaskRow.bpmn_id).where(TaskRow.id.in_(task_ids))).tuples().all())
    users = {u.id: u for u in session.scalars(select(User).where(User.id.in_({e.actor_id for e in events
                                                                              if e.actor_id})))}
    village = session.get(OrgUnit, case.village_id)
    assert village is not None
    steps: list[dict[str, Any]] = []
    last: datetime | None = None
    from .workdays import default_calendar
    cal = default_calendar()
    for e in events:
        at = clock.to_utc(e.at)
        user = users.get(e.actor_id) if e.actor_id else None
        if e.action == "case.started":
            accepted = clock.to_utc(case.accepted_at) if case.accepted_at else at
            start: dict[str, Any] = {"village": village.code, "at": clock.local(accepted).strftime("%Y-%m-%d %H:%M"),
                                     "applicant": case.applicant_name}
            if user is not None and user.role in ("clerk", "agent"):
                start["as"] = user.role
            if e.details.get("data"):
                start["data"] = e.details["data"]
            steps.append({"start": start})
            last = accepted
            continue
        if last is not None and at > last:
            steps.append(_advance_between(cal, last, at))
        last = max(at, last) if last else at
        step: dict[str, Any] = {"complete": bpmn_ids.get(e.details.get("task_id"), "?")}
        if user is not None and user.role in LEVELS:
            step["as"] = user.role
            if user.role == "county_officer" and user.department:
                step["department"] = user.department
        if e.details.get("data"):
            step["data"] = e.details["data"]
        steps.append(step)
    due: dict[str, Any] = {}
    if case.promised_due_at or case.legal_due_at:
        for key in ("promised", "legal"):
            instant = getattr(case, f"{key}_due_at")
            if instant is not None:
                due[key] = clock.due_date(clock.to_utc(instant)).isoformat()
    end: dict[str, Any] = {"status": case.status}
    if case.outcome:
        end["outcome"] = case.outcome
    steps.append({"expect_ready": []})
    if due:  # the dues as the case closed with them: a pause (publicity, supplement) moves them on the way
        steps.append({"expect_due": due})
    steps.append({"expect_end": end})
    return {"process": case.service_code,
            "scenarios": [{"name": f"recorded from case {case.number}", "steps": steps}]}


def _advance_between(cal: Any, before: datetime, after: datetime) -> dict[str, Any]:
    a, b = clock.local(before), clock.local(after)
    if a.date() != b.date() and cal.is_workday(b.date())[0]:
        n, _est = cal.count_workdays(a.date(), b.date())
        if n > 0:
            return {"advance": f"{n} workdays", "time": b.strftime("%H:%M")}
    seconds = int((after - before).total_seconds())
    if seconds <= 0:
        seconds = 1
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return {"advance": "PT" + (f"{h}H" if h else "") + (f"{m}M" if m else "") + (f"{s}S" if s else "")}


def dump(doc: Mapping[str, Any]) -> str:
    """The scenario file's text: YAML with the Chinese kept readable."""
    return yaml.safe_dump(dict(doc), allow_unicode=True, sort_keys=False, default_flow_style=False, width=110)
