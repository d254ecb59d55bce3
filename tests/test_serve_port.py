"""One way to move the port: `make serve PORT=...` / CDS_PORT move the server, the public URL tokens are
addressed to and the client's default URL together; a port in use is one line saying what to change."""

from __future__ import annotations

import os
import shlex
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from cds_service.cli import _public_port_mismatch
from cds_service.config import Settings, local_public_url
from tests.conftest import ROOT, RULES

# Variables the caller's own shell may have set, which would change what make derives.
_CALLER_VARIABLES = ("PORT", "PUBLIC_URL", "CDS_PORT", "CDS_PUBLIC_URL", "TRUST", "MAKEFLAGS", "MFLAGS")


def _make_serve(*assignments: str, **env: str) -> tuple[str, str]:
    """The --port and --public-url that `make serve` would pass, with these make arguments and env."""
    base = {k: v for k, v in os.environ.items() if k not in _CALLER_VARIABLES}
    result = subprocess.run(
        ["make", "--no-print-directory", "-n", "serve", *assignments],
        cwd=ROOT,
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    (line,) = [line for line in result.stdout.splitlines() if " serve " in line and "cds-service" in line]
    words = shlex.split(line)
    return words[words.index("--port") + 1], words[words.index("--public-url") + 1]


needs_make = pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")


@needs_make
@pytest.mark.parametrize(
    ("assignments", "env", "port", "url"),
    [
        ((), {}, "8080", "http://127.0.0.1:8080"),
        (("PORT=9000",), {}, "9000", "http://127.0.0.1:9000"),
        ((), {"CDS_PORT": "9001"}, "9001", "http://127.0.0.1:9001"),
        (("PORT=9002",), {"CDS_PORT": "9001"}, "9002", "http://127.0.0.1:9002"),  # the make variable wins
        (("PORT=9000", "PUBLIC_URL=https://cds.example.org"), {}, "9000", "https://cds.example.org"),
        (
            (),
            {"CDS_PORT": "9001", "CDS_PUBLIC_URL": "https://cds.example.org"},
            "9001",
            "https://cds.example.org",
        ),
    ],
)
def test_make_serve_moves_the_port_and_the_public_url_together(
    assignments: tuple[str, ...], env: dict[str, str], port: str, url: str
) -> None:
    assert _make_serve(*assignments, **env) == (port, url)


@needs_make
@pytest.mark.parametrize(
    "env", [{}, {"CDS_PORT": "9001"}, {"CDS_PORT": "9001", "CDS_PUBLIC_URL": "https://cds.example.org"}]
)
def test_the_client_defaults_to_the_url_make_serve_checks_tokens_against(env: dict[str, str]) -> None:
    _, served = _make_serve(**env)
    assert local_public_url(env) == served


def test_a_public_url_on_this_machine_with_another_port_is_warned_about() -> None:
    moved = Settings(port=9000, public_url="http://127.0.0.1:8080", insecure_no_auth=True)
    warning = _public_port_mismatch(moved)
    assert warning is not None and "8080" in warning and "9000" in warning and "PORT" in warning
    assert _public_port_mismatch(Settings(port=9000, public_url="http://localhost:9000")) is None
    # Behind a proxy the public URL is another host and port altogether: nothing to say.
    assert _public_port_mismatch(Settings(port=9000, public_url="https://cds.example.org")) is None


@pytest.mark.integration
def test_serving_on_a_port_in_use_is_one_line_naming_the_setting(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        command = [
            sys.executable, "-m", "cds_service", "serve", "--port", str(port), "--insecure-no-auth",
            "--database-url", f"sqlite:///{tmp_path / 'cds.db'}", "--rules-dir", str(RULES),
        ]  # fmt: skip
        env = {k: v for k, v in os.environ.items() if not k.startswith("CDS_")}
        result = subprocess.run(
            command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60, check=False
        )
    assert result.returncode == 1
    expected = (
        f"error: port {port} on 127.0.0.1 is already in use; choose another with --port or CDS_PORT "
        f"(make serve PORT={port + 1})"
    )
    assert result.stderr.strip().splitlines() == [expected], result.stderr
