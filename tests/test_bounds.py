"""Every user input is bounded (DESIGN.md invariant 10): what an expression or script can build, how long
it can run, how a form pattern is matched, how large a BPMN file and its timers can be. Each refusal is
clear (ExpressionRejected, BpmnRejected with element and line, WorkflowError) — never a traceback or a
hang. No timings are asserted: the payloads below would take minutes or gigabytes if they were not
refused, so a regression shows as a hang or a MemoryError, not as a flaky number."""
from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from engine import bpmn, cases, clock, expressions, forms, patterns, processes, settings
from engine.errors import BpmnRejected, WorkflowError
from engine.expressions import ExpressionLimitExceeded, ExpressionRejected, evaluate, execute

from .test_bpmn_safety import make

BIG = "b" * 60_000  # each under the value limit; two together are over it


def refused(source: str, data: dict | None = None, script: bool = False) -> ExpressionRejected:
    with pytest.raises(ExpressionRejected) as exc:
        (execute if script else evaluate)(source, dict(data or {}))
    return exc.value


# ------------------------------------------------------------------------------------------ values
@pytest.mark.parametrize("source", [
    "'a' * 10000 * 10000 * 10",
    "'a' * n * n",
    "n * 'a' * n",
    "s + s",
    "s * 2",
    "f'{s}{s}'",
    "str(s) + s",
    "'%s%s' % (t, t)",
    "'%(a)s%(a)s' % {'a': t}",
    "'x' * 100001",
])
def test_text_is_bounded(source):
    exc = refused(source, {"n": 10_000, "s": BIG, "t": BIG[:50_001]})
    assert isinstance(exc, ExpressionLimitExceeded) and "100,000" in str(exc)


@pytest.mark.parametrize("source", [
    "[[1] * 1000] * 1000",
    "[1] * 99999999",
    "[x] * 1000",
    "(x, x)",
    "[x, x]",
    "{'a': x, 'b': x}",
    "{x[0], x[1]} if False else [x] + [x]",
    "(1,) * n",
    "sum([[0] * 300] * 400, [])",
    "sum([[0]] * 60000, [])",
    "sorted(x + x)",
    "str([s] * 2)",
    "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]",
])
def test_lists_dicts_and_sets_are_bounded(source):
    assert isinstance(refused(source, {"x": list(range(60_000)), "n": 200_000, "s": BIG}), ExpressionLimitExceeded)


def test_building_step_by_step_in_a_script_is_bounded():
    for script in ("a = 'x'\n" + "a = a + a\n" * 40,
                   "a = 'x'\n" + "a += a\n" * 40,
                   "a = [1]\n" + "a = [a, a]\n" * 40,
                   "a = [1]\n" + "a = [a]\n" * 40,  # depth
                   "a = 2\n" + "a = a * a\n" * 40,  # bits
                   "a = 'x' * 60000\n" + "".join(f"b{i} = a + 'y'\n" for i in range(40))):  # total built
        assert isinstance(refused(script, script=True), ExpressionLimitExceeded), script


@pytest.mark.parametrize("source", [
    "n * n * n * n * n * n * n * n * n * n",
    "int('9' * 5000)",
    "int(s)",
    "round(1, -100000000)",
    "round(1.5, n)",
])
def test_numbers_are_bounded(source):
    big = 10 ** 300
    exc = refused(source, {"n": big, "s": "7" * 3000})
    assert isinstance(exc, ExpressionLimitExceeded)


def test_number_literals_are_bounded():
    assert "bits" in str(refused("1" + "0" * 1500 + " > x"))


@pytest.mark.parametrize("source", [
    "f'{0:>999999999}'",
    "f'{x:{w}}'",
    "f'{x:.{w}f}'",
    "f'{x:0{w}d}'",
    "'%0999999999d' % 1",
    "'%.999999999f' % 1.0",
    "'%*d' % (w, 1)",
    "'%.*f' % (w, 1.0)",
    "'%-999999999s' % 'a'",
    "'%((x))0999999999d' % {'(x)': 1}",
    "'%(a)0999999999d' % {'a': 1}",
])
def test_format_widths_and_precisions_are_bounded(source):
    assert isinstance(refused(source, {"x": 7, "w": 999_999_999}), ExpressionLimitExceeded)


