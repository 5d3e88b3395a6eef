"""Who may do what: the `Actor` and every access rule, as pure predicates.

Why one module: the rules used to live in seven files (cases, sla, inbox, incidents, processes, the
web), each with its own copy of "a clerk of this village, or an officer of that unit, or a supervisor
above it". Here each rule is a function of an `Actor` and plain facts about the thing acted on (a task's
unit and candidate group, a case's village/township/county ids), with no database and no Flask, so:
- the engine's services *enforce* them (`require(...)` raises `Forbidden` with a stable reason), which
  covers the web, the JSON API, the CLI and the sweeper alike;
- the web only *consults* them to show or hide a button;
- one table test can walk every rule × role × own/foreign unit.

The org tree reaches a case through its chain (village → township → county → city), so "is this unit
below mine" needs no paths: a unit of the case's chain is below an actor's unit when the actor sits at
it or above it in that chain (or at the city). README "Who may do what" is this module in a table.
"""
from __future__ import annotations

import getpass
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NoReturn

from .errors import Forbidden
from .vocab import OFFICER_ROLES, WORKER_ROLES, Level, PauseKind, Role

if TYPE_CHECKING:
    from .models import User


@dataclass(frozen=True)
class Actor:
    """Someone acting: a user (id, unit, role, department) or the operator at the server's shell.

    Built once per request or command (`orgs.actor_by_id`, `orgs.actor_by_name`, `Actor.of(user)`);
    services take it instead of an ORM `User`, so a rule never triggers a lazy load and the operator is a
    named actor, never `None`.
    """
    id: int | None
    username: str
    role: str
    unit_id: int | None = None
    unit_path: str = "/"
    unit_name: str = ""
    level: str = Level.CITY
    department: str | None = None
    display_name: str = ""
    active: bool = True

    @classmethod
    def operator(cls, name: str | None = None) -> Actor:
        """The person running `yicun` on the server without --as: may do what the server's owner may
        (deploy, administer, correct), named by their login so the audit trail says who it was."""
        try:
            who = name or getpass.getuser()
        except Exception:  # no login name (a container without /etc/passwd entry)
            who = "unknown"
        return cls(id=None, username=f"operator:{who}", role=Role.OPERATOR, display_name=f"服务器操作员 {who}")

    @classmethod
    def of(cls, user: User) -> Actor:
        unit = user.unit
        return cls(id=user.id, username=user.username, role=user.role, unit_id=user.unit_id, unit_path=unit.path,
                   unit_name=unit.name, level=unit.level, department=user.department, display_name=user.display_name,
                   active=bool(user.active))

    @property
    def is_operator(self) -> bool:
        return self.role == Role.OPERATOR

    @property
    def audit_details(self) -> dict[str, str]:
        """What an audit event records beyond actor_id: the operator has no user row, so their name."""
        return {"operator": self.username} if self.is_operator else {}


def as_actor(who: Actor | User) -> Actor:
    """Services accept an `Actor`; a `User` row (tests, benchmarks, the seed) is turned into one here."""
    return who if isinstance(who, Actor) else Actor.of(who)


@dataclass(frozen=True)
class Chain:
    """A case's place in the tree: its village, township and county unit ids (the city is above all)."""
    village_id: int
    township_id: int
    county_id: int

    @classmethod
    def of(cls, case: Any) -> Chain:
        get = case.get if isinstance(case, dict) or hasattr(case, "get") else (lambda k: getattr(case, k))
        return cls(get("village_id"), get("township_id"), get("county_id"))

    def ids(self) -> tuple[int, int, int]:
        return (self.village_id, self.township_id, self.county_id)

    def above(self, unit_id: int) -> tuple[int, ...]:
        """The chain's units above `unit_id` (not the city, which is above everything)."""
        ids = self.ids()
        return ids[ids.index(unit_id) + 1:] if unit_id in ids else ()


