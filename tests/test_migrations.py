"""Schema upgrades keep existing data (0001 → head), on SQLite and PostgreSQL."""
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import text

from engine import db
from engine.models import Base


def test_upgrade_from_the_first_schema_keeps_cases(db_url):
    engine = db.make_engine(db_url)
    db.migrate(engine, "0001")
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO org_units (id, code, name, level, parent_id, path) "
                          "VALUES (1, '4309', '益阳市', 'city', NULL, '/4309/')"))
        conn.execute(text("INSERT INTO process_versions (id, process_id, version, name, filename, bpmn_xml, sha256, "
                          "task_meta, findings, executable, deployed_at) VALUES (1, 'MZ-01', 1, 'x', 'x.bpmn', "
                          "'<x/>', 'abc', '{}', '[]', true, '2026-11-01 00:00:00')"))
        conn.execute(text("INSERT INTO cases (id, number, service_code, process_version_id, village_id, township_id, "
                          "county_id, applicant_name, status, instance_json, serializer_version, version, created_at, "
                          "updated_at) VALUES (1, 'YY-2026-000001', 'MZ-01', 1, 1, 1, 1, '符建英', 'open', '{}', "
                          "'1.5', 0, '2026-11-01 00:00:00', '2026-11-01 00:00:00')"))
    db.migrate(engine)
    with engine.connect() as conn:
        row = conn.execute(text("SELECT number, warning_level, due_estimated, legal_due_at FROM cases")).one()
        props = conn.execute(text("SELECT properties FROM process_versions")).scalar_one()
    assert (row.number, row.warning_level, bool(row.due_estimated), row.legal_due_at) == (
        "YY-2026-000001", "green", False, None)
    assert props in ({}, "{}")
    with engine.connect() as conn:  # foreign keys are back on after the SQLite batch migration
        if engine.dialect.name == "sqlite":
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    engine.dispose()


def test_the_migrated_schema_is_what_the_models_declare(db_url):
    """Alembic's autogenerate, run against a database built by the migrations alone, finds nothing to add,
    drop or change: a model edited without a migration (or a migration that drifted from the models)
    fails here, on each database."""
    engine = db.make_engine(db_url)
    db.migrate(engine)
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    engine.dispose()
    assert diff == []
