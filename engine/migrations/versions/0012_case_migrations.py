"""running cases moved to another version of their process (issue 11 §6): the runs (`migration_batches`) and,
per case moved, what it was before (`case_migrations`: its workflow as stored, its version, its open steps'
and live timers' rows) so that a rollback restores it exactly

Two new tables, nothing existing is touched.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-07
"""
from alembic import op
import sqlalchemy as sa


revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('migration_batches',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('process_id', sa.String(length=100), nullable=False),
    sa.Column('to_version_id', sa.Integer(), nullable=False),
    sa.Column('selection', sa.JSON(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('created_by_id', sa.Integer(), nullable=True),
    sa.Column('created_by', sa.String(length=100), nullable=False),
    sa.Column('moved', sa.Integer(), nullable=False),
    sa.Column('refused', sa.Integer(), nullable=False),
    sa.Column('rolled_back', sa.Integer(), nullable=False),
    sa.Column('refusals', sa.JSON(), nullable=False),
    sa.ForeignKeyConstraint(['created_by_id'], ['users.id'], name=op.f('fk_migration_batches_created_by_id_users')),
    sa.ForeignKeyConstraint(['to_version_id'], ['process_versions.id'],
                            name=op.f('fk_migration_batches_to_version_id_process_versions')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_migration_batches'))
    )
    with op.batch_alter_table('migration_batches', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_migration_batches_process_id'), ['process_id'], unique=False)

    op.create_table('case_migrations',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('batch_id', sa.Integer(), nullable=False),
    sa.Column('case_id', sa.Integer(), nullable=False),
    sa.Column('from_version_id', sa.Integer(), nullable=False),
    sa.Column('to_version_id', sa.Integer(), nullable=False),
    sa.Column('migrated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('instance_json', sa.Text(), nullable=False),
    sa.Column('after_sha256', sa.String(length=64), nullable=False),
    sa.Column('tasks', sa.JSON(), nullable=False),
    sa.Column('timers', sa.JSON(), nullable=False),
    sa.Column('state', sa.String(length=12), nullable=False),
    sa.Column('rolled_back_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('rolled_back_by_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['batch_id'], ['migration_batches.id'],
                            name=op.f('fk_case_migrations_batch_id_migration_batches')),
    sa.ForeignKeyConstraint(['case_id'], ['cases.id'], name=op.f('fk_case_migrations_case_id_cases')),
    sa.ForeignKeyConstraint(['from_version_id'], ['process_versions.id'],
                            name=op.f('fk_case_migrations_from_version_id_process_versions')),
    sa.ForeignKeyConstraint(['rolled_back_by_id'], ['users.id'],
                            name=op.f('fk_case_migrations_rolled_back_by_id_users')),
    sa.ForeignKeyConstraint(['to_version_id'], ['process_versions.id'],
                            name=op.f('fk_case_migrations_to_version_id_process_versions')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_case_migrations'))
    )
    with op.batch_alter_table('case_migrations', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_case_migrations_batch_id'), ['batch_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_case_migrations_case_id'), ['case_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('case_migrations', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_case_migrations_case_id'))
        batch_op.drop_index(batch_op.f('ix_case_migrations_batch_id'))
    op.drop_table('case_migrations')
    with op.batch_alter_table('migration_batches', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_migration_batches_process_id'))
    op.drop_table('migration_batches')
