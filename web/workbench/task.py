"""The task page: the step's form rendered from its definition, every earlier step's data beside it
(the county officer does not approve blind), and the step's actions — complete, 退回补正, and on the case
撤回 at the applicant's request and 恢复计时 once returned documents are in.

Each POST is one engine call. A refusal (invalid field, someone else completed the step first, the case
changed meanwhile) shows the page again with everything that was typed and the message beside its field
or on top: nothing typed is lost.
"""
from __future__ import annotations

from typing import Any

from flask import flash, redirect, render_template, request, url_for
from flask_babel import gettext as _

from engine import cases, queries
from engine.errors import Conflict, Forbidden, InvalidInput, NotFound, YicunError

from .. import reasons
from ..context import current_actor, read, write
from ..form_errors import FORM, place_all
from . import bp

REFUSALS = (InvalidInput, Conflict, Forbidden, NotFound)


def _page(task_id: int, values: dict[str, Any] | None = None, errors: dict[str, str] | None = None,
          status: int = 200, typed: bool = False) -> Any:
    """The task page; `typed`: shown again after a refused completion, so what was typed is shown even
    where the step can no longer be worked (completed by someone else meanwhile) — to copy, not lose."""
    actor = current_actor()
    with read() as s:
        task = queries.task_detail(s, task_id, actor)
        case = queries.case_detail(s, task.case_number, actor)
        # what the case already holds for this step's fields, under whatever was just typed
        values = {**_held_values(task, case), **(values or {})}
        if any(f.id == "supplement_items" for f in task.fields) and not values.get("supplement_items"):
            missing = queries.receipt(s, task.case_number, actor).missing
            if missing:
                values["supplement_items"] = "、".join(missing)
    return render_template("workbench/task.html", task=task, case=case, values=values, errors=errors or {},
                           editable=[f for f in task.fields if not f.readonly], typed=typed), status


def _held_values(task: queries.TaskDetail, case: queries.CaseDetail) -> dict[str, Any]:
    """The latest value each of the step's fields was given by an earlier step (the intake's facts when the
    intake step comes round again after 补正) — except decisions, which each round answers anew."""
    wanted = {f.id for f in task.fields if not f.readonly and not f.decision}
    held: dict[str, Any] = {}
    for step in case.steps:
        for f in step.fields:
            if f.id in wanted and f.value not in (None, ""):
                held[f.id] = "true" if f.value is True else "false" if f.value is False else f.value
    return held


@bp.route("/tasks/<int:task_id>")
def task(task_id: int) -> Any:
    return _page(task_id)


@bp.route("/tasks/<int:task_id>/complete", methods=["POST"])
def task_complete(task_id: int) -> Any:
    actor = current_actor()
    with read() as s:
        fields = [f for f in queries.task_detail(s, task_id, actor).fields if not f.readonly]
    values = {f.id: request.form.get(f.id, "") for f in fields}
    data = {k: v for k, v in values.items() if v != ""}
    try:
        with write() as s:
            result = cases.complete_task(s, task_id, actor, data)
    except REFUSALS as exc:
        return _page(task_id, values, place_all(exc, [f.id for f in fields]),
                     409 if isinstance(exc, Conflict) else 422, typed=True)
    flash(_("已办理：%(case)s", case=result.case_number))
    return redirect(url_for("workbench.case", number=result.case_number), code=303)


@bp.route("/tasks/<int:task_id>/return", methods=["POST"])
def task_return(task_id: int) -> Any:
    reason = request.form.get("reason", "")
    try:
        with write() as s:
            result = cases.return_for_supplement(s, task_id, current_actor(), reason)
    except REFUSALS as exc:
        errors = place_all(exc, ["reason"])
        errors["return_reason"] = errors.pop("reason", "") or errors.pop(FORM, "")
        return _page(task_id, {"return_reason": reason, "open": "return"}, errors,
                     409 if isinstance(exc, Conflict) else 422)
    flash(_("已退回村（社区）补正，办理时限暂停计算：%(case)s", case=result.case_number))
    return redirect(url_for("workbench.task", task_id=task_id), code=303)


def _case_action(number: str, act: Any, done: str) -> Any:
    """A case-level action from the case or task page: one engine call, then back where it came from."""
    back = request.form.get("task_id", "")
    target = url_for("workbench.task", task_id=int(back)) if back.isdigit() else url_for("workbench.case",
                                                                                       number=number)
    try:
        with write() as s:
            act(s)
    except REFUSALS as exc:
        flash(reasons.message(exc) if isinstance(exc, YicunError) else str(exc))
        return redirect(target, code=303)
    flash(done)
    return redirect(target, code=303)


@bp.route("/cases/<number>/withdraw", methods=["POST"])
def case_withdraw(number: str) -> Any:
    reason = request.form.get("reason", "")
    return _case_action(number, lambda s: cases.withdraw_case(s, number, current_actor(), reason),
                        _("已按申请人要求撤回：%(case)s", case=number))


@bp.route("/cases/<number>/resume", methods=["POST"])
def case_resume(number: str) -> Any:
    return _case_action(number, lambda s: cases.resume_case(s, number, current_actor()),
                        _("材料已补齐，恢复计时：%(case)s", case=number))