def test_python_overflow_and_recursion_are_refusals_not_tracebacks():
    assert "overflow" in str(refused("int(1e308 * 10)"))
    assert "overflow" in str(refused("x / 3", {"x": 10 ** 400}))
    deep: list = []
    for _ in range(2000):
        deep = [deep]
    assert isinstance(refused("[d]", {"d": deep}), ExpressionLimitExceeded)
    assert isinstance(refused("d == e", {"d": deep, "e": [deep]}), ExpressionLimitExceeded)


@pytest.mark.parametrize("source", [
    "+".join(["1"] * 1999),
    "-" * 3000 + "1",
    "not " * 900 + "x",
    "[" * 150 + "]" * 150,
    "(" * 300 + "1" + ")" * 300,
    "f(" * 150 + ")" * 150,
])
def test_deep_nesting_is_refused_before_python_compiles_it(source):
    exc = refused(source[:expressions.MAX_SOURCE], {"x": 1})
    assert "nested" in str(exc) or "syntax" in str(exc) or "functions" in str(exc)


def test_ordinary_expressions_still_work():
    data = {"a": "x" * 50_000, "n": 3, "items": [[1, 2], [3]], "amount": 1.5}
    assert len(evaluate("a + a[:40000]", data)) == 90_000
    assert evaluate("sum(items, [])", data) == [1, 2, 3]
    assert evaluate("sorted(sum(items, []), reverse=True)", data) == [3, 2, 1]
    assert evaluate("f'{amount:>8.2f}|{n:03d}|{a[:3]!r}'", data) == "    1.50|003|'xxx'"
    assert evaluate("'%05.1f %s' % (amount, n)", data) == "001.5 3"
    assert evaluate("'%(n)d%%' % {'n': n}", data) == "3%"
    assert evaluate("[n] * 3 + [0]", data) == [3, 3, 3, 0]
    assert evaluate("str(items) + str(n * 10)", data) == "[[1, 2], [3]]30"
    assert evaluate("int('42') + round(2.345, 2) * 0", data) == 42
    data = {"count": 1}
    execute("count += 1\nlabel = f'第{count}次'\nif count > 1:\n    flags = [label] * 2", data)
    assert data["flags"] == ["第2次", "第2次"]


def test_the_helper_object_cannot_be_reached_or_shadowed():
    refused("_yc.add(1, 2)")
    with pytest.raises(ExpressionRejected):
        evaluate("1 + 1", {"_yc": object()})


# ------------------------------------------------------------------------------------------ time
@pytest.fixture
def short_budget(monkeypatch):
    monkeypatch.setenv("YICUN_EXPRESSION_SECONDS", "0.05")  # the smallest budget the settings allow
    settings.get.cache_clear()
    assert expressions.time_budget_seconds() == 0.05


@pytest.mark.parametrize("script", [
    "a = [0] * 99000\n" + "b = 1 in a\n" * 1300,
    "a = [0] * 99000\nc = [0] * 99000\n" + "b = a == c\n" * 1300,
    "a = [0] * 99000\n" + "b = any(a)\n" * 1300,
    "a = [0] * 99000\n" + "b = max(a)\n" * 1300,
    "a = [0] * 99000\n" + "b = a[::-1] == a\n" * 800,
])
def test_a_slow_script_runs_out_of_time(short_budget, script):
    assert "ran out of time" in str(refused(script, script=True))


def test_a_slow_expression_runs_out_of_time(short_budget):
    source = " or ".join(["1 in a"] * 400)
    assert "ran out of time" in str(refused(source, {"a": [0] * 99_000}))


def test_a_shared_budget_ends_every_evaluation_inside_it():
    with expressions.time_budget(0.0):
        exc = refused("len(str(x)) + 1", {"x": 1})
        assert "shared" in str(exc)
        with pytest.raises(ExpressionLimitExceeded):
            expressions.compile_expression("x * 2 + 1 == 7 * 12345")  # not compiled before: compiling costs too
    assert evaluate("len(str(x)) + 1", {"x": 1}) == 2


