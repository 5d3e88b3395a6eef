"""Engine errors. Each carries a stable `code` so the CLI and the web can map it to an exit status or
HTTP status without knowing the engine's internals."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any


class YicunError(Exception):
    """`code` names the class of error (and maps to the HTTP status and the CLI exit code on the class);
    `reason` names this particular refusal (`task.claimed_by_other`, `policy.extend`…) so the web can
    translate it and a client can act on it; `details` are its parameters. Every raise in engine/ names
    its reason (tests/test_reasons.py scans for one without, and for a reason web/reasons.py cannot
    translate with the parameters given); the fallback to `code` is for errors from outside the engine."""
    code = "error"
    http_status = 400
    exit_code = 1

    def __init__(self, message: str, reason: str | None = None, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.reason = reason or self.code
        self.details = details

    def to_dict(self) -> dict[str, Any]:
        return {"error": self.code, "reason": self.reason, "message": self.message, **self.details}


class UsageError(YicunError):
    """The command was called wrongly (a missing option): exit 2, as argparse's own usage errors."""
    code, http_status, exit_code = "usage", 400, 2


class NotFound(YicunError):
    code, http_status, exit_code = "not_found", 404, 4


class Forbidden(YicunError):
    code, http_status, exit_code = "forbidden", 403, 5


class TooMany(Forbidden):
    """A public door (办件查询, the 好差评 rating) was used too often from one address or on one case
    number (engine.ratelimit): refused for a while whatever was asked, the right code too. A kind of
    refusal (exit 5 like Forbidden), shown as HTTP 429; `retry_after` says in how many seconds to try again."""
    code, http_status, exit_code = "too_many", 429, 5


class Conflict(YicunError):
    """Someone else changed the case first, or the task is no longer open."""
    code, http_status, exit_code = "conflict", 409, 6


class Busy(Conflict):
    """The database was held by another writer longer than the wait allows; nothing was changed."""
    code, http_status, exit_code = "busy", 503, 6


class InvalidInput(YicunError):
    code, http_status, exit_code = "invalid_input", 422, 3


class NoDatabase(YicunError):
    """There is no Yicun database where the command looked (no such SQLite file, a database without the
    schema, or one at an older schema): `yicun init` makes or upgrades it. Nothing was created."""
    code, http_status, exit_code = "no_database", 503, 8


@dataclass(frozen=True)
class Finding:
    """One problem in a BPMN file, located by element id and source line."""
    severity: str  # "error" | "warning"
    message: str
    element_id: str | None = None
    line: int | None = None
    file: str | None = None

    def __str__(self) -> str:
        where = ":".join(str(p) for p in (self.file, self.line) if p)
        elem = f" [{self.element_id}]" if self.element_id else ""
        return f"{where or '<bpmn>'}:{elem} {self.severity}: {self.message}"

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if v is not None}


class BpmnRejected(YicunError):
    """The BPMN file may not be deployed; `findings` lists every reason."""
    code, http_status, exit_code = "bpmn_rejected", 422, 3

    def __init__(self, message: str, findings: list[Finding]) -> None:
        super().__init__(message, findings=[f.to_dict() for f in findings])
        self.findings = findings

    def __str__(self) -> str:
        return self.message + "".join(f"\n  {f}" for f in self.findings)


class ScenariosFailed(BpmnRejected):
    """The files are valid but the process tests of some of their processes failed (engine/scenarios.py
    `guard`): the same refusal as BpmnRejected (code, status, one finding per failing scenario), told apart
    so that a caller can offer to deploy anyway with an override reason — which it may never do for a file
    its own checks refuse (those are raised before the tests run). `failures` maps each failing process id
    to its findings; `process_ids` (also in the details) lists them."""

    def __init__(self, message: str, failures: dict[str, list[Finding]]) -> None:
        super().__init__(message, [f for found in failures.values() for f in found])
        self.failures = failures
        self.process_ids = list(failures)
        self.details["process_ids"] = self.process_ids


class WorkflowError(YicunError):
    """The process itself failed while running (e.g. a condition referring to a missing field). Raised from
    a run, its details name where: `element` (BPMN id), `line` (in the script or expression) and
    `error_type` (SpiffWorkflow's classification)."""
    code, http_status, exit_code = "workflow_error", 422, 7


class ProcessCrashed(WorkflowError):
    """The process's run raised something no process should (RecursionError, MemoryError, a bug in
    SpiffWorkflow or in our glue). The step is refused like any WorkflowError; `cause_type` names the
    original exception for the incident list and the log."""

    def __init__(self, message: str, cause_type: str, **details: Any) -> None:
        super().__init__(message, reason="workflow.crashed", cause_type=cause_type, **details)
        self.cause_type = cause_type
