"""The writer: one thread, calls waiting at once committed together, each caller told its own outcome."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import Connection, event

from cds_service.store.database import AuditRow, IssuedCard, Store, StoreError
from cds_service.store.writer import Writer

AT = datetime(2026, 11, 23, 8, tzinfo=UTC)
EXPIRES = datetime(2026, 11, 23, 12, 5, tzinfo=UTC)


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    store = Store(database_url)
    yield store
    store.close()


def _audit(hook_instance: str) -> AuditRow:
    return AuditRow(at=AT, endpoint="service", latency_ms=1.0, status=200, hook_instance=hook_instance)


def _card(uuid: str, hook_instance: str) -> IssuedCard:
    return IssuedCard(uuid, "svc", "max-dose", "1.0.0", "warning", "p-1", hook_instance, AT)


def _commits(store: Store) -> list[int]:
    """Counts the COMMITs the writer's engine sends."""
    seen = [0]

    @event.listens_for(store.cards_engine, "commit")
    def _count(_conn: Connection) -> None:
        seen[0] += 1

    return seen


async def test_a_token_id_is_claimed_once_through_the_writer(store: Store) -> None:
    writer = Writer(store)
    try:
        assert await writer.first_use("https://ehr.example", "jti-1", EXPIRES)
        assert not await writer.first_use("https://ehr.example", "jti-1", EXPIRES)
        assert await writer.first_use("https://other.example", "jti-1", EXPIRES)
        # The claim is the store's, so another process (another writer) sees it too.
        assert not store.first_use("https://ehr.example", "jti-1", EXPIRES)
    finally:
        writer.close()


async def test_calls_waiting_together_are_committed_in_one_transaction(store: Store) -> None:
    writer = Writer(store)
    commits = _commits(store)
    # Hold the writer inside its first transaction so that the next twenty calls queue behind it.
    inside, release = threading.Event(), threading.Event()

    def blocking(conn: Connection) -> None:
        inside.set()
        release.wait(10)

    try:
        first = asyncio.ensure_future(writer._submit(blocking))
        await asyncio.to_thread(inside.wait, 10)
        calls = [
            asyncio.ensure_future(writer.record_call(_audit(f"h-{i}"), [_card(f"c-{i}", f"h-{i}")]))
            for i in range(20)
        ]
        claims = [asyncio.ensure_future(writer.first_use("https://ehr.example", "jti-9", EXPIRES)) for _ in range(2)]
        await asyncio.sleep(0.05)
        release.set()
        await first
        await asyncio.gather(*calls)
        # Two claims of one token id in one transaction: exactly one wins.
        assert sorted(await asyncio.gather(*claims)) == [False, True]
    finally:
        writer.close()
    assert commits[0] == 2  # the held one, then all 22 queued writes together
    assert writer.transactions == 2 and writer.writes == 23
    assert len(store.audit()) == 20
    assert len(store.issued_cards()) == 20


async def test_a_failing_write_fails_only_its_own_call(store: Store) -> None:
    writer = Writer(store)
    inside, release = threading.Event(), threading.Event()

    def blocking(conn: Connection) -> None:
        inside.set()
        release.wait(10)

    try:
        first = asyncio.ensure_future(writer._submit(blocking))
        await asyncio.to_thread(inside.wait, 10)
        good = asyncio.ensure_future(writer.record_call(_audit("h-good"), [_card("c-good", "h-good")]))
        # The same card uuid twice breaks the primary key: that call's whole write is refused...
        bad = asyncio.ensure_future(
            writer.record_call(_audit("h-bad"), [_card("c-dup", "h-bad"), _card("c-dup", "h-bad")])
        )
        also_good = asyncio.ensure_future(writer.first_use("https://ehr.example", "jti-2", EXPIRES))
        await asyncio.sleep(0.05)
        release.set()
        await first
        await good
        with pytest.raises(Exception, match="(?i)unique|duplicate"):
            await bad
        assert await also_good
    finally:
        writer.close()
    # ...and the calls that shared its transaction are stored all the same.
    assert [row["hook_instance"] for row in store.audit()] == ["h-good"]
    assert [row["card_uuid"] for row in store.issued_cards()] == ["c-good"]
    assert not store.first_use("https://ehr.example", "jti-2", EXPIRES)


async def test_a_database_that_cannot_check_a_token_is_a_store_error(store: Store) -> None:
    writer = Writer(store)

    def broken(*_args: Any) -> bool:
        from sqlalchemy.exc import OperationalError

        raise OperationalError("INSERT", {}, Exception("disk I/O error"))

    store.claim_token = broken  # type: ignore[method-assign]
    try:
        with pytest.raises(StoreError, match="could not be checked for replay"):
            await writer.first_use("https://ehr.example", "jti-3", EXPIRES)
        # The thread lives on for the next call.
        await writer.record_call(_audit("h-after"))
    finally:
        writer.close()
    assert [row["hook_instance"] for row in store.audit()] == ["h-after"]


async def test_close_finishes_what_was_submitted_and_later_calls_are_refused(store: Store) -> None:
    writer = Writer(store)
    pending = [asyncio.ensure_future(writer.record_call(_audit(f"h-{i}"))) for i in range(5)]
    await asyncio.sleep(0)
    await asyncio.to_thread(writer.close)
    await asyncio.gather(*pending)
    assert len(store.audit()) == 5
    with pytest.raises(StoreError, match="writer has stopped"):
        await writer.record_call(_audit("h-late"))
