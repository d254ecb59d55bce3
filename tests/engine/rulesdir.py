"""A private copy of rules/ that a test may edit (reload and lint tests)."""

from __future__ import annotations

import shutil
from pathlib import Path

from tests.conftest import ROOT, RULES


def copy_rules(tmp_path: Path) -> Path:
    """rules/ copied to tmp_path/rules, with fhir_fixtures beside it so case files find their patients."""
    target = tmp_path / "rules"
    shutil.copytree(RULES, target)
    fixtures = tmp_path / "fhir_fixtures"
    if not fixtures.exists():
        fixtures.symlink_to(ROOT / "fhir_fixtures")
    return target


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
