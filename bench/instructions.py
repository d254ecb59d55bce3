"""CPU instructions per W1 call, counted by valgrind: a figure other work on the machine does not move.

    python bench/instructions.py [--calls 5 25]

Prerequisite: valgrind (`apt-get install valgrind`). Wall-clock figures on a shared machine drift by
2x between runs minutes apart; the number of instructions a call executes does not, so this is the
figure to compare two versions of the code by (run it in each checkout). It runs `call_service` on
W1 (bench/w1.py) in process, the compute stages inline on the calling thread, under callgrind twice:
with the smaller and the larger number of calls; the difference divided by the difference in calls is
the cost of one call, start-up and warm-up excluded. Takes about 4 minutes (callgrind runs Python
about 50x slower). Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
SERVICE = "anakinra-order-sign"


class _Inline:
    """An executor that runs the work on the calling thread: one thread to count, no hand-offs."""

    def submit(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> concurrent.futures.Future[Any]:
        done: concurrent.futures.Future[Any] = concurrent.futures.Future()
        try:
            done.set_result(fn(*args, **kwargs))
        except BaseException as exc:  # noqa: BLE001 - handed to the awaiting caller
            done.set_exception(exc)
        return done

    def shutdown(self, wait: bool = True) -> None:
        pass


async def _calls(count: int) -> None:
    from w1 import w1_body

    from cds_service.config import Settings
    from cds_service.pipeline import Runtime, call_service

    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(
            rules_dir=ROOT / "rules",
            database_url=f"sqlite:///{tmp}/bench.db",
            reload_interval_seconds=0,
            insecure_no_auth=True,
        )
        runtime = Runtime.create(settings)
        runtime.compute = _Inline()  # type: ignore[assignment]
        body = w1_body(NOW)
        try:
            for _ in range(count):
                await call_service(runtime, SERVICE, body, now=NOW)
        finally:
            await runtime.aclose()


def _counted(calls: int) -> int:
    result = subprocess.run(
        [
            "valgrind",
            "--tool=callgrind",
            "--callgrind-out-file=/dev/null",
            sys.executable,
            __file__,
            "--run",
            str(calls),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    found = re.search(r"Collected : (\d+)", result.stderr)
    if found is None:
        raise RuntimeError(f"valgrind did not report a count:\n{result.stderr[-2000:]}")
    return int(found.group(1))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--calls", type=int, nargs=2, default=[5, 25], metavar=("FEW", "MANY"))
    parser.add_argument("--run", type=int, help=argparse.SUPPRESS)  # the counted process itself
    args = parser.parse_args()
    if args.run is not None:
        asyncio.run(_calls(args.run))
        return
    if shutil.which("valgrind") is None:
        sys.exit("valgrind is not installed: apt-get install valgrind")
    few, many = args.calls
    if many <= few:
        sys.exit("--calls FEW MANY: MANY must be larger")
    low, high = _counted(few), _counted(many)
    print(f"W1 call_service, in process, compute inline: {(high - low) / (many - few) / 1e6:.1f} M instructions per call")
    print(f"(callgrind: {few} calls {low:,}, {many} calls {high:,} instructions in all; {ROOT})")


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    main()
