"""The org tree (city → county → township → village), the people in it, and the Yiyang seed.

The seed is `seed/orgs.csv` (GB/T 2260 codes for counties and townships, generated village names; see
DOMAIN.md §1) plus staff generated from its clerk/agent counts, so `make run` gives every village its
便民服务员 and every township its 全程代办员 — 2769 and 295 of them, as in the source article.
"""
from __future__ import annotations

import csv
import hashlib
import hmac
import os
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session

from . import settings
from .errors import InvalidInput, NotFound
from .models import OrgUnit, User
from .policy import Actor

SEED_CSV = Path(__file__).parent / "seed" / "orgs.csv"
LEVELS = ("city", "county", "township", "village")
ROLES = ("clerk", "agent", "township_officer", "county_officer", "supervisor", "designer", "admin")
DEPARTMENTS = {  # county departments a task's candidate group may name
    "民政": "mz", "人社": "rs", "医保": "yb", "卫健": "wj", "公安": "ga", "自然资源": "zr",
    "农业农村": "ny", "林业": "ly", "残联": "cl", "司法": "sf", "退役军人": "ty", "教育": "jy",
    "水利": "sl", "住建": "zj", "市场监管": "sc",
}
DEMO_PASSWORD = "yicun2016"


# ----------------------------------------------------------------------------------------- passwords
def hash_password(password: str, *, salt: bytes | None = None, iterations: int | None = None) -> str:
    """PBKDF2-SHA256 at `settings.get().password_hash_iterations` rounds (120,000; the test suite alone
    sets fewer). The count is stored in the hash, so `check_password` verifies older hashes at theirs."""
    iterations = iterations or settings.get().password_hash_iterations
    salt = salt or os.urandom(16)
    digest = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    return f"pbkdf2_sha256${iterations}${salt.hex()}${digest.hex()}"


def check_password(stored: str | None, password: str) -> bool:
    if not stored:
        return False
    try:
        _, iterations, salt, digest = stored.split("$")
    except ValueError:
        return False
    actual = hashlib.pbkdf2_hmac("sha256", password.encode(), bytes.fromhex(salt), int(iterations))
    return hmac.compare_digest(actual.hex(), digest)


# ----------------------------------------------------------------------------------------- queries
def unit_by_code(session: Session, code: str) -> OrgUnit:
    unit = session.scalar(select(OrgUnit).where(OrgUnit.code == code))
    if unit is None:
        raise NotFound(f"no org unit with code {code!r}", reason="unit.not_found", unit=code)
    return unit


def user_by_name(session: Session, username: str) -> User:
    user = session.scalar(select(User).where(User.username == username))
    if user is None or not user.active:
        raise NotFound(f"no active user {username!r}", reason="user.not_found", username=username)
    return user


def credential_stamp(user: User) -> str:
    """What a login session remembers of the password it was opened with: a digest of its stored hash,
    which a reset by an administrator or a change by the user replaces (a new salt every time, so even
    the same password set again makes a new stamp) — every older session then ends. The digest of a
    salted hash reveals nothing a guess could be checked against."""
    return hashlib.sha256((user.password_hash or "").encode()).hexdigest()[:24]


def actor_by_id(session: Session, user_id: int, stamp: str | None = None) -> Actor | None:
    """The active user with this id as an Actor (one query, unit joined); None if gone or disabled, or —
    given the session's `stamp` — if the password changed since (`credential_stamp`). What a web request
    loads once from its session cookie."""
    row = session.execute(select(User, OrgUnit).join(OrgUnit, OrgUnit.id == User.unit_id)
                          .where(User.id == user_id, User.active.is_(True))).first()
    if row is None or (stamp is not None and credential_stamp(row[0]) != stamp):
        return None
    return Actor.of(row[0])  # its unit is in the session: no query


def actor_by_name(session: Session, username: str) -> Actor:
    """The active user `username` as an Actor (`--as USER` at the CLI); NotFound otherwise."""
    row = session.execute(select(User, OrgUnit).join(OrgUnit, OrgUnit.id == User.unit_id)
                          .where(User.username == username, User.active.is_(True))).first()
    if row is None:
        raise NotFound(f"no active user {username!r}", reason="user.not_found", username=username)
    return Actor.of(row[0])


def in_subtree(unit: OrgUnit, root: OrgUnit) -> bool:
    return unit.path.startswith(root.path)


def list_units(session: Session, level: str | None = None, parent_code: str | None = None) -> Sequence[OrgUnit]:
    stmt = select(OrgUnit).order_by(OrgUnit.code)
    if level:
        if level not in LEVELS:
            raise InvalidInput(f"unknown level {level!r}; one of {', '.join(LEVELS)}", reason="unit.level_unknown",
                               level=level)
        stmt = stmt.where(OrgUnit.level == level)
    if parent_code:
        stmt = stmt.where(OrgUnit.parent_id == unit_by_code(session, parent_code).id)
    return session.scalars(stmt).all()


def list_users(session: Session, role: str | None = None, unit_code: str | None = None,
               limit: int | None = None) -> Sequence[User]:
    stmt = select(User).order_by(User.username)
    if role:
        if role not in ROLES:
            raise InvalidInput(f"unknown role {role!r}; one of {', '.join(ROLES)}", reason="user.role_unknown",
                               role=role)
        stmt = stmt.where(User.role == role)
    if unit_code:
        stmt = stmt.where(User.unit_id == unit_by_code(session, unit_code).id)
    if limit:
        stmt = stmt.limit(limit)
    return session.scalars(stmt).all()


