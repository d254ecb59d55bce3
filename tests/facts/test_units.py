"""UCUM conversions through the catalog: plain units, molar masses, offsets, arbitrary units, aliases, caches."""

from __future__ import annotations

from typing import Any

import pytest

from cds_service.facts import units as units_module
from cds_service.facts.units import NotConvertible, UnitError, Units, UnknownUnit, parse
from tests.facts.support import catalog


@pytest.mark.parametrize(
    ("value", "from_unit", "to_unit", "analyte", "expected"),
    [
        # creatinine via 113.12 g/mol: terminology.md "umol/L / 88.4"
        (1.0, "mg/dL", "umol/L", "creatinine", 88.4016973126),
        (353.6, "umol/L", "mg/dL", "creatinine", 3.9999232),  # terminology.md: 4.0 mg/dL = 353.6
        # triglycerides via 885.7 g/mol: terminology.md "mmol/L x 88.57"
        (3.0, "mmol/L", "mg/dL", "triglycerides", 265.71),
        (1.5, "mmol/L", "mg/dL", "triglycerides", 132.855),
        # hemoglobin monomer 16114 g/mol: 1 g/dL = 0.6206 mmol/L
        (9.0, "g/dL", "mmol/L", "hemoglobin", 5.58520541144),
        (90.0, "g/L", "g/dL", "hemoglobin", 9.0),
        (1.5, "g/L", "mg/dL", "fibrinogen", 150.0),
        (4.41, "umol/L", "mg/dL", "fibrinogen", 149.94),
        (150.0, "10*3/uL", "10*9/L", "platelets", 150.0),
        (150000.0, "/uL", "10*9/L", "platelets", 150.0),
        (101.3, "[degF]", "Cel", "temperature", 38.5),
        (0.8, "ukat/L", "U/L", "ast", 48.0),
        (684.0, "ng/mL", "ug/L", "ferritin", 684.0),
        # 1 ug/L = 2.247 pmol/L (the SI factor, through ferritin's molar mass of 445,000 g/mol)
        (2247.0, "pmol/L", "ug/L", "ferritin", 999.915),
        (183.6, "[lb_av]", "kg", "weight", 83.27955913),
        (72.0, "[in_i]", "cm", "height", 182.88),
    ],
)
def test_conversions(value: float, from_unit: str, to_unit: str, analyte: str, expected: float) -> None:
    assert catalog().convert(value, from_unit, to_unit, analyte) == pytest.approx(expected, rel=1e-5)


def test_inclusive_limits_survive_float_noise() -> None:
    # 2400 mg/d at 50 kg is 48 mg/kg/d: exactly 2 mg/kg/h, not 1.9999999999999998.
    assert catalog().convert(48, "mg/kg/d", "mg/kg/h") == 2.0
    assert catalog().convert(101.3, "[degF]", "Cel") == 38.5


def test_the_same_unit_is_returned_unchanged() -> None:
    assert catalog().convert(2.0, "mg/kg/h", "mg/kg/h") == 2.0


def test_mass_and_substance_need_a_molar_mass() -> None:
    with pytest.raises(NotConvertible, match="does not convert"):
        catalog().convert(3.0, "mmol/L", "mg/dL")
    with pytest.raises(NotConvertible):
        catalog().convert(3.0, "mmol/L", "mg/L", "crp")  # CRP has no molar mass


def test_scd25_arbitrary_units_compare_only_with_each_other() -> None:
    c = catalog()
    assert c.convert(2400, "U/mL", "[U]/mL", "scd25") == 2400
    assert c.convert(2400, "k[U]/L", "[U]/mL", "scd25") == 2400
    with pytest.raises(NotConvertible, match="arbitrary unit"):
        c.convert(858, "pg/mL", "[U]/mL", "scd25")
    assert c.convertible("U/mL", "scd25.worst")
    assert not c.convertible("pg/mL", "scd25.worst")


def test_unknown_units_are_named() -> None:
    with pytest.raises(UnknownUnit, match="'mg/dayz' is not a UCUM unit this service knows"):
        catalog().convert(1, "mg/dayz", "mg/d")
    with pytest.raises(UnitError):
        catalog().convert(1, "mg/dayz", "mg/dayz")
    # An arbitrary unit is a known unit for the linter's "is this a unit" check, but only itself.
    assert catalog().convert(1, "[U]/mL", "[U]/mL") == 1


