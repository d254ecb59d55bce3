"""Workload W1 over HTTP with 2 workers on 127.0.0.1, next to an empty FastAPI app in the same run.

    python bench/http_load.py [--seconds 10] [--rates 100,300] [--memory-requests 100000]

Prints figures; it asserts nothing. For each server (`cds-service serve --workers 2`, authentication off:
bench/auth_time.py measures what verification adds; and bench/empty_app.py, orjson parse + a constant):
  sequential   one keep-alive connection, one request after another: p50 / p99, and p50 as a ratio to
               `orjson.loads` of the same body measured in this process
  fixed rate   open loop at each rate for --seconds: a request is due every 1/rate s whether or not the
               last has answered, and its latency runs from when it was due (no coordinated omission)
  saturation   wrk (Debian package `wrk`; 2 threads, 16 connections, --seconds) requests/s; the
               service's figure as a ratio to the empty app's
  memory       resident memory of the service's workers before and after --memory-requests more
               requests (wrk at saturation), read from /proc
The load generator shares the machine's CPUs with the servers, the same for both, so the ratios hold.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import httpx
import orjson
from timing import free_port, timed
from w1 import w1_body

ROOT = Path(__file__).resolve().parent.parent
PATH = "/cds-services/anakinra-order-sign"


@contextmanager
def serving(command: list[str], env: dict[str, str]) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    port = free_port()
    server = subprocess.Popen([*command, "--port", str(port)], env=env, cwd=ROOT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(base + "/healthz").status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.05)
        else:
            raise RuntimeError(f"{command[0]} did not start")
        yield base, server
    finally:
        server.terminate()
        server.wait(timeout=30)


def sequential(base: str, body: bytes, requests: int) -> list[float]:
    with httpx.Client(base_url=base, headers={"content-type": "application/json"}) as client:
        for _ in range(50):
            client.post(PATH, content=body)
        samples = []
        for _ in range(requests):
            started = time.perf_counter()
            response = client.post(PATH, content=body)
            samples.append((time.perf_counter() - started) * 1000)
            if response.status_code != 200:
                raise RuntimeError(f"{response.status_code}: {response.text[:300]}")
    return samples


async def fixed_rate(base: str, body: bytes, rate: float, seconds: float) -> tuple[list[float], int]:
    limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=30) as client:
        latencies: list[float] = []
        errors = 0

        async def one(due: float) -> None:
            nonlocal errors
            try:
                response = await client.post(PATH, content=body, headers={"content-type": "application/json"})
                errors += response.status_code != 200
            except httpx.HTTPError:
                # Past saturation the queue outgrows the client's timeout: count it, keep the latency.
                errors += 1
            latencies.append((time.perf_counter() - due) * 1000)

        start = time.perf_counter() + 0.2
        tasks = []
        for n in range(int(rate * seconds)):
            due = start + n / rate
            await asyncio.sleep(max(0.0, due - time.perf_counter()))
            tasks.append(asyncio.create_task(one(due)))
        await asyncio.gather(*tasks)
    return latencies, errors


def wrk(base: str, body_file: Path, seconds: float) -> float:
    result = subprocess.run(
        ["wrk", "-t2", "-c16", f"-d{seconds:.0f}s", "-s", str(ROOT / "bench" / "post.lua"), base + PATH],
        env={**os.environ, "W1_BODY": str(body_file)},
        capture_output=True,
        text=True,
        check=True,
    )
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", result.stdout)
    if non_2xx:
        raise RuntimeError(f"{non_2xx.group(1)} failed responses:\n{result.stdout}")
    match = re.search(r"Requests/sec:\s+([\d.]+)", result.stdout)
    assert match, result.stdout
    return float(match.group(1))


def worker_rss_mb(server: subprocess.Popen[bytes]) -> list[float]:
    children = Path(f"/proc/{server.pid}/task/{server.pid}/children").read_text().split()
    sizes = []
    for pid in children:
        status = Path(f"/proc/{pid}/status").read_text()
        match = re.search(r"VmRSS:\s+(\d+) kB", status)
        if match:
            sizes.append(int(match.group(1)) / 1024)
    return sizes


def percentiles(samples: list[float]) -> str:
    ordered = sorted(samples)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return f"p50 {statistics.median(ordered):6.2f} ms  p99 {p99:6.2f} ms"


def main(seconds: float, rates: list[float], memory_requests: int) -> None:
    # The service reads "now" from its clock, so the body's results are placed relative to it.
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    body = w1_body(now)
    floor = statistics.median(timed(lambda: orjson.loads(body), 2000)) / 1000
    print(f"W1: {len(body):,} bytes; orjson.loads floor p50 {floor:.3f} ms (this process)")
    with tempfile.TemporaryDirectory() as tmp:
        body_file = Path(tmp) / "w1.json"
        body_file.write_bytes(body)
        env = {
            **os.environ,
            "CDS_DATABASE_URL": f"sqlite:///{tmp}/bench.db",
            "CDS_RULES_DIR": str(ROOT / "rules"),
            "CDS_LOG_LEVEL": "warning",
            "CDS_RELOAD_INTERVAL_SECONDS": "0",
            "CDS_INSECURE_NO_AUTH": "1",
        }
        uvicorn = [
            sys.executable,
            "-m",
            "uvicorn",
            "--app-dir",
            "bench",
            "empty_app:app",
            "--workers",
            "2",
            "--loop",
            "uvloop",
            "--http",
            "httptools",
            "--log-level",
            "warning",
        ]
        service = [sys.executable, "-m", "cds_service", "serve", "--workers", "2"]
        throughput: dict[str, float] = {}
        for name, command in (("empty FastAPI app", uvicorn), ("cds-service", service)):
            with serving(command, env) as (base, server):
                seq = sequential(base, body, 1000)
                print(f"\n{name}, 2 workers")
                print(
                    f"  sequential      {percentiles(seq)}   p50 = {statistics.median(seq) / floor:.1f}x floor"
                )
                if name == "cds-service":
                    for rate in rates:
                        latencies, errors = asyncio.run(fixed_rate(base, body, rate, seconds))
                        print(
                            f"  {rate:4.0f} req/s      {percentiles(latencies)}   ({len(latencies)} requests, {errors} errors)"
                        )
                if shutil.which("wrk") is None:
                    print("  saturation      wrk not installed (apt-get install wrk); skipped")
                    continue
                throughput[name] = wrk(base, body_file, seconds)
                print(f"  saturation      {throughput[name]:8.0f} req/s (wrk -t2 -c16)")
                if name == "cds-service" and memory_requests:
                    before = worker_rss_mb(server)
                    wrk(base, body_file, memory_requests / throughput[name])
                    after = worker_rss_mb(server)
                    print(
                        f"  memory          workers {', '.join(f'{m:.0f}' for m in before)} MB -> "
                        f"{', '.join(f'{m:.0f}' for m in after)} MB after ~{memory_requests:,} more requests"
                    )
        if len(throughput) == 2:
            ratio = throughput["cds-service"] / throughput["empty FastAPI app"]
            print(f"\nsaturation throughput: cds-service / empty app = {ratio:.2f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--rates", default="100,300", help="fixed request rates, comma-separated")
    parser.add_argument("--memory-requests", type=int, default=100_000)
    args = parser.parse_args()
    main(args.seconds, [float(r) for r in args.rates.split(",")], args.memory_requests)
