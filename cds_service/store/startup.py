"""Creating the schema when several processes start at once on an empty database.

`create_all` checks for each table, then creates it: two processes starting together both see no
table, and all but one fail on "already exists" (or, on PostgreSQL, on a duplicate type in
pg_type_typname_nsp_index). Replicas behind a load balancer, containers sharing a SQLite volume, or
`cds-service audit` run while the service starts, all do this. So the check and the creation happen
under one lock; whoever gets the lock next sees the committed tables and creates nothing.

SQLite in WAL mode has moments when it answers "database is locked" at once, without waiting out the
busy timeout: while the last connection to close cleans up the WAL and shared-memory files, and while
the next one to open recovers them (sqlite.org/wal.html, "Sometimes queries return SQLITE_BUSY in WAL
mode"). Processes starting together on a new database hit those moments, in the PRAGMA that turns WAL
on and in the first transaction; a start-up that races must wait, so both are retried for as long as
the busy timeout would have waited.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from typing import TypeVar

from sqlalchemy import Connection, Engine, inspect, text
from sqlalchemy.exc import OperationalError

from cds_service.store.schema import metadata

# Any fixed 64-bit number works: the same in every replica, and unlikely to be another application's
# on a shared server. The first 8 bytes of sha256("cds-service schema"), as a signed bigint.
SCHEMA_LOCK_KEY = 4844219612679736839
# SQLite's primary result codes for "another connection holds the lock".
_SQLITE_BUSY, _SQLITE_LOCKED = 5, 6

T = TypeVar("T")


def create_schema(engine: Engine, wait_seconds: float = 30.0) -> None:
    """Create the missing tables, one process at a time."""
    if engine.dialect.name == "postgresql":
        # DDL is transactional in PostgreSQL; the lock is released at COMMIT, after the tables exist.
        with engine.begin() as conn:
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": SCHEMA_LOCK_KEY})
            metadata.create_all(conn)
            add_missing_columns(conn)
    elif engine.dialect.name == "sqlite":
        retry_while_locked(lambda: _create_sqlite(engine), wait_seconds)
    else:
        metadata.create_all(engine)


def _create_sqlite(engine: Engine) -> None:
    # pysqlite opens no transaction before DDL on its own: take the write lock explicitly. Others
    # wait for it up to the busy timeout.
    with engine.connect() as conn:
        conn = conn.execution_options(isolation_level="AUTOCOMMIT")
        conn.exec_driver_sql("BEGIN IMMEDIATE")
        try:
            metadata.create_all(conn)
            add_missing_columns(conn)
        except BaseException:
            conn.exec_driver_sql("ROLLBACK")
            raise
        conn.exec_driver_sql("COMMIT")


def retry_while_locked(attempt: Callable[[], T], wait_seconds: float) -> T:
    """attempt(), tried again while SQLite says the database is locked, for up to wait_seconds."""
    deadline = time.monotonic() + wait_seconds
    pause = 0.01
    while True:
        try:
            return attempt()
        except (sqlite3.OperationalError, OperationalError) as exc:
            if not is_locked(exc) or time.monotonic() + pause > deadline:
                raise
        time.sleep(pause)
        pause = min(pause * 2, 0.25)


def is_locked(exc: BaseException) -> bool:
    error = exc.orig if isinstance(exc, OperationalError) else exc
    code = getattr(error, "sqlite_errorcode", None)
    if isinstance(code, int):
        return code & 0xFF in (_SQLITE_BUSY, _SQLITE_LOCKED)
    return isinstance(error, sqlite3.OperationalError) and "locked" in str(error)


def add_missing_columns(conn: Connection) -> None:
    """Add the nullable columns a newer version declares to tables an older one created: the only kind
    of schema change this service makes, so a database upgrades itself at start-up."""
    inspector = inspect(conn)
    for table in metadata.sorted_tables:
        present = {column["name"] for column in inspector.get_columns(table.name)}
        for column in table.columns:
            if column.name in present:
                continue
            if not column.nullable:
                raise RuntimeError(f"{table.name}.{column.name} is missing and cannot be added (NOT NULL)")
            kind = column.type.compile(dialect=conn.dialect)
            conn.execute(text(f'ALTER TABLE "{table.name}" ADD COLUMN "{column.name}" {kind}'))