# ------------------------------------------------------------------------------------------- rules
def is_staff(actor: Actor) -> bool:
    """A user with an account that is still active (the operator is not staff)."""
    return actor.active and not actor.is_operator


def oversees(actor: Actor, unit_id: int, chain: Chain) -> bool:
    """The unit (one of the case's chain) is the actor's own or below it; the city and the operator see
    everything. Whatever the role — what the actor may *do* there is for the other rules."""
    if actor.is_operator or actor.level == Level.CITY:
        return True
    return actor.unit_id == unit_id or actor.unit_id in chain.above(unit_id)


def may_see_case(actor: Actor, chain: Chain) -> bool:
    """Everyone sees the cases of their own unit and below (DESIGN invariant 7); anything else is
    'not found'. The same rule as `case_scope` in SQL."""
    if actor.is_operator or actor.role == Role.ADMIN:
        return True
    return is_staff(actor) and oversees(actor, chain.village_id, chain)


def may_accept_at(actor: Actor, village_id: int, chain: Chain) -> bool:
    """受理: the village's own clerk, or the window of its township or county (items accepted there);
    an admin anywhere. A person must accept — the operator has no first responsibility to carry."""
    if not is_staff(actor):
        return False
    if actor.role == Role.ADMIN:
        return True
    if actor.role == Role.CLERK:
        return actor.unit_id == village_id
    if actor.role in (Role.AGENT, Role.TOWNSHIP_OFFICER, Role.COUNTY_OFFICER):
        return oversees(actor, village_id, chain)
    return False


def may_work_on(actor: Actor, unit_id: int, candidate_group: str | None) -> bool:
    """Claim or complete a task: workers of the task's unit; at county level only the department the
    task names (a task for no department is any county officer's)."""
    if not is_staff(actor) or actor.unit_id != unit_id or actor.role not in WORKER_ROLES:
        return False
    return actor.role != Role.COUNTY_OFFICER or candidate_group is None or actor.department == candidate_group


def may_receive(target: Actor, unit_id: int, candidate_group: str | None) -> bool:
    """Be handed a step by reassignment (转办): only a colleague who could claim it themselves — an active
    worker of the step's unit and, at county level, of the department the step names. A step never
    leaves its unit by reassignment: the process alone moves work between levels."""
    return may_work_on(target, unit_id, candidate_group)


def leads(actor: Actor, unit_id: int, chain: Chain) -> bool:
    """Manages the people of a unit (releases and reassigns their tasks, withdraws for them): officers
    their own unit; supervisors and admins their subtree; the operator everything."""
    if actor.is_operator:
        return True
    if not is_staff(actor):
        return False
    if actor.role in OFFICER_ROLES:
        return actor.unit_id == unit_id
    if actor.role in (Role.SUPERVISOR, Role.ADMIN):
        return oversees(actor, unit_id, chain)
    return False


def may_release(actor: Actor, assignee_id: int | None, unit_id: int, chain: Chain) -> bool:
    """Unclaim or reassign a claimed task: its holder, or a lead of its unit."""
    return (assignee_id is not None and actor.id == assignee_id and is_staff(actor)) or leads(actor, unit_id, chain)


def may_withdraw(actor: Actor, first_clerk_id: int | None, chain: Chain) -> bool:
    """撤回 at the applicant's request: the first-responsibility clerk, a clerk of the case's village, or
    a lead of the village (its supervisors, the operator)."""
    if is_staff(actor) and (actor.id == first_clerk_id or
                            (actor.role == Role.CLERK and actor.unit_id == chain.village_id)):
        return True
    return leads(actor, chain.village_id, chain)


def works_on_case(actor: Actor, chain: Chain) -> bool:
    """Staff of the case's village, township or county, a supervisor/admin above it, or the operator:
    may wait for the applicant (补正 pause/resume)."""
    if actor.is_operator:
        return True
    if not is_staff(actor):
        return False
    if actor.role in WORKER_ROLES:
        return actor.unit_id in chain.ids()
    return leads(actor, chain.village_id, chain)


