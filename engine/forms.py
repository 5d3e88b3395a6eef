"""Validation of submitted form data against a task's form (camunda:formData in the BPMN file):
types, required fields, enum options and constraints. A rejected form names every bad field."""
from __future__ import annotations

import copy
import json
import math
import re
from collections.abc import Mapping
from datetime import date
from typing import Any

from . import clock, patterns
from .errors import InvalidInput
from .expressions import SAFE_FUNCTIONS

MAX_FORM_BYTES = 64 * 1024
MAX_FORM_DEPTH = 4  # a form value is a scalar or a small list/object of scalars, never a deep structure
_FIELD_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,63}$")

#: Names the engine writes into every case when it is accepted: a form may show them, never change them.
CASE_FIELDS = frozenset({"case_number", "service_code", "applicant_name", "village_code", "village_name"})
#: Names a form may not use at all: they would shadow the functions of the expression language.
_FUNCTION_NAMES = frozenset(SAFE_FUNCTIONS) | {"True", "False", "None"}
RESERVED_FIELDS = CASE_FIELDS | _FUNCTION_NAMES

# C0/C1 control characters other than tab and newline; the Unicode line/paragraph separators; the
# bidirectional marks and overrides and the invisible characters (zero-width spaces and joiners, soft
# hyphen, BOM, Arabic letter mark), which make a name look other than what it is or two names look
# alike; and lone surrogates (bytes the terminal could not decode), which no database stores faithfully.
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\xad\u061c\u200b-\u200f\u2028-\u202e"
                      "\u2060-\u2069\ufeff\ud800-\udfff]")


def form_field_name_problem(field_id: str) -> str | None:
    """Why a form may not declare a field with this id (checked at deploy), or None. Case fields may be
    declared — they are shown read-only."""
    if not _FIELD_NAME.match(field_id):
        return "field ids are letters, digits and _ (at most 64), starting with a letter"
    if field_id in _FUNCTION_NAMES:
        return "is a name of the expression language; choose another id"
    return None


def control_characters(text: str) -> bool:
    """True when `text` holds characters no form field or name should carry."""
    return bool(_CONTROL.search(text))


def clean_text(value: Any, what: str, max_length: int, required: bool = True, field: str | None = None) -> str:
    """A name, reason or note typed by a user: stripped, bounded, free of control characters. Given
    `field`, a refusal names the form field it is about (so a page can show it there); its `reason`
    (text.required, text.too_long…) lets a page say it in the reader's language."""
    where = {"field": field} if field else {}
    if not isinstance(value, (str, type(None))):
        raise InvalidInput(f"{what} must be text", reason="text.not_text", **where)
    text = (value or "").strip()
    if required and not text:
        raise InvalidInput(f"{what} is required", reason="text.required", **where)
    if len(text) > max_length:
        raise InvalidInput(f"{what} is longer than {max_length} characters", reason="text.too_long",
                           max_length=max_length, **where)
    if control_characters(text):
        raise InvalidInput(f"{what} contains control characters", reason="text.control_characters", **where)
    return text


def _depth(value: Any, limit: int) -> int:
    """Nesting depth of a JSON-like value, giving up past `limit` (so a 10,000-deep list costs nothing)."""
    stack, deepest = [(value, 1)], 0
    while stack:
        item, level = stack.pop()
        deepest = max(deepest, level)
        if deepest > limit:
            return deepest
        if isinstance(item, dict):
            stack.extend((v, level + 1) for v in item.values())
        elif isinstance(item, (list, tuple)):
            stack.extend((v, level + 1) for v in item)
    return deepest


