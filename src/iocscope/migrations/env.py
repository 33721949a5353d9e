"""Alembic environment: runs on the connection handed over by the service.

:func:`iocscope.service.database.upgrade_database` opens an async engine and passes
its synchronous connection in ``config.attributes["connection"]``, so migrations
use the same driver and URL as the service.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy.engine import Connection

from iocscope.service.tables import Base


def run_migrations(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        # SQLite cannot ALTER most things in place; batch mode copies the table.
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()


_connection = context.config.attributes.get("connection")
if _connection is None:
    raise RuntimeError(
        "run migrations with `iocscope db upgrade`, which passes the connection"
    )
run_migrations(_connection)
