""".ci/run: a throwaway PostgreSQL cluster for `make test`, removed on exit whatever happens.

Run for real, with a stand-in `make` first on PATH that checks the database and then fails, so that
the test sees both the cluster while `make test` runs and the clean-up after a failing run. It needs
PostgreSQL's binaries, which .ci/run itself installs: so it runs where CDS_TEST_DATABASE_URL is set.
"""

from __future__ import annotations

import os
import socket
import stat
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from tests.conftest import ROOT
from tests.faults import free_port

pytestmark = pytest.mark.integration  # runs .ci/run, which starts a PostgreSQL cluster

STAND_IN = """#!/bin/sh
exec {python} - "$@" <<'PY'
import os, sys, orjson
from sqlalchemy import create_engine, text
url = os.environ["CDS_TEST_DATABASE_URL"]
engine = create_engine(url)
with engine.connect() as conn:
    data = conn.execute(text("SHOW data_directory")).scalar_one()
    database = conn.execute(text("SELECT current_database()")).scalar_one()
engine.dispose()
with open({marker!r}, "wb") as out:
    out.write(orjson.dumps({{"argv": sys.argv[1:], "url": url, "data": data, "database": database}}))
sys.exit(7)
PY
"""


@pytest.mark.postgresql_only
def test_ci_runs_make_test_against_a_cluster_it_removes_afterwards(
    database_backend: str, tmp_path: Path
) -> None:
    # `database_backend` only to be selected with the PostgreSQL runs: the test makes its own cluster.
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    marker = tmp_path / "seen.json"
    make = bin_dir / "make"
    make.write_text(STAND_IN.format(python=sys.executable, marker=str(marker)))
    make.chmod(make.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    port = free_port()
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "CDS_CI_PG_PORT": str(port)}
    env.pop("CDS_TEST_DATABASE_URL")
    done = subprocess.run(
        ["bash", str(ROOT / ".ci" / "run")], env=env, capture_output=True, timeout=300, check=False
    )

    assert done.returncode == 7, done.stderr.decode()  # make's failure is CI's failure
    seen = orjson.loads(marker.read_bytes())
    assert seen["argv"] == ["test"]
    assert seen["url"] == f"postgresql+psycopg://postgres@127.0.0.1:{port}/cds_test"
    assert seen["database"] == "cds_test"
    # Gone afterwards: the cluster's files, and the server.
    assert not Path(seen["data"]).exists()
    with socket.socket() as sock:
        assert sock.connect_ex(("127.0.0.1", port)) != 0