# ------------------------------------------------------------------------------------------ patterns
EVIL_PATTERNS = [r"(a+)+$", r"^(a|a)*$", r"(a*)*b", r"^(\w+\s?)*$", r"(.*a){20}"]


@pytest.mark.parametrize("pattern", EVIL_PATTERNS)
def test_catastrophic_patterns_are_matched_in_linear_time(pattern):
    text = "a" * 499 + "!"
    assert patterns.full_match(pattern, text) is False
    assert forms._constraint_problem(text, {"pattern": pattern}) == "has the wrong format"


@pytest.mark.parametrize("pattern", [r"(\w)\1", r"(?=a)a", r"(?<!a)b", r"(?!x)y", r"a{1001}", r"((a{50}){50}){50}",
                                     "(", "x" * 301])
def test_patterns_re2_cannot_take_are_refused_with_a_reason(pattern):
    with pytest.raises(patterns.PatternRejected) as exc:
        patterns.check_pattern(pattern)
    assert str(exc.value)
    assert forms._constraint_problem("abc", {"pattern": pattern}) is None  # an old version's pattern: skipped


def test_the_catalogue_patterns_keep_working():
    assert patterns.full_match(r"^[\u4e00-\u9fa5][A-Z][A-Z0-9]{5,6}$", "湘H12345")
    assert patterns.full_match(r"^\d{17}[\dXx]$", "43090219590101002X")
    assert not patterns.full_match(r"^\d{17}[\dXx]$", "４３0902195901010025")  # full-width digits
    assert not patterns.full_match(r"^1\d{10}$", "13800000000\n")
    assert patterns.full_match(r"\\u4e00", "\\u4e00")  # an escaped backslash stays literal


def pattern_file(pattern: str) -> bytes:
    form = ('<bpmn:extensionElements><camunda:formData><camunda:formField id="code" label="编号" type="string">'
            f'<camunda:validation><camunda:constraint name="pattern" config="{pattern}"/></camunda:validation>'
            '</camunda:formField></camunda:formData></bpmn:extensionElements>')
    data = make().replace(b'<bpmn:userTask id="T" name="\xe5\xae\xa1\xe6\xa0\xb8"/>',
                          f'<bpmn:userTask id="T" name="审核">{form}</bpmn:userTask>'.encode())
    return data.replace(b'xmlns:xsi=', b'xmlns:camunda="http://camunda.org/schema/1.0/bpmn" xmlns:xsi=')


def findings_of(data: bytes) -> list:
    with pytest.raises(BpmnRejected) as exc:
        bpmn.compile_bpmn(data, "bounds.bpmn")
    return exc.value.findings


@pytest.mark.parametrize("pattern", [r"(\w)\1", r"(?=a)a", "a{1001}"])
def test_deploy_refuses_patterns_re2_cannot_take(pattern):
    findings = findings_of(pattern_file(pattern))
    (finding,) = [f for f in findings if "pattern" in f.message]
    line = next(i for i, l in enumerate(pattern_file(pattern).decode().splitlines(), 1) if 'name="pattern"' in l)
    assert finding.element_id == "T" and finding.line == line


def test_deploy_accepts_a_catastrophic_pattern_because_it_runs_in_linear_time():
    compiled = bpmn.compile_bpmn(pattern_file("(a+)+$"), "ok.bpmn")
    field = compiled.processes[0].user_tasks["T"].fields[0]
    assert field.constraints == {"pattern": "(a+)+$"}


# ------------------------------------------------------------------------------------------ BPMN files
HEAD = (b'<?xml version="1.0" encoding="UTF-8"?>\n<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/'
        b'MODEL" id="D" targetNamespace="http://yicun.example/t">\n<bpmn:process id="BIG" isExecutable="true">\n'
        b'<bpmn:startEvent id="S"/>\n')
TAIL = b'<bpmn:endEvent id="E"/>\n</bpmn:process>\n</bpmn:definitions>\n'


def chain(n: int, pad: int = 0) -> bytes:
    body = b"".join(b'<bpmn:userTask id="T%d" name="%s"/>\n<bpmn:sequenceFlow id="F%d" sourceRef="%s" targetRef="T%d"/>\n'
                    % (i, b"x" * pad, i, b"S" if i == 0 else b"T%d" % (i - 1), i) for i in range(n))
    return HEAD + body + b'<bpmn:sequenceFlow id="FE" sourceRef="T%d" targetRef="E"/>\n' % (n - 1) + TAIL


