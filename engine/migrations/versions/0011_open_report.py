"""reports at a million cases: the open cases' report columns in one covering index (`ix_cases_open_report`),
and on PostgreSQL the statistics that the unit columns depend on one another (`st_cases_units`)

What reads the index: every aggregate over a subtree's open cases — the board's open part and its open cards'
cases, the holder's steps' cases, the overdue report's and the overdue steps' cases (engine.reports.waits), the
open cards by item (engine.reports.trends), the predictions' candidates (engine.reports.predict) — reads only
these columns, so on PostgreSQL each is an index-only scan of the open cases (a range of it for a county, a
township or a village: the subtree conditions name the units from the county down, engine.reports.scope)
instead of the whole table (1.3 GB at a million cases) or a heap fetch per open case. `status` is in it for the
measures' CASE expressions, which repeat it.

The statistics: a township's condition names its county too, and a village's its county and township; without
them the planner multiplies the selectivities of columns that depend on one another and expects a township to
hold a tenth of its cases. (SQLite has no such statistics and needs none.)

Cost, measured on PostgreSQL 15 with a million cases (150,000 open): the index is 13 MB and builds in ~2 s;
a write to an open case that is not a HOT update adds one entry to it (closing a case adds none: a closed case
is outside the index's predicate).

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-02
"""
from alembic import op
import sqlalchemy as sa


revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None

_OPEN = "status = 'open'"
COLUMNS = ['county_id', 'township_id', 'village_id', 'service_code', 'first_clerk_id', 'status', 'warning_level',
           'paused_at', 'promised_due_at', 'promised_limit_workdays', 'extension_workdays', 'id']


def upgrade() -> None:
    # in place, never a batch copy of cases (other tables' rows point at it; see 0005)
    op.create_index('ix_cases_open_report', 'cases', COLUMNS, unique=False,
                    postgresql_where=sa.text(_OPEN), sqlite_where=sa.text(_OPEN))
    if op.get_bind().dialect.name == "postgresql":
        op.execute("CREATE STATISTICS IF NOT EXISTS st_cases_units (dependencies) "
                   "ON county_id, township_id, village_id FROM cases")
        op.execute("ANALYZE cases")  # the new statistics are empty until the table is analysed (~1 s at 1M)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP STATISTICS IF EXISTS st_cases_units")
    op.drop_index('ix_cases_open_report', table_name='cases')
