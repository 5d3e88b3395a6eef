"""Form `pattern` constraints, matched in linear time.

A pattern comes from a BPMN file (untrusted) and is matched against what a user typed (untrusted), so
Python's backtracking `re` would let one bad pattern such as ``(a+)+$`` hang a completion for minutes.
RE2 guarantees time linear in the input and refuses what it cannot do that way (backreferences,
lookarounds), which is exactly the refusal we want at deploy time.

Written as designers write them for Camunda Modeler (Java/Python dialect): ``\\uXXXX`` escapes are
translated to RE2's ``\\x{XXXX}``. Semantics differ from Python's ``re`` in one deliberate way:
``\\d`` and ``\\w`` are ASCII only, so an ID number in full-width digits does not pass ``\\d{17}``.
"""
from __future__ import annotations

import functools
import re

import re2

#: Longest pattern a BPMN form may declare.
MAX_PATTERN_LENGTH = 300
#: Longest text a pattern is matched against (a form field with a pattern is an ID, a phone number …).
MAX_MATCHED_LENGTH = 500
#: Memory RE2 may use for one compiled pattern (a pattern needing more is refused).
MAX_PATTERN_MEMORY = 1 << 20

_JAVA_ESCAPE = re.compile(r"(?<!\\)((?:\\\\)*)\\(u([0-9A-Fa-f]{4})|U([0-9A-Fa-f]{8}))")


class PatternRejected(ValueError):
    """The pattern cannot be matched in linear time (or is not a regular expression at all)."""


def _to_re2(pattern: str) -> str:
    """``\\u4e00`` → ``\\x{4e00}`` (an even run of backslashes before it is literal, not an escape)."""
    return _JAVA_ESCAPE.sub(lambda m: f"{m.group(1)}\\x{{{m.group(3) or m.group(4)}}}", pattern)


@functools.lru_cache(maxsize=1024)
def compile_pattern(pattern: str) -> re2._Regexp:
    """Compile a form pattern with RE2 or raise PatternRejected saying why; cached (patterns repeat)."""
    if len(pattern) > MAX_PATTERN_LENGTH:
        raise PatternRejected(f"pattern longer than {MAX_PATTERN_LENGTH} characters")
    options = re2.Options()
    options.log_errors = False
    options.max_mem = MAX_PATTERN_MEMORY
    try:
        return re2.compile(_to_re2(pattern), options)
    except re2.error as exc:
        reason = exc.args[0].decode("utf-8", "replace") if exc.args and isinstance(exc.args[0], bytes) else str(exc)
        hint = ""
        if re.search(r"\\[1-9]|\(\?(?:[=!]|<[=!])", pattern):
            hint = " (backreferences and lookarounds cannot be matched in linear time; use a plain pattern)"
        raise PatternRejected(f"pattern {pattern!r} is not supported: {reason}{hint}") from None


def check_pattern(pattern: str) -> None:
    """Deploy-time check: raises PatternRejected for a pattern the form could not apply."""
    compile_pattern(pattern)


def full_match(pattern: str, text: str) -> bool:
    """Does the whole text match? Linear in len(text); PatternRejected for a pattern RE2 refuses."""
    if len(text) > MAX_MATCHED_LENGTH:
        return False
    return compile_pattern(pattern).fullmatch(text) is not None
