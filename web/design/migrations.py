"""Migrating running cases to another version of their process (issue 11 §6), for designers only (§8):

- `/processes/<id>/migrate`: choose the cases — the version they run on, the step they wait at, their unit —
  and run the dry run (GET, nothing written): a page of cases, each with its current step and whether it can
  move, or why not. From there the movable ones are migrated (POST, CSRF): one engine call per
  `migration.MIGRATE_CHUNK` cases; a larger set goes on from the batch page.
- `/processes/<id>/migrations/<batch>`: a batch — who, when, to which version, what moved and what was
  refused (and why) — with the button that rolls it back (POST, CSRF), case by case in savepoints: a case that
  moved on since is left as it is and named.

Each view is one engine call (engine.cases.migration); refusals are shown in the reader's language.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_babel.speaklater import LazyString
from markupsafe import Markup, escape

from engine import policy
from engine.cases import migration
from engine.errors import Conflict, Forbidden, InvalidInput, NotFound, YicunError

from .. import reasons
from ..context import current_actor, read, write
from ..filters import bdi
from ..guards import requires
from . import bp

REFUSED = _l("只有流程设计人员可以迁移办理中的办件。")
REFUSALS = (InvalidInput, Conflict, Forbidden, NotFound)
#: why a case cannot move (engine.bpmn.upgrade and engine.cases.migration name it), in the reader's language;
#: the parameters in DATA are process data, isolated as <bdi>
WHY: Mapping[str, LazyString] = {
    "case.on_target": _l("已在 %(version)s 上。"),
    "case.other_process": _l("不是这个流程的办件。"),
    "case.closed": _l("办件已经结束。"),
    "case.paused": _l("计时已暂停（补正、特别程序或公示），恢复计时后才能迁移。"),
    "case.incident": _l("有未处理的计时器故障，请先处理故障。"),
    "case.changed": _l("别人刚刚修改了这个办件，请重试。"),
    "step.moved": _l("环节“%(step)s”在 %(version)s 中改由其他层级或部门办理，请先办完这个环节。"),
    "step.missing": _l("所在环节“%(name)s”（%(element)s）在 %(version)s 中已删除。"),
    "step.changed": _l("所在环节“%(name)s”（%(element)s）在 %(version)s 中已不是用户任务。"),
    "step.boundary_changed": _l("环节“%(name)s”（%(element)s）的边界事件（期限）在 %(version)s 中有变化，"
                                "请先办完这个环节。"),
    "timer.missing": _l("计时器“%(name)s”（%(element)s）在 %(version)s 中已不在原环节上。"),
    "timer.changed": _l("计时器“%(name)s”（%(element)s）在 %(version)s 中已改为其他类型。"),
    "timer.lost": _l("计时器 %(element)s 迁移后会丢失。"),
    "wait.missing": _l("等待中的“%(name)s”（%(element)s）在 %(version)s 中已删除。"),
    "wait.changed": _l("等待中的“%(name)s”（%(element)s）在 %(version)s 中已改为其他类型。"),
    "call.missing": _l("所在的调用活动“%(name)s”（%(element)s）在 %(version)s 中已删除。"),
    "call.changed": _l("办件正在调用活动“%(name)s”（%(element)s）中，它调用的流程 %(process)s 在 %(version)s 中不同。"),
    "history.missing": _l("办件仍需用到的“%(name)s”（%(element)s）在 %(version)s 中已删除。"),
    "flow.unreadable": _l("迁移后的办件在 %(version)s 上无法读取。"),
    "flow.differs": _l("迁移到 %(version)s 后，办件的待办环节或计时器会改变。"),
    "workflow.failed": _l("迁移时流程运行出错。"),
    "migration.rolled_back": _l("已经撤销过迁移。"),
    "migration.moved_on": _l("迁移后已继续办理，保持现状。"),
    "migration.closed_since": _l("迁移后已经结束，保持现状。"),
}
DATA = frozenset({"name", "step", "element", "process"})


def why(reason: str | None, params: Mapping[str, Any] | None, message: str | None = None) -> Markup:
    """Why a case cannot move (or a rollback left it), in the reader's language; the engine's words when the
    reason is not known here."""
    text = WHY.get(reason or "")
    if text is not None:
        try:
            values = {k: bdi(v) if k in DATA else v for k, v in (params or {}).items()}
            return Markup(escape(str(text))) % values
        except (KeyError, TypeError, ValueError):
            pass
    return Markup(escape(message or reason or ""))


def _int(name: str, source: Mapping[str, str], required: bool = False) -> int | None:
    text = (source.get(name) or "").strip()
    if not text:
        if required:
            raise InvalidInput(_("请选择目标版本。"), reason="web.version_required", field=name)
        return None
    if not text.isdigit() or len(text) > 18:
        raise InvalidInput(_("版本号须为整数。"), reason="web.version_invalid", field=name)
    return int(text)


def _filters(source: Mapping[str, str]) -> dict[str, Any]:
    return {"from_version": _int("from", source), "step": (source.get("step") or "").strip()[:120] or None,
            "unit": (source.get("unit") or "").strip()[:30] or None}


@bp.route("/processes/<process_id>/migrate")
@requires(policy.may_migrate, REFUSED)
def migrations_page(process_id: str) -> Any:
    actor = current_actor()
    args = request.args
    form = {"to": args.get("to", "")[:18], "from": args.get("from", "")[:18], "step": args.get("step", "")[:120],
            "unit": args.get("unit", "")[:30]}
    errors: dict[str, str] = {}
    plan = None
    with read() as s:
        choices = migration.choices(s, actor, process_id[:100])  # NotFound: no such process → 404
        recent = migration.batches(s, actor, choices.process_id, limit=10)
        if not form["to"]:
            form["to"] = str(choices.versions[0].version)
        if args.get("run"):
            try:
                after = _int("after", args) or 0
                plan = migration.plan(s, actor, choices.process_id, _int("to", form, True) or 0, **_filters(form),
                                      after_id=after, limit=migration.PLAN_DEFAULT)
            except REFUSALS as exc:
                errors[str(exc.details.get("field") or "_form")] = reasons.message(exc)
    return render_template("design/migrate.html", choices=choices, form=form, errors=errors, plan=plan,
                           recent=recent, why=why, chunk=migration.MIGRATE_CHUNK), 400 if errors else 200


@bp.route("/processes/<process_id>/migrate", methods=["POST"])
@requires(policy.may_migrate, REFUSED)
def migrations_run(process_id: str) -> Any:
    """Migrate the movable cases of the selection (a first chunk), or go on with a batch (`batch`, `after`)."""
    actor = current_actor()
    form = request.form
    batch_id = _int("batch", form)
    with write() as s:
        report = migration.migrate(s, actor, process_id[:100], _int("to", form, True) or 0, **_filters(form),
                                   batch_id=batch_id, after_id=_int("after", form) or 0)
    flash(_("已迁移 %(moved)s 件，%(refused)s 件不能迁移。", moved=len(report.moved), refused=len(report.refused)))
    params: dict[str, Any] = {}
    if report.next_after is not None:
        params["more"] = report.next_after
    return redirect(url_for("design.migration_batch", process_id=process_id, batch_id=report.batch_id, **params))


@bp.route("/processes/<process_id>/migrations/<int:batch_id>")
@requires(policy.may_migrate, REFUSED)
def migration_batch(process_id: str, batch_id: int) -> Any:
    actor = current_actor()
    with read() as s:
        try:
            after = _int("after", request.args) or 0
        except InvalidInput:
            after = 0
        found = migration.batch(s, actor, batch_id, after_id=after)
    if found.process_id != process_id:
        abort(404)
    more = request.args.get("more", "")
    return render_template("design/migrate_batch.html", batch=found, why=why,
                           more=more if more.isdigit() and len(more) < 19 else "",
                           rb_after=request.args.get("rb_after", "")[:18])


@bp.route("/processes/<process_id>/migrations/<int:batch_id>/rollback", methods=["POST"])
@requires(policy.may_migrate, REFUSED)
def migration_rollback(process_id: str, batch_id: int) -> Any:
    actor = current_actor()
    case = (request.form.get("case") or "").strip()[:20] or None
    try:
        after = _int("after", request.form) or 0
    except YicunError:
        after = 0
    with write() as s:
        report = migration.rollback(s, actor, batch_id, case_number=case, after_id=after)
    flash(_("已撤销 %(restored)s 件的迁移，%(refused)s 件保持现状。", restored=len(report.restored),
            refused=len(report.refused)))
    for r in report.refused[:20]:
        flash(Markup("{} {}").format(r["case"], why(r.get("reason"), {"case": r["case"]}, r.get("message"))))
    params: dict[str, Any] = {}
    if report.next_after is not None:
        params["rb_after"] = report.next_after
    return redirect(url_for("design.migration_batch", process_id=process_id, batch_id=batch_id, **params))
