"""`cds-service serve` started by a test as a real process, and stopped with every worker it forked.

Each server leads its own process group. uvicorn's workers are its children: a supervisor killed alone
(a start-up that timed out, a SIGKILL) leaves them running, holding the port, the database and the
stderr pipe, and a test that then reads that pipe waits forever. So stopping reaches the whole group.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from typing import Any

# Starting takes a few seconds alone; on a 2-core machine shared with other test runs two workers took
# 50 s. Beyond this the start is reported as failed.
START_SECONDS = 90.0


def start_server(command: list[str], **popen: Any) -> subprocess.Popen[bytes]:
    """subprocess.Popen(command, **popen), leading a process group of its own."""
    return subprocess.Popen(command, start_new_session=True, **popen)


def kill_group(process: subprocess.Popen[bytes]) -> None:
    """SIGKILL to the server and every worker at once: no shutdown code runs anywhere."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=10)


def stop_group(process: subprocess.Popen[bytes], seconds: float = 15) -> bytes:
    """SIGTERM (uvicorn's supervisor stops its workers and waits for them), SIGKILL to what is left;
    what the server wrote to stderr if it was piped."""
    if process.poll() is None:
        process.terminate()
    try:
        _, stderr = process.communicate(timeout=seconds)
    except subprocess.TimeoutExpired:
        kill_group(process)
        _, stderr = process.communicate(timeout=10)
    # Workers outliving their supervisor (it died first) would hold the port and the database.
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    return stderr or b""
