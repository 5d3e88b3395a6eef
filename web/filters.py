"""Template filters: instants as the clerks read them, and the engine's stored words in Chinese.

Pages never show a raw stored value (`open`, `clerk`, `yellow`): each closed set has its labels in
`engine.vocab`, and a filter per set looks them up. A value the vocabulary does not know (a newer
engine) is shown as it is rather than breaking the page.
"""
from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, time, timedelta

from flask import Flask

from engine import vocab


def when(value: str | datetime | None) -> str:
    """'2026-12-01T15:06:15+08:00' (Asia/Shanghai, from the engine) → '2026-12-01 15:06'; a deadline at
    midnight is shown as 24:00 of its due date, the way limits are stated (…日24时)."""
    if not value:
        return "—"
    instant = value if isinstance(value, datetime) else datetime.fromisoformat(value)
    if instant.time() == time(0):
        return (instant - timedelta(days=1)).strftime("%Y-%m-%d") + " 24:00"
    return instant.strftime("%Y-%m-%d %H:%M")


def _labeller(enum: type[vocab._Named]) -> Callable[[str | None], str]:
    def label(value: str | None) -> str:
        if value is None or value == "":
            return "—"
        try:
            return enum(value).zh
        except ValueError:
            return str(value)
    label.__doc__ = f"The Chinese name of a {enum.__name__} value."
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


def stored_word(value: str | None, action: str = "") -> str:
    """An audit event's old/new value: in Chinese where it is a word of the vocabulary its action's noun
    uses (`task.completed`: ready → completed is 待办 → 已办; `case.closed`: … → 办结), otherwise as
    recorded (an instant, a name)."""
    if value is None or value == "":
        return "—"
    enum = _AUDIT_VALUES.get(action.split(".", 1)[0])
    if enum is not None:
        try:
            return enum(value).zh
        except ValueError:
            pass
    return value


def init_filters(app: Flask) -> None:
    app.add_template_filter(when, "when")
    app.add_template_filter(stored_word, "stored_word")
    for name, enum in VOCABULARY_FILTERS.items():
        app.add_template_filter(_labeller(enum), name)
