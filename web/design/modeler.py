"""The modeler in the browser (issue #11 §2), for designers only (`policy.may_deploy`; everyone else 403).

- `GET /processes/<id>/edit` opens the newest deployed version of a process in the vendored bpmn-js Modeler with
  our own properties panel (web/static/modeler.js); `GET /processes/new/edit` starts from a small template that
  follows our conventions. The BPMN text comes from `engine.queries.modeler`, never from the deploy code.
- `POST /processes/<id>/check` (JSON `{xml, filename}`, CSRF header): the engine's dry run with every finding and
  the conventions lint (`processes.check_files`), as JSON with element ids, which the page shows on the diagram.
- `POST /processes/<id>/deploy`: one `processes.deploy_files` call (a new version, audited by the engine); a
  refusal is 422 with its findings and changes nothing; a file that no longer defines the process being edited
  is refused as well (rolled back). A refusal because the process's tests failed (and only that one) is
  `"outcome": "tests_failed"` with the failing tests: the page offers to deploy anyway by posting the same XML
  again with `override_reason` (required, trimmed, at most 500 characters; the engine audits it).
- `GET/POST /processes/upload`: one .bpmn file or a file set (call activities across files), checked or deployed
  together (all or nothing), or one file opened in the modeler. Files are read up to the engine's size cap and
  parsed by the engine's safe loader (no DTD, no entities, no network). A deploy refused by failing tests lists
  them under their files with a form to deploy anyway with a reason, `POST /processes/upload/override`, which
  carries the files back (web/design/override.py).
The working copy lives in the browser (localStorage, keyed by process and base version) until it is deployed or
discarded: nothing is stored on the server before a deploy.
"""
from __future__ import annotations

import re
from typing import Any

from flask import flash, jsonify, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from werkzeug.routing import BuildError

from engine import policy, processes, scenarios, vocab
from engine.errors import BpmnRejected, Finding, InvalidInput, NotFound, ScenariosFailed
from engine.queries.modeler import deployed_process_ids, editable_process

from ..config import takes_uploads
from ..context import current_actor, read, write
from ..guards import requires
from ..i18n import is_english
from . import bp, override
from .modeler_findings import with_text

DENIED = _l("只有流程设计员和系统管理员可以编辑、检查和部署流程。")
#: the process id of the new-process template: deploying it unchanged is refused (choose the code first)
NEW = "new"
TEMPLATE_ID = "NEW_PROCESS"
#: files of one upload (a file set of call activities across files is a handful; the engine caps each file)
MAX_FILES = 20
_FILENAME = re.compile(r"[^\w.\-\u4e00-\u9fff]+")


