"""Shared by the benchmark scripts: timing loops, percentiles, a free port."""

from __future__ import annotations

import socket
import statistics
import time
from collections.abc import Awaitable, Callable


def timed(fn: Callable[[], object], iterations: int) -> list[float]:
    """Microseconds per call."""
    samples = []
    for _ in range(iterations):
        started = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - started) * 1e6)
    return samples


async def timed_async(fn: Callable[[], Awaitable[object]], iterations: int) -> list[float]:
    samples = []
    for _ in range(iterations):
        started = time.perf_counter()
        await fn()
        samples.append((time.perf_counter() - started) * 1e6)
    return samples


def summary(samples: list[float]) -> str:
    ordered = sorted(samples)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return f"p50 {statistics.median(ordered):8.1f} µs   p99 {p99:8.1f} µs"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
