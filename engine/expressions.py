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

Resources are bounded too (DESIGN.md invariant 10). Whitelisted syntax can still build a gigabyte
(``'a'*10000*10000*10``, ``f'{0:>999999999}'``) or spin for minutes (``sum`` of lists is quadratic),
so after the check the AST is rewritten: ``+``, ``*``, ``%``, f-string parts, displays and the allowed
functions go through helpers (the ``_yc`` object, unreachable by name from BPMN text) that compute
the size of the result *before* building it and check the evaluation's deadline; scripts check the
deadline before every statement. Every other operation left is linear in values that are already
bounded, so nothing runs unbounded between two checks. A refusal is :class:`ExpressionLimitExceeded`.
Plain conditions such as ``decision == "approve"`` need no helper and run as before.
"""
from __future__ import annotations

import ast
import contextlib
import contextvars
import functools
import itertools
import re
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from . import settings

# ------------------------------------------------------------------------------------------------ limits
#: Longest expression (condition, timer) and script, in characters.
MAX_SOURCE = 4000
MAX_SCRIPT_SOURCE = 16_000
#: Deepest syntax tree (``1+1+…`` or ``-(-(-…``): deeper ones crash Python's compiler with RecursionError.
MAX_NESTING = 100
#: Largest value an evaluation may build: characters of a text; for lists, tuples, dicts and sets the
#: elements counted through every level of nesting, texts inside them by their characters.
MAX_VALUE_SIZE = 100_000
#: Deepest nesting of lists/dicts an evaluation may build (deeper data breaks JSON and deep copies).
MAX_VALUE_DEPTH = 32
#: Largest whole number an evaluation may compute, in bits (≈ 1,233 decimal digits).
MAX_INT_BITS = 4096
#: Largest width or precision in an f-string format spec or a ``%`` format.
MAX_FORMAT_WIDTH = 1000
#: Most digits ``round(x, n)`` may be asked for (|n|).
MAX_ROUND_DIGITS = 1000
#: Everything one evaluation builds, added up (a script of many statements each building a large value).
MAX_BUILT_PER_EVALUATION = 1_000_000
#: Most instances a multi-instance activity may create (its loopCardinality).
MAX_INSTANCES = 100
#: the case data a script may leave behind, measured like a built value (aliases counted each time)
MAX_DATA_SIZE = 1_000_000


def time_budget_seconds() -> float:
    """Wall-clock budget of one evaluation: `settings.get().expression_seconds` ($YICUN_EXPRESSION_SECONDS)."""
    return settings.get().expression_seconds


class ExpressionRejected(ValueError):
    """The text is not a plain data expression of the restricted language."""

    #: the BPMN element to blame, when the engine knows it (read by incidents and deploy findings)
    element_id: str | None = None

    def __init__(self, message: str, line: int | None = None) -> None:
        super().__init__(message)
        self.line = line


class ExpressionLimitExceeded(ExpressionRejected):
    """The expression would build a value, or run for a time, beyond the engine's bounds."""


def workdays(n: Any) -> str:
    """`workdays(5)` in a timer: five working days (工作日), ending 24:00 Asia/Shanghai of the 5th
    working day after the timer is armed. Returns a marker the engine's timers compute on the calendar."""
    if isinstance(n, bool) or not isinstance(n, (int, float)) or int(n) != n or not 0 <= n <= 3650:
        raise ValueError(f"workdays() takes a whole number of days from 0 to 3650, not {n!r}")
    return f"P{int(n)}WD"


# ------------------------------------------------------------------------------------------------ meter
class _Meter:
    """What one evaluation may still spend; `seconds` and `shared` say which budget ends first."""
    __slots__ = ("deadline", "seconds", "shared", "built")

    def __init__(self, deadline: float, seconds: float, shared: bool) -> None:
        self.deadline, self.seconds, self.shared, self.built = deadline, seconds, shared, 0

    def out_of_time(self) -> ExpressionLimitExceeded:
        budget = "shared by the evaluations of this deploy or step" if self.shared else "per evaluation"
        return ExpressionLimitExceeded(f"the expression ran out of time (budget {self.seconds:g} s {budget})")