@pytest.mark.parametrize(
    ("unit", "fact", "expected"),
    [
        ("mg/h", "order.daily_dose", True),
        ("mg/kg/d", "order.dose_rate_per_kg", True),
        ("mL", "order.daily_dose", False),
        ("mmol/L", "triglycerides.worst", True),
        ("mmol/L", "crp.worst", False),
        ("pmol/L", "ferritin.worst", True),
        ("[degF]", "temperature.worst", True),
        ("mg/d", "patient.sex", False),
        ("mg/d", "order.nope", False),
        ("mg/dayz", "order.daily_dose", False),
    ],
)
def test_convertible(unit: str, fact: str, expected: bool) -> None:
    assert catalog().convertible(unit, fact) is expected


def test_aliases_map_ehr_spellings_to_ucum() -> None:
    units = catalog().units
    assert units.ucum("K/uL") == "10*3/uL"
    assert units.ucum("x10E9/L") == "10*9/L"
    assert units.ucum("ng/ml") == "ng/mL"
    assert units.ucum("°C") == "Cel"
    assert units.ucum("°F") == "[degF]"
    assert units.ucum("IU/L") == "U/L"
    assert units.ucum(" mg/dL ") == "mg/dL"
    assert units.ucum("") is None
    assert units.ucum(None) is None


def test_without_the_alias_k_per_ul_would_be_kelvin() -> None:
    with pytest.raises(NotConvertible):
        Units({}).convert(150, "K/uL", "10*9/L")


def test_parsing_is_cached(monkeypatch: pytest.MonkeyPatch) -> None:
    registry = units_module._registry()
    calls: list[str] = []
    original = registry.from_ucum

    def counting(code: str) -> Any:
        calls.append(code)
        return original(code)

    monkeypatch.setattr(registry, "from_ucum", counting)
    code = "mg/(12.h)"  # used by no other test, so the first parse here is a real one
    first = parse(code)
    second = parse(code)
    assert calls == [code]
    assert first is second


def test_conversions_are_computed_once() -> None:
    units = catalog().units
    units.convert(1, "mg/dL", "mmol/L", 113.12)
    before = units_module._affine.cache_info().hits
    assert units.convert(2, "mg/dL", "mmol/L", 113.12) == pytest.approx(0.176803394625)
    assert units_module._affine.cache_info().hits == before + 1


def test_an_annotation_alone_does_not_convert_through_a_molar_mass_and_says_so() -> None:
    """Found by fuzzing: a hemoglobin in "{score}" (the analyte has a molar mass) raised pint's "different
    registries" ValueError (a 500): the unity was made in another pint registry than ucumvert's."""
    units = Units({})
    for code in ("{score}", "{a}.{b}", "{cells}"):
        with pytest.raises(NotConvertible, match="does not convert to g/dL"):
            units.convert(1.0, code, "g/dL", molar_mass=64458.0)
    assert units.convert(3.0, "{score}", "1") == 3.0


def _counting_parses(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    registry = units_module._registry()
    calls: list[str] = []
    original = registry.from_ucum

    def counting(code: str) -> Any:
        calls.append(code)
        return original(code)

    monkeypatch.setattr(registry, "from_ucum", counting)
    return calls


def test_a_code_that_is_not_ucum_is_parsed_once(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = _counting_parses(monkeypatch)
    code = "mg/dL.mg/dL?"  # used by no other test, so the first parse here is a real one
    for _ in range(100):
        with pytest.raises(UnknownUnit, match="is not a UCUM unit this service knows"):
            parse(code)
        with pytest.raises(UnknownUnit):
            Units({}).convert(1.0, code, "mg/dL")
    assert calls == [code]


def test_a_code_too_long_to_be_a_unit_is_refused_unparsed(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = _counting_parses(monkeypatch)
    longest = "mg/dL." * 10 + "mmol"  # 64 characters of valid UCUM: read
    assert len(longest) == units_module.MAX_CODE_LENGTH
    assert str(parse(longest).units) == "milligram ** 10 * millimole / deciliter ** 10"
    code = ("mg/dL." * 167)[:1000]
    with pytest.raises(UnknownUnit) as refused:
        parse(code)
    assert calls == [longest]
    # Named by its start, not echoed whole into every fact and card that mentions it.
    assert str(refused.value) == (
        f"unit '{code[:40]}…' is 1,000 characters long; units longer than 64 are not read"
    )


def test_the_parse_cache_is_bounded() -> None:
    assert units_module._parsed.cache_info().maxsize == units_module.PARSE_CACHE_SIZE
