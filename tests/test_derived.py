"""`cds-service rules regen`: one command brings every file generated from rules/ up to date."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from cds_service.cli import main
from cds_service.derived import REGEN_COMMAND, derived_files
from tests.conftest import ROOT, RULES
from tests.engine.rulesdir import edit

TITLE = "title: Maximum anakinra dose"


def test_every_committed_generated_file_is_current() -> None:
    stale = [str(d.path) for d in derived_files(RULES) if not d.is_current(ROOT)]
    assert stale == [], f"out of date: {', '.join(stale)}; run `{REGEN_COMMAND}` and commit the result"


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    """A repository's top directory: rules/, the fixtures its cases read, and the generated files."""
    shutil.copytree(RULES, tmp_path / "rules")
    (tmp_path / "fhir_fixtures").symlink_to(ROOT / "fhir_fixtures")
    for item in derived_files(RULES):
        (tmp_path / item.path).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / item.path, tmp_path / item.path)
    return tmp_path


def _regen(checkout: Path, *flags: str) -> int:
    return main(["rules", "regen", str(checkout / "rules"), "--root", str(checkout), *flags])


def test_a_rule_change_makes_the_docs_and_configmap_stale_and_regen_writes_them(
    checkout: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _regen(checkout, "--check") == 0
    capsys.readouterr()
    edit(checkout / "rules" / "max-dose.yaml", TITLE, "title: Highest anakinra dose")
    before = {p: p.read_bytes() for p in checkout.rglob("*") if p.is_file() and "rules" not in p.parts}

    assert _regen(checkout, "--check") == 1
    report = capsys.readouterr().err
    assert "docs/rules.md: out of date" in report
    assert "deploy/kubernetes/rules-configmap.yaml: out of date" in report
    assert "docs/rule-file.schema.json: up to date" in report
    assert {p: p.read_bytes() for p in before} == before  # --check writes nothing

    assert _regen(checkout) == 0
    assert "docs/rules.md: written" in capsys.readouterr().err
    assert "Highest anakinra dose" in (checkout / "docs" / "rules.md").read_text()
    assert (
        "Highest anakinra dose" in (checkout / "deploy" / "kubernetes" / "rules-configmap.yaml").read_text()
    )
    assert all(d.is_current(checkout) for d in derived_files(checkout / "rules"))
    assert _regen(checkout, "--check") == 0


def test_regen_writes_nothing_for_rules_that_do_not_lint(
    checkout: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rule = checkout / "rules" / "max-dose.yaml"
    edit(rule, "fact: order.daily_dose", "fact: order.daily_dos")
    docs = (checkout / "docs" / "rules.md").read_bytes()
    assert _regen(checkout) == 2
    assert f"{rule}:" in capsys.readouterr().err
    assert (checkout / "docs" / "rules.md").read_bytes() == docs


def test_regen_says_where_to_run_it(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["rules", "regen", str(RULES), "--root", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "has no docs/" in err and "top directory" in err
    assert list(tmp_path.iterdir()) == []
