"""The 2016 MAS classification facts of the hlh calculation (hlh.mas2016, .mas2016_status) from real named
facts, configured by rules/hlh-2004.yaml. The classification's arithmetic is tested in test_calculator.py."""

from __future__ import annotations

from tests.clinical.hlh2004.support import compute, full_workup, patient, settings
from tests.facts.support import observation, resource


def test_mas2016_classified_and_validated_only_for_sjia_or_aosd() -> None:
    out = compute(*full_workup())
    assert out["hlh.mas2016_status"].value == "classified"
    assert "Not validated for this population" in str(out["hlh.mas2016"].value)
    sjia = resource(
        resourceType="Condition",
        id="sjia",
        code={"coding": [{"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": "M08.20"}]},
        clinicalStatus={"coding": [{"code": "active"}]},
    )
    validated = compute(*full_workup(), sjia)
    assert "Not validated" not in str(validated["hlh.mas2016"].value)


def test_mas2016_not_classified_without_fever() -> None:
    out = compute(
        patient(),
        observation("t1", "8310-5", 37.2, "Cel"),
        observation("fer1", "2276-4", 5000, "ug/L"),
    )
    assert out["hlh.mas2016_status"].value == "not_classified"


def test_mas2016_is_worded_by_the_rule_file() -> None:
    configured = settings(
        mas_classified_text="MAS (2016 criteria)",
        mas_fever_item="T >={limit}",
        mas_item_text="{item}: {result}",
    )
    text = str(compute(*full_workup(), configured=configured)["hlh.mas2016"].value)
    assert text.startswith("MAS (2016 criteria) (")
    assert "T >=38 Cel: met; ferritin >684 ug/L: met" in text
