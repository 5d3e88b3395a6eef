"""inbox: a county department's queue in due order; a user's notifications newest first

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03
"""
from alembic import op
import sqlalchemy as sa


revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None

_QUEUE = "state = 'ready' AND assignee_id IS NULL"


def upgrade() -> None:
    with op.batch_alter_table('tasks', schema=None) as batch_op:
        batch_op.create_index('ix_tasks_ready_group', ['unit_id', 'candidate_group', 'due_at', 'id'], unique=False,
                              postgresql_where=sa.text(_QUEUE), sqlite_where=sa.text(_QUEUE))
    with op.batch_alter_table('notifications', schema=None) as batch_op:
        batch_op.create_index('ix_notifications_user_id_id', ['user_id', 'id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('notifications', schema=None) as batch_op:
        batch_op.drop_index('ix_notifications_user_id_id')
    with op.batch_alter_table('tasks', schema=None) as batch_op:
        batch_op.drop_index('ix_tasks_ready_group', postgresql_where=sa.text(_QUEUE), sqlite_where=sa.text(_QUEUE))
