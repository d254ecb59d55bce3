"""Several worker processes on one database: SQLite in WAL mode with a busy timeout, or PostgreSQL.

`cds-service serve --workers 2` takes feedback and hook calls from many clients at once; every call
is answered 200, every acknowledged row is stored once, both workers wrote, and no "database is
locked" (or any error) reaches a client or the log. With CDS_TEST_DATABASE_URL set, the same runs
against PostgreSQL.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

from cds_service.store.database import Store
from tests.faults import Serve
from tests.test_app import ORDER_SIGN, sandbox_anakinra_order_sign

FEEDBACK = ORDER_SIGN + "/feedback"
FEEDBACK_THREADS = 8
FEEDBACK_PER_THREAD = 25
HOOK_THREADS = 2
HOOK_CALLS_PER_THREAD = 15


def _feedback(card: str) -> dict[str, Any]:
    return {"feedback": [{"card": card, "outcome": "overridden", "outcomeTimestamp": "2026-11-23T10:20:00Z"}]}


def test_two_workers_share_one_database_under_concurrent_feedback_and_hook_calls(
    database_url: str, tmp_path: Path
) -> None:
    sent = [f"w{t}-{i}" for t in range(FEEDBACK_THREADS) for i in range(FEEDBACK_PER_THREAD)]
    feedback_statuses: list[int] = []
    hook_answers: list[httpx.Response] = []

    def client() -> httpx.Client:
        # A new connection per request (no keep-alive), so that the kernel spreads them over both
        # workers; one client per thread, as building one per request costs more than the request.
        no_keepalive = httpx.Limits(max_keepalive_connections=0)
        return httpx.Client(base_url=server.base_url, limits=no_keepalive, timeout=30)

    def post_feedback(thread: int) -> None:
        with client() as http:
            for i in range(FEEDBACK_PER_THREAD):
                feedback_statuses.append(http.post(FEEDBACK, json=_feedback(f"w{thread}-{i}")).status_code)

    def call_hooks(_: int) -> None:
        with client() as http:
            for _ in range(HOOK_CALLS_PER_THREAD):
                hook_answers.append(http.post(ORDER_SIGN, json=sandbox_anakinra_order_sign()))

    server = Serve(database_url, tmp_path / "serve.log", workers=2)
    with server, ThreadPoolExecutor(max_workers=FEEDBACK_THREADS + HOOK_THREADS) as pool:
        jobs = [pool.submit(post_feedback, t) for t in range(FEEDBACK_THREADS)]
        jobs += [pool.submit(call_hooks, t) for t in range(HOOK_THREADS)]
        for job in jobs:
            job.result()
    log = server.log()

    assert feedback_statuses == [200] * len(sent)
    assert [r.status_code for r in hook_answers] == [200] * HOOK_THREADS * HOOK_CALLS_PER_THREAD
    issued = sorted(card["uuid"] for r in hook_answers for card in r.json()["cards"])
    assert issued, "the hook calls issued no card: the cards_issued check below would prove nothing"
    for forbidden in ("locked", "Traceback", "ERROR"):
        assert forbidden not in log, log

    store = Store(database_url)
    assert sorted(r["card_uuid"] for r in store.feedback()) == sorted(sent)  # each once, none lost
    assert sorted(r["card_uuid"] for r in store.issued_cards()) == issued
    audit = store.audit()
    assert sorted(r["endpoint"] for r in audit) == sorted(
        ["feedback"] * len(sent) + ["service"] * len(hook_answers)
    )
    assert {r["status"] for r in audit} == {200}
    assert len({r["process"] for r in audit}) == 2, "both workers wrote to the database"
    store.close()
    if make_url(database_url).get_backend_name() == "sqlite":
        # WAL is a property of the file: what the workers left is still in WAL mode.
        with contextlib.closing(sqlite3.connect(str(make_url(database_url).database))) as conn:
            assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)


def test_sqlite_connections_use_wal_a_busy_timeout_and_fsync_for_feedback(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'cds.db'}"
    store = Store(url)
    # synchronous: 2 is FULL (feedback, fsynced per commit), 1 is NORMAL (cards issued, audit).
    for engine, synchronous in ((store.engine, 2), (store.cards_engine, 1)):
        with engine.connect() as conn:
            assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
            assert conn.execute(text("PRAGMA busy_timeout")).scalar() == 30_000
            assert conn.execute(text("PRAGMA synchronous")).scalar() == synchronous
    store.close()
    # The URL's own `timeout` (seconds, as pysqlite reads it) sets the busy timeout.
    store = Store(url + "?timeout=2.5")
    with store.engine.connect() as conn:
        assert conn.execute(text("PRAGMA busy_timeout")).scalar() == 2_500
    store.close()


@pytest.mark.sqlite_only
def test_a_write_waits_for_a_lock_held_briefly_instead_of_failing(service_with: Any, tmp_path: Path) -> None:
    """What the busy timeout buys: another process holding the write lock for a moment (as a second
    worker does while it commits) delays a feedback write; it does not fail it."""
    path = tmp_path / "shared.db"
    http: httpx.Client = service_with(database_url=f"sqlite:///{path}")
    assert http.post(FEEDBACK, json=_feedback("first")).status_code == 200
    holder = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN EXCLUSIVE")
    release = threading.Timer(0.5, lambda: holder.execute("ROLLBACK"))
    started = time.monotonic()
    release.start()
    try:
        response = http.post(FEEDBACK, json=_feedback("second"))
    finally:
        release.join()
        holder.close()
    assert response.status_code == 200, response.text
    assert time.monotonic() - started >= 0.5  # it did wait for the lock
    store = Store(f"sqlite:///{path}")
    assert [r["card_uuid"] for r in store.feedback()] == ["first", "second"]
    store.close()
