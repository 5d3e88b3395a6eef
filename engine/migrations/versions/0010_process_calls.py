"""processes that span files: process_versions.calls, the versions of processes of other files a version's
call activities call, pinned at deploy (NULL: it calls nothing outside its file, as every version before)

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-06
"""
from alembic import op
import sqlalchemy as sa


revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # in place: a nullable column, no backfill (no earlier version calls another file)
    op.add_column('process_versions', sa.Column('calls', sa.JSON(), nullable=True))


def downgrade() -> None:
    op.drop_column('process_versions', 'calls')  # in place (SQLite 3.35+), as 0009's downgrade does
