"""The database schema (SQLAlchemy 2.x typed ORM). Alembic migrations in `engine/migrations` create it.

Reads (inboxes, reports, pages) use the projections here — task and timer rows, case columns — and
never deserialize workflows; only `cases` writes them, together with the instance state.
"""
from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
    event,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator):
    """Aware UTC in Python, UTC in the database (SQLite has no time zones, so store naive UTC)."""
    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {datetime: UTCDateTime, dict[str, Any]: JSON, list[Any]: JSON}


class OrgUnit(Base):
    """City → county → township → village. `path` (/4309/430902/…/) makes subtree queries one LIKE."""
    __tablename__ = "org_units"
    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(20), unique=True)
    name: Mapped[str] = mapped_column(String(100))
    level: Mapped[str] = mapped_column(String(10), index=True)
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("org_units.id"), index=True)
    path: Mapped[str] = mapped_column(String(100), index=True)
    # what a 受理回执 or 一次性告知书 prints for the centre (村民服务中心): where to come back, whom to call
    phone: Mapped[str | None] = mapped_column(String(32))
    address: Mapped[str | None] = mapped_column(String(200))

    parent: Mapped[OrgUnit | None] = relationship(remote_side=[id])


class User(Base):
    """A person who logs in. Only `engine.accounts` (and the seed) writes these rows; the login columns
    (`failed_logins`, `locked_until`) are its throttling state, `must_change_password` sends the user to
    the change-password page before anything else (temporary passwords, reset accounts)."""
    __tablename__ = "users"
    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(100))
    role: Mapped[str] = mapped_column(String(32), index=True)
    unit_id: Mapped[int] = mapped_column(ForeignKey("org_units.id"), index=True)
    department: Mapped[str | None] = mapped_column(String(32))
    password_hash: Mapped[str | None] = mapped_column(String(255))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    must_change_password: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))
    password_changed_at: Mapped[datetime | None]
    failed_logins: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))  # consecutive
    locked_until: Mapped[datetime | None]
    created_at: Mapped[datetime | None]  # None for accounts older than migration 0004
    last_login_at: Mapped[datetime | None]

    unit: Mapped[OrgUnit] = relationship()


class LoginFailure(Base):
    """One refused login (wrong password or unknown name), kept a day: what the per-address throttle
    counts, and the throttle of names that have no account (so a lock does not tell which names exist).
    An unknown name is stored only as `name_tag`, a 32-bit digest: people type their password into the
    name field, and a short tag cannot confirm a guess of it."""
    __tablename__ = "login_failures"
    __table_args__ = (
        Index("ix_login_failures_ip_at", "ip", "at"),
        Index("ix_login_failures_name_tag_at", "name_tag", "at"),
    )
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    at: Mapped[datetime] = mapped_column(index=True)
    ip: Mapped[str | None] = mapped_column(String(64))
    name_tag: Mapped[str | None] = mapped_column(String(16))


class ProcessVersion(Base):
    """An immutable deployed process: its XML, hash, and the SpiffWorkflow spec serialized once."""
    __tablename__ = "process_versions"
    __table_args__ = (UniqueConstraint("process_id", "version"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    process_id: Mapped[str] = mapped_column(String(100), index=True)
    version: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(200))
    filename: Mapped[str] = mapped_column(String(255))
    bpmn_xml: Mapped[str] = mapped_column(Text)
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    spec_json: Mapped[str | None] = mapped_column(Text)
    task_meta: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    findings: Mapped[list[Any]] = mapped_column(JSON, default=list)
    executable: Mapped[bool] = mapped_column(Boolean, default=True)
    properties: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # process-level extension props
    # the versions of processes deployed from other files that its call activities call, pinned at deploy
    # ({process id: {version, sha256[, via]}}; None: it calls nothing outside its file; engine/bpmn/linking.py)
    calls: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    deployed_at: Mapped[datetime]
    deployed_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))


@event.listens_for(ProcessVersion, "before_update")
def _versions_are_immutable(_mapper: Any, _conn: Any, target: ProcessVersion) -> None:
    raise ValueError(f"process version {target.process_id} v{target.version} is immutable; deploy a new one")


