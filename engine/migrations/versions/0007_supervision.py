"""the supervisor's workspace: 督办, card explanations, the calendar in the database, on-time and
working days taken of closed cases (with the on-time backfill)

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02
"""
from alembic import op
import sqlalchemy as sa


revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('calendar_days',
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('kind', sa.String(length=8), nullable=False),
    sa.Column('name', sa.String(length=50), nullable=False),
    sa.Column('year', sa.Integer(), nullable=False),
    sa.Column('created_by_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['created_by_id'], ['users.id'], name=op.f('fk_calendar_days_created_by_id_users')),
    sa.PrimaryKeyConstraint('day', name=op.f('pk_calendar_days'))
    )
    with op.batch_alter_table('calendar_days', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_calendar_days_year'), ['year'], unique=False)

    op.create_table('calendar_years',
    sa.Column('year', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('source', sa.String(length=200), nullable=False),
    sa.Column('published_by_id', sa.Integer(), nullable=True),
    sa.Column('published_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['published_by_id'], ['users.id'], name=op.f('fk_calendar_years_published_by_id_users')),
    sa.PrimaryKeyConstraint('year', name=op.f('pk_calendar_years'))
    )
    op.create_table('supervisions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('case_id', sa.Integer(), nullable=False),
    sa.Column('task_id', sa.Integer(), nullable=True),
    sa.Column('unit_id', sa.Integer(), nullable=False),
    sa.Column('assignee_id', sa.Integer(), nullable=True),
    sa.Column('sent_by_id', sa.Integer(), nullable=False),
    sa.Column('sent_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('message', sa.String(length=500), nullable=False),
    sa.ForeignKeyConstraint(['assignee_id'], ['users.id'], name=op.f('fk_supervisions_assignee_id_users')),
    sa.ForeignKeyConstraint(['case_id'], ['cases.id'], name=op.f('fk_supervisions_case_id_cases')),
    sa.ForeignKeyConstraint(['sent_by_id'], ['users.id'], name=op.f('fk_supervisions_sent_by_id_users')),
    sa.ForeignKeyConstraint(['task_id'], ['tasks.id'], name=op.f('fk_supervisions_task_id_tasks')),
    sa.ForeignKeyConstraint(['unit_id'], ['org_units.id'], name=op.f('fk_supervisions_unit_id_org_units')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_supervisions'))
    )
    with op.batch_alter_table('supervisions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_supervisions_case_id'), ['case_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_supervisions_sent_at'), ['sent_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_supervisions_unit_id'), ['unit_id'], unique=False)

    op.create_table('card_explanations',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('card_id', sa.Integer(), nullable=False),
    sa.Column('author_id', sa.Integer(), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('explanation', sa.String(length=1000), nullable=False),
    sa.ForeignKeyConstraint(['author_id'], ['users.id'], name=op.f('fk_card_explanations_author_id_users')),
    sa.ForeignKeyConstraint(['card_id'], ['cards.id'], name=op.f('fk_card_explanations_card_id_cards')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_card_explanations')),
    sa.UniqueConstraint('card_id', name=op.f('uq_card_explanations_card_id'))
    )
    # in place, never a batch copy of cases (other tables' rows point at it; see 0005)
    op.add_column('cases', sa.Column('on_time', sa.Boolean(), nullable=True))
    op.add_column('cases', sa.Column('workdays_taken', sa.Integer(), nullable=True))
    op.create_index('ix_cases_closed_at', 'cases', ['closed_at'], unique=False,
                    postgresql_where=sa.text('closed_at IS NOT NULL'), sqlite_where=sa.text('closed_at IS NOT NULL'))
    # closed cases so far: on time when closed by their promised due (the working days taken stay unknown)
    op.execute("UPDATE cases SET on_time = (closed_at <= promised_due_at) "
               "WHERE closed_at IS NOT NULL AND promised_due_at IS NOT NULL")



def downgrade() -> None:
    op.drop_index('ix_cases_closed_at', table_name='cases')
    op.drop_column('cases', 'workdays_taken')
    op.drop_column('cases', 'on_time')

    op.drop_table('card_explanations')
    with op.batch_alter_table('supervisions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_supervisions_unit_id'))
        batch_op.drop_index(batch_op.f('ix_supervisions_sent_at'))
        batch_op.drop_index(batch_op.f('ix_supervisions_case_id'))

    op.drop_table('supervisions')
    op.drop_table('calendar_years')
    with op.batch_alter_table('calendar_days', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_calendar_days_year'))

    op.drop_table('calendar_days')
