"""Where a process failed, read from what SpiffWorkflow raised: the BPMN element, the line of the script
or expression, SpiffWorkflow's error type. A refused step and an incident both carry it, so a designer
can go straight to the element in the modeler.
"""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

ELEMENT_MAX = 100


@dataclass(frozen=True)
class Failure:
    element_id: str | None = None  # the BPMN id to blame
    line: int | None = None  # the line inside the script/expression, when SpiffWorkflow knows it
    error_type: str | None = None  # SpiffWorkflow's own classification (e.g. "NameError"), else the exception's

    def details(self) -> dict[str, Any]:
        """As error details (`element`, `line`, `error_type`), leaving out what is unknown."""
        found = {"element": self.element_id, "line": self.line, "error_type": self.error_type}
        return {k: v for k, v in found.items() if v is not None}


def causes(exc: BaseException) -> Iterator[BaseException]:
    """The exception and its causes/contexts, each once (a cycle in the chain ends the walk)."""
    seen: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and all(current is not s for s in seen):
        seen.append(current)
        yield current
        current = current.__cause__ or current.__context__


def locate(exc: BaseException) -> Failure:
    """An element our own errors name outright (a timer whose value cannot be armed) wins over the task
    SpiffWorkflow was running then; the line and error type come from SpiffWorkflow's exception."""
    chain = list(causes(exc))
    element = next((named for e in chain if isinstance(named := getattr(e, "element_id", None), str) and named),
                   None)
    if element is None:
        for item in chain:
            spec = getattr(item, "task_spec", None) or getattr(getattr(item, "task", None), "task_spec", None)
            bpmn_id = getattr(spec, "bpmn_id", None)
            if isinstance(bpmn_id, str) and bpmn_id:
                element = bpmn_id
                break
    line = next((n for e in chain if isinstance(n := getattr(e, "line_number", None), int) and n > 0), None)
    error_type = next((t for e in chain if isinstance(t := getattr(e, "error_type", None), str)
                       and t not in ("", "unknown")), None) or type(chain[-1]).__name__
    return Failure(element[:ELEMENT_MAX] if element else None, line, error_type[:100])
