"""Time to refuse hostile input (issue 7 §5): big and deep BPMN files, costly expressions, ReDoS patterns.

Each line prints how long the engine took to give its answer and what the answer was (the first
finding). Before the bounds, the same inputs took: the 2 MB file of 13,000 tasks 10 s to refuse; the
5 kB quadratic `sum` file over 3 minutes of `deploy --dry-run`; the (a+)+$ form pattern over 30 s per
completion; 'a'*10000*10000*10 a gigabyte. Also prints the cost of ordinary conditions (they run on
every step).

    python benchmarks/bounds.py
"""
from __future__ import annotations

import time
import timeit
from collections.abc import Callable

from common import ROOT  # noqa: F401  (puts the repository on sys.path)

from engine import bpmn, expressions, forms
from engine.errors import BpmnRejected

HEAD = ('<?xml version="1.0" encoding="UTF-8"?>\n<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/'
        'MODEL" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" id="D" targetNamespace="http://yicun.example/t">\n'
        '<bpmn:process id="BIG" isExecutable="true">\n<bpmn:startEvent id="S"/>\n')
TAIL = '<bpmn:endEvent id="E"/>\n</bpmn:process>\n</bpmn:definitions>\n'


def tasks(n: int, pad: int = 0) -> bytes:
    """A chain of n user tasks."""
    body = "".join(f'<bpmn:userTask id="T{i}" name="{"x" * pad}"/>\n<bpmn:sequenceFlow id="F{i}" '
                   f'sourceRef="{"S" if i == 0 else f"T{i - 1}"}" targetRef="T{i}"/>\n' for i in range(n))
    return (HEAD + body + f'<bpmn:sequenceFlow id="FE" sourceRef="T{n - 1}" targetRef="E"/>\n' + TAIL).encode()


def timers(expressions_: list[str]) -> bytes:
    """One user task per timer expression, each with a non-interrupting boundary timer."""
    body, prev = [], "S"
    for i, text in enumerate(expressions_):
        body.append(f'<bpmn:userTask id="T{i}"/><bpmn:sequenceFlow id="F{i}" sourceRef="{prev}" targetRef="T{i}"/>'
                    f'<bpmn:boundaryEvent id="B{i}" attachedToRef="T{i}" cancelActivity="false">'
                    f'<bpmn:timerEventDefinition id="TD{i}"><bpmn:timeDuration>{text}</bpmn:timeDuration>'
                    f'</bpmn:timerEventDefinition></bpmn:boundaryEvent><bpmn:sequenceFlow id="G{i}" sourceRef="B{i}" '
                    f'targetRef="X{i}"/><bpmn:endEvent id="X{i}"/>\n')
        prev = f"T{i}"
    return (HEAD + "".join(body) + f'<bpmn:sequenceFlow id="FE" sourceRef="{prev}" targetRef="E"/>' + TAIL).encode()


def scripts(script: str, n: int) -> bytes:
    """n script tasks in a row before the first user task: the deploy's smoke run executes them all."""
    body, prev = [], "S"
    for i in range(n):
        body.append(f'<bpmn:scriptTask id="SC{i}"><bpmn:script>{script}</bpmn:script></bpmn:scriptTask>'
                    f'<bpmn:sequenceFlow id="F{i}" sourceRef="{prev}" targetRef="SC{i}"/>\n')
        prev = f"SC{i}"
    body.append(f'<bpmn:userTask id="U"/><bpmn:sequenceFlow id="FU" sourceRef="{prev}" targetRef="U"/>')
    return (HEAD + "".join(body) + '<bpmn:sequenceFlow id="FE" sourceRef="U" targetRef="E"/>' + TAIL).encode()


