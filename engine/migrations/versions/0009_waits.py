"""where cases wait: the working time of each completed step (tasks.work_hundredths, backfilled), completed
steps by completion instant and by unit and step, an item's completed cases by closing instant (predicted
finish dates), cases by creation instant per county, township and city (weekly charts)

The backfill sets the working time of every step completed before this revision, with the function the
engine uses at completion (`workdays.work_hundredths`) and the default calendar (the override file and
chinese-calendar, the years published in this database laid over): `projection.backfill_work_hundredths`,
keyset by id, 5,000 steps per round — one SELECT on the primary key and one UPDATE (PostgreSQL:
`UPDATE … FROM unnest(ids, values)`; SQLite: executemany). Measured on PostgreSQL 15 on a 2-core machine
shared with other work (load ~4): a database of 1 million cases and 3 million steps (2.94 million completed)
backfilled in 176 s (~17,000 steps a second; a third of it Python, the rest the updates and their index
entries), the six new indexes built in 31 s more — the whole upgrade in about 4 minutes, in one transaction
(a failure leaves the schema as it was). A copied or restored database can run the backfill again: it sets
only steps still without a value.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-05
"""
from alembic import op
import sqlalchemy as sa


revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None

_COMPLETED_STEP = "state = 'completed'"
_COMPLETED_CASE = "status = 'completed'"


def _where(predicate: str) -> dict:
    return {"postgresql_where": sa.text(predicate), "sqlite_where": sa.text(predicate)}


def upgrade() -> None:
    # in place, never a batch copy of tasks or cases (other tables' rows point at them; see 0005)
    op.add_column('tasks', sa.Column('work_hundredths', sa.Integer(), nullable=True))
    from engine.cases.projection import backfill_work_hundredths  # the engine's own rule, not a copy of it
    backfill_work_hundredths(op.get_bind())
    op.create_index('ix_tasks_completed_at', 'tasks', ['completed_at'], unique=False, **_where(_COMPLETED_STEP))
    op.create_index('ix_tasks_completed_step', 'tasks', ['unit_id', 'bpmn_id', 'completed_at'], unique=False,
                    **_where(_COMPLETED_STEP))
    op.create_index('ix_cases_completed_item', 'cases',
                    ['service_code', 'closed_at', 'county_id', 'township_id', 'workdays_taken'], unique=False,
                    **_where(_COMPLETED_CASE))
    op.create_index('ix_cases_created_county', 'cases', ['county_id', 'created_at'], unique=False)
    op.create_index('ix_cases_created_township', 'cases', ['township_id', 'created_at'], unique=False)
    op.create_index('ix_cases_created_at', 'cases', ['created_at'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_cases_created_at', table_name='cases')
    op.drop_index('ix_cases_created_township', table_name='cases')
    op.drop_index('ix_cases_created_county', table_name='cases')
    op.drop_index('ix_cases_completed_item', table_name='cases')
    op.drop_index('ix_tasks_completed_step', table_name='tasks')
    op.drop_index('ix_tasks_completed_at', table_name='tasks')
    op.drop_column('tasks', 'work_hundredths')  # in place (SQLite 3.35+), as 0007's downgrade does
