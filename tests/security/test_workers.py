"""`cds-service serve` as a real process: replays refused across worker processes, and start-up refusals."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from cds_service.cli import main
from cds_service.store.database import Store
from tests.conftest import RULES
from tests.processes import START_SECONDS, kill_group, start_server, stop_group
from tests.security.keys import PUBLIC_URL, default_trust, ec_key, mint

# Every test here starts `cds-service serve` (or its start-up) as a process.
pytestmark = pytest.mark.integration

DISCOVERY = "/cds-services"
BATCH = 20
MAX_BATCHES = 5


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _env(database_url: str) -> dict[str, str]:
    """This process's environment without any CDS_* setting, plus the database and the rules."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CDS_")}
    return {**env, "CDS_DATABASE_URL": database_url, "CDS_RULES_DIR": str(RULES)}


def _wait_until_up(process: subprocess.Popen[bytes], port: int) -> None:
    deadline = time.monotonic() + START_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            break
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.05)
    kill_group(process)
    _, stderr = process.communicate(timeout=10)
    raise RuntimeError(f"the service did not start: {stderr.decode(errors='replace')}")


def _stop(process: subprocess.Popen[bytes]) -> bytes:
    return stop_group(process)


@pytest.fixture
def two_workers(tmp_path: Path, database_url: str) -> Iterator[str]:
    """`serve --workers 2` with authentication on, logging each call with its worker's process id to
    tmp_path / "serve.log"; yields its base URL."""
    port = _free_port()
    trust = default_trust(tmp_path)
    log = (tmp_path / "serve.log").open("wb")
    process = start_server(
        [
            sys.executable,
            "-m",
            "cds_service",
            "serve",
            "--port",
            str(port),
            "--workers",
            "2",
            "--trust",
            str(trust),
            "--public-url",
            PUBLIC_URL,
            "--log-level",
            "info",
        ],
        env=_env(database_url),
        stdout=subprocess.DEVNULL,
        stderr=log,
    )
    try:
        _wait_until_up(process, port)
        _wait_for_both_workers(port)
        yield f"http://127.0.0.1:{port}"
    finally:
        _stop(process)
        log.close()


def _wait_for_both_workers(port: int) -> None:
    """Until two different processes have answered /healthz (each on a fresh connection), or 10 s."""
    seen: set[int] = set()
    deadline = time.monotonic() + 10
    while len(seen) < 2 and time.monotonic() < deadline:
        with ThreadPoolExecutor(max_workers=4) as pool:
            answers = pool.map(lambda _: httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5), range(8))
            seen.update(a.json()["process"] for a in answers if a.status_code == 200)


def _fresh_get(url: str, token: str) -> httpx.Response:
    with httpx.Client(timeout=10) as client:  # a connection of its own, so the kernel may pick any worker
        return client.get(url, headers={"Authorization": f"Bearer {token}"})


# A refusal is counted, not written as an audit row (security/refusals.py): which worker refused a
# replay is in its log line, "[pid] ... status=401 ... token jti '...' was already used (replayed)".
_REPLAY_LINE = re.compile(
    r"\[(\d+)\] cds_service: .*status=401 .*jti '([^']+)' was already used \(replayed\)"
)


def test_a_replay_is_refused_by_whichever_worker_it_reaches(
    two_workers: str, database_url: str, tmp_path: Path
) -> None:
    url = two_workers + DISCOVERY
    store = Store(database_url)
    accepted_by: dict[str, int] = {}  # jti -> process
    refused_by: dict[str, int] = {}
    with ThreadPoolExecutor(max_workers=8) as pool:
        for _batch in range(MAX_BATCHES):
            jtis = [str(uuid.uuid4()) for _ in range(BATCH)]
            tokens = [mint(ec_key(), aud=PUBLIC_URL + DISCOVERY, jti=jti, sub=f"user-{jti}") for jti in jtis]
            firsts = list(pool.map(lambda t: _fresh_get(url, t), tokens))
            assert [r.status_code for r in firsts] == [200] * BATCH, [r.text for r in firsts]
            seconds = list(pool.map(lambda t: _fresh_get(url, t), tokens))
            assert [r.status_code for r in seconds] == [401] * BATCH
            assert all(r.json()["issue"][0]["diagnostics"].endswith("(replayed)") for r in seconds)

            for row in store.audit():
                subject = row["subject"] or ""
                assert row["status"] == 200  # refusals are counted, not audited row by row
                if subject.startswith("user-"):
                    accepted_by[subject.removeprefix("user-")] = row["process"]
            deadline = time.monotonic() + 10  # log lines are written after the answer
            while len(refused_by) < len(accepted_by) and time.monotonic() < deadline:
                text = (tmp_path / "serve.log").read_text(errors="replace")
                refused_by = {jti: int(pid) for pid, jti in _REPLAY_LINE.findall(text)}
                time.sleep(0.05)
            crossed = [jti for jti in refused_by if refused_by[jti] != accepted_by.get(jti)]
            if crossed:
                break
    store.close()
    assert set(accepted_by) == set(refused_by)  # one accepted and one refused row per token
    assert len(set(accepted_by.values()) | set(refused_by.values())) == 2, "both workers answered"
    assert crossed, "no replay reached a worker other than the one that accepted the token"


def test_serve_refuses_to_start_without_trust_or_insecure_flag(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def serving(*args: object, **kwargs: object) -> None:
        raise AssertionError("serve started without authentication set up")

    monkeypatch.setattr("uvicorn.run", serving)
    saved = dict(os.environ)
    for name in list(os.environ):
        if name.startswith("CDS_"):
            monkeypatch.delenv(name)
    database = f"sqlite:///{tmp_path / 'cds.db'}"
    trust = str(default_trust(tmp_path))
    try:
        for extra in ([], ["--trust", trust], ["--public-url", PUBLIC_URL]):
            code = main(["serve", "--rules-dir", str(RULES), "--database-url", database, *extra])
            assert code != 0, extra
            err = capsys.readouterr().err
            assert "--trust" in err and "--public-url" in err and "--insecure-no-auth" in err, err
    finally:
        os.environ.clear()
        os.environ.update(saved)


def test_serve_without_trust_exits_non_zero(tmp_path: Path, database_url: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "cds_service", "serve", "--port", str(_free_port())],
        env=_env(database_url),
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert done.returncode != 0
    err = done.stderr.decode()
    assert "--trust" in err and "--public-url" in err and "--insecure-no-auth" in err, err


def test_insecure_no_auth_warns_at_start_up(database_url: str) -> None:
    port = _free_port()
    process = start_server(
        [sys.executable, "-m", "cds_service", "serve", "--port", str(port), "--insecure-no-auth"],
        env=_env(database_url),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        _wait_until_up(process, port)
        # Without authentication, discovery answers anyone.
        assert httpx.get(f"http://127.0.0.1:{port}{DISCOVERY}", timeout=5).status_code == 200
    finally:
        stderr = _stop(process).decode(errors="replace")
    (warning,) = [line for line in stderr.splitlines() if line.startswith("WARNING")]
    assert "INSECURE" in warning and "--insecure-no-auth" in warning