def test_a_file_at_the_flow_element_limit_compiles_and_one_more_is_refused():
    n = (bpmn.MAX_FLOW_ELEMENTS - 3) // 2  # start, end, last flow, n tasks + n flows
    bpmn.compile_bpmn(chain(n), "ok.bpmn")
    (finding,) = findings_of(chain(n + 1))
    assert "flow elements" in finding.message and finding.element_id and finding.line


def test_a_two_megabyte_file_of_thirteen_thousand_tasks_is_refused_by_counting():
    data = chain(13_000, pad=20)
    assert len(data) < bpmn.MAX_BPMN_BYTES
    (finding,) = findings_of(data)
    assert "flow elements" in finding.message and finding.line


@pytest.mark.parametrize("data, what", [
    (HEAD + b"<bpmn:documentation>" + b"x" * (bpmn.MAX_TEXT_LENGTH + 1) + b"</bpmn:documentation>" + TAIL, "text"),
    (HEAD.replace(b'id="S"', b'id="S" name="' + b"x" * (bpmn.MAX_ATTRIBUTE_LENGTH + 1) + b'"') + TAIL, "attribute"),
    (HEAD + b"<bpmn:extensionElements>" + b"<x:a xmlns:x='urn:x'>" * 60 + b"</x:a>" * 60
     + b"</bpmn:extensionElements>" + TAIL, "nested"),
    (HEAD + b"<bpmn:extensionElements>" + b"<x:a xmlns:x='urn:x'/>" * (bpmn.MAX_XML_ELEMENTS + 1)
     + b"</bpmn:extensionElements>" + TAIL, "XML elements"),
    (HEAD.replace(b'<bpmn:process id="BIG" isExecutable="true">', b"".join(
        b'<bpmn:process id="P%d" isExecutable="false"/>' % i for i in range(bpmn.MAX_PROCESSES + 1))
        + b'<bpmn:process id="BIG" isExecutable="true">') + TAIL, "processes"),
])
def test_size_limits_are_checked_before_parsing_deeply(data, what):
    (finding,) = findings_of(data)
    assert what in finding.message and finding.line


def test_a_file_not_in_utf8_is_refused_not_a_decode_traceback_at_deploy():
    data = make(name="审核").decode().replace('encoding="UTF-8"', 'encoding="GB18030"').encode("gb18030")
    (finding,) = findings_of(data)
    assert "UTF-8" in finding.message


SCRIPT_FIRST = """<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" id="D" targetNamespace="http://yicun.example/t">
  <bpmn:process id="FIRST" isExecutable="true">
    <bpmn:startEvent id="S"/>
    <bpmn:sequenceFlow id="f1" sourceRef="S" targetRef="SC"/>
    <bpmn:scriptTask id="SC"><bpmn:script>{script}</bpmn:script></bpmn:scriptTask>
    <bpmn:sequenceFlow id="f2" sourceRef="SC" targetRef="T"/>
    <bpmn:userTask id="T"/>
    <bpmn:sequenceFlow id="f3" sourceRef="T" targetRef="E"/>
    <bpmn:endEvent id="E"/>
  </bpmn:process>
</bpmn:definitions>
"""


def script_first(script: str) -> bytes:
    """A process whose script runs before its first wait state, i.e. in the deploy's smoke run."""
    return SCRIPT_FIRST.format(script=script).encode()


def test_script_first_template_compiles():
    bpmn.compile_bpmn(script_first("a = [0] * 1000\nb = a == a"), "ok.bpmn")


def test_slow_scripts_share_the_deploys_time_budget(monkeypatch):
    # a budget far below what the script needs on any machine: 1,300 comparisons of 99,000-element lists
    from engine.bpmn import compiler

    monkeypatch.setattr(compiler, "DEPLOY_TIME_BUDGET_SECONDS", 0.005)
    script = "a = [0] * 99000\n" + "b = a == a\n" * 1300
    findings = findings_of(script_first(script))
    assert any(f.element_id == "SC" and "ran out of time" in f.message and f.line == 6 for f in findings), findings


