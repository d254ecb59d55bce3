"""A comparison server for bench/ehr.py: a HealthChain 0.16.1 CDS service doing the least a CDS service
does with W1. It runs in the bench-only virtual environment that bench/ehr.py makes (HealthChain is not
a dependency of this project), never in the project's own:

    <cache>/healthchain-0.16.1/bin/python -m uvicorn --app-dir bench healthchain_app:app --workers 2

A patient-view service: HealthChain validates the envelope (its CDSRequest model), the handler keeps the
ferritin results (LOINC 2276-4) of the `labs` prefetch and answers one card with the newest.
"""

from __future__ import annotations

from typing import Any

from healthchain.gateway import CDSHooksService, HealthChainAPI
from healthchain.gateway.cds import CDSHooksConfig
from healthchain.models import CDSRequest, CDSResponse

FERRITIN = ("http://loinc.org", "2276-4")

# Mounted at /cds-services/<id> like the other servers, so one load script serves all of them.
cds = CDSHooksService(config=CDSHooksConfig(base_path="", service_path="/cds-services"))


def _is_ferritin(resource: dict[str, Any]) -> bool:
    codings = resource.get("code", {}).get("coding", [])
    return any((c.get("system"), c.get("code")) == FERRITIN for c in codings)


@cds.hook("patient-view", id="anakinra-order-sign")
def ferritin(request: CDSRequest) -> CDSResponse:
    labs = (request.prefetch or {}).get("labs") or {}
    results = [e["resource"] for e in labs.get("entry", []) if _is_ferritin(e.get("resource", {}))]
    if not results:
        return CDSResponse(cards=[])
    newest = max(results, key=lambda r: r.get("effectiveDateTime", ""))
    quantity = newest.get("valueQuantity", {})
    return CDSResponse(
        cards=[
            {
                "summary": f"Ferritin {quantity.get('value')} {quantity.get('unit')} ({len(results)} results)",
                "indicator": "info",
                "source": {"label": "HealthChain comparison"},
            }
        ]
    )


app = HealthChainAPI(title="HealthChain comparison")
app.register_service(cds)
