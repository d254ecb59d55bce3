"""W1 as an EHR calls it, end to end, next to an empty FastAPI app and HealthChain in one run.

    python bench/ehr.py [--requests 400] [--repeats 3] [--seconds 10] [--no-healthchain]

Prerequisites: the project's virtual environment (`make .venv/.installed`) and Debian's `wrk`
(`apt-get install wrk`) for the saturation column; without wrk that column comes from a Python load
generator (httpx, 16 connections), which says so, and is not comparable with wrk's figures. HealthChain
0.16.1 is installed on first use into a bench-only virtual environment under
${XDG_CACHE_HOME:-~/.cache}/cds-service-bench/ (never into the project's: it is not a dependency).

The request (bench/ehr_request.py): W1's resources served through the service's own prefetch templates,
as prefetch Bundles in the body (about 171 KB). Servers, each started afresh on 127.0.0.1:
  empty app     bench/empty_app.py: FastAPI, orjson parse, a constant answer, gc.freeze()
  HealthChain   bench/healthchain_app.py: HealthChain 0.16.1, a patient-view service (the same body with
                "hook": "patient-view"): its envelope model, one ferritin filter, one card
  service       `cds-service serve` as deployed: the default SQLite database (./cds-service.db in a fresh
                directory), the audit trail and cards issued written per call, default log level; once
                with authentication off, once with a fresh ES384 token per call (a trust file and key
                made at run time, as `cds-service client keygen` makes them)
Per system and repeat: 1 worker, 50 warm-up then --requests sequential calls on one keep-alive
connection (p50, p99; tokens are minted before each call's timer starts); then 2 workers and wrk
(2 threads, 16 connections, --seconds; with authentication each request carries its own pre-minted
token). The systems take turns within each repeat; the table gives the medians over the repeats.
In this process: `orjson.loads` of the body (the floor the ratios divide by), `call_service` on the same
body (the pipeline without HTTP, authentication or database), and ES384 verification (signature,
claims and the jti write to SQLite) on its own.

The machine's 1-minute load average is printed before each measurement: other work on the same CPUs
moves every figure, so compare ratios within one run and note the load. Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import httpx
import orjson
from ehr_request import ehr_body
from timing import free_port, timed

from cds_service.client import Signer, keygen
from cds_service.config import Settings
from cds_service.pipeline import Runtime, call_service
from cds_service.security.keys import KeyStore
from cds_service.security.trust import load_trust
from cds_service.security.verify import Verifier
from cds_service.store.database import Store

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
SERVICE = "anakinra-order-sign"
PATH = f"/cds-services/{SERVICE}"
ISSUER = "https://ehr.bench.example"
WARM_UP = 50
HEALTHCHAIN = "healthchain==0.16.1"
# The same server stack as the project's (requirements/runtime.txt), so HealthChain runs on uvloop and httptools too.
HEALTHCHAIN_EXTRAS = ("uvloop==0.23.0", "httptools==0.9.0")
WRK_THREADS, WRK_CONNECTIONS = 2, 16


@dataclass
class System:
    name: str
    command: Callable[[int, int], list[str]]  # (port, workers) -> argv
    health: str
    body: bytes
    signer: Signer | None = None

    def audience(self, port: int) -> str:
        return f"http://127.0.0.1:{port}{PATH}"


@dataclass
class Figures:
    p50: list[float] = field(default_factory=list)
    p99: list[float] = field(default_factory=list)
    rps: list[float] = field(default_factory=list)
    load: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)  # server CPU ms per request under wrk


def load_average() -> float:
    return os.getloadavg()[0]


@contextmanager
def serving(system: System, workers: int, folder: Path, logs: list[Path] | None = None) -> Iterator[str]:
    """The system on a free port, started in a fresh directory, until the block ends; its log's path is
    appended to `logs`."""
    port = free_port()
    run_dir = Path(tempfile.mkdtemp(dir=folder))
    log = (run_dir / "server.log").open("wb")
    if logs is not None:
        logs.append(run_dir / "server.log")
    server = subprocess.Popen(
        system.command(port, workers),
        cwd=run_dir,
        # The service reads CDS_* variables: none of the caller's may change what is measured.
        env={name: value for name, value in os.environ.items() if not name.startswith("CDS_")},
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    _SERVERS[base] = server.pid
    try:
        deadline = time.monotonic() + 90
        while True:
            if server.poll() is not None:
                raise RuntimeError(f"{system.name} exited: see {run_dir / 'server.log'}")
            try:
                if httpx.get(base + system.health).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"{system.name} did not start: see {run_dir / 'server.log'}")
            time.sleep(0.05)
        yield base
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        log.close()


def sequential(system: System, base: str, requests: int) -> list[float]:
    """Milliseconds per call, one call after another on one keep-alive connection."""
    audience = system.audience(int(base.rsplit(":", 1)[1]))
    samples = []
    with httpx.Client(base_url=base, headers={"content-type": "application/json"}, timeout=60) as client:
        for index in range(WARM_UP + requests):
            headers = {}
            if system.signer is not None:
                headers["Authorization"] = f"Bearer {system.signer.token(audience)}"
            started = time.perf_counter()
            response = client.post(PATH, content=system.body, headers=headers)
            elapsed = (time.perf_counter() - started) * 1000
            if response.status_code != 200:
                raise RuntimeError(f"{system.name}: {response.status_code} {response.text[:300]}")
            if index >= WARM_UP:
                samples.append(elapsed)
    return samples


_SERVERS: dict[str, int] = {}  # base URL -> the server's process id


def _tree_cpu_seconds(pid: int) -> float:
    """CPU time (user + system) of a process and its children (uvicorn's workers), from /proc."""
    total = 0.0
    pending = [pid]
    while pending:
        current = pending.pop()
        try:
            fields = Path(f"/proc/{current}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
            for task in Path(f"/proc/{current}/task").iterdir():
                pending += [int(child) for child in (task / "children").read_text().split()]
        except (OSError, IndexError, ValueError):
            continue
    return total


def saturation(system: System, base: str, seconds: float, folder: Path) -> tuple[float, str]:
    """Requests per second with 2 workers, and what measured it. Also leaves in `CPU[base]` the server's
    CPU milliseconds per request and how busy its workers were: wrk's 16 keep-alive connections are shared by
    the workers as the kernel hands them out, and one worker can end up with most of them, so req/s alone
    can halve from one run to the next while the cost per request does not move."""
    body_file = folder / f"body-{abs(hash(system.name))}.json"
    body_file.write_bytes(system.body)
    tokens = ""
    if system.signer is not None:
        # More than the fastest system here could answer in the time; each is used once (jti).
        audience = system.audience(int(base.rsplit(":", 1)[1]))
        token_file = folder / "tokens.txt"
        token_file.write_text("\n".join(system.signer.token(audience) for _ in range(int(seconds * 800))))
        tokens = str(token_file)
    pid = _SERVERS.get(base)
    cpu_before, wall_before = (_tree_cpu_seconds(pid) if pid else 0.0), time.monotonic()
    rps, tool = _load(system, base, seconds, tokens, body_file)
    if pid:
        cpu, wall = _tree_cpu_seconds(pid) - cpu_before, time.monotonic() - wall_before
        CPU[base] = (cpu / max(rps * wall, 1e-9) * 1000, cpu / wall / 2)
    return rps, tool


CPU: dict[str, tuple[float, float]] = {}  # base URL -> (server CPU ms per request, workers busy 0..1)


def _load(system: System, base: str, seconds: float, tokens: str, body_file: Path) -> tuple[float, str]:
    if shutil.which("wrk") is None:
        return asyncio.run(_python_load(system, base, seconds)), "python"
    result = subprocess.run(
        [
            "wrk",
            f"-t{WRK_THREADS}",
            f"-c{WRK_CONNECTIONS}",
            f"-d{seconds:.0f}s",
            "-s",
            str(BENCH / "ehr_post.lua"),
            base + PATH,
        ],
        env={
            **os.environ,
            "BENCH_BODY": str(body_file),
            "BENCH_TOKENS": tokens,
            "BENCH_THREADS": str(WRK_THREADS),
        },
        capture_output=True,
        text=True,
        check=True,
    )
    failed = re.search(r"Non-2xx or 3xx responses: (\d+)", result.stdout)
    if failed:
        raise RuntimeError(f"{system.name}: {failed.group(1)} failed responses under wrk:\n{result.stdout}")
    match = re.search(r"Requests/sec:\s+([\d.]+)", result.stdout)
    assert match, result.stdout
    return float(match.group(1)), "wrk"


async def _python_load(system: System, base: str, seconds: float) -> float:
    audience = system.audience(int(base.rsplit(":", 1)[1]))
    done = 0
    deadline = time.perf_counter() + seconds

    async def connection(client: httpx.AsyncClient) -> None:
        nonlocal done
        while time.perf_counter() < deadline:
            headers = {"content-type": "application/json"}
            if system.signer is not None:
                headers["Authorization"] = f"Bearer {system.signer.token(audience)}"
            response = await client.post(PATH, content=system.body, headers=headers)
            if response.status_code != 200:
                raise RuntimeError(f"{system.name}: {response.status_code} {response.text[:300]}")
            done += 1

    limits = httpx.Limits(max_connections=WRK_CONNECTIONS)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=60) as client:
        started = time.perf_counter()
        await asyncio.gather(*(connection(client) for _ in range(WRK_CONNECTIONS)))
        return done / (time.perf_counter() - started)


def writer_batching(log: Path) -> str:
    """What the service's writers said at shutdown (store/writer.py): writes per commit under wrk."""
    found = re.findall(r"writer: (\d+) writes in (\d+) transactions", log.read_text(errors="replace"))
    if not found:
        return ""
    writes, commits = sum(int(w) for w, _ in found), sum(int(c) for _, c in found)
    return f"  [{writes:,} writes in {commits:,} commits: {writes / max(commits, 1):.1f} per commit]"


# --- the comparison systems ----------------------------------------------------------------------------


def healthchain_python(cache: Path) -> tuple[Path | None, str]:
    """The bench-only virtual environment's python, made on first use; or None and why not."""
    venv = cache / HEALTHCHAIN.replace("==", "-")
    python = venv / "bin" / "python"
    stamp = venv / ".installed"
    if stamp.exists():
        return python, ""
    print(f"installing {HEALTHCHAIN} into {venv} (bench only, once)", flush=True)
    steps = [
        [sys.executable, "-m", "venv", "--clear", str(venv)],
        [str(python), "-m", "pip", "install", "--quiet", HEALTHCHAIN, *HEALTHCHAIN_EXTRAS],
    ]
    for step in steps:
        result = subprocess.run(step, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            why = (result.stderr or result.stdout).strip().splitlines()
            return None, f"`{' '.join(step[-3:])}` failed: {why[-1] if why else result.returncode}"
    stamp.touch()
    return python, ""


def systems(body: bytes, signer: Signer, trust: Path, hc_python: Path | None) -> list[System]:
    python = sys.executable
    uvicorn = ["--loop", "uvloop", "--http", "httptools", "--log-level", "warning"]

    def empty(port: int, workers: int) -> list[str]:
        app = [python, "-m", "uvicorn", "--app-dir", str(BENCH), "empty_app:app"]
        return [*app, "--port", str(port), "--workers", str(workers), *uvicorn]

    def healthchain(port: int, workers: int) -> list[str]:
        app = [str(hc_python), "-m", "uvicorn", "--app-dir", str(BENCH), "healthchain_app:app"]
        return [*app, "--port", str(port), "--workers", str(workers), *uvicorn]

    def service(auth: bool) -> Callable[[int, int], list[str]]:
        def command(port: int, workers: int) -> list[str]:
            serve = [python, "-m", "cds_service", "serve", "--port", str(port), "--workers", str(workers)]
            serve += ["--rules-dir", str(ROOT / "rules")]
            if auth:
                return [*serve, "--trust", str(trust), "--public-url", f"http://127.0.0.1:{port}"]
            return [*serve, "--insecure-no-auth"]

        return command

    found = [System("empty FastAPI app (orjson parse, constant answer, gc.freeze)", empty, "/healthz", body)]
    if hc_python is not None:
        patient_view = orjson.loads(body)
        patient_view["hook"] = "patient-view"
        found.append(
            System(
                "HealthChain 0.16.1 (patient-view, envelope check, one ferritin filter)",
                healthchain,
                "/health",
                orjson.dumps(patient_view),
            )
        )
    found.append(System("this service, authentication off", service(False), "/healthz", body))
    found.append(System("this service, ES384 token per call", service(True), "/healthz", body, signer))
    return found


# --- in process ----------------------------------------------------------------------------------------


async def in_process(
    body: bytes, now: datetime, folder: Path, key_dir: Path, iterations: int
) -> dict[str, object]:
    settings = Settings(
        rules_dir=ROOT / "rules",
        database_url=f"sqlite:///{folder / 'in-process.db'}",
        reload_interval_seconds=0,
        insecure_no_auth=True,
    )
    runtime = Runtime.create(settings)
    try:
        answer = await call_service(runtime, SERVICE, body, now=now)
        cards = len(orjson.loads(answer.body)["cards"])
        pipeline = []
        for _ in range(iterations):
            started = time.perf_counter()
            await call_service(runtime, SERVICE, body, now=now)
            pipeline.append((time.perf_counter() - started) * 1000)
    finally:
        await runtime.aclose()
    return {
        "pipeline": pipeline,
        "cards": cards,
        "charts": len(answer.charts),
        "verify": await _verify_times(folder, key_dir, iterations),
    }


async def _verify_times(folder: Path, key_dir: Path, iterations: int) -> list[float]:
    """ES384 verification as the service does it per call: signature, claims, jti written to SQLite."""
    store = Store(f"sqlite:///{folder / 'verify.db'}")
    signer = Signer.load(key_dir)
    audience = f"https://cds.bench.example{PATH}"

    async def first_use(issuer: str, jti: str, expires_at: datetime) -> bool:
        return store.first_use(issuer, jti, expires_at)

    samples = []
    async with httpx.AsyncClient() as client:
        keys = KeyStore(client)
        issuers = load_trust(key_dir / "trust.yaml")
        keys.load_files(issuers)
        verifier = Verifier(issuers, keys, first_use)
        for token in [signer.token(audience) for _ in range(iterations)]:
            started = time.perf_counter()
            await verifier.verify(f"Bearer {token}", audience)
            samples.append((time.perf_counter() - started) * 1000)
    store.close()
    return samples


# --- report --------------------------------------------------------------------------------------------


def p99(samples: list[float]) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, math.ceil(len(ordered) * 0.99) - 1)]