def validate(data: Any, fields: list[dict[str, Any]] | None, existing: Mapping[str, Any] | None = None, *,
             decisions: frozenset[str] | set[str] = frozenset(), step: str | None = None) -> dict[str, Any]:
    """Validate the data a step submits against its declared form; return a deep copy to store.

    Only the step's declared fields are accepted (DESIGN invariant 10): otherwise the village intake
    could submit the township's decision, and the township's review would then go through with an
    empty form. For the same reason a *decision* field (one a gateway of the process reads) counts as
    given only when this submission carries it — a value an earlier step left in the case data does not
    count — and a decision field the step declares but leaves empty is cleared, so the gateway after
    the step sees this step's answer and never an older one (a rework round's). Other required fields the
    case already holds (the applicant's facts from intake) count as given. Case fields (number,
    applicant, village) are shown by forms but never written by them.

    The copy matters: SpiffWorkflow shares nested values between tasks (SPIFFWORKFLOW.md §9).
    """
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise InvalidInput("form data must be a JSON object", reason="form.not_object")
    if _depth(data, MAX_FORM_DEPTH) > MAX_FORM_DEPTH:
        raise InvalidInput(f"form data is nested deeper than {MAX_FORM_DEPTH} levels", reason="form.too_deep",
                           max_depth=MAX_FORM_DEPTH)
    if len(json.dumps(data, ensure_ascii=False, default=str)) > MAX_FORM_BYTES:
        raise InvalidInput(f"form data is larger than {MAX_FORM_BYTES} bytes", reason="form.too_large",
                           max_bytes=MAX_FORM_BYTES)
    existing = existing or {}
    declared = {f["id"]: f for f in fields or []}
    where = f"step {step}" if step else "this step"
    errors: dict[str, str] = {}
    data = dict(data)
    for key in list(data):
        if not isinstance(key, str) or not _FIELD_NAME.match(key):
            errors[str(key)[:64]] = "field names are letters, digits and _ and start with a letter"
        elif key in CASE_FIELDS:
            if key in declared and data[key] == existing.get(key):
                del data[key]  # a read-only field posted back unchanged
            else:
                errors[key] = "is set when the case is accepted; a form cannot change it"
        elif key in RESERVED_FIELDS:
            errors[key] = "is a reserved name of the expression language"
        elif key not in declared:
            names = ", ".join(sorted(declared)) or "none"
            errors[key] = f"is not a field of {where} (its fields: {names})"
    for f in declared.values():
        fid, value = f["id"], data.get(f["id"])
        if fid in CASE_FIELDS or fid in errors:
            continue
        if value is None or value == "":
            held = fid not in decisions and existing.get(fid) not in (None, "")
            if f.get("required") and not held:
                errors[fid] = f"{f.get('label', fid)} is required"
            elif fid in decisions:
                data[fid] = None  # this step decides it: no answer is no answer, not an older one
            continue
        problem = _type_problem(f, value)
        if problem:
            errors[fid] = problem
            continue
        data[fid] = _typed(f.get("type", "string"), value)
        if _is_id_card(f) and isinstance(data[fid], str):
            problem = id_card_problem(data[fid])
            if problem:
                errors[fid] = problem
                continue
        if fid not in errors and f.get("constraints"):
            problem = _constraint_problem(data[fid], f["constraints"])
            if problem:
                errors[fid] = problem
    if errors:
        labels = {key: str(declared[key].get("label") or key) if key in declared else key for key in errors}
        raise InvalidInput("the form has errors", reason="form.invalid", fields=errors, labels=labels)
    return copy.deepcopy(data)


MAX_TEXT = 2000  # characters of a text field without its own maxlength
MAX_LONG = 10 ** 15
_ASCII_INT = re.compile(r"^[+-]?[0-9]{1,16}$")
_ASCII_DATE = re.compile(r"^([0-9]{4})-([0-9]{2})-([0-9]{2})$")
_TRUE, _FALSE = ("true", "1", "on", "yes"), ("false", "0", "off", "no")


