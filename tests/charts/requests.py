"""Hook requests for the chart tests: a fixture patient, optionally moved in time, and a draft order."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from cds_service.data.compose import bundle_resources, hook_request
from cds_service.protocol.discovery import load_services
from tests.conftest import RULES

PATIENTS = RULES.parent / "fhir_fixtures" / "patients"
# The rule cases evaluate the fixtures at this time; their data sits in the days before it.
FIXTURE_NOW = datetime(2026, 11, 23, 12, tzinfo=UTC)
_DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}T")
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"


def draft_order(mg_per_day: float, order_id: str = "draft-1") -> dict[str, Any]:
    return {
        "resourceType": "MedicationRequest",
        "id": order_id,
        "status": "draft",
        "intent": "order",
        "medicationCodeableConcept": {"coding": [{"system": RXNORM, "code": "72435", "display": "anakinra"}]},
        "dosageInstruction": [
            {
                "route": {"coding": [{"system": "http://snomed.info/sct", "code": "47625008"}]},
                "doseAndRate": [
                    {
                        "rateQuantity": {
                            "value": mg_per_day,
                            "unit": "mg/d",
                            "system": "http://unitsofmeasure.org",
                            "code": "mg/d",
                        }
                    }
                ],
            }
        ],
    }


def patient(name: str, now: datetime = FIXTURE_NOW) -> list[dict[str, Any]]:
    """The fixture's resources, every dateTime moved so that the data is as old at `now` as it is at
    FIXTURE_NOW (over HTTP the rules read the wall clock)."""
    bundle = orjson.loads((PATIENTS / f"{name}.json").read_bytes())
    shift = now - FIXTURE_NOW
    return [_shifted(resource, shift) for resource in bundle_resources(bundle)]


def request(service_id: str, resources: list[dict[str, Any]], order: dict[str, Any] | None) -> dict[str, Any]:
    service = load_services(RULES).get(service_id)
    assert service is not None
    return hook_request(service, resources, order, str(uuid.uuid4()), "Practitioner/chart-tests")


def _shifted(value: Any, shift: timedelta) -> Any:
    if isinstance(value, dict):
        return {key: _shifted(item, shift) for key, item in value.items()}
    if isinstance(value, list):
        return [_shifted(item, shift) for item in value]
    if isinstance(value, str) and shift and _DATETIME.match(value):
        moment = datetime.fromisoformat(value) + shift
        return moment.isoformat()
    return value