def _texts() -> dict[str, str]:
    """Every sentence modeler.js shows, in the reader's language ({name} placeholders are filled in by it)."""
    return {
        "undo": _("撤销"), "redo": _("重做"), "check": _("保存并检查"), "deploy": _("部署新版本"),
        "download": _("下载文件"), "open": _("打开本地文件"), "discard": _("丢弃修改"), "fit": _("适应窗口"),
        "checking": _("正在检查…"), "checked_ok": _("检查通过：可以部署。"),
        "checked_some": _("发现 {errors} 个错误、{warnings} 个警告。"),
        "checked_warnings": _("可以部署，另有 {warnings} 个警告。"),
        "deploying": _("正在部署…"), "deploy_refused": _("部署被拒绝：请先改正标红的错误。"),
        "deployed": _("已部署为版本 {version}。"), "unchanged": _("文件与已部署的相同：仍是版本 {version}。"),
        "failed": _("请求失败（{status}）。请刷新页面后再试。"),
        "offline": _("连接服务器失败；修改已保存在本浏览器中。"),
        "restored": _("已恢复本浏览器中保存的未部署修改（{time}）。"),
        "saved": _("修改已保存在本浏览器中。"), "confirm_discard": _("确定丢弃未部署的修改，恢复为已部署的版本？"),
        "discarded": _("已丢弃修改。"), "import_failed": _("流程图无法打开：{message}"),
        "too_large": _("文件太大（上限 {limit} MB）。"), "not_xml": _("只能打开 BPMN（XML）文件。"),
        "opened": _("已打开文件 {name}，请检查后部署。"),
        "other_copy": _("本浏览器中还有基于版本 {version} 的未部署修改。"), "open_copy": _("打开"),
        "drop_copy": _("丢弃"),
        "panel": _("属性"), "process": _("流程"), "process_id": _("流程编码"), "process_name": _("流程名称"),
        "legal": _("法定时限（工作日）"), "promised": _("承诺时限（工作日）"), "extension": _("延期上限（工作日）"),
        "approve": _("审批层级"), "none": _("（无）"), "name": _("名称"), "element_id": _("编号"),
        "lane": _("所在泳道（层级）"), "no_lanes": _("此流程没有村、乡镇、县泳道。"),
        "groups": _("办理部门（候选组）"), "groups_hint": _("县级环节由哪个部门办理，如 民政；多个用逗号分开。"),
        "form_key": _("表单标识"), "pauses": _("办理期间暂停计时"), "no_pause": _("不暂停"),
        "deadline": _("办理时限"), "workdays": _("个工作日"), "add_deadline": _("添加办理时限"),
        "deadline_name": _("办理时限预警"), "deadline_end": _("超时预警已发出"),
        "timer_text": _("时限（表达式）"), "interrupting": _("到期中断本环节"), "non_interrupting": _("到期只预警"),
        "fields": _("表单字段"), "add_field": _("添加字段"), "remove": _("删除"), "field_id": _("字段名"),
        "field_label": _("标签"), "field_type": _("类型"), "required": _("必填"), "options": _("选项"),
        "add_option": _("添加选项"), "option_id": _("选项值"), "option_name": _("选项名称"),
        "new_field": _("新字段"), "new_option": _("选项"), "other_constraints": _("其他校验（保留不变）："),
        "case_status": _("结束时案件状态"),
        "select_hint": _("选中一个元素可查看和修改它的属性；不选中时修改整个流程的属性。"),
        "select": _("选中"), "findings": _("检查结果"), "error": _("错误"), "warning": _("警告"),
        "convention": _("约定"), "line": _("第 {line} 行"), "no_findings": _("没有发现问题。"),
        "whole_file": _("（整个文件）"), "not_checked": _("尚未检查。修改后请点“保存并检查”。"),
        "id_invalid": _("编码只能由字母、数字、_、-、. 组成，且以字母开头。"),
        "id_taken": _("编号 {id} 已被其他元素使用。"),
        "type_userTask": _("用户任务"), "type_startEvent": _("开始事件"), "type_endEvent": _("结束事件"),
        "type_boundaryEvent": _("边界事件"), "type_exclusiveGateway": _("排他网关"),
        "type_parallelGateway": _("并行网关"), "type_sequenceFlow": _("顺序流"), "type_lane": _("泳道"),
        "type_intermediateCatchEvent": _("中间事件"), "type_callActivity": _("调用活动"),
        "type_participant": _("参与者"),
        "tests_failed": _("部署被拒绝：流程测试未通过。可以先修改流程，或填写理由后仍然部署。"),
        "tests_of": _("流程 {process}：{count} 个测试场景未通过"), "open_tests": _("查看流程测试"),
        "tests_tag": _("流程测试"),
        "reason_missing": _("请填写仍然部署的理由：它会和未通过的测试一起记入审计日志。"),
        "reason_too_long": _("理由最多 {max} 个字，现在有 {count} 个。"),
    }


def _choices() -> dict[str, Any]:
    """The vocabularies of the panel's selects, labelled in the reader's language."""
    lang = "en" if is_english() else "zh"
    return {
        "levels": [[lv, vocab.Level(lv).label(lang)] for lv in ("village", "township", "county")],
        "pause_kinds": [[k.value, k.label(lang)] for k in vocab.PauseKind],
        "case_statuses": [[s, vocab.CaseStatus(s).label(lang)] for s in ("completed", "rejected", "withdrawn")],
        "field_types": [["string", _("文本")], ["long", _("整数")], ["boolean", _("是/否")], ["date", _("日期")],
                        ["enum", _("选项")]],
        "departments": list(vocab.DEPARTMENTS),
    }


def _page(process_id: str, base_version: int | None, name: str, filename: str, xml: str, *,
          findings: list[dict[str, Any]] | None = None, from_upload: bool = False, status: int = 200) -> Any:
    config = {
        "mode": NEW if process_id == NEW else "edit", "processId": process_id, "baseVersion": base_version,
        "filename": filename, "xml": xml, "templateId": TEMPLATE_ID, "fromUpload": from_upload,
        "findings": findings, "maxBytes": processes.MAX_BPMN_BYTES, "maxReason": override.MAX_REASON_CHARS,
        "urls": {"check": url_for("design.modeler_check", process_id=process_id),
                 "deploy": url_for("design.modeler_deploy", process_id=process_id),
                 "descriptor": url_for("static", filename="vendor/camunda-bpmn-moddle/resources/camunda.json"),
                 "edit": url_for("design.modeler_edit", process_id=process_id) if process_id != NEW
                 else url_for("design.modeler_new")},
        "texts": _texts(), **_choices(),
    }
    page = render_template("design/modeler.html", config=config, process_id=process_id, name=name,
                           base_version=base_version)
    return page, status


