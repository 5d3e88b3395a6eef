"""The process list and a process's versions (issue 11 §1, §5), for everyone signed in (clerks look an item's
process up here); only designers see the actions that change a process.

- `/processes`: every service item of the catalogue and every process deployed outside it, with its versions
  (who deployed, when, the file's hash, the deploy's findings, open cases per version), found by name, code or
  pinyin initials as at the counter.
- `/processes/<id>[/versions/<n>]`: the versions and one of them in detail — its diagram (the vendored bpmn-js
  viewer, static/diagram.js, as on the case page), steps, deadlines, candidate groups, the processes it pins.
- `/processes/<id>/versions/<n>/file`: the file exactly as deployed (deploying it again is "unchanged").
- `/processes/<id>/diff?from=1&to=2`: what changed, listed and marked on both versions' diagrams.

Each view is one engine read (engine.queries.process_versions); the diagram JSON carries an ETag (a version is
immutable, so the XML crosses a slow link once).
"""
from __future__ import annotations

import io
from typing import Any

from flask import current_app, jsonify, render_template, request, send_file, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_babel.speaklater import LazyString

from engine import policy
from engine.errors import InvalidInput
from engine.queries import process_versions as versions

from ..context import current_actor, read
from . import bp

#: element types as the diff and the steps name them
TYPE_LABELS: dict[str, LazyString] = {
    "userTask": _l("用户任务"), "manualTask": _l("人工任务"), "task": _l("任务"), "scriptTask": _l("脚本任务"),
    "serviceTask": _l("服务任务"), "sendTask": _l("发送任务"), "receiveTask": _l("接收任务"),
    "businessRuleTask": _l("业务规则任务"), "callActivity": _l("调用活动"), "subProcess": _l("子流程"),
    "transaction": _l("事务子流程"), "adHocSubProcess": _l("自由子流程"), "startEvent": _l("开始事件"),
    "endEvent": _l("结束事件"), "intermediateCatchEvent": _l("中间捕获事件"),
    "intermediateThrowEvent": _l("中间抛出事件"), "boundaryEvent": _l("边界事件"),
    "exclusiveGateway": _l("排他网关"), "inclusiveGateway": _l("包容网关"), "parallelGateway": _l("并行网关"),
    "eventBasedGateway": _l("事件网关"), "complexGateway": _l("复杂网关"), "sequenceFlow": _l("顺序流"),
    "lane": _l("泳道"), "participant": _l("参与者（池）"), "messageFlow": _l("消息流"), "process": _l("流程"),
    "textAnnotation": _l("文本注释"), "association": _l("关联"), "group": _l("分组"),
    "dataObject": _l("数据对象"), "dataObjectReference": _l("数据对象引用"), "dataStoreReference": _l("数据存储引用"),
    "message": _l("消息"), "signal": _l("信号"), "error": _l("错误"), "escalation": _l("升级"),
    "dataStore": _l("数据存储"),
}
#: the properties a diff compares (engine/bpmn/diff.py), by key
PROPERTY_LABELS: dict[str, LazyString] = {
    "type": _l("类型"), "name": _l("名称"), "lane": _l("泳道"), "documentation": _l("说明"),
    "condition": _l("条件"), "deadline": _l("期限"), "timer": _l("定时"), "script": _l("脚本"),
    "source": _l("起点"), "target": _l("终点"), "attachedTo": _l("附着于"), "default": _l("默认流"),
    "calledElement": _l("调用的流程"), "cancelActivity": _l("中断任务"), "isExecutable": _l("可执行"),
    "processRef": _l("所属流程"), "candidateGroups": _l("候选组（部门）"), "formKey": _l("表单"),
    "other": _l("其他定义"),
}
#: our extension properties (camunda:properties / spiffworkflow:properties), by name
EXTENSION_LABELS: dict[str, LazyString] = {
    "pausesClock": _l("暂停计时"), "candidateGroups": _l("候选组（部门）"), "formKey": _l("表单"),
    "legalLimitWorkdays": _l("法定时限（工作日）"), "promisedLimitWorkdays": _l("承诺时限（工作日）"),
    "extensionMaxWorkdays": _l("延期上限（工作日）"), "approveLevel": _l("审批层级"),
    "caseStatus": _l("办结状态"), "publicity": _l("公示"),
}
#: the process-level properties the engine stored at deploy, in the order the page lists them
LIMITS = ("legalLimitWorkdays", "promisedLimitWorkdays", "extensionMaxWorkdays", "approveLevel")


def type_label(kind: str) -> str:
    return str(TYPE_LABELS.get(kind, kind))


def property_label(key: str) -> str:
    """A diff's property key in the reader's language (`field:<id>`, `property:<name>`, `attribute:<name>`)."""
    group, _sep, detail = key.partition(":")
    if group == "field":
        return _("表单字段 %(id)s", id=detail)
    if group == "property":
        return str(EXTENSION_LABELS.get(detail)) if detail in EXTENSION_LABELS else _("扩展属性 %(name)s", name=detail)
    if group == "attribute":
        return _("属性 %(name)s", name=detail)
    return str(PROPERTY_LABELS.get(key, key))