def may_supervise(actor: Actor, chain: Chain) -> bool:
    """督办 (a reminder with a message on a case or step at risk): a supervisor whose subtree holds the case
    (the city's: every case). Not the operator, not an admin: a 督办 is a named supervisor's word to
    the people doing the work, and it is counted against the unit in the reports."""
    return is_staff(actor) and actor.role == Role.SUPERVISOR and oversees(actor, chain.village_id, chain)


def may_explain_card(actor: Actor, responsible_clerk_id: int | None, assignee_id: int | None, unit_id: int,
                     candidate_group: str | None) -> bool:
    """Write the 情况说明 that answers a card: the people it names (the first-responsibility clerk, the
    step's assignee) or a worker of the unit it was issued to (at county level, of the step's department)
    — those who know why the work ran late, not those who watch it."""
    if not is_staff(actor):
        return False
    return actor.id in {i for i in (responsible_clerk_id, assignee_id) if i is not None} or \
        may_work_on(actor, unit_id, candidate_group)


@dataclass(frozen=True)
class Approver:
    """Who decides for a case: an officer (`role`) of one unit, of one of `departments` if any."""
    role: str
    unit_id: int
    level: str
    departments: frozenset[str] = frozenset()

    def describe(self) -> str:
        depts = f" ({'/'.join(sorted(self.departments))})" if self.departments else ""
        return f"a {self.role} of the case's {self.level}{depts}"


def approver_of(level: str, chain: Chain, departments: Iterable[str] = ()) -> Approver:
    """The approving level's officers: county officers of the case's county (of the departments its
    steps there name), township officers of its township, the village's clerks."""
    role, unit = {Level.COUNTY: (Role.COUNTY_OFFICER, chain.county_id),
                  Level.TOWNSHIP: (Role.TOWNSHIP_OFFICER, chain.township_id),
                  Level.VILLAGE: (Role.CLERK, chain.village_id)}[Level(level)]
    return Approver(role, unit, level, frozenset(departments))


def approver_for(properties: Mapping[str, Any], task_meta: Mapping[str, Mapping[str, Any]], chain: Chain) -> Approver:
    """The officers who decide for a case of a process version, from what deployment stored of it (the
    spec's or the row's `properties` and `task_meta`: the same dicts): its approving level
    (`approveLevel`, else the highest level its steps name) and, where its steps at that level name
    candidate groups (县民政局…), those departments. The engine's extension and pause verbs and the read
    side (who is shown the approve button, whose inbox lists a request) ask this one function."""
    level = str(properties.get("approveLevel") or max(
        (m.get("level") for m in task_meta.values() if m.get("level")),
        key=("village", "township", "county").index, default="county"))
    groups = (g for m in task_meta.values() if m.get("level") == level for g in m.get("candidate_groups") or ())
    return approver_of(level, chain, groups)


#: 延期 is at most this many working days where the process does not say (`extensionMaxWorkdays`)
DEFAULT_EXTENSION_MAX_WORKDAYS = 10


def extension_cap(properties: Mapping[str, Any]) -> int:
    """The most working days one extension of a case of this process may grant."""
    return int(properties.get("extensionMaxWorkdays", DEFAULT_EXTENSION_MAX_WORKDAYS))


def is_approver(actor: Actor, approver: Approver) -> bool:
    return (is_staff(actor) and actor.role == approver.role and actor.unit_id == approver.unit_id
            and (not approver.departments or actor.department in approver.departments))


def may_extend(actor: Actor, approver: Approver) -> bool:
    """延期 is granted by an officer of the approving level — never by the operator, never by whoever
    works on the case: it moves the legal due the applicant was promised."""
    return is_approver(actor, approver)


