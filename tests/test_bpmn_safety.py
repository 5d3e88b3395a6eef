"""BPMN is untrusted input: malicious or broken files are refused at deploy with the element and line,
and nothing in them runs — not at deploy, and not later from a stored version either."""
import pytest
from SpiffWorkflow.bpmn.exceptions import WorkflowTaskException
from sqlalchemy import func, select

from engine import bpmn, db, processes
from engine.errors import BpmnRejected
from engine.bpmn.script_engine import RESTRICTED_ENGINE
from engine.expressions import ExpressionRejected
from engine.models import ProcessVersion

from .conftest import FIXTURES

TEMPLATE = """<?xml version="1.0" encoding="UTF-8"?>
{prolog}<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
    xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" id="D" targetNamespace="http://yicun.example/t">
  <bpmn:process id="EVIL" isExecutable="true">
    <bpmn:startEvent id="S"/>
    <bpmn:sequenceFlow id="f1" sourceRef="S" targetRef="T"/>
    <bpmn:userTask id="T" name="{name}"/>
    <bpmn:boundaryEvent id="B" attachedToRef="T" cancelActivity="false">
      <bpmn:timerEventDefinition id="TD"><bpmn:timeDuration>{timer}</bpmn:timeDuration></bpmn:timerEventDefinition>
    </bpmn:boundaryEvent>
    <bpmn:sequenceFlow id="f2" sourceRef="B" targetRef="E2"/>
    <bpmn:endEvent id="E2"/>
    <bpmn:sequenceFlow id="f3" sourceRef="T" targetRef="SC"/>
    <bpmn:scriptTask id="SC"><bpmn:script>{script}</bpmn:script></bpmn:scriptTask>
    <bpmn:sequenceFlow id="f4" sourceRef="SC" targetRef="G"/>
    <bpmn:exclusiveGateway id="G" default="f6"/>
    <bpmn:sequenceFlow id="f5" sourceRef="G" targetRef="E">
      <bpmn:conditionExpression xsi:type="bpmn:tFormalExpression">{condition}</bpmn:conditionExpression>
    </bpmn:sequenceFlow>
    <bpmn:sequenceFlow id="f6" sourceRef="G" targetRef="E"/>
    <bpmn:endEvent id="E"/>
  </bpmn:process>
</bpmn:definitions>
"""


def make(prolog="", name="审核", timer="P3D", script="ok = True", condition='decision == "approve"') -> bytes:
    return TEMPLATE.format(prolog=prolog, name=name, timer=timer, script=script, condition=condition).encode()


def test_the_template_itself_compiles():
    compiled = bpmn.compile_bpmn(make(), "ok.bpmn")
    assert [p.process_id for p in compiled.processes] == ["EVIL"]


def findings_of(data: bytes) -> list:
    with pytest.raises(BpmnRejected) as exc:
        bpmn.compile_bpmn(data, "evil.bpmn")
    return exc.value.findings


