"""Every rule of engine/policy.py × every role × a unit of the actor's own chain and a foreign one.

The expectations are written out by hand (the README's "Who may do what" table in test form), not
computed from the rules they check. Each cell is two letters: own chain / foreign chain (Y = allowed).
"""
from __future__ import annotations

import pytest

from engine import policy
from engine.errors import Forbidden
from engine.policy import Actor, Chain

OWN = Chain(village_id=1000, township_id=100, county_id=10)
FOREIGN = Chain(village_id=2000, township_id=200, county_id=20)
PATHS = {1: "/1/", 10: "/1/10/", 100: "/1/10/100/", 1000: "/1/10/100/1000/"}
LEVEL = {1: "city", 10: "county", 100: "township", 1000: "village"}


def _at(uid: int, username: str, role: str, department: str | None = None, active: bool = True) -> Actor:
    return Actor(id=hash(username) % 10_000 + 1, username=username, role=role, unit_id=uid, unit_path=PATHS[uid],
                 level=LEVEL[uid], department=department, active=active)


ACTORS = {
    "clerk": _at(1000, "clerk", "clerk"),
    "agent": _at(100, "agent", "agent"),
    "t_officer": _at(100, "t_officer", "township_officer"),
    "c_officer": _at(10, "c_officer", "county_officer", "民政"),
    "c_officer_rs": _at(10, "c_officer_rs", "county_officer", "人社"),
    "sup_town": _at(100, "sup_town", "supervisor"),
    "sup_county": _at(10, "sup_county", "supervisor"),
    "sup_city": _at(1, "sup_city", "supervisor"),
    "designer": _at(1, "designer", "designer"),
    "admin": _at(1, "admin", "admin"),
    "operator": Actor.operator("root"),
    "disabled": _at(1000, "disabled", "clerk", active=False),
}


def _unit_of(actor: Actor, chain: Chain) -> int:
    """The chain's unit at the actor's level (the village for the city and the operator)."""
    return {"county": chain.county_id, "township": chain.township_id}.get(actor.level, chain.village_id)


APPROVER = {chain: policy.approver_of("county", chain, ["民政"]) for chain in (OWN, FOREIGN)}


def _path(unit_id: int) -> str:
    """The path of a unit of OWN's or FOREIGN's chain."""
    return {**PATHS, 20: "/1/20/", 200: "/1/20/200/", 2000: "/1/20/200/2000/"}[unit_id]

RULES = {
    "may_see_case": lambda a, c: policy.may_see_case(a, c),
    "may_accept_at": lambda a, c: policy.may_accept_at(a, c.village_id, c),
    "may_work_on": lambda a, c: policy.may_work_on(a, _unit_of(a, c), "民政"),
    "may_receive": lambda a, c: policy.may_receive(a, _unit_of(a, c), "民政"),  # be handed a task (转办)
    "leads_own_level": lambda a, c: policy.leads(a, _unit_of(a, c), c),
    "leads_village": lambda a, c: policy.leads(a, c.village_id, c),
    "may_release_others": lambda a, c: policy.may_release(a, 999_999, c.village_id, c),
    "may_withdraw": lambda a, c: policy.may_withdraw(a, 999_999, c),
    "works_on_case": lambda a, c: policy.works_on_case(a, c),
    "pause_supplement": lambda a, c: policy.may_pause(a, "supplement", c, APPROVER[c]),
    "pause_special": lambda a, c: policy.may_pause(a, "special", c, APPROVER[c]),
    "resume_publicity": lambda a, c: policy.may_resume(a, "publicity", c, APPROVER[c]),
    "may_extend": lambda a, c: policy.may_extend(a, APPROVER[c]),
    "may_view_unit": lambda a, c: policy.may_view_unit(a, "/1/10/100/" if c is OWN else "/1/20/200/"),
    "may_deploy": lambda a, c: policy.may_deploy(a),
    "may_migrate": lambda a, c: policy.may_migrate(a),
    "may_see_incidents": lambda a, c: policy.may_see_incidents(a),
    "may_administer_users": lambda a, c: policy.may_administer_users(a),
    "may_administer_units": lambda a, c: policy.may_administer_units(a),
    "may_administer_calendar": lambda a, c: policy.may_administer_calendar(a),
    # the reports of the unit at the actor's own level (OWN's village for the city), and of the village below
    "may_see_reports": lambda a, c: policy.may_see_reports(a, _path(_unit_of(a, c))),
    "may_see_reports_below": lambda a, c: policy.may_see_reports(a, _path(c.village_id)),
    "may_supervise": lambda a, c: policy.may_supervise(a, c),
    # a card that names somebody else, issued to the unit at the actor's level (a county step of 民政)
    "may_explain_card": lambda a, c: policy.may_explain_card(a, 999_999, 999_998, _unit_of(a, c), "民政"),
}

