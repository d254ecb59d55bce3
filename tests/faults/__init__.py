"""Fault tests (docs/faults.md), and `Serve`: `cds-service serve` as a real process for them.

`Serve` differs from the launchers in tests/test_feedback.py and tests/security/test_workers.py in what
these tests need: the server's stderr goes to a file (a long burst would fill a pipe nobody reads, and
the tests read the log afterwards), the process leads its own process group so that SIGKILL reaches
every worker at once, and it can wait until each worker has answered.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import TracebackType
from typing import Self

import httpx

from tests.conftest import RULES

START_SECONDS = 30.0


def clean_env(**settings: str) -> dict[str, str]:
    """This process's environment without any CDS_* setting of the test run, plus `settings`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CDS_")}
    return {**env, **settings}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Serve:
    """`python -m cds_service serve --insecure-no-auth` on a free port, as a context manager."""

    def __init__(
        self,
        database_url: str,
        log: Path,
        workers: int = 1,
        rules_dir: Path = RULES,
        env: dict[str, str] | None = None,
    ) -> None:
        self.database_url = database_url
        self.log_path = log
        self.workers = workers
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self._env = clean_env(
            CDS_DATABASE_URL=database_url,
            CDS_RULES_DIR=str(rules_dir),
            CDS_INSECURE_NO_AUTH="1",
            **(env or {}),
        )
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "cds_service",
                    "serve",
                    "--port",
                    str(self.port),
                    "--workers",
                    str(self.workers),
                    "--log-level",
                    "warning",
                ],
                env=self._env,
                stdout=subprocess.DEVNULL,
                stderr=log,
                start_new_session=True,
            )
        self._wait_until_up()
        if self.workers > 1:
            self._wait_for_every_worker()

    def _wait_until_up(self) -> None:
        assert self.process is not None
        deadline = time.monotonic() + START_SECONDS
        with httpx.Client(timeout=1) as http:
            while time.monotonic() < deadline and self.process.poll() is None:
                try:
                    if http.get(f"{self.base_url}/healthz").status_code == 200:
                        return
                except httpx.TransportError:
                    time.sleep(0.05)
        self.kill()
        raise RuntimeError(f"the service did not start:\n{self.log()}")

    def _wait_for_every_worker(self) -> None:
        """Until each worker process has answered /healthz (on fresh connections), or 15 s."""
        seen: set[int] = set()
        deadline = time.monotonic() + 15
        no_keepalive = httpx.Limits(max_keepalive_connections=0)
        with ThreadPoolExecutor(max_workers=4) as pool, httpx.Client(limits=no_keepalive, timeout=5) as http:
            while len(seen) < self.workers and time.monotonic() < deadline:
                answers = pool.map(lambda _: http.get(f"{self.base_url}/healthz"), range(8))
                seen.update(a.json()["process"] for a in answers if a.status_code == 200)
        if len(seen) < self.workers:
            raise RuntimeError(f"only {len(seen)} of {self.workers} workers answered:\n{self.log()}")

    def kill(self) -> None:
        """SIGKILL to the server and all its workers at once: no shutdown code runs anywhere."""
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()  # uvicorn's supervisor stops its workers and waits for them
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.kill()

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace") if self.log_path.exists() else ""

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