_METER: contextvars.ContextVar[_Meter | None] = contextvars.ContextVar("yicun_expression_meter", default=None)
_OUTER_DEADLINE: contextvars.ContextVar[tuple[float, float] | None] = contextvars.ContextVar(
    "yicun_outer_deadline", default=None)


@contextlib.contextmanager
def time_budget(seconds: float) -> Iterator[None]:
    """Share one deadline among all evaluations inside (a deploy's smoke run, one engine step): each
    still has its own time_budget_seconds(), but none runs past the end of this one."""
    mine = (time.perf_counter() + seconds, seconds)
    outer = _OUTER_DEADLINE.get()
    token = _OUTER_DEADLINE.set(mine if outer is None else min(outer, mine))
    try:
        yield
    finally:
        _OUTER_DEADLINE.reset(token)


def _new_meter() -> _Meter:
    budget = time_budget_seconds()
    deadline = time.perf_counter() + budget
    outer = _OUTER_DEADLINE.get()
    if outer is not None and outer[0] < deadline:
        return _Meter(outer[0], outer[1], True)
    return _Meter(deadline, budget, False)


def _meter() -> _Meter:
    meter = _METER.get()
    if meter is None:  # metered code only ever runs inside evaluate/execute: fail closed
        raise ExpressionRejected("internal error: an expression ran without its resource meter")
    return meter


def _tick() -> _Meter:
    meter = _meter()
    if time.perf_counter() > meter.deadline:
        raise meter.out_of_time()
    return meter


def _too_big(what: str, limit: int = MAX_VALUE_SIZE) -> ExpressionLimitExceeded:
    return ExpressionLimitExceeded(f"{what} would be larger than the limit of {limit:,}")


def _spend(meter: _Meter, size: int) -> None:
    meter.built += size
    if meter.built > MAX_BUILT_PER_EVALUATION:
        raise ExpressionLimitExceeded(f"the evaluation builds more than {MAX_BUILT_PER_EVALUATION:,} "
                                      "characters/elements in all")


# ------------------------------------------------------------------------------------------------ sizes
class _Over(Exception):
    """Internal: a measure went past its budget (or its depth); the caller says what it was."""


def _size(value: Any, budget: int = MAX_VALUE_SIZE, depth: int = 0) -> int:
    """Characters of a text; 1 + the sizes of the elements of a container (keys and values of a dict);
    1 per number (+1 per 64 bits of an int). Stops with _Over as soon as it passes `budget`."""
    kind = type(value)
    if kind is str:
        size = len(value)
    elif kind is int:
        size = 1 + value.bit_length() // 64
    elif kind in (list, tuple, set, frozenset, dict):
        if depth >= MAX_VALUE_DEPTH:
            raise _Over("depth")
        size = 1
        items = itertools.chain.from_iterable(value.items()) if kind is dict else value
        for item in items:
            size += _size(item, budget - size, depth + 1)
            if size > budget:
                raise _Over("size")
    else:
        size = 1
    if size > budget:
        raise _Over("size")
    return size


_KIND_NAMES: dict[type, str] = {str: "text", list: "a list", tuple: "a tuple", dict: "a dict", set: "a set",
                                frozenset: "a set"}


def _checked_size(value: Any, what: str | None = None) -> int:
    what = what or _KIND_NAMES.get(type(value), "a value")
    try:
        return _size(value)
    except _Over as exc:
        if exc.args[0] == "depth":
            raise ExpressionLimitExceeded(f"{what} is nested deeper than {MAX_VALUE_DEPTH} levels") from None
        raise _too_big(what) from None


def _text_bound(value: Any, conversion: str = "s", budget: int = MAX_VALUE_SIZE, depth: int = 0) -> int:
    """An upper bound of len(str(value)) ('s') or len(repr(value)) ('r', 'a'), without building it."""
    kind = type(value)
    if kind is str:
        if conversion == "s":
            size = len(value)
        else:  # quotes, and escapes: \\xNN (ASCII) or up to \\UNNNNNNNN otherwise
            size = len(value) * (4 if value.isascii() else 10) + 2
    elif kind is int:
        size = value.bit_length() * 31 // 100 + 2
    elif kind is float:
        size = len(repr(value))
    elif value is None or kind is bool:
        size = 5
    elif kind in (list, tuple, set, frozenset, dict):
        if depth >= MAX_VALUE_DEPTH:
            raise _Over("depth")
        size = 12  # brackets, "frozenset()", a tuple's trailing comma
        pairs = value.items() if kind is dict else ((None, v) for v in value)
        for key, item in pairs:
            if kind is dict:
                size += _text_bound(key, "r", budget - size, depth + 1) + 2
            size += _text_bound(item, "r", budget - size, depth + 1) + 2
            if size > budget:
                raise _Over("size")
    else:  # only the engine puts other types into data (none today); their text is small
        size = len(repr(value)) if conversion != "s" else len(str(value))
    if size > budget:
        raise _Over("size")
    return size