def test_xxe_is_refused(tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET")
    prolog = f'<!DOCTYPE d [<!ENTITY xxe SYSTEM "file://{secret}">]>\n'
    (f,) = findings_of(make(prolog=prolog, name="&xxe;"))
    assert "DOCTYPE" in f.message and f.line == 2


def test_billion_laughs_is_refused_quickly():
    lol = '<!DOCTYPE d [<!ENTITY a "lol">' + "".join(
        f'<!ENTITY {chr(98 + i)} "{("&" + chr(97 + i) + ";") * 10}">' for i in range(9)) + "]>\n"
    (f,) = findings_of(make(prolog=lol, name="&j;"))
    assert "DOCTYPE" in f.message


def test_plain_doctype_is_refused():
    (f,) = findings_of(make(prolog='<!DOCTYPE definitions SYSTEM "http://127.0.0.1:9/bpmn.dtd">\n'))
    assert "DOCTYPE" in f.message


def test_oversized_file_is_refused():
    big = make(script="ok = True\n" + "# padding\n" * (bpmn.MAX_BPMN_BYTES // 10))
    (f,) = findings_of(big)
    assert "limit" in f.message


@pytest.mark.parametrize("field, payload, element", [
    ("condition", "__import__('os').system('touch {m}') == 0", "f5"),
    ("timer", "__import__('os').system('touch {m}')*0 or 'P3D'", "TD"),
    ("script", "import os\nos.system('touch {m}')", "SC"),
    ("condition", "[c for c in ().__class__.__base__.__subclasses__() if c.__name__ == '_wrap_close'][0]"
                  ".__init__.__globals__['system']('touch {m}') == 0", "f5"),
    ("timer", '"PT3X"', "TD"),
    ("timer", "P3X", "TD"),
    ("timer", "P99999999999999D", "TD"),
    ("timer", "'P' + str(len('a' * 10000 * 10000)) + 'D'", "TD"),
])
def test_code_in_expressions_is_refused_with_element_and_line(tmp_path, field, payload, element):
    marker = tmp_path / "pwned"
    data = make(**{field: payload.format(m=marker).replace("&", "&amp;").replace("<", "&lt;")})
    findings = findings_of(data)
    assert not marker.exists()
    assert any(f.element_id == element and f.line for f in findings), findings
    expected_line = next(i for i, l in enumerate(data.decode().splitlines(), 1) if f'id="{element}"' in l)
    assert any(f.line >= expected_line for f in findings)


def test_malformed_xml_reports_line():
    (f,) = findings_of(make().replace(b"</bpmn:process>", b"</bpmn:proc>"))
    assert f.line and "mismatch" in f.message.lower()


def test_reserved_ids_and_service_tasks_are_refused():
    data = make().replace(b'id="S"', b'id="Start"').replace(b'sourceRef="S"', b'sourceRef="Start"')
    assert any("reserved" in f.message for f in findings_of(data))
    data = make().replace(b'<bpmn:scriptTask id="SC"><bpmn:script>ok = True</bpmn:script></bpmn:scriptTask>',
                          b'<bpmn:serviceTask id="SC"/>')
    assert any(f.element_id == "SC" and "service" in f.message for f in findings_of(data))


def test_bare_and_quoted_iso_and_workday_timers_are_accepted():
    for timer in ("P3D", '"P3D"', "PT72H", 'f"P{days}D"', "workdays(5)", "workdays(stage_days)"):
        bpmn.compile_bpmn(make(timer=timer), "ok.bpmn")
    for timer in ("workdays(-1)", "workdays(2.5)", "3", '"soon"'):
        assert any(f.element_id == "TD" for f in findings_of(make(timer=timer))), timer


def test_rejected_deploy_leaves_no_version(db_engine):
    with pytest.raises(BpmnRejected):
        with db.transaction(db_engine) as s:
            processes.deploy(s, make(condition="__import__('os')"), "evil.bpmn")
    with db.read(db_engine) as s:
        assert s.scalar(select(func.count()).select_from(ProcessVersion)) == 0


def test_a_tampered_stored_spec_still_runs_restricted(tmp_path):
    """Even if a condition got past lint (e.g. a spec edited in the database), nothing runs."""
    marker = tmp_path / "pwned"
    compiled = bpmn.compile_bpmn(make(), "ok.bpmn")
    proc = compiled.processes[0]
    spec_json = bpmn.spec_to_json(proc.spec, proc.subprocess_specs)
    spec_json = spec_json.replace('decision == \\"approve\\"', f"__import__('os').system('touch {marker}') == 0")
    assert "__import__" in spec_json
    spec, subs = bpmn.spec_from_json(spec_json)
    wf = bpmn.new_workflow(spec, subs)
    wf.do_engine_steps()
    restored = bpmn.load_instance(bpmn.dump_instance(wf), spec, subs)
    assert restored.script_engine is RESTRICTED_ENGINE
    task = bpmn.ready_user_tasks(restored)[0]
    task.run()
    with pytest.raises(WorkflowTaskException, match=r"^Error evaluating expression '__import__\('os'\)\.system") as exc:
        restored.do_engine_steps()
    assert exc.value.error_type == ExpressionRejected.__name__
    assert isinstance(exc.value.__context__, ExpressionRejected)  # the evaluator's refusal, wrapped by SpiffWorkflow
    assert str(exc.value.__context__).startswith("only these functions may be called: abs, all, any, bool")
    assert not marker.exists()


def test_restricted_engine_survives_round_trip_and_cannot_be_swapped():
    from SpiffWorkflow.bpmn.script_engine import PythonScriptEngine
    compiled = bpmn.compile_bpmn((FIXTURES / "relay.bpmn").read_bytes(), "relay.bpmn")
    proc = compiled.processes[0]
    wf = bpmn.new_workflow(proc.spec, proc.subprocess_specs)
    wf.do_engine_steps()
    restored = bpmn.load_instance(bpmn.dump_instance(wf), proc.spec, proc.subprocess_specs)
    assert type(restored).__name__ == "SafeBpmnWorkflow"
    assert restored.script_engine is RESTRICTED_ENGINE
    with pytest.raises(PermissionError):
        restored.script_engine = PythonScriptEngine()
    with pytest.raises(PermissionError):
        bpmn.SafeBpmnWorkflow(proc.spec, proc.subprocess_specs, script_engine=PythonScriptEngine())
    task = bpmn.ready_user_tasks(restored)[0]
    with pytest.raises(WorkflowTaskException, match=r"^Error evaluating expression '__import__\('os'\)'") as exc:
        restored.script_engine.evaluate(task, "__import__('os')")
    assert exc.value.error_type == ExpressionRejected.__name__
    assert isinstance(exc.value.__context__, ExpressionRejected)
    assert str(exc.value.__context__).startswith("only these functions may be called: abs, all, any, bool")


@pytest.mark.parametrize("name", ["dibao.bpmn", "pension.bpmn", "homestead.bpmn"])
def test_example_processes_compile_clean(name):
    compiled = bpmn.compile_bpmn((FIXTURES / name).read_bytes(), name)
    (proc,) = compiled.processes
    assert proc.process_id.startswith("FX-")
    assert compiled.findings == []
    levels = {m.level for m in proc.user_tasks.values()}
    assert levels == {"village", "township", "county"}


def test_juel_expressions_get_a_specific_message():
    findings = findings_of(make(condition="${approved}"))
    assert any("JUEL" in f.message and f.element_id == "f5" for f in findings)


def test_descriptive_models_are_kept_as_model_only():
    data = make(condition="").replace(b'isExecutable="true"', b'isExecutable="false"')
    compiled = bpmn.compile_bpmn(data, "model.bpmn")
    assert [(p.process_id, p.executable) for p in compiled.processes] == [("EVIL", False)]
