"""`cds-service rules test`: cases beside the rules, a line per case, a readable failure, exit codes."""

from __future__ import annotations

from pathlib import Path

import pytest

from cds_service.cases import load_cases
from cds_service.cli import main
from cds_service.yamlfile import FileProblems
from tests.conftest import RULES
from tests.engine.rulesdir import copy_rules, edit


def test_every_rule_has_cases() -> None:
    covered = {c.path.name.removesuffix(".cases.yaml") for c in load_cases(RULES)}
    rules = {p.stem for p in RULES.glob("*.yaml") if p.name != "ruleset.yaml" and ".cases." not in p.name}
    assert rules <= covered, f"rules without cases: {sorted(rules - covered)}"


def test_rules_test_passes_and_prints_a_line_per_case(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["rules", "test", str(RULES)]) == 0
    out = capsys.readouterr()
    lines = [line for line in out.out.splitlines() if line.startswith(("PASS", "FAIL"))]
    assert len(lines) == len(load_cases(RULES))
    assert all(line.startswith("PASS") for line in lines)
    assert f"{len(lines)} passed, 0 failed" in out.err


def test_a_wrong_expectation_fails_loudly_with_a_diff(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rules = copy_rules(tmp_path)
    cases = rules / "max-dose.cases.yaml"
    edit(cases, 'summary_contains: ["3000 mg/day", "2400 mg/day"]', 'summary_contains: ["3100 mg/day"]')
    edit(cases, "order.daily_dose: {value: 3000, unit: mg/d}", "order.daily_dose: {value: 3100, unit: mg/d}")
    assert main(["rules", "test", str(rules)]) == 1
    out = capsys.readouterr().out
    assert "FAIL max-dose.cases.yaml: 3000 mg/day is above the 2400 mg/day maximum" in out
    assert f"at {cases}:" in out
    assert "summary lacks '3100 mg/day'" in out
    assert "fact order.daily_dose: expected 3100 mg/d, got 3000" in out


def test_no_card_expectations_fail_when_the_rule_speaks(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rules = copy_rules(tmp_path)
    edit(rules / "max-dose.yaml", "    value: 2400\n    unit: mg/d", "    value: 1000\n    unit: mg/d")
    assert main(["rules", "test", str(rules), "-k", "exactly 2.0"]) == 1
    out = capsys.readouterr().out
    assert "expected no card from max-dose" in out
    assert "expected max-dose not-fired, got fired" in out


def test_a_malformed_case_file_is_reported_at_its_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rules = copy_rules(tmp_path)
    cases = rules / "max-dose.cases.yaml"
    edit(
        cases,
        "patient: ../fhir_fixtures/patients/sparse.json",
        "patient: ../fhir_fixtures/patients/nobody.json",
    )
    with pytest.raises(FileProblems) as caught:
        load_cases(rules)
    (problem,) = caught.value.problems
    assert problem.path == cases and "no such file" in problem.message
    assert "nobody.json" in cases.read_text().splitlines()[problem.line - 1]
    assert main(["rules", "test", str(rules)]) == 2
    assert "nobody.json" in capsys.readouterr().err


def test_rules_test_now_is_the_time_of_cases_without_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rules = copy_rules(tmp_path)
    cases = rules / "max-dose.cases.yaml"
    # The weight in pounds was measured days before this case's own now; after 7 days it is too old.
    patient = "    patient: ../fhir_fixtures/patients/si-units-male.json"
    edit(cases, "    now: 2026-11-20T12:00:00Z\n" + patient, patient)
    only = ["-k", "pounds"]
    assert main(["rules", "test", str(rules), *only]) == 1
    assert "no `now`: give the case one" in capsys.readouterr().out
    assert main(["rules", "test", str(rules), *only, "--now", "2026-11-20T12:00:00Z"]) == 0
    assert main(["rules", "test", str(rules), *only, "--now", "2026-12-20T12:00:00Z"]) == 1
    assert "patient.weight" in capsys.readouterr().out
    # A case's own now wins over --now (this one's weight is a day old at its now, years old in 2030).
    assert main(["rules", "test", str(RULES), "-k", "exactly 2.0", "--now", "2030-01-01T00:00:00Z"]) == 0