class CaseSequence(Base):
    """Per-year counter behind case numbers such as YY-2026-000123."""
    __tablename__ = "case_sequences"
    year: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    last_value: Mapped[int] = mapped_column(Integer, default=0)


def _live(predicate: str) -> dict[str, Any]:
    """A partial index over live rows (open cases, ready tasks, armed timers), on both databases: the
    sweeps and inboxes read only those, and a full index would make them walk the whole history. A
    query uses it only when its WHERE repeats the predicate with literals (not bound parameters)."""
    return {"postgresql_where": text(predicate), "sqlite_where": text(predicate)}


class Case(Base):
    __tablename__ = "cases"
    __table_args__ = (
        Index("ix_cases_open_warning_check", "warning_check_at",
              **_live("status = 'open' AND warning_check_at IS NOT NULL")),
        # the open cases of a village / township / county, newest first (home page list and count)
        Index("ix_cases_open_village", "village_id", "id", **_live("status = 'open'")),
        Index("ix_cases_open_township", "township_id", "id", **_live("status = 'open'")),
        Index("ix_cases_open_county", "county_id", "id", **_live("status = 'open'")),
        # every aggregate of the reports over a subtree's open cases reads only these columns (engine.reports:
        # the board's open part and its cards' and steps' cases, the overdue report, the predictions' candidates):
        # index-only scans, a range of it for a county, a township or a village (migration 0011)
        Index("ix_cases_open_report", "county_id", "township_id", "village_id", "service_code", "first_clerk_id",
              "status", "warning_level", "paused_at", "promised_due_at", "promised_limit_workdays",
              "extension_workdays", "id", **_live("status = 'open'")),
        # the running cases of each process version (the designers' process list, migration's choice by version;
        # migration 0013), with the unit columns a designer's scope names
        Index("ix_cases_open_version", "process_version_id", "county_id", "township_id", "village_id",
              **_live("status = 'open'")),
        Index("uq_cases_intake_key", "intake_key", unique=True),
        # closed cases by closing instant (completed this month, on-time rate, trends)
        Index("ix_cases_closed_at", "closed_at", **_live("closed_at IS NOT NULL")),
        # the reports (engine.reports, DESIGN §7): a county's or township's cases closed in a month (a village's
        # through its township's, its scope naming both); their open cases are the open-case indexes above
        Index("ix_cases_closed_county", "county_id", "closed_at", **_live("closed_at IS NOT NULL")),
        Index("ix_cases_closed_township", "township_id", "closed_at", **_live("closed_at IS NOT NULL")),
        # the history a predicted finish date is read from (engine.reports.predict): an item's cases completed
        # in the last months, with what the prediction groups and counts (index-only on PostgreSQL)
        Index("ix_cases_completed_item", "service_code", "closed_at", "county_id", "township_id", "workdays_taken",
              **_live("status = 'completed'")),
        # cases opened per week of a county, a township, the city (the trend charts)
        Index("ix_cases_created_county", "county_id", "created_at"),
        Index("ix_cases_created_township", "township_id", "created_at"),
        Index("ix_cases_created_at", "created_at"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str] = mapped_column(String(20), unique=True)
    service_code: Mapped[str] = mapped_column(String(32), index=True)
    process_version_id: Mapped[int] = mapped_column(ForeignKey("process_versions.id"), index=True)
    village_id: Mapped[int] = mapped_column(ForeignKey("org_units.id"), index=True)
    township_id: Mapped[int] = mapped_column(ForeignKey("org_units.id"), index=True)
    county_id: Mapped[int] = mapped_column(ForeignKey("org_units.id"), index=True)
    applicant_name: Mapped[str] = mapped_column(String(100))
    # the applicant as the 受理回执 names them (the ID number is checked: 18 digits with its check digit)
    applicant_id_number: Mapped[str | None] = mapped_column(String(18), index=True)
    applicant_phone: Mapped[str | None] = mapped_column(String(20))
    applicant_address: Mapped[str | None] = mapped_column(String(200))
    # the citizen's 查询码 for 办件查询 (printed on the receipt; compared in constant time)
    query_code: Mapped[str | None] = mapped_column(String(8))
    # the browser's idempotency key of the intake that created the case: a retried submit finds the case
    # (unique through the index uq_cases_intake_key, not a constraint: SQLite drops a column's index in place)
    intake_key: Mapped[str | None] = mapped_column(String(64))
    first_clerk_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), index=True)
    status: Mapped[str] = mapped_column(String(16), index=True)  # open | completed | withdrawn
    outcome: Mapped[str | None] = mapped_column(String(100))  # name of the end event reached
    instance_json: Mapped[str] = mapped_column(Text)
    serializer_version: Mapped[str] = mapped_column(String(8))
    version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    closed_at: Mapped[datetime | None]
    # the SLA clock (DESIGN.md §5): acceptance (受理, may precede entry for 补录), limits and due instants
    accepted_at: Mapped[datetime | None]
    legal_limit_workdays: Mapped[int | None]
    promised_limit_workdays: Mapped[int | None]
    legal_due_at: Mapped[datetime | None]
    promised_due_at: Mapped[datetime | None]
    due_estimated: Mapped[bool] = mapped_column(Boolean, default=False)
    paused_at: Mapped[datetime | None]
    extension_workdays: Mapped[int | None]
    warning_level: Mapped[str] = mapped_column(String(8), default="green")
    warning_check_at: Mapped[datetime | None]  # indexed over open cases only: see __table_args__
    # set when the case closes, for the reports (DESIGN.md §7: aggregates over projections, never workflows):
    # closed by its promised due (None: no promised due), and the working days it took, pauses not counted
    on_time: Mapped[bool | None]
    workdays_taken: Mapped[int | None]

    village: Mapped[OrgUnit] = relationship(foreign_keys=[village_id])
    process_version: Mapped[ProcessVersion] = relationship()