@bp.route("/processes/<process_id>/edit")
@requires(policy.may_deploy, DENIED)
def modeler_edit(process_id: str) -> Any:
    with read() as s:
        found = editable_process(s, process_id)
    return _page(found.process_id, found.version, found.name, found.filename, found.xml)


@bp.route("/processes/new/edit")
@requires(policy.may_deploy, DENIED)
def modeler_new() -> Any:
    # the names in the file are process data, Chinese whatever the reader's language (DESIGN.md §6)
    return _page(NEW, None, _("新流程"), f"{TEMPLATE_ID}.bpmn", new_process_xml("新流程", "受理申请"))


# ------------------------------------------------------------------------------------------- check, deploy
def _clean_filename(name: str, default: str) -> str:
    """A file name to store with the version: its last path part, word characters only, ending .bpmn."""
    base = re.split(r"[\\/]", name or "")[-1].strip()
    base = _FILENAME.sub("_", base)[:120].strip("._")
    if not base:
        base = default
    return base if base.lower().endswith((".bpmn", ".xml")) else f"{base}.bpmn"


def _posted_file(process_id: str) -> tuple[bytes, str]:
    """The XML and file name a modeler page posted as JSON, or InvalidInput."""
    body = request.get_json(silent=True)
    body = body if isinstance(body, dict) else {}
    xml, name = body.get("xml"), body.get("filename")
    if not isinstance(xml, str) or not xml.strip():
        raise InvalidInput(_("没有收到流程文件。"), reason="web.modeler_no_file")
    default = f"{process_id}.bpmn" if process_id != NEW else f"{TEMPLATE_ID}.bpmn"
    name = name if isinstance(name, str) else ""
    return xml.encode("utf-8"), _clean_filename(name, default)


def _no_file(exc: InvalidInput) -> Any:
    """A post without a file: the same JSON shape as a refusal, so the page shows it as one."""
    return jsonify({"outcome": "refused", "findings": with_text([{"severity": "error", "rule": "editor",
                                                                  "message": exc.message}])}), 422


def _editor_findings(process_id: str, process_ids: tuple[str, ...] | list[str], filename: str) -> list[dict[str, Any]]:
    """What the editor adds to the engine's findings: the file must still define the process it edits, and a
    new process needs its own code instead of the template's."""
    if process_id != NEW and process_ids and process_id not in process_ids:
        return [{"severity": "error", "rule": "editor", "file": filename, "message": _(
            "文件中已没有流程 %(process)s：这里只能部署它的新版本（其他流程请用“上传流程文件”）。",
            process=process_id)}]
    if process_id == NEW and TEMPLATE_ID in process_ids:
        return [{"severity": "error", "rule": "editor", "file": filename, "element_id": TEMPLATE_ID,
                 "message": _("请先在流程属性中填写流程编码。")}]
    return []


@bp.route("/processes/<process_id>/check", methods=["POST"])
@requires(policy.may_deploy, DENIED)
def modeler_check(process_id: str) -> Any:
    try:
        data, filename = _posted_file(process_id)
    except InvalidInput as exc:
        return _no_file(exc)
    with read() as s:
        result = processes.check_files([(data, filename)], s)[0]
    findings = _editor_findings(process_id, result.process_ids, filename) + [dict(f) for f in result.findings]
    outcome = "refused" if any(f["severity"] == "error" for f in findings) else result.outcome
    return jsonify({"outcome": outcome, "process_ids": list(result.process_ids), "findings": with_text(findings)})


class _WrongFile(Exception):
    """Raised inside the deploy's transaction to roll it back: the file is not one this editor may deploy."""

    def __init__(self, findings: list[dict[str, Any]]) -> None:
        super().__init__("refused by the editor")
        self.findings = findings


