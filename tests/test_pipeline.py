"""The whole path in process: request -> prefetch / fetch -> facts -> cards."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest

from cds_service.config import Settings
from cds_service.data.prefetch import DataProblem, RequiredDataUnavailable, UnreadableData
from cds_service.pipeline import Runtime, call_service, data_problem
from tests.conftest import RULES
from tests.fhirserver import FhirTestServer
from tests.invariants import response_problems
from tests.test_app import _fetching_request, sandbox_anakinra_order_sign, sandbox_order_sign

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
    assert sorted(answer.data.fetched) == [
        "conditions",
        "encounters",
        "labs",
        "medications",
        "patient",
        "procedures",
        "specimens",
    ]
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
    assert sorted(answer.data.fetched) == [
        "conditions",
        "encounters",
        "labs",
        "medications",
        "procedures",
        "specimens",
    ]
    assert [r.path for r in fhir_server.requests if r.path.startswith("/fhir/Patient")] == []


async def test_a_wrong_resource_type_is_reported_not_used(runtime: Runtime) -> None:
    body = sandbox_anakinra_order_sign()
    body["prefetch"]["conditions"] = {
        "resourceType": "Bundle",
        "entry": [{"resource": {"resourceType": "Patient"}}],
    }
    body["prefetch"]["medications"] = None
    answer = await call_service(runtime, "anakinra-order-sign", orjson.dumps(body))
    assert answer.facts.conditions == []
    assert answer.facts.problems == ["prefetch.conditions: a Patient was sent where Condition was asked for"]
    (card,) = [c for c in orjson.loads(answer.body)["cards"] if _rule(c) == "incomplete-data"]
    assert "a Patient was sent where Condition was asked for" in card["detail"]
    # The same bad data beside an order that is not anakinra: the order-sign call is silent.
    body["context"]["draftOrders"] = sandbox_order_sign()["context"]["draftOrders"]
    silent = await call_service(runtime, "anakinra-order-sign", orjson.dumps(body))
    assert silent.facts.problems == answer.facts.problems
    assert orjson.loads(silent.body) == {"cards": []}


async def test_the_sandbox_draft_order_is_read_leniently(runtime: Runtime) -> None:
    answer = await call_service(runtime, "anakinra-order-sign", orjson.dumps(sandbox_order_sign()))
    (order,) = answer.facts.draft_orders
    assert (order.resource_type, order.id) == ("MedicationRequest", "request-123")
    assert order.raw["status"] == "draft"
    assert any("intent" in note for note in order.validation_notes)
    assert answer.facts.problems == []
    # Its draft names no drug: no card, not even one about the data the capture lacked.
    assert answer.evaluation.facts["order.present"].value is False
    assert orjson.loads(answer.body) == {"cards": []}
    # Named anakinra, the same capture is read as far as it goes, and the data-quality card says only what
    # is true of it: the prefetch keys it did not send.
    answer = await call_service(runtime, "anakinra-order-sign", orjson.dumps(sandbox_anakinra_order_sign()))
    assert answer.facts.problems == []
    assert answer.evaluation.facts["order.present"].value is True
    (card,) = [c for c in orjson.loads(answer.body)["cards"] if _rule(c) == "incomplete-data"]
    assert card["summary"] == (
        "Could not read medication orders, conditions, procedures, encounters: some checks could not run"
    )


REQUESTS = RULES.parent / "fhir_fixtures" / "requests"
AS_OF = datetime(2026, 11, 22, 10, tzinfo=UTC)  # an hour after the fixture patient's newest data


def _rule(card: dict) -> str:
    return str(card["extension"]["cds-service-provenance"]["ruleId"])


async def test_a_sandbox_shaped_anakinra_order_is_read_and_used_without_a_data_card(runtime: Runtime) -> None:
    # The sandbox sends `category` as an object, and a dose in {pill}: the order is still anakinra, its
    # checks run, and the ones that need a dose say why they cannot, not "could not read the data".
    body = (REQUESTS / "order-sign-sandbox-shape-anakinra.json").read_bytes()
    assert isinstance(orjson.loads(body)["context"]["draftOrders"]["entry"][0]["resource"]["category"], dict)
    answer = await call_service(runtime, "anakinra-order-sign", body, now=AS_OF)
    # Specimens are not announced when missing (rules/services: announce: false); nothing else is missing.
    assert answer.facts.problems == [] and set(answer.facts.unavailable) <= answer.facts.unannounced
    cards = orjson.loads(answer.body)["cards"]
    assert "incomplete-data" not in {_rule(c) for c in cards}
    facts = answer.evaluation.facts
    assert facts["order.present"].value is True
    # The sandbox's {pill} is said to be a unit the service does not know, never echoed.
    assert (
        facts["order.daily_dose"].missing
        == "the dose is in an unrecognised unit, neither a mass nor a volume"
    )
    assert all("{pill}" not in f"{c['summary']} {c.get('detail', '')}" for c in cards)
    statuses = {o.rule.id: o.status for o in answer.evaluation.outcomes}
    assert statuses["max-dose"] == "unknown"
    # It says so in the one card that lists what is missing, which speaks for max-dose among others.
    (merged,) = [c for c in cards if c["extension"]["cds-service-provenance"].get("rules")]
    spoken = {r["ruleId"] for r in merged["extension"]["cds-service-provenance"]["rules"]}
    assert "max-dose" in spoken and "max-dose" not in {_rule(c) for c in cards}
    assert "maximum dose" in merged["summary"] and "unrecognised unit" in merged["detail"]


@pytest.mark.parametrize("name", ["order-sign-sandbox-aspirin", "order-select-sandbox-aspirin"])
async def test_a_sandbox_aspirin_order_gets_no_data_card(runtime: Runtime, name: str) -> None:
    body = (REQUESTS / f"{name}.json").read_bytes()
    service = "anakinra-order-select" if name.startswith("order-select") else "anakinra-order-sign"
    answer = await call_service(runtime, service, body, now=AS_OF)
    assert answer.facts.problems == []
    assert "incomplete-data" not in {_rule(c) for c in orjson.loads(answer.body)["cards"]}
    assert answer.evaluation.facts["order.present"].value is False


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


@pytest.mark.parametrize(
    ("patient", "indicator"),
    [("inf-gsb-1", "critical"), ("inf-gsu-1", None)],  # Gram stain on peripheral blood; on urine
)
async def test_a_gram_stains_specimen_is_fetched_and_read(
    runtime: Runtime, fhir_server: FhirTestServer, patient: str, indicator: str | None
) -> None:
    from cds_service.cards.render import PROVENANCE_KEY

    body = orjson.dumps(_fetching_request(fhir_server, patient=patient))
    answer = await call_service(
        runtime, "anakinra-order-sign", body, now=datetime(2026, 11, 23, 12, tzinfo=UTC)
    )
    assert "specimens" in answer.data.fetched
    assert any(r.path == "/fhir/Specimen" and f"patient={patient}" in r.query for r in fhir_server.requests)
    assert {s.id for s in answer.facts.other["Specimen"]} == {
        f"{patient}-{'blood' if indicator else 'urine'}-1"
    }
    cards = [
        c
        for c in orjson.loads(answer.body)["cards"]
        if c["extension"][PROVENANCE_KEY]["ruleId"] == "gram-negative-bacteremia"
    ]
    assert [c["indicator"] for c in cards] == ([indicator] if indicator else [])


async def test_specimens_that_cannot_be_had_are_said_by_the_result_that_needs_them(runtime: Runtime) -> None:
    """No Specimen prefetch and no FHIR server: no incomplete-data card on every call, but a Gram stain
    that names a specimen says why it could not be decided."""
    from cds_service.cards.render import PROVENANCE_KEY
    from cds_service.data.compose import bundle_resources, hook_request
    from tests.conftest import ROOT

    service = runtime.engine.ruleset.services.get("anakinra-order-sign")
    assert service is not None
    bundle = orjson.loads((ROOT / "fhir_fixtures/patients/infection-gram-stain-blood.json").read_bytes())
    # An anakinra order being signed: without one the order-sign service is silent.
    order = {
        "resourceType": "MedicationRequest",
        "id": "draft-1",
        "status": "draft",
        "intent": "order",
        "medicationCodeableConcept": {"text": "anakinra"},
        "dosageInstruction": [
            {"route": {"text": "IV"}, "doseAndRate": [{"rateQuantity": {"value": 600, "code": "mg/d"}}]}
        ],
    }
    body = hook_request(
        service, bundle_resources(bundle), order, "0b6d7c0e-3a55-4d4b-9a34-5f5d0f3d1c2e", "Practitioner/x"
    )
    del body["prefetch"]["specimens"]
    answer = await call_service(
        runtime, "anakinra-order-sign", orjson.dumps(body), now=datetime(2026, 11, 23, 12, tzinfo=UTC)
    )
    cards = {c["extension"][PROVENANCE_KEY]["ruleId"]: c for c in orjson.loads(answer.body)["cards"]}
    assert "incomplete-data" not in cards
    card = cards["gram-negative-bacteremia"]
    # The reference's display ("Peripheral blood") still decides: the card is not downgraded.
    assert card["indicator"] == "critical"
    body["prefetch"]["labs"]["entry"][-1]["resource"]["specimen"].pop("display")
    answer = await call_service(
        runtime, "anakinra-order-sign", orjson.dumps(body), now=datetime(2026, 11, 23, 12, tzinfo=UTC)
    )
    cards = {c["extension"][PROVENANCE_KEY]["ruleId"]: c for c in orjson.loads(answer.body)["cards"]}
    assert "incomplete-data" not in cards
    card = cards["gram-negative-bacteremia"]
    assert card["indicator"] == "info"
    assert "specimens could not be read: it was not prefetched and no fhirServer was given" in card["detail"]


def test_the_data_layers_refusals_are_answered_400_and_412_with_their_issues() -> None:
    unreadable = data_problem(
        UnreadableData([DataProblem("not a FHIR resource", expression="prefetch.labs")])
    )
    refused = data_problem(
        UnreadableData([DataProblem("private address", expression="fhirServer", code="security")])
    )
    missing = data_problem(
        RequiredDataUnavailable([DataProblem("prefetch.patient: timed out", code="incomplete")])
    )
    assert (unreadable.status, refused.status, missing.status) == (400, 400, 412)
    assert unreadable.outcome()["issue"] == [
        {
            "severity": "error",
            "code": "invalid",
            "diagnostics": "not a FHIR resource",
            "expression": ["prefetch.labs"],
        }
    ]
    assert refused.outcome()["issue"] == [
        {
            "severity": "error",
            "code": "security",
            "diagnostics": "private address",
            "expression": ["fhirServer"],
        }
    ]
    assert missing.outcome()["issue"] == [
        {"severity": "error", "code": "incomplete", "diagnostics": "prefetch.patient: timed out"}
    ]


async def test_the_computing_stages_run_off_the_event_loop(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Parsing, decoding the prefetch, facts, derived facts and cards are CPU work: done on the event
    loop, one large request would stall every other one (and /healthz). Each runs on the compute
    thread, and the answer is the same."""
    import threading

    from cds_service import pipeline
    from cds_service.data import prefetch

    loop_thread = threading.current_thread()
    seen: dict[str, threading.Thread] = {}

    def recorded(name: str, function: Any) -> Any:
        def run(*args: Any, **kwargs: Any) -> Any:
            seen[name] = threading.current_thread()
            return function(*args, **kwargs)

        return run

    for name in ("parse_hook_request", "build_facts", "derive_facts", "render_response"):
        monkeypatch.setattr(pipeline, name, recorded(name, getattr(pipeline, name)))
    monkeypatch.setattr(prefetch, "_read_prefetch", recorded("prefetch", prefetch._read_prefetch))
    answer = await call_service(runtime, "anakinra-order-sign", orjson.dumps(sandbox_anakinra_order_sign()))
    assert set(seen) == {"parse_hook_request", "prefetch", "build_facts", "derive_facts", "render_response"}
    assert all(
        thread is not loop_thread and thread.name.startswith("cds-compute") for thread in seen.values()
    )
    assert orjson.loads(answer.body)["cards"], "the anakinra order is spoken about as before"