# columns:            clerk agent t_off c_off c_rs sup_t sup_c sup_city designer admin operator disabled
TABLE = """
may_see_case          YN    YN    YN    YN    YN   YN    YN    YY       YY       YY    YY       NN
may_accept_at         YN    YN    YN    YN    YN   NN    NN    NN       NN       YY    NN       NN
may_work_on           YN    YN    YN    YN    NN   NN    NN    NN       NN       NN    NN       NN
may_receive           YN    YN    YN    YN    NN   NN    NN    NN       NN       NN    NN       NN
leads_own_level       NN    NN    YN    YN    YN   YN    YN    YY       NN       YY    YY       NN
leads_village         NN    NN    NN    NN    NN   YN    YN    YY       NN       YY    YY       NN
may_release_others    NN    NN    NN    NN    NN   YN    YN    YY       NN       YY    YY       NN
may_withdraw          YN    NN    NN    NN    NN   YN    YN    YY       NN       YY    YY       NN
works_on_case         YN    YN    YN    YN    YN   YN    YN    YY       NN       YY    YY       NN
pause_supplement      YN    YN    YN    YN    YN   YN    YN    YY       NN       YY    YY       NN
pause_special         NN    NN    NN    YN    NN   NN    NN    NN       NN       NN    YY       NN
resume_publicity      NN    NN    NN    YN    NN   NN    NN    NN       NN       NN    YY       NN
may_extend            NN    NN    NN    YN    NN   NN    NN    NN       NN       NN    NN       NN
may_view_unit         NN    YN    YN    YN    YN   YN    YN    YY       YY       YY    YY       NN
may_deploy            NN    NN    NN    NN    NN   NN    NN    NN       YY       YY    YY       NN
may_migrate           NN    NN    NN    NN    NN   NN    NN    NN       YY       NN    YY       NN
may_see_incidents     NN    NN    NN    NN    NN   YY    YY    YY       NN       YY    YY       NN
may_administer_users  NN    NN    NN    NN    NN   NN    NN    NN       NN       YY    YY       NN
may_administer_units  NN    NN    NN    NN    NN   NN    NN    NN       NN       YY    YY       NN
may_administer_calendar NN  NN    NN    NN    NN   NN    NN    NN       NN       YY    YY       NN
may_see_reports       NN    NN    YN    YN    YN   YN    YN    YY       NN       YY    YY       NN
may_see_reports_below NN    NN    NN    NN    NN   YN    YN    YY       NN       YY    YY       NN
may_supervise         NN    NN    NN    NN    NN   YN    YN    YY       NN       NN    NN       NN
may_explain_card      YN    YN    YN    YN    NN   NN    NN    NN       NN       NN    NN       NN
"""

CELLS = [(rule, actor, own_foreign)
         for line in TABLE.strip().splitlines()
         for rule, *cells in [line.split()]
         for actor, own_foreign in zip(ACTORS, cells, strict=True)]


def test_the_table_covers_every_rule_and_every_role() -> None:
    assert {rule for rule, _, _ in CELLS} == set(RULES)
    public_rules = {name for name in dir(policy) if name.startswith(("may_", "works_on", "leads"))}
    covered = {"may_see_case", "may_accept_at", "may_work_on", "may_receive", "leads", "may_release", "may_withdraw",
               "works_on_case", "may_pause", "may_resume", "may_extend", "may_view_unit", "may_deploy", "may_migrate",
               "may_see_incidents", "may_administer_users", "may_administer_units", "may_supervise",
               "may_administer_calendar",
               "may_explain_card", "may_see_reports"}
    assert public_rules <= covered, f"rules without a row: {public_rules - covered}"
    from engine.vocab import Role
    assert {a.role for a in ACTORS.values()} == set(Role.values())


@pytest.mark.parametrize(("rule", "actor", "expected"), CELLS, ids=[f"{r}-{a}" for r, a, _ in CELLS])
def test_rule(rule: str, actor: str, expected: str) -> None:
    check = RULES[rule]
    got = "".join("Y" if check(ACTORS[actor], chain) else "N" for chain in (OWN, FOREIGN))
    assert got == expected, f"{rule} for {actor}: own/foreign {got}, expected {expected}"


def test_the_people_a_card_names_may_explain_it_wherever_they_sit_now() -> None:
    clerk = ACTORS["clerk"]
    assert policy.may_explain_card(clerk, clerk.id, None, 2000, None)  # the first-responsibility clerk
    assert policy.may_explain_card(clerk, None, clerk.id, 2000, None)  # the step's holder
    assert not policy.may_explain_card(clerk, None, None, 2000, None)
    assert not policy.may_explain_card(ACTORS["disabled"], ACTORS["disabled"].id, None, 1000, None)
    assert not policy.may_explain_card(ACTORS["operator"], None, None, 1000, None)


