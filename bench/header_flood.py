"""What one oversized Authorization header costs everyone else (issue 16).

    python bench/header_flood.py [--megabytes 40]

Starts `cds-service serve` with authentication on (a throw-away trust file and SQLite file), sends one
request whose Authorization header is N MB, and meanwhile asks /healthz every 20 ms on another
connection. Prints the flood's answer, when it came, and the slowest /healthz answer during the flood.
Prints figures; it asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def flood(port: int, megabytes: int, result: dict[str, object]) -> None:
    started = time.perf_counter()
    sock = socket.create_connection(("127.0.0.1", port), timeout=60)
    sent = 0
    try:
        sock.sendall(b"GET /cds-services HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ")
        piece = b"e" * (1024 * 1024)
        for _ in range(megabytes):
            sock.sendall(piece)
            sent += len(piece)
        sock.sendall(b"\r\n\r\n")
    except OSError as exc:
        result["send_error"] = type(exc).__name__
    result["sent_mb"] = sent / 1024 / 1024
    try:
        answer = sock.recv(200)
        result["status"] = answer.split(b" ", 2)[1].decode() if answer else "closed"
    except OSError as exc:
        result["status"] = type(exc).__name__
    result["answer_ms"] = (time.perf_counter() - started) * 1000
    sock.close()


def main(megabytes: int) -> None:
    port = free_port()
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "jwks.json").write_text(json.dumps({"keys": []}))
        (Path(tmp) / "trust.json").write_text(
            json.dumps([{"iss": "https://bench.example", "jwks_file": "jwks.json"}])
        )
        env = {
            **os.environ,
            "CDS_DATABASE_URL": f"sqlite:///{tmp}/bench.db",
            "CDS_RULES_DIR": str(ROOT / "rules"),
            "CDS_LOG_LEVEL": "error",
            "CDS_TRUST_FILE": f"{tmp}/trust.json",
            "CDS_PUBLIC_URL": f"http://127.0.0.1:{port}",
        }
        server = subprocess.Popen(
            [sys.executable, "-m", "cds_service", "serve", "--port", str(port)], env=env
        )
        try:
            base = f"http://127.0.0.1:{port}"
            while True:
                try:
                    if httpx.get(base + "/healthz").status_code == 200:
                        break
                except httpx.TransportError:
                    time.sleep(0.01)
            result: dict[str, object] = {}
            sender = threading.Thread(target=flood, args=(port, megabytes, result))
            slowest = 0.0
            with httpx.Client(base_url=base, timeout=60) as client:
                sender.start()
                while True:  # at least once, however quick the refusal
                    started = time.perf_counter()
                    client.get("/healthz")
                    slowest = max(slowest, time.perf_counter() - started)
                    if not sender.is_alive():
                        break
                    time.sleep(0.02)
            print(
                f"{megabytes} MB Authorization header: answer {result.get('status')} after "
                f"{result['answer_ms']:.0f} ms, {result['sent_mb']:.1f} MB sent"
                f"{' (' + str(result['send_error']) + ')' if 'send_error' in result else ''}; "
                f"slowest /healthz meanwhile {slowest * 1000:.0f} ms"
            )
        finally:
            server.terminate()
            server.wait(10)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--megabytes", type=int, default=40)
    main(parser.parse_args().megabytes)
