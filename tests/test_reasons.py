"""Issue #8 §2: every engine refusal carries a stable reason with its parameters, the web has it in Chinese
and English, and the CLI exits with its class's status (README "The `yicun` command").

The scans read engine/ as source (AST), so a new `raise Conflict("…")` without `reason=` fails here
before any page shows the generic "操作冲突" with the engine's English below it.
"""
from __future__ import annotations

import ast
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from flask import Flask
from flask_babel import Babel

from engine.cli import main
from engine.errors import YicunError
from web import reasons

from .conftest import AGENT, CLERK, OTHER_CLERK, ROOT, VILLAGE, complete, ready_tasks, start

CJK = re.compile(r"[\u3000-\u303f\u3400-\u9fff\uff00-\uffef]")
PLACEHOLDER = re.compile(r"%\((\w+)\)s")
#: Error classes constructed without `reason=`, and why.
EXEMPT = {
    "BpmnRejected": "carries its findings (element, line, message each), which the deploy page lists",
    "ProcessCrashed": "sets reason='workflow.crashed' itself (engine/errors.py)",
    "ScenariosFailed": "a BpmnRejected carrying the failing process tests as findings, which the deploy pages list",
}
#: Reasons only the command line raises (no page can meet them): not in web.reasons.
COMMAND_LINE_ONLY = ("cli.", "db.", "init.")


def _engine_files(root: Path) -> Iterator[Path]:
    for path in sorted((root / "engine").rglob("*.py")):
        if "migrations" not in path.parts:
            yield path


def _error_classes(trees: dict[Path, ast.Module]) -> set[str]:
    """YicunError and every class of engine/ derived from it (by name, through any depth)."""
    bases: dict[str, set[str]] = {}
    for tree in trees.values():
        for node in ast.walk(tree):
            if isinstance(node, ast.ClassDef):
                bases[node.name] = {b.attr if isinstance(b, ast.Attribute) else getattr(b, "id", "")
                                    for b in node.bases}
    found = {"YicunError"}
    while True:
        more = {name for name, of in bases.items() if of & found} - found
        if not more:
            return found
        found |= more


def _name(call: ast.Call) -> str:
    return call.func.attr if isinstance(call.func, ast.Attribute) else getattr(call.func, "id", "")


@dataclass(frozen=True)
class Site:
    """One refusal in engine/: where, its reason (None: not a literal) and the parameters it passes."""
    where: str
    cls: str
    reason: str | None
    params: frozenset[str]
    spread: bool  # passes **something: its parameters cannot be read from the source


def _sites(root: Path = ROOT) -> list[Site]:
    trees = {path: ast.parse(path.read_text(encoding="utf-8")) for path in _engine_files(root)}
    classes = _error_classes(trees)
    sites = []
    for path, tree in trees.items():
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            name, where = _name(node), f"{path.relative_to(root)}:{node.lineno}"
            keywords = {kw.arg: kw.value for kw in node.keywords if kw.arg is not None}
            spread = any(kw.arg is None for kw in node.keywords)
            if name in classes:
                reason = keywords.pop("reason", None)
                text = reason.value if isinstance(reason, ast.Constant) else None
                sites.append(Site(where, name, text if reason is not None else "", frozenset(keywords), spread))
            elif name in ("require", "deny"):  # engine.policy: the reason is a positional argument
                position = {"require": 1, "deny": 0}[name]
                if len(node.args) > position and isinstance(node.args[position], ast.Constant):
                    sites.append(Site(where, "Forbidden", node.args[position].value, frozenset(keywords), spread))
    return sites


SITES = _sites()


def test_every_refusal_in_the_engine_names_its_reason():
    assert len(SITES) > 150 and {s.cls for s in SITES} >= {"NotFound", "Conflict", "InvalidInput", "Forbidden"}, \
        "the scan found too few refusals: has the engine's style changed?"
    missing = [f"{s.where} {s.cls}" for s in SITES if s.reason == "" and s.cls not in EXEMPT]
    assert not missing, f"raise these with reason=\"noun.what\" and their parameters (web/reasons.py): {missing}"
    passed_on = [s.where for s in SITES if s.reason is None]  # reason=<a variable>: only policy.deny's
    assert passed_on and all(w.startswith("engine/policy.py:") for w in passed_on), passed_on
    shapes = [s for s in SITES if s.reason and not re.fullmatch(r"[a-z_]+(\.[a-z_]+)+", s.reason)]
    assert not shapes, f"a reason is dotted lower-case words (task.claimed_by_other): {shapes}"


