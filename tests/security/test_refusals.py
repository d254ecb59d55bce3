"""Refused calls are counted, not written one by one (security/refusals.py, issue 16)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx

from cds_service.security.refusals import Refusals
from cds_service.store.database import Store
from tests.security.test_http import DISCOVERY, ORDER_SIGN, auth, wait_for_refusals

T = datetime(2026, 11, 23, 8, 15, 42, 123000, tzinfo=UTC)


def test_counts_are_kept_per_minute_source_reason_and_endpoint() -> None:
    refusals = Refusals()
    for seconds in (0, 10, 17):  # the same minute
        refusals.add(T + timedelta(seconds=seconds), "10.0.0.1", "expired", "service")
    refusals.add(T + timedelta(minutes=1), "10.0.0.1", "expired", "service")
    refusals.add(T, "10.0.0.2", "expired", "service")
    refusals.add(T, "10.0.0.1", "bad-signature", "service")
    counts = {(c.minute.minute, c.source, c.reason): c.count for c in refusals.take()}
    assert counts == {
        (15, "10.0.0.1", "expired"): 3,
        (16, "10.0.0.1", "expired"): 1,
        (15, "10.0.0.2", "expired"): 1,
        (15, "10.0.0.1", "bad-signature"): 1,
    }
    assert refusals.take() == []


def test_many_sources_cost_bounded_memory() -> None:
    refusals = Refusals(max_keys=100)
    for n in range(5000):
        refusals.add(T, f"2001:db8::{n:x}", "missing-token", "discovery")
    assert len(refusals) == 101  # 100 sources, and "other" for the rest
    counts = {c.source: c.count for c in refusals.take()}
    assert counts["other"] == 4900 and sum(counts.values()) == 5000


def test_writes_add_to_what_is_stored(database_url: str) -> None:
    store = Store(database_url)
    for _ in range(2):  # two workers writing the same minute's counts
        refusals = Refusals()
        refusals.add(T, "10.0.0.1", "expired", "service", count=7)
        store.record_refusals(refusals.take())
    (row,) = store.refusals()
    assert (row["source"], row["reason"], row["count"]) == ("10.0.0.1", "expired", 14)


def test_a_flood_of_refused_calls_writes_a_row_per_minute_not_per_call(
    secured: httpx.Client, database_url: str
) -> None:
    for n in range(300):
        assert secured.get(DISCOVERY, headers=auth(f"not-a-token-{n}")).status_code == 401
        assert secured.post(ORDER_SIGN, json={}).status_code == 401
    rows = wait_for_refusals(database_url, 600)
    assert sum(row["count"] for row in rows) == 600
    assert len(rows) <= 2 * 2  # (discovery, malformed) and (service, missing), over at most two minutes
    assert Store(database_url).audit() == []  # and no full row for any of them
