"""the open cases by process version (`ix_cases_open_version`): the designers' process list counts each version's
running cases, and a migration of running cases (engine/cases/migration.py) chooses them by version

Without it both read every open case (an index-only scan of `ix_cases_open_report`, whose leading columns are
the units): the process list took ~216 ms at a million cases (150,000 open), on every visit; with it ~22 ms p50
(benchmarks/design_pages.py). A count per version is a range of this index, ordered by version, with the unit
columns a designer's scope names (engine/queries/scope.case_scope) in it, so it stays index-only for a county's
or a township's designer.

Cost, measured on PostgreSQL 15 with a million cases (150,000 open): the index is 3.7 MB and the migration takes
~1 s; a case's version changes only when it is migrated, and closing a case takes it out (the predicate).

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-02
"""
from alembic import op
import sqlalchemy as sa


revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None

_OPEN = "status = 'open'"
COLUMNS = ['process_version_id', 'county_id', 'township_id', 'village_id']


def upgrade() -> None:
    # in place, never a batch copy of cases (other tables' rows point at it; see 0005)
    op.create_index('ix_cases_open_version', 'cases', COLUMNS, unique=False,
                    postgresql_where=sa.text(_OPEN), sqlite_where=sa.text(_OPEN))


def downgrade() -> None:
    op.drop_index('ix_cases_open_version', table_name='cases')
