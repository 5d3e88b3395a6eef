"""The engine's words: every closed set of stored values, each with its Chinese and English name.

Why one module: the same strings (roles, levels, statuses, pause kinds…) were spelled out in seven
files, and pages showed them raw. Each set is a `StrEnum`, so a member *is* the stored string
(`Role.CLERK == "clerk"`), columns and JSON keep their values, and `.zh`/`.en` give the labels the web
and the CLI print. Nothing here imports anything of ours.
"""
from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum


class _Named(StrEnum):
    """A stored value with a Chinese and an English label (both from `_LABELS` of the subclass)."""

    @property
    def zh(self) -> str:
        return _LABELS[type(self).__name__][self.value][0]

    @property
    def en(self) -> str:
        return _LABELS[type(self).__name__][self.value][1]

    def label(self, lang: str = "zh") -> str:
        return self.en if lang.startswith("en") else self.zh

    @classmethod
    def values(cls) -> tuple[str, ...]:
        return tuple(m.value for m in cls)

    @classmethod
    def parse(cls, value: str, what: str | None = None) -> _Named:
        """The member for `value`, or a ValueError naming the allowed values (callers turn it into
        InvalidInput; a typo must never look like 'nothing matched')."""
        try:
            return cls(value)
        except ValueError:
            raise ValueError(f"{what or cls.__name__} must be one of {', '.join(cls.values())}, "
                             f"not {value!r}") from None


class Role(_Named):
    CLERK = "clerk"
    AGENT = "agent"
    TOWNSHIP_OFFICER = "township_officer"
    COUNTY_OFFICER = "county_officer"
    SUPERVISOR = "supervisor"
    DESIGNER = "designer"
    ADMIN = "admin"
    #: The person at the server's shell running `yicun` without --as; never stored in `users`.
    OPERATOR = "operator"


#: Roles a user row may have (the operator is not a user).
USER_ROLES: tuple[str, ...] = tuple(r.value for r in Role if r is not Role.OPERATOR)
#: Roles that work tasks of their own unit (and, for county officers, of their department).
WORKER_ROLES: frozenset[str] = frozenset({Role.CLERK, Role.AGENT, Role.TOWNSHIP_OFFICER, Role.COUNTY_OFFICER})
#: Roles that decide for their level: they approve extensions and stop the legal clock.
OFFICER_ROLES: frozenset[str] = frozenset({Role.TOWNSHIP_OFFICER, Role.COUNTY_OFFICER})


class Level(_Named):
    CITY = "city"
    COUNTY = "county"
    TOWNSHIP = "township"
    VILLAGE = "village"


#: Levels from the top down; a unit's level is its depth in the tree.
LEVELS: tuple[str, ...] = (Level.CITY, Level.COUNTY, Level.TOWNSHIP, Level.VILLAGE)


class CaseStatus(_Named):
    OPEN = "open"
    COMPLETED = "completed"
    REJECTED = "rejected"
    WITHDRAWN = "withdrawn"


#: The statuses an end event may give a case (its `caseStatus` property).
END_STATUSES: tuple[str, ...] = (CaseStatus.COMPLETED, CaseStatus.REJECTED, CaseStatus.WITHDRAWN)


class TaskState(_Named):
    READY = "ready"
    COMPLETED = "completed"
    CANCELLED = "cancelled"


class TimerState(_Named):
    ARMED = "armed"
    FIRED = "fired"
    CANCELLED = "cancelled"
    PAUSED = "paused"
    FAILED = "failed"
    HELD = "held"


class WarningLevel(_Named):
    GREEN = "green"
    YELLOW = "yellow"
    RED = "red"


class CardColour(_Named):
    YELLOW = "yellow"
    RED = "red"


class PauseKind(_Named):
    SUPPLEMENT = "supplement"
    SPECIAL = "special"
    PUBLICITY = "publicity"


class CasePhase(_Named):
    """Where a case stands, in the words of 办件查询 (engine.queries.public): its status, and while it is
    open whether any step is done yet and whether its clock stands still (and why)."""
    ACCEPTED = "accepted"
    PROCESSING = "processing"
    SUPPLEMENT = "supplement"
    SPECIAL = "special"
    PUBLICITY = "publicity"
    COMPLETED = "completed"
    REJECTED = "rejected"
    WITHDRAWN = "withdrawn"


#: The 好差评 levels a citizen may give a closed case (`ratings.score`), best first: score → (Chinese, English).
RATING_SCORES: Mapping[int, tuple[str, str]] = {
    5: ("非常满意", "very satisfied"), 4: ("满意", "satisfied"), 3: ("基本满意", "fairly satisfied"),
    2: ("不满意", "dissatisfied"), 1: ("非常不满意", "very dissatisfied"),
}


