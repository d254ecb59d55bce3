"""`cds-service rules lint` checks the case files too: each class of mistake at its file:line, exit 1."""

from __future__ import annotations

from pathlib import Path

import pytest

from cds_service.cli import main
from cds_service.lint import lint_rules
from tests.engine.rulesdir import copy_rules, edit

FIRST_CASE = "  - name: 3000 mg/day is above the 2400 mg/day maximum\n    service: anakinra-order-sign\n"


@pytest.fixture
def rules(tmp_path: Path) -> Path:
    return copy_rules(tmp_path)


@pytest.fixture
def cases(rules: Path) -> Path:
    return rules / "max-dose.cases.yaml"


def line_of(path: Path, text: str, after: int = 0) -> int:
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if number > after and text in line:
            return number
    raise AssertionError(f"{text!r} not in {path}")


def lint(rules: Path, capsys: pytest.CaptureFixture[str]) -> list[str]:
    """Run `rules lint`; it must fail; the error lines it printed."""
    assert main(["rules", "lint", str(rules)]) == 1
    out = capsys.readouterr()
    errors = [line for line in out.out.splitlines() if ": warning: " not in line]
    assert f"{len(errors)} error(s)" in out.err
    return errors


def test_the_shipped_cases_lint_clean(rules: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert [p for p in lint_rules(rules) if p.severity == "error"] == []
    assert main(["rules", "lint", str(rules)]) == 0
    assert "0 error(s)" in capsys.readouterr().err


def test_a_case_file_that_is_not_yaml(cases: Path, rules: Path, capsys: pytest.CaptureFixture[str]) -> None:
    edit(cases, 'summary_contains: ["3000 mg/day", "2400 mg/day"]', 'summary_contains: ["3000 mg/day"')
    (error,) = lint(rules, capsys)
    assert error.startswith(f"{cases}:") and ": YAML: " in error
    line = int(error.split(":")[1])
    assert line_of(cases, 'summary_contains: ["3000 mg/day"') <= line <= line_of(cases, "detail_contains") + 1


def test_an_unknown_key(cases: Path, rules: Path, capsys: pytest.CaptureFixture[str]) -> None:
    edit(cases, FIRST_CASE, FIRST_CASE + "    colour: red\n")
    assert lint(rules, capsys) == [
        f"{cases}:{line_of(cases, 'colour: red')}: cases.0.colour: Extra inputs are not permitted"
    ]


def test_a_value_of_the_wrong_type(cases: Path, rules: Path, capsys: pytest.CaptureFixture[str]) -> None:
    edit(
        cases, "          indicator: warning\n", "          indicator: warning\n          suggestions: two\n"
    )
    (error,) = lint(rules, capsys)
    assert error.startswith(
        f"{cases}:{line_of(cases, 'suggestions: two')}: cases.0.expect.cards.0.suggestions:"
    )
    assert "integer" in error


def test_a_time_without_a_zone(cases: Path, rules: Path, capsys: pytest.CaptureFixture[str]) -> None:
    edit(cases, "now: 2026-11-23T12:00:00Z", "now: 2026-11-23T12:00:00")
    (error,) = lint(rules, capsys)
    assert error.startswith(f"{cases}:") and "time zone" in error


def test_a_missing_fixture_file(cases: Path, rules: Path, capsys: pytest.CaptureFixture[str]) -> None:
    edit(
        cases,
        "patient: ../fhir_fixtures/patients/sparse.json",
        "patient: ../fhir_fixtures/patients/nobody.json",
    )
    assert lint(rules, capsys) == [
        f"{cases}:{line_of(cases, 'nobody.json')}: no such file: ../fhir_fixtures/patients/nobody.json"
    ]


def test_an_unknown_rule_in_each_place_a_case_names_one(
    cases: Path, rules: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    edit(
        cases,
        "        - rule: max-dose\n          indicator: warning",
        "        - rule: max-dos\n          indicator: warning",
    )
    edit(cases, "no_cards: [max-dose]", "no_cards: [maxdose]")
    edit(cases, "outcomes: {max-dose: unknown}", "outcomes: {max-dose-rate: unknown}")
    errors = lint(rules, capsys)
    assert errors == [
        (
            f"{cases}:{line_of(cases, 'rule: max-dos')}: cases.0.expect.cards.0.rule: unknown rule 'max-dos'; "
            "did you mean 'max-dose'?"
        ),
        (
            f"{cases}:{line_of(cases, 'no_cards: [maxdose]')}: cases.1.expect.no_cards.0: unknown rule 'maxdose'; "
            "did you mean 'max-dose'?"
        ),
        (
            f"{cases}:{line_of(cases, 'max-dose-rate: unknown')}: cases.3.expect.outcomes.max-dose-rate: "
            "unknown rule 'max-dose-rate'; did you mean 'max-dose'?"
        ),
    ]


def test_an_unknown_service(cases: Path, rules: Path, capsys: pytest.CaptureFixture[str]) -> None:
    edit(cases, FIRST_CASE, FIRST_CASE.replace("anakinra-order-sign", "anakinra-order-sing"))
    (error,) = lint(rules, capsys)
    line = line_of(cases, "service: anakinra-order-sing")
    assert error.startswith(
        f"{cases}:{line}: cases.0.service: unknown service 'anakinra-order-sing' (known: "
    )


def test_a_rule_the_cases_service_does_not_run(
    cases: Path, rules: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    edit(cases, FIRST_CASE, FIRST_CASE.replace("anakinra-order-sign", "mas-patient-view"))
    errors = lint(rules, capsys)
    assert errors[0] == (
        f"{cases}:{line_of(cases, '- rule: max-dose')}: cases.0.expect.cards.0.rule: rule 'max-dose' does not "
        "run in service 'mas-patient-view' (it runs in anakinra-order-sign, anakinra-order-select)"
    )


def test_an_unknown_fact(cases: Path, rules: Path, capsys: pytest.CaptureFixture[str]) -> None:
    edit(
        cases,
        "        patient.weight: {value: 67.9, unit: kg}",
        "        patient.wieght: {value: 67.9, unit: kg}",
    )
    assert lint(rules, capsys) == [
        (
            f"{cases}:{line_of(cases, 'patient.wieght')}: cases.0.expect.facts.patient.wieght: unknown fact "
            "'patient.wieght'; did you mean 'patient.weight'?"
        )
    ]


def test_a_rule_with_errors_is_still_known_to_its_cases(
    rules: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rule = rules / "max-dose.yaml"
    edit(rule, "fact: order.daily_dose", "fact: order.daily_dos")
    errors = lint(rules, capsys)
    assert errors and all(e.startswith(f"{rule}:") for e in errors), errors


def test_configmap_refuses_cases_that_do_not_lint(
    cases: Path, rules: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    edit(cases, FIRST_CASE, FIRST_CASE + "    colour: red\n")
    assert main(["rules", "configmap", str(rules), "--out", str(tmp_path / "out")]) == 2
    assert "colour" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
