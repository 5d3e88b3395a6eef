"""The restricted evaluator plugged into SpiffWorkflow: its script engine and environment speak only the
language of `engine.expressions` (SPIFFWORKFLOW.md §5). `workflow.SafeBpmnWorkflow` forces this engine on
every workflow, including those the serializer rebuilds.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from SpiffWorkflow.bpmn.script_engine import PythonScriptEngine
from SpiffWorkflow.bpmn.script_engine.python_environment import BasePythonScriptEngineEnvironment

from ..expressions import (
    MAX_INSTANCES,
    ExpressionLimitExceeded,
    ExpressionRejected,
    compile_expression,
    evaluate,
    execute,
)


class RestrictedEnvironment(BasePythonScriptEngineEnvironment):
    """SpiffWorkflow script environment that only speaks the restricted language."""

    def evaluate(self, expression: str, context: dict[str, Any],
                 external_context: Mapping[str, Any] | None = None) -> Any:
        return evaluate(expression, context, external_context)

    def execute(self, script: str, context: dict[str, Any], external_context: Mapping[str, Any] | None = None) -> bool:
        execute(script, context, external_context)
        return True

    def call_service(self, context: dict[str, Any], **kwargs: Any) -> Any:
        raise ExpressionRejected(f"service tasks are not supported (operation {kwargs.get('operation_name')!r})")


class RestrictedScriptEngine(PythonScriptEngine):
    """The only script engine a Yicun workflow ever runs with."""

    def __init__(self) -> None:
        super().__init__(environment=RestrictedEnvironment())

    def validate(self, expression: str) -> None:
        compile_expression(expression)

    def evaluate(self, task: Any, expression: str, external_context: Mapping[str, Any] | None = None) -> Any:
        """As the base class; a multi-instance cardinality is bounded too (SpiffWorkflow creates that many
        tasks at once, so `loopCardinality` of 10**8 from case data would hang the step)."""
        value = super().evaluate(task, expression, external_context)
        spec = getattr(task, "task_spec", None)
        if expression is not None and expression == getattr(spec, "cardinality", None) and (
                isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_INSTANCES):
            exc = ExpressionLimitExceeded(f"{getattr(spec, 'bpmn_id', '')}: loopCardinality gave {str(value)[:40]!r}; "
                                          f"a multi-instance activity has 0 to {MAX_INSTANCES} instances")
            exc.element_id = getattr(spec, "bpmn_id", None)
            raise exc
        return value

    @property
    def environment(self) -> RestrictedEnvironment:
        return _ENVIRONMENT

    @environment.setter
    def environment(self, value: Any) -> None:
        if not isinstance(value, RestrictedEnvironment):
            raise PermissionError("the restricted expression environment cannot be replaced")


_ENVIRONMENT = RestrictedEnvironment()
RESTRICTED_ENGINE = RestrictedScriptEngine()