def _checked_text_bound(value: Any, conversion: str, what: str) -> int:
    try:
        return _text_bound(value, conversion)
    except _Over:
        raise _too_big(what) from None


_DIGITS = re.compile(r"\d+")


def _check_format_spec(spec: str) -> int:
    """Every number in a format spec (width, precision; a digit fill is harmless) must be small.
    Returns their sum, the most the spec can add to the formatted text."""
    total = 0
    for digits in _DIGITS.findall(spec):
        if len(digits) > 6 or int(digits) > MAX_FORMAT_WIDTH:
            raise ExpressionLimitExceeded(f"format width or precision {digits[:12]} is larger than the "
                                          f"limit of {MAX_FORMAT_WIDTH}")
        total += int(digits)
    return total


def _percent_bound(fmt: str, args: Any) -> int:
    """Upper bound of len(fmt % args), parsing conversions the way CPython does (a mapping key may hold
    nested parentheses). A ``*`` width takes its value from the arguments, so it is refused outright."""
    positional = args if type(args) is tuple else (args,)
    mapping = args if isinstance(args, Mapping) else None
    n, pos, index, total = len(fmt), 0, 0, len(fmt)
    while True:
        i = fmt.find("%", pos)
        if i < 0 or i + 1 >= n:
            return total
        j, key = i + 1, None
        if fmt[j] == "(":
            depth, j = 1, j + 1
            start = j
            while j < n and depth:
                depth += {"(": 1, ")": -1}.get(fmt[j], 0)
                j += 1
            key = fmt[start:j - 1]
        while j < n and fmt[j] in "-+ #0":
            j += 1
        numbers = []
        for part in ("width", "precision"):
            if part == "precision":
                if j >= n or fmt[j] != ".":
                    break
                j += 1
            if j < n and fmt[j] == "*":
                raise ExpressionLimitExceeded("'*' widths in % formats are not allowed; write the number")
            start = j
            while j < n and fmt[j] in "0123456789":
                j += 1
            numbers.append(fmt[start:j])
        while j < n and fmt[j] in "hlL":
            j += 1
        conversion = fmt[j] if j < n else ""
        pos = j + 1
        if conversion == "%" and key is None:
            continue
        total += _check_format_spec(" ".join(numbers))
        if key is not None:
            arg = mapping.get(key) if mapping is not None else None
        else:
            arg = positional[index] if index < len(positional) else None
            index += 1
        total += _text_bound(arg, "r" if conversion in "ra" else "s", MAX_VALUE_SIZE)
        total += 330 if type(arg) is float else 16  # '%f' of 1e308 has 309 digits; '%f' of an int adds '.000000'
        if total > MAX_VALUE_SIZE:
            raise _Over("size")


# ------------------------------------------------------------------------------------------------ helpers
_SEQUENCES = (list, tuple)
#: the !s, !r and !a conversions of an f-string field
_CONVERSIONS: dict[str, Callable[[object], str]] = {"s": str, "r": repr, "a": ascii}


