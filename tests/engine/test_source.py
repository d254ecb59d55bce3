"""The source hash a reload compares: the rules, their cases and the fixtures the cases read."""

from __future__ import annotations

import shutil
from pathlib import Path

from cds_service.engine.ruleset import ruleset_hash
from cds_service.engine.source import SourceHash, fixture_names
from tests.conftest import ROOT, RULES
from tests.engine.rulesdir import edit


def _tree(tmp_path: Path) -> Path:
    rules = tmp_path / "rules"
    shutil.copytree(RULES, rules)
    shutil.copytree(ROOT / "fhir_fixtures", tmp_path / "fhir_fixtures")
    return rules


def test_a_case_change_changes_the_source_but_not_the_ruleset_hash(tmp_path: Path) -> None:
    rules = _tree(tmp_path)
    source = SourceHash(rules)
    before, cards_before = source(), ruleset_hash(rules)
    edit(rules / "max-dose.cases.yaml", "- name: 3000 mg/day", "- name: three grams a day")
    assert source() != before
    assert ruleset_hash(rules) == cards_before


def test_a_fixture_a_case_names_is_part_of_the_source(tmp_path: Path) -> None:
    rules = _tree(tmp_path)
    source = SourceHash(rules)
    before = source()
    named = tmp_path / "fhir_fixtures" / "patients" / "mas-adult-female.json"
    unnamed = tmp_path / "fhir_fixtures" / "not-named-by-any-case.json"
    unnamed.write_text("{}")
    assert source() == before  # a file no case reads is not the rules' business
    original = named.read_bytes()
    named.write_bytes(original + b"\n")
    assert source() != before
    named.write_bytes(original)
    assert source() == before
    named.unlink()
    assert source() != before  # a missing fixture is a state of its own, and coming back is a change


def test_a_case_file_that_does_not_parse_still_hashes(tmp_path: Path) -> None:
    rules = _tree(tmp_path)
    source = SourceHash(rules)
    before = source()
    (rules / "max-dose.cases.yaml").write_text("cases: [\n")
    assert source() != before


def test_fixture_names_are_read_without_validating_the_cases() -> None:
    content = b"""
cases:
  - {name: a, patient: ../fhir_fixtures/patients/x.json}
  - {name: b, request: ./../fhir_fixtures/requests/y.json, patient: 3}
  - not a case
"""
    assert fixture_names(content) == ("../fhir_fixtures/patients/x.json", "../fhir_fixtures/requests/y.json")
    assert fixture_names(b"cases: [") == ()
    assert fixture_names(b"- just a list") == ()