class TaskRow(Base):
    """Projection of one ready (or once ready) user task: what inboxes and reports read."""
    __tablename__ = "tasks"
    __table_args__ = (
        UniqueConstraint("case_id", "spiff_task_id"),
        # inbox: a unit's unclaimed queue and a user's claimed tasks, each in due order (LIMIT stops early)
        Index("ix_tasks_ready_queue", "unit_id", "due_at", "id", **_live("state = 'ready' AND assignee_id IS NULL")),
        # a county department's queue (and its tasks for no department), in due order: a county holds every
        # department's queue, and walking the whole of it for one department's rows (or counting them) grows
        # with the others' work
        Index("ix_tasks_ready_group", "unit_id", "candidate_group", "due_at", "id",
              **_live("state = 'ready' AND assignee_id IS NULL")),
        Index("ix_tasks_ready_claimed", "assignee_id", "due_at", "id",
              **_live("state = 'ready' AND assignee_id IS NOT NULL")),
        Index("ix_tasks_ready_warning_check", "warning_check_at",
              **_live("state = 'ready' AND warning_check_at IS NOT NULL")),
        # the overdue report: ready steps in due order, whoever holds them (engine.reports.overdue)
        Index("ix_tasks_ready_due", "due_at", "id", **_live("state = 'ready'")),
        # where cases wait (engine.reports.waits): the steps completed in a month, and one step's recent
        # completions at one unit (a predicted finish date, engine.reports.predict)
        Index("ix_tasks_completed_at", "completed_at", **_live("state = 'completed'")),
        Index("ix_tasks_completed_step", "unit_id", "bpmn_id", "completed_at", **_live("state = 'completed'")),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    spiff_task_id: Mapped[str] = mapped_column(String(36))
    bpmn_id: Mapped[str] = mapped_column(String(100))
    name: Mapped[str] = mapped_column(String(200))
    lane: Mapped[str | None] = mapped_column(String(100))
    level: Mapped[str | None] = mapped_column(String(10))
    unit_id: Mapped[int] = mapped_column(ForeignKey("org_units.id"))
    candidate_group: Mapped[str | None] = mapped_column(String(100))
    assignee_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), index=True)
    state: Mapped[str] = mapped_column(String(12))  # ready | completed | cancelled
    created_at: Mapped[datetime]
    completed_at: Mapped[datetime | None]
    completed_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    due_at: Mapped[datetime | None]
    limit_workdays: Mapped[int | None]
    warning_level: Mapped[str] = mapped_column(String(8), default="green")
    warning_check_at: Mapped[datetime | None]  # None once the task leaves `ready`; indexed over ready tasks
    # the working time the step took from ready to completed, in hundredths of a working day
    # (`workdays.work_hundredths`: working days' hours only, the case's clock stops not taken out); set with
    # the completion, None for a step not completed (ready, cancelled)
    work_hundredths: Mapped[int | None]

    case: Mapped[Case] = relationship()


