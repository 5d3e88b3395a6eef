"""What the counter reads: the service items a worker can take (with pinyin initials to find them), the
form of an item's intake, the villages a window accepts for, and the papers an intake prints — the
受理回执, the 一次性告知书 and the 不予受理通知书.

The catalogue (documents, limits) comes from catalog.yaml, read once per file version; the forms from
the stored task metadata of the newest version — never a restored spec or workflow.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from functools import lru_cache
from typing import Any, Protocol

from pypinyin import Style, lazy_pinyin
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from .. import catalog, policy
from ..errors import NotFound
from ..models import AuditEvent, Case, IntakeNotice, OrgUnit, ProcessVersion, User
from ..policy import Actor, Chain
from ..vocab import Level, Role
from .models import FormField
from .scope import visible_case, who
from .serialize import JsonModel

#: fields an intake form never shows: the counter's own check (the checklist sets it), the case's fields,
#: and the ID number (typed once, in the applicant block; the intake copies it into the process's field)
_NOT_ON_INTAKE = {"documents_complete", "remarks", "applicant_name", "case_number", "service_code",
                  "village_code", "village_name", "applicant_id_number"}


@dataclass(frozen=True)
class ServiceItem(JsonModel):
    """A catalogue item as the counter lists it. `initials`: the pinyin initials of its name (zdshbzsq for
    最低生活保障申请), so a clerk can type a few letters to find it."""
    code: str
    name: str
    name_en: str
    department: str | None
    accept_level: str
    approve_level: str
    promised_limit_workdays: int | None
    legal_limit_workdays: int | None
    initials: str
    documents: tuple[str, ...]
    optional_documents: tuple[str, ...]
    supplement_days: int | None
    deployed: bool


@dataclass(frozen=True)
class IntakeForm(JsonModel):
    """An item's intake: its catalogue entry, the fields of its first step(s) as the process declares
    them (required where that step requires them), and whether the counter's checklist decides the
    step (`checks_documents`: the step has a `documents_complete` field)."""
    item: ServiceItem
    version: int
    fields: tuple[FormField, ...]
    checks_documents: bool
    has_remarks: bool


@dataclass(frozen=True)
class Village(JsonModel):
    id: int
    code: str
    name: str
    township: str


@dataclass(frozen=True)
class Centre(JsonModel):
    """The centre that prints a paper: its name, phone and address (as far as the org data holds them)."""
    name: str
    township: str
    county: str
    phone: str | None
    address: str | None


@dataclass(frozen=True)
class Receipt(JsonModel):
    """受理回执: what the applicant takes home from an accepted application."""
    number: str
    query_code: str | None
    service_code: str
    service_name: str
    applicant_name: str
    applicant_id_number: str | None  # masked: the paper may be lost
    applicant_phone: str | None
    accepted_at: datetime | None
    promised_due_at: datetime | None
    promised_limit_workdays: int | None
    legal_due_at: datetime | None
    clerk_name: str | None
    centre: Centre
    documents: tuple[str, ...]
    missing: tuple[str, ...]
    notice_id: int | None
    status: str


@dataclass(frozen=True)
class NoticeDoc(JsonModel):
    """一次性告知书 (kind notice) or 不予受理通知书 (kind refusal), as printed."""
    id: int
    number: str
    kind: str
    service_code: str
    service_name: str
    applicant_name: str
    applicant_id_number: str | None
    missing: tuple[str, ...]
    reason: str | None
    bring_by: date | None
    clerk_name: str | None
    centre: Centre
    created_at: datetime
    case_number: str | None


def mask_id(number: str | None) -> str | None:
    """An ID number as a printed paper shows it: region and check digit, the birth date hidden."""
    if not number or len(number) != 18:
        return number
    return number[:4] + "*" * 10 + number[14:]


@lru_cache(maxsize=1024)
def initials(name: str) -> str:
    return "".join(lazy_pinyin(name, style=Style.FIRST_LETTER, errors="ignore")).lower()


def _item(entry: Mapping[str, Any], deployed: bool) -> ServiceItem:
    required, optional = catalog.required_documents(dict(entry))
    return ServiceItem(
        code=str(entry["code"]), name=str(entry.get("name") or entry["code"]), name_en=str(entry.get("name_en") or ""),
        department=entry.get("department"), accept_level=str(entry.get("accept_level") or "village"),
        approve_level=str(entry.get("approve_level") or ""),
        promised_limit_workdays=entry.get("promised_limit_workdays"),
        legal_limit_workdays=entry.get("legal_limit_workdays"), initials=initials(str(entry.get("name") or "")),
        documents=tuple(required), optional_documents=tuple(optional),
        supplement_days=entry.get("supplement_days"), deployed=deployed)


def _deployed_codes(session: Session) -> set[str]:
    return set(session.scalars(select(ProcessVersion.process_id).where(ProcessVersion.executable.is_(True))
                               .distinct()))


class Searchable(Protocol):
    """What `matches` looks at: an item of the counter, or a process of the designer's list."""
    @property
    def code(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def initials(self) -> str: ...
    @property
    def name_en(self) -> str: ...


def matches(item: Searchable, q: str) -> bool:
    """Search as a clerk types: a code (MZ-01, mz01), Chinese characters of the name, or pinyin initials."""
    q = q.strip().lower()
    if not q:
        return True
    code = item.code.lower()
    return (q in code or q.replace("-", "") in code.replace("-", "") or q in item.name.lower()
            or q in item.initials or q in item.name_en.lower())


def service_items(session: Session, actor: Actor | User | None, q: str = "") -> list[ServiceItem]:
    """The deployed items, the ones accepted at the reader's own level first (a village clerk's 130), then
    by code; `q` narrows them as `matches` does."""
    reader = who(actor)
    deployed = _deployed_codes(session)
    items = [_item(e, True) for code, e in catalog.items_by_code().items() if code in deployed]
    own = reader.level if reader.level in (Level.VILLAGE, Level.TOWNSHIP, Level.COUNTY) else Level.VILLAGE
    items.sort(key=lambda i: (i.accept_level != own, i.code))
    return [i for i in items if matches(i, q)]


def intake_form(session: Session, code: str) -> IntakeForm:
    """The intake of item `code` on its newest executable version; NotFound for an unknown or undeployed
    item. Reads the stored task metadata (marked at deploy: `first` steps, `decision` fields)."""
    entry = catalog.items_by_code().get(code)
    row = session.execute(select(ProcessVersion.version, ProcessVersion.task_meta)
                          .where(ProcessVersion.process_id == code, ProcessVersion.executable.is_(True))
                          .order_by(ProcessVersion.version.desc()).limit(1)).first()
    if entry is None or row is None:
        raise NotFound(f"no service item {code!r}", reason="service.not_found", code=code)
    meta: dict[str, Any] = row.task_meta or {}
    firsts = [m for m in meta.values() if m.get("first")]
    fields: dict[str, FormField] = {}
    checks = remarks = False
    for step in firsts:
        for f in step.get("fields") or []:
            checks = checks or f["id"] == "documents_complete"
            remarks = remarks or f["id"] == "remarks"
            if f["id"] in _NOT_ON_INTAKE or f.get("decision"):
                continue
            fields.setdefault(f["id"], FormField.from_meta(f))
    return IntakeForm(_item(entry, True), int(row.version), tuple(fields.values()), checks, remarks)


def villages_for(session: Session, actor: Actor | User) -> list[Village]:
    """The villages whose applications this worker may take (`policy.may_accept_at`): a clerk's own, the
    villages below a township or county window; ordered by township and name."""
    reader = who(actor)
    township = OrgUnit.__table__.alias("township")
    query = (select(OrgUnit.id, OrgUnit.code, OrgUnit.name, township.c.name.label("township"))
             .join(township, township.c.id == OrgUnit.parent_id).where(OrgUnit.level == Level.VILLAGE))
    if reader.role == Role.CLERK:
        query = query.where(OrgUnit.id == reader.unit_id)
    elif reader.role in (Role.AGENT, Role.TOWNSHIP_OFFICER, Role.COUNTY_OFFICER) and policy.is_staff(reader):
        query = query.where(OrgUnit.path.startswith(reader.unit_path))
    elif reader.role != Role.ADMIN:
        return []
    rows = session.execute(query.order_by(township.c.name, OrgUnit.name).limit(2000)).all()
    return [Village(r.id, r.code, r.name, r.township) for r in rows]


def _centre(session: Session, village_id: int) -> Centre:
    v = session.get(OrgUnit, village_id)
    if v is None:
        return Centre("", "", "", None, None)
    t = session.get(OrgUnit, v.parent_id) if v.parent_id else None
    c = session.get(OrgUnit, t.parent_id) if t is not None and t.parent_id else None
    return Centre(v.name, t.name if t else "", c.name if c else "", v.phone, v.address)


def _service_name(code: str) -> str:
    entry = catalog.items_by_code().get(code)
    return str(entry.get("name") or code) if entry else code


def receipt(session: Session, number: str, actor: Actor | User) -> Receipt:
    """The 受理回执 of a case the reader may see (else NotFound)."""
    case = visible_case(session, actor, number)
    checked = session.scalar(select(AuditEvent.details).where(AuditEvent.case_id == case.id,
                                                              AuditEvent.action == "case.documents_checked")
                             .order_by(AuditEvent.id).limit(1)) or {}
    clerk = session.scalar(select(User.display_name).where(User.id == case.first_clerk_id)) \
        if case.first_clerk_id else None
    notice_id = session.scalar(select(func.max(IntakeNotice.id)).where(IntakeNotice.case_id == case.id))
    return Receipt(
        number=case.number, query_code=case.query_code, service_code=case.service_code,
        service_name=_service_name(case.service_code), applicant_name=case.applicant_name,
        applicant_id_number=mask_id(case.applicant_id_number), applicant_phone=case.applicant_phone,
        accepted_at=case.accepted_at, promised_due_at=case.promised_due_at,
        promised_limit_workdays=case.promised_limit_workdays, legal_due_at=case.legal_due_at, clerk_name=clerk,
        centre=_centre(session, case.village_id), documents=tuple(checked.get("brought") or ()),
        missing=tuple(checked.get("missing") or ()), notice_id=notice_id, status=case.status)


def notice(session: Session, notice_id: int, actor: Actor | User) -> NoticeDoc:
    """A notice the reader may see: one of a village they may see (as its cases), else NotFound."""
    reader = who(actor)
    n = session.get(IntakeNotice, notice_id)
    village = session.get(OrgUnit, n.village_id) if n is not None else None
    chain = None
    if village is not None and village.parent_id is not None:
        township = session.get(OrgUnit, village.parent_id)
        if township is not None and township.parent_id is not None:
            chain = Chain(village.id, township.id, township.parent_id)
    if n is None or chain is None or not policy.may_see_case(reader, chain):
        raise NotFound(f"no notice {notice_id}", reason="notice.not_found", notice=notice_id)
    clerk = session.scalar(select(User.display_name).where(User.id == n.clerk_id))
    case_number = session.scalar(select(Case.number).where(Case.id == n.case_id)) if n.case_id else None
    return NoticeDoc(
        id=n.id, number=n.number, kind=n.kind, service_code=n.service_code, service_name=_service_name(n.service_code),
        applicant_name=n.applicant_name, applicant_id_number=mask_id(n.applicant_id_number),
        missing=tuple(n.missing or ()), reason=n.reason, bring_by=n.bring_by, clerk_name=clerk,
        centre=_centre(session, n.village_id), created_at=n.created_at, case_number=case_number)
