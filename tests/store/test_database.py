"""The store: start-up errors that name the database without its password, and the health ping."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import create_engine

from cds_service.store.database import Store, StoreError


def test_an_unreachable_database_is_a_store_error_without_the_password() -> None:
    with pytest.raises(StoreError) as error:
        Store("postgresql+psycopg://clinic:s3cret@127.0.0.1:9/cds")
    assert "clinic:***@127.0.0.1:9/cds" in str(error.value)
    assert "s3cret" not in str(error.value)


def test_an_unknown_dialect_is_a_store_error() -> None:
    with pytest.raises(StoreError, match="nonsense"):
        Store("nonsense://x")


def test_ping_reports_a_database_that_went_away(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'ping.db'}")
    assert store.ping()
    store.engine = create_engine(
        "postgresql+psycopg://u@127.0.0.1:9/gone", connect_args={"connect_timeout": 1}
    )
    assert not store.ping()
