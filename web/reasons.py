"""An engine refusal in the reader's language, from its stable `reason` and its parameters.

The engine raises errors with a message for the command line (often "中文 / English") and a stable
`reason` with its parameters (`user.exists`, username=…). Pages do not show that message: they look the
reason up here and fill in the parameters, in Chinese or English (the msgids are Chinese, the English is
in the `en` catalogue like every other page string). A reason that is not in the table (a refusal that
has no page yet) gets the generic text of its kind, with the engine's own words as a detail below it
(web.errors). tests/test_web_i18n.py and tests/test_reasons.py fail when the engine raises a reason this
table does not know, when a raise does not pass the parameters its text needs, or when a text has no
English with the same parameters. Reasons only the command line meets (`cli.`, `db.`, `init.`) are not here.

Errors the web raises itself (web.guards, the views) are already written with gettext; they are not
listed here.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from flask_babel import lazy_gettext as _l
from flask_babel.speaklater import LazyString

from engine import clock
from engine.accounts import ROLE_LEVELS
from engine.errors import YicunError
from engine.vocab import CaseStatus, Level, Role, TaskState

from . import i18n  # as a module: web.i18n → web.auth → here, so its names are read when used

#: reason → message (Chinese msgid with %(name)s parameters from the error's details).
REASONS: Mapping[str, LazyString] = {
    # logging in
    "auth.failed": _l("用户名或密码错误。"),
    "auth.locked": _l("登录失败次数过多，已锁定，请于 %(until)s 后再试。"),
    "auth.disabled": _l("账号已停用，请联系系统管理员。"),
    # the password policy (engine.accounts.check_password_policy)
    "password.required": _l("请输入密码。"),
    "password.too_long": _l("密码不能超过 %(max_length)s 位。"),
    "password.control_characters": _l("密码不能含控制字符或换行。"),
    "password.too_short": _l("密码至少 %(min_length)s 位。"),
    "password.contains_username": _l("密码不能包含用户名。"),
    "password.one_kind": _l("密码不能只由一类字符组成（如全是数字），请混用字母、数字或符号。"),
    "password.too_simple": _l("密码重复字符太多，过于简单。"),
    "password.demo": _l("不能使用演示密码。"),
    "password.wrong_current": _l("当前密码不正确。"),
    "password.unchanged": _l("新密码不能与当前密码相同。"),
    # accounts
    "user.exists": _l("用户名 %(username)s 已存在。"),
    "user.not_found": _l("没有用户 %(username)s。"),
    "user.username_invalid": _l("用户名为 3–64 位英文字母、数字或 . _ -"),
    "user.role_unknown": _l("请从列表中选择角色。"),
    "user.unit_unknown": _l("没有代码为 %(unit)s 的单位。"),
    "user.role_level": _l("%(role)s只能设在%(levels)s级单位，%(unit_name)s是%(unit_level)s级。"),
    "user.department_required": _l("县级审批人员须指定部门。"),
    "user.department_unknown": _l("请从列表中选择部门。"),
    "user.department_not_applicable": _l("只有县级审批人员属于部门。"),
    "user.last_admin": _l("这是最后一个启用的管理员账号，请先设立另一个管理员。"),
    "users.page_invalid": _l("页码无效。"),
    "users.disable_self": _l("不能停用自己的账号。"),
    "users.change_own_password": _l("这个账号不能修改密码（未登录或已停用）。"),
    "users.administer": _l("只有系统管理员可以管理账号。"),
    # text typed into a form (engine.forms.clean_text): shown beside the field it is about
    "text.not_text": _l("格式不对，须为文字。"),
    "text.required": _l("此项必填。"),
    "text.too_long": _l("不能超过 %(max_length)s 个字。"),
    "text.control_characters": _l("不能含控制字符。"),
    # cases and tasks
    "case.not_found": _l("没有办件 %(case)s，或您无权查看。"),
    "task.not_found": _l("没有这个环节，或您无权查看。"),
    "task.claimed_by_other": _l("这个环节已被别人签收。"),
    "task.reassign_target": _l("%(username)s 不能办理这个环节（单位或部门不符）。"),
    "task.work": _l("您不能办理这个环节。"),
    "task.release": _l("别人签收的环节，您不能退回。"),
    "task.reassign": _l("您不能转办这个环节。"),
    "case.accept": _l("您不能为这个村受理申请。"),
    "case.withdraw": _l("您不能撤回这个办件。"),
    "case.pause": _l("您不经办这个办件，不能暂停计时。"),
    "case.pause_stops_legal_clock": _l("这种暂停会停止法定时限，只有审批层级的审批人员可以决定。"),
    "case.resume": _l("您不经办这个办件，不能恢复计时。"),
    "case.resume_legal_clock": _l("这种暂停只能由审批层级的审批人员结束。"),
    "case.extend": _l("延期须由审批层级的审批人员批准。"),
    "case.pause_missing": _l("办件标记为暂停计时，却没有暂停记录，请联系系统管理员。"),
    "page.limit_invalid": _l("每页条数无效。"),
    "page.cursor_invalid": _l("翻页位置无效，请从第一页重新开始。"),
    # the reports (engine.reports)
    "report.see": _l("只有监督人员、乡镇和县级审批人员可以查看报表。"),
    "report.measure_invalid": _l("没有这个统计项（%(measure)s），请从报表上点击数字进入。"),
    "report.breakdown_invalid": _l("没有这种分类（%(by)s），请从报表上的分类中选择。"),
    "report.filter_invalid": _l("筛选条件 %(key)s 的值“%(value)s”无效，请从报表上点击进入或重新选择。"),
    "report.sort_invalid": _l("请从列表中选择排序方式。"),
    "report.too_many_rows": _l("共 %(rows)s 行，超过下载上限 %(limit)s 行，请缩小筛选范围后再下载。"),
    "report.month_invalid": _l("月份“%(month)s”无效，请按“年-月”选择，如 2026-10。"),
    "report.month_future": _l("%(month)s 还没有到，没有可统计的数字，请选择本月或以前的月份。"),
    "report.order_invalid": _l("排名方式只能是按时办结率或好差评，请从页面上选择。"),
    "task.not_ready": _l("这个环节在流程中已不是待办，请刷新后再试。"),
    "case.status_invalid": _l("办件状态无效。"),
    "task.state_invalid": _l("环节状态无效。"),
    "case.id_not_found": _l("找不到这个办件（内部编号 %(case_id)s），请刷新页面；如仍出现，请联系系统管理员。"),
    "case.changed": _l("办件 %(case)s 刚被别人修改过，这一步没有办理，请刷新页面后再试。"),
    "case.not_open": _l("办件 %(case)s 的状态是“%(status)s”，不能再办理这一步。"),
    "task.not_open": _l("环节“%(step)s”的状态是“%(state)s”，不能再办理，请刷新页面查看办件的最新进度。"),
    # the inbox, 办件查询 and notifications (engine.queries.tasks/search, engine.cases.service/warnings)
    "task.reassign_same": _l("这个环节已经由 %(username)s 办理，请选择另一位同事。"),
    "inbox.tab_invalid": _l("待办分类无效，请从页面上的分类中选择。"),
    "inbox.service_invalid": _l("事项编码无效，请从列表中选择事项。"),
    "inbox.level_invalid": _l("层级只能是村、乡镇或县（区）。"),
    "inbox.warning_invalid": _l("预警颜色只能是绿、黄或红。"),
    "search.invalid": _l("搜索内容不能含控制字符，请重新输入。"),
    "search.too_long": _l("搜索内容不能超过 %(max_length)s 个字，请输入办件号或申请人姓名。"),
    "search.period_reversed": _l("结束日期（%(end)s）早于开始日期（%(start)s），请改正。"),
    "notification.ids_invalid": _l("一次最多标记 %(max_count)s 条通知。"),
    "task.not_claimed": _l("这个环节还没有人签收，无需退回。"),
    "task.changed": _l("这个环节刚被别人签收、退回或转办，请刷新页面后再试。"),
    "task.completed_by_other": _l("这个环节刚被别人办理完成，请刷新页面查看办件的最新进度。"),
    "village.not_found": _l("没有代码为 %(village)s 的村（社区），请从列表中选择受理的村。"),
    "acceptance.in_future": _l("受理时间不能晚于现在，请改正受理时间。"),
    "acceptance.too_early": _l("线下受理的申请须在 %(workdays)s 个工作日内补录：受理时间不能早于 %(earliest)s。"),
    "acceptance.invalid": _l("受理时间无效，请刷新页面重新填写。"),
    "service.not_found": _l("没有编码为 %(code)s 的已部署事项，请从事项列表中选择。"),
    "notice.not_found": _l("没有这份告知书，或您无权查看。"),
    "intake.bad_key": _l("表单已失效，请刷新页面后重新填写。"),
    "intake.bad_mode": _l("请选择材料不全时的处理方式。"),
    "intake.key_used": _l("这份表单已用于另一件申请，请重新打开受理页面填写。"),
    "task.return_at_village": _l("村级环节请直接向申请人一次性告知补正，“退回补正”用于乡镇、县级环节。"),
    # the SLA clock: pauses, resuming, extensions
    "pause.kind_unknown": _l("暂停计时的类型只能是补正、特别程序或公示，请重新选择。"),
    "pause.in_future": _l("暂停的开始时间不能晚于现在，请改正开始时间。"),
    "pause.too_far_back": _l("暂停最多补录 %(workdays)s 个工作日前的：开始时间不能早于 %(earliest)s，请改正。"),
    "pause.before_acceptance": _l("暂停不能早于办件的受理时间 %(earliest)s，请改正开始时间。"),
    "pause.overlaps": _l("暂停不能与上一次暂停重叠：开始时间不能早于上一次暂停结束的 %(earliest)s，请改正。"),
    "pause.publicity_running": _l("办件 %(case)s 正在公示，计时停到 %(until)s；公示结束后才能再暂停。"),
    "case.already_paused": _l("办件 %(case)s 已在暂停计时，不能再次暂停；需要时请先恢复计时。"),
    "case.not_paused": _l("办件 %(case)s 没有暂停计时，无需恢复。"),
    "resume.out_of_range": _l("恢复时间须在暂停开始（%(paused_at)s）与现在之间，请改正恢复时间。"),
    "extension.while_paused": _l("办件 %(case)s 正在暂停计时，请先恢复计时再延期。"),
    "extension.already_granted": _l("办件 %(case)s 已延期 %(workdays)s 个工作日；每个办件只能延期一次。"),
    "extension.workdays_invalid": _l("这个事项的延期为 1 到 %(max_workdays)s 个工作日，请改正延期天数。"),
    "extension.no_time_limit": _l("办件 %(case)s 没有办理时限，无需延期。"),
    "extension.overdue": _l("办件 %(case)s 已过期限（%(due)s），不能再延期：延期须在期限届满前申请。"),
    # comments, attachments and extension requests (engine.cases.casework, engine.files)
    "comment.add": _l("您不经办办件 %(case)s，不能填写意见。"),
    "attachment.add": _l("您不经办办件 %(case)s，不能上传附件。"),
    "attachment.not_a_file": _l("提交的不是文件，请重新选择要上传的文件。"),
    "attachment.empty": _l("没有选择文件，或文件是空的，请重新选择。"),
    "attachment.too_large": _l("文件超过 %(max_mb)s MB，不能上传；请压缩或分成几份后再传。"),
    "attachment.type_not_allowed": _l("只能上传 %(types)s 文件（按文件内容判断，不看扩展名）。"),
    "attachment.not_found": _l("没有这个附件，或您无权查看。"),
    "attachment.file_missing": _l("附件的文件在服务器上找不到了，请联系系统管理员。"),
    "attachment.remove": _l("只有上传人可以撤下这个附件。"),
    "attachment.already_removed": _l("这个附件已经撤下了。"),
    "extension.request": _l("只有办理办件 %(case)s 当前环节的人员可以申请延期。"),
    "extension.pending": _l("办件 %(case)s 已有一个待审批的延期申请，请等审批人员决定。"),
    "extension_request.not_found": _l("没有这个延期申请，或您无权查看。"),
    "extension.already_decided": _l("这个延期申请已经处理过了，请刷新页面。"),
    "extension.decision_invalid": _l("请选择批准或不批准。"),
    # 督办 and 情况说明 (engine.cases.supervision)
    "case.supervise": _l("只有管辖办件 %(case)s 的监督人员可以督办。"),
    "supervision.not_at_risk": _l("办件 %(case)s 及其当前环节都在期限内，督办只用于临期或超期的办件。"),
    "card.not_found": _l("没有这张黄牌/红牌，或您无权查看。"),
    "card.explain": _l("只有黄牌/红牌所列的责任人或所在单位的办理人员可以填写情况说明。"),
    "card.already_explained": _l("这张黄牌/红牌已有情况说明，每张只能填写一次。"),
    # form data of a step
    "form.not_object": _l("提交的表单数据格式不对（须为 JSON 对象），什么也没有改动。"),
    "form.too_deep": _l("提交的表单数据嵌套超过 %(max_depth)s 层，什么也没有改动。"),
    "form.too_large": _l("提交的表单数据超过 %(max_bytes)s 字节，请精简后重新提交。"),
    "form.invalid": _l("表单中这些项有误：%(names)s。请修改后重新提交。"),
    # what the database refuses to hold, and a busy database: nothing was changed
    "input.nul": _l("输入的文字含有空字符（NUL），无法保存，请删去后重新提交。"),
    "input.out_of_range": _l("输入的数值超出了系统能保存的范围，什么也没有改动，请检查后重新提交。"),
    "database.busy": _l("系统正忙于另一项修改，这一步没有办理，请稍后再试。"),
    # units, processes, incidents, service days
    "unit.not_found": _l("没有代码为 %(unit)s 的单位，请核对单位代码。"),
    "unit.level_unknown": _l("单位层级只能是市、县（区）、乡镇或村。"),
    "unit.phone_invalid": _l("请填写 11 位手机号，或带区号的固定电话（如 0737-4221234）。"),
    "units.page_invalid": _l("页码无效。"),
    "units.administer": _l("只有系统管理员可以设置单位的联系方式。"),
    "process.not_deployed": _l("事项 %(service)s 还没有部署流程，暂不能受理；请流程设计人员先部署。"),
    "process.model_only": _l("这个事项的流程只部署为模型，不能运行；请流程设计人员部署可运行的版本。"),
    "process.version_not_found": _l("没有流程版本 %(version_id)s。"),
    "process.not_found": _l("没有流程 %(process)s：它既未部署，也不在服务事项目录中。"),
    "process.version_unknown": _l("流程 %(process)s 没有版本 v%(version)s（已部署的版本：%(versions)s）。"),
    "incident.not_found": _l("没有故障 %(incident_id)s，或您无权查看。"),
    "incident.already_resolved": _l("故障 %(incident_id)s 已处理完毕，无需再处理，请刷新页面。"),
    "incident.status_invalid": _l("故障状态只能是待处理、已处理或全部。"),
    "service_day.not_found": _l("单位 %(unit)s 没有 %(day)s 的服务日摘要。"),
    "service_day.none_yet": _l("单位 %(unit)s 还没有服务日摘要。"),
    # the process itself failed: nothing was done (the engine's own words follow as a detail)
    "workflow.failed": _l("流程运行出错，这一步没有办理。"),
    "workflow.crashed": _l("流程运行出现意外错误，这一步没有办理，请联系系统管理员。"),
    "workflow.refused": _l("流程中的表达式未通过安全检查，这一步没有办理。"),
    "workflow.endless_loop": _l("流程陷入无休止的循环，这一步没有办理。"),
    "workflow.stalled": _l("流程会停在“%(element)s”，系统中没有任何操作能让它继续，这一步没有办理。"),
    "workflow.no_end": _l("流程没有到达结束事件，办件不能办结，这一步没有办理。"),
    "workflow.unreadable": _l("办件的流程数据无法读取，请联系系统管理员。"),
    "workflow.too_large": _l("办件 %(case)s 的数据超过了允许的大小（流程复制了太多数据），这一步没有办理。"),
    "process.deploy": _l("您没有部署流程的权限。"),
    # migrating running cases to another version (engine.cases.migration)
    "process.migrate": _l("只有流程设计人员可以迁移办理中的办件或撤销迁移。"),
    "migration.version_not_found": _l("流程 %(process)s 没有版本 v%(version)s。"),
    "migration.target_model_only": _l("流程 %(process)s 的 v%(version)s 只部署为模型，办件不能迁移到这个版本。"),
    "migration.too_many_cases": _l("一次最多指定 %(limit)s 个办件编号。"),
    "migration.limit_invalid": _l("每页条数应为 1 至 %(max)s。"),
    "migration.cursor_invalid": _l("翻页位置无效，请从第一页重新开始。"),
    "migration.batch_not_found": _l("没有迁移批次 %(batch)s。"),
    "migration.batch_target": _l("迁移批次 %(batch)s 是迁移到 v%(version)s 的，不能用于其他版本。"),
    "migration.case_not_in_batch": _l("迁移批次 %(batch)s 没有迁移办件 %(case)s。"),
    "migration.closed_since": _l("办件 %(case)s 迁移后已经结束，保持现状。"),
    "migration.moved_on": _l("办件 %(case)s 迁移后已继续办理（环节已完成、计时器已触发或已暂停计时），"
                             "撤销迁移会抹掉这些办理，因此保持现状；如需回到旧版本，请把它迁移到旧版本。"),
    # process tests (engine/scenarios.py)
    "scenario.invalid": _l("流程测试文件 %(file)s 有误：%(problem)s"),
    "scenario.no_file": _l("流程 %(process)s 还没有测试场景文件。"),
    "scenario.case_open": _l("办件 %(case)s 尚未办结：只能从已办结的办件录制测试场景。"),
    "scenario.village_unknown": _l("%(village)s 不是种子组织树中的村，测试场景不能在这里受理。"),
    "scenario.process_missing": _l("文件中没有可运行的流程 %(process)s，无法运行它的测试场景。"),
    "incident.see": _l("只有监督人员和系统管理员可以查看故障。"),
    # 办件查询 and the 好差评 rating (no login: engine.ratelimit, queries.public, cases.ratings)
    "lookup.too_many": _l("查询过于频繁，请 %(minutes)s 分钟后再试。"),
    "lookup.not_found": _l("未找到：请核对办件号和查询码。"),
    "rating.not_closed": _l("办件 %(case)s 尚未办结，办结后才能评价。"),
    "rating.already_given": _l("办件 %(case)s 已经评价过，每个办件只能评价一次。"),
    "rating.score_invalid": _l("请选择评价等级。"),
    # the working-day calendar: publishing a year's holiday schedule (engine.calendar_admin)
    "calendar.administer": _l("只有系统管理员可以发布节假日安排。"),
    "calendar.text_invalid": _l("节假日安排须为文字，每行一个时段。"),
    "calendar.text_too_long": _l("节假日安排不能超过 %(max_length)s 个字。"),
    "calendar.too_many_lines": _l("节假日安排不能超过 %(max_lines)s 行。"),
    "calendar.year_invalid": _l("年份须在 %(min)s 至 %(max)s 年之间。"),
    "calendar.days_empty": _l("请填写节假日安排，每行一个时段，如“2027-02-06~2027-02-13 春节”。"),
    "calendar.too_many_days": _l("节假日安排最多 %(max_days)s 天，现有 %(count)s 天。"),
    "calendar.days_invalid": _l("节假日安排有 %(count)s 处问题（见下），什么也没有保存。"),
    "calendar.no_holidays": _l("安排中没有一天节假日：请把放假的时段也列上。"),
    "calendar.year_known": _l("%(year)s 年的安排已由%(source)s提供。如国务院发布了更正，请勾选“更正”后再发布。"),
    # …and one line of it (the `problems` of calendar.days_invalid, shown line by line)
    "calendar.line_unreadable": _l("第 %(line)s 行看不懂：应为“日期 名称”或“起始日期~结束日期 名称”。"),
    "calendar.date_invalid": _l("第 %(line)s 行：“%(text)s”不是有效日期（年-月-日）。"),
    "calendar.range_invalid": _l("第 %(line)s 行：结束日期早于起始日期。"),
    "calendar.range_too_long": _l("第 %(line)s 行：一个时段不能超过 %(max_days)s 天。"),
    "calendar.kind_unknown": _l("第 %(line)s 行（%(day)s）：只能是放假或调休上班。"),
    "calendar.day_outside_year": _l("第 %(line)s 行：%(day)s 不在 %(year)s 年内。"),
    "calendar.day_duplicate": _l("第 %(line)s 行：%(day)s 已在第 %(first_line)s 行列出。"),
    "calendar.name_missing": _l("第 %(line)s 行（%(day)s）：请写明名称，如“春节”或“调休上班”。"),
    "calendar.name_too_long": _l("第 %(line)s 行（%(day)s）：名称不能超过 %(max_length)s 个字。"),
    "calendar.name_invalid": _l("第 %(line)s 行（%(day)s）：名称含有控制字符。"),
    "calendar.workday_not_weekend": _l("第 %(line)s 行：%(day)s 不是周末，调休上班日只能是周六或周日。"),
    "calendar.holiday_on_weekend": _l("第 %(line)s 行：%(day)s 是周末，本来就休息；只有在含工作日的假期内才列入。"),
}


#: Reasons whose page also shows the engine's own words below the translation, as a detail for whoever
#: investigates (which element failed, and how).
WITH_DETAIL = ("workflow.",)


def _or(labels: list[str]) -> str:
    return " or ".join(labels) if i18n.is_english() else "或".join(labels)


def _label(enum: type[Role] | type[Level] | type[CaseStatus] | type[TaskState], value: Any) -> str:
    try:
        return enum(value).label("en" if i18n.is_english() else "zh")
    except ValueError:
        return str(value)


def _role_level(details: Mapping[str, Any]) -> dict[str, Any]:
    role = details.get("role")
    return {"role": _label(Role, role), "unit_level": _label(Level, details.get("unit_level")),
            "levels": _or([_label(Level, lv) for lv in ROLE_LEVELS.get(str(role), ())])}


def _locked(details: Mapping[str, Any]) -> dict[str, Any]:
    until = details.get("until")
    return {"until": clock.local(datetime.fromisoformat(until)).strftime("%H:%M")} if isinstance(until, str) else {}


def _moments(*names: str) -> Callable[[Mapping[str, Any]], dict[str, Any]]:
    """Instants the engine passes as ISO text (`earliest`, `due`…), shown as the local date and time."""
    def shown(details: Mapping[str, Any]) -> dict[str, Any]:
        return {name: clock.local(datetime.fromisoformat(details[name])).strftime("%Y-%m-%d %H:%M")
                for name in names if isinstance(details.get(name), str)}
    return shown


def _listed(name: str) -> Callable[[Mapping[str, Any]], dict[str, Any]]:
    """A list the engine passes as "A, B, C" (the file types allowed), joined as the reader's language does."""
    def shown(details: Mapping[str, Any]) -> dict[str, Any]:
        value = details.get(name)
        if not isinstance(value, str):
            return {}
        *first, last = value.split(", ")
        comma, word = (", ", " or ") if i18n.is_english() else ("、", " 或 ")
        return {name: comma.join(first) + word + last if first else last}
    return shown