@bp.route("/processes/<process_id>/deploy", methods=["POST"])
@requires(policy.may_deploy, DENIED)
def modeler_deploy(process_id: str) -> Any:
    try:
        data, filename = _posted_file(process_id)
    except InvalidInput as exc:
        return _no_file(exc)
    body = request.get_json(silent=True)
    reason = None
    if isinstance(body, dict) and "override_reason" in body:  # 仍然部署: the reason is checked before anything
        try:
            reason = override.reason(body["override_reason"])
        except InvalidInput as exc:
            return jsonify({"outcome": "reason_invalid", "error": exc.message}), 422
    actor = current_actor()
    try:
        # deploy_files compiles before the transaction's first statement (SQLite's write lock is taken then); an
        # invalid file is refused there, before the tests run, so no reason ever pushes one through
        with write() as s:
            results = processes.deploy_files(s, [(data, filename)], actor, override_reason=reason)
            wrong = _editor_findings(process_id, [r.process_id for r in results], filename)
            wrong += _stale(process_id, results, filename)
            if wrong:
                raise _WrongFile(wrong)
    except ScenariosFailed as exc:
        return _tests_failed(process_id, exc, filename)
    except BpmnRejected as exc:
        findings = [dict(f.to_dict(), rule="deploy") for f in exc.findings]
        return jsonify({"outcome": "refused", "findings": with_text(findings)}), 422
    except _WrongFile as exc:
        return jsonify({"outcome": "refused", "findings": with_text(exc.findings)}), 422
    main = next((r for r in results if r.process_id == process_id), results[-1])
    if main.created:
        flash(_("已部署流程 %(process)s 版本 %(version)s。", process=main.process_id, version=main.version))
    else:
        flash(_("文件与已部署的相同：流程 %(process)s 仍是版本 %(version)s。", process=main.process_id,
                version=main.version))
    return jsonify({"outcome": "deployed", "created": main.created, "process_id": main.process_id,
                    "version": main.version, "redirect": _process_url(main.process_id),
                    "results": [{"process_id": r.process_id, "version": r.version, "created": r.created}
                                for r in results]})


def _tests_failed(process_id: str, exc: ScenariosFailed, filename: str) -> Any:
    """The refusal the page may override: the failing tests as findings (on their elements and in the list) and
    a link to each process's tests. A working copy based on an older version is refused as stale instead —
    the override would be rolled back for it anyway."""
    if process_id != NEW:
        with read() as s:
            try:
                latest: int | None = editable_process(s, process_id).version
            except NotFound:
                latest = None
        stale = _stale_finding(process_id, latest, filename)
        if stale:
            return jsonify({"outcome": "refused", "findings": with_text(stale)}), 422
    findings, tests = override.failures(exc.failures)
    return jsonify({"outcome": "tests_failed", "findings": findings, "tests": tests,
                    "max_reason": override.MAX_REASON_CHARS}), 422


def _stale(process_id: str, results: list[processes.DeployResult], filename: str) -> list[dict[str, Any]]:
    """Someone deployed a newer version since this working copy was opened (`base_version` the page sent): a
    deploy now would silently undo their changes, so it is refused (rolled back). The page keeps the working
    copy; opened on the newest version, the editor offers it to be merged by hand."""
    if process_id == NEW:
        return []
    main = next((r for r in results if r.process_id == process_id), None)
    if main is None or not main.created:
        return []
    return _stale_finding(process_id, main.version - 1, filename)


def _stale_finding(process_id: str, latest: int | None, filename: str) -> list[dict[str, Any]]:
    """The refusal of a working copy whose base (`base_version` the page sent) is not `latest`, the newest
    version deployed before this deploy."""
    body = request.get_json(silent=True)
    base = body.get("base_version") if isinstance(body, dict) else None
    if latest is None or not isinstance(base, int) or isinstance(base, bool) or latest == base:
        return []
    return [{"severity": "error", "rule": "editor", "file": filename, "message": _(
        "流程 %(process)s 在您打开之后已部署了版本 %(latest)s（您的修改基于版本 %(base)s）：没有部署。"
        "请刷新页面打开最新版本，再把本浏览器中保存的修改合并进去。",
        process=process_id, latest=latest, base=base)}]


def _process_url(process_id: str) -> str:
    """Where a deployed process is shown: its page (web/design/versions.py), else the list."""
    try:
        return url_for("design.process_page", process_id=process_id)
    except BuildError:
        return url_for("design.processes_page")