class IncidentStatus(_Named):
    OPEN = "open"
    RESOLVED = "resolved"


class AuditAction(_Named):
    """What an audit event records (`audit_events.action`)."""
    CASE_STARTED = "case.started"
    CASE_BACKDATED = "case.backdated"
    CASE_DOCUMENTS_CHECKED = "case.documents_checked"
    INTAKE_NOTICE_ISSUED = "intake.notice_issued"
    INTAKE_REFUSED = "intake.refused"
    CASE_PAUSED = "case.paused"
    CASE_PAUSED_BACKDATED = "case.paused_backdated"
    CASE_RESUMED = "case.resumed"
    CASE_EXTENDED = "case.extended"
    CASE_PUBLICITY = "case.publicity"
    CASE_WITHDRAWN = "case.withdrawn"
    CASE_CLOSED = "case.closed"
    CASE_RATED = "case.rated"
    CASE_SUPERVISED = "case.supervised"
    COMMENT_ADDED = "comment.added"
    ATTACHMENT_ADDED = "attachment.added"
    ATTACHMENT_REMOVED = "attachment.removed"
    EXTENSION_REQUESTED = "extension.requested"
    EXTENSION_REJECTED = "extension.rejected"
    TASK_OPENED = "task.opened"
    TASK_CLAIMED = "task.claimed"
    TASK_UNCLAIMED = "task.unclaimed"
    TASK_REASSIGNED = "task.reassigned"
    TASK_COMPLETED = "task.completed"
    TASK_RETURNED = "task.returned"
    TASK_CANCELLED = "task.cancelled"
    TIMER_FIRED = "timer.fired"
    CARD_YELLOW = "card.yellow"
    CARD_RED = "card.red"
    CARD_EXPLAINED = "card.explained"
    PROCESS_DEPLOYED = "process.deployed"
    PROCESS_MIGRATED = "process.migrated"
    PROCESS_SCENARIOS_OVERRIDDEN = "process.scenarios_overridden"
    PROCESS_MIGRATION_ROLLED_BACK = "process.migration_rolled_back"
    CASE_MIGRATED = "case.migrated"
    CASE_MIGRATION_ROLLED_BACK = "case.migration_rolled_back"
    INCIDENT_OPENED = "incident.opened"
    INCIDENT_FAILED = "incident.failed"
    INCIDENT_RETRY = "incident.retry"
    INCIDENT_RESOLVED = "incident.resolved"
    USER_CREATED = "user.created"
    USER_UPDATED = "user.updated"
    USER_DISABLED = "user.disabled"
    USER_ENABLED = "user.enabled"
    USER_PASSWORD_RESET = "user.password_reset"
    USER_PASSWORD_CHANGED = "user.password_changed"
    USER_LOGIN_FAILED = "user.login_failed"
    USER_LOCKED = "user.locked"
    UNIT_UPDATED = "unit.updated"
    CALENDAR_PUBLISHED = "calendar.published"
    CASE_DUES_RECOMPUTED = "case.dues_recomputed"


#: County departments a task's candidate group may name: Chinese name → short code (stable, stored).
DEPARTMENTS: Mapping[str, str] = {
    "民政": "mz", "人社": "rs", "医保": "yb", "卫健": "wj", "公安": "ga", "自然资源": "zr",
    "农业农村": "ny", "林业": "ly", "残联": "cl", "司法": "sf", "退役军人": "ty", "教育": "jy",
    "水利": "sl", "住建": "zj", "市场监管": "sc",
}

