"""Workload W1: order-sign for a draft continuous IV anakinra order, with a full prefetch.

    python bench/w1.py [--now 2026-11-23T12:00:00Z] > w1.json

1 Patient, 200 Observations over 30 days (the rule pack's LOINC codes; mass and SI units mixed as labs
report them), 5 MedicationRequests, 3 Conditions: about 150 KB. Deterministic: the same `now` and seed
give the same bytes, so runs minutes apart measure the same request.
"""

from __future__ import annotations

import argparse
import random
import sys
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
SNOMED = "http://snomed.info/sct"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
PATIENT = "w1-patient"
HOOK_INSTANCE = "0b6c8f7e-3f7a-4d8e-9c55-5f1a9e2c7d41"

# (LOINC, display, UCUM unit, low, high, share of the 200 results, category)
ANALYTES: tuple[tuple[str, str, str, float, float, int, str], ...] = (
    ("2276-4", "Ferritin [Mass/volume] in Serum or Plasma", "ng/mL", 2000, 60000, 26, "laboratory"),
    ("718-7", "Hemoglobin [Mass/volume] in Blood", "g/L", 70, 120, 16, "laboratory"),
    ("777-3", "Platelets [#/volume] in Blood by Automated count", "10*3/uL", 40, 220, 16, "laboratory"),
    ("751-8", "Neutrophils [#/volume] in Blood by Automated count", "10*9/L", 0.6, 6.0, 14, "laboratory"),
    ("770-8", "Neutrophils/100 leukocytes in Blood by Automated count", "%", 40, 85, 8, "laboratory"),
    ("6690-2", "Leukocytes [#/volume] in Blood by Automated count", "10*9/L", 1.5, 14, 14, "laboratory"),
    ("14927-8", "Triglyceride [Moles/volume] in Serum or Plasma", "mmol/L", 1.2, 5.5, 6, "laboratory"),
    (
        "3255-7",
        "Fibrinogen [Mass/volume] in Platelet poor plasma by Coagulation assay",
        "g/L",
        0.9,
        3.5,
        10,
        "laboratory",
    ),
    (
        "1920-8",
        "Aspartate aminotransferase [Enzymatic activity/volume] in Serum or Plasma",
        "U/L",
        25,
        400,
        10,
        "laboratory",
    ),
    (
        "1742-6",
        "Alanine aminotransferase [Enzymatic activity/volume] in Serum or Plasma",
        "U/L",
        20,
        300,
        10,
        "laboratory",
    ),
    (
        "2532-0",
        "Lactate dehydrogenase [Enzymatic activity/volume] in Serum or Plasma",
        "U/L",
        200,
        1800,
        8,
        "laboratory",
    ),
    ("14682-9", "Creatinine [Moles/volume] in Serum or Plasma", "umol/L", 60, 180, 14, "laboratory"),
    (
        "76039-7",
        "Interleukin 2 receptor soluble [Units/volume] in Serum or Plasma",
        "[U]/mL",
        1500,
        30000,
        4,
        "laboratory",
    ),
    ("8310-5", "Body temperature", "[degF]", 98.0, 104.0, 26, "vital-signs"),
    ("29463-7", "Body weight", "kg", 68, 74, 6, "vital-signs"),
    ("1988-5", "C reactive protein [Mass/volume] in Serum or Plasma", "mg/L", 10, 250, 12, "laboratory"),
)
assert sum(a[5] for a in ANALYTES) == 200


def w1_body(now: datetime, seed: int = 1) -> bytes:
    return orjson.dumps(w1_request(now, seed))


def w1_request(now: datetime, seed: int = 1) -> dict[str, Any]:
    rng = random.Random(seed)
    return {
        "hook": "order-sign",
        "hookInstance": HOOK_INSTANCE,
        "context": {
            "userId": "Practitioner/w1-prescriber",
            "patientId": PATIENT,
            "encounterId": "w1-encounter",
            "draftOrders": {
                "resourceType": "Bundle",
                "type": "collection",
                "entry": [{"resource": _draft()}],
            },
        },
        "prefetch": {
            "patient": _patient(),
            "labs": _bundle([_observation(i, a, rng, now) for i, a in enumerate(_schedule(rng))]),
            "medications": _bundle(_medications(now)),
            "conditions": _bundle(_conditions(now)),
        },
    }


def _schedule(rng: random.Random) -> list[tuple[str, str, str, float, float, str]]:
    rows = [
        (code, name, unit, low, high, cat)
        for code, name, unit, low, high, n, cat in ANALYTES
        for _ in range(n)
    ]
    rng.shuffle(rows)
    return rows


