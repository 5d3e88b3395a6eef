"""workbench: intake notices, attachments, comments, extension requests, ratings, public rate limits

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02
"""
from alembic import op
import sqlalchemy as sa


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('rate_events',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('bucket', sa.String(length=16), nullable=False),
    sa.Column('key', sa.String(length=64), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_rate_events'))
    )
    with op.batch_alter_table('rate_events', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_rate_events_at'), ['at'], unique=False)
        batch_op.create_index('ix_rate_events_bucket_key_at', ['bucket', 'key', 'at'], unique=False)

    op.create_table('intake_notices',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('number', sa.String(length=24), nullable=False),
    sa.Column('kind', sa.String(length=12), nullable=False),
    sa.Column('service_code', sa.String(length=32), nullable=False),
    sa.Column('village_id', sa.Integer(), nullable=False),
    sa.Column('clerk_id', sa.Integer(), nullable=False),
    sa.Column('case_id', sa.Integer(), nullable=True),
    sa.Column('applicant_name', sa.String(length=100), nullable=False),
    sa.Column('applicant_id_number', sa.String(length=18), nullable=True),
    sa.Column('applicant_phone', sa.String(length=20), nullable=True),
    sa.Column('missing', sa.JSON(), nullable=False),
    sa.Column('reason', sa.String(length=500), nullable=True),
    sa.Column('bring_by', sa.Date(), nullable=True),
    sa.Column('intake_key', sa.String(length=64), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['case_id'], ['cases.id'], name=op.f('fk_intake_notices_case_id_cases')),
    sa.ForeignKeyConstraint(['clerk_id'], ['users.id'], name=op.f('fk_intake_notices_clerk_id_users')),
    sa.ForeignKeyConstraint(['village_id'], ['org_units.id'], name=op.f('fk_intake_notices_village_id_org_units')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_intake_notices')),
    sa.UniqueConstraint('intake_key', name=op.f('uq_intake_notices_intake_key')),
    sa.UniqueConstraint('number', name=op.f('uq_intake_notices_number'))
    )
    with op.batch_alter_table('intake_notices', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_intake_notices_case_id'), ['case_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_intake_notices_village_id'), ['village_id'], unique=False)

    op.create_table('ratings',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('case_id', sa.Integer(), nullable=False),
    sa.Column('score', sa.Integer(), nullable=False),
    sa.Column('comment', sa.String(length=500), nullable=True),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['case_id'], ['cases.id'], name=op.f('fk_ratings_case_id_cases')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_ratings')),
    sa.UniqueConstraint('case_id', name=op.f('uq_ratings_case_id'))
    )
    op.create_table('attachments',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('case_id', sa.Integer(), nullable=False),
    sa.Column('task_id', sa.Integer(), nullable=True),
    sa.Column('document', sa.String(length=100), nullable=True),
    sa.Column('filename', sa.String(length=200), nullable=False),
    sa.Column('content_type', sa.String(length=64), nullable=False),
    sa.Column('size', sa.Integer(), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('uploaded_by_id', sa.Integer(), nullable=False),
    sa.Column('uploaded_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('removed_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['case_id'], ['cases.id'], name=op.f('fk_attachments_case_id_cases')),
    sa.ForeignKeyConstraint(['task_id'], ['tasks.id'], name=op.f('fk_attachments_task_id_tasks')),
    sa.ForeignKeyConstraint(['uploaded_by_id'], ['users.id'], name=op.f('fk_attachments_uploaded_by_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_attachments'))
    )
    with op.batch_alter_table('attachments', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_attachments_case_id'), ['case_id'], unique=False)

    op.create_table('comments',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('case_id', sa.Integer(), nullable=False),
    sa.Column('task_id', sa.Integer(), nullable=True),
    sa.Column('author_id', sa.Integer(), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('body', sa.String(length=2000), nullable=False),
    sa.ForeignKeyConstraint(['author_id'], ['users.id'], name=op.f('fk_comments_author_id_users')),
    sa.ForeignKeyConstraint(['case_id'], ['cases.id'], name=op.f('fk_comments_case_id_cases')),
    sa.ForeignKeyConstraint(['task_id'], ['tasks.id'], name=op.f('fk_comments_task_id_tasks')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_comments'))
    )
    with op.batch_alter_table('comments', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_comments_case_id'), ['case_id'], unique=False)

    op.create_table('extension_requests',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('case_id', sa.Integer(), nullable=False),
    sa.Column('task_id', sa.Integer(), nullable=True),
    sa.Column('workdays', sa.Integer(), nullable=False),
    sa.Column('reason', sa.String(length=500), nullable=False),
    sa.Column('requested_by_id', sa.Integer(), nullable=False),
    sa.Column('requested_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('status', sa.String(length=10), nullable=False),
    sa.Column('decided_by_id', sa.Integer(), nullable=True),
    sa.Column('decided_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('decision_note', sa.String(length=500), nullable=True),
    sa.ForeignKeyConstraint(['case_id'], ['cases.id'], name=op.f('fk_extension_requests_case_id_cases')),
    sa.ForeignKeyConstraint(['decided_by_id'], ['users.id'], name=op.f('fk_extension_requests_decided_by_id_users')),
    sa.ForeignKeyConstraint(['requested_by_id'], ['users.id'], name=op.f('fk_extension_requests_requested_by_id_users')),
    sa.ForeignKeyConstraint(['task_id'], ['tasks.id'], name=op.f('fk_extension_requests_task_id_tasks')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_extension_requests'))
    )
    with op.batch_alter_table('extension_requests', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_extension_requests_case_id'), ['case_id'], unique=False)
        batch_op.create_index('uq_extension_requests_pending', ['case_id'], unique=True, postgresql_where=sa.text("status = 'pending'"), sqlite_where=sa.text("status = 'pending'"))

    # plain ALTER TABLE on cases and org_units (never a batch copy on SQLite: other tables' rows point at
    # them, so dropping the old copy would fail the foreign keys on a downgrade)
    op.add_column('cases', sa.Column('applicant_id_number', sa.String(length=18), nullable=True))
    op.add_column('cases', sa.Column('applicant_phone', sa.String(length=20), nullable=True))
    op.add_column('cases', sa.Column('applicant_address', sa.String(length=200), nullable=True))
    op.add_column('cases', sa.Column('query_code', sa.String(length=8), nullable=True))
    op.add_column('cases', sa.Column('intake_key', sa.String(length=64), nullable=True))
    op.create_index(op.f('ix_cases_applicant_id_number'), 'cases', ['applicant_id_number'], unique=False)
    op.create_index('uq_cases_intake_key', 'cases', ['intake_key'], unique=True)

    with op.batch_alter_table('notifications', schema=None) as batch_op:
        batch_op.add_column(sa.Column('task_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('kind', sa.String(length=20), nullable=True))
        batch_op.create_index('uq_notifications_task_kind', ['user_id', 'task_id', 'kind'], unique=True, postgresql_where=sa.text('task_id IS NOT NULL'), sqlite_where=sa.text('task_id IS NOT NULL'))
        batch_op.create_foreign_key(batch_op.f('fk_notifications_task_id_tasks'), 'tasks', ['task_id'], ['id'])

    op.add_column('org_units', sa.Column('phone', sa.String(length=32), nullable=True))
    op.add_column('org_units', sa.Column('address', sa.String(length=200), nullable=True))


def downgrade() -> None:
    op.drop_column('org_units', 'address')
    op.drop_column('org_units', 'phone')

    with op.batch_alter_table('notifications', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_notifications_task_id_tasks'), type_='foreignkey')
        batch_op.drop_index('uq_notifications_task_kind', postgresql_where=sa.text('task_id IS NOT NULL'), sqlite_where=sa.text('task_id IS NOT NULL'))
        batch_op.drop_column('kind')
        batch_op.drop_column('task_id')

    op.drop_index('uq_cases_intake_key', table_name='cases')
    op.drop_index(op.f('ix_cases_applicant_id_number'), table_name='cases')
    for column in ('intake_key', 'query_code', 'applicant_address', 'applicant_phone', 'applicant_id_number'):
        op.drop_column('cases', column)

    with op.batch_alter_table('extension_requests', schema=None) as batch_op:
        batch_op.drop_index('uq_extension_requests_pending', postgresql_where=sa.text("status = 'pending'"), sqlite_where=sa.text("status = 'pending'"))
        batch_op.drop_index(batch_op.f('ix_extension_requests_case_id'))

    op.drop_table('extension_requests')
    with op.batch_alter_table('comments', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_comments_case_id'))

    op.drop_table('comments')
    with op.batch_alter_table('attachments', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_attachments_case_id'))

    op.drop_table('attachments')
    op.drop_table('ratings')
    with op.batch_alter_table('intake_notices', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_intake_notices_village_id'))
        batch_op.drop_index(batch_op.f('ix_intake_notices_case_id'))

    op.drop_table('intake_notices')
    with op.batch_alter_table('rate_events', schema=None) as batch_op:
        batch_op.drop_index('ix_rate_events_bucket_key_at')
        batch_op.drop_index(batch_op.f('ix_rate_events_at'))

    op.drop_table('rate_events')