# ------------------------------------------------------------------------------------------- upload
def _uploaded() -> list[tuple[bytes, str]]:
    """The files of the upload form: at most MAX_FILES, each read up to one byte past the engine's cap (the
    engine refuses it, naming the file), names cleaned and unique."""
    files = [f for f in request.files.getlist("files") if f is not None and (f.filename or "").strip()]
    if not files:
        raise InvalidInput(_("请选择要上传的 BPMN 文件。"), reason="web.upload_no_file")
    if len(files) > MAX_FILES:
        raise InvalidInput(_("一次最多上传 %(count)s 个文件。", count=MAX_FILES), reason="web.upload_too_many")
    out, seen = [], set()
    for upload in files:
        name = _clean_filename(upload.filename or "", "upload.bpmn")
        if name in seen:
            raise InvalidInput(_("文件 %(name)s 选了两次。", name=name), reason="web.upload_twice")
        seen.add(name)
        out.append((upload.read(processes.MAX_BPMN_BYTES + 1), name))
    return out


def _upload_page(checks: list[Any] | None = None, error: str | None = None, status: int = 200, *,
                 added: dict[str, tuple[str, list[dict[str, Any]]]] | None = None,
                 override_form: dict[str, Any] | None = None) -> Any:
    """The upload page; after a check or a refused deploy, each file's outcome and findings. `added` puts the
    refusal's own findings first under a file with the outcome they give it (file name → (outcome, findings));
    `override_form` is the form that deploys the files anyway with a reason (`_tests_failed_page`)."""
    deployed: frozenset[str] = frozenset()
    if checks:
        with read() as s:
            deployed = deployed_process_ids(s, [pid for c in checks for pid in c.process_ids])
    shown = []
    for c in checks or []:
        outcome, extra = (added or {}).get(c.file, (c.outcome, []))
        shown.append(dict(c.to_dict(), outcome=outcome, findings=with_text([*extra, *c.findings])))
    return render_template("design/modeler_upload.html", checks=shown, error=error, deployed=deployed,
                           override=override_form, max_files=MAX_FILES,
                           max_mb=processes.MAX_BPMN_BYTES // (1024 * 1024)), status


def _refused_page(files: list[tuple[bytes, str]], exc: BpmnRejected) -> Any:
    """A deploy the engine refused for the files themselves: every file's findings (check_files). A refusal
    the check does not repeat is listed under its file all the same, so the page never says "not deployed"
    without saying why."""
    with read() as s:
        checks = processes.check_files(files, s)
    added: dict[str, tuple[str, list[dict[str, Any]]]] = {}
    if not any(c.outcome == "refused" for c in checks):
        names = [name for _d, name in files]
        for f in exc.findings:
            where = f.file if f.file in names else names[0]
            added.setdefault(where, ("refused", []))[1].append(dict(f.to_dict(), rule="deploy"))
    refused = _("没有部署：请先改正下面列出的错误（一组文件要么全部部署，要么都不部署）。")
    return _upload_page(checks, error=refused, status=422, added=added)


def _tests_failed_page(files: list[tuple[bytes, str]], by_process: dict[str, list[Finding]], *,
                       error: str | None = None, reason: str = "") -> Any:
    """A deploy refused because process tests failed: the failing tests under the file that defines each process,
    and the form that deploys the same files anyway with a reason (the files carried in it, web/design/override)."""
    with read() as s:
        checks = processes.check_files(files, s)
    findings, tests = override.failures(by_process)
    added: dict[str, tuple[str, list[dict[str, Any]]]] = {}
    for f in findings:
        where = next((c.file for c in checks if f["process_id"] in c.process_ids), checks[0].file)
        added.setdefault(where, ("tests failed", []))[1].append(f)
    carried = override.carry(files)
    form = {"files": carried, "fits": override.fits(carried), "tests": tests, "process_ids": list(by_process),
            "reason": reason, "reason_error": error, "max_reason": override.MAX_REASON_CHARS}
    message = _("没有部署：流程测试未通过（见下）。可以先修改流程，或填写理由后仍然部署，"
                "理由会和未通过的测试一起记入审计日志。")
    return _upload_page(checks, error=message, status=422, added=added, override_form=form)


def _deployed(results: list[processes.DeployResult]) -> Any:
    """After an upload deployed: what became of each process, then its page (one) or the list (a set)."""
    for r in results:
        if r.created:
            flash(_("已部署流程 %(process)s 版本 %(version)s。", process=r.process_id, version=r.version))
        else:
            flash(_("文件与已部署的相同：流程 %(process)s 仍是版本 %(version)s。", process=r.process_id,
                    version=r.version))
    return redirect(_process_url(results[-1].process_id) if len(results) == 1 else url_for("design.processes_page"))


@bp.route("/processes/upload")
@requires(policy.may_deploy, DENIED)
def modeler_upload_form() -> Any:
    return _upload_page()


@bp.route("/processes/upload", methods=["POST"])
@requires(policy.may_deploy, DENIED)
@takes_uploads
def modeler_upload() -> Any:
    action = request.form.get("action", "check")
    try:
        files = _uploaded()
    except InvalidInput as exc:
        return _upload_page(error=exc.message, status=422)
    if action == "open":
        return _open_uploaded(files)
    if action == "deploy":
        try:
            with write() as s:
                results = processes.deploy_files(s, files, current_actor())
        except ScenariosFailed as exc:
            return _tests_failed_page(files, exc.failures)
        except BpmnRejected as exc:
            return _refused_page(files, exc)
        return _deployed(results)
    with read() as s:
        checks = processes.check_files(files, s)
    return _upload_page(checks)


@bp.route("/processes/upload/override", methods=["POST"])
@requires(policy.may_deploy, DENIED)
@takes_uploads
def modeler_upload_override() -> Any:
    """仍然部署: the files a deploy refused for failing tests, carried back by its form, deployed with the reason
    (the engine checks and tests them again and audits the reason). Without a valid reason nothing is deployed:
    the page comes back with the failing tests, run again read only, and says what the reason lacks."""
    try:
        files = override.carried(MAX_FILES, _clean_filename)
    except InvalidInput as exc:
        return _upload_page(error=exc.message, status=422)
    try:
        why = override.reason(request.form.get("reason"))
    except InvalidInput as exc:
        return _tests_failed_page(files, _failing_tests(files, request.form.getlist("process_id")),
                                  error=exc.message, reason=(request.form.get("reason") or "")[:2000])
    try:
        with write() as s:
            results = processes.deploy_files(s, files, current_actor(), override_reason=why)
    except BpmnRejected as exc:  # the files themselves are refused: a reason never overrides that
        return _refused_page(files, exc)
    return _deployed(results)


def _failing_tests(files: list[tuple[bytes, str]], process_ids: list[str]) -> dict[str, list[Finding]]:
    """The tests of `process_ids` (those of the refused deploy, each defined in one of the files) run again read
    only against the files: what the page lists when it comes back without a deploy."""
    with read() as s:
        defined = {pid for c in processes.check_files(files, s) for pid in c.process_ids}
        outcomes = [scenarios.run(files, scenarios.load(pid), live=s) for pid in dict.fromkeys(process_ids)
                    if pid in defined and scenarios.has_scenarios(pid)]
    return {o.process_id: o.findings() for o in outcomes if not o.passed}


def _open_uploaded(files: list[tuple[bytes, str]]) -> Any:
    """One uploaded file opened in the modeler with its findings: as the working copy of the deployed process
    it defines (its newest version the base), or as a new process."""
    if len(files) != 1:
        return _upload_page(error=_("只能在建模器中打开一个文件；一组文件请直接检查或部署。"), status=422)
    data, filename = files[0]
    try:
        xml = data.decode("utf-8")
    except UnicodeDecodeError:
        xml = None
    with read() as s:
        check = processes.check_files([(data, filename)], s)[0]
        if xml is None or len(data) > processes.MAX_BPMN_BYTES or not check.process_ids:
            return _upload_page([check], error=_("这个文件不能在建模器中打开。"), status=422)
        deployed = deployed_process_ids(s, list(check.process_ids))
        target = next((pid for pid in check.process_ids if pid in deployed), None)
        base = editable_process(s, target) if target else None
    process_id = base.process_id if base else NEW
    findings = _editor_findings(process_id, check.process_ids, filename) + [dict(f) for f in check.findings]
    return _page(process_id, base.version if base else None, base.name if base else filename, filename, xml,
                 findings=with_text(findings), from_upload=True)


# ------------------------------------------------------------------------------------------- the template
def new_process_xml(name: str, first_step: str) -> str:
    """A new process that follows our conventions (DESIGN.md §6; the file web/templates/design/new_process.bpmn.xml,
    its texts escaped by Jinja's XML autoescaping). Its id is TEMPLATE_ID until the designer gives it the
    catalogue code."""
    return render_template("design/new_process.bpmn.xml", template_id=TEMPLATE_ID, name=name, first_step=first_step)
