"""The store: start-up errors without the password, the health ping, token ids, the audit trail."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import create_engine

from cds_service.store.database import AuditRow, FeedbackRow, IssuedCard, Store, StoreError


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


def test_a_token_id_is_accepted_once_per_issuer_until_purged(database_url: str) -> None:
    store = Store(database_url)
    expires = datetime(2026, 11, 23, 12, 5, tzinfo=UTC)
    assert store.first_use("https://ehr.example", "jti-1", expires)
    assert not store.first_use("https://ehr.example", "jti-1", expires)
    assert store.first_use("https://other.example", "jti-1", expires)  # ids are per issuer
    assert store.purge(now=expires - timedelta(seconds=1), audit_before=None) == (0, 0)
    assert not store.first_use("https://ehr.example", "jti-1", expires)
    assert store.purge(now=expires + timedelta(seconds=1), audit_before=None) == (2, 0)
    assert store.first_use("https://ehr.example", "jti-1", expires)
    store.close()


def test_audit_rows_are_written_with_the_cards_and_filtered(database_url: str) -> None:
    store = Store(database_url)
    base = datetime(2026, 11, 23, 8, tzinfo=UTC)
    card = IssuedCard("c-1", "svc", "max-dose", "1.0.0", "warning", "p-1", "h-1", base)
    store.record_call(
        AuditRow(
            at=base,
            endpoint="service",
            latency_ms=1.5,
            status=200,
            service_id="svc",
            hook_instance="h-1",
            issuer="https://ehr.example",
            tenant="t",
            patient_id="p-1",
            rules=[{"id": "max-dose", "version": "1.0.0", "status": "fired"}],
            card_uuids=["c-1"],
        ),
        [card],
    )
    store.record_call(
        AuditRow(
            at=base + timedelta(hours=1), endpoint="discovery", latency_ms=0.2, status=401, reason="expired"
        )
    )
    assert [r["card_uuid"] for r in store.issued_cards("h-1")] == ["c-1"]
    (row,) = store.audit(patient_id="p-1")
    assert (row["rules"], row["card_uuids"], row["tenant"]) == (
        [{"id": "max-dose", "version": "1.0.0", "status": "fired"}],
        ["c-1"],
        "t",
    )
    assert [r["status"] for r in store.audit(since=base + timedelta(minutes=30))] == [401]
    assert [r["endpoint"] for r in store.audit(hook_instance="h-1")] == ["service"]
    assert store.purge(now=base, audit_before=base + timedelta(minutes=1)) == (0, 1)
    assert [r["status"] for r in store.audit()] == [401]
    store.close()


def test_record_feedback_counts_only_new_rows(database_url: str) -> None:
    store = Store(database_url)
    at = datetime(2026, 11, 23, 8, tzinfo=UTC)
    rows = [
        FeedbackRow("svc", f"card-{i}", "overridden", "2026-11-23T08:00:00Z", None, "x", None, "X", None, at)
        for i in range(3)
    ]
    assert store.record_feedback(rows) == 3
    assert store.record_feedback(rows[:2]) == 0  # a client's retry
    assert len(store.feedback()) == 3
    store.close()


@pytest.mark.sqlite_only
def test_heartbeat_is_a_write_and_fails_fast_when_writes_are_blocked(database_url: str) -> None:
    import sqlite3
    import time as clock

    from sqlalchemy.engine import make_url

    store = Store(database_url)
    now = datetime(2026, 11, 23, 8, tzinfo=UTC)
    assert store.heartbeat(now, 123)
    assert store.heartbeat(now, 456)  # the same row, rewritten
    # Another process holds the write lock: reads still work, writes do not.
    holder = sqlite3.connect(make_url(database_url).database, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        started = clock.monotonic()
        assert not store.heartbeat(now, 789)
        assert clock.monotonic() - started < 5  # its own 1 s lock wait, not the 30 s of other writes
        assert store.ping()
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert store.heartbeat(now, 789)
    store.close()


@pytest.mark.sqlite_only
def test_a_new_sqlite_file_is_readable_by_its_owner_only(tmp_path: Path) -> None:
    import os
    import stat

    before = os.umask(0o022)  # the usual umask, which would give 0644
    try:
        store = Store(f"sqlite:///{tmp_path / 'new' / 'cds.db'}")
        store.heartbeat(datetime(2026, 11, 23, tzinfo=UTC), 1)  # a write: the WAL and shared-memory files
    finally:
        os.umask(before)
    for name in ("cds.db", "cds.db-wal", "cds.db-shm"):
        mode = stat.S_IMODE((tmp_path / "new" / name).stat().st_mode)
        assert mode == 0o600, (name, oct(mode))
    assert stat.S_IMODE((tmp_path / "new").stat().st_mode) == 0o700
    store.close()


def test_feedback_and_issued_cards_are_purged_after_their_retention(database_url: str) -> None:
    store = Store(database_url)
    old, new = datetime(2025, 1, 1, tzinfo=UTC), datetime(2026, 11, 1, tzinfo=UTC)
    cards = [IssuedCard(f"c-{at.year}", "svc", "r", "1", "info", "p", "h", at) for at in (old, new)]
    store.record_call(AuditRow(at=new, endpoint="service", latency_ms=1, status=200), cards)
    store.record_feedback(
        [
            FeedbackRow("svc", f"c-{at.year}", "overridden", at.isoformat(), None, None, None, None, None, at)
            for at in (old, new)
        ]
    )
    store.purge(now=new, audit_before=None, feedback_before=new - timedelta(days=365))
    assert [r["card_uuid"] for r in store.feedback()] == ["c-2026"]
    assert [r["card_uuid"] for r in store.issued_cards()] == ["c-2026"]
    store.close()


@pytest.mark.sqlite_only
def test_a_database_made_by_an_older_version_gains_the_new_columns(tmp_path: Path) -> None:
    import sqlite3

    path = tmp_path / "old.db"
    old = sqlite3.connect(path)
    # cards_issued and feedback as the previous version created them.
    old.executescript(
        """
        CREATE TABLE cards_issued (card_uuid VARCHAR(64) PRIMARY KEY, service_id VARCHAR(64) NOT NULL,
          rule_id VARCHAR(128) NOT NULL, rule_version VARCHAR(64) NOT NULL, indicator VARCHAR(16) NOT NULL,
          patient_id VARCHAR(128), hook_instance VARCHAR(64) NOT NULL, issued_at DATETIME NOT NULL);
        CREATE TABLE feedback (id INTEGER PRIMARY KEY, service_id VARCHAR(64) NOT NULL,
          card_uuid VARCHAR(64) NOT NULL, outcome VARCHAR(16) NOT NULL, outcome_timestamp VARCHAR(64) NOT NULL,
          accepted_suggestions JSON, override_code VARCHAR(128), override_system VARCHAR(256),
          override_display VARCHAR(256), user_comment TEXT, received_at DATETIME NOT NULL,
          CONSTRAINT uq_feedback_once UNIQUE (card_uuid, outcome, outcome_timestamp));
        INSERT INTO cards_issued VALUES ('c-old', 'svc', 'r', '1', 'info', 'p', 'h', '2026-11-01 00:00:00');
        """
    )
    old.commit()
    old.close()
    store = Store(f"sqlite:///{path}")
    card = IssuedCard(
        "c-new", "svc", "r", "1", "info", "p", "h", datetime(2026, 11, 2, tzinfo=UTC), "iss", [["s", "c"]]
    )
    store.record_cards([card])
    owners = store.card_owners(["c-old", "c-new"])
    assert owners["c-old"].issuer is None and owners["c-new"].issuer == "iss"
    assert owners["c-new"].override_reasons == frozenset({("s", "c")})
    store.close()
