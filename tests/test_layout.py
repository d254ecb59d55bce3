"""The engine knows nothing about the drug: clinical knowledge lives in rules/, never in cds_service/."""

from __future__ import annotations

import re

from tests.conftest import ROOT

# The drug, its brand, the protocol's numbers and its lab codes belong in rule files.
CLINICAL = re.compile(r"anakinra|kineret|\b2276-4\b|\b29463-7\b|\b72435\b", re.IGNORECASE)


def test_no_python_module_names_the_drug_or_its_codes() -> None:
    offenders = []
    for path in sorted((ROOT / "cds_service").rglob("*.py")):
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            code = line.split("#", 1)[0]
            if CLINICAL.search(code) and "e.g." not in code:
                offenders.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert not offenders, "\n".join(offenders)
