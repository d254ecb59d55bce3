"""Processes starting together on an empty database all get a usable store (store/startup.py).

Without the lock, eight creators at once failed in every round measured, on both databases: SQLite
"table cards_issued already exists", PostgreSQL a duplicate key in pg_type_typname_nsp_index.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import create_engine, inspect
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

from cds_service.store.database import Store
from cds_service.store.schema import metadata
from cds_service.store.startup import is_locked, retry_while_locked

CREATORS = 8
ROUNDS = 3


def _empty_database(database_url: str, tmp_path: Path, round_: int) -> str:
    if make_url(database_url).get_backend_name() == "sqlite":
        return f"sqlite:///{tmp_path / f'round-{round_}.db'}"
    engine = create_engine(database_url)
    metadata.drop_all(engine)
    engine.dispose()
    return database_url


def _create_at_once(url: str) -> list[str]:
    """CREATORS stores created on `url` at the same moment, each with its own engine as a replica's;
    what each raised."""
    barrier = threading.Barrier(CREATORS)

    def create(_: int) -> None:
        barrier.wait(timeout=30)
        Store(url).close()

    with ThreadPoolExecutor(max_workers=CREATORS) as pool:
        futures = [pool.submit(create, n) for n in range(CREATORS)]
        return [str(error) for future in futures if (error := future.exception(timeout=60)) is not None]


@pytest.mark.integration  # eight start-ups racing on a new database, three times
def test_stores_created_at_once_on_an_empty_database_all_succeed(database_url: str, tmp_path: Path) -> None:
    for round_ in range(ROUNDS):
        url = _empty_database(database_url, tmp_path, round_)
        assert _create_at_once(url) == [], f"round {round_}"
        engine = create_engine(url)
        assert set(inspect(engine).get_table_names()) >= set(metadata.tables)
        engine.dispose()


def test_a_store_started_on_an_existing_schema_keeps_its_rows(database_url: str) -> None:
    expires = datetime(2026, 11, 23, 12, tzinfo=UTC)
    first = Store(database_url)
    assert first.first_use("https://ehr.example", "jti-1", expires)
    first.close()
    second = Store(database_url)
    assert not second.first_use("https://ehr.example", "jti-1", expires)  # still remembered
    second.close()


def _failing(times: int, error: Exception) -> tuple[list[float], Callable[[], str]]:
    calls: list[float] = []

    def attempt() -> str:
        calls.append(time.monotonic())
        if len(calls) <= times:
            raise error
        return "done"

    return calls, attempt


def test_a_locked_database_at_start_up_is_waited_for_not_fatal() -> None:
    """SQLite answers "database is locked" at once, without its busy timeout, while another process
    cleans up or recovers the WAL files: the start-up tries again instead of failing."""
    calls, attempt = _failing(3, sqlite3.OperationalError("database is locked"))
    assert retry_while_locked(attempt, wait_seconds=5) == "done"
    assert len(calls) == 4


def test_the_wait_for_a_locked_database_ends_at_the_busy_timeout() -> None:
    calls, attempt = _failing(10_000, sqlite3.OperationalError("database is locked"))
    started = time.monotonic()
    with pytest.raises(sqlite3.OperationalError, match="locked"):
        retry_while_locked(attempt, wait_seconds=0.3)
    assert 1 < len(calls) and time.monotonic() - started < 2


def test_other_database_errors_are_not_retried() -> None:
    calls, attempt = _failing(1, sqlite3.OperationalError("no such table: t"))
    with pytest.raises(sqlite3.OperationalError, match="no such table"):
        retry_while_locked(attempt, wait_seconds=5)
    assert len(calls) == 1


def test_a_locked_error_wrapped_by_sqlalchemy_is_recognised() -> None:
    wrapped = OperationalError("BEGIN IMMEDIATE", None, sqlite3.OperationalError("database is locked"))
    assert is_locked(wrapped)
    assert not is_locked(OperationalError("SELECT 1", None, sqlite3.OperationalError("disk I/O error")))
