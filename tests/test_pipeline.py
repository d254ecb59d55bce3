"""The whole path in process: request -> prefetch / fetch -> facts -> cards."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import orjson
import pytest

from cds_service.config import Settings
from cds_service.pipeline import Runtime, call_service
from tests.conftest import RULES
from tests.fhirserver import FhirTestServer
from tests.invariants import response_problems
from tests.test_app import _fetching_request, sandbox_order_sign

FERRITIN = "http://loinc.org|2276-4"


@pytest.fixture
async def runtime() -> AsyncIterator[Runtime]:
    runtime = Runtime.create(Settings(rules_dir=RULES, fetch_allow_private=True))
    yield runtime
    await runtime.aclose()


async def test_fetched_data_becomes_facts(runtime: Runtime, fhir_server: FhirTestServer) -> None:
    body = orjson.dumps(_fetching_request(fhir_server))
    now = datetime(2026, 11, 23, 12, tzinfo=UTC)
    answer = await call_service(runtime, "anakinra-order-sign", body, now=now)
    facts = answer.facts
    assert response_problems(orjson.loads(answer.body)) == []
    assert sorted(answer.data.fetched) == ["conditions", "labs", "medications", "patient"]
    assert (facts.patient_id, facts.gender, str(facts.birth_date)) == ("mas-f1", "female", "1968-04-12")
    ferritin = facts.lab(FERRITIN)
    assert len(ferritin) >= 5
    times = [v.time for v in ferritin]
    assert times == sorted(times, reverse=True)  # newest first
    assert ferritin[0].comparator == ">" and ferritin[0].value == 40000
    assert all(v.unit == "ug/L" for v in ferritin)
    # The entered-in-error platelet count is not a result.
    assert facts.excluded == {"status entered-in-error": 1}
    assert "mas-f1-platelets-eie" not in {v.id for v in facts.lab("http://loinc.org|777-3")}
    assert {c.id for c in facts.conditions} == {"mas-f1-splenomegaly", "mas-f1-hepatomegaly-refuted"}
    assert {m.id for m in facts.medication_orders} == {"mas-f1-anakinra", "mas-f1-meropenem"}
    assert facts.unavailable == {} and facts.problems == []


async def test_prefetched_and_fetched_keys_mix(runtime: Runtime, fhir_server: FhirTestServer) -> None:
    body = _fetching_request(fhir_server)
    body["prefetch"] = {"patient": {"resourceType": "Patient", "id": "mas-f1", "gender": "female"}}
    answer = await call_service(runtime, "anakinra-order-sign", orjson.dumps(body))
    assert sorted(answer.data.fetched) == ["conditions", "labs", "medications"]
    assert [r.path for r in fhir_server.requests if r.path.startswith("/fhir/Patient")] == []


async def test_a_wrong_resource_type_is_reported_not_used(runtime: Runtime) -> None:
    body = sandbox_order_sign()
    body["prefetch"]["conditions"] = {
        "resourceType": "Bundle",
        "entry": [{"resource": {"resourceType": "Patient"}}],
    }
    body["prefetch"]["medications"] = None
    answer = await call_service(runtime, "anakinra-order-sign", orjson.dumps(body))
    assert answer.facts.conditions == []
    assert answer.facts.problems == ["prefetch.conditions: a Patient was sent where Condition was asked for"]
    (card,) = orjson.loads(answer.body)["cards"]
    assert "a Patient was sent where Condition was asked for" in card["detail"]


async def test_the_sandbox_draft_order_is_read_leniently(runtime: Runtime) -> None:
    answer = await call_service(runtime, "anakinra-order-sign", orjson.dumps(sandbox_order_sign()))
    (order,) = answer.facts.draft_orders
    assert (order.resource_type, order.id) == ("MedicationRequest", "request-123")
    assert order.resource is not None and order.resource.status == "draft"
    assert any("intent" in note for note in order.validation_notes)


async def test_every_card_says_which_rule_version_and_ruleset_made_it(runtime: Runtime) -> None:
    from cds_service.cards.render import PROVENANCE_KEY
    from cds_service.engine.ruleset import ruleset_hash

    body = sandbox_order_sign()
    body["context"]["draftOrders"]["entry"] = [
        {
            "resource": {
                "resourceType": "MedicationRequest",
                "id": "draft-1",
                "status": "draft",
                "intent": "order",
                "medicationCodeableConcept": {"text": "anakinra"},
                "dosageInstruction": [
                    {
                        "route": {"text": "IV"},
                        "doseAndRate": [{"rateQuantity": {"value": 4000, "unit": "mg/d", "code": "mg/d"}}],
                    }
                ],
            }
        }
    ]
    answer = await call_service(runtime, "anakinra-order-sign", orjson.dumps(body))
    cards = orjson.loads(answer.body)["cards"]
    by_rule = {card["extension"][PROVENANCE_KEY]["ruleId"]: card for card in cards}
    assert "max-dose" in by_rule, cards
    provenance = by_rule["max-dose"]["extension"][PROVENANCE_KEY]
    assert provenance == {
        "ruleId": "max-dose",
        "ruleVersion": runtime.engine.ruleset.rules["max-dose"].version,
        "ruleset": "anakinra-mas",
        "rulesetVersion": runtime.engine.ruleset.version,
        "rulesetHash": ruleset_hash(RULES),
    }
    assert "4000 mg/day" in by_rule["max-dose"]["summary"]
    recorded = {(c.rule_id, c.rule_version) for c in answer.issued}
    assert ("max-dose", provenance["ruleVersion"]) in recorded
