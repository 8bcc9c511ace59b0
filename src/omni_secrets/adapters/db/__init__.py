"""The database adapter: SQLAlchemy 2 async engine, tables, Alembic migrations, repositories.

PostgreSQL (``postgresql+psycopg://``) in production, SQLite (``sqlite:///``) for the embedded
single-process default. Import the modules you need (``engine``, ``unit_of_work``, ``migrate``);
nothing is created at import time.
"""