class _Ops:
    """The checked operations the rewritten AST calls (as ``_yc.add(a, b)`` …)."""

    @staticmethod
    def tick(value: Any = None) -> Any:
        _tick()
        return value

    @staticmethod
    def add(a: Any, b: Any) -> Any:
        kind = type(a)
        if kind is int or kind is float:
            if type(b) is int or type(b) is float:
                return a + b
        meter = _tick()
        if kind is str and type(b) is str:
            size = len(a) + len(b)
            if size > MAX_VALUE_SIZE:
                raise _too_big("text")
            _spend(meter, size)
        elif kind in _SEQUENCES and type(b) is kind:
            size = _checked_size(a) + _checked_size(b)
            if size > MAX_VALUE_SIZE:
                raise _too_big(_KIND_NAMES[kind])
            _spend(meter, size)
        return a + b

    @staticmethod
    def mul(a: Any, b: Any) -> Any:
        ka, kb = type(a), type(b)
        if ka is int and kb is int:
            if a.bit_length() + b.bit_length() > MAX_INT_BITS:
                raise ExpressionLimitExceeded(f"a number would be larger than {MAX_INT_BITS} bits")
            return a * b
        if ka is float or kb is float:
            return a * b
        meter = _tick()
        seq, times = (a, b) if isinstance(b, int) else (b, a)
        if isinstance(times, int) and type(seq) in (str, list, tuple) and times > 0:
            if type(seq) is str:
                size = len(seq) * times
                what = "text"
            else:
                size = (_checked_size(seq) - 1) * times + 1
                what = _KIND_NAMES[type(seq)]
            if size > MAX_VALUE_SIZE:
                raise _too_big(what)
            _spend(meter, size)
        return a * b

    @staticmethod
    def mod(a: Any, b: Any) -> Any:
        meter = _tick()
        if type(a) is str:
            try:
                size = _percent_bound(a, b)
            except _Over:
                raise _too_big("formatted text") from None
            _spend(meter, size)
            return _checked_text(a % b, meter, spent=True)
        return a % b

    @staticmethod
    def built(value: Any) -> Any:
        """A list/tuple/dict/set display with computed elements: measure it (its elements exist already)."""
        _spend(_tick(), _checked_size(value))
        return value

    @staticmethod
    def fmt(value: Any, conversion: int, spec: str) -> str:
        """One {…} of an f-string: conversion, then format spec, each bounded before it runs.
        (The deadline is checked by `join`, which every f-string ends in.)"""
        if conversion == -1 and not spec:
            kind = type(value)
            if kind is str:
                if len(value) > MAX_VALUE_SIZE:
                    raise _too_big("text")
                return value
            if kind is int or kind is float or kind is bool:
                return format(value, "")  # a few hundred characters at most (ints ≤ 4,300 digits)
        meter = _meter()
        if conversion != -1:
            code = chr(conversion)
            _checked_text_bound(value, code, "formatted text")
            value = _CONVERSIONS[code](value)
        if not spec and type(value) is str:
            return _checked_text(value, meter)
        extra = _check_format_spec(spec) + 330 if spec else 0
        if _checked_text_bound(value, "s", "formatted text") + extra > MAX_VALUE_SIZE:
            raise _too_big("formatted text")
        return _checked_text(format(value, spec), meter)

    @staticmethod
    def fold(lines: tuple[int, ...], *parts: Callable[[], Any]) -> None:
        """Deploy-time evaluation of the constant parts of a text (see _refuse_constant_excess)."""
        meter = _meter()
        for line, part in zip(lines, parts, strict=True):
            meter.built = 0
            try:
                part()
            except ExpressionLimitExceeded as exc:
                raise ExpressionLimitExceeded(str(exc), line or None) from None
            except Exception:
                pass  # 1/0 and the like fail when the case runs, with the step named

    @staticmethod
    def join(parts: tuple[str, ...]) -> str:
        meter = _tick()
        size = 0
        for part in parts:
            size += len(part)
        if size > MAX_VALUE_SIZE:
            raise _too_big("text")
        _spend(meter, size)
        return "".join(parts)


def _checked_text(text: str, meter: _Meter, spent: bool = False) -> str:
    if len(text) > MAX_VALUE_SIZE:
        raise _too_big("text")
    if not spent:
        _spend(meter, len(text))
    return text


_OPS = _Ops()


# ------------------------------------------------------------------------------------------------ functions
def _str(*args: Any, **kwargs: Any) -> str:
    meter = _tick()
    value = args[0] if args else kwargs.get("object", "")
    _checked_text_bound(value, "s", "text")
    return _checked_text(str(*args, **kwargs), meter)


