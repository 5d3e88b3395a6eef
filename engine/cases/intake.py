"""Taking an application at the counter (受理), as a clerk does it: the applicant, the documents brought,
the item's form — and what the applicant goes home with: a 受理回执, a 一次性告知书 or a 不予受理通知书.

One call is one transaction. A complete application becomes a case whose intake step (the first user
task, where the process has one with a `documents_complete` field) is done at the counter too, so the
case is already on its way when the receipt is printed. An incomplete one either waits for the
documents (补正: the process's own supplement step where it has one, else a 补正 pause of the clock) or
makes no case at all — the applicant leaves with the notice naming every missing document at once.

An intake key (the browser's idempotency key) makes a retried submit — two clicks, a resend after a
timeout, a draft sent again when the link comes back — return what the first one made instead of a
second case or notice; the unique constraints on `cases.intake_key` and `intake_notices.intake_key` back
that up when two submits race.
"""
from __future__ import annotations

import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.orm import Session

from .. import catalog, clock, forms, policy
from ..errors import Conflict, InvalidInput, NotFound
from ..models import T_CASE, T_NOTICE, T_TASK
from ..policy import Actor, Chain, as_actor
from ..processes import latest_version, load_spec
from . import service, sla, store

#: what to do when documents are missing: wait for them in a case (补正), or take no case (notice only)
MISSING_MODES = ("supplement", "notice")
_KEY = re.compile(r"^[A-Za-z0-9_-]{16,64}$")
_MOBILE = re.compile(r"^1[3-9][0-9]{9}$")
_LANDLINE = re.compile(r"^0[0-9]{2,3}-?[0-9]{7,8}$")
#: the applicant fields of an intake and the form names they are posted under
APPLICANT_FIELDS = ("applicant_name", "applicant_id_number", "applicant_phone", "applicant_address")


@dataclass(frozen=True)
class IntakeResult:
    """What an intake made: a case (`case_number`; with `notice_id` when it waits for documents), or only
    a notice (`kind` notice | refusal). `repeated`: the intake key was seen before, nothing new was made."""
    kind: str
    case_number: str | None = None
    notice_id: int | None = None
    repeated: bool = False


def check_applicant(raw: Mapping[str, Any]) -> dict[str, str | None]:
    """The applicant block, every field checked at once (a form shows each message beside its field):
    name, an 18-digit ID number with a valid check digit and birth date, a mobile or landline number,
    an optional address."""
    errors: dict[str, str] = {}
    out: dict[str, str | None] = {}
    for fid, what, limit, required in (("applicant_name", "the applicant's name", 100, True),
                                       ("applicant_address", "the applicant's address", 200, False)):
        try:
            out[fid] = forms.clean_text(raw.get(fid), what, limit, required=required, field=fid) or None
        except InvalidInput as exc:
            errors[fid] = str(exc)
    id_number = str(raw.get("applicant_id_number") or "").strip().upper()
    problem = forms.id_card_problem(id_number) if id_number else "the ID number is required"
    if problem:
        errors["applicant_id_number"] = problem
    out["applicant_id_number"] = id_number
    phone = str(raw.get("applicant_phone") or "").strip().replace(" ", "")
    if not (_MOBILE.match(phone) or _LANDLINE.match(phone)):
        errors["applicant_phone"] = "a mobile number (11 digits starting with 1) or a landline such as 0737-4221234"
    out["applicant_phone"] = phone
    if errors:
        raise InvalidInput("the applicant's details have errors", reason="form.invalid", fields=errors,
                           labels={k: k for k in errors})
    return out


def _intake_key(key: str | None) -> str | None:
    if key is None or key == "":
        return None
    if not isinstance(key, str) or not _KEY.match(key):
        raise InvalidInput("the intake key must be 16–64 letters, digits, - or _", reason="intake.bad_key")
    return key


def prior_intake(session: Session, key: str | None, actor: Actor) -> IntakeResult | None:
    """What an earlier submit with this intake key made, if this actor may see it; a key someone else used
    is refused as used without saying what it made (a guessed key must not reveal a case)."""
    key = _intake_key(key)
    if key is None:
        return None
    case = session.execute(select(T_CASE.c.number, T_CASE.c.village_id, T_CASE.c.township_id, T_CASE.c.county_id)
                           .where(T_CASE.c.intake_key == key)).first()
    if case is not None and policy.may_see_case(actor, Chain(case.village_id, case.township_id, case.county_id)):
        notice = session.scalar(select(T_NOTICE.c.id).where(T_NOTICE.c.case_id == select(T_CASE.c.id).where(
            T_CASE.c.intake_key == key).scalar_subquery()).order_by(T_NOTICE.c.id.desc()).limit(1))
        return IntakeResult("case", case.number, notice, repeated=True)
    notice_row = session.execute(select(T_NOTICE.c.id, T_NOTICE.c.kind, T_NOTICE.c.clerk_id)
                                 .where(T_NOTICE.c.intake_key == key)).first()
    if notice_row is not None and notice_row.clerk_id == actor.id:
        return IntakeResult(notice_row.kind, None, notice_row.id, repeated=True)
    if case is not None or notice_row is not None:
        raise Conflict("this intake key was used for another application; start a new form",
                       reason="intake.key_used")
    return None