def _case_status(details: Mapping[str, Any]) -> dict[str, Any]:
    return {"status": _label(CaseStatus, details.get("status"))}


def _task_state(details: Mapping[str, Any]) -> dict[str, Any]:
    return {"state": _label(TaskState, details.get("state"))}


#: who already knows a year of the working-day calendar (engine.workdays.SOURCE_*)
CALENDAR_SOURCES: Mapping[str, LazyString] = {
    "yicun": _l("本系统已发布的安排"), "calendar.yaml": _l("日历配置文件 calendar.yaml"),
    "chinese-calendar": _l("内置的 chinese-calendar 日历"),
}


def _calendar_source(details: Mapping[str, Any]) -> dict[str, Any]:
    source = details.get("source")
    return {"source": str(CALENDAR_SOURCES.get(str(source), source))}


def _field_names(details: Mapping[str, Any]) -> dict[str, Any]:
    """The fields a refused form got wrong, by the labels the process gave them (ids where it gave none)."""
    labels = details.get("labels")
    if not isinstance(labels, Mapping) or not labels:
        return {}
    return {"names": (", " if i18n.is_english() else "、").join(str(name) for name in labels.values())}


#: reason → the parameters its message needs beyond the error's details (labels in the reader's language).
PARAMETERS: Mapping[str, Callable[[Mapping[str, Any]], dict[str, Any]]] = {
    "user.role_level": _role_level,
    "auth.locked": _locked,
    "case.not_open": _case_status,
    "task.not_open": _task_state,
    "form.invalid": _field_names,
    "acceptance.too_early": _moments("earliest"),
    "pause.too_far_back": _moments("earliest"),
    "pause.before_acceptance": _moments("earliest"),
    "pause.overlaps": _moments("earliest"),
    "pause.publicity_running": _moments("until"),
    "resume.out_of_range": _moments("paused_at"),
    "extension.overdue": _moments("due"),
    "attachment.type_not_allowed": _listed("types"),
    "calendar.year_known": _calendar_source,
}


def translated(exc: YicunError) -> str | None:
    """The refusal in the current language, or None when the table has no text for it (or the error
    lacks a parameter its text needs: a change in the engine must not turn a refusal into a 500)."""
    text = REASONS.get(exc.reason)
    if text is None:
        return None
    params = dict(exc.details)
    extra = PARAMETERS.get(exc.reason)
    try:
        if extra is not None:
            params.update(extra(exc.details))
        return str(text) % params
    except (KeyError, TypeError, ValueError):
        return None


def message(exc: YicunError) -> str:
    """What a page shows for an engine error: the translated refusal, else the engine's own message."""
    return translated(exc) or exc.message
