"""The engine's BPMN findings in the reader's language. A finding's `message` is the engine's (English, as
`yicun deploy` and `yicun bpmn lint` print it); the modeler and the upload page show `text`: the message of a
known kind translated with its parameters (Chinese first), else the engine's words unchanged. The engine's
message stays in the finding beside it, so nothing is lost when a pattern does not match."""
from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from flask_babel import lazy_gettext as _l
from flask_babel.speaklater import LazyString

#: (pattern of the engine's message, its text with the pattern's named groups as parameters)
PATTERNS: tuple[tuple[re.Pattern[str], LazyString], ...] = tuple((re.compile(p, re.S), t) for p, t in (
    # conventions of DESIGN.md §6 (engine/bpmn/conventions.py)
    (r"^user task needs a Chinese name$", _l("用户任务需要中文名称。")),
    (r"^user task is not in the village, township or county lane$",
     _l("用户任务不在村、乡镇或县泳道中，无法确定由哪一级办理。")),
    (r"^user task has no form \(camunda:formKey\)$", _l("用户任务没有表单标识（camunda:formKey）。")),
    (r"^user task has no deadline \(a timer boundary event\)$", _l("用户任务没有办理时限（定时边界事件）。")),
    (r"^lane '(?P<lane>[^']*)' does not exist in Yicun.*$",
     _l("泳道 %(lane)s 不是益村的泳道：只能是 village（村）、township（乡镇）、county（县）。")),
    (r"^lane (?P<lane>\S+) must be named (?P<name>.+)$", _l("泳道 %(lane)s 应命名为“%(name)s”。")),
    (r"^lane '(?P<lane>[^']*)' \((?P<name>[^)]*)\) is missing$", _l("缺少泳道 %(lane)s（%(name)s）。")),
    (r"^(?P<tag>\w+) is in no lane$", _l("%(tag)s 不在任何泳道中。")),
    (r"^exclusive gateway has a flow with neither a condition nor the default mark$",
     _l("排他网关有一条出口既没有条件，也不是默认流。")),
    (r"^exclusive gateway has no default flow: make sure its conditions cover every case$",
     _l("排他网关没有默认流：请确认各条件覆盖了所有情况。")),
    (r"^no diagram interchange.*$", _l("文件没有图形信息（BPMNDiagram），建模器无法显示。")),
    (r"^sequence flow has no diagram edge$", _l("顺序流在图中没有画出。")),
    (r"^(?P<tag>\w+) has no diagram shape$", _l("%(tag)s 在图中没有画出。")),
    (r"^process name (?P<name>.*) differs from the catalogue name (?P<catalog>.*)$",
     _l("流程名称 %(name)s 与事项目录中的名称 %(catalog)s 不一致。")),
    (r"^property (?P<prop>\w+)=(?P<value>.*) differs from the catalogue's (?P<key>\w+)=(?P<catalog>.*)$",
     _l("流程属性 %(prop)s=%(value)s 与事项目录的 %(key)s=%(catalog)s 不一致。")),
    (r"^catalogue stage (?P<n>\d+) (?P<name>.*) has no user task of that name$",
     _l("事项目录中的环节 %(name)s 没有同名的用户任务。")),
    (r"^a catalogue file holds exactly one executable process, not (?P<n>\d+)$",
     _l("事项的流程文件只应有一个可执行流程，这个文件有 %(n)s 个。")),
    # refusals of deploy (engine/bpmn/loading.py, checks.py, metadata.py)
    (r"^form field '(?P<field>[^']*)': field ids are letters.*$",
     _l("表单字段 %(field)s：字段名只能由字母、数字和 _ 组成（最多 64 个），并以字母开头。")),
    (r"^form field '(?P<field>[^']*)': is a name of the expression language.*$",
     _l("表单字段 %(field)s：这是表达式语言的保留名称，请换一个。")),
    (r"^(?P<kind>\w+) uses a Camunda/JUEL expression \((?P<text>.*)\); write a plain expression.*$",
     _l("%(kind)s 用了 Camunda/JUEL 表达式 %(text)s；请写成简单表达式，如 decision == \"approve\"。")),
    (r"^(?P<kind>\w+) is a FEEL expression of Camunda 8/Zeebe \((?P<text>.*)\); write a plain expression.*$",
     _l("%(kind)s 是 Camunda 8/Zeebe 的 FEEL 表达式 %(text)s；请写成简单表达式，如 decision == \"approve\"。")),
    (r"^empty (?P<kind>\w+)$", _l("%(kind)s 为空。")),
    (r"^service and send tasks are not supported.*$",
     _l("不支持服务任务和发送任务：益村里没有谁会执行它们，案件会停在这里。")),
    (r"^duplicate id '(?P<id>[^']*)'.*$", _l("编号 %(id)s 重复：文件中每个元素的编号必须唯一。")),
    (r"^DOCTYPE (and ENTITY )?declarations are not allowed in BPMN files$",
     _l("BPMN 文件中不允许 DOCTYPE 和 ENTITY 声明。")),
    (r"^file is (?P<size>\d+) bytes; the limit is (?P<limit>\d+)$",
     _l("文件有 %(size)s 字节，超过上限 %(limit)s 字节。")),
    (r"^BPMN files must be encoded in UTF-8$", _l("BPMN 文件必须是 UTF-8 编码。")),
    (r"^property (?P<prop>\w+) must be a whole number of working days, not (?P<value>.*)$",
     _l("流程属性 %(prop)s 必须是整数个工作日，不能是 %(value)s。")),
    (r"^property (?P<prop>\w+) must be village, township or county$",
     _l("流程属性 %(prop)s 只能是 village、township 或 county。")),
    (r"^the promised limit may not exceed the legal limit$", _l("承诺时限不能超过法定时限。")),
    (r"^caseStatus must be one of .*$", _l("caseStatus 只能是 completed、rejected 或 withdrawn。")),
    (r"^call activity calls process '(?P<process>[^']*)', which is not in this file, not deployed.*$",
     _l("调用活动调用的流程 %(process)s 既不在这个文件里，也没有部署过；请先部署它，或与它一起上传部署。")),
    # process tests (engine/scenarios.py RunOutcome.findings): the first difference stays the engine's words
    (r"^process test '(?P<name>[^']*)' \((?P<source>[^)]*)\) step (?P<step>\d+) \((?P<what>[^)]*)\): (?P<problem>.*)$",
     _l("流程测试“%(name)s”（%(source)s）第 %(step)s 步（%(what)s）未通过：%(problem)s")),
    (r"^process tests \((?P<source>[^)]*)\): (?P<problem>.*)$",
     _l("流程测试（%(source)s）无法运行：%(problem)s")),
    (r"^not deployed: the file set is refused \((?P<files>.*)\)$",
     _l("没有部署：这组文件中有文件不能部署（%(files)s），一组文件要么全部部署，要么都不部署。")),
))


def translated(message: str) -> str:
    """The finding's message in the reader's language, or the engine's words if its kind is not listed."""
    for pattern, text in PATTERNS:
        found = pattern.match(message)
        if found:
            return str(text) % found.groupdict() if found.groupdict() else str(text)
    return message


def with_text(findings: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each finding with `text`: what a page shows (its `message` stays the engine's)."""
    return [dict(f, text=translated(str(f.get("message", "")))) for f in findings]