def _counter_of(session: Session, actor: Actor, village_code: str) -> Any:
    """The village whose application this is, if `actor` may take it there (`policy.may_accept_at`)."""
    village, chain = service.village_chain(session, village_code)
    policy.require(policy.may_accept_at(actor, village.id, chain), "case.accept",
                   f"{actor.username} may not accept applications for {village.name}", village=village.code)
    return village


def _item(service_code: str) -> dict[str, Any]:
    item = catalog.items_by_code().get(service_code)
    if item is None:
        raise NotFound(f"no service item {service_code!r}", reason="service.not_found", code=service_code)
    return item


def _documents(item: Mapping[str, Any], brought: Sequence[str]) -> tuple[list[str], list[str]]:
    """(brought, missing) against the item's list; a name the item does not ask for is refused."""
    required, optional = catalog.required_documents(dict(item))
    known = set(required) | set(optional)
    unknown = [d for d in brought if d not in known]
    if unknown:
        raise InvalidInput(f"not a document of this item: {'、'.join(unknown)[:200]}", reason="form.invalid",
                           fields={"documents": "not a document of this item"}, labels={"documents": "documents"})
    return [d for d in required + optional if d in brought], [d for d in required if d not in brought]


def accept(session: Session, *, service_code: str, village_code: str, actor: Actor | Any,
           applicant: Mapping[str, Any], documents: Sequence[str], data: Mapping[str, Any] | None = None,
           remarks: str | None = None, when_missing: str = "supplement", accepted_at: datetime | None = None,
           intake_key: str | None = None, now: datetime | None = None) -> IntakeResult:
    """Take an application (受理). See the module docstring for the three outcomes."""
    actor = as_actor(actor)
    now = now or clock.now()
    key = _intake_key(intake_key)
    prior = prior_intake(session, key, actor)
    if prior is not None:
        return prior
    if when_missing not in MISSING_MODES:
        raise InvalidInput(f"when documents are missing: one of {', '.join(MISSING_MODES)}",
                           reason="intake.bad_mode", allowed=", ".join(MISSING_MODES))
    item = _item(service_code)
    errors: dict[str, str] = {}
    person: dict[str, str | None] = {}
    brought: list[str] = []
    missing: list[str] = []
    try:
        person = check_applicant(applicant)
    except InvalidInput as exc:
        errors.update(exc.details.get("fields") or {})
    try:
        brought, missing = _documents(item, list(documents))
    except InvalidInput as exc:
        errors.update(exc.details.get("fields") or {})
    try:
        remarks = forms.clean_text(remarks, "remarks", 500, required=False, field="remarks") or None
    except InvalidInput as exc:
        errors["remarks"] = str(exc)
    spec = None
    intake = dict(data or {})
    if not (missing and when_missing == "notice"):  # a case will be made: its form must be right too
        spec = load_spec(session, latest_version(session, service_code).id)
        errors.update(_form_problems(spec, intake, person, errors))
    if errors:
        raise InvalidInput("the application has errors", reason="form.invalid", fields=errors,
                           labels={k: k for k in errors})
    village = _counter_of(session, actor, village_code)
    if missing and when_missing == "notice":
        notice_id = _write_notice(session, "notice", item, village.id, actor, person, missing, None, key, now)
        store.write_audit(session, [dict(case_id=None, actor_id=actor.id, at=now, action="intake.notice_issued",
                                         details={"notice_id": notice_id, "service_code": service_code,
                                                  "village": village.code, "missing": missing},
                                         old_value=None, new_value="notice")])
        return IntakeResult("notice", None, notice_id)

    assert spec is not None
    started = service.start_case(
        session, service_code=service_code, village_code=village.code, applicant_name=str(person["applicant_name"]),
        actor=actor, data=intake, now=now, accepted_at=accepted_at, intake_key=key,
        applicant={"id_number": person["applicant_id_number"], "phone": person["applicant_phone"],
                   "address": person["applicant_address"]})
    case_id = session.scalar(select(T_CASE.c.id).where(T_CASE.c.number == started.case_number))
    store.write_audit(session, [dict(case_id=case_id, actor_id=actor.id, at=now, action="case.documents_checked",
                                     details={"brought": brought, "missing": missing},
                                     old_value=None, new_value=None)])
    checked = _complete_intake_step(session, spec, started, actor, not missing, remarks, now)
    if missing and not checked:  # the process has no step of its own for it: the clock stops for 补正
        sla.pause_case(session, started.case_number, actor, reason="补正：" + "、".join(missing),
                       kind="supplement", now=now)
    waiting = _write_notice(session, "notice", item, village.id, actor, person, missing, None, None, now,
                            case_id=case_id) if missing else None
    return IntakeResult("case", started.case_number, waiting)


