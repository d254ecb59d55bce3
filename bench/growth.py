"""Is the cost linear in the input? Time per item at 200 / 2,000 / 16,000 items, in process.

    python bench/growth.py [--sizes 200,2000,16000] [--dimensions observations,units,orders,conditions]
                           [--timeout 300]

Prints figures; it asserts nothing. Each measurement runs `call_service` (the whole pipeline, without
HTTP) in a fresh process that first answers W1 once (so start-up costs such as loading the UCUM registry
are not counted), then times the grown request; a measurement that takes longer than --timeout seconds
is reported as such. The grown requests are sent as prefetch (in process there is no body limit, but the
sizes are chosen to stay near the 5 MB limit: Observations here are compact, about 300 bytes):

  observations   N Observations in W1's mix of analytes and units, over the same 30 days (so each rule's
                 window holds proportionally more), W1's orders and conditions
  units          N Observations of creatinine, ferritin, haemoglobin and temperature whose units cycle
                 through convertible UCUM, aliases, two unknown spellings, a 60-character and a
                 1,000-character unit that UCUM cannot parse
  orders         N MedicationRequests (anakinra at rising doses, other drugs) beside W1's 200 Observations
  conditions     N Conditions beside W1's 200 Observations

"per item" is the marginal cost: (time at N - time at 0) / N, the time at 0 being the same request
without any of the grown items. Linear in the input means per item stays flat as N grows.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
from w1 import ANALYTES, LOINC, PATIENT, RXNORM, SNOMED, UCUM, _time, w1_request

ROOT = Path(__file__).resolve().parent.parent
NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
SERVICE = "anakinra-order-sign"
DIMENSIONS = ("observations", "units", "orders", "conditions")
SPAN_HOURS = 30 * 24
# Unit spellings of the `units` dimension, by LOINC code: convertible, alias, unknown (short and long).
UNKNOWN_60 = ("mg/dL." * 10)[:59] + "?"
UNKNOWN_1000 = ("mg/dL." * 167)[:999] + "?"
UNIT_CYCLE: tuple[tuple[str, str, float], ...] = (
    ("14682-9", "umol/L", 120.0),
    ("2160-0", "mg/dL", 1.4),
    ("2160-0", "mg/dl", 1.4),
    ("2276-4", "ug/L", 9000.0),
    ("2276-4", "ng/ml", 9000.0),
    ("718-7", "g/dL", 9.1),
    ("8310-5", "Cel", 38.4),
    ("2160-0", "mg/dL?", 1.2),
    ("2276-4", "nanograms", 8000.0),
    ("2160-0", UNKNOWN_60, 1.1),
    ("2276-4", UNKNOWN_1000, 7000.0),
)


def observation(index: int, code: str, unit: str, value: float, hours_ago: float) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "id": f"g{index}",
        "status": "final",
        "code": {"coding": [{"system": LOINC, "code": code}]},
        "subject": {"reference": f"Patient/{PATIENT}"},
        "effectiveDateTime": _time(NOW - timedelta(hours=hours_ago)),
        "valueQuantity": {"value": value, "unit": unit},
    }


def observations(n: int) -> list[dict[str, Any]]:
    mix = [(code, unit, low, high) for code, _, unit, low, high, share, _ in ANALYTES for _ in range(share)]
    out = []
    for index in range(n):
        code, unit, low, high = mix[(index * 37) % len(mix)]
        value = round(low + (high - low) * ((index * 7919) % 1000) / 1000, 2)
        out.append(observation(index, code, unit, value, 2 + index * SPAN_HOURS / max(n, 1)))
    return out


def unit_observations(n: int) -> list[dict[str, Any]]:
    out = []
    for index in range(n):
        code, unit, value = UNIT_CYCLE[index % len(UNIT_CYCLE)]
        out.append(observation(index, code, unit, value, 2 + index * SPAN_HOURS / max(n, 1)))
    return out


def orders(n: int) -> list[dict[str, Any]]:
    drugs = (
        ({"coding": [{"system": RXNORM, "code": "72435", "display": "anakinra"}]}, "mg/d", 600.0),
        ({"coding": [{"system": RXNORM, "code": "29561", "display": "meropenem"}]}, "g/d", 3.0),
        ({"text": "methylprednisolone"}, "mg/d", 1000.0),
    )
    out = []
    for index in range(n):
        concept, unit, dose = drugs[index % len(drugs)]
        out.append(
            {
                "resourceType": "MedicationRequest",
                "id": f"g-order-{index}",
                "status": "completed" if index % 4 else "active",
                "intent": "order",
                "subject": {"reference": f"Patient/{PATIENT}"},
                "authoredOn": _time(NOW - timedelta(hours=1 + index * SPAN_HOURS / max(n, 1))),
                "medicationCodeableConcept": concept,
                "dosageInstruction": [
                    {
                        "doseAndRate": [
                            {
                                "rateQuantity": {
                                    "value": dose + index % 7,
                                    "unit": unit,
                                    "system": UCUM,
                                    "code": unit,
                                }
                            }
                        ]
                    }
                ],
            }
        )
    return out


def conditions(n: int) -> list[dict[str, Any]]:
    kinds = (
        ("16294009", "Splenomegaly", "confirmed"),
        ("80515008", "Hepatomegaly", "refuted"),
        ("55464009", "Systemic lupus erythematosus", "confirmed"),
        ("38341003", "Hypertension", "confirmed"),
        ("44054006", "Diabetes mellitus type 2", "provisional"),
    )
    out = []
    for index in range(n):
        code, display, status = kinds[index % len(kinds)]
        out.append(
            {
                "resourceType": "Condition",
                "id": f"g-condition-{index}",
                "clinicalStatus": {
                    "coding": [
                        {
                            "system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
                            "code": "active",
                        }
                    ]
                },
                "verificationStatus": {
                    "coding": [
                        {
                            "system": "http://terminology.hl7.org/CodeSystem/condition-ver-status",
                            "code": status,
                        }
                    ]
                },
                "code": {"coding": [{"system": SNOMED, "code": code, "display": display}]},
                "subject": {"reference": f"Patient/{PATIENT}"},
                "recordedDate": _time(NOW - timedelta(days=1 + index % 300)),
            }
        )
    return out


def _searchset(resources: list[dict[str, Any]]) -> dict[str, Any]:
    # Entries without fullUrl or search mode: the most results the body limit lets through.
    return {"resourceType": "Bundle", "type": "searchset", "entry": [{"resource": r} for r in resources]}


def grown(dimension: str, n: int) -> bytes:
    request = w1_request(NOW)
    prefetch = request["prefetch"]
    if dimension == "observations":
        prefetch["labs"] = _searchset(observations(n))
    elif dimension == "units":
        prefetch["labs"] = _searchset(unit_observations(n))
    elif dimension == "orders":
        prefetch["medications"] = _searchset(orders(n))
    elif dimension == "conditions":
        prefetch["conditions"] = _searchset(conditions(n))
    else:
        raise ValueError(dimension)
    return orjson.dumps(request)


async def _measure(dimension: str, n: int, budget: float) -> dict[str, float]:
    from cds_service.config import Settings
    from cds_service.pipeline import Runtime, call_service

    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(
            rules_dir=ROOT / "rules",
            database_url=f"sqlite:///{tmp}/bench.db",
            reload_interval_seconds=0,
            insecure_no_auth=True,
        )
        runtime = Runtime.create(settings)
        try:
            await call_service(runtime, SERVICE, orjson.dumps(w1_request(NOW)), now=NOW)
            body = grown(dimension, n)
            samples: list[float] = []
            spent = 0.0
            # At least one call; up to five while they fit in the budget.
            while len(samples) < 5 and (not samples or spent + samples[-1] < budget):
                started = time.perf_counter()
                await call_service(runtime, SERVICE, body, now=NOW)
                samples.append(time.perf_counter() - started)
                spent += samples[-1]
        finally:
            await runtime.aclose()
    return {"seconds": statistics.median(samples), "calls": len(samples), "bytes": len(body)}


def measure(dimension: str, n: int, timeout: float) -> dict[str, float] | None:
    """One measurement in a fresh process; None when it outlasts `timeout`."""
    command = [sys.executable, __file__, "--one", dimension, str(n), "--timeout", str(timeout)]
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=True)
    except subprocess.TimeoutExpired:
        return None
    figures: dict[str, float] = json.loads(result.stdout.strip().splitlines()[-1])
    return figures


def main(dimensions: list[str], sizes: list[int], timeout: float) -> None:
    print(f"in process, call_service; each measurement in a fresh process; timeout {timeout:g} s")
    print()
    print("| dimension | N | body | time | per item | per item / at the first N |")
    print("|---|---|---|---|---|---|")
    for dimension in dimensions:
        base = measure(dimension, 0, timeout)
        assert base is not None, f"{dimension} at 0 items outlasted {timeout} s"
        first: float | None = None
        for n in sizes:
            figures = measure(dimension, n, timeout)
            size = len(grown(dimension, n))
            if figures is None:
                print(
                    f"| {dimension} | {n:,} | {size / 1e6:.2f} MB | > {timeout:g} s (stopped) | | |",
                    flush=True,
                )
                continue
            per_item = (figures["seconds"] - base["seconds"]) / n
            first = first or per_item
            print(
                f"| {dimension} | {n:,} | {size / 1e6:.2f} MB | {figures['seconds'] * 1000:,.1f} ms "
                f"| {per_item * 1e6:,.1f} µs | {per_item / first:.2f} |",
                flush=True,
            )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", default="200,2000,16000")
    parser.add_argument("--dimensions", default=",".join(DIMENSIONS))
    parser.add_argument("--timeout", type=float, default=300, help="seconds per measurement")
    parser.add_argument("--one", nargs=2, metavar=("DIMENSION", "N"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        dimension, n = args.one
        print(json.dumps(asyncio.run(_measure(dimension, int(n), min(10.0, args.timeout / 4)))))
    else:
        main(args.dimensions.split(","), [int(s) for s in args.sizes.split(",")], args.timeout)
