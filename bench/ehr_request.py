"""W1 as an EHR sends it: the service's own prefetch templates resolved against W1's resources.

    python bench/ehr_request.py [--now 2026-11-23T12:00:00Z] > ehr.json

An EHR reads the service's discovery entry, fills each prefetch template's tokens from the hook context
and runs the query on its FHIR server; the answers (a resource for a read, a searchset Bundle for a
search) go into the call's `prefetch`. Here the FHIR server is the tests' own (tests/fhirserver.py,
called in process over ASGI) holding W1's resources (bench/w1.py), so each key gets exactly what its
query selects: the Patient, the Observations of the listed LOINC codes newest first, the active and
completed MedicationRequests, the Conditions, and empty Bundles for specimens, procedures and encounters
(W1 has none). Deterministic for a given `now`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import orjson
import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from w1 import w1_request

from cds_service.protocol.templates import fill_template
from tests.fhirserver import BASE_PATH, FhirApp

SERVICE_FILE = ROOT / "rules" / "services" / "anakinra-order-sign.yaml"
FHIR_BASE = "https://ehr.bench.example"


def ehr_request(now: datetime, seed: int = 1, service_file: Path = SERVICE_FILE) -> dict[str, Any]:
    """W1's envelope and draft order, with `prefetch` resolved from the service file's templates."""
    request = w1_request(now, seed)
    resources = [request["prefetch"]["patient"]]
    for key in ("labs", "medications", "conditions"):
        resources += [entry["resource"] for entry in request["prefetch"][key]["entry"]]
    templates = yaml.safe_load(service_file.read_text())["prefetch"]
    request["prefetch"] = asyncio.run(_resolve(templates, request["context"], resources))
    return request


def ehr_body(now: datetime, seed: int = 1) -> bytes:
    return orjson.dumps(ehr_request(now, seed))


async def _resolve(
    templates: dict[str, dict[str, Any]], context: dict[str, Any], resources: list[dict[str, Any]]
) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as folder:
        bundle = {
            "resourceType": "Bundle",
            "type": "collection",
            "entry": [{"resource": r} for r in resources],
        }
        (Path(folder) / "w1.json").write_text(json.dumps(bundle))
        server = FhirApp(Path(folder))
    transport = httpx.ASGITransport(app=server)
    prefetch: dict[str, Any] = {}
    async with httpx.AsyncClient(transport=transport, base_url=FHIR_BASE + BASE_PATH) as client:
        for key, template in templates.items():
            query = fill_template(template["query"], context)
            if query is None:
                continue  # a token the context lacks: an EHR sends nothing for this key
            response = await client.get("/" + query)
            response.raise_for_status()
            prefetch[key] = response.json()
    return prefetch


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--now", default="2026-11-23T12:00:00Z", help="the request's time (ISO 8601)")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    sys.stdout.buffer.write(ehr_body(datetime.fromisoformat(args.now), args.seed))


if __name__ == "__main__":
    main()