def _int(*args: Any, **kwargs: Any) -> int:
    _tick()
    value = args[0] if args else 0
    if isinstance(value, str) and len(value) > MAX_INT_BITS // 3 + 40:
        raise ExpressionLimitExceeded(f"int() of a text longer than {MAX_INT_BITS // 3 + 40} characters")
    result = int(*args, **kwargs)
    if result.bit_length() > MAX_INT_BITS:
        raise ExpressionLimitExceeded(f"a number would be larger than {MAX_INT_BITS} bits")
    return result


def _float(*args: Any) -> float:
    _tick()
    if args and isinstance(args[0], str) and len(args[0]) > 1000:
        raise ExpressionLimitExceeded("float() of a text longer than 1000 characters")
    return float(*args)


def _round(number: Any, ndigits: Any = None) -> Any:
    _tick()
    if isinstance(ndigits, int) and abs(ndigits) > MAX_ROUND_DIGITS:
        raise ExpressionLimitExceeded(f"round() to more than {MAX_ROUND_DIGITS} digits")
    return round(number) if ndigits is None else round(number, ndigits)


def _sum(iterable: Any, /, start: Any = 0) -> Any:
    """sum(); of lists or tuples, linear (the built-in is quadratic) and bounded before it builds."""
    meter = _tick()
    if type(start) not in _SEQUENCES:
        return sum(iterable, start)
    items = list(iterable)
    kind = type(start)
    for item in items:
        if type(item) is not kind:
            raise TypeError(f'can only concatenate {kind.__name__} (not "{type(item).__name__}") to {kind.__name__}')
    size = _checked_size(start) + sum(_checked_size(item) for item in items)
    if size > MAX_VALUE_SIZE:
        raise _too_big(_KIND_NAMES[kind])
    _spend(meter, size)
    return kind(itertools.chain(start, *items))


def _sorted(iterable: Any, /, *, key: Any = None, reverse: bool = False) -> list[Any]:
    meter = _tick()
    _spend(meter, _checked_size(iterable))
    return sorted(iterable, key=key, reverse=reverse)


