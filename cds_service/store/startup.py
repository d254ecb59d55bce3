"""Creating the schema when several processes start at once on an empty database.

`create_all` checks for each table, then creates it: two processes starting together both see no
table, and all but one fail on "already exists" (or, on PostgreSQL, on a duplicate type in
pg_type_typname_nsp_index). Replicas behind a load balancer, containers sharing a SQLite volume, or
`cds-service audit` run while the service starts, all do this. So the check and the creation happen
under one lock; whoever gets the lock next sees the committed tables and creates nothing.
"""

from __future__ import annotations

from sqlalchemy import Connection, Engine, inspect, text

from cds_service.store.schema import metadata

# Any fixed 64-bit number works: the same in every replica, and unlikely to be another application's
# on a shared server. The first 8 bytes of sha256("cds-service schema"), as a signed bigint.
SCHEMA_LOCK_KEY = 4844219612679736839


def create_schema(engine: Engine) -> None:
    """Create the missing tables, one process at a time."""
    if engine.dialect.name == "postgresql":
        # DDL is transactional in PostgreSQL; the lock is released at COMMIT, after the tables exist.
        with engine.begin() as conn:
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": SCHEMA_LOCK_KEY})
            metadata.create_all(conn)
            add_missing_columns(conn)
    elif engine.dialect.name == "sqlite":
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
    else:
        metadata.create_all(engine)


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