def conditions(condition: str, n: int) -> bytes:
    body = ['<bpmn:exclusiveGateway id="G" default="FD"/><bpmn:sequenceFlow id="F0" sourceRef="S" targetRef="G"/>'
            '<bpmn:sequenceFlow id="FD" sourceRef="G" targetRef="E"/>']
    body += [f'<bpmn:sequenceFlow id="C{i}" sourceRef="G" targetRef="E"><bpmn:conditionExpression '
             f'xsi:type="bpmn:tFormalExpression">{condition} or x == {i}</bpmn:conditionExpression></bpmn:sequenceFlow>\n'
             for i in range(n)]
    return (HEAD + "".join(body) + TAIL).encode()


def deploy_figure(label: str, data: bytes) -> None:
    start = time.perf_counter()
    try:
        bpmn.compile_bpmn(data, "bench.bpmn")
        answer = "deploys"
    except BpmnRejected as exc:
        first = exc.findings[0]
        answer = f"refused, {len(exc.findings)} finding(s); first [{first.element_id}] line {first.line}: {first.message}"
    print(f"{time.perf_counter() - start:8.3f} s  {len(data) / 1e6:5.2f} MB  {label}\n{'':27}{answer[:150]}")


def timed(label: str, action: Callable[[], object]) -> None:
    start = time.perf_counter()
    try:
        answer = repr(action())[:60]
    except Exception as exc:  # the refusals are the point
        answer = f"{type(exc).__name__}: {exc}"[:110]
    print(f"{time.perf_counter() - start:8.3f} s  {label:42} {answer}")


def main() -> None:
    print("deploy (compile_bpmn), time to answer")
    deploy_figure("13,000 user tasks (2 MB)", tasks(13_000, pad=20))
    deploy_figure(f"{(bpmn.MAX_FLOW_ELEMENTS - 3) // 2} user tasks (at the flow-element limit)",
                  tasks((bpmn.MAX_FLOW_ELEMENTS - 3) // 2))
    quadratic = 'f"PT{len(sum([[0]] * 49999, [])) % 7}S"'
    deploy_figure("quadratic sum of lists in 30 timers (≈5 kB)", timers([quadratic] * 30))
    deploy_figure("'a'*10000*10000*10 in 30 timers", timers(["'P' + str(len('a' * 10000 * 10000 * 10)) + 'D'"] * 30))
    deploy_figure("P99999999999Y (Spiff adds months one by one)", timers(["P99999999999Y"]))
    deploy_figure("120 scripts of 1,300 big comparisons each", scripts("a = [0]*99999\n" + "b = a == a\n" * 1300, 120))
    deploy_figure("150 conditions of 300 big list builds each",
                  conditions(" or ".join(["[0]*99999 == [1]*99999"] * 150), 150))
    deploy_figure("120 scripts of 15,000 characters, cheap", scripts("a = 1\n" * 2500, 120))

    print("\nexpressions, time to answer")
    data = {"x": 7, "s": "b" * 60_000, "a": [0] * 99_000}
    for source in ("'a'*10000*10000*10", "f'{x:>999999999}'", "'%0999999999d' % x", "sum([[0]] * 49999, [])",
                   "len(str([s] * 1000))", "int('9' * 5000)", " or ".join(["1 in a"] * 400)):
        timed(source[:42], lambda: expressions.evaluate(source, data))
    timed("script: a = a + a (x40)", lambda: expressions.execute("a = 'x'\n" + "a = a + a\n" * 40, {}))

    print("\nform pattern (a+)+$ against 'a'*499 + '!'")
    timed("RE2 (engine.forms)", lambda: forms._constraint_problem("a" * 499 + "!", {"pattern": "(a+)+$"}))

    print("\nordinary conditions, µs per evaluation (best of 5 × 100,000)")
    cond = {"township_decision": "approve", "amount": 1500, "documents_complete": True, "sla_hours": 5,
            "members": [1, 2]}
    for source in ('township_decision == "approve"', "amount > 1000 and documents_complete", 'f"PT{sla_hours}H"',
                   "len(members) * 2 if members else 0", "workdays(5)"):
        expressions.evaluate(source, cond)
        best = min(timeit.repeat(lambda: expressions.evaluate(source, cond), number=100_000, repeat=5))
        print(f"{best * 10:8.2f} µs  {source}")


if __name__ == "__main__":
    main()