def _ticked(fn: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(fn)
    def checked(*args: Any, **kwargs: Any) -> Any:
        _tick()
        return fn(*args, **kwargs)
    return checked


SAFE_FUNCTIONS: Mapping[str, Callable[..., Any]] = {
    "workdays": workdays,
    "len": len, "str": _str, "int": _int, "float": _float, "bool": bool, "abs": abs,
    "min": _ticked(min), "max": _ticked(max), "round": _round, "sum": _sum, "any": _ticked(any),
    "all": _ticked(all), "sorted": _sorted,
}
_UNMETERED_FUNCTIONS = frozenset({"workdays", "len", "bool", "abs"})

# ------------------------------------------------------------------------------------------------ syntax check
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
_HELPER = "_yc"


def _parse(source: str, mode: Literal["eval", "exec"]) -> ast.Expression | ast.Module:
    try:
        return ast.parse(source, mode="eval") if mode == "eval" else ast.parse(source, mode="exec")
    except SyntaxError as exc:
        raise ExpressionRejected(f"syntax error: {exc.msg}", exc.lineno) from None
    except (RecursionError, MemoryError):
        raise ExpressionRejected(f"the expression is nested too deeply (more than {MAX_NESTING} levels)") from None


def _check_depth(tree: ast.AST) -> None:
    """Iteratively, so that the check itself cannot overflow the stack."""
    stack = [(tree, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_NESTING:
            raise ExpressionRejected(f"the expression is nested too deeply (more than {MAX_NESTING} levels)",
                                     getattr(node, "lineno", None))
        stack.extend((child, depth + 1) for child in ast.iter_child_nodes(node))


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
        if isinstance(node, ast.Constant):
            if isinstance(node.value, bytes):
                raise ExpressionRejected("bytes literals are not allowed", line)
            if type(node.value) is int and node.value.bit_length() > MAX_INT_BITS:
                raise ExpressionRejected(f"number literal larger than {MAX_INT_BITS} bits", line)
        if isinstance(node, ast.FormattedValue) and isinstance(node.format_spec, ast.JoinedStr):
            spec_parts = [v for v in node.format_spec.values if isinstance(v, ast.Constant)]
            if len(spec_parts) == len(node.format_spec.values):  # a literal spec: no {…} inside it
                _static(_check_format_spec, "".join(str(v.value) for v in spec_parts), line)
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mod) and isinstance(node.left, ast.Constant) \
                and isinstance(node.left.value, str):
            _static(_percent_bound, node.left.value, (), line)
        if isinstance(node, (ast.Assign, ast.AugAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                if not isinstance(target, ast.Name):
                    raise ExpressionRejected("scripts may only assign to plain field names", line)


def _static(check: Callable[..., Any], *args: Any) -> None:
    """A width check of a literal format, at deploy time: `f'{x:>999999999}'` reads data, but its width
    does not. (Sizes need the values; those are checked when the expression runs.)"""
    *check_args, line = args
    try:
        check(*check_args)
    except ExpressionLimitExceeded as exc:
        raise ExpressionLimitExceeded(str(exc), line) from None
    except _Over:
        pass


# ------------------------------------------------------------------------------------------------ rewrite
def _helper_call(name: str, *args: ast.expr) -> ast.Call:
    return ast.Call(ast.Attribute(ast.Name(_HELPER, ast.Load()), name, ast.Load()), list(args), [])


_BINOP_HELPERS = {ast.Add: "add", ast.Mult: "mul", ast.Mod: "mod"}
_CHEAP_COMPARE = (ast.Eq, ast.NotEq, ast.Lt, ast.LtE, ast.Gt, ast.GtE, ast.Is, ast.IsNot)


class _Meterize(ast.NodeTransformer):
    """Route every operation that can build or scan a large value through a checked helper."""

    def visit_BinOp(self, node: ast.BinOp) -> ast.expr:
        self.generic_visit(node)
        helper = _BINOP_HELPERS.get(type(node.op))
        if helper:
            return ast.copy_location(_helper_call(helper, node.left, node.right), node)
        node.left = _helper_call("tick", node.left)  # -, /, //: cannot grow a value, but can take time
        return node

    def visit_AugAssign(self, node: ast.AugAssign) -> ast.stmt:
        self.generic_visit(node)
        target = node.target
        assert isinstance(target, ast.Name)  # _check allows nothing else
        value = self.visit_BinOp(ast.BinOp(ast.Name(target.id, ast.Load()), node.op, node.value))
        return ast.copy_location(ast.Assign([ast.Name(target.id, ast.Store())], value), node)

    def visit_JoinedStr(self, node: ast.JoinedStr) -> ast.expr:
        if all(isinstance(v, ast.Constant) for v in node.values):
            return node
        parts: list[ast.expr] = []
        for value in node.values:
            if isinstance(value, ast.FormattedValue):
                spec = self.visit(value.format_spec) if value.format_spec is not None else ast.Constant("")
                parts.append(_helper_call("fmt", self.visit(value.value), ast.Constant(value.conversion), spec))
            else:
                parts.append(value)
        return ast.copy_location(_helper_call("join", ast.Tuple(parts, ast.Load())), node)

    def _display(self, node: ast.expr, elements: list[ast.expr | None]) -> ast.expr:
        self.generic_visit(node)
        if all(isinstance(e, ast.Constant) for e in elements if e is not None) and None not in elements:
            return node  # only literals: as large as the source, no larger
        return ast.copy_location(_helper_call("built", node), node)

    def visit_List(self, node: ast.List) -> ast.expr:
        return self._display(node, list(node.elts))

    def visit_Tuple(self, node: ast.Tuple) -> ast.expr:
        return self._display(node, list(node.elts))

    def visit_Set(self, node: ast.Set) -> ast.expr:
        return self._display(node, list(node.elts))

    def visit_Dict(self, node: ast.Dict) -> ast.expr:
        return self._display(node, [*node.keys, *node.values])

    def visit_Compare(self, node: ast.Compare) -> ast.expr:
        self.generic_visit(node)
        constant = isinstance(node.left, ast.Constant) or any(isinstance(c, ast.Constant) for c in node.comparators)
        if not (len(node.ops) == 1 and isinstance(node.ops[0], _CHEAP_COMPARE) and constant):
            node.left = _helper_call("tick", node.left)  # `x in big`, `a == b` of two large values
        return node

    def visit_Subscript(self, node: ast.Subscript) -> ast.expr:
        self.generic_visit(node)
        if isinstance(node.slice, ast.Slice):
            node.value = _helper_call("tick", node.value)  # a slice copies
        return node

    def _statements(self, body: list[ast.stmt]) -> list[ast.stmt]:
        out: list[ast.stmt] = []
        for statement in body:
            out.append(ast.copy_location(ast.Expr(_helper_call("tick")), statement))
            out.append(self.visit(statement))
        return out

    def visit_Module(self, node: ast.Module) -> ast.Module:
        node.body = self._statements(node.body)
        return node

    def visit_If(self, node: ast.If) -> ast.If:
        node.test = self.visit(node.test)
        node.body = self._statements(node.body)
        node.orelse = self._statements(node.orelse)
        return node


@dataclass(frozen=True)
class _Compiled:
    code: Any
    metered: bool  # False: no helper and no checked function; runs without setting up a meter


def _metered(tree: ast.AST) -> bool:
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and (node.id == _HELPER or (
                node.id in SAFE_FUNCTIONS and node.id not in _UNMETERED_FUNCTIONS)):
            return True
    return False


def _build(tree: ast.Module | ast.Expression, filename: str, mode: str) -> _Compiled:
    """Rewrite (see _Meterize), refuse constant excess, compile."""
    tree = ast.fix_missing_locations(_Meterize().visit(tree))
    _refuse_constant_excess(tree)
    return _Compiled(_compile(tree, filename, mode), _metered(tree))


def _compile(tree: ast.Module | ast.Expression, filename: str, mode: str) -> Any:
    try:
        return compile(tree, filename, mode)
    except (RecursionError, MemoryError):
        raise ExpressionRejected(f"the expression is nested too deeply (more than {MAX_NESTING} levels)") from None


def _reads_data(node: ast.AST) -> bool:
    return any(isinstance(child, ast.Name) and child.id != _HELPER and child.id not in SAFE_FUNCTIONS
               for child in ast.walk(node))


def _refuse_constant_excess(tree: ast.AST) -> None:
    """Evaluate every largest part of the (rewritten) text that reads no data, such as
    ``'a' * 10000 * 10000``, under the limits: such a part is refused when the file is deployed rather
    than when a case runs. All parts run in one compiled call (`_Ops.fold`), each judged by itself and
    sharing one time budget; the lambdas share the tree's nodes (compile() does not change them)."""
    parts: list[ast.expr] = []
    stack = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.Expr):
            continue  # a statement-level deadline check of ours
        if isinstance(node, (ast.BinOp, ast.Call, ast.JoinedStr, ast.List, ast.Tuple, ast.Dict, ast.Set)) \
                and not _reads_data(node):
            parts.append(node)
        else:
            stack.extend(ast.iter_child_nodes(node))
    if not parts:
        return
    no_args = ast.arguments(posonlyargs=[], args=[], vararg=None, kwonlyargs=[], kw_defaults=[], kwarg=None,
                            defaults=[])
    # a tuple constant is valid in an AST (the compiler folds to them), but typeshed allows only scalars
    lines = ast.Constant(tuple(getattr(node, "lineno", 0) for node in parts))  # type: ignore[arg-type]
    fold = ast.Expression(_helper_call("fold", lines, *(ast.Lambda(no_args, node) for node in parts)))
    code = _compile(ast.fix_missing_locations(fold), "<constant>", "eval")
    with time_budget(time_budget_seconds()):
        _run(_Compiled(code, True), "eval", {}, None)


def _deploy_time_left() -> None:
    """Compiling costs time too (≈ 1 ms per 1,000 characters): none once a shared budget has run out."""
    outer = _OUTER_DEADLINE.get()
    if outer is not None and time.perf_counter() > outer[0]:
        raise _Meter(outer[0], outer[1], True).out_of_time()


@functools.lru_cache(maxsize=4096)
def _compile_expression(source: str) -> _Compiled:
    if len(source) > MAX_SOURCE:
        raise ExpressionRejected(f"expression longer than {MAX_SOURCE} characters")
    _deploy_time_left()
    tree = _parse(source.strip(), "eval")
    _check_depth(tree)
    _check(tree, _EXPRESSION_NODES)
    return _build(tree, "<expression>", "eval")


@functools.lru_cache(maxsize=1024)
def _compile_script(source: str) -> _Compiled:
    if len(source) > MAX_SCRIPT_SOURCE:
        raise ExpressionRejected(f"script longer than {MAX_SCRIPT_SOURCE} characters")
    _deploy_time_left()
    tree = _parse(source, "exec")
    _check_depth(tree)
    _check(tree, _SCRIPT_NODES)
    # "<string>" is the code name SpiffWorkflow's engine looks for in a traceback to report the script's
    # failing line (PythonScriptEngine.get_error_line_number_and_content)
    return _build(tree, "<string>", "exec")


def compile_expression(source: str) -> Any:
    """Check and compile an expression; cached because conditions repeat across every case."""
    return _compile_expression(source).code


def compile_script(source: str) -> Any:
    return _compile_script(source).code


# ------------------------------------------------------------------------------------------------ running
_BASE_NAMESPACE: dict[str, Any] = {"__builtins__": {}, _HELPER: _OPS, **SAFE_FUNCTIONS}


def _namespace(external_context: Mapping[str, Any] | None) -> dict[str, Any]:
    ns = dict(_BASE_NAMESPACE)
    if external_context:
        ns.update({k: v for k, v in external_context.items() if not k.startswith("_")})
    return ns


def _run(compiled: _Compiled, mode: str, data: dict[str, Any], external_context: Mapping[str, Any] | None) -> Any:
    """eval/exec under a fresh meter; Python's own resource errors become a clear refusal."""
    if _HELPER in data:
        raise ExpressionRejected(f"task data may not hold the reserved name {_HELPER!r}")
    runner = eval if mode == "eval" else exec
    token = _METER.set(_new_meter()) if compiled.metered else None
    try:
        return runner(compiled.code, _namespace(external_context), data)  # noqa: S307 - AST-whitelisted
    except MemoryError:
        raise ExpressionLimitExceeded("the expression ran out of memory") from None
    except RecursionError:
        raise ExpressionLimitExceeded("the expression works on values nested too deeply") from None
    except OverflowError as exc:
        raise ExpressionRejected(f"arithmetic overflow: {exc}") from None
    finally:
        if token is not None:
            _METER.reset(token)


def evaluate(source: str, data: Mapping[str, Any], external_context: Mapping[str, Any] | None = None) -> Any:
    """Evaluate a restricted expression against task data."""
    return _run(_compile_expression(source), "eval", dict(data), external_context)


def execute(source: str, data: dict[str, Any], external_context: Mapping[str, Any] | None = None) -> None:
    """Run a restricted script; assignments land directly in `data`.

    Assigning a value that already exists builds nothing, so the meter does not see it; but each name is
    stored (and saved) in full. The data the script leaves is therefore measured as a whole — a value
    held under 3,000 names counts 3,000 times."""
    _run(_compile_script(source), "exec", data, external_context)
    try:
        _size(data, MAX_DATA_SIZE)
    except _Over:
        raise ExpressionLimitExceeded(f"the script leaves more than {MAX_DATA_SIZE:,} characters/elements of "
                                      "case data (a value copied into many fields counts each time)") from None


# ISO 8601 literals as modelers write them in timer definitions (Camunda: <timeDuration>P3D</timeDuration>).
_ISO_DURATION = (r"P(?!$)(\d+(\.\d+)?Y)?(\d+(\.\d+)?M)?(\d+(\.\d+)?W)?(\d+(\.\d+)?D)?"
                 r"(T(?=\d)(\d+(\.\d+)?H)?(\d+(\.\d+)?M)?(\d+(\.\d+)?S)?)?")
_ISO_DATETIME = r"\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?)?"
_ISO_LITERAL = re.compile(
    rf"^(?:{_ISO_DURATION}|{_ISO_DATETIME}"
    rf"|R\d*/(?:{_ISO_DURATION}|{_ISO_DATETIME})(?:/(?:{_ISO_DURATION}|{_ISO_DATETIME}))?)$",
    re.IGNORECASE,
)


def is_iso_literal(text: str) -> bool:
    """True for a bare ISO 8601 duration, date-time or repeating interval (``P3D``, ``R3/PT1H``)."""
    return bool(_ISO_LITERAL.match(text.strip()))
