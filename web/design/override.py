"""Deploying despite failing process tests, in the browser (issue #11 §7): what the modeler and the upload page
(web/design/modeler.py) share. The engine refuses a version whose scenarios fail (`engine.errors.ScenariosFailed`,
raised only once the files themselves are valid) unless the designer gives an override reason, which the engine
audits as `process.scenarios_overridden` with the failures and the actor. Here:

- `reason`: the reason a designer typed — trimmed, required, at most MAX_REASON_CHARS — or InvalidInput with a
  sentence for the page.
- `failures`: the failing tests as the pages list them (rule `tests`, under the file that defines the process) and
  the link to each process's tests page.
- `carry` / `carried`: the upload page's files, carried through its "仍然部署" form. A browser cannot keep a file
  selection across a POST, so the refused files come back as hidden base64 fields with their names and SHA-256
  (shown, and checked on the way back). Werkzeug holds each text field of a multipart form to
  MAX_FORM_MEMORY_SIZE (Flask's default 500 kB) — a file near the engine's 2 MiB cap is 2.8 MB of base64 — so
  each file travels as CHUNK_CHARS-long fields; the whole form must still fit the app's MAX_CONTENT_LENGTH
  (`fits`), else the page says to use `yicun deploy --override-reason` instead of offering a form that would fail.
  Nothing is stored on the server between the two requests; the engine checks, tests and audits the files again
  when they come back, so a changed file gains nothing from the form.
"""
from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from flask import current_app, request, url_for
from flask_babel import gettext as _

from engine import processes
from engine.errors import Finding, InvalidInput
from engine.scenarios import MAX_OVERRIDE_REASON_CHARS

from .modeler_findings import with_text

MAX_REASON_CHARS = MAX_OVERRIDE_REASON_CHARS
#: base64 characters per hidden field: well under Flask's default MAX_FORM_MEMORY_SIZE (500 000), a multiple of 4
CHUNK_CHARS = 256 * 1024
#: what the form adds around the files (boundaries and part headers of each chunk, the other fields)
FORM_OVERHEAD_BYTES = 64 * 1024


def reason(raw: object) -> str:
    """The override reason as the engine will audit it, or InvalidInput saying what is wrong with it."""
    text = raw.strip() if isinstance(raw, str) else ""
    if not text:
        raise InvalidInput(_("请填写仍然部署的理由：它会和未通过的测试一起记入审计日志。"),
                           reason="web.override_reason_missing")
    if len(text) > MAX_REASON_CHARS:
        raise InvalidInput(_("理由最多 %(max)s 个字，现在有 %(count)s 个。", max=MAX_REASON_CHARS, count=len(text)),
                           reason="web.override_reason_too_long")
    return text


def tests_url(process_id: str) -> str:
    return url_for("design.scenarios_page", process_id=process_id)


def failures(by_process: Mapping[str, Sequence[Finding]]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The failing tests (ScenariosFailed.failures) as findings (rule `tests`, with `text` and `process_id`)
    and, per process, its tests page, how many of its scenarios failed and what each one says."""
    findings = with_text(dict(f.to_dict(), rule="tests", process_id=pid)
                         for pid, found in by_process.items() for f in found)
    tests = [{"process_id": pid, "url": tests_url(pid), "count": len(found),
              "failures": [f["text"] for f in findings if f["process_id"] == pid]} for pid, found in by_process.items()]
    return findings, tests


@dataclass(frozen=True)
class Carried:
    """One refused file as the override form carries it."""
    name: str
    sha256: str
    size: int
    chunks: tuple[str, ...]


def carry(files: Sequence[tuple[bytes, str]]) -> list[Carried]:
    out = []
    for data, name in files:
        text = base64.b64encode(data).decode("ascii")
        chunks = tuple(text[i:i + CHUNK_CHARS] for i in range(0, len(text), CHUNK_CHARS)) or ("",)
        out.append(Carried(name, hashlib.sha256(data).hexdigest(), len(data), chunks))
    return out


def fits(files: Sequence[Carried]) -> bool:
    """Would the override form of these files get through the app's request limit (MAX_CONTENT_LENGTH)?"""
    limit = current_app.config.get("MAX_CONTENT_LENGTH")
    if not limit:
        return True
    body = sum(len(chunk) + 200 for f in files for chunk in f.chunks) + FORM_OVERHEAD_BYTES
    return body <= int(limit)


def carried(max_files: int, clean_name: Callable[[str, str], str]) -> list[tuple[bytes, str]]:
    """The files an override form brought back — each decoded, within the engine's size cap and matching the
    SHA-256 the page showed — or InvalidInput. `clean_name` is the upload's file-name cleaner."""
    names, digests = request.form.getlist("file_name"), request.form.getlist("file_sha256")
    if not names or len(names) != len(digests):
        raise InvalidInput(_("没有收到要部署的文件：请重新上传。"), reason="web.override_no_file")
    if len(names) > max_files:
        raise InvalidInput(_("一次最多上传 %(count)s 个文件。", count=max_files), reason="web.upload_too_many")
    out, seen = [], set()
    for i, (raw_name, digest) in enumerate(zip(names, digests, strict=True)):
        name = clean_name(raw_name, "upload.bpmn")
        text = "".join(request.form.getlist(f"file_data_{i}"))
        if name in seen or len(text) > (processes.MAX_BPMN_BYTES // 3 + 1) * 4:
            raise InvalidInput(_("文件在提交过程中损坏了：请重新上传。"), reason="web.override_file_damaged")
        seen.add(name)
        try:
            data = base64.b64decode(text.encode("ascii"), validate=True)
        except (binascii.Error, UnicodeEncodeError, ValueError):
            raise InvalidInput(_("文件在提交过程中损坏了：请重新上传。"),
                               reason="web.override_file_damaged") from None
        if hashlib.sha256(data).hexdigest() != digest.strip().lower():
            raise InvalidInput(_("文件 %(name)s 与检查时的不一致：请重新上传。", name=name),
                               reason="web.override_file_changed")
        out.append((data, name))
    return out