class TimerRow(Base):
    """An armed timer event. The sweep selects by due instant only (index), never by loading cases."""
    __tablename__ = "timers"
    __table_args__ = (
        UniqueConstraint("case_id", "spiff_task_id"),
        Index("ix_timers_armed_due", "due_at", **_live("state = 'armed'")),
    )
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    spiff_task_id: Mapped[str] = mapped_column(String(36))
    bpmn_id: Mapped[str] = mapped_column(String(100))
    due_at: Mapped[datetime]
    # armed | paused | fired | cancelled; failed (due when its case failed) | held (later, parked with it)
    state: Mapped[str] = mapped_column(String(12))
    fired_at: Mapped[datetime | None]
    error: Mapped[str | None] = mapped_column(Text)
    workdays: Mapped[int | None]  # the N of a workdays(N) timer: pauses and extensions count in it
    created_at: Mapped[datetime]


class AuditEvent(Base):
    __tablename__ = "audit_events"
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    case_id: Mapped[int | None] = mapped_column(ForeignKey("cases.id"), index=True)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    at: Mapped[datetime] = mapped_column(index=True)
    action: Mapped[str] = mapped_column(String(40))
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    old_value: Mapped[str | None] = mapped_column(String(200))
    new_value: Mapped[str | None] = mapped_column(String(200))


class Pause(Base):
    """An interval in which the case's clock stood still (补正, 特别程序, 公示), shown in its history."""
    __tablename__ = "pauses"
    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16))  # supplement | special | publicity
    reason: Mapped[str] = mapped_column(String(500))
    started_at: Mapped[datetime]
    ended_at: Mapped[datetime | None]
    started_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    ended_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    left: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # what was left of each deadline


