"""The restricted expression language for everything a BPMN file can make the engine evaluate.

BPMN files are untrusted input (DESIGN.md invariant 6), and SpiffWorkflow hands gateway conditions,
timer expressions and scripts to Python's ``eval``/``exec``. Blocking ``__builtins__`` is not enough
(``().__class__.__base__.__subclasses__()`` escapes it), so instead of filtering at run time we accept
only a whitelist of syntax, checked on the parsed AST before anything runs:

* literals, names of task-data fields, subscripts (``applicant["age"]``), arithmetic, comparisons,
  boolean logic, conditional expressions, f-strings, list/tuple/dict/set displays;
* calls to a short list of pure functions (``len``, ``min``, ``int`` …) by name only;
* no attribute access at all, no name starting with ``_``, no lambdas, comprehensions, imports,
  ``**`` or shifts (cheap ways to burn memory or CPU).

A *script* (script task, pre/post script) is a sequence of assignments, ``if`` blocks and ``pass``
whose expressions obey the same rules. The check runs at deploy time (lint) and again on every
evaluation, so a spec restored from the database cannot smuggle anything past it.
"""
from __future__ import annotations

import ast
import functools
import re
from typing import Any, Callable, Mapping

from SpiffWorkflow.bpmn.script_engine import PythonScriptEngine
from SpiffWorkflow.bpmn.script_engine.python_environment import BasePythonScriptEngineEnvironment


class ExpressionRejected(ValueError):
    """The text is not a plain data expression of the restricted language."""

    def __init__(self, message: str, line: int | None = None) -> None:
        super().__init__(message)
        self.line = line


def workdays(n: Any) -> str:
    """`workdays(5)` in a timer: five working days (工作日), ending 24:00 Asia/Shanghai of the 5th
    working day after the timer is armed. Returns a marker the engine's timers compute on the calendar."""
    if isinstance(n, bool) or not isinstance(n, (int, float)) or int(n) != n or not 0 <= n <= 3650:
        raise ValueError(f"workdays() takes a whole number of days from 0 to 3650, not {n!r}")
    return f"P{int(n)}WD"


SAFE_FUNCTIONS: Mapping[str, Callable[..., Any]] = {
    "workdays": workdays,
    "len": len, "str": str, "int": int, "float": float, "bool": bool, "abs": abs,
    "min": min, "max": max, "round": round, "sum": sum, "any": any, "all": all, "sorted": sorted,
}

_EXPRESSION_NODES: tuple[type[ast.AST], ...] = (
    ast.Expression, ast.BoolOp, ast.And, ast.Or, ast.BinOp, ast.Add, ast.Sub, ast.Mult, ast.Div,
    ast.FloorDiv, ast.Mod, ast.UnaryOp, ast.Not, ast.USub, ast.UAdd, ast.Compare, ast.Eq, ast.NotEq,
    ast.Lt, ast.LtE, ast.Gt, ast.GtE, ast.In, ast.NotIn, ast.Is, ast.IsNot, ast.IfExp, ast.Constant,
    ast.Name, ast.Load, ast.Subscript, ast.Slice, ast.List, ast.Tuple, ast.Dict, ast.Set,
    ast.JoinedStr, ast.FormattedValue, ast.Call, ast.keyword,
)
_SCRIPT_NODES: tuple[type[ast.AST], ...] = _EXPRESSION_NODES + (
    ast.Module, ast.Assign, ast.AugAssign, ast.If, ast.Pass, ast.Store,
)
_MAX_SOURCE = 4000
_MAX_REPEAT = 10_000


