"""The service catalogue (catalog.yaml): load it and check it, reporting every error with the item code
and the field, so a catalogue editor can fix the file without reading code. Schema: docs/catalog-schema.md.
"""
from __future__ import annotations

import itertools
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeGuard

import yaml

from . import patterns, settings

LEVELS = ("village", "township", "county")
STAGE_KINDS = ("intake", "review", "survey", "inspection", "appraisal", "approve", "assign", "deliver")
FIELD_TYPES = ("string", "long", "boolean", "date", "enum")
DEPARTMENTS = {"MZ": "民政", "CL": "残联", "RS": "人社", "YB": "医保", "WJ": "卫健", "TY": "退役军人", "JY": "教育",
               "GA": "公安", "ZR": "自然资源", "NY": "农业农村", "LY": "林业", "SL": "水利", "ZJ": "住建",
               "SF": "司法", "SC": "市场监管", "CW": "村委会", "SH": "村委会"}
CATEGORIES = ("social_assistance", "elderly", "child_welfare", "disability", "civil_affairs", "social_insurance",
              "employment", "medical_insurance", "health", "family_planning", "veterans", "education",
              "household_reg", "land_housing", "agriculture", "forestry", "water", "construction", "legal",
              "market", "village_affairs", "life_service")
RESERVED_FIELDS = {"applicant_name", "case_number", "service_code", "village_code", "village_name",
                   "documents_complete", "remarks"}
_CODE = re.compile(r"^[A-Z]{2}-\d{2}$")
_FIELD_ID = re.compile(r"^[a-z][a-z0-9_]{1,40}$")
_OPTION_ID = re.compile(r"^[a-z][a-z0-9_]*$")
_CJK = re.compile(r"[\u4e00-\u9fff]")
_PLACEHOLDER = re.compile(r"(事项|Service|Item)\s*\d+$")


@dataclass(frozen=True)
class CatalogError:
    code: str
    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.code}: {self.field}: {self.message}"


def catalog_path() -> Path:
    """catalog.yaml of the repository, or $YICUN_CATALOG (`settings.get().catalog_file`)."""
    return settings.get().catalog_file


#: libyaml's safe loader where PyYAML has it: the same result as yaml.safe_load, 5× faster on the
#: 270 kB catalogue (0.35 s instead of 1.8 s for every `yicun catalog check`, `bpmn lint` and test module)
_SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def load(path: Path | None = None) -> list[dict[str, Any]]:
    data = yaml.load(Path(path or catalog_path()).read_text(encoding="utf-8"), Loader=_SAFE_LOADER) or {}
    items = data.get("items") if isinstance(data, dict) else None
    if not isinstance(items, list):
        raise ValueError("catalog.yaml must have a top-level list `items`")
    return items


