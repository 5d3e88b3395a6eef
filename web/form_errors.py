"""An engine refusal shown beside the form field it is about.

A form view makes one engine call; when the engine refuses (`InvalidInput`, `Conflict`, `Forbidden`,
`NotFound`), the page is shown again with what was typed and the refusal — in the reader's language, from
its reason (web.reasons) — next to the field its stable `reason` names. A reason no field of the form
claims is shown above the form — never lost, never a bare error page that throws the typed values away.
"""
from __future__ import annotations

import re
from collections.abc import Collection, Mapping

from flask_babel import lazy_gettext as _l
from flask_babel.speaklater import LazyString

from engine.errors import YicunError

from . import reasons

#: The key of a message that belongs to the whole form.
FORM = "_form"

#: reason → field name (the names the templates use).
REASON_FIELDS: Mapping[str, str] = {
    "user.username_invalid": "username", "user.exists": "username",
    "user.role_unknown": "role", "user.last_admin": "role",
    "user.unit_unknown": "unit", "user.role_level": "unit",
    "user.department_required": "department", "user.department_unknown": "department",
    "user.department_not_applicable": "department",
    "password.wrong_current": "current",
}
#: reason prefix → field: every other password-policy refusal is about the new password.
PREFIX_FIELDS: Mapping[str, str] = {"password.": "new"}


def field_of(exc: YicunError) -> str:
    """The field name an engine error is about, or FORM."""
    if exc.reason in REASON_FIELDS:
        return REASON_FIELDS[exc.reason]
    for prefix, field in PREFIX_FIELDS.items():
        if exc.reason.startswith(prefix):
            return field
    named = exc.details.get("field")  # text refusals (engine.forms.clean_text) say which field
    return named if isinstance(named, str) else FORM


def place(exc: YicunError, fields: Collection[str]) -> dict[str, str]:
    """{field: message} for a form with `fields`; a field the form does not have becomes FORM."""
    field = field_of(exc)
    return {field if field in fields else FORM: reasons.message(exc)}


#: an engine form refusal's per-field problem (engine.forms, engine.cases.intake: English) → the reader's
#: language. First match wins; `%(n)s` is the number the pattern captures.
_FIELD_PROBLEMS: tuple[tuple[re.Pattern[str], LazyString], ...] = tuple((re.compile(p), t) for p, t in (
    (r"is required$", _l("必填。")),
    (r"must be true or false", _l("请选择“是”或“否”。")),
    (r"must be a whole number", _l("须为整数。")),
    (r"must be a (real )?date", _l("须为有效日期（年-月-日）。")),
    (r"control characters", _l("含有不可见的控制字符，请重新输入。")),
    (r"(?:is longer than|must be at most) (?P<n>\d+) characters", _l("最多 %(n)s 个字。")),
    (r"must be at least (?P<n>\d+) characters", _l("至少 %(n)s 个字。")),
    (r"must be at least (?P<n>-?[\d.]+)$", _l("不能小于 %(n)s。")),
    (r"must be at most (?P<n>-?[\d.]+)$", _l("不能大于 %(n)s。")),
    (r"18-character ID number", _l("身份证号码须为 18 位：17 位数字加最后 1 位数字或 X（半角）。")),
    (r"no real birth date|birth date out of range", _l("身份证号码中的出生日期不对，请核对。")),
    (r"wrong check digit", _l("身份证号码校验位（最后一位）不对，请核对。")),
    (r"mobile number", _l("请填写 11 位手机号，或带区号的固定电话（如 0737-4221234）。")),
    (r"not a document of this item", _l("不是本事项要求的申请材料。")),
    (r"is not a field of", _l("不是本环节的表单项。")),
    (r"is set when the case is accepted", _l("受理时已确定，表单不能修改。")),
    (r"wrong format|too long|must be text", _l("格式不正确。")),
))


def field_problem(text: str) -> str:
    """One field's problem as the engine said it, in the reader's language (the engine's words if unknown)."""
    for pattern, message in _FIELD_PROBLEMS:
        found = pattern.search(text)
        if found:
            return str(message) % found.groupdict()
    return text


def place_all(exc: YicunError, fields: Collection[str]) -> dict[str, str]:
    """Like `place`, but a form refusal (`form.invalid`) puts each field's own problem beside that field
    (translated); the summary goes on top only for what no field of the page shows."""
    problems = exc.details.get("fields") if exc.reason == "form.invalid" else None
    if not isinstance(problems, Mapping) or not problems:
        return place(exc, fields)
    out: dict[str, str] = {}
    stray = []
    for name, text in problems.items():
        if name in fields:
            out[name] = field_problem(str(text))
        else:
            stray.append(f"{name}: {field_problem(str(text))}")
    if stray:
        out[FORM] = "；".join(stray)
    return out