def _form_problems(spec: Any, intake: dict[str, Any], person: Mapping[str, str | None],
                   known: Mapping[str, str]) -> dict[str, str]:
    """Every problem of the item's form at once: its values (types, constraints, no undeclared field) and
    the fields the intake step requires, which it is about to be completed with at the counter."""
    if "applicant_id_number" in {f["id"] for f in spec.intake_fields()} and person.get("applicant_id_number"):
        intake.setdefault("applicant_id_number", person["applicant_id_number"])  # typed once, in the applicant block
    problems: dict[str, str] = {}
    try:
        forms.validate(intake, spec.intake_fields(), decisions=spec.decision_fields, step="受理 (intake)")
    except InvalidInput as exc:
        problems.update(exc.details.get("fields") or {})
    for bpmn_id in spec.first_steps:
        for f in spec.fields_of(bpmn_id):
            fid = f["id"]
            if (f.get("required") and fid not in spec.decision_fields and fid not in ("documents_complete", "remarks")
                    and intake.get(fid) in (None, "") and fid not in problems and fid not in known):
                problems[fid] = f"{f.get('label', fid)} is required"
    return problems


def _complete_intake_step(session: Session, spec: Any, started: store.StepResult, actor: Actor, complete: bool,
                          remarks: str | None, now: datetime) -> bool:
    """Do the intake step at the counter where the process has one that asks `documents_complete` (the
    check the clerk just made); False where it has none (the step stays in the clerk's inbox), or where
    documents are missing and the process does not branch on the flag (the caller stops the clock)."""
    for task_id in started.opened_tasks:
        bpmn_id = session.scalar(select(T_TASK.c.bpmn_id).where(T_TASK.c.id == task_id))
        fields = {f["id"] for f in spec.fields_of(bpmn_id)}
        # a step that only records the flag (no gateway reads it) would let an incomplete application go on
        if "documents_complete" in fields and (complete or "documents_complete" in spec.decision_fields):
            step: dict[str, Any] = {"documents_complete": complete}
            if remarks and "remarks" in fields:
                step["remarks"] = remarks
            service.complete_task(session, task_id, actor, step, now=now)
            return True
    return False


def refuse(session: Session, *, service_code: str, village_code: str, actor: Actor | Any,
           applicant: Mapping[str, Any], reason: str, intake_key: str | None = None,
           now: datetime | None = None) -> IntakeResult:
    """不予受理: the application is not taken (not this centre's business, not eligible on its face…); the
    applicant gets a notice with the reason. No case is made; the refusal is recorded and audited."""
    actor = as_actor(actor)
    now = now or clock.now()
    key = _intake_key(intake_key)
    prior = prior_intake(session, key, actor)
    if prior is not None:
        return prior
    item = _item(service_code)
    errors: dict[str, str] = {}
    try:
        person = check_applicant(applicant)
    except InvalidInput as exc:
        errors.update(exc.details.get("fields") or {})
    try:
        why = forms.clean_text(reason, "the reason for refusing", 500, field="refusal_reason")
    except InvalidInput as exc:
        errors["refusal_reason"] = str(exc)
    if errors:
        raise InvalidInput("the refusal has errors", reason="form.invalid", fields=errors,
                           labels={k: k for k in errors})
    village = _counter_of(session, actor, village_code)
    notice_id = _write_notice(session, "refusal", item, village.id, actor, person, [], why, key, now)
    store.write_audit(session, [dict(case_id=None, actor_id=actor.id, at=now, action="intake.refused",
                                     details={"notice_id": notice_id, "service_code": service_code,
                                              "village": village.code, "reason": why},
                                     old_value=None, new_value="refusal")])
    return IntakeResult("refusal", None, notice_id)


def _write_notice(session: Session, kind: str, item: Mapping[str, Any], village_id: int, actor: Actor,
                  person: Mapping[str, str | None], missing: list[str], reason: str | None, key: str | None,
                  now: datetime, case_id: int | None = None) -> int:
    """Insert the notice and give it its printed number (告知/不予受理 + year + id)."""
    days = item.get("supplement_days")
    bring_by = (clock.local(now) + timedelta(days=int(days))).date() if kind == "notice" and days else None
    notice_id = store.conn(session).execute(insert(T_NOTICE).returning(T_NOTICE.c.id).values(
        number=f"tmp-{uuid.uuid4().hex[:20]}", kind=kind, service_code=item["code"], village_id=village_id,
        clerk_id=actor.id, case_id=case_id, applicant_name=person.get("applicant_name") or "",
        applicant_id_number=person.get("applicant_id_number"), applicant_phone=person.get("applicant_phone"),
        missing=missing, reason=reason, bring_by=bring_by, intake_key=key, created_at=now)).scalar_one()
    prefix = "GZ" if kind == "notice" else "BY"
    store.conn(session).execute(update(T_NOTICE).where(T_NOTICE.c.id == notice_id).values(
        number=f"{prefix}-{clock.local(now).year}-{notice_id:06d}"))
    return notice_id
