"""Template filters: instants as the clerks read them, and the engine's stored words in the reader's
language (Chinese, or English by choice: web.i18n).

Pages never show a raw stored value (`open`, `clerk`, `yellow`): each closed set has its Chinese and
English labels in `engine.vocab`, and a filter per set picks the one of the current locale. A value the
vocabulary does not know (a newer engine) is shown as it is rather than breaking the page. Nor do pages
show the ids behind an audit event (a claim records the assignee's user id): `audit_values` leaves them
out.
"""
from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from flask import Flask
from flask_babel import gettext
from jinja2 import pass_context
from markupsafe import Markup

from engine import clock, vocab

from .engine_texts import engine_text
from .i18n import is_english


def when(value: str | datetime | None) -> str:
    """An instant (a datetime of a read model, or ISO text of a stored digest) → '2026-12-01 15:06' in
    Asia/Shanghai; a deadline at midnight as 24:00 of its due date, the way limits are stated (…日24时):
    `engine.clock.due_text`, the one place that says so."""
    if not value:
        return "—"
    return clock.due_text(clock.to_utc(value))


def _lang() -> str:
    return "en" if is_english() else "zh"


def _labeller(enum: type[vocab._Named]) -> Callable[[Any, str | None], str]:
    # pass_context: the label depends on the request's language, so Jinja must never fold a constant
    # (`'case.started'|audit_action`) into the compiled template — compiled code is shared between apps
    # and requests, and the first language would stick
    @pass_context
    def label(_context: Any, value: str | None) -> str:
        if value is None or value == "":
            return "—"
        try:
            return enum(value).label(_lang())
        except ValueError:
            return str(value)
    label.__doc__ = f"The name of a {enum.__name__} value in the current language."
    return label


#: filter name → the vocabulary it reads (`{{ actor.role|role }}`, `{{ case.status|case_status }}`)
VOCABULARY_FILTERS: dict[str, type[vocab._Named]] = {
    "role": vocab.Role, "level": vocab.Level, "case_status": vocab.CaseStatus, "task_state": vocab.TaskState,
    "timer_state": vocab.TimerState, "warning": vocab.WarningLevel, "card_colour": vocab.CardColour,
    "pause_kind": vocab.PauseKind, "incident_status": vocab.IncidentStatus, "audit_action": vocab.AuditAction,
}


#: which vocabulary an audit event's old/new values come from, by the noun of its action
_AUDIT_VALUES: dict[str, type[vocab._Named]] = {
    "case": vocab.CaseStatus, "task": vocab.TaskState, "timer": vocab.TimerState, "card": vocab.CardColour,
    "incident": vocab.IncidentStatus,
}


#: actions whose old/new values are user ids (the assignee before and after), not words
_USER_VALUED = frozenset({vocab.AuditAction.TASK_CLAIMED, vocab.AuditAction.TASK_UNCLAIMED,
                          vocab.AuditAction.TASK_REASSIGNED})


def stored_word(value: str | None, action: str = "") -> str:
    """An audit event's old/new value: in the current language where it is a word of the vocabulary its
    action's noun uses (`task.completed`: ready → completed is 待办 → 已办; `case.closed`: … → 办结), an
    instant as `when` shows it, otherwise as recorded (a name)."""
    if value is None or value == "":
        return "—"
    enum = _AUDIT_VALUES.get(action.split(".", 1)[0])
    if enum is not None:
        try:
            return enum(value).label(_lang())
        except ValueError:
            pass
    if len(value) >= 19 and value[4:5] == "-" and value[10:11] == "T":
        try:
            return when(datetime.fromisoformat(value))
        except ValueError:
            pass
    return value


def audit_values(event: Any) -> str:
    """What a history line shows after its action: "（old → new）" in words, the step's name for a claim,
    release or reassignment (whose values are user ids, never shown), or nothing."""
    action = str(_field(event, "action") or "")
    old, new = _field(event, "old"), _field(event, "new")
    english = is_english()
    if action in _USER_VALUED:
        names = [str(v) for v in (old, new) if v and not str(v).isdigit()]  # a read model may give names
        task = (_field(event, "details") or {}).get("task")
        quoted = (f" “{task}”" if english else f"「{task}」") if task else ""
        return quoted + (_parenthesised(" → ".join(names), english) if names else "")
    if not old and not new:
        return ""
    return _parenthesised(f"{stored_word(old, action)} → {stored_word(new, action)}", english)


def _parenthesised(text: str, english: bool) -> str:
    return f" ({text})" if english else f"（{text}）"


def actor_name(event: Any) -> str:
    """Who did it (an audit event's `actor`/`actor_name`, a case step's `by`/`by_name`): the person's name,
    the server operator (with their login), or the system itself."""
    actor = str(_field(event, "actor") or _field(event, "by") or "")
    if actor == "system":
        return gettext("系统")
    if actor.startswith("operator:"):
        return vocab.Role.OPERATOR.label(_lang()) + _parenthesised(actor.removeprefix("operator:"), is_english())
    return str(_field(event, "actor_name") or _field(event, "by_name") or actor or "—")


def field_value(field: Any) -> str:
    """A value a step submitted, as a person reads it in the current language: yes/no for a checkbox, the
    option's name for a choice (as the process names it), lists joined."""
    value = _field(field, "value")
    if _field(field, "choice") is None and isinstance(value, bool):
        return gettext("是") if value else gettext("否")
    if _field(field, "choice") is None and isinstance(value, (list, tuple)) and value:
        return (", " if is_english() else "、").join(str(v) for v in value)
    text = getattr(field, "text", None)
    return str(text) if text is not None else ("—" if value in (None, "") else str(value))


def _field(obj: Any, name: str) -> Any:
    """A field of a read model (a dataclass) or of the older dict rows, alike."""
    return obj.get(name) if isinstance(obj, dict) else getattr(obj, name, None)


def bdi(value: Any) -> Markup:
    """Data written into a sentence of the page's language (an item's or a step's name, a place): isolated
    as <bdi>, so it neither reorders the sentence nor passes for the page's own words (escaped)."""
    return Markup("<bdi>{}</bdi>").format("" if value is None else value)


def init_filters(app: Flask) -> None:
    app.add_template_filter(when, "when")
    app.add_template_filter(bdi, "bdi")
    app.add_template_filter(stored_word, "stored_word")
    app.add_template_filter(audit_values, "audit_values")
    app.add_template_filter(actor_name, "actor_name")
    app.add_template_filter(engine_text, "engine_text")
    app.add_template_filter(field_value, "field_value")
    for name, enum in VOCABULARY_FILTERS.items():
        app.add_template_filter(_labeller(enum), name)
