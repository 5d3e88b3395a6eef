"""Alembic environment: runs on the connection `engine.db.migrate` hands over, or on YICUN_DATABASE_URL."""
from alembic import context
from sqlalchemy import Connection

from engine.db import make_engine
from engine.models import Base

config = context.config
target_metadata = Base.metadata


def run() -> None:
    connection = config.attributes.get("connection")
    if connection is None:
        with make_engine().begin() as conn:
            _run(conn)
    else:
        _run(connection)


def _run(connection: Connection) -> None:
    context.configure(connection=connection, target_metadata=target_metadata,
                      render_as_batch=connection.dialect.name == "sqlite")
    with context.begin_transaction():
        context.run_migrations()


run()
