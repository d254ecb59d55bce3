"""The hlh calculation as the service configures it (rules/hlh-2004.yaml), computed over FHIR resources:
shared by the tests of its HLH-2004, HScore and MAS 2016 facts."""

from __future__ import annotations

from typing import Any

from cds_service.clinical.base import Params
from cds_service.clinical.hlh2004.facts import Hlh, HlhSettings
from cds_service.facts.named import Fact
from cds_service.ruleformat.rulefile import Parameter, RuleFile
from cds_service.yamlfile import load_yaml
from tests.conftest import RULES
from tests.facts.support import SNOMED, catalog, facts_of, make_facts, observation, resource

LOCAL = "https://lab.example.test/codes"


def rule() -> RuleFile:
    return RuleFile.model_validate(load_yaml(RULES / "hlh-2004.yaml").data)


def settings(**overrides: Any) -> HlhSettings:
    spec = rule()
    parameters = dict(spec.parameters)
    for name, value in overrides.items():
        parameters[name] = Parameter(value=value, source="test")
    return Hlh().configure(Params(spec.id, parameters, catalog()), catalog(), {})


def compute(*resources: Any, configured: HlhSettings | None = None) -> dict[str, Fact]:
    facts = make_facts(resources)
    named = facts_of(resources)
    return (configured or settings()).compute(named, facts)


def patient(birth: str | None = "1980-05-01") -> Any:
    fields: dict[str, Any] = {"resourceType": "Patient", "id": "p1", "gender": "female"}
    if birth:
        fields["birthDate"] = birth
    return resource(**fields)


def condition(ident: str, code: str, verification: str = "confirmed") -> Any:
    fields: dict[str, Any] = {
        "resourceType": "Condition",
        "id": ident,
        "code": {"coding": [{"system": SNOMED, "code": code}]},
        "verificationStatus": {"coding": [{"code": verification}]},
    }
    if verification != "refuted":
        fields["clinicalStatus"] = {"coding": [{"code": "active"}]}
    return resource(**fields)


def flagged(ident: str, code: str, value: float | None, unit: str | None, *flags: str, **extra: Any) -> Any:
    interpretation = [{"coding": [{"code": flag}]} for flag in flags]
    return observation(ident, code, value, unit, interpretation=interpretation or None, **extra)


def full_workup() -> list[Any]:
    """Six criteria met (US units); NK activity and hemophagocytosis not measured."""
    return [
        patient(),
        observation("t1", "8310-5", 39.7, "Cel"),
        observation("hb1", "718-7", 7.9, "g/dL"),
        observation("plt1", "777-3", 42, "10*9/L"),
        observation("anc1", "751-8", 0.6, "10*9/L"),
        observation("wbc1", "6690-2", 1.6, "10*9/L"),
        observation("tg1", "2571-8", 412, "mg/dL"),
        observation("fib1", "3255-7", 118, "mg/dL"),
        observation("fer1", "2276-4", 18500, "ug/L"),
        observation("cd25", "76039-7", 8200, "[U]/mL"),
        observation("ast1", "1920-8", 186, "U/L"),
        condition("spleen", "16294009"),
    ]