def _observation(
    index: int, analyte: tuple[str, str, str, float, float, str], rng: random.Random, now: datetime
) -> dict[str, Any]:
    code, name, unit, low, high, category = analyte
    # Spread over 30 days, newest first as `_sort=-date` returns them; the newest a few hours old.
    taken = now - timedelta(hours=2 + index * 3.6, minutes=rng.randrange(60))
    value = round(rng.uniform(low, high), 2)
    quantity: dict[str, Any] = {"value": value, "unit": unit, "system": UCUM, "code": unit}
    if code == "2276-4" and index % 40 == 3:
        quantity["comparator"] = ">"  # a censored ferritin, as high-range assays report
    observation: dict[str, Any] = {
        "resourceType": "Observation",
        "id": f"w1-obs-{index:03d}",
        "status": "final" if index % 25 else "amended",
        "category": [
            {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                        "code": category,
                    }
                ]
            }
        ],
        "code": {"coding": [{"system": LOINC, "code": code, "display": name}]},
        "subject": {"reference": f"Patient/{PATIENT}"},
        "effectiveDateTime": _time(taken),
        "issued": _time(taken + timedelta(minutes=40)),
        "valueQuantity": quantity,
    }
    if category == "laboratory":
        observation["referenceRange"] = [
            {
                "low": {"value": round(low * 0.8, 1), "unit": unit},
                "high": {"value": round(high * 0.5, 1), "unit": unit},
            }
        ]
        observation["interpretation"] = [
            {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation",
                        "code": "H" if value > high * 0.5 else "N",
                    }
                ]
            }
        ]
    return observation


def _draft() -> dict[str, Any]:
    return {
        "resourceType": "MedicationRequest",
        "id": "w1-draft",
        "status": "draft",
        "intent": "order",
        "subject": {"reference": f"Patient/{PATIENT}"},
        "medicationCodeableConcept": {"coding": [{"system": RXNORM, "code": "72435", "display": "anakinra"}]},
        "dosageInstruction": [
            {
                "text": "anakinra 2400 mg/day continuous IV infusion",
                "route": {"coding": [{"system": SNOMED, "code": "47625008", "display": "Intravenous route"}]},
                "doseAndRate": [
                    {"rateQuantity": {"value": 2400, "unit": "mg/d", "system": UCUM, "code": "mg/d"}}
                ],
            }
        ],
    }


def _patient() -> dict[str, Any]:
    return {
        "resourceType": "Patient",
        "id": PATIENT,
        "name": [{"family": "Workload", "given": ["One"]}],
        "gender": "female",
        "birthDate": "1979-03-14",
    }


def _medications(now: datetime) -> list[dict[str, Any]]:
    def order(
        ident: str, status: str, days_ago: float, concept: dict[str, Any], dose: float, unit: str
    ) -> dict[str, Any]:
        return {
            "resourceType": "MedicationRequest",
            "id": ident,
            "status": status,
            "intent": "order",
            "subject": {"reference": f"Patient/{PATIENT}"},
            "authoredOn": _time(now - timedelta(days=days_ago)),
            "medicationCodeableConcept": concept,
            "dosageInstruction": [
                {
                    "doseAndRate": [
                        {"rateQuantity": {"value": dose, "unit": unit, "system": UCUM, "code": unit}}
                    ]
                }
            ],
        }

    anakinra = {"coding": [{"system": RXNORM, "code": "72435", "display": "anakinra"}]}
    return [
        order("w1-anakinra-1", "completed", 6, anakinra, 600, "mg/d"),
        order("w1-anakinra-2", "completed", 4, anakinra, 1200, "mg/d"),
        order("w1-anakinra-3", "active", 2, anakinra, 1600, "mg/d"),
        order(
            "w1-meropenem",
            "active",
            3,
            {"coding": [{"system": RXNORM, "code": "29561", "display": "meropenem"}]},
            3,
            "g/d",
        ),
        order("w1-methylpred", "active", 7, {"text": "methylprednisolone"}, 1000, "mg/d"),
    ]


def _conditions(now: datetime) -> list[dict[str, Any]]:
    def condition(ident: str, code: str, display: str, status: str) -> dict[str, Any]:
        return {
            "resourceType": "Condition",
            "id": ident,
            "clinicalStatus": {
                "coding": [
                    {"system": "http://terminology.hl7.org/CodeSystem/condition-clinical", "code": "active"}
                ]
            },
            "verificationStatus": {
                "coding": [
                    {"system": "http://terminology.hl7.org/CodeSystem/condition-ver-status", "code": status}
                ]
            },
            "code": {"coding": [{"system": SNOMED, "code": code, "display": display}], "text": display},
            "subject": {"reference": f"Patient/{PATIENT}"},
            "recordedDate": _time(now - timedelta(days=5)),
        }

    return [
        condition("w1-splenomegaly", "16294009", "Splenomegaly", "confirmed"),
        condition("w1-hepatomegaly", "80515008", "Hepatomegaly", "refuted"),
        condition("w1-sle", "55464009", "Systemic lupus erythematosus", "confirmed"),
    ]


def _bundle(resources: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "resourceType": "Bundle",
        "type": "searchset",
        "total": len(resources),
        "entry": [
            {"fullUrl": f"urn:uuid:{r['id']}", "resource": r, "search": {"mode": "match"}} for r in resources
        ],
    }


def _time(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--now", default="2026-11-23T12:00:00Z", help="the request's time (ISO 8601)")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    now = datetime.fromisoformat(args.now)
    sys.stdout.buffer.write(w1_body(now, args.seed))


if __name__ == "__main__":
    main()
