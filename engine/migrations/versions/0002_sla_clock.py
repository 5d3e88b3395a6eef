"""sla clock, cards, pauses, notifications, service day

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26
"""
from alembic import op
import sqlalchemy as sa


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table('service_day_digests',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('unit_id', sa.Integer(), nullable=False),
    sa.Column('service_date', sa.Date(), nullable=False),
    sa.Column('generated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('content', sa.JSON(), nullable=False),
    sa.ForeignKeyConstraint(['unit_id'], ['org_units.id'], name=op.f('fk_service_day_digests_unit_id_org_units')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_service_day_digests')),
    sa.UniqueConstraint('unit_id', 'service_date', name=op.f('uq_service_day_digests_unit_id'))
    )
    op.create_table('pauses',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('case_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('reason', sa.String(length=500), nullable=False),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('ended_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('started_by_id', sa.Integer(), nullable=True),
    sa.Column('ended_by_id', sa.Integer(), nullable=True),
    sa.Column('left', sa.JSON(), nullable=False),
    sa.ForeignKeyConstraint(['case_id'], ['cases.id'], name=op.f('fk_pauses_case_id_cases')),
    sa.ForeignKeyConstraint(['ended_by_id'], ['users.id'], name=op.f('fk_pauses_ended_by_id_users')),
    sa.ForeignKeyConstraint(['started_by_id'], ['users.id'], name=op.f('fk_pauses_started_by_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_pauses'))
    )
    with op.batch_alter_table('pauses', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_pauses_case_id'), ['case_id'], unique=False)

    op.create_table('cards',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('case_id', sa.Integer(), nullable=False),
    sa.Column('task_id', sa.Integer(), nullable=True),
    sa.Column('subject', sa.String(length=40), nullable=False),
    sa.Column('color', sa.String(length=8), nullable=False),
    sa.Column('unit_id', sa.Integer(), nullable=False),
    sa.Column('responsible_clerk_id', sa.Integer(), nullable=True),
    sa.Column('assignee_id', sa.Integer(), nullable=True),
    sa.Column('due_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('issued_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('reason', sa.String(length=500), nullable=False),
    sa.Column('resolved_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['assignee_id'], ['users.id'], name=op.f('fk_cards_assignee_id_users')),
    sa.ForeignKeyConstraint(['case_id'], ['cases.id'], name=op.f('fk_cards_case_id_cases')),
    sa.ForeignKeyConstraint(['responsible_clerk_id'], ['users.id'], name=op.f('fk_cards_responsible_clerk_id_users')),
    sa.ForeignKeyConstraint(['task_id'], ['tasks.id'], name=op.f('fk_cards_task_id_tasks')),
    sa.ForeignKeyConstraint(['unit_id'], ['org_units.id'], name=op.f('fk_cards_unit_id_org_units')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_cards')),
    sa.UniqueConstraint('case_id', 'subject', 'color', name=op.f('uq_cards_case_id'))
    )
    with op.batch_alter_table('cards', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_cards_case_id'), ['case_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_cards_issued_at'), ['issued_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_cards_task_id'), ['task_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_cards_unit_id'), ['unit_id'], unique=False)

    op.create_table('notifications',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('case_id', sa.Integer(), nullable=True),
    sa.Column('card_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('read_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('message', sa.String(length=500), nullable=False),
    sa.ForeignKeyConstraint(['card_id'], ['cards.id'], name=op.f('fk_notifications_card_id_cards')),
    sa.ForeignKeyConstraint(['case_id'], ['cases.id'], name=op.f('fk_notifications_case_id_cases')),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_notifications_user_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_notifications'))
    )
    with op.batch_alter_table('notifications', schema=None) as batch_op:
        batch_op.create_index('ix_notifications_inbox', ['user_id', 'read_at'], unique=False)

    with op.batch_alter_table('cases', schema=None) as batch_op:
        batch_op.add_column(sa.Column('accepted_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('legal_limit_workdays', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('promised_limit_workdays', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('legal_due_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('promised_due_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('due_estimated', sa.Boolean(), nullable=False, server_default=sa.text('false')))
        batch_op.add_column(sa.Column('paused_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('extension_workdays', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('warning_level', sa.String(length=8), nullable=False, server_default='green'))
        batch_op.add_column(sa.Column('warning_check_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.create_index(batch_op.f('ix_cases_warning_check_at'), ['warning_check_at'], unique=False)

    with op.batch_alter_table('process_versions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('properties', sa.JSON(), nullable=False, server_default='{}'))

    with op.batch_alter_table('tasks', schema=None) as batch_op:
        batch_op.add_column(sa.Column('limit_workdays', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('warning_level', sa.String(length=8), nullable=False, server_default='green'))
        batch_op.add_column(sa.Column('warning_check_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.create_index(batch_op.f('ix_tasks_warning_check_at'), ['warning_check_at'], unique=False)

    with op.batch_alter_table('timers', schema=None) as batch_op:
        batch_op.add_column(sa.Column('workdays', sa.Integer(), nullable=True))




def downgrade() -> None:

    with op.batch_alter_table('timers', schema=None) as batch_op:
        batch_op.drop_column('workdays')

    with op.batch_alter_table('tasks', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_tasks_warning_check_at'))
        batch_op.drop_column('warning_check_at')
        batch_op.drop_column('warning_level')
        batch_op.drop_column('limit_workdays')

    with op.batch_alter_table('process_versions', schema=None) as batch_op:
        batch_op.drop_column('properties')

    with op.batch_alter_table('cases', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_cases_warning_check_at'))
        batch_op.drop_column('warning_check_at')
        batch_op.drop_column('warning_level')
        batch_op.drop_column('extension_workdays')
        batch_op.drop_column('paused_at')
        batch_op.drop_column('due_estimated')
        batch_op.drop_column('promised_due_at')
        batch_op.drop_column('legal_due_at')
        batch_op.drop_column('promised_limit_workdays')
        batch_op.drop_column('legal_limit_workdays')
        batch_op.drop_column('accepted_at')

    with op.batch_alter_table('notifications', schema=None) as batch_op:
        batch_op.drop_index('ix_notifications_inbox')

    op.drop_table('notifications')
    with op.batch_alter_table('cards', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_cards_unit_id'))
        batch_op.drop_index(batch_op.f('ix_cards_task_id'))
        batch_op.drop_index(batch_op.f('ix_cards_issued_at'))
        batch_op.drop_index(batch_op.f('ix_cards_case_id'))

    op.drop_table('cards')
    with op.batch_alter_table('pauses', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_pauses_case_id'))

    op.drop_table('pauses')
    op.drop_table('service_day_digests')

