"""reports: closed cases by county and township and closing instant, ready steps in due order (the overdue
report), open cards by case

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-04
"""
from alembic import op
import sqlalchemy as sa


revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None

_CLOSED = "closed_at IS NOT NULL"
_READY = "state = 'ready'"
_UNRESOLVED = "resolved_at IS NULL"


def _where(predicate: str) -> dict:
    return {"postgresql_where": sa.text(predicate), "sqlite_where": sa.text(predicate)}


def upgrade() -> None:
    # in place, never a batch copy of cases (other tables' rows point at it; see 0005)
    op.create_index('ix_cases_closed_county', 'cases', ['county_id', 'closed_at'], unique=False, **_where(_CLOSED))
    op.create_index('ix_cases_closed_township', 'cases', ['township_id', 'closed_at'], unique=False,
                    **_where(_CLOSED))
    op.create_index('ix_tasks_ready_due', 'tasks', ['due_at', 'id'], unique=False, **_where(_READY))
    op.create_index('ix_cards_open', 'cards', ['case_id', 'assignee_id'], unique=False, **_where(_UNRESOLVED))


def downgrade() -> None:
    op.drop_index('ix_cards_open', table_name='cards')
    op.drop_index('ix_tasks_ready_due', table_name='tasks')
    op.drop_index('ix_cases_closed_township', table_name='cases')
    op.drop_index('ix_cases_closed_county', table_name='cases')
