"""A request's facts -> the chart payload: results in the panel's unit, bounds kept, dose steps placed."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import orjson
import pytest

from cds_service.charts.snapshot import Payload
from cds_service.pipeline import Runtime
from tests.charts.conftest import Ask, payload_of
from tests.charts.requests import FIXTURE_NOW, draft_order, patient


def series(payload: Payload, analyte: str) -> dict[str, Any]:
    found = [s for panel in payload["panels"] for s in panel["series"] if s["analyte"] == analyte]
    assert len(found) == 1, analyte
    return found[0]


def observation(obs_id: str, code: str, when: str, value: float, unit: str) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "id": obs_id,
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": code}]},
        "effectiveDateTime": when,
        "valueQuantity": {"value": value, "unit": unit, "system": "http://unitsofmeasure.org", "code": unit},
    }


async def test_results_oldest_first_with_the_request_time(runtime: Runtime, ask: Ask) -> None:
    payload = payload_of(runtime, await ask("ferritin-rising", draft_order(400)))
    assert payload["as_of"] == FIXTURE_NOW.isoformat()
    assert payload["from"] == (FIXTURE_NOW - timedelta(days=14)).isoformat()
    assert [p[:3] for p in series(payload, "ferritin")["points"]] == [
        ["2026-11-20T06:00:00+00:00", 8200.0, None],
        ["2026-11-21T18:00:00+00:00", 12000.0, None],
        ["2026-11-22T06:00:00+00:00", 10500.0, None],
        ["2026-11-23T06:00:00+00:00", 26000.0, None],
    ]
    assert [p[1] for p in series(payload, "platelets")["points"]] == [96.0]
    assert series(payload, "ast")["points"] == [] and series(payload, "alt")["points"] == []
    assert [panel["unit"] for panel in payload["panels"]] == ["ug/L", "10*9/L", "U/L", "mg/dL"]


async def test_si_results_are_converted_to_the_panel_unit_and_keep_what_was_reported(
    runtime: Runtime, ask: Ask
) -> None:
    payload = payload_of(runtime, await ask("si-units-male", draft_order(400)))
    creatinine = series(payload, "creatinine")["points"]
    # 88 umol/L x 113.12 g/mol (creatinine) = 0.9955 mg/dL; 97 umol/L = 1.097 mg/dL.
    assert [p[1] for p in creatinine] == [pytest.approx(0.9955, abs=1e-4), pytest.approx(1.0973, abs=1e-4)]
    assert [p[3] for p in creatinine] == [
        "88 µmol/L",
        "97 µmol/L",
    ]  # as reported, its unit as people write it
    # +01:00 in the data, UTC in the payload.
    assert creatinine[0][0] == "2026-11-18T06:00:00+00:00"
    ferritin_si = payload_of(runtime, await ask("ferritin-si-units", draft_order(1200)))
    assert [p[1] for p in series(ferritin_si, "ferritin")["points"]] == [2350.0, 3400.0, 5900.0]
    assert series(ferritin_si, "ferritin")["points"][0][3] == "2.35 mg/L"


async def test_a_censored_result_keeps_its_comparator(runtime: Runtime, ask: Ask) -> None:
    payload = payload_of(runtime, await ask("ferritin-censored", draft_order(400)))
    assert [p[1:3] for p in series(payload, "ferritin")["points"]] == [[38500.0, None], [40000.0, ">"]]


async def test_dose_steps_follow_the_orders_and_end_with_the_draft(runtime: Runtime, ask: Ask) -> None:
    payload = payload_of(runtime, await ask("ferritin-escalation", draft_order(2400)))
    dose = payload["dose"]
    assert (dose["unit"], dose["label"], dose["notes"]) == ("mg/d", "anakinra", [])
    steps = [(s["start"], s["end"], s["dose"], s["status"], s["draft"]) for s in dose["steps"]]
    assert steps == [
        ("2026-11-17T12:00:00+00:00", "2026-11-19T12:00:00+00:00", 400.0, "completed", False),
        ("2026-11-19T12:00:00+00:00", "2026-11-21T12:00:00+00:00", 1200.0, "completed", False),
        # An active order without an end runs until now.
        ("2026-11-21T12:00:00+00:00", FIXTURE_NOW.isoformat(), 1200.0, "active", False),
        # The draft starts when it is signed, and has no end yet.
        (FIXTURE_NOW.isoformat(), None, 2400.0, "draft", True),
    ]
    assert dose["steps"][-1]["summary"] == "2400 mg/day continuous (iv)"


async def test_a_dose_that_cannot_be_read_is_a_step_with_the_reason(runtime: Runtime, ask: Ask) -> None:
    order = draft_order(400)
    del order["dosageInstruction"][0]["doseAndRate"]
    payload = payload_of(runtime, await ask("ferritin-rising", order))
    (step,) = payload["dose"]["steps"]
    assert step["dose"] is None and step["draft"] is True
    assert "no dose given" in step["why"]


async def test_only_results_in_the_lookback_and_before_the_request_are_drawn(
    runtime: Runtime, ask: Ask
) -> None:
    resources = patient("ferritin-rising") + [
        observation("old", "2276-4", "2026-11-08T06:00:00Z", 900, "ug/L"),  # 15 days before
        observation("later", "2276-4", "2026-11-23T18:00:00Z", 99000, "ug/L"),  # after the request
        observation("odd", "2276-4", "2026-11-22T12:00:00Z", 5, "U/L"),  # an activity is no concentration
    ]
    payload = payload_of(runtime, await ask("ferritin-rising", draft_order(400), resources=resources))
    ferritin = series(payload, "ferritin")
    assert [p[1] for p in ferritin["points"]] == [8200.0, 12000.0, 10500.0, 26000.0]
    assert ferritin["excluded"] == ["Observation/odd is in U/L, which does not convert to µg/L"]


async def test_data_that_could_not_be_had_is_said(runtime: Runtime, ask: Ask) -> None:
    answer = await ask("ferritin-escalation", draft_order(1200))
    catalog = runtime.engine.ruleset.catalog
    labs, orders = catalog.labs.sources[0], catalog.medications.sources[0]
    # What prefetch records when a source could not be fetched (a 412 only for required ones).
    answer.facts.unavailable.update({labs: "the EHR answered 503", orders: "timeout"})
    payload = payload_of(runtime, answer)
    assert payload["notes"] == [f"Results may be missing: {labs} could not be read: the EHR answered 503."]
    assert payload["dose"]["notes"] == [f"Earlier orders are not shown: {orders} could not be read: timeout."]
    assert [s["draft"] for s in payload["dose"]["steps"]] == [True]


async def test_nothing_identifies_the_patient(runtime: Runtime, ask: Ask) -> None:
    resources = patient("ferritin-escalation")
    person = next(r for r in resources if r["resourceType"] == "Patient")
    text = orjson.dumps(payload_of(runtime, await ask("ferritin-escalation", draft_order(1200)))).decode()
    names = [person["id"], person["birthDate"]] + [n["family"] for n in person["name"]]
    names += [given for n in person["name"] for given in n.get("given", ())]
    assert names and not [n for n in names if n in text]


async def test_what_the_lab_reported_is_kept_in_the_panel_unit_too(runtime: Runtime, ask: Ask) -> None:
    payload = payload_of(runtime, await ask("ferritin-rising", draft_order(400)))
    assert [p[3] for p in series(payload, "ferritin")["points"]] == [
        "8200 µg/L",
        "12000 µg/L",
        "10500 µg/L",
        "26000 µg/L",
    ]


async def test_threshold_lines_come_from_the_rule_files_and_the_request(runtime: Runtime, ask: Ask) -> None:
    payload = payload_of(runtime, await ask("renal-ckd-female", draft_order(2400)))
    lines = {p["title"]: p["thresholds"] for p in payload["panels"]}
    assert [(t["label"], t["value"]) for t in lines["Ferritin"]] == [("HLH-2004 ferritin criterion", 500)]
    assert "Henter 2007" in lines["Ferritin"][0]["source"]
    assert [(t["label"], t["value"]) for t in lines["Platelets"]] == [
        ("HLH-2004 platelet criterion (below)", 100)
    ]
    assert [(t["label"], t["value"]) for t in payload["dose"]["thresholds"]] == [("maximum daily dose", 2400)]
    # This patient's creatinine limits, computed by the calculations behind the AKI and renal rules.
    facts = (await ask("renal-ckd-female", draft_order(2400))).evaluation.facts
    creatinine = {t["label"]: t["value"] for t in lines["Creatinine"]}
    assert creatinine == {
        "AKI (KDIGO) if a result now reaches it": pytest.approx(facts["aki.creatinine_limit"].value),
        "renal dose threshold (Cockcroft-Gault CrCl)": pytest.approx(facts["renal.creatinine_limit"].value),
    }


async def test_a_threshold_this_request_cannot_compute_is_listed_with_why(runtime: Runtime, ask: Ask) -> None:
    payload = payload_of(runtime, await ask("renal-missing-weight", draft_order(2400)))
    (creatinine,) = [p for p in payload["panels"] if p["title"] == "Creatinine"]
    undrawn = {t["label"]: t["why"] for t in creatinine["thresholds_not_drawn"]}
    assert "weight" in undrawn["renal dose threshold (Cockcroft-Gault CrCl)"]
    assert "renal dose threshold (Cockcroft-Gault CrCl)" not in {t["label"] for t in creatinine["thresholds"]}