def by_code(items: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {code: i for i in items if isinstance(i, dict) and isinstance(code := i.get("code"), str)}


def check(items: list[dict[str, Any]], expected_total: int | None = 176) -> list[CatalogError]:
    """Every problem of the catalogue, item by item, then the totals of the source article."""
    errors: list[CatalogError] = []
    seen_codes: set[str] = set()
    seen_names: set[object] = set()  # as written: a missing or non-text name is reported by _check_item
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            errors.append(CatalogError(f"#{index + 1}", "-", "an item must be a mapping"))
            continue
        code = str(item.get("code") or f"#{index + 1}")
        errors += [CatalogError(code, f, m) for f, m in _check_item(item)]
        if code in seen_codes:
            errors.append(CatalogError(code, "code", "duplicate code"))
        seen_codes.add(code)
        name = item.get("name")
        if name in seen_names:
            errors.append(CatalogError(code, "name", f"duplicate name {name!r}"))
        seen_names.add(name)
    if expected_total is not None:
        valid = [i for i in items if isinstance(i, dict)]
        counts = {"items": (len(valid), expected_total),
                  "accepted at village centres": (sum(i.get("accept_level") == "village" for i in valid), 130),
                  "approvals delegated to townships": (sum(i.get("delegated_to_township") is True for i in valid), 22)}
        for what, (actual, wanted) in counts.items():
            if actual != wanted:
                errors.append(CatalogError("catalogue", what, f"{actual}, the source article says {wanted}"))
    return errors


def _check_item(item: dict[str, Any]) -> list[tuple[str, str]]:
    e: list[tuple[str, str]] = []
    code = item.get("code")
    if not isinstance(code, str) or not _CODE.match(code):
        e.append(("code", "must look like MZ-01 (two capitals, dash, two digits)"))
    elif code[:2] not in DEPARTMENTS:
        e.append(("code", f"unknown department prefix {code[:2]!r}"))
    elif DEPARTMENTS[code[:2]] != item.get("department") and code[:2] not in ("CW", "SH"):
        e.append(("department", f"{item.get('department')!r} does not match the code prefix ({DEPARTMENTS[code[:2]]})"))
    for key in ("name", "name_en"):
        value = item.get(key)
        if not isinstance(value, str) or not value.strip():
            e.append((key, "is required"))
        elif _PLACEHOLDER.search(value):
            e.append((key, f"{value!r} looks like a placeholder, not a real item name"))
    if isinstance(item.get("name"), str) and not _CJK.search(item["name"]):
        e.append(("name", "must be the Chinese name"))
    if item.get("category") not in CATEGORIES:
        e.append(("category", f"must be one of {', '.join(CATEGORIES)}"))
    for key in ("accept_level", "approve_level"):
        if item.get(key) not in LEVELS:
            e.append((key, "must be village, township or county"))
    if not isinstance(item.get("delegated_to_township"), bool):
        e.append(("delegated_to_township", "must be true or false"))
    elif item["delegated_to_township"] and item.get("approve_level") != "township":
        e.append(("delegated_to_township", "a delegated approval is decided at the township"))
    legal, promised = item.get("legal_limit_workdays"), item.get("promised_limit_workdays")
    if not _int(legal) or legal < 1:
        e.append(("legal_limit_workdays", "must be a whole number of working days ≥ 1"))
    if not _int(promised) or promised < 0:
        e.append(("promised_limit_workdays", "must be a whole number of working days ≥ 0 (0 = 即办, the same day)"))
    if _int(legal) and _int(promised) and promised > legal:
        e.append(("promised_limit_workdays", f"{promised} exceeds the legal limit {legal}"))
    for key in ("extension_max_workdays", "supplement_days", "publicity_days"):
        if not _int(item.get(key)) or item[key] < 0:
            e.append((key, "must be a whole number ≥ 0"))
    if _int(item.get("publicity_days")) and item["publicity_days"] > 0 and \
            item.get("publicity_level") not in ("village", "township"):
        e.append(("publicity_level", "is required (village or township) when there is a publicity period"))
    if _int(item.get("supplement_days")) and item["supplement_days"] < 1:
        e.append(("supplement_days", "the applicant needs at least one day to supply documents"))
    e += _check_stages(item, promised if _int(promised) else None)
    docs = item.get("documents")
    if not isinstance(docs, list) or not docs or not all(isinstance(d, str) and d.strip() for d in docs):
        e.append(("documents", "must list at least one required document"))
    e += _check_form(item.get("form"))
    if isinstance(code, str) and item.get("bpmn") != f"bpmn/{code}.bpmn":
        e.append(("bpmn", f"must be bpmn/{code}.bpmn"))
    return e


def _int(value: Any) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_stages(item: dict[str, Any], promised: int | None) -> list[tuple[str, str]]:
    stages = item.get("stages")
    if not isinstance(stages, list) or len(stages) < 3:
        return [("stages", "needs at least intake, approve and deliver")]
    e: list[tuple[str, str]] = []
    for n, st in enumerate(stages):
        where = f"stages[{n}]"
        if not isinstance(st, dict):
            e.append((where, "must be a mapping"))
            continue
        if st.get("kind") not in STAGE_KINDS:
            e.append((f"{where}.kind", f"must be one of {', '.join(STAGE_KINDS)}"))
        if st.get("level") not in LEVELS:
            e.append((f"{where}.level", "must be village, township or county"))
        if not _int(st.get("workdays")) or st["workdays"] < 0:
            e.append((f"{where}.workdays", "must be a whole number ≥ 0 (0 = the same day)"))
        if not isinstance(st.get("name"), str) or not _CJK.search(st["name"]):
            e.append((f"{where}.name", "needs a Chinese step name"))
    if e:
        return e
    kinds = [s["kind"] for s in stages]
    if kinds[0] != "intake" or stages[0]["level"] != item.get("accept_level"):
        e.append(("stages[0]", "must be the intake at the accept level"))
    if kinds[-1] != "deliver" or stages[-1]["level"] != "village":
        e.append((f"stages[{len(stages) - 1}]", "must be the delivery at the village"))
    if kinds.count("approve") != 1:
        e.append(("stages", "needs exactly one approve stage"))
    else:
        a = kinds.index("approve")
        if stages[a]["level"] != item.get("approve_level"):
            e.append((f"stages[{a}].level", "the approve stage must be at the approve level"))
        for n in range(a + 1, len(stages) - 1):
            if kinds[n] != "assign" or stages[n]["level"] != stages[a]["level"]:
                e.append((f"stages[{n}]", "after approve only assign stages at the approve level"))
        for n in range(1, a):
            if kinds[n] not in ("review", "survey", "inspection", "appraisal"):
                e.append((f"stages[{n}].kind", "between intake and approve: review, survey, inspection or appraisal"))
        order = [LEVELS.index(s["level"]) for s in stages[:-1]]
        if any(b < a_ for a_, b in itertools.pairwise(order)):
            e.append(("stages", "levels may not go back down before delivery"))
    total = sum(s["workdays"] for s in stages)
    if promised is not None and total > promised:
        e.append(("stages", f"stage workdays add up to {total}, more than the promised limit {promised}"))
    return e


def _check_form(form: Any) -> list[tuple[str, str]]:
    if not isinstance(form, list) or not form:
        return [("form", "needs at least one intake field")]
    e: list[tuple[str, str]] = []
    ids: set[object] = set()
    for n, f in enumerate(form):
        where = f"form[{n}]"
        if not isinstance(f, dict):
            e.append((where, "must be a mapping"))
            continue
        fid = f.get("id")
        if not isinstance(fid, str) or not _FIELD_ID.match(fid):
            e.append((f"{where}.id", "must be snake_case ASCII"))
        elif fid in RESERVED_FIELDS:
            e.append((f"{where}.id", f"{fid!r} is reserved by the engine"))
        elif fid in ids:
            e.append((f"{where}.id", f"duplicate field {fid!r}"))
        ids.add(fid)
        if not isinstance(f.get("label"), str) or not _CJK.search(f["label"]):
            e.append((f"{where}.label", "needs a Chinese label"))
        kind = f.get("type")
        if kind not in FIELD_TYPES:
            e.append((f"{where}.type", f"must be one of {', '.join(FIELD_TYPES)}"))
        if kind == "enum":
            options = f.get("options")
            if not isinstance(options, list) or len(options) < 2 or not all(
                    isinstance(o, dict) and isinstance(o.get("id"), str) and _OPTION_ID.match(o["id"])
                    and isinstance(o.get("name"), str) for o in options):
                e.append((f"{where}.options", "an enum needs ≥ 2 options {id, name}"))
        if "pattern" in f:
            try:  # what deploy will accept (RE2: linear-time matching, no backreferences or lookarounds)
                patterns.check_pattern(str(f["pattern"]))
            except patterns.PatternRejected as exc:
                e.append((f"{where}.pattern", str(exc)))
        for key in ("min", "max", "max_length"):
            if key in f and not _int(f[key]):
                e.append((f"{where}.{key}", "must be a whole number"))
        if "required" in f and not isinstance(f["required"], bool):
            e.append((f"{where}.required", "must be true or false"))
    return e


_CACHE: dict[tuple[str, int], dict[str, dict[str, Any]]] = {}


def items_by_code(path: Path | None = None) -> dict[str, dict[str, Any]]:
    """The catalogue by code, read once per file version (path and mtime): intake pages and the intake
    service read an item's documents and 补正 days on every request, and parsing 270 kB each time would
    cost more than the page."""
    file = Path(path or catalog_path())
    key = (str(file), file.stat().st_mtime_ns)
    if key not in _CACHE:
        _CACHE.clear()
        _CACHE[key] = by_code(load(file))
    return _CACHE[key]


def required_documents(item: dict[str, Any]) -> tuple[list[str], list[str]]:
    """(required, optional) documents of an item: a document marked (如有)/（如有） is brought only by those
    it applies to, so its absence never makes an application incomplete."""
    required: list[str] = []
    optional: list[str] = []
    for doc in item.get("documents") or []:
        name = str(doc)
        (optional if re.search(r"[（(]如有[）)]", name) else required).append(name)
    return required, optional
