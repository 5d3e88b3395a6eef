"""A process's tests in the browser (issue 11 §7), for designers only (§8: `policy.may_migrate`, designers and the
operator — those who judge what a version does to cases):

- `GET /processes/<id>/tests`: the scenarios of the process's file (bpmn/scenarios/<id>.yaml), step by step,
  or why the file cannot be read.
- `POST /processes/<id>/tests` (CSRF): run them against the newest deployed version in a throwaway database
  (engine.scenarios.run_version — nothing in the live database changes) and show each scenario's result with
  its first difference: the step, what was expected and what happened.
"""
from __future__ import annotations

from typing import Any

from flask import abort, render_template
from flask_babel import lazy_gettext as _l

from engine import policy, processes, scenarios
from engine.errors import Conflict, InvalidInput, NotFound

from ..context import read
from ..guards import requires
from . import bp

REFUSED = _l("只有流程设计人员可以运行流程测试。")
ACTIONS = {
    "start": _l("受理"),
    "complete": _l("办理环节"),
    "advance": _l("时间推进"),
    "expect_ready": _l("期望待办环节"),
    "expect_end": _l("期望办结状态"),
    "expect_due": _l("期望期限"),
}
#: who does a step (a scenario's `as`), as the account pages name the roles
LEVELS = {
    "clerk": _l("便民服务员"),
    "agent": _l("代办员"),
    "township_officer": _l("乡镇审批人员"),
    "county_officer": _l("县级审批人员"),
}


def _page(process_id: str, outcome: scenarios.RunOutcome | None = None) -> Any:
    problem, found = None, None
    try:
        found = scenarios.load(process_id)
    except NotFound:
        pass
    except InvalidInput as exc:
        problem = exc.message
    with read() as s:
        try:
            pv = processes.latest_version(s, process_id)
            version: int | None = pv.version
        except (NotFound, Conflict):  # none deployed, or only as a model (nothing to run the tests against)
            version = None
    if found is None and problem is None and version is None:
        abort(404)  # neither a scenario file nor a deployed version: no such process here
    return render_template("design/scenarios.html", process_id=process_id, found=found, problem=problem,
                           version=version, outcome=outcome, actions=ACTIONS, levels=LEVELS,
                           results={r.name: r for r in outcome.scenarios} if outcome else {},
                           path=f"bpmn/scenarios/{process_id}.yaml")


@bp.route("/processes/<process_id>/tests")
@requires(policy.may_migrate, REFUSED)
def scenarios_page(process_id: str) -> Any:
    return _page(process_id)


@bp.route("/processes/<process_id>/tests", methods=["POST"])
@requires(policy.may_migrate, REFUSED)
def scenarios_run(process_id: str) -> Any:
    outcome = None
    try:
        found = scenarios.load(process_id)
    except (NotFound, InvalidInput):
        return _page(process_id), 422
    with read() as s:
        try:
            pv = processes.latest_version(s, process_id)
        except (NotFound, Conflict):
            return _page(process_id), 422
        outcome = scenarios.run_version(s, pv.id, found)
    return _page(process_id, outcome)  # a failing test is a result, not a refused request