def _type_problem(f: Mapping[str, Any], value: Any) -> str | None:
    """Why `value` is not a value of the field's type (ASCII digits only: full-width ones are refused, as
    are NaN/infinity, numbers beyond 10^15 and dates outside 1900–2199), or None."""
    kind = f.get("type", "string")
    if kind == "boolean":
        if isinstance(value, bool) or (isinstance(value, str) and value.lower() in _TRUE + _FALSE):
            return None
        return "must be true or false"
    if kind == "long":
        if isinstance(value, bool):
            return "must be a whole number"
        if isinstance(value, float):
            if not math.isfinite(value) or not value.is_integer():
                return "must be a whole number"
            value = int(value)
        if isinstance(value, str):
            if not _ASCII_INT.match(value.strip()):
                return "must be a whole number (digits 0-9)"
            value = int(value.strip())
        if not isinstance(value, int):
            return "must be a whole number"
        return None if abs(value) <= MAX_LONG else f"must be between -{MAX_LONG} and {MAX_LONG}"
    if kind == "enum":
        allowed = [o[0] for o in f.get("options", [])]
        return None if isinstance(value, str) and value in allowed else f"must be one of {', '.join(allowed)}"
    if kind == "date":
        match = _ASCII_DATE.match(value) if isinstance(value, str) else None
        if not match:
            return "must be a date YYYY-MM-DD"
        try:
            day = date(*(int(g) for g in match.groups()))
        except ValueError:
            return "must be a real date YYYY-MM-DD"
        return None if date(1900, 1, 1) <= day <= date(2199, 12, 31) else "must be a date between 1900 and 2199"
    if isinstance(value, float) and not math.isfinite(value):
        return "must be text or a finite number"
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        return "must be text"
    if isinstance(value, str):
        if control_characters(value):
            return "contains control characters"
        limit = f.get("constraints", {}).get("maxlength")
        if not (limit and str(limit).isdigit()) and len(value) > MAX_TEXT:
            return f"must be at most {MAX_TEXT} characters"
    return None


def _typed(kind: str, value: Any) -> Any:
    """The stored form of a value `_type_problem` accepted."""
    if kind == "boolean" and isinstance(value, str):
        return value.lower() in _TRUE
    if kind == "long":
        return int(value.strip()) if isinstance(value, str) else int(value)
    return value


# ------------------------------------------------------------------------------------- ID card numbers
_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"
_ID_SHAPE = re.compile(r"^[1-9][0-9]{16}[0-9X]$")


def _is_id_card(f: Mapping[str, Any]) -> bool:
    """居民身份证号码 fields: the `idcard` constraint, or the convention of ids ending in id_number."""
    return "idcard" in f.get("constraints", {}) or str(f.get("id", "")).endswith("id_number")


def id_card_problem(text: str) -> str | None:
    """Why `text` is not a valid 18-digit resident ID number (GB 11643-1999): ASCII digits, a real birth
    date, and the ISO 7064 MOD 11-2 check digit. None when it is valid."""
    value = text.strip().upper()
    if not _ID_SHAPE.match(value):
        return "must be an 18-character ID number: 17 digits 0-9 and a digit or X"
    try:
        born = date(int(value[6:10]), int(value[10:12]), int(value[12:14]))
    except ValueError:
        return "holds no real birth date"
    if not date(1900, 1, 1) <= born <= clock.local(clock.now()).date():
        return "holds a birth date out of range"
    total = sum(int(d) * w for d, w in zip(value[:17], _ID_WEIGHTS, strict=True))
    if value[17] != _ID_CHECK[total % 11]:
        return "has a wrong check digit (last character); check the number"
    return None


def _constraint_problem(value: Any, constraints: Mapping[str, str]) -> str | None:
    """camunda:validation constraints beyond `required`: minlength/maxlength/pattern (text), min/max."""
    try:
        if "min" in constraints and isinstance(value, (int, float)) and value < float(constraints["min"]):
            return f"must be at least {constraints['min']}"
        if "max" in constraints and isinstance(value, (int, float)) and value > float(constraints["max"]):
            return f"must be at most {constraints['max']}"
    except ValueError:
        return None  # a malformed bound is a lint error of the BPMN file, not the user's fault
    if isinstance(value, str):
        longest, shortest = constraints.get("maxlength", ""), constraints.get("minlength", "")
        if longest.isdigit() and len(value) > int(longest):
            return f"must be at most {longest} characters"
        if shortest.isdigit() and len(value) < int(shortest):
            return f"must be at least {shortest} characters"
        pattern = constraints.get("pattern")
        if pattern and len(value) <= patterns.MAX_MATCHED_LENGTH:
            try:  # RE2: linear time, so a pattern like (a+)+$ cannot hang a completion
                if not patterns.full_match(pattern, value):
                    return "has the wrong format"
            except patterns.PatternRejected:
                return None  # refused at deploy since RE2; an older version's pattern is the file's fault
        elif pattern:
            return "is too long"
    return None
