"""PostgreSQL timeouts (store/postgres.py): defaults that the URL can override, and that bind."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

from cds_service.store.database import Store, StoreError
from cds_service.store.postgres import connect_args

DEFAULTS = "-c statement_timeout=30s -c lock_timeout=10s"


def _args(url: str) -> dict[str, str]:
    return connect_args(make_url(url))


def test_defaults_apply_to_a_url_that_sets_no_timeout() -> None:
    assert _args("postgresql+psycopg://u@db.example/cds") == {
        "connect_timeout": "5",
        "tcp_user_timeout": "10000",
        "options": DEFAULTS,
    }


def test_the_url_overrides_each_default_and_keeps_its_own_options() -> None:
    args = _args(
        "postgresql+psycopg://u@db/cds?connect_timeout=2&tcp_user_timeout=3000"
        "&options=-c%20search_path%3Dcds%20-c%20statement_timeout%3D2s"
    )
    assert args == {"options": "-c search_path=cds -c statement_timeout=2s -c lock_timeout=10s"}
    # libpq's other spellings of a server setting count as setting it.
    assert _args("postgresql+psycopg://u@db/cds?options=--lock_timeout%3D1s%20-cstatement_timeout%3D5s") == {
        "connect_timeout": "5",
        "tcp_user_timeout": "10000",
    }


def test_drivers_without_libpq_parameters_and_sqlite_get_none() -> None:
    assert _args("postgresql+pg8000://u@db/cds") == {}
    assert _args("sqlite:///cds.db") == {}
    assert set(_args("postgresql://u@db/cds")) == {"connect_timeout", "tcp_user_timeout", "options"}


@pytest.fixture
def silent_server() -> Iterator[int]:
    """A port that accepts TCP connections and never says a word, like a wedged database host."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    yield listener.getsockname()[1]
    listener.close()


def test_a_server_that_never_answers_fails_the_start_instead_of_hanging(silent_server: int) -> None:
    outcome: list[BaseException | None] = []

    def start() -> None:
        try:
            Store(f"postgresql+psycopg://clinic:s3cret@127.0.0.1:{silent_server}/cds?connect_timeout=2")
        except BaseException as exc:  # noqa: BLE001 - handed to the test thread
            outcome.append(exc)
        else:
            outcome.append(None)

    thread = threading.Thread(target=start, daemon=True)
    thread.start()
    # Not a speed check: without connect_timeout libpq waits for ever, and this join would give up.
    thread.join(60)
    assert outcome, "Store() still waiting for a server that never answers"
    (error,) = outcome
    assert isinstance(error, StoreError)
    assert "timeout" in str(error).lower() and "s3cret" not in str(error)


def _show(store: Store, *names: str) -> list[str]:
    with store.engine.connect() as conn:
        return [conn.execute(text(f"SHOW {name}")).scalar_one() for name in names]


@pytest.mark.postgresql_only
def test_the_defaults_reach_the_server_and_the_url_wins(database_url: str) -> None:
    store = Store(database_url)
    assert _show(store, "statement_timeout", "lock_timeout") == ["30s", "10s"]
    with store.engine.connect() as conn:
        parameters = conn.connection.dbapi_connection.info.get_parameters()  # type: ignore[union-attr]
    assert (parameters["connect_timeout"], parameters["tcp_user_timeout"]) == ("5", "10000")
    store.close()
    url = make_url(database_url).update_query_dict({"options": "-c statement_timeout=2s"})
    store = Store(url.render_as_string(hide_password=False))
    assert _show(store, "statement_timeout", "lock_timeout") == ["2s", "10s"]
    store.close()


@pytest.mark.postgresql_only
def test_a_statement_over_the_timeout_is_cancelled(database_url: str) -> None:
    url = make_url(database_url).update_query_dict({"options": "-c statement_timeout=200ms"})
    store = Store(url.render_as_string(hide_password=False))
    with store.engine.connect() as conn, pytest.raises(OperationalError, match="statement timeout"):
        conn.execute(text("SELECT pg_sleep(5)"))
    store.close()