class Card(Base):
    """A yellow or red card (黄牌/红牌): an immutable record; only `resolved_at` is set, once."""
    __tablename__ = "cards"
    __table_args__ = (
        UniqueConstraint("case_id", "subject", "color"),
        # the open cards the reports count, by case (a closed case has none: closing resolves them)
        Index("ix_cards_open", "case_id", "assignee_id", **_live("resolved_at IS NULL")),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    task_id: Mapped[int | None] = mapped_column(ForeignKey("tasks.id"), index=True)
    subject: Mapped[str] = mapped_column(String(40))  # "case", "legal" or "task:<id>"
    color: Mapped[str] = mapped_column(String(8))  # yellow | red
    unit_id: Mapped[int] = mapped_column(ForeignKey("org_units.id"), index=True)
    responsible_clerk_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    assignee_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    due_at: Mapped[datetime | None]
    issued_at: Mapped[datetime] = mapped_column(index=True)
    reason: Mapped[str] = mapped_column(String(500))
    resolved_at: Mapped[datetime | None]


class Notification(Base):
    __tablename__ = "notifications"
    __table_args__ = (
        Index("ix_notifications_inbox", "user_id", "read_at"),
        # a user's notifications newest first, paged by id (the list never sorts a user's whole history)
        Index("ix_notifications_user_id_id", "user_id", "id"),
        # one "nobody has claimed this step" notice per task, colour and person (the sweep may look again)
        Index("uq_notifications_task_kind", "user_id", "task_id", "kind", unique=True,
              **_live("task_id IS NOT NULL")),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    case_id: Mapped[int | None] = mapped_column(ForeignKey("cases.id"))
    card_id: Mapped[int | None] = mapped_column(ForeignKey("cards.id"))
    task_id: Mapped[int | None] = mapped_column(ForeignKey("tasks.id"))
    # card | unclaimed_yellow | unclaimed_red | returned | extension | extension_decided | supervision
    kind: Mapped[str | None] = mapped_column(String(20))
    created_at: Mapped[datetime]
    read_at: Mapped[datetime | None]
    message: Mapped[str] = mapped_column(String(500))


class CardExplanation(Base):
    """The written explanation (情况说明) that resolves a card for the supervisor: the card itself stays as
    issued (immutable); this is a record of its own, one per card."""
    __tablename__ = "card_explanations"
    id: Mapped[int] = mapped_column(primary_key=True)
    card_id: Mapped[int] = mapped_column(ForeignKey("cards.id"), unique=True)
    author_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    at: Mapped[datetime]
    explanation: Mapped[str] = mapped_column(String(1000))


class Supervision(Base):
    """督办: a supervisor's reminder on an overdue case or step, with a message — shown to the step's assignee
    and the unit that owns it, audited, counted in the reports."""
    __tablename__ = "supervisions"
    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    task_id: Mapped[int | None] = mapped_column(ForeignKey("tasks.id"))
    unit_id: Mapped[int] = mapped_column(ForeignKey("org_units.id"), index=True)
    assignee_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    sent_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    sent_at: Mapped[datetime] = mapped_column(index=True)
    message: Mapped[str] = mapped_column(String(500))


class CalendarDay(Base):
    """A day of the State Council's holiday schedule entered in the browser (法定节假日 off, 调休 worked),
    over chinese-calendar and calendar.yaml: the working-day calendar reads all three."""
    __tablename__ = "calendar_days"
    day: Mapped[date] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(8))  # holiday | workday
    name: Mapped[str] = mapped_column(String(50))
    year: Mapped[int] = mapped_column(Integer, index=True)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime]


class CalendarYear(Base):
    """A year whose holiday schedule is complete (published): its dues are no longer estimates."""
    __tablename__ = "calendar_years"
    year: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    source: Mapped[str] = mapped_column(String(200))  # e.g. 国办发明电〔2026〕N号
    published_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    published_at: Mapped[datetime]


class IntakeNotice(Base):
    """A paper the village centre hands the applicant when it does not (yet) accept: the 一次性告知书 (every
    missing document at once, where and by when to bring them) or the 不予受理通知书 (refusal, with its
    reason). `case_id` is set when the case was accepted anyway and waits for the documents (补正)."""
    __tablename__ = "intake_notices"
    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str] = mapped_column(String(24), unique=True)
    kind: Mapped[str] = mapped_column(String(12))  # notice (一次性告知) | refusal (不予受理)
    service_code: Mapped[str] = mapped_column(String(32))
    village_id: Mapped[int] = mapped_column(ForeignKey("org_units.id"), index=True)
    clerk_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    case_id: Mapped[int | None] = mapped_column(ForeignKey("cases.id"), index=True)
    applicant_name: Mapped[str] = mapped_column(String(100))
    applicant_id_number: Mapped[str | None] = mapped_column(String(18))
    applicant_phone: Mapped[str | None] = mapped_column(String(20))
    missing: Mapped[list[Any]] = mapped_column(JSON, default=list)  # the documents still to bring
    reason: Mapped[str | None] = mapped_column(String(500))
    bring_by: Mapped[date | None]  # 补正 deadline printed on the notice
    intake_key: Mapped[str | None] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime]


class Attachment(Base):
    """A scan or photo of an application's materials: the bytes live in the instance's file store under
    their SHA-256 (never in the database), the row says what they are and who brought them in."""
    __tablename__ = "attachments"
    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    task_id: Mapped[int | None] = mapped_column(ForeignKey("tasks.id"))
    document: Mapped[str | None] = mapped_column(String(100))  # which required document it shows
    filename: Mapped[str] = mapped_column(String(200))
    content_type: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    uploaded_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    uploaded_at: Mapped[datetime]
    removed_at: Mapped[datetime | None]  # withdrawn by its uploader (audited); the bytes stay


