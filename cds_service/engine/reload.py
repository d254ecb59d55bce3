"""Atomic hot reload: a changed rules directory is compiled and its test cases run aside; only a
ruleset that loads clean and passes every case replaces the one serving. Otherwise the last good
ruleset keeps serving and the errors are logged with file:line.

Triggers: the directory's content hash is polled (works for bind mounts and Kubernetes ConfigMap
symlink swaps, where file events are unreliable) and SIGHUP asks for an immediate check.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import signal
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

from cds_service.engine import RuleEngine
from cds_service.engine.cases import format_result, load_cases, run_cases
from cds_service.engine.ruleset import load_ruleset, ruleset_hash
from cds_service.yamlfile import FileProblems

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class ReloadResult:
    outcome: str  # "unchanged", "reloaded", "rejected"
    hash: str
    errors: tuple[str, ...] = ()
    seconds: float = 0.0


@dataclasses.dataclass
class ReloadState:
    """What /healthz shows about reloads."""

    last_checked: datetime | None = None
    last_reloaded: datetime | None = None
    rejected_hash: str | None = None
    rejected_errors: tuple[str, ...] = ()


class Reloader:
    def __init__(self, engine: RuleEngine, rules_dir: Path, release_after_seconds: float = 60.0) -> None:
        self.engine = engine
        self.release_after_seconds = release_after_seconds
        self.rules_dir = rules_dir
        self.state = ReloadState()
        self._lock = asyncio.Lock()
        self._wake = asyncio.Event()

    async def check(self) -> ReloadResult:
        """Reload if the directory changed; never lets a failing ruleset serve."""
        async with self._lock:
            return await self._check()

    async def _check(self) -> ReloadResult:
        started = time.perf_counter()
        self.state.last_checked = datetime.now(UTC)
        digest = ruleset_hash(self.rules_dir)
        if digest == self.engine.ruleset.hash:
            return ReloadResult("unchanged", digest)
        if digest == self.state.rejected_hash:
            # Same broken content as last time: already logged, keep serving the last good ruleset.
            return ReloadResult("rejected", digest, self.state.rejected_errors)
        durable = self.engine.durable
        try:
            candidate = load_ruleset(self.rules_dir, durable)
        except FileProblems as exc:
            return self._reject(digest, [str(p) for p in exc.problems], started)
        if candidate.hash != digest:
            # Files changed while we read them (an editor saving, a ConfigMap swap): look again later.
            candidate.release(durable)
            return ReloadResult("unchanged", self.engine.ruleset.hash)
        try:
            cases = load_cases(self.rules_dir)
        except FileProblems as exc:
            candidate.release(durable)
            return self._reject(digest, [str(p) for p in exc.problems], started)
        results = await run_cases(candidate, durable, cases)
        failed = [format_result(r) for r in results if not r.passed]
        if failed:
            candidate.release(durable)
            return self._reject(digest, failed, started)
        old = self.engine.swap(candidate)
        # Requests that began with the old ruleset finish within their fetch deadline; free it after.
        asyncio.get_running_loop().call_later(self.release_after_seconds, old.release, durable)
        self.state.last_reloaded = datetime.now(UTC)
        self.state.rejected_hash, self.state.rejected_errors = None, ()
        seconds = time.perf_counter() - started
        log.info(
            "rules reloaded: %s %s (sha256 %s, was %s %s); %d cases passed in %.0f ms",
            candidate.name,
            candidate.version,
            candidate.hash[:12],
            old.version,
            old.hash[:12],
            len(results),
            seconds * 1000,
        )
        return ReloadResult("reloaded", digest, seconds=seconds)

    def _reject(self, digest: str, errors: list[str], started: float) -> ReloadResult:
        self.state.rejected_hash, self.state.rejected_errors = digest, tuple(errors)
        current = self.engine.ruleset
        log.error(
            "rules in %s NOT reloaded; still serving %s %s (sha256 %s):\n%s",
            self.rules_dir,
            current.name,
            current.version,
            current.hash[:12],
            "\n".join(errors),
        )
        return ReloadResult("rejected", digest, tuple(errors), time.perf_counter() - started)

    def wake(self) -> None:
        self._wake.set()

    async def watch(self, interval_seconds: float) -> None:
        """Poll every interval (or at once when woken) until cancelled."""
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=interval_seconds)
            self._wake.clear()
            try:
                await self.check()
            except Exception:  # a reload must never take the serving ruleset down with it
                log.exception("rule reload check failed; still serving the last good ruleset")


@contextlib.asynccontextmanager
async def watching(reloader: Reloader, interval_seconds: float) -> AsyncIterator[None]:
    """Run the watcher (and a SIGHUP handler, where the platform has one) for the app's lifetime."""
    if interval_seconds <= 0:
        yield
        return
    loop = asyncio.get_running_loop()
    hup = getattr(signal, "SIGHUP", None)
    installed = False
    if hup is not None:
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(hup, reloader.wake)
            installed = True
    task = asyncio.create_task(reloader.watch(interval_seconds), name="rules-reload")
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        if installed and hup is not None:
            loop.remove_signal_handler(hup)
