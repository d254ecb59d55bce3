"""The answer path's writes (token ids, audit rows, cards issued, chart data) on one thread per process,
the calls waiting at a moment committed together in one transaction.

Why one thread: SQLite takes one writer at a time. Writers on several threads of one process queue for
the lock inside SQLite, whose busy handler sleeps (1, 2, 5, 10 ms...) between tries, so under load the
service idled with work waiting. One thread never contends with itself, and taking every write queued
behind a transaction into the next one turns N commits into one.

Durability is unchanged: each caller's awaitable resolves only after the COMMIT that holds its rows
(SQLite WAL with synchronous=NORMAL, as before: a killed process loses nothing acknowledged, an OS crash
may lose the last transactions). If a shared transaction fails, each write in it is retried in a
transaction of its own, so one bad row never fails another call's write.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import dataclasses
import logging
import queue
import threading
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.exc import SQLAlchemyError

from cds_service.store.database import AuditRow, ChartSnapshot, IssuedCard, Store, StoreError

log = logging.getLogger(__name__)

# Enough to drain a full queue under saturation; small enough that one transaction stays short.
MAX_BATCH = 64


@dataclasses.dataclass
class _Job:
    write: Callable[[Connection], Any]
    done: concurrent.futures.Future[Any]


_STOP = object()


class Writer:
    """Runs store writes in submission order on its own thread, several per transaction."""

    def __init__(self, store: Store, max_batch: int = MAX_BATCH) -> None:
        self.store = store
        self.max_batch = max_batch
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="cds-writer", daemon=True)
        self._thread.start()
        # Transactions committed and writes in them, for the benchmark and the tests.
        self.transactions = 0
        self.writes = 0

    async def first_use(self, issuer: str, jti: str, expires_at: datetime) -> bool:
        """Store.first_use through the writer: True once the token id's row has committed."""
        try:
            return bool(await self._submit(lambda conn: self.store.claim_token(conn, issuer, jti, expires_at)))
        except SQLAlchemyError as exc:
            raise self.store.replay_check_failed(exc) from exc

    async def record_call(
        self, audit: AuditRow, cards: Sequence[IssuedCard] = (), charts: Sequence[ChartSnapshot] = ()
    ) -> None:
        """Store.record_call through the writer: returns once the rows have committed."""
        await self._submit(lambda conn: self.store.write_call(conn, audit, cards, charts))

    def close(self) -> None:
        """Finish every write already submitted, then stop the thread."""
        if self._thread.is_alive():
            self._queue.put(_STOP)
            self._thread.join()
            if self.writes:
                log.info(
                    "writer: %d writes in %d transactions (%.1f per commit)",
                    self.writes,
                    self.transactions,
                    self.writes / max(self.transactions, 1),
                )

    async def _submit(self, write: Callable[[Connection], Any]) -> Any:
        if not self._thread.is_alive():
            raise StoreError(f"database {self.store.safe_url}: the writer has stopped")
        done: concurrent.futures.Future[Any] = concurrent.futures.Future()
        self._queue.put(_Job(write, done))
        return await asyncio.wrap_future(done)

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is _STOP:
                return
            batch = [first]
            stop = False
            while len(batch) < self.max_batch:
                try:
                    following = self._queue.get_nowait()
                except queue.Empty:
                    break
                if following is _STOP:
                    stop = True
                    break
                batch.append(following)
            # A caller that gave up (its task was cancelled) has nothing written for it.
            live = [job for job in batch if job.done.set_running_or_notify_cancel()]
            if live:
                self._commit(live)
            if stop:
                return

    def _commit(self, jobs: list[_Job]) -> None:
        try:
            with self.store.cards_engine.begin() as conn:
                results = [job.write(conn) for job in jobs]
        except Exception:  # noqa: BLE001 - whatever it was, each write is retried alone and reports its own
            if len(jobs) == 1:
                self._alone(jobs[0])
                return
            # Rolled back as a whole: nothing of it is stored, so each write can be tried on its own.
            log.debug("a shared write transaction failed; retrying its %d writes one by one", len(jobs))
            for job in jobs:
                self._alone(job)
            return
        self.transactions += 1
        self.writes += len(jobs)
        for job, result in zip(jobs, results, strict=True):
            job.done.set_result(result)

    def _alone(self, job: _Job) -> None:
        try:
            with self.store.cards_engine.begin() as conn:
                result = job.write(conn)
        except Exception as exc:  # noqa: BLE001 - the thread must live on; the caller judges its own failure
            job.done.set_exception(exc)
            return
        self.transactions += 1
        self.writes += 1
        job.done.set_result(result)
