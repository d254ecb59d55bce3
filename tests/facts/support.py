"""Shared helpers for the named-facts tests: the real catalog, fixture patients, Facts built as the service
builds them (build_facts, so observation hygiene applies)."""

from __future__ import annotations

import copy
import functools
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import msgspec
import orjson

from cds_service.clinical.base import Params
from cds_service.data.prefetch import PatientData
from cds_service.data.resources import Resource, decode
from cds_service.facts.build import build_facts
from cds_service.facts.catalog import FactCatalog, load_catalog
from cds_service.facts.derive import named_facts
from cds_service.facts.model import Facts
from cds_service.facts.named import Fact
from cds_service.protocol.discovery import ServiceDefinition, load_services
from cds_service.protocol.request import parse_hook_request
from cds_service.ruleformat.rulefile import RuleFile
from cds_service.yamlfile import load_yaml
from tests.conftest import ROOT, RULES, sandbox_capture

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
LOINC = "http://loinc.org"
SNOMED = "http://snomed.info/sct"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
UCUM = "http://unitsofmeasure.org"


@functools.cache
def catalog() -> FactCatalog:
    return load_catalog(RULES)


@functools.cache
def sign_service() -> ServiceDefinition:
    service = load_services(RULES).get("anakinra-order-sign")
    assert service is not None
    return service


@functools.cache
def _fixture_bytes(name: str) -> bytes:
    return (ROOT / "fhir_fixtures" / "patients" / f"{name}.json").read_bytes()


def fixture(name: str) -> list[Resource]:
    return decode(_fixture_bytes(name), name).resources


def resource(**fields: Any) -> Resource:
    return msgspec.convert(fields, Resource)


def observation(
    ident: str,
    code: str,
    value: float | None,
    unit: str | None,
    time: str | None = "2026-11-22T06:00:00Z",
    comparator: str | None = None,
    system: str = LOINC,
    **extra: Any,
) -> Resource:
    fields: dict[str, Any] = {
        "resourceType": "Observation",
        "id": ident,
        "status": "final",
        "code": {"coding": [{"system": system, "code": code}]},
    }
    if value is not None:
        quantity: dict[str, Any] = {"value": value}
        if unit is not None:
            quantity["code"] = unit
        if comparator is not None:
            quantity["comparator"] = comparator
        fields["valueQuantity"] = quantity
    if time is not None:
        fields["effectiveDateTime"] = time
    fields.update(extra)
    return resource(**fields)


def make_facts(
    resources: Iterable[Resource] = (),
    drafts: Sequence[Mapping[str, Any]] = (),
    now: datetime = NOW,
    unavailable: Mapping[str, str] | None = None,
    hook: str = "order-sign",
) -> Facts:
    """Facts as the service builds them; `unavailable` is keyed by prefetch key (e.g. "medications")."""
    body: dict[str, Any] = copy.deepcopy(sandbox_capture("order-sign-request.json")["body"])
    body["context"]["draftOrders"] = {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [{"resource": dict(d)} for d in drafts],
    }
    resources = list(resources)
    patient = next((r for r in resources if r.resourceType == "Patient"), None)
    if patient is not None:
        body["context"]["patientId"] = patient.id
    request = parse_hook_request(orjson.dumps(body), hook)
    data = PatientData(
        values={"labs": resources}, problems=[], unavailable=dict(unavailable or {}), fetched=[]
    )
    return build_facts(sign_service(), request, data, now=now)


def facts_of(
    resources: Iterable[Resource] = (),
    drafts: Sequence[Mapping[str, Any]] = (),
    now: datetime = NOW,
    medication: str | None = "anakinra",
    unavailable: Mapping[str, str] | None = None,
) -> dict[str, Fact]:
    return named_facts(catalog(), make_facts(resources, drafts, now, unavailable), medication)


def rule_params(name: str) -> Params:
    """The parameters of rules/<name>.yaml as its calculations read them."""
    spec = RuleFile.model_validate(load_yaml(RULES / f"{name}.yaml").data)
    return Params(spec.id, spec.parameters, catalog())