def test_the_scan_finds_a_refusal_without_a_reason_through_a_subclass(tmp_path):
    (tmp_path / "engine").mkdir()
    (tmp_path / "engine" / "errors.py").write_text((ROOT / "engine" / "errors.py").read_text(encoding="utf-8"))
    (tmp_path / "engine" / "bad.py").write_text(
        "from . import errors\n\nclass Stale(errors.Conflict):\n    pass\n\n"
        "def f(n):\n    raise Stale(f'case {n} is closed')\n\n"
        "def g(n):\n    raise errors.NotFound(f'no case {n}', reason='case.not_found', case=n)\n")
    found = [(s.cls, s.reason, sorted(s.params)) for s in _sites(tmp_path) if s.where.startswith("engine/bad.py")]
    assert found == [("Stale", "", []), ("NotFound", "case.not_found", ["case"])]


def test_every_reason_a_page_can_meet_is_translated_with_the_same_parameters():
    from babel.messages.pofile import read_po
    with open(ROOT / "web" / "translations" / "en" / "LC_MESSAGES" / "messages.po", "rb") as fh:
        english = read_po(fh)
    raised = {s.reason for s in SITES if s.reason and not s.reason.startswith(COMMAND_LINE_ONLY)}
    assert not raised - set(reasons.REASONS), "add these to web/reasons.py (Chinese) and the en catalogue"
    problems = []
    for reason, text in reasons.REASONS.items():
        zh = text._args[0]  # the msgid: lazy_gettext keeps it unevaluated
        message = english.get(zh)
        if not CJK.search(zh):
            problems.append((reason, "the msgid is not Chinese"))
        elif message is None or message.fuzzy or not message.string:
            problems.append((reason, "no English in web/translations/en (make catalogues, then translate)"))
        elif CJK.search(message.string):
            problems.append((reason, "the English still has Chinese in it"))
        elif set(PLACEHOLDER.findall(message.string)) != set(PLACEHOLDER.findall(zh)):
            problems.append((reason, "the English and the Chinese have different %(name)s parameters"))
    assert not problems


#: Plausible values of the parameters engine refusals pass (anything else gets "x").
SAMPLES = {
    "earliest": "2026-11-02T01:00:00+00:00", "until": "2026-11-20T16:00:00+00:00", "due": "2026-12-01T16:00:00+00:00",
    "paused_at": "2026-11-05T02:30:00+00:00", "at": "2026-11-06T02:30:00+00:00", "accepted_at": "2026-11-02T01:00:00",
    "status": "completed", "state": "cancelled", "role": "clerk", "unit_level": "township", "kind": "special",
    "fields": {"income": "is required"}, "labels": {"income": "Monthly income"}, "workdays": 5, "max_workdays": 10,
}


def _app() -> Flask:
    app = Flask("web")  # web/translations, as the real app reads them
    Babel(app, default_locale="zh_CN", default_timezone="Asia/Shanghai",
          locale_selector=lambda: app.config["LOCALE"])
    return app


@pytest.mark.parametrize("locale", ["zh_CN", "en"])
def test_each_refusal_passes_every_parameter_its_message_needs(locale):
    """Built with the parameters its raise passes, each refusal reads whole in both languages — a missing
    parameter would leave the page with the generic text and the engine's English."""
    app = _app()
    app.config["LOCALE"] = locale
    failed = []
    with app.test_request_context():
        for site in SITES:
            if site.reason not in reasons.REASONS:
                continue
            exc = YicunError("engine words", site.reason, **{p: SAMPLES.get(p, "x") for p in site.params})
            text = reasons.translated(exc)
            if text is None and site.spread:
                continue  # its other parameters come in **details (the workflow's element and line)
            if text is None or "%(" in text or (locale == "en") == bool(CJK.search(text)):
                failed.append((site.where, site.reason, text))
    assert not failed


