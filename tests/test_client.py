"""`cds-service client`: the quick start's signed calls, against a real `cds-service serve` process."""

from __future__ import annotations

import json
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import jwt
import pytest

from cds_service.cli import main
from cds_service.client import ClientError, Signer, keygen
from tests.processes import START_SECONDS, start_server, stop_group

ROOT = Path(__file__).resolve().parent.parent
REQUEST = ROOT / "fhir_fixtures" / "requests" / "order-sign-500mg-day.json"
ISSUER = "https://ehr.quickstart.test"


def test_keygen_writes_a_private_key_only_its_owner_reads_and_a_matching_jwks(tmp_path: Path) -> None:
    written = keygen(tmp_path / "ehr", ISSUER)
    assert [p.name for p in written] == ["private-key.pem", "jwks.json", "trust.yaml"]
    assert stat.S_IMODE((tmp_path / "ehr" / "private-key.pem").stat().st_mode) == 0o600
    signer = Signer.load(tmp_path / "ehr")
    assert signer.issuer == ISSUER
    token = signer.token("http://127.0.0.1:8080/cds-services")
    public = jwt.PyJWKSet.from_json((tmp_path / "ehr" / "jwks.json").read_text())[signer.kid]
    claims = jwt.decode(token, public, algorithms=["ES384"], audience="http://127.0.0.1:8080/cds-services")
    assert claims["iss"] == ISSUER
    assert claims["exp"] - claims["iat"] == 300
    assert jwt.get_unverified_header(token)["kid"] == signer.kid


def test_keygen_never_overwrites_a_key(tmp_path: Path) -> None:
    keygen(tmp_path, ISSUER)
    before = (tmp_path / "private-key.pem").read_bytes()
    with pytest.raises(ClientError, match="never overwritten"):
        keygen(tmp_path, ISSUER)
    assert (tmp_path / "private-key.pem").read_bytes() == before


def test_a_missing_key_directory_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["client", "discover", "--key", str(tmp_path / "none")]) == 1
    assert "client keygen" in capsys.readouterr().err


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """`cds-service serve` as the quick start runs it, trusting a key made by `client keygen`."""
    keygen(tmp_path / "ehr", ISSUER)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    command = [
        sys.executable, "-m", "cds_service", "serve", "--port", str(port),
        "--trust", str(tmp_path / "ehr" / "trust.yaml"), "--public-url", url,
        "--database-url", f"sqlite:///{tmp_path / 'cds.db'}", "--rules-dir", str(ROOT / "rules"),
    ]  # fmt: skip
    process = start_server(command, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + START_SECONDS
        while True:
            assert process.poll() is None, process.stderr.read().decode() if process.stderr else ""
            try:
                if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, f"the service did not start within {START_SECONDS:.0f} s"
            time.sleep(0.2)
        yield url, tmp_path / "ehr"
    finally:
        stop_group(process, seconds=30)


def test_signed_discovery_call_and_feedback_reach_a_served_service(
    served: tuple[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url, key = served
    assert main(["client", "discover", "--key", str(key), "--url", url]) == 0
    services = json.loads(capsys.readouterr().out)["services"]
    assert "anakinra-order-sign" in {s["id"] for s in services}

    assert main(["client", "call", "anakinra-order-sign", str(REQUEST), "--key", str(key), "--url", url]) == 0
    cards = json.loads(capsys.readouterr().out)["cards"]
    build = next(c for c in cards if c["extension"]["cds-service-provenance"]["ruleId"] == "infusion-build")
    assert build["summary"].startswith("500 mg/day cannot be built")

    body = {
        "feedback": [
            {
                "card": build["uuid"],
                "outcome": "overridden",
                "overrideReason": {"reason": build["overrideReasons"][0]},
                "outcomeTimestamp": "2026-11-23T10:00:00Z",
            }
        ]
    }
    (tmp_path / "feedback.json").write_text(json.dumps(body))
    feedback = ["client", "feedback", "anakinra-order-sign", str(tmp_path / "feedback.json")]
    assert main([*feedback, "--key", str(key), "--url", url]) == 0
    assert "HTTP 200" in capsys.readouterr().err


def test_without_url_the_client_calls_the_port_cds_port_names(
    served: tuple[str, Path], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # The service was started with its public URL on this port, as `CDS_PORT=N make serve` does.
    url, key = served
    monkeypatch.delenv("CDS_PUBLIC_URL", raising=False)
    monkeypatch.setenv("CDS_PORT", url.rsplit(":", 1)[1])
    assert main(["client", "discover", "--key", str(key)]) == 0
    assert "anakinra-order-sign" in {s["id"] for s in json.loads(capsys.readouterr().out)["services"]}
    monkeypatch.setenv("CDS_PUBLIC_URL", url)
    monkeypatch.setenv("CDS_PORT", "1")  # an explicit public URL wins, as in `make serve`
    assert main(["client", "discover", "--key", str(key)]) == 0


def test_a_key_the_service_does_not_trust_is_refused(
    served: tuple[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url, _ = served
    keygen(tmp_path / "stranger", ISSUER)  # same issuer name, another key: the signature cannot verify
    assert main(["client", "discover", "--key", str(tmp_path / "stranger"), "--url", url]) == 1
    captured = capsys.readouterr()
    assert "HTTP 401" in captured.err
    assert json.loads(captured.out)["resourceType"] == "OperationOutcome"
