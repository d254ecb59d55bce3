"""cds-service evaluate: the same body as over HTTP, clear failures, no server."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest
from fhir.resources.R4B.medicationrequest import MedicationRequest

from cds_service.cli import main
from tests.conftest import ROOT, RULES, SANDBOX
from tests.invariants import response_problems
from tests.test_app import sandbox_order_sign

# Every evaluation here is as of a fixed time: what the rules say about dated data depends on "now".
NOW = "2026-11-23T07:00:00Z"


@pytest.fixture(autouse=True)
def _rules(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("CDS_RULES_DIR", str(RULES))
    monkeypatch.setenv("CDS_DATABASE_URL", f"sqlite:///{tmp_path / 'cli.db'}")


def _write(tmp_path: Path, body: Any) -> Path:
    path = tmp_path / "request.json"
    path.write_bytes(orjson.dumps(body) if not isinstance(body, bytes) else body)
    return path


@pytest.mark.integration  # the installed command, as a process
def test_evaluate_the_sandbox_capture_as_an_installed_command(tmp_path: Path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "cds_service",
            "evaluate",
            str(SANDBOX / "order-sign-request.json"),
            "--now",
            NOW,
        ],
        capture_output=True,
        env={**os.environ, "CDS_RULES_DIR": str(RULES)},
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr.decode()
    body = orjson.loads(result.stdout)
    assert response_problems(body) == []
    # The capture's draft names no drug: the installed command answers as the service does, with no card.
    assert body == {"cards": []}


def test_evaluate_a_bare_body_picks_the_service_by_hook(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    body = sandbox_order_sign()
    body["prefetch"].update(medications=None, conditions=None, procedures=None, encounters=None)
    assert main(["evaluate", str(_write(tmp_path, body)), "--now", NOW]) == 0
    assert orjson.loads(capsys.readouterr().out) == {"cards": []}


def test_evaluate_with_an_explicit_service(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    body = sandbox_order_sign()
    body["hook"] = "order-select"
    body["context"]["selections"] = ["MedicationRequest/request-123"]
    assert (
        main(["evaluate", str(_write(tmp_path, body)), "--service", "anakinra-order-select", "--now", NOW])
        == 0
    )
    assert response_problems(orjson.loads(capsys.readouterr().out)) == []


@pytest.mark.parametrize(
    ("content", "args", "message"),
    [
        (b"{not json", [], "not valid JSON"),
        (sandbox_order_sign(), ["--service", "nope"], "no CDS service with id 'nope'"),
        (
            {**sandbox_order_sign(), "hook": "encounter-start"},
            [],
            "no service answers hook 'encounter-start'",
        ),
        ({**sandbox_order_sign(), "hookInstance": "1"}, [], "hookInstance must be a UUID"),
        ({**sandbox_order_sign(), "prefetch": {}, "fhirServer": None}, [], "HTTP 412"),
    ],
)
def test_evaluate_fails_clearly(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: Any, args: list[str], message: str
) -> None:
    assert main(["evaluate", str(_write(tmp_path, content)), *args, "--now", NOW]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert message in captured.err


def test_evaluate_a_missing_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["evaluate", str(tmp_path / "absent.json")]) == 1
    assert "cannot read" in capsys.readouterr().err


def test_broken_service_file_is_reported_with_its_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    services = tmp_path / "rules" / "services"
    services.mkdir(parents=True)
    (services / "bad.yaml").write_text("id: Bad Id\nhook: order-sign\ntitle: t\ndescription: d\n")
    monkeypatch.setenv("CDS_RULES_DIR", str(tmp_path / "rules"))
    assert main(["evaluate", str(_write(tmp_path, sandbox_order_sign()))]) == 2
    assert "bad.yaml:1: id:" in capsys.readouterr().err


def test_evaluate_a_500_mg_day_infusion_names_the_nearest_buildable_doses(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # The rule pack's acceptance check: 500 mg/day cannot be built from whole syringes.
    request = ROOT / "fhir_fixtures" / "requests" / "order-sign-500mg-day.json"
    assert main(["evaluate", str(request), "--rules-dir", str(RULES), "--now", NOW]) == 0
    body = orjson.loads(capsys.readouterr().out)
    assert response_problems(body) == []
    (card,) = [
        c for c in body["cards"] if c["extension"]["cds-service-provenance"]["ruleId"] == "infusion-build"
    ]
    assert card["indicator"] == "warning"
    assert "400" in card["summary"] and "600" in card["summary"]
    updates = [action for s in card["suggestions"] for action in s["actions"]]
    assert [a["type"] for a in updates] == ["update", "update"]
    for action in updates:
        order = MedicationRequest.model_validate(action["resource"])
        assert order.id == "draft-500"
    doses = sorted(
        a["resource"]["dosageInstruction"][0]["doseAndRate"][0]["doseQuantity"]["value"] for a in updates
    )
    assert doses == [100, 200]  # 400 mg/day as 100 mg q6h; 600 mg/day as 200 mg q8h


@pytest.mark.parametrize("command", [["evaluate"], ["rules", "explain"]])
@pytest.mark.parametrize(
    ("value", "message"),
    [("2026-11-23T07:00", "needs a time and a UTC offset"), ("yesterday", "is not an ISO 8601 time")],
)
def test_now_must_be_an_iso_time_with_its_offset(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: list[str], value: str, message: str
) -> None:
    with pytest.raises(SystemExit) as exited:
        main([*command, str(_write(tmp_path, sandbox_order_sign())), "--now", value])
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert "--now" in err and message in err and "2026-11-23T07:00:00Z" in err


def test_evaluate_at_now_given_matches_the_call_at_that_time(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Offsets are honoured: 08:00+01:00 is 07:00Z, and both give the same body.
    request = str(ROOT / "fhir_fixtures" / "requests" / "order-sign-500mg-day.json")
    assert main(["evaluate", request, "--now", NOW]) == 0
    in_utc = _card_summaries(capsys.readouterr().out)
    assert main(["evaluate", request, "--now", "2026-11-23T08:00:00+01:00"]) == 0
    assert _card_summaries(capsys.readouterr().out) == in_utc
    assert main(["evaluate", request, "--now", "2027-11-23T07:00:00Z"]) == 0
    a_year_later = _card_summaries(capsys.readouterr().out)
    assert a_year_later != in_utc  # the data's age counts: --now is not ignored


def _card_summaries(out: str) -> list[tuple[str, str]]:
    return sorted(
        (card["extension"]["cds-service-provenance"]["ruleId"], card["summary"])
        for card in orjson.loads(out)["cards"]
    )