# ----------------------------------------------------------------------------------------- seed
@dataclass(frozen=True)
class SeedUnit:
    code: str
    name: str
    level: str
    parent_code: str | None
    clerks: int
    agents: int


def read_seed(path: Path = SEED_CSV) -> list[SeedUnit]:
    with path.open(encoding="utf-8", newline="") as fh:
        return [SeedUnit(r["code"], r["name"], r["level"], r["parent_code"] or None, int(r["clerks"]),
                         int(r["agents"])) for r in csv.DictReader(fh)]


_SURNAMES = ("王李张刘陈杨黄赵周吴徐孙胡朱高林何郭马罗梁宋郑谢韩唐冯于董萧程曹袁邓许傅沈"
             "曾彭吕苏卢蒋蔡贾丁魏薛叶阎余潘杜戴夏钟汪田任姜范方石姚谭廖邹熊金陆郝孔白崔"
             "康毛邱秦江史顾侯邵孟龙万段雷钱汤尹黎易常武乔贺赖龚文符盛")
_GIVEN = ("建国英华明军平秀兰玉珍桂芳丽红梅敏静燕霞海波强伟磊洋勇杰涛斌超林春秋志新德福"
          "寿康安宁桃湘益资沅雪云巧凤琴兵文武辉")


def _person_name(rng: random.Random) -> str:
    return rng.choice(_SURNAMES) + "".join(rng.choice(_GIVEN) for _ in range(rng.choice((1, 2, 2))))


def seed_org_tree(session: Session, units: Iterable[SeedUnit] | None = None) -> int:
    """Insert the org tree (bulk, parents first). Returns the number of units."""
    units = list(units or read_seed())
    ids: dict[str, tuple[int, str]] = {}
    next_id = (session.scalar(select(func.max(OrgUnit.id))) or 0) + 1
    rows = []
    for u in units:
        parent = ids.get(u.parent_code) if u.parent_code else None
        if u.parent_code and parent is None:
            raise InvalidInput(f"seed unit {u.code} comes before its parent {u.parent_code}", reason="init.seed_order",
                               unit=u.code, parent=u.parent_code)
        path = (parent[1] if parent else "/") + u.code + "/"
        ids[u.code] = (next_id, path)
        rows.append({"id": next_id, "code": u.code, "name": u.name, "level": u.level,
                     "parent_id": parent[0] if parent else None, "path": path})
        next_id += 1
    session.execute(insert(OrgUnit), rows)
    return len(rows)


def seed_staff(session: Session, units: Iterable[SeedUnit] | None = None, *, demo: bool = True) -> dict[str, int]:
    """Generate the clerks, agents, officers and supervisors of the seed tree, plus the demo logins.

    Every generated account shares the demo password (hashed once: 3000+ hashes would take minutes);
    a real deployment imports its own accounts. Outside a demo (`demo=False`) everyone must change
    that shared password at first login.
    """
    units = list(units or read_seed())
    unit_ids: dict[str, int] = dict(session.execute(select(OrgUnit.code, OrgUnit.id)).tuples().all())
    password = hash_password(DEMO_PASSWORD)
    rng = random.Random(2016)
    rows: list[dict] = []

    def add(username: str, name: str, role: str, unit_code: str, department: str | None = None) -> None:
        rows.append({"username": username, "display_name": name, "role": role, "unit_id": unit_ids[unit_code],
                     "department": department, "password_hash": password, "active": True,
                     "must_change_password": not demo})

    add("admin", "系统管理员", "admin", "4309")
    add("designer", "流程设计员", "designer", "4309")
    add("supervisor", "市电子监察员", "supervisor", "4309")
    for u in units:
        if u.level == "county":
            add(f"supervisor-{u.code}", f"{u.name}监察员", "supervisor", u.code)
            for dept, slug in DEPARTMENTS.items():
                add(f"officer-{u.code}-{slug}", f"{_person_name(rng)}（{u.name}{dept}）", "county_officer",
                    u.code, dept)
        elif u.level == "township":
            add(f"officer-{u.code}", f"{_person_name(rng)}（{u.name}）", "township_officer", u.code)
            for i in range(1, u.agents + 1):
                add(f"agent-{u.code}-{i}", _person_name(rng), "agent", u.code)
        elif u.level == "village":
            for i in range(1, u.clerks + 1):
                named_clerk = u.name == "邹家村" and u.parent_code == "430902102" and i == 1
                name = "盛巧云" if named_clerk else _person_name(rng)
                add(f"clerk-{u.code}-{i}", name, "clerk", u.code)
    session.execute(insert(User), rows)
    counts: dict[str, int] = {}
    for r in rows:
        counts[r["role"]] = counts.get(r["role"], 0) + 1
    return counts


#: Accounts to try the demo with: one chain from 资阳区迎风桥镇邹家村 up to the city.
DEMO_LOGINS = [
    ("clerk-430902102201-1", "便民服务员 盛巧云, 邹家村 (village)"),
    ("agent-430902102-1", "全程代办员, 迎风桥镇 (township)"),
    ("officer-430902102", "乡镇干部, 迎风桥镇 (township)"),
    ("officer-430902-mz", "资阳区民政局 (county, 民政)"),
    ("officer-430902-rs", "资阳区人社局 (county, 人社)"),
    ("officer-430902-zr", "资阳区自然资源局 (county, 自然资源)"),
    ("supervisor-430902", "资阳区电子监察 (supervisor)"),
    ("supervisor", "市电子监察 (supervisor, whole city)"),
    ("designer", "流程设计员 (designer)"),
    ("admin", "系统管理员 (admin)"),
]