def main(requests: int, repeats: int, seconds: float, with_healthchain: bool) -> None:
    started_load = load_average()
    # The service reads "now" from its clock: the results are placed relative to the minute it starts.
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    body = ehr_body(now)
    floor = statistics.median(timed(lambda: orjson.loads(body), 2000)) / 1000
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "cds-service-bench"
    hc_python, hc_missing = healthchain_python(cache) if with_healthchain else (None, "--no-healthchain")
    print(f"W1 as an EHR sends it: {len(body):,} bytes; orjson.loads floor p50 {floor:.3f} ms (this process)")
    print(
        f"machine: {os.cpu_count()} CPUs; load average at start {started_load:.2f}; wrk: {shutil.which('wrk')}"
    )
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        key_dir = folder / "client-key"
        keygen(key_dir, ISSUER, "bench")
        signer = Signer.load(key_dir)
        inside = asyncio.run(in_process(body, now, folder, key_dir, 300))
        pipeline, verify = inside["pipeline"], inside["verify"]
        assert isinstance(pipeline, list) and isinstance(verify, list)
        print(
            f"in process: call_service p50 {statistics.median(pipeline):.2f} ms "
            f"({statistics.median(pipeline) / floor:.1f}x floor), p99 {p99(pipeline):.2f} ms; "
            f"{inside['cards']} cards, {inside['charts']} chart snapshot(s) per call"
        )
        print(
            f"in process: ES384 verification (signature, claims, jti to SQLite) p50 {statistics.median(verify):.3f} ms"
        )
        if hc_python is None:
            print(f"HealthChain not measured: {hc_missing}")
        found = systems(body, signer, key_dir / "trust.yaml", hc_python)
        figures = {system.name: Figures() for system in found}
        tools = set()
        for repeat in range(1, repeats + 1):
            for system in found:
                load = load_average()
                with serving(system, 1, folder) as base:
                    seq = sequential(system, base, requests)
                logs: list[Path] = []
                with serving(system, 2, folder, logs) as base:
                    rps, tool = saturation(system, base, seconds, folder)
                    cpu_ms, busy = CPU.get(base, (math.nan, math.nan))
                batching = writer_batching(logs[0])
                tools.add(tool)
                entry = figures[system.name]
                entry.p50.append(statistics.median(seq))
                entry.p99.append(p99(seq))
                entry.rps.append(rps)
                entry.cpu.append(cpu_ms)
                entry.load.append(load)
                print(
                    f"  repeat {repeat}  {system.name[:40]:40s} p50 {entry.p50[-1]:6.2f} ms  p99 {entry.p99[-1]:6.2f} ms"
                    f"  {rps:7.0f} req/s, {cpu_ms:5.1f} ms CPU/req, workers {busy:4.0%} busy  (load {load:.2f}){batching}",
                    flush=True,
                )
    ended_load = load_average()
    empty = statistics.median(next(iter(figures.values())).rps)
    tool = (
        "wrk" if tools == {"wrk"} else "a Python load generator (wrk not installed), not comparable with wrk"
    )
    print()
    print(
        f"Medians of {repeats} interleaved repeats; {requests} sequential calls on 1 worker; saturation with {tool}"
    )
    print(
        f"({WRK_THREADS} threads, {WRK_CONNECTIONS} connections, {seconds:g} s) on 2 workers. Load average: {started_load:.2f} at start, {ended_load:.2f} at end."
    )
    print()
    print(
        "| system | seq p50 | p99 | p50 / orjson floor | req/s | req/s / empty app | server CPU per request | load during |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for name, entry in figures.items():
        p50 = statistics.median(entry.p50)
        rps = statistics.median(entry.rps)
        print(
            f"| {name} | {p50:.2f} ms | {statistics.median(entry.p99):.1f} ms | {p50 / floor:.1f}x | {rps:,.0f} "
            f"| {rps / empty:.2f} | {statistics.median(entry.cpu):.1f} ms | {min(entry.load):.1f}-{max(entry.load):.1f} |"
        )
    print(
        f"| in process: call_service (pipeline only) | {statistics.median(pipeline):.2f} ms | {p99(pipeline):.1f} ms "
        f"| {statistics.median(pipeline) / floor:.1f}x | | | | |"
    )
    print(
        f"| in process: ES384 verification | {statistics.median(verify):.2f} ms | {p99(verify):.1f} ms | | | | | |"
    )
    print(f"| orjson.loads floor ({len(body) / 1000:.0f} KB) | {floor:.3f} ms | | 1.0x | | | | |")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=400, help="sequential calls per system and repeat")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=10, help="wrk's duration per system and repeat")
    parser.add_argument("--no-healthchain", action="store_true", help="skip HealthChain (no install)")
    args = parser.parse_args()
    main(args.requests, args.repeats, args.seconds, not args.no_healthchain)