def test_a_refusal_shows_dates_and_words_in_the_readers_language():
    app = _app()
    exc = YicunError("x", "extension.overdue", case="YY-2026-000001", due="2026-12-01T16:00:00+00:00")
    closed = YicunError("x", "case.not_open", case="YY-2026-000001", status="withdrawn")
    form = YicunError("x", "form.invalid", fields={"a": "x", "b": "y"}, labels={"a": "月收入", "b": "人口"})
    app.config["LOCALE"] = "zh_CN"
    with app.test_request_context():
        assert reasons.translated(exc) == ("办件 YY-2026-000001 已过期限（2026-12-02 00:00），不能再延期："
                                           "延期须在期限届满前申请。")
        assert reasons.translated(closed) == "办件 YY-2026-000001 的状态是“撤回”，不能再办理这一步。"
        assert reasons.translated(form) == "表单中这些项有误：月收入、人口。请修改后重新提交。"
    app.config["LOCALE"] = "en"
    with app.test_request_context():
        assert "past its due date (2026-12-02 00:00)" in reasons.translated(exc)
        assert reasons.translated(closed) == "Case YY-2026-000001 is withdrawn; this step can no longer be done."
        assert reasons.translated(YicunError("x", "extension.overdue", case="Y", due="not a date")) is None


# ------------------------------------------------------------------------------------------- exit statuses
def test_each_class_of_refusal_exits_with_its_status_and_reason(seeded, db_url, manual_clock, tmp_path, capsys):
    """README: 2 usage, 3 invalid input, 4 not found, 5 forbidden, 6 conflict, 7 the process failed,
    8 no database — and with --json the refusal on stderr with its reason, message and parameters."""
    from engine import timers

    def refused(*argv: str, url: str = db_url) -> tuple[int, dict]:
        code = main(["--json", "--db", url, *argv])
        out, err = capsys.readouterr()
        assert out == "" and "Traceback" not in err
        return code, json.loads(err)

    r = start(seeded)
    (intake,) = ready_tasks(seeded, r.case_number)
    complete(seeded, intake.id, CLERK, {"documents_complete": True})
    timers.sweep(seeded, manual_clock.advance(hours=73))  # the review times out: the head review has no form
    (head,) = ready_tasks(seeded, r.case_number)
    accept = ["case", "start", "--service", "FX-DIBAO", "--village", VILLAGE, "--applicant", "符建英"]
    cases = [
        (2, "usage", "cli.as_required", ["notifications", "--as", ""]),
        (2, "usage", "cli.codes_required", ["bpmn", "scaffold"]),
        (3, "invalid_input", "cli.data_not_object", [*accept, "--as", CLERK, "--data", "[1, 2]"]),
        (3, "invalid_input", "cli.date_invalid", ["calendar", "due", "--from", "2026-13-01", "--workdays", "1"]),
        (3, "invalid_input", "cli.file_unreadable", ["deploy", str(tmp_path / "nowhere.bpmn")]),
        (4, "not_found", "case.not_found", ["case", "show", "YY-2026-999999"]),
        (4, "not_found", "cli.catalog_item_unknown", ["bpmn", "scaffold", "NO-SUCH-ITEM", "--dir", str(tmp_path)]),
        (5, "forbidden", "case.accept", [*accept, "--as", OTHER_CLERK]),
        (6, "conflict", "case.not_paused", ["case", "resume", r.case_number, "--as", CLERK]),
        (7, "workflow_error", "workflow.failed", ["task", "complete", str(head.id), "--as", AGENT, "--data", "{}"]),
    ]
    for status, code, reason, argv in cases:
        got, err = refused(*argv)
        assert (got, err["error"], err["reason"]) == (status, code, reason), (argv, err)
        assert err["message"]
    got, err = refused("case", "resume", r.case_number, "--as", CLERK)
    assert err["case"] == r.case_number and "is not paused" in err["message"]
    got, err = refused("users", "list", url=f"sqlite:///{tmp_path / 'missing.db'}")
    assert (got, err["error"], err["reason"]) == (8, "no_database", "db.missing")
