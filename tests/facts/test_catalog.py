"""The fact catalog: rules/facts/*.yaml loads, every spec is produced, and broken files say file:line."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest

from cds_service.facts.catalog import load_catalog
from cds_service.facts.derive import named_facts
from cds_service.facts.units import UnitError, Units
from cds_service.yamlfile import FileProblems
from tests.conftest import ROOT, RULES
from tests.facts.support import catalog, facts_of, fixture, make_facts


def test_every_spec_is_produced_and_nothing_else() -> None:
    specs = catalog().specs
    for facts in (facts_of(fixture("mas-adult-female")), facts_of(), facts_of(medication=None)):
        assert set(facts) == set(specs)
        assert all(f.name == name for name, f in facts.items())
        # A fact is either a value or a reason, never neither.
        assert all((f.value is None) == (f.missing is not None) for f in facts.values())
    # No fact falls through to derive.py's safety net.
    assert not any("no reader" in (f.missing or "") for f in facts_of().values())


def test_values_match_their_specs() -> None:
    specs = catalog().specs
    for name, fact in facts_of(fixture("mas-adult-female")).items():
        spec = specs[name]
        if fact.value is None:
            continue
        if spec.kind == "quantity":
            assert isinstance(fact.value, int | float) and not isinstance(fact.value, bool), name
            assert fact.unit == spec.unit, name
        elif spec.kind == "count":
            assert isinstance(fact.value, int) and not isinstance(fact.value, bool), name
        elif spec.kind == "boolean":
            assert isinstance(fact.value, bool), name
        else:
            assert isinstance(fact.value, str), name
            assert not spec.values or fact.value in spec.values, name


def test_spec_units_are_ucum_or_declared_arbitrary() -> None:
    arbitrary = {u for a in catalog().analytes.values() for u in a.same_unit}
    for spec in catalog().specs.values():
        assert (spec.unit is not None) == (spec.kind == "quantity"), spec.name
        if spec.unit is not None:
            Units.check(spec.unit, arbitrary)
        assert spec.description


def test_the_catalog_knows_the_seed_codes() -> None:
    c = catalog()
    assert "http://loinc.org|2276-4" in c.analytes["ferritin"].codes
    assert {"http://loinc.org|2160-0", "http://loinc.org|14682-9"} <= set(c.analytes["creatinine"].codes)
    assert c.analytes["weight"].window.days == 7
    assert c.analytes["ferritin"].window.days == 14
    assert c.medications.timing_codes["Q8H"] == 8
    assert c.microbiology.findings["gram_negative_blood"].window.days == 7


def test_facts_source_never_names_a_drug() -> None:
    for path in (ROOT / "cds_service" / "facts").glob("*.py"):
        assert "anakinra" not in path.read_text(encoding="utf-8").lower(), path


def test_named_facts_is_fast() -> None:
    c, facts = catalog(), make_facts(fixture("mas-adult-female"))
    named_facts(c, facts, "anakinra")
    best = min(_timed(lambda: named_facts(c, facts, "anakinra")) for _ in range(20))
    assert best < 0.005  # measured ~0.4 ms; a generous bound that only a regression breaks


def _timed(call: object) -> float:
    start = time.perf_counter()
    call()  # type: ignore[operator]
    return time.perf_counter() - start


# --- broken files -----------------------------------------------------------------------------------


@pytest.fixture
def rules(tmp_path: Path) -> Path:
    shutil.copytree(RULES / "facts", tmp_path / "facts")
    return tmp_path


def edit(path: Path, old: str, new: str) -> int:
    """Replace the first `old`; return the 1-based line where the replacement starts."""
    text = path.read_text(encoding="utf-8")
    assert old in text, old
    at = text.index(old)
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    return text.count("\n", 0, at) + 1 + new[: len(new) - len(new.lstrip("\n"))].count("\n")


def problems(rules: Path) -> list[str]:
    with pytest.raises(FileProblems) as caught:
        load_catalog(rules)
    return [str(p) for p in caught.value.problems]


@pytest.mark.parametrize(
    ("file", "old", "new", "message"),
    [
        (
            "analytes.yaml",
            "    worst: max\n",
            "    worst: highest\n",
            "worst: Input should be 'max' or 'min'",
        ),
        ("analytes.yaml", "    label: ferritin\n", "    label: ferritin\n    colour: red\n", "Extra inputs"),
        ("analytes.yaml", "    unit: ug/L\n", "    unit: ug/Lx\n", "'ug/Lx' is not a UCUM unit"),
        ("analytes.yaml", "      unit: g/mol\n", "      unit: mg\n", "a molar mass is in g/mol"),
        (
            "analytes.yaml",
            "      product_of: [wbc, neutrophil_percent]",
            "      product_of: [wbc, neutrophils]",
            "unknown analyte 'neutrophils'",
        ),
        ("analytes.yaml", "  value: 14\n  unit: d\n", "  value: 14\n  unit: mg\n", "a duration is needed"),
        ("analytes.yaml", '      "http://loinc.org|2276-4"', '      "2276-4"', "String should match pattern"),
        ("patient.yaml", "  analyte: weight", "  analyte: height", "'height' is in cm, not a mass"),
        (
            "medications.yaml",
            "  Q8H: {value: 8, unit: h,",
            "  Q8H: {value: 8, unit: mL,",
            "a duration is needed",
        ),
        (
            "medications.yaml",
            "    dose_unit:\n      unit: mg\n",
            "    dose_unit:\n      unit: mL\n",
            "not an amount",
        ),
        (
            "medications.yaml",
            "    dose_unit:\n      unit: mg\n",
            "    dose_unit:\n      unit: mgg\n",
            "not a UCUM unit",
        ),
        (
            "medications.yaml",
            '    dose_unit:\n      unit: mg\n      source: "[project',
            '    dose_unit:\n      unit: g\n      source: "[project',
            "dose unit g differs from mg",
        ),
        (
            "conditions.yaml",
            "    resource: Procedure\n",
            "    resource: Observation\n",
            "'Condition', 'Procedure' or 'Encounter'",
        ),
        ("units.yaml", "  - ucum: 10*3/uL\n", "  - ucum: 10*3/uLL\n", "'10*3/uLL' is not a UCUM unit"),
        (
            "microbiology.yaml",
            "    label: gram-negative organism in blood\n",
            "    label: [unclosed\n",
            "YAML",
        ),
    ],
)
def test_a_broken_file_says_where(rules: Path, file: str, old: str, new: str, message: str) -> None:
    path = rules / "facts" / file
    line = edit(path, old, new)
    found = problems(rules)
    assert any(p.startswith(f"{path}:") and message in p for p in found), found
    located = [p for p in found if message in p]
    assert any(f"{path}:{n}:" in p for p in located for n in range(line, line + 2)), (line, located)


def test_a_medication_without_a_dose_unit_says_where(rules: Path) -> None:
    path = rules / "facts" / "medications.yaml"
    text = path.read_text(encoding="utf-8")
    start = text.index("    dose_unit:\n      unit: mg\n")
    end = text.index("    codes:", start)
    line = text.count("\n", 0, text.index("  anakinra:\n")) + 1
    path.write_text(text[:start] + text[end:], encoding="utf-8")
    found = problems(rules)
    assert any(p.startswith(f"{path}:{line}:") and "dose_unit" in p for p in found), (line, found)


def test_order_facts_are_in_the_dose_unit(rules: Path) -> None:
    """Dosed in g, the order facts are in g, g/d, g/mL, g/kg/h: the engine assumes no mg."""
    path = rules / "facts" / "medications.yaml"
    path.write_text(
        path.read_text(encoding="utf-8").replace("      unit: mg\n", "      unit: g\n"), encoding="utf-8"
    )
    specs = load_catalog(rules).specs
    assert specs["order.daily_dose"].unit == "g/d"
    assert specs["order.dose_per_bag"].unit == "g"
    assert specs["order.concentration"].unit == "g/mL"
    assert specs["order.dose_rate_per_kg"].unit == "g/kg/h"
    assert specs["medications.anakinra.daily_dose"].unit == "g/d"


@pytest.mark.parametrize("resource", ["Procedure", "Encounter"])
def test_a_procedure_or_encounter_set_needs_a_window(rules: Path, resource: str) -> None:
    path = rules / "facts" / "conditions.yaml"
    text = path.read_text(encoding="utf-8")
    start = text.rindex(f"    resource: {resource}\n")  # one that reuses the window, not defines it
    window = text.index("    window:", start)
    path.write_text(text[:window] + text[text.index("    sources:", window) :], encoding="utf-8")
    found = problems(rules)
    assert any("conditions.yaml" in p and f"a {resource} set needs a window" in p for p in found), found


def test_a_missing_source_is_an_error(rules: Path) -> None:
    path = rules / "facts" / "analytes.yaml"
    text = path.read_text(encoding="utf-8")
    path.write_text(
        text.replace(
            "      value: 113.12\n      unit: g/mol\n      source: >-",
            "      value: 113.12\n      unit: g/mol\n      note: >-",
        ),
        encoding="utf-8",
    )
    assert any("molar_mass.source: Field required" in p for p in problems(rules))


def test_every_problem_is_reported_at_once(rules: Path) -> None:
    edit(rules / "facts" / "analytes.yaml", "    unit: ug/L\n", "    unit: ug/Lx\n")
    edit(rules / "facts" / "medications.yaml", "    label: anakinra\n", "    label: anakinra\n    extra: 1\n")
    (rules / "facts" / "units.yaml").unlink()
    (rules / "facts" / "notes.yaml").write_text("a: 1\n", encoding="utf-8")
    found = problems(rules)
    assert any("medications.yaml" in p and "Extra inputs" in p for p in found)
    assert any("units.yaml:1: missing" in p for p in found)
    assert any("notes.yaml:1: unknown facts file" in p for p in found)
    # Meaning checks run only on files that validate; the schema errors come first.
    assert len(found) >= 3


def test_a_catalog_error_is_a_unit_error() -> None:
    with pytest.raises(UnitError):
        catalog().convert(1, "kg", "mg/d")