_LABELS: dict[str, dict[str, tuple[str, str]]] = {
    "Role": {
        "clerk": ("便民服务员", "convenience clerk"), "agent": ("全程代办员", "full-process agent"),
        "township_officer": ("乡镇审批人员", "township officer"), "county_officer": ("县级审批人员", "county officer"),
        "supervisor": ("监督人员", "supervisor"), "designer": ("流程设计人员", "process designer"),
        "admin": ("系统管理员", "administrator"), "operator": ("服务器操作员", "server operator"),
    },
    "Level": {"city": ("市", "city"), "county": ("县（区）", "county"), "township": ("乡镇", "township"),
              "village": ("村", "village")},
    "CaseStatus": {"open": ("办理中", "open"), "completed": ("办结", "completed"),
                   "rejected": ("不予办理", "rejected"), "withdrawn": ("撤回", "withdrawn")},
    "TaskState": {"ready": ("待办", "ready"), "completed": ("已办", "completed"),
                  "cancelled": ("已取消", "cancelled")},
    "TimerState": {"armed": ("计时中", "armed"), "fired": ("已到期", "fired"), "cancelled": ("已取消", "cancelled"),
                   "paused": ("已暂停", "paused"), "failed": ("故障", "failed"), "held": ("挂起", "held")},
    "WarningLevel": {"green": ("正常", "on time"), "yellow": ("临期", "due soon"), "red": ("超期", "overdue")},
    "CardColour": {"yellow": ("黄牌", "yellow card"), "red": ("红牌", "red card")},
    "PauseKind": {"supplement": ("补正", "awaiting documents"), "special": ("特别程序", "special procedure"),
                  "publicity": ("公示", "publicity")},
    "IncidentStatus": {"open": ("待处理", "open"), "resolved": ("已处理", "resolved")},
    "CasePhase": {"accepted": ("受理中", "accepted"), "processing": ("办理中", "in progress"),
                  "supplement": ("补正中", "waiting for documents"),
                  "special": ("特别程序中", "in a special procedure"), "publicity": ("公示中", "on public notice"),
                  "completed": ("已办结", "completed"), "rejected": ("不予办理", "rejected"),
                  "withdrawn": ("已撤回", "withdrawn")},
    "AuditAction": {
        "case.started": ("受理", "accepted"), "case.backdated": ("补录受理时间", "acceptance back-dated"),
        "case.documents_checked": ("核对申请材料", "documents checked"),
        "intake.notice_issued": ("出具一次性告知书", "notice of missing documents issued"),
        "intake.refused": ("不予受理", "application not accepted"),
        "case.paused": ("暂停计时", "clock paused"), "case.paused_backdated": ("补录暂停", "pause back-dated"),
        "case.resumed": ("恢复计时", "clock resumed"), "case.extended": ("延期", "extended"),
        "case.publicity": ("公示", "publicity"), "case.withdrawn": ("撤回", "withdrawn"),
        "case.closed": ("办结", "closed"), "task.opened": ("环节开始", "step opened"),
        "case.rated": ("好差评", "rated by the applicant"),
        "comment.added": ("填写意见", "comment added"), "attachment.added": ("上传附件", "attachment added"),
        "attachment.removed": ("撤下附件", "attachment removed"),
        "extension.requested": ("申请延期", "extension requested"),
        "extension.rejected": ("延期申请未获批准", "extension request refused"),
        "task.claimed": ("签收", "claimed"), "task.unclaimed": ("退回待办", "released"),
        "task.reassigned": ("转办", "reassigned"), "task.completed": ("办理完成", "step completed"),
        "task.returned": ("退回补正", "returned for documents"),
        "task.cancelled": ("环节取消", "step cancelled"), "timer.fired": ("时限到期", "deadline reached"),
        "card.yellow": ("黄牌", "yellow card"), "card.red": ("红牌", "red card"),
        "case.supervised": ("督办", "supervisor's reminder"),
        "card.explained": ("填写情况说明", "card explained"),
        "process.deployed": ("部署流程", "process deployed"),
        "process.migrated": ("迁移在办案件", "running cases migrated"),
        "process.scenarios_overridden": ("流程测试未通过仍部署", "deployed despite failing process tests"),
        "process.migration_rolled_back": ("撤销迁移", "migration rolled back"),
        "case.migrated": ("迁移到新版本", "moved to another version"),
        "case.migration_rolled_back": ("撤销迁移，回到原版本", "migration rolled back"),
        "incident.opened": ("故障登记", "incident opened"),
        "incident.failed": ("故障重现", "incident failed again"), "incident.retry": ("故障重试", "incident retried"),
        "incident.resolved": ("故障处理完毕", "incident resolved"),
        "user.created": ("新建账号", "account created"), "user.updated": ("修改账号", "account changed"),
        "user.disabled": ("停用账号", "account disabled"), "user.enabled": ("启用账号", "account enabled"),
        "user.password_reset": ("重置密码", "password reset"),
        "user.password_changed": ("修改密码", "password changed"),
        "user.login_failed": ("登录失败", "login failed"), "user.locked": ("账号锁定", "login locked"),
        "unit.updated": ("修改单位联系方式", "unit contact details changed"),
        "calendar.published": ("发布节假日安排", "holiday schedule published"),
        "case.dues_recomputed": ("按新工作日历重算期限", "due dates recounted on the new calendar"),
    },
}