@pytest.mark.parametrize("field, payload, element", [
    ("condition", "'a' * 10000 * 10000 == decision", "f5"),
    ("condition", "decision in [[0] * 1000] * 1000", "f5"),
    ("condition", "f'{decision:>999999999}' == ''", "f5"),
    ("script", "x = '%0999999999d' % 1", "SC"),
    ("script", "x = sum([[0] * 300] * 400, [])", "SC"),
    ("timer", 'f"P{len(str([[1] * 1000] * 1000))}D"', "TD"),
    ("timer", "'P' + str(len(sorted('a' * 10000 * 10000))) + 'D'", "TD"),
    ("condition", "+".join(["1"] * 500) + " == decision", "f5"),
])
def test_costly_constants_are_refused_at_deploy_with_element_and_line(field, payload, element):
    findings = findings_of(make(**{field: payload}))
    assert any(f.element_id == element and f.line for f in findings), findings


def test_a_script_that_builds_too_much_from_nothing_is_refused_by_the_smoke_run():
    for script in ("a = 'x' * 1000\n" + "a = a + a\n" * 10, "a = [0]\n" + "a = a + a\n" * 20,
                   "a = 2\n" + "a = a * a\n" * 20, "a = [0] * 50000\nb = [a, a, a]"):
        findings = findings_of(script_first(script))
        assert any(f.element_id == "SC" and f.line == 6 and "larger than" in f.message for f in findings), findings


# ------------------------------------------------------------------------------------------ timers
@pytest.mark.parametrize("timer", [
    "P99999999999999D", "P99999999999Y", "PT99999999999999999999S", "P" + "9" * 5000 + "D", "P11Y", "P523W",
    '"P99999999999999D"', 'f"P{99999999999999}D"', "workdays(3650)",
])
def test_out_of_range_durations_are_refused_at_deploy(timer):
    findings = findings_of(make(timer=timer))
    assert any(f.element_id == "TD" and f.line for f in findings), findings


@pytest.mark.parametrize("kind, timer", [
    ("timeDate", "9999-12-31T00:00:00+08:00"),
    ("timeDate", "2026-13-40T00:00:00+08:00"),
    ("timeCycle", "R/PT0S"),
    ("timeCycle", "R/PT1S"),
    ("timeCycle", "R3/PT0S"),
    ("timeCycle", "R/P99999999999Y"),
    ("timeCycle", "R3/2026-01-01T00:00:00Z/P99999999999Y"),
])
def test_out_of_range_dates_and_cycles_are_refused_at_deploy(kind, timer):
    findings = findings_of(make(timer=timer).replace(b"timeDuration", kind.encode()))
    assert any(f.element_id == "TD" and f.line for f in findings), findings


def test_sane_timers_still_deploy():
    for timer in ("P10Y", "P3D", "PT1.5H", "P1Y2M3DT4H5M6S", "workdays(2000)", 'f"P{days}D"'):
        bpmn.compile_bpmn(make(timer=timer), "ok.bpmn")


def start_refused(data: bytes, **case_data: Any) -> tuple[Any, WorkflowError]:
    """Run a new case of `data`'s process, holding `case_data`, to its first wait: it must be refused."""
    proc = bpmn.compile_bpmn(data, "ok.bpmn").processes[0]
    instance = bpmn.Instance.start(proc.spec, proc.subprocess_specs, case_data)
    with clock.using(clock.ManualClock("2026-11-02T09:00:00+08:00")):
        with pytest.raises(WorkflowError) as exc:
            cases.service.run_engine(instance)
    return instance.workflow, exc.value


@pytest.mark.parametrize("days", [99_999_999_999_999, 10 ** 40, 4000, "3X", "-1", 2.5e300])
def test_an_out_of_range_timer_from_case_data_is_a_workflow_error_when_armed(days):
    """The timer arms when the user task becomes ready, at the start of the case."""
    _wf, error = start_refused(make(timer='f"P{days}D"'), days=days)
    assert "timer B" in str(error)


