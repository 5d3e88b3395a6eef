"""The parser: SpiffWorkflow's Spiff-dialect parser with the timer events of `timers` put in place of
its own, so every parsed spec runs its timers on the engine clock; and every spec it hands out passes
`boundary.keep_spawned_branches` (the branches of a repeating non-interrupting timer outlive the task)."""
from __future__ import annotations

from typing import Any

from SpiffWorkflow.bpmn.parser.util import full_tag
from SpiffWorkflow.bpmn.specs.event_definitions.base import EventDefinition
from SpiffWorkflow.spiff.parser.event_parsers import (
    SpiffBoundaryEventParser,
    SpiffIntermediateCatchEventParser,
    SpiffStartEventParser,
)
from SpiffWorkflow.spiff.parser.process import SpiffBpmnParser

from .boundary import keep_spawned_branches
from .timers import _CLOCKED


class _ClockTimerParserMixin:
    def parse_timer_event(self, event: Any) -> EventDefinition:
        definition = super().parse_timer_event(event)  # type: ignore[misc]
        return _CLOCKED[type(definition)](definition.name, definition.expression,
                                          description=definition.description)


class _BoundaryEventParser(_ClockTimerParserMixin, SpiffBoundaryEventParser):
    pass


class _IntermediateCatchEventParser(_ClockTimerParserMixin, SpiffIntermediateCatchEventParser):
    pass


class _StartEventParser(_ClockTimerParserMixin, SpiffStartEventParser):
    pass


def _override(tag: str, parser_class: type) -> tuple[str, tuple[type, type]]:
    return full_tag(tag), (parser_class, SpiffBpmnParser.OVERRIDE_PARSER_CLASSES[full_tag(tag)][1])


class YicunParser(SpiffBpmnParser):
    """SpiffBpmnParser whose timers run on the engine clock and whose specs keep the branches of repeating
    boundary timers (`boundary`)."""

    OVERRIDE_PARSER_CLASSES = dict(
        SpiffBpmnParser.OVERRIDE_PARSER_CLASSES,
        **dict([
            _override("boundaryEvent", _BoundaryEventParser),
            _override("intermediateCatchEvent", _IntermediateCatchEventParser),
            _override("startEvent", _StartEventParser),
        ]),
    )

    def get_spec(self, process_id: str, required: bool = True) -> Any:
        spec = super().get_spec(process_id, required)
        return keep_spawned_branches(spec) if spec is not None else None
