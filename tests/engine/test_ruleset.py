"""Loading = linting: every error with file:line, never a half-loaded ruleset."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from cds_service.cli import main
from cds_service.engine.durable import DurableRules
from cds_service.engine.ruleset import RULESET_KEY, check_rules, load_ruleset, ruleset_hash
from cds_service.yamlfile import FileProblems
from tests.conftest import RULES
from tests.engine.rulesdir import copy_rules, edit


@pytest.fixture
def durable() -> Iterator[DurableRules]:
    rules = DurableRules()
    yield rules
    rules.close()


@pytest.fixture
def rules_copy(tmp_path: Path) -> Path:
    return copy_rules(tmp_path)


def errors(folder: Path) -> list[str]:
    return [str(p) for p in check_rules(folder) if p.severity == "error"]


def line_of(path: Path, text: str) -> int:
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if text in line:
            return number
    raise AssertionError(f"{text!r} not in {path}")


def test_the_shipped_rules_lint_clean_and_load(durable: DurableRules) -> None:
    assert errors(RULES) == []
    ruleset = load_ruleset(RULES, durable)
    assert "max-dose" in ruleset.rules
    assert ruleset.hash == ruleset_hash(RULES)
    assert set(ruleset.by_service) == {s.id for s in ruleset.services}
    ruleset.release(durable)


def test_discovery_shows_the_ruleset_name_version_and_hash(durable: DurableRules) -> None:
    ruleset = load_ruleset(RULES, durable)
    services = orjson.loads(ruleset.services.discovery_body)["services"]
    assert services
    for entry in services:
        assert entry["extension"][RULESET_KEY] == {
            "name": ruleset.name,
            "version": ruleset.version,
            "hash": ruleset.hash,
        }
    ruleset.release(durable)


def test_the_hash_ignores_test_cases_but_not_rules(rules_copy: Path) -> None:
    before = ruleset_hash(rules_copy)
    edit(rules_copy / "max-dose.cases.yaml", "cases:", "# a comment\ncases:")
    assert ruleset_hash(rules_copy) == before
    edit(rules_copy / "max-dose.yaml", "title: Maximum anakinra dose", "title: Maximum dose")
    assert ruleset_hash(rules_copy) != before


@pytest.mark.parametrize(
    ("old", "new", "anchor", "message"),
    [
        ("\nwhen:", "\nwhenn:", "whenn:", "whenn: Extra inputs are not permitted"),
        (
            "fact: order.daily_dose",
            "fact: order.daily_dos",
            "order.daily_dos",
            "did you mean 'order.daily_dose'",
        ),
        ("unit: mg/d\n", "unit: mmol/L\n", "fact: order.daily_dose", "does not convert"),
        ("unit: mg/d\n", "unit: mg/dayz\n", "max_daily_dose:", "not a UCUM unit"),
        (
            "  max_dose_rate:\n    value: 2\n    unit: mg/kg/h\n    source: >-",
            "  max_dose_rate:\n    value: 2\n    unit: mg/kg/h\n    description: >-",
            "max_dose_rate:",
            "source: Field required",
        ),
        (
            'op: ">"\n          param: max_daily_dose',
            'op: ">"\n          value: 2400',
            "fact: order.daily_dose",
            "compare it with a parameter",
        ),
        (
            "services: [anakinra-order-sign, anakinra-order-select]",
            "services: [anakinra-order-sign, no-such-service]",
            "services:",
            "unknown service 'no-such-service'",
        ),
        (
            "{order.daily_dose} mg/day is above",
            "{order.daily_dose} mg/day and {order.daily_dose.missing} is above",
            "{order.daily_dose.missing} is above",
            "summary can reach",
        ),
        (
            "the {param.max_daily_dose} mg/day maximum",
            "the {param.max_daly_dose} mg/day maximum",
            "{param.max_daly_dose} mg/day maximum",
            "unknown parameter 'max_daly_dose'",
        ),
        ("id: max-dose", "id: Max Dose", "id:", "String should match pattern"),
    ],
)
def test_each_broken_rule_is_reported_at_its_line(
    rules_copy: Path, old: str, new: str, anchor: str, message: str
) -> None:
    path = rules_copy / "max-dose.yaml"
    edit(path, old, new)
    found = errors(rules_copy)
    expected_prefix = f"{path}:{line_of(path, anchor)}: "
    assert any(p.startswith(expected_prefix) and message in p for p in found), found


def test_a_yaml_syntax_error_names_its_line(rules_copy: Path) -> None:
    path = rules_copy / "max-dose.yaml"
    edit(path, "title: Maximum anakinra dose", "title: [unclosed")
    found = errors(rules_copy)
    assert len(found) == 1 and found[0].startswith(f"{path}:"), found
    assert "YAML" in found[0]


def test_duplicate_rule_ids_are_an_error(rules_copy: Path) -> None:
    shutil.copy(rules_copy / "max-dose.yaml", rules_copy / "max-dose-copy.yaml")
    found = errors(rules_copy)
    assert any("duplicate rule id 'max-dose'" in p for p in found), found


def test_an_unknown_suggestion_action_is_an_error(rules_copy: Path) -> None:
    path = rules_copy / "max-dose.yaml"
    edit(
        path,
        "  overrideReasons:",
        "  suggestions:\n    - label: Do it\n      action: make-coffee\n  overrideReasons:",
    )
    found = errors(rules_copy)
    assert any(
        p.startswith(f"{path}:{line_of(path, 'make-coffee')}:") and "unknown action" in p for p in found
    )


def test_a_rule_without_unknown_handling_is_refused(rules_copy: Path) -> None:
    path = rules_copy / "max-dose.yaml"
    text = path.read_text()
    path.write_text(text[: text.index("\nunknown:")] + "\n")
    found = errors(rules_copy)
    assert any("unknown: Field required" in p for p in found), found


def test_load_raises_every_error_and_compiles_nothing(rules_copy: Path, durable: DurableRules) -> None:
    edit(rules_copy / "max-dose.yaml", "fact: order.daily_dose", "fact: order.nope")
    with pytest.raises(FileProblems) as caught:
        load_ruleset(rules_copy, durable)
    assert any("order.nope" in str(p) for p in caught.value.problems)


def test_rules_lint_prints_file_line_and_exits_nonzero(
    rules_copy: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["rules", "lint", str(rules_copy)]) == 0
    assert "0 error(s)" in capsys.readouterr().err
    path = rules_copy / "max-dose.yaml"
    edit(path, "fact: order.daily_dose", "fact: order.daily_dos")
    assert main(["rules", "lint", str(rules_copy)]) == 1
    out = capsys.readouterr()
    assert out.out.startswith(f"{path}:{line_of(path, 'order.daily_dos')}: unknown fact")
    assert "1 error(s)" in out.err


def test_serve_refuses_to_start_on_broken_rules(rules_copy: Path, capsys: pytest.CaptureFixture[str]) -> None:
    edit(rules_copy / "max-dose.yaml", "fact: order.daily_dose", "fact: order.daily_dos")
    assert main(["serve", "--rules-dir", str(rules_copy)]) == 2
    assert "order.daily_dos" in capsys.readouterr().err


def test_a_service_naming_an_unknown_medication_is_an_error(rules_copy: Path) -> None:
    path = rules_copy / "services" / "anakinra-order-sign.yaml"
    edit(path, "medication: anakinra", "medication: anakinrra")
    found = errors(rules_copy)
    assert any(p.startswith(f"{path}:{line_of(path, 'anakinrra')}:") and "'anakinrra'" in p for p in found), (
        found
    )


@pytest.mark.parametrize("basis", ["ideal", "adjusted"])
def test_every_renal_weight_basis_lints_clean(rules_copy: Path, basis: str) -> None:
    path = rules_copy / "renal-dose.yaml"
    edit(path, "  weight_basis:\n    value: actual\n", f"  weight_basis:\n    value: {basis}\n")
    assert errors(rules_copy) == []


def test_an_unknown_renal_weight_basis_is_a_lint_error_at_its_line(rules_copy: Path) -> None:
    path = rules_copy / "renal-dose.yaml"
    edit(path, "  weight_basis:\n    value: actual\n", "  weight_basis:\n    value: lean\n")
    found = errors(rules_copy)
    assert any(
        f"{path}:{line_of(path, 'weight_basis:')}" in p and "actual, ideal, adjusted" in p for p in found
    ), found