def test_timer_range_helpers():
    now = datetime(2026, 11, 2, 1, 0, tzinfo=UTC)
    assert bpmn.timer_delta("P10Y", now).days in (3652, 3653)
    for text in ("P3654D", "P99999999999Y", "PT3X", "P1W2D", ""):
        with pytest.raises(bpmn.TimerValueError):
            bpmn.timer_delta(text, now)
    with pytest.raises(bpmn.TimerValueError):
        bpmn.timer_instant("2040-01-01T00:00:00Z", now)
    assert bpmn.timer_instant("2030-01-01T00:00:00Z", now).year == 2030


# ------------------------------------------------------------------------------------------ deploy and the lock
def test_deploy_takes_a_file_compiled_before_the_transaction(db_engine):
    from engine import db
    data = make()
    compiled = bpmn.compile_bpmn(data, "ok.bpmn")
    with db.transaction(db_engine) as s:
        (result,) = processes.deploy(s, data, "ok.bpmn", compiled=compiled)
    assert result.created and result.process_id == "EVIL"
    with pytest.raises(ValueError):
        with db.transaction(db_engine) as s:
            processes.deploy(s, make(name="别的"), "other.bpmn", compiled=compiled)


def field_file(field: str, timer: str = "P3D") -> bytes:
    """The safety template with one form field on its user task (and a camunda namespace)."""
    form = f'<bpmn:extensionElements><camunda:formData>{field}</camunda:formData></bpmn:extensionElements>'
    data = make(timer=timer, condition="ok").replace(b'<bpmn:userTask id="T" name="\xe5\xae\xa1\xe6\xa0\xb8"/>',
                                     f'<bpmn:userTask id="T" name="审核">{form}</bpmn:userTask>'.encode())
    return data.replace(b'xmlns:xsi=', b'xmlns:camunda="http://camunda.org/schema/1.0/bpmn" xmlns:xsi=')


def deploy_file(engine, data: bytes) -> None:
    from engine import db
    with db.transaction(engine) as s:
        processes.deploy(s, data, "bounds.bpmn")


def test_a_catastrophic_pattern_cannot_hang_a_completion(seeded):
    from engine.errors import InvalidInput

    from .conftest import CLERK, complete, ready_tasks, start
    deploy_file(seeded, field_file('<camunda:formField id="code" label="编号" type="string"><camunda:validation>'
                                   '<camunda:constraint name="pattern" config="(a+)+$"/></camunda:validation>'
                                   '</camunda:formField>'))
    case = start(seeded, service="EVIL")
    (task,) = ready_tasks(seeded, case.case_number)
    with pytest.raises(InvalidInput) as exc:
        complete(seeded, task.id, CLERK, {"code": "a" * 499 + "!"})
    assert exc.value.details["fields"]["code"] == "has the wrong format"
    assert complete(seeded, task.id, CLERK, {"code": "a" * 499}).status == "completed"


@pytest.mark.parametrize("days", [99_999_999_999_999, 5000])
def test_an_out_of_range_timer_from_intake_data_refuses_the_start(seeded, days):
    """A field a timer reads steers the case, so it is set by its step, never by start data; and when
    a timer's value from case data is out of range, arming it refuses the step with the timer named."""
    from engine.errors import InvalidInput

    from .conftest import start
    deploy_file(seeded, field_file('<camunda:formField id="days" label="天数" type="long"/>', timer='f"P{days}D"'))
    with pytest.raises(InvalidInput) as refused:
        start(seeded, service="EVIL", data={"days": days})
    assert "days" in refused.value.details["fields"]
    with pytest.raises(BpmnRejected) as exc:  # a constant one is refused at deploy, with its element
        deploy_file(seeded, field_file('<camunda:formField id="note" label="备注" type="string"/>',
                                       timer=f'"P" + str({days}) + "D"'))
    assert "3653 days" in str(exc.value)


def multi_instance(cardinality: str, data_input: bool = False) -> bytes:
    loop = (f"<bpmn:loopCardinality>{cardinality}</bpmn:loopCardinality>" if cardinality else "") + \
        ("<bpmn:loopDataInputRef>items</bpmn:loopDataInputRef>" if data_input else "")
    return script_first("n = 3").replace(b'<bpmn:userTask id="T"/>', (
        f'<bpmn:userTask id="T"><bpmn:multiInstanceLoopCharacteristics isSequential="false">{loop}'
        '</bpmn:multiInstanceLoopCharacteristics></bpmn:userTask>').encode())


