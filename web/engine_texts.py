"""Texts the engine wrote into stored rows, read in the reader's language.

Card reasons (承诺时限将到期（2026-12-01）), notification messages (黄牌 YY-2026-000001: …), the lines of a
service-day digest (超期, 环节「初审」超时) and the reason of a publicity pause (公示 (id)) are stored as the
engine wrote them, in Chinese, when the card, the notification or the digest was made. The stored text is
the record; this module only shows it. Each form the engine writes is listed here once as a msgid with
its parameters; a stored text that matches one is shown through the catalogue (its parameters — a date, a
step's name, a case number — kept as stored), anything else (text a person typed, a form the engine
writes today but did not when the row was made) exactly as stored.
"""
from __future__ import annotations

import re
from functools import lru_cache

from flask_babel import gettext

from .i18n import is_english


def N_(msgid: str) -> str:  # noqa: N802  (gettext's name for "mark for extraction only")
    return msgid


#: The forms of the engine's stored texts (engine.cases.warnings, engine.service_day, engine.cases.clock_stops,
#: engine.cases.returns, engine.cases.casework, engine.cases.supervision).
FORMS: tuple[str, ...] = (
    N_("承诺时限将到期（%(day)s）"),
    N_("已超过承诺时限（%(day)s）"),
    N_("已超过法定时限（%(day)s）"),
    N_("环节「%(step)s」将到期（%(day)s）"),
    N_("环节「%(step)s」已超时（%(day)s）"),
    N_("环节「%(step)s」超时"),
    N_("超期"),
    N_("即将到期"),
    N_("暂停计时"),
    N_("公示 (%(element)s)"),
    # notifications of engine.cases.returns and engine.cases.casework
    N_("办件 %(case)s 被退回补正（%(step)s）：%(reason)s"),
    N_("延期申请 %(case)s：%(who)s 申请延期 %(days)s 个工作日，待您审批。理由：%(reason)s"),
    N_("延期申请 %(case)s 已批准，延期 %(days)s 个工作日"),
    N_("延期申请 %(case)s 未获批准：%(note)s"),
    # 督办 (engine.cases.supervision.notice): on a step first, so the case's form does not swallow the step
    N_("督办 %(case)s「%(step)s」（%(who)s）：%(message)s"),
    N_("督办 %(case)s（%(who)s）：%(message)s"),
)
#: A notification: the card's colour (or 无人领取: a step of the reader's unit that nobody claimed turned
#: yellow or red — engine.cases.warnings.notify_unclaimed), the case, the reason (itself one of FORMS).
NOTIFICATION = re.compile(r"^(?P<card>黄牌|红牌|无人领取) (?P<case>\S+): (?P<reason>.*)$", re.S)
NOTIFICATION_FORMS = {"黄牌": N_("黄牌 %(case)s：%(reason)s"), "红牌": N_("红牌 %(case)s：%(reason)s"),
                      "无人领取": N_("无人领取 %(case)s：%(reason)s")}


@lru_cache(maxsize=1)
def _patterns() -> tuple[tuple[re.Pattern[str], str], ...]:
    out = []
    for msgid in FORMS:
        pattern = re.sub(r"%\\\((\w+)\\\)s", r"(?P<\1>.+?)", re.escape(msgid))
        out.append((re.compile(f"^{pattern}$", re.S), msgid))
    return tuple(out)


def engine_text(text: str | None) -> str:
    """`text` in the current language when it is one of the engine's stored forms, else as stored."""
    if not text or not is_english():
        return text or ""
    note = NOTIFICATION.match(text)
    if note:
        return gettext(NOTIFICATION_FORMS[note["card"]], case=note["case"], reason=engine_text(note["reason"]))
    for pattern, msgid in _patterns():
        found = pattern.match(text)
        if found:
            return gettext(msgid, **found.groupdict()) if found.groupdict() else gettext(msgid)
    return text
