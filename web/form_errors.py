"""An engine refusal shown beside the form field it is about.

A form view makes one engine call; when the engine refuses (`InvalidInput`, `Conflict`, `Forbidden`,
`NotFound`), the page is shown again with what was typed and the refusal — in the reader's language, from
its reason (web.reasons) — next to the field its stable `reason` names. A reason no field of the form
claims is shown above the form — never lost, never a bare error page that throws the typed values away.
"""
from __future__ import annotations

from collections.abc import Collection, Mapping

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