#: What a designer may do from a process's page — the modeler (§2) and the migration of running cases (§6):
#: (endpoint, label, whether it takes the process id, the policy predicate that allows it), each shown when its
#: page exists and the reader may use it (those pages refuse everyone else themselves).
DESIGNER_ACTIONS: tuple[tuple[str, LazyString, bool, str], ...] = (
    ("design.modeler_edit", _l("在浏览器中编辑"), True, "may_deploy"),
    ("design.migrations_page", _l("迁移在办案件"), True, "may_migrate"),
    ("design.scenarios_page", _l("流程测试"), True, "may_migrate"),
    ("design.modeler_upload_form", _l("上传流程文件"), False, "may_deploy"),
)
#: ... and from the list
LIST_ACTIONS: tuple[tuple[str, LazyString, bool, str], ...] = (
    ("design.modeler_new", _l("新建流程"), False, "may_deploy"),
    ("design.modeler_upload_form", _l("上传流程文件"), False, "may_deploy"),
)


def design_actions(process_id: str | None = None) -> list[tuple[str, str]]:
    """(label, URL) of the actions that change processes which the reader may take and whose pages exist."""
    actor = current_actor()
    found = []
    for endpoint, label, takes_id, rule in DESIGNER_ACTIONS if process_id is not None else LIST_ACTIONS:
        allowed = getattr(policy, rule, None)
        if endpoint in current_app.view_functions and allowed is not None and allowed(actor):
            found.append((str(label), url_for(endpoint, process_id=process_id) if takes_id else url_for(endpoint)))
    return found


def _helpers() -> dict[str, Any]:
    return {"type_label": type_label, "property_label": property_label, "references": versions.REFERENCES,
            "extension_labels": EXTENSION_LABELS, "limits": LIMITS, "design_actions": design_actions}


@bp.route("/processes")
def processes_page() -> Any:
    q = request.args.get("q", "").strip()[:40]
    with read() as s:
        entries = versions.process_list(s, current_actor(), q)
    return render_template("design/processes.html", entries=entries, q=q, design_actions=design_actions)


@bp.route("/processes/<process_id>")
@bp.route("/processes/<process_id>/versions/<int:version>")
def process_page(process_id: str, version: int | None = None) -> Any:
    with read() as s:
        page = versions.process_page(s, current_actor(), process_id, version)
    return render_template("design/process.html", page=page, entry=page.entry, **_helpers())


@bp.route("/processes/<process_id>/versions/<int:version>/file")
def version_file(process_id: str, version: int) -> Any:
    """The file as deployed, byte for byte, under the name it was deployed with."""
    with read() as s:
        found = versions.version_file(s, process_id, version)
    name = found.filename.replace("\\", "/").rsplit("/", 1)[-1] or f"{process_id}-v{version}.bpmn"
    response = send_file(io.BytesIO(found.data), mimetype="application/xml", as_attachment=True,
                         download_name=name, etag=found.sha256, conditional=True, max_age=0)
    response.cache_control.private = True
    return response


@bp.route("/processes/<process_id>/versions/<int:version>/diagram")
def version_diagram(process_id: str, version: int) -> Any:
    with read() as s:
        diagram = versions.version_diagram(s, process_id, version)
    return _diagram_json(diagram)


def _diagram_json(diagram: versions.VersionDiagram) -> Any:
    response = jsonify(diagram.to_json())
    response.set_etag(diagram.validator)
    response.cache_control.private = True
    response.cache_control.no_cache = True
    return response.make_conditional(request)


def _version_arg(name: str) -> int | None:
    raw = request.args.get(name, "").strip()
    if not raw:
        return None
    if not raw.removeprefix("v").isdigit() or len(raw) > 9:
        raise InvalidInput(_("版本号须为正整数，如 1 或 v1。"), reason="web.version_invalid")
    return int(raw.removeprefix("v"))


def _pair(entry: versions.ProcessEntry) -> tuple[int, int] | None:
    """from/to of a diff: as asked, else the newest version against the one before it (None: nothing to compare)."""
    old, new = _version_arg("from"), _version_arg("to")
    known = [v.version for v in entry.versions]  # newest first
    if not known and old is None and new is None:
        return None
    if new is None:
        new = known[0] if known else 1
    if old is None:
        earlier = [v for v in known if v < new]
        if not earlier:
            return None if new in known else (new, new)  # an unknown `to` is refused by the diff, naming it
        old = earlier[0]
    return old, new


@bp.route("/processes/<process_id>/diff")
def version_diff(process_id: str) -> Any:
    with read() as s:
        entry = versions.process_entry(s, current_actor(), process_id)
        pair = _pair(entry)
        if pair is None:  # one version (or none): the page says there is nothing to compare
            return render_template("design/diff.html", entry=entry, found=None, **_helpers())
        found = versions.version_diff(s, current_actor(), process_id, *pair)
    return render_template("design/diff.html", entry=found.entry, found=found, **_helpers())


@bp.route("/processes/<process_id>/diff/diagram")
def diff_diagram(process_id: str) -> Any:
    side = request.args.get("side", "new")
    with read() as s:
        pair = _pair(versions.process_entry(s, current_actor(), process_id))
        if pair is None or side not in ("old", "new"):
            raise InvalidInput(_("请选择要比较的两个版本。"), reason="web.diff_invalid")
        diagram = versions.diff_diagram(s, current_actor(), process_id, pair[0], pair[1], side)
    return _diagram_json(diagram)