class Comment(Base):
    """A remark on a case by a person working it (意见/备注), shown on the task and case pages."""
    __tablename__ = "comments"
    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    task_id: Mapped[int | None] = mapped_column(ForeignKey("tasks.id"))
    author_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    at: Mapped[datetime]
    body: Mapped[str] = mapped_column(String(2000))


class ExtensionRequest(Base):
    """A step's worker asks for more time (申请延期); an officer of the approving level decides, and an
    approval extends the case through `cases.extend_case` (once, capped)."""
    __tablename__ = "extension_requests"
    __table_args__ = (
        Index("uq_extension_requests_pending", "case_id", unique=True, **_live("status = 'pending'")),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    task_id: Mapped[int | None] = mapped_column(ForeignKey("tasks.id"))
    workdays: Mapped[int] = mapped_column(Integer)
    reason: Mapped[str] = mapped_column(String(500))
    requested_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    requested_at: Mapped[datetime]
    status: Mapped[str] = mapped_column(String(10))  # pending | approved | rejected
    decided_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    decided_at: Mapped[datetime | None]
    decision_note: Mapped[str | None] = mapped_column(String(500))


class Rating(Base):
    """The applicant's 好差评 of a closed case: once per case, 1 (非常不满意) to 5 (非常满意)."""
    __tablename__ = "ratings"
    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), unique=True)
    score: Mapped[int] = mapped_column(Integer)
    comment: Mapped[str | None] = mapped_column(String(500))
    at: Mapped[datetime]


class RateEvent(Base):
    """One use of a rate-limited public door (办件查询) by a client: counted over a sliding window."""
    __tablename__ = "rate_events"
    __table_args__ = (Index("ix_rate_events_bucket_key_at", "bucket", "key", "at"),)
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    bucket: Mapped[str] = mapped_column(String(16))
    key: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime] = mapped_column(index=True)


