"""`cds-service rules explain`: each rule's outcome with the facts it read, converted and as reported."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import orjson
import pytest

from cds_service.cases import load_cases, request_body
from cds_service.cli import main
from cds_service.engine.durable import DurableRules
from cds_service.engine.ruleset import load_ruleset
from tests.conftest import RULES


def case_request(tmp_path: Path, fragment: str) -> list[str]:
    """The request of the rule case named by `fragment`, with the case's own time as --now."""
    (loaded,) = [c for c in load_cases(RULES) if fragment in c.case.name]
    assert loaded.case.now is not None
    durable = DurableRules()
    try:
        ruleset = load_ruleset(RULES, durable)
        body = request_body(loaded, ruleset)
        ruleset.release(durable)
    finally:
        durable.close()
    path = tmp_path / "request.json"
    path.write_bytes(body)
    return [str(path), "--now", loaded.case.now.isoformat()]


def test_explain_shows_fired_rule_with_facts_and_parameters(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    request = case_request(tmp_path, "3000 mg/day is above")
    assert main(["rules", "explain", *request, "--rules-dir", str(RULES)]) == 0
    out = capsys.readouterr().out
    assert "max-dose 1.3.0: FIRED -> warning card" in out
    assert "order.daily_dose" in out and "3000 mg/d" in out
    assert "max_daily_dose = 2400 mg/d" in out


def test_explain_shows_converted_units_and_what_was_reported(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    request = case_request(tmp_path, "pounds")
    assert main(["rules", "explain", *request, "--rules-dir", str(RULES)]) == 0
    out = capsys.readouterr().out
    weight = next(line for line in out.splitlines() if line.strip().startswith("patient.weight"))
    assert "83.28 kg" in weight and "reported 183.6 [lb_av]" in weight


def test_explain_says_why_a_rule_could_not_evaluate(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    request = case_request(tmp_path, "without a recent weight")
    assert main(["rules", "explain", *request, "--rules-dir", str(RULES), "--json"]) == 0
    report = orjson.loads(capsys.readouterr().out)
    (rule,) = [r for r in report["rules"] if r["id"] == "max-dose"]
    assert rule["status"] == "unknown" and rule["card"] == "info"
    rate = next(f for f in rule["facts"] if f["name"] == "order.dose_rate_per_kg")
    assert rate["value"] is None and "weight" in rate["missing"]
    assert report["ruleset"]["hash"]


def test_explain_names_the_card_variant_and_list_parameters(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    request = case_request(tmp_path, "500 mg/day cannot be built")
    assert main(["rules", "explain", *request, "--rules-dir", str(RULES)]) == 0
    out = capsys.readouterr().out
    assert "infusion-build 1.4.0: FIRED -> warning card (variant 5)" in out
    assert "bag_volumes = 100, 250, 50 mL" in out
    assert main(["rules", "explain", *request, "--rules-dir", str(RULES), "--json"]) == 0
    report = orjson.loads(capsys.readouterr().out)
    (rule,) = [r for r in report["rules"] if r["id"] == "infusion-build"]
    assert (rule["card"], rule["variant"]) == ("warning", 4)


def test_explain_evaluates_as_of_now_given(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # The weight was measured shortly before the case's `now`; eight days later it is too old to use.
    request = case_request(tmp_path, "pounds")
    later = (datetime.fromisoformat(request[-1]) + timedelta(days=8)).isoformat()
    assert main(["rules", "explain", *request[:-1], later, "--rules-dir", str(RULES), "--json"]) == 0
    report = orjson.loads(capsys.readouterr().out)
    weight = next(f for r in report["rules"] for f in r["facts"] if f["name"] == "patient.weight")
    assert weight["value"] is None and "7 d" in weight["missing"], weight


def test_explain_shows_what_strict_validation_says_of_each_draft_order(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    request = case_request(tmp_path, "3000 mg/day is above")
    body = orjson.loads(Path(request[0]).read_bytes())
    (order,) = body["context"]["draftOrders"]["entry"]
    del order["resource"]["intent"]  # as the CDS Hooks sandbox sends them
    Path(request[0]).write_bytes(orjson.dumps(body))
    assert main(["rules", "explain", *request, "--rules-dir", str(RULES)]) == 0
    out = capsys.readouterr().out
    line = next(
        line for line in out.splitlines() if line.startswith(f"  MedicationRequest/{order['resource']['id']}")
    )
    assert "intent" in line
    assert "max-dose 1.3.0: FIRED" in out  # read leniently all the same
    assert main(["rules", "explain", *request, "--rules-dir", str(RULES), "--json"]) == 0
    (shown,) = orjson.loads(capsys.readouterr().out)["draft_orders"]
    assert shown["order"] == f"MedicationRequest/{order['resource']['id']}"
    assert any("intent" in note for note in shown["validation_notes"])
