"""hardening: incidents (one failure stays one failure) and partial indexes for sweeps and inboxes

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01
"""
from alembic import op
import sqlalchemy as sa


revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    _incidents_upgrade()
    _scale_upgrade()


def downgrade() -> None:
    _scale_downgrade()
    _incidents_downgrade()


# ---------------------------------------------------------------------------------------- incidents
_OPEN_INCIDENT_INDEXES = [  # (name, columns, unique, predicate) — as in engine/models.py Incident
    ("uq_incidents_open_case", ["case_id", "kind"], True, "status = 'open' AND case_id IS NOT NULL"),
    ("uq_incidents_open_job", ["unit_id", "kind"], True, "status = 'open' AND case_id IS NULL"),
    ("ix_incidents_open_retry", ["kind", "next_retry_at"], False, "status = 'open'"),
]


def _incidents_upgrade() -> None:
    op.create_table('incidents',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('case_id', sa.Integer(), nullable=True),
    sa.Column('unit_id', sa.Integer(), nullable=True),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('element', sa.String(length=100), nullable=True),
    sa.Column('error_type', sa.String(length=100), nullable=False),
    sa.Column('error_message', sa.String(length=1000), nullable=False),
    sa.Column('first_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('last_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('retry_count', sa.Integer(), nullable=False),
    sa.Column('next_retry_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('status', sa.String(length=10), nullable=False),
    sa.Column('resolved_by_id', sa.Integer(), nullable=True),
    sa.Column('resolved_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('resolved_note', sa.String(length=500), nullable=True),
    sa.ForeignKeyConstraint(['case_id'], ['cases.id'], name=op.f('fk_incidents_case_id_cases')),
    sa.ForeignKeyConstraint(['unit_id'], ['org_units.id'], name=op.f('fk_incidents_unit_id_org_units')),
    sa.ForeignKeyConstraint(['resolved_by_id'], ['users.id'], name=op.f('fk_incidents_resolved_by_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_incidents'))
    )
    with op.batch_alter_table('incidents', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_incidents_case_id'), ['case_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_incidents_unit_id'), ['unit_id'], unique=False)
        for name, columns, unique, predicate in _OPEN_INCIDENT_INDEXES:
            batch_op.create_index(name, columns, unique=unique, postgresql_where=sa.text(predicate),
                                  sqlite_where=sa.text(predicate))


def _incidents_downgrade() -> None:
    # timers held back behind an incident ('held') are a state the older engine does not know
    op.execute("UPDATE timers SET state = 'armed' WHERE state = 'held'")
    with op.batch_alter_table('incidents', schema=None) as batch_op:
        for name, _columns, _unique, _predicate in reversed(_OPEN_INCIDENT_INDEXES):
            batch_op.drop_index(name)
        batch_op.drop_index(batch_op.f('ix_incidents_unit_id'))
        batch_op.drop_index(batch_op.f('ix_incidents_case_id'))
    op.drop_table('incidents')


# ---------------------------------------------------------------------------------------- scale
# Sweeps and inboxes read live rows only (ready tasks, open cases, armed timers); their indexes become
# partial over those rows, and rows that are no longer live drop out of them. Closed cases keep a small
# instance JSON instead of the whole task tree (engine.bpmn.serializer.dump_closed_instance).

def _live(predicate: str) -> dict:
    return {"postgresql_where": sa.text(predicate), "sqlite_where": sa.text(predicate)}


_SCALE_INDEXES = [  # (name, table, columns, predicate) — as in engine/models.py
    ("ix_tasks_ready_queue", "tasks", ["unit_id", "due_at", "id"], "state = 'ready' AND assignee_id IS NULL"),
    ("ix_tasks_ready_claimed", "tasks", ["assignee_id", "due_at", "id"],
     "state = 'ready' AND assignee_id IS NOT NULL"),
    ("ix_tasks_ready_warning_check", "tasks", ["warning_check_at"], "state = 'ready' AND warning_check_at IS NOT NULL"),
    ("ix_cases_open_warning_check", "cases", ["warning_check_at"], "status = 'open' AND warning_check_at IS NOT NULL"),
    ("ix_cases_open_village", "cases", ["village_id", "id"], "status = 'open'"),
    ("ix_cases_open_township", "cases", ["township_id", "id"], "status = 'open'"),
    ("ix_cases_open_county", "cases", ["county_id", "id"], "status = 'open'"),
    ("ix_timers_armed_due", "timers", ["due_at"], "state = 'armed'"),
]
_FULL_INDEXES = [  # what they replace (0001/0002)
    ("ix_tasks_inbox", "tasks", ["unit_id", "state"]),
    ("ix_tasks_warning_check_at", "tasks", ["warning_check_at"]),
    ("ix_cases_warning_check_at", "cases", ["warning_check_at"]),
    ("ix_timers_due", "timers", ["state", "due_at"]),
]
_COMPACT_BATCH = 500


def _scale_upgrade() -> None:
    # a task that left `ready` (and a closed case) has nothing left to check: the engine now clears it
    op.execute("UPDATE tasks SET warning_check_at = NULL WHERE state <> 'ready' AND warning_check_at IS NOT NULL")
    op.execute("UPDATE cases SET warning_check_at = NULL WHERE status <> 'open' AND warning_check_at IS NOT NULL")
    for name, table, _columns in _FULL_INDEXES:
        op.drop_index(name, table_name=table)
    for name, table, columns, predicate in _SCALE_INDEXES:
        op.create_index(name, table, columns, unique=False, **_live(predicate))
    _compact_closed_cases()


def _scale_downgrade() -> None:
    for name, table, _columns, _predicate in _SCALE_INDEXES:
        op.drop_index(name, table_name=table)
    for name, table, columns in _FULL_INDEXES:
        op.create_index(name, table, columns, unique=False)
    # compacted instances stay compact: a closed case is never restored, so nothing needs the old tree


def _compact_closed_cases() -> None:
    """Rewrite the instance JSON of every closed case to its compact form, in batches by id (bounded
    memory; each batch one UPDATE round trip). Idempotent: compact rows are skipped.

    A frozen copy of `engine.bpmn.serializer.compact_instance`: a migration must mean the same thing forever,
    whatever the engine's code becomes."""
    import json

    conn = op.get_bind()
    cases = sa.table("cases", sa.column("id", sa.Integer), sa.column("status", sa.String),
                     sa.column("instance_json", sa.Text))
    select = (sa.select(cases.c.id, cases.c.instance_json)
              .where(cases.c.status != "open", cases.c.id > sa.bindparam("after"))
              .order_by(cases.c.id).limit(_COMPACT_BATCH))
    update = (sa.update(cases).where(cases.c.id == sa.bindparam("b_id"))
              .values(instance_json=sa.bindparam("b_json")))
    after = 0
    while True:
        rows = conn.execute(select, {"after": after}).all()
        if not rows:
            return
        after = rows[-1].id
        changed = []
        for row in rows:
            try:
                dct = json.loads(row.instance_json)
            except ValueError:
                continue  # unreadable: left as it is for someone to look at
            if not isinstance(dct, dict) or "compacted" in dct or "tasks" not in dct or "root" not in dct:
                continue
            root_id = dct["root"]
            root = dict(dct["tasks"].get(root_id) or {}, children=[])
            small = {key: dct[key] for key in ("data", "success", "typename", "serializer_version") if key in dct}
            small.update(correlations={}, last_task=None, completed=True, tasks={root_id: root}, root=root_id,
                         subprocesses={}, bpmn_events=[],
                         compacted={"tasks": len(dct["tasks"]), "bytes": len(row.instance_json.encode())})
            changed.append({"b_id": row.id, "b_json": json.dumps(small, ensure_ascii=False)})
        if changed:
            conn.execute(update, changed)