class ServiceDayDigest(Base):
    """What a village or township sees on its 便民集中服务日 (the 10th): overdue, due-soon, paused cases."""
    __tablename__ = "service_day_digests"
    __table_args__ = (UniqueConstraint("unit_id", "service_date"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    unit_id: Mapped[int] = mapped_column(ForeignKey("org_units.id"))
    service_date: Mapped[date]
    generated_at: Mapped[datetime]
    content: Mapped[dict[str, Any]] = mapped_column(JSON)


@event.listens_for(Card, "before_update")
def _cards_are_immutable(_mapper: Any, _conn: Any, target: Card) -> None:
    from sqlalchemy import inspect
    changed = {a.key for a in inspect(target).attrs if a.history.has_changes()}
    if changed - {"resolved_at"} or inspect(target).attrs.resolved_at.history.deleted != [None]:
        raise ValueError("a card is an immutable record; only its resolution may be set, once")


def _open_only(predicate: str) -> dict[str, Any]:
    """The WHERE of a partial index over open incidents, for both databases."""
    return {"postgresql_where": text(predicate), "sqlite_where": text(predicate)}


class Incident(Base):
    """A case (or, for a job such as the service day, a unit) whose sweep or job failed (DESIGN.md
    invariant 8): recorded with the error, retried with backoff, resolved by a retry that succeeds or by a
    person with a note. At most one is open per (case, kind), and per (unit, kind) for job incidents; the
    sweep finds the retries that are due through the partial index over open incidents."""
    __tablename__ = "incidents"
    __table_args__ = (
        Index("uq_incidents_open_case", "case_id", "kind", unique=True,
              **_open_only("status = 'open' AND case_id IS NOT NULL")),
        Index("uq_incidents_open_job", "unit_id", "kind", unique=True,
              **_open_only("status = 'open' AND case_id IS NULL")),
        Index("ix_incidents_open_retry", "kind", "next_retry_at", **_open_only("status = 'open'")),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int | None] = mapped_column(ForeignKey("cases.id"), index=True)
    unit_id: Mapped[int | None] = mapped_column(ForeignKey("org_units.id"), index=True)  # case's village / job's unit
    kind: Mapped[str] = mapped_column(String(16))  # timer | warning | service_day
    element: Mapped[str | None] = mapped_column(String(100))  # BPMN id of the timer/task, or digest:<date>
    error_type: Mapped[str] = mapped_column(String(100))
    error_message: Mapped[str] = mapped_column(String(1000))
    first_at: Mapped[datetime]
    last_at: Mapped[datetime]
    retry_count: Mapped[int] = mapped_column(Integer, default=0)  # retries that failed too
    next_retry_at: Mapped[datetime | None]
    status: Mapped[str] = mapped_column(String(10), default="open")  # open | resolved
    resolved_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    resolved_at: Mapped[datetime | None]
    resolved_note: Mapped[str | None] = mapped_column(String(500))


class MigrationBatch(Base):
    """One run of moving running cases of a process to another of its versions (`cases.migration`): which
    cases were chosen (`selection`: from version, current step, unit, case numbers), by whom, and how many
    moved, were refused (the first ones kept with why in `refusals`) and were rolled back since."""
    __tablename__ = "migration_batches"
    id: Mapped[int] = mapped_column(primary_key=True)
    process_id: Mapped[str] = mapped_column(String(100), index=True)
    to_version_id: Mapped[int] = mapped_column(ForeignKey("process_versions.id"))
    selection: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime]
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_by: Mapped[str] = mapped_column(String(100))  # the username (the operator has no user row)
    moved: Mapped[int] = mapped_column(Integer, default=0)
    refused: Mapped[int] = mapped_column(Integer, default=0)
    rolled_back: Mapped[int] = mapped_column(Integer, default=0)
    refusals: Mapped[list[Any]] = mapped_column(JSON, default=list)  # [{case, reason, message, params}], capped


class CaseMigration(Base):
    """A case moved to another version of its process, with everything it was before — its workflow as
    stored, its version, its open steps' and live timers' projection rows — so a rollback restores it exactly
    (while its workflow is still what the move left: `after_sha256`)."""
    __tablename__ = "case_migrations"
    id: Mapped[int] = mapped_column(primary_key=True)
    batch_id: Mapped[int] = mapped_column(ForeignKey("migration_batches.id"), index=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    from_version_id: Mapped[int] = mapped_column(ForeignKey("process_versions.id"))
    to_version_id: Mapped[int] = mapped_column(ForeignKey("process_versions.id"))
    migrated_at: Mapped[datetime]
    instance_json: Mapped[str] = mapped_column(Text)  # the workflow before the move
    after_sha256: Mapped[str] = mapped_column(String(64))  # the workflow the move stored
    tasks: Mapped[list[Any]] = mapped_column(JSON, default=list)  # the open steps' rows before (changed columns)
    timers: Mapped[list[Any]] = mapped_column(JSON, default=list)  # the live timers' rows before
    state: Mapped[str] = mapped_column(String(12))  # migrated | rolled_back
    rolled_back_at: Mapped[datetime | None]
    rolled_back_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))


# --------------------------------------------------------------------------- Core tables of the write paths
def _table(model: type[Base]) -> Table:
    """The model's Core table. Declarative models type `__table__` as a FromClause; the write paths
    insert into and update these tables, which needs them typed as what they are."""
    table = model.__table__
    assert isinstance(table, Table)
    return table


T_UNIT, T_USER, T_PV, T_SEQ = _table(OrgUnit), _table(User), _table(ProcessVersion), _table(CaseSequence)
T_CASE, T_TASK, T_TIMER, T_AUDIT = _table(Case), _table(TaskRow), _table(TimerRow), _table(AuditEvent)
T_PAUSE, T_CARD, T_NOTE, T_INC = _table(Pause), _table(Card), _table(Notification), _table(Incident)
T_NOTICE, T_ATTACH, T_COMMENT = _table(IntakeNotice), _table(Attachment), _table(Comment)
T_EXTREQ, T_RATING, T_RATE = _table(ExtensionRequest), _table(Rating), _table(RateEvent)
T_CARD_EXPL, T_SUPERVISION = _table(CardExplanation), _table(Supervision)
T_CAL_DAY, T_CAL_YEAR = _table(CalendarDay), _table(CalendarYear)
T_MIG_BATCH, T_CASE_MIG = _table(MigrationBatch), _table(CaseMigration)
