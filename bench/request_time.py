"""In-process time of one service call, against the orjson floor of reading the same body.

    python bench/request_time.py [--iterations N]

Prints figures; it asserts nothing. Bodies: the CDS Hooks sandbox capture (2 resources) and an
order-sign request whose prefetch carries the `mas-f1` fixture patient (~50 resources).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import statistics
import time
from pathlib import Path

import orjson

from cds_service.config import Settings
from cds_service.pipeline import Runtime, call_service

ROOT = Path(__file__).resolve().parent.parent
SANDBOX = ROOT / "tests" / "fixtures" / "real-clients" / "cds-hooks-sandbox" / "order-sign-request.json"


def fixture_request() -> bytes:
    bundle = orjson.loads((ROOT / "fhir_fixtures" / "patients" / "mas-adult-female.json").read_bytes())
    by_type: dict[str, list[dict]] = {}
    for entry in bundle["entry"]:
        by_type.setdefault(entry["resource"]["resourceType"], []).append(entry)
    body = orjson.loads(SANDBOX.read_bytes())["body"]
    body["context"]["patientId"] = "mas-f1"
    body["prefetch"] = {
        "patient": by_type["Patient"][0]["resource"],
        "labs": {"resourceType": "Bundle", "type": "searchset", "entry": by_type["Observation"]},
        "medications": {"resourceType": "Bundle", "type": "searchset", "entry": by_type["MedicationRequest"]},
        "conditions": {"resourceType": "Bundle", "type": "searchset", "entry": by_type["Condition"]},
    }
    return orjson.dumps(body)


def timed(fn, iterations: int) -> list[float]:
    samples = []
    for _ in range(iterations):
        start = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - start) * 1e6)
    return samples


async def main(iterations: int) -> None:
    runtime = Runtime.create(Settings(rules_dir=ROOT / "rules"))
    gc.collect()
    gc.freeze()
    loop = asyncio.get_running_loop()
    for name, body in (
        ("sandbox capture", orjson.dumps(orjson.loads(SANDBOX.read_bytes())["body"])),
        ("mas-f1 fixture prefetch", fixture_request()),
    ):
        floor = statistics.median(timed(lambda body=body: orjson.loads(body), iterations))
        await call_service(runtime, "anakinra-order-sign", body)  # warm caches
        samples = []
        for _ in range(iterations):
            start = time.perf_counter()
            await call_service(runtime, "anakinra-order-sign", body)
            samples.append((time.perf_counter() - start) * 1e6)
        samples.sort()
        p50 = statistics.median(samples)
        p99 = samples[int(len(samples) * 0.99) - 1]
        print(
            f"{name}: {len(body) / 1024:.1f} KB  orjson.loads {floor:.0f} us  "
            f"call p50 {p50:.0f} us  p99 {p99:.0f} us  ratio {p50 / floor:.1f}x"
        )
    await runtime.aclose()
    del loop


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--iterations", type=int, default=2000)
    asyncio.run(main(parser.parse_args().iterations))
