"""Start-up time and sequential latency over real HTTP on 127.0.0.1.

    python bench/http_sequential.py [--requests N] [--workers W]

Starts `cds-service serve` on a free port with a throw-away SQLite file, times how long until
/healthz answers, then sends N order-sign calls one after another on one keep-alive connection and
prints p50 / p99. Prints figures; it asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
import orjson
from request_time import ROOT, SANDBOX, fixture_request


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def main(requests: int, workers: int) -> None:
    port = free_port()
    with tempfile.TemporaryDirectory() as tmp:
        env = {
            **os.environ,
            "CDS_DATABASE_URL": f"sqlite:///{tmp}/bench.db",
            "CDS_RULES_DIR": str(ROOT / "rules"),
            "CDS_LOG_LEVEL": "warning",
            # This measures the answer path; bench/auth_time.py measures what verification adds.
            "CDS_INSECURE_NO_AUTH": "1",
        }
        started = time.perf_counter()
        server = subprocess.Popen(
            [sys.executable, "-m", "cds_service", "serve", "--port", str(port), "--workers", str(workers)],
            env=env,
        )
        try:
            base = f"http://127.0.0.1:{port}"
            while True:
                try:
                    if httpx.get(base + "/healthz").status_code == 200:
                        break
                except httpx.TransportError:
                    time.sleep(0.005)
            print(
                f"start-up to first /healthz answer: {(time.perf_counter() - started) * 1000:.0f} ms "
                f"({workers} worker{'s' if workers > 1 else ''})"
            )
            bodies = {
                "sandbox capture": orjson.dumps(orjson.loads(SANDBOX.read_bytes())["body"]),
                "mas-f1 fixture prefetch": fixture_request(),
            }
            with httpx.Client(base_url=base, headers={"content-type": "application/json"}) as client:
                for name, body in bodies.items():
                    for _ in range(50):
                        client.post("/cds-services/anakinra-order-sign", content=body)
                    samples = []
                    for _ in range(requests):
                        t0 = time.perf_counter()
                        response = client.post("/cds-services/anakinra-order-sign", content=body)
                        samples.append((time.perf_counter() - t0) * 1000)
                        assert response.status_code == 200, response.text
                    samples.sort()
                    print(
                        f"{name} ({len(body) / 1024:.1f} KB): p50 {statistics.median(samples):.2f} ms  "
                        f"p99 {samples[int(len(samples) * 0.99) - 1]:.2f} ms  over {requests} requests"
                    )
        finally:
            server.terminate()
            server.wait(timeout=10)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()
    main(args.requests, args.workers)
