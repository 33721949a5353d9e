"""Alembic migrations for the service database, run by ``iocscope db upgrade``."""