def _check(tree: ast.AST, allowed: tuple[type[ast.AST], ...]) -> None:
    for node in ast.walk(tree):
        line = getattr(node, "lineno", None)
        if not isinstance(node, allowed):
            if isinstance(node, ast.Expr):
                raise ExpressionRejected("a script statement must be an assignment (x = …), if or pass; "
                                         "calls such as print() do nothing useful and are not allowed", line)
            raise ExpressionRejected(f"{type(node).__name__} is not allowed in BPMN expressions", line)
        if isinstance(node, ast.Name) and node.id.startswith("_"):
            raise ExpressionRejected(f"name {node.id!r} is not allowed (names may not start with '_')", line)
        if isinstance(node, ast.Call):
            if not isinstance(node.func, ast.Name) or node.func.id not in SAFE_FUNCTIONS:
                raise ExpressionRejected(
                    f"only these functions may be called: {', '.join(sorted(SAFE_FUNCTIONS))}", line)
        if isinstance(node, ast.keyword) and (node.arg is None or node.arg.startswith("_")):
            raise ExpressionRejected("keyword arguments must be plain names", line)
        if isinstance(node, ast.Constant) and isinstance(node.value, bytes):
            raise ExpressionRejected("bytes literals are not allowed", line)
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mult):
            for side in (node.left, node.right):
                if isinstance(side, ast.Constant) and isinstance(side.value, int) and abs(side.value) > _MAX_REPEAT:
                    raise ExpressionRejected(f"multiplier {side.value} is too large", line)
        if isinstance(node, (ast.Assign, ast.AugAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                if not isinstance(target, ast.Name):
                    raise ExpressionRejected("scripts may only assign to plain field names", line)


@functools.lru_cache(maxsize=4096)
def compile_expression(source: str) -> Any:
    """Check and compile an expression; cached because conditions repeat across every case."""
    if len(source) > _MAX_SOURCE:
        raise ExpressionRejected(f"expression longer than {_MAX_SOURCE} characters")
    try:
        tree = ast.parse(source.strip(), mode="eval")
    except SyntaxError as exc:
        raise ExpressionRejected(f"syntax error: {exc.msg}", exc.lineno) from None
    _check(tree, _EXPRESSION_NODES)
    return compile(tree, "<expression>", "eval")


@functools.lru_cache(maxsize=1024)
def compile_script(source: str) -> Any:
    if len(source) > _MAX_SOURCE * 4:
        raise ExpressionRejected(f"script longer than {_MAX_SOURCE * 4} characters")
    try:
        tree = ast.parse(source, mode="exec")
    except SyntaxError as exc:
        raise ExpressionRejected(f"syntax error: {exc.msg}", exc.lineno) from None
    _check(tree, _SCRIPT_NODES)
    return compile(tree, "<script>", "exec")


def _namespace(external_context: Mapping[str, Any] | None) -> dict[str, Any]:
    ns: dict[str, Any] = {"__builtins__": {}}
    ns.update(SAFE_FUNCTIONS)
    if external_context:
        ns.update({k: v for k, v in external_context.items() if not k.startswith("_")})
    return ns


def evaluate(source: str, data: Mapping[str, Any], external_context: Mapping[str, Any] | None = None) -> Any:
    """Evaluate a restricted expression against task data."""
    code = compile_expression(source)
    return eval(code, _namespace(external_context), dict(data))  # noqa: S307 - AST-whitelisted above


def execute(source: str, data: dict[str, Any], external_context: Mapping[str, Any] | None = None) -> None:
    """Run a restricted script; assignments land directly in `data`."""
    code = compile_script(source)
    exec(code, _namespace(external_context), data)  # noqa: S102 - AST-whitelisted above


# ISO 8601 literals as modelers write them in timer definitions (Camunda: <timeDuration>P3D</timeDuration>).
_ISO_DURATION = r"P(?!$)(\d+(\.\d+)?Y)?(\d+(\.\d+)?M)?(\d+(\.\d+)?W)?(\d+(\.\d+)?D)?(T(?=\d)(\d+(\.\d+)?H)?(\d+(\.\d+)?M)?(\d+(\.\d+)?S)?)?"
_ISO_DATETIME = r"\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?)?"
_ISO_LITERAL = re.compile(
    rf"^(?:{_ISO_DURATION}|{_ISO_DATETIME}|R\d*/(?:{_ISO_DURATION}|{_ISO_DATETIME})(?:/(?:{_ISO_DURATION}|{_ISO_DATETIME}))?)$",
    re.IGNORECASE,
)


def is_iso_literal(text: str) -> bool:
    """True for a bare ISO 8601 duration, date-time or repeating interval (``P3D``, ``R3/PT1H``)."""
    return bool(_ISO_LITERAL.match(text.strip()))


class RestrictedEnvironment(BasePythonScriptEngineEnvironment):
    """SpiffWorkflow script environment that only speaks the restricted language."""

    def evaluate(self, expression: str, context: dict[str, Any], external_context: Mapping[str, Any] | None = None) -> Any:
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

    @property  # type: ignore[override]
    def environment(self) -> RestrictedEnvironment:
        return _ENVIRONMENT

    @environment.setter
    def environment(self, value: Any) -> None:
        if not isinstance(value, RestrictedEnvironment):
            raise PermissionError("the restricted expression environment cannot be replaced")


_ENVIRONMENT = RestrictedEnvironment()
RESTRICTED_ENGINE = RestrictedScriptEngine()