def test_multi_instance_cardinality_is_bounded_at_deploy():
    bpmn.compile_bpmn(multi_instance("3"), "ok.bpmn")
    bpmn.compile_bpmn(multi_instance("n + m"), "ok.bpmn")  # from case data: bounded when it runs
    for cardinality in ("100000000", f"{expressions.MAX_INSTANCES + 1}", "'x'", "n * 40000000"):
        findings = findings_of(multi_instance(cardinality))
        assert any(f.element_id == "T" and f.line == 8 and "instances" in f.message for f in findings), findings
    findings = findings_of(multi_instance("", data_input=True))
    assert any(f.element_id == "T" and "data collection" in f.message for f in findings), findings


@pytest.mark.parametrize("m", [10 ** 8, -1, "3", True])
def test_multi_instance_cardinality_from_case_data_is_bounded_when_it_runs(m):
    wf, error = start_refused(multi_instance("m"), m=m)
    assert "instances" in str(error)
    assert len(wf.tasks) < 50


@pytest.mark.parametrize("copies", [11, 40, 1500])
def test_a_value_copied_into_many_fields_counts_each_time(copies):
    """Assigning an existing value builds nothing, but each field is stored and saved in full: 3,000
    aliases of a 100 kB text made each case 315 MB. The data a script leaves is measured as a whole."""
    script = "a = 'x' * 99999\n" + "".join(f"b{i} = a\n" for i in range(copies))
    findings = findings_of(script_first(script))
    assert any(f.element_id == "SC" and "case data" in f.message for f in findings), findings


def test_a_few_copies_are_fine():
    bpmn.compile_bpmn(script_first("a = 'x' * 99999\n" + "".join(f"b{i} = a\n" for i in range(5))), "ok.bpmn")


def test_nested_multi_instance_is_refused_at_once():
    """100 instances of a subprocess holding 100 instances each made 10,000 tasks in the deploy's smoke
    run (5.5 s, past the 2 s budget): a multi-instance inside a multi-instance is refused by the lint."""
    import time
    inner = ('<bpmn:userTask id="Inner"><bpmn:multiInstanceLoopCharacteristics isSequential="false">'
             '<bpmn:loopCardinality>100</bpmn:loopCardinality></bpmn:multiInstanceLoopCharacteristics>'
             '</bpmn:userTask>')
    nested = script_first("n = 3").replace(b'<bpmn:userTask id="T"/>', (
        '<bpmn:subProcess id="T"><bpmn:multiInstanceLoopCharacteristics isSequential="false">'
        '<bpmn:loopCardinality>100</bpmn:loopCardinality></bpmn:multiInstanceLoopCharacteristics>'
        f'<bpmn:startEvent id="S2"/><bpmn:sequenceFlow id="g1" sourceRef="S2" targetRef="Inner"/>{inner}'
        '<bpmn:sequenceFlow id="g2" sourceRef="Inner" targetRef="E2"/><bpmn:endEvent id="E2"/>'
        '</bpmn:subProcess>').encode())
    started = time.perf_counter()
    findings = findings_of(nested)
    assert time.perf_counter() - started < 30  # a hang guard only: it used to take 5.5 s
    assert any(f.element_id == "Inner" and "inside the multi-instance 'T'" in f.message for f in findings), findings


@pytest.mark.parametrize("script, line, error_type", [
    ("a = 1\nb = applicant_age + 1\n", 2, "NameError"),
    ("a = 1\nb = 2\nc = 1 / 0\n", 3, "ZeroDivisionError"),
    ("a = 'x' + 1\n", 1, "TypeError"),
])
def test_a_failing_script_names_its_element_line_and_error_type(script, line, error_type):
    """A refused step says where, as SpiffWorkflow knew it: the BPMN element, the script's line, the error type
    (for the designer to go straight there; the JSON API and the incident list carry the same)."""
    _wf, error = start_refused(script_first(script))
    assert (error.details.get("element"), error.details.get("line"), error.details.get("error_type")) == \
        ("SC", line, error_type), error.details
    assert error.reason == "workflow.failed" and error.to_dict()["element"] == "SC"
