"""Atomic hot reload: a changed rules directory is compiled and its test cases run aside; only a
ruleset that loads clean and passes every case replaces the one serving. Otherwise the last good
ruleset keeps serving and the errors are logged with file:line.

Triggers: the directory's source hash (source.py: the rules, their cases and the fixtures the cases
read) is polled, which works for bind mounts and Kubernetes ConfigMap symlink swaps where file events
are unreliable; SIGHUP asks for an immediate check that also tries a rejected change again. A change is
rejected once per content: fixing a case or a fixture is a new content and is tried, and files put back
as they were when the serving ruleset was loaded clear the rejection.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import signal
import time
from collections.abc import AsyncIterator
from pathlib import Path

from cds_service.cases import format_result, load_cases, run_cases
from cds_service.engine import RuleEngine
from cds_service.engine.ruleset import RuleSet, load_ruleset, ruleset_hash
from cds_service.engine.source import SourceHash
from cds_service.yamlfile import FileProblems

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class ReloadResult:
    outcome: str  # "unchanged", "reloaded", "rejected"
    hash: str  # the ruleset hash of the files read (ruleset.py): what cards would show
    errors: tuple[str, ...] = ()
    seconds: float = 0.0
    source_hash: str = ""  # the rules with their cases and fixtures (source.py): what a reload compares


@dataclasses.dataclass
class ReloadState:
    """What /healthz shows about reloads."""

    rejected_hash: str | None = None  # ruleset hash of the rejected files
    rejected_errors: tuple[str, ...] = ()
    rejected_source_hash: str | None = None
    # The source hash of the files the serving ruleset (and its passing cases) came from; None until
    # known. Files back at this content need no reload, and clear a rejection.
    serving_source_hash: str | None = None


class Reloader:
    def __init__(self, engine: RuleEngine, rules_dir: Path, release_after_seconds: float = 60.0) -> None:
        self.engine = engine
        self.release_after_seconds = release_after_seconds
        self.rules_dir = rules_dir
        self.source_hash = SourceHash(rules_dir)
        self.state = ReloadState()
        self._lock = asyncio.Lock()
        self._wake = asyncio.Event()
        self._retry = False
        # The files still hold what was loaded unless they changed since: then the first check loads them.
        if ruleset_hash(rules_dir) == engine.ruleset.hash:
            self.state.serving_source_hash = self.source_hash()

    async def check(self, retry: bool = False) -> ReloadResult:
        """Reload if the rules, their cases or their fixtures changed; never lets a failing ruleset
        serve. A change already rejected is not tried again unless `retry` (SIGHUP)."""
        async with self._lock:
            return await self._check(retry)

    async def _check(self, retry: bool) -> ReloadResult:
        started = time.perf_counter()
        source = self.source_hash()
        serving = self.engine.ruleset
        if source == self.state.serving_source_hash:
            # Unchanged, or put back as it was (an edit undone): nothing is rejected any more.
            self._clear_rejection()
            return ReloadResult("unchanged", serving.hash, source_hash=source)
        if source == self.state.rejected_source_hash and not retry:
            # Same broken content as last time: already logged, keep serving the last good ruleset.
            return ReloadResult(
                "rejected", self.state.rejected_hash or "", self.state.rejected_errors, source_hash=source
            )
        digest = ruleset_hash(self.rules_dir)
        durable = self.engine.durable
        if digest == serving.hash:
            # Only cases or fixtures changed: the serving rules are the candidate, nothing to compile.
            candidate = serving
        else:
            try:
                candidate = load_ruleset(self.rules_dir, durable)
            except FileProblems as exc:
                return self._reject(source, digest, [str(p) for p in exc.problems], started)
        try:
            cases = load_cases(self.rules_dir)
        except FileProblems as exc:
            self._release(candidate)
            return self._reject(source, digest, [str(p) for p in exc.problems], started)
        results = await run_cases(candidate, durable, cases)
        if candidate.hash != digest or self.source_hash() != source:
            # Files changed while we read them (an editor saving, a ConfigMap swap): look again later.
            self._release(candidate)
            return ReloadResult("unchanged", serving.hash, source_hash=source)
        failed = [format_result(r) for r in results if not r.passed]
        if failed:
            self._release(candidate)
            return self._reject(source, digest, failed, started)
        self.state.serving_source_hash = source
        self._clear_rejection()
        seconds = time.perf_counter() - started
        if candidate is serving:
            log.info(
                "rules cases changed and pass (%d cases); still serving sha256 %s", len(results), digest[:12]
            )
            return ReloadResult("unchanged", digest, seconds=seconds, source_hash=source)
        old = self.engine.swap(candidate)
        # Requests that began with the old ruleset finish within their fetch deadline; free it after.
        asyncio.get_running_loop().call_later(self.release_after_seconds, old.release, durable)
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
        return ReloadResult("reloaded", digest, seconds=seconds, source_hash=source)

    def _release(self, candidate: RuleSet) -> None:
        if candidate is not self.engine.ruleset:
            candidate.release(self.engine.durable)

    def _clear_rejection(self) -> None:
        self.state.rejected_hash = self.state.rejected_source_hash = None
        self.state.rejected_errors = ()

    def _reject(self, source: str, digest: str, errors: list[str], started: float) -> ReloadResult:
        self.state.rejected_hash, self.state.rejected_errors = digest, tuple(errors)
        self.state.rejected_source_hash = source
        current = self.engine.ruleset
        log.error(
            "rules in %s NOT reloaded; still serving %s %s (sha256 %s):\n%s",
            self.rules_dir,
            current.name,
            current.version,
            current.hash[:12],
            "\n".join(errors),
        )
        return ReloadResult("rejected", digest, tuple(errors), time.perf_counter() - started, source)

    def wake(self, retry: bool = False) -> None:
        """Check at once; with `retry`, try a change again even if it was rejected before."""
        self._retry = self._retry or retry
        self._wake.set()

    async def watch(self, interval_seconds: float) -> None:
        """Poll every interval (or at once when woken) until cancelled."""
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=interval_seconds)
            self._wake.clear()
            retry, self._retry = self._retry, False
            try:
                await self.check(retry)
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
            loop.add_signal_handler(hup, reloader.wake, True)
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