def may_pause(actor: Actor, kind: str, chain: Chain, approver: Approver) -> bool:
    """补正 (waiting for the applicant) is for whoever works on the case. 特别程序 and 公示 stop the legal
    clock on the authority's side: an officer of the approving level, or the operator correcting a
    record (audited by name). The same rule ends them (`may_resume`)."""
    if not works_on_case(actor, chain):
        return False
    if PauseKind(kind) is PauseKind.SUPPLEMENT:
        return True
    return actor.is_operator or is_approver(actor, approver)


def may_resume(actor: Actor, kind: str, chain: Chain, approver: Approver) -> bool:
    return may_pause(actor, kind, chain, approver)


def may_deploy(actor: Actor) -> bool:
    """Deploy a process version: designers, admins and the operator."""
    return actor.is_operator or (is_staff(actor) and actor.role in (Role.DESIGNER, Role.ADMIN))


def may_migrate(actor: Actor) -> bool:
    """Move running cases to another version of their process, and roll such a move back: designers and the
    operator (issue 11 §8). Not admins: which cases may move, and what a version change does to them, is
    the process designer's judgement."""
    return actor.is_operator or (is_staff(actor) and actor.role == Role.DESIGNER)


def may_see_incidents(actor: Actor) -> bool:
    """The incident list: supervisors (their subtree), admins and the operator (everything)."""
    return actor.is_operator or (is_staff(actor) and actor.role in (Role.SUPERVISOR, Role.ADMIN))


def sees_all(actor: Actor) -> bool:
    """No subtree limit on lists (the operator, admins, anyone placed at the city)."""
    return actor.is_operator or actor.role == Role.ADMIN or actor.level == Level.CITY


def may_view_unit(actor: Actor, unit_path: str) -> bool:
    """A unit's pages (its service-day digest, its board): the actor's own unit and those below it."""
    return actor.is_operator or actor.role == Role.ADMIN or (is_staff(actor) and unit_path.startswith(actor.unit_path))


def may_see_reports(actor: Actor, unit_path: str) -> bool:
    """The reports of a unit (the board, its drill-down lists, the overdue report, their downloads):
    supervisors their own unit and those below it, township and county officers their own unit only (its
    villages appear on its board, but their own boards are the supervisors'), admins and the operator every
    unit. Outside this a report is "not found" (invariant 7); `unit_path` is the report's unit's path."""
    if actor.is_operator:
        return True
    if not is_staff(actor):
        return False
    if actor.role == Role.ADMIN:
        return True
    if actor.role == Role.SUPERVISOR:
        return unit_path.startswith(actor.unit_path)
    return actor.role in OFFICER_ROLES and unit_path == actor.unit_path


def may_administer_users(actor: Actor) -> bool:
    """Create, edit, disable users and reset their passwords: admins and the operator."""
    return actor.is_operator or (is_staff(actor) and actor.role == Role.ADMIN)


def may_administer_units(actor: Actor) -> bool:
    """Set a unit's contact details (the phone and address its 受理回执 and 一次性告知书 print): admins and
    the operator. A rule of its own, though today the same people: who keeps the org data may one day
    not be who keeps the accounts."""
    return actor.is_operator or (is_staff(actor) and actor.role == Role.ADMIN)


def may_administer_calendar(actor: Actor) -> bool:
    """Publish a year's holiday schedule (法定节假日 and 调休) in the working-day calendar, and have the
    estimated dues recounted on it: admins and the operator. It moves every open case's due dates in that
    year, so it is not for supervisors, who only read which years the calendar knows."""
    return actor.is_operator or (is_staff(actor) and actor.role == Role.ADMIN)


# ------------------------------------------------------------------------------------------- enforcement
def deny(reason: str, message: str, **params: Any) -> NoReturn:
    raise Forbidden(message, reason=reason, **params)


def require(allowed: bool, reason: str, message: str, **params: Any) -> None:
    """Raise `Forbidden(reason)` unless `allowed`: the services' one way to say no."""
    if not allowed:
        deny(reason, message, **params)
