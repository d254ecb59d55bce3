"""Refused calls, counted instead of written one by one.

A call refused before its caller is known costs the caller nothing, so one audit row each would let any
client fill the database (about 1.2 GB an hour from one client). Refusals are counted in memory per
minute, source address, reason and endpoint, and written every few seconds as one row per such key,
added to what other workers wrote for the same key. Authenticated calls keep their full audit rows.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime

from cds_service.store.limits import clip
from cds_service.store.schema import refused_calls

# Distinct keys held between two writes; past it, new sources are counted as "other". A flood from
# many addresses then costs bounded memory and bounded rows.
MAX_KEYS = 10_000


@dataclasses.dataclass(frozen=True)
class RefusalCount:
    minute: datetime
    source: str
    reason: str
    endpoint: str
    count: int


class Refusals:
    def __init__(self, max_keys: int = MAX_KEYS) -> None:
        self.max_keys = max_keys
        self._counts: dict[tuple[datetime, str, str, str], int] = {}

    def add(self, at: datetime, source: str | None, reason: str, endpoint: str, count: int = 1) -> None:
        minute = at.replace(second=0, microsecond=0)
        # Clipped to their columns here, so that a key counts what its row will hold (store/limits.py).
        key = (
            minute,
            clip(refused_calls.c.source, source or "unknown") or "unknown",
            clip(refused_calls.c.reason, reason) or "",
            endpoint,
        )
        if key not in self._counts and len(self._counts) >= self.max_keys:
            key = (minute, "other", key[2], endpoint)
        self._counts[key] = self._counts.get(key, 0) + count

    def take(self) -> list[RefusalCount]:
        """Everything counted since the last take, to be written."""
        counts, self._counts = self._counts, {}
        return [RefusalCount(*key, count) for key, count in counts.items()]

    def give_back(self, rows: list[RefusalCount]) -> None:
        """Counts a write failed to store, kept for the next one."""
        for row in rows:
            self.add(row.minute, row.source, row.reason, row.endpoint, row.count)

    def __len__(self) -> int:
        return len(self._counts)