def test_the_holder_of_a_task_may_release_it_but_a_disabled_one_may_not() -> None:
    clerk, disabled = ACTORS["clerk"], ACTORS["disabled"]
    assert policy.may_release(clerk, clerk.id, OWN.village_id, OWN)
    assert not policy.may_release(disabled, disabled.id, OWN.village_id, OWN)


def test_the_first_responsible_clerk_may_withdraw_even_after_moving_village() -> None:
    moved = _at(1000, "moved", "clerk")
    assert policy.may_withdraw(moved, moved.id, FOREIGN)  # 首问责任 follows the person, not the desk


def test_a_county_task_for_no_department_is_any_county_officers() -> None:
    assert policy.may_work_on(ACTORS["c_officer_rs"], OWN.county_id, None)
    assert not policy.may_work_on(ACTORS["c_officer_rs"], OWN.county_id, "民政")


def test_approver_of_a_township_item_is_a_township_officer_of_the_case() -> None:
    approver = policy.approver_of("township", OWN)
    assert policy.may_extend(ACTORS["t_officer"], approver)
    assert not policy.may_extend(ACTORS["c_officer"], approver)
    assert not policy.may_extend(_at(100, "other", "township_officer"), policy.approver_of("township", FOREIGN))


def test_require_raises_forbidden_with_a_stable_reason() -> None:
    policy.require(True, "x.y", "never raised")
    with pytest.raises(Forbidden) as info:
        policy.require(False, "case.extend", "no", case="YY-1")
    assert info.value.reason == "case.extend" and info.value.details == {"case": "YY-1"}
    assert info.value.to_dict()["reason"] == "case.extend"


def test_the_operator_is_named_and_never_a_user() -> None:
    op = Actor.operator("alice")
    assert op.id is None and op.username == "operator:alice" and op.is_operator
    assert op.audit_details == {"operator": "operator:alice"}
    assert ACTORS["clerk"].audit_details == {}


# ------------------------------------------------------------------------------- enforced by the services
from sqlalchemy import select, update  # noqa: E402

from engine import cases, db, orgs, processes  # noqa: E402
from engine.models import AuditEvent, User  # noqa: E402

from .conftest import CLERK, FIXTURES, ready_tasks, snapshot, start  # noqa: E402


@pytest.mark.db
def test_a_disabled_account_is_refused_by_the_services_and_nothing_changes(seeded) -> None:
    r = start(seeded)
    task = ready_tasks(seeded, r.case_number)[0]
    assert task.assignee_id is not None  # the accepting clerk holds the village step
    with db.transaction(seeded) as s:
        stale = orgs.actor_by_name(s, CLERK)  # loaded before the account is disabled below
        s.execute(update(User).where(User.username == CLERK).values(active=False))
    before = snapshot(seeded)
    with db.read(seeded) as s:
        assert orgs.actor_by_id(s, stale.id) is None  # a request after the change sees no actor at all
    gone = policy.Actor(**{**stale.__dict__, "active": False})  # what a user row says once disabled
    with pytest.raises(Forbidden) as info, db.transaction(seeded) as s:
        cases.complete_task(s, task.id, gone, {"documents_complete": True})
    assert info.value.reason == "task.work"
    with pytest.raises(Forbidden), db.transaction(seeded) as s:
        cases.unclaim_task(s, task.id, gone)  # a holder whose account was disabled cannot release it either
    assert snapshot(seeded) == before


@pytest.mark.db
def test_the_operator_deploys_by_name_and_a_clerk_may_not(seeded) -> None:
    data = (FIXTURES / "relay.bpmn").read_bytes().replace(b'name="', b'name="v2 ', 1)
    with db.transaction(seeded) as s:
        clerk = orgs.actor_by_name(s, CLERK)
    before = snapshot(seeded)
    with pytest.raises(Forbidden) as info, db.transaction(seeded) as s:
        processes.deploy(s, data, "relay.bpmn", clerk)
    assert info.value.reason == "process.deploy" and snapshot(seeded) == before
    with db.transaction(seeded) as s:
        (res,) = processes.deploy(s, data, "relay.bpmn", Actor.operator("alice"))
    assert res.created
    with db.read(seeded) as s:
        event = s.scalars(select(AuditEvent).where(AuditEvent.action == "process.deployed")
                          .order_by(AuditEvent.id.desc())).first()
    assert event.actor_id is None and event.details["operator"] == "operator:alice"
