"""Validation of submitted form data against a task's form (camunda:formData in the BPMN file):
types, required fields, enum options and constraints. A rejected form names every bad field."""
from __future__ import annotations

import copy
import json
import re
from datetime import datetime
from typing import Any, Mapping

from .errors import InvalidInput

MAX_FORM_BYTES = 64 * 1024
_FIELD_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,63}$")


def validate(data: Any, fields: list[dict[str, Any]] | None,
                existing: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Validate submitted data against the task's form (types, required, options); return a deep copy.

    A required field the case already holds (e.g. the applicant's name from intake) counts as given.
    The copy matters: SpiffWorkflow shares nested values between tasks (SPIFFWORKFLOW.md §9).
    """
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise InvalidInput("form data must be a JSON object")
    if len(json.dumps(data, ensure_ascii=False, default=str)) > MAX_FORM_BYTES:
        raise InvalidInput(f"form data is larger than {MAX_FORM_BYTES} bytes")
    errors: dict[str, str] = {}
    for key in data:
        if not isinstance(key, str) or not _FIELD_NAME.match(key):
            errors[str(key)] = "field names are letters, digits and _ and start with a letter"
    for f in fields or []:
        fid, value = f["id"], data.get(f["id"])
        if value is None or value == "":
            if f.get("required") and (existing or {}).get(fid) in (None, ""):
                errors[fid] = f"{f.get('label', fid)} is required"
            continue
        kind = f.get("type", "string")
        if kind == "boolean":
            if isinstance(value, str) and value.lower() in ("true", "false", "1", "0", "on", "yes", "no"):
                data[fid] = value.lower() in ("true", "1", "on", "yes")
            elif not isinstance(value, bool):
                errors[fid] = "must be true or false"
        elif kind == "long":
            try:
                if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
                    raise ValueError
                data[fid] = int(value)
            except (TypeError, ValueError):
                errors[fid] = "must be a whole number"
        elif kind == "enum":
            allowed = [o[0] for o in f.get("options", [])]
            if value not in allowed:
                errors[fid] = f"must be one of {', '.join(allowed)}"
        elif kind == "date":
            try:
                datetime.strptime(str(value), "%Y-%m-%d")
            except ValueError:
                errors[fid] = "must be a date YYYY-MM-DD"
        elif not isinstance(value, (str, int, float)):
            errors[fid] = "must be text"
        if fid not in errors and f.get("constraints"):
            problem = _constraint_problem(data[fid], f["constraints"])
            if problem:
                errors[fid] = problem
    if errors:
        raise InvalidInput("the form has errors", fields=errors)
    return copy.deepcopy(data)


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
        if "maxlength" in constraints and constraints["maxlength"].isdigit() and len(value) > int(constraints["maxlength"]):
            return f"must be at most {constraints['maxlength']} characters"
        if "minlength" in constraints and constraints["minlength"].isdigit() and len(value) < int(constraints["minlength"]):
            return f"must be at least {constraints['minlength']} characters"
        pattern = constraints.get("pattern")
        if pattern and len(value) <= 500:
            try:
                if not re.fullmatch(pattern, value):
                    return "has the wrong format"
            except re.error:
                return None
        elif pattern:
            return "is too long"
    return None
