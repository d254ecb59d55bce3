"""A hook request made from a patient's resources and a draft order, with everything given as prefetch.

Rule cases and the playground both need "this patient, this order, this service" as the request an
EHR would send; composing it in one place keeps what they evaluate identical.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from cds_service.protocol.discovery import ServiceDefinition

Resource = dict[str, Any]
ORDER_HOOKS = ("order-sign", "order-select")


def bundle_resources(bundle: Mapping[str, Any]) -> list[Resource]:
    """The resources of a FHIR Bundle's entries; entries without one are skipped."""
    return [e["resource"] for e in bundle.get("entry", []) if isinstance(e.get("resource"), dict)]


def hook_request(
    service: ServiceDefinition,
    resources: Iterable[Resource],
    order: Mapping[str, Any] | None,
    hook_instance: str,
    user: str,
) -> dict[str, Any]:
    """The request `service` would receive for the patient in `resources` with `order` as the draft.

    Every prefetch key is filled from `resources`, so nothing needs fetching: a read
    (`Patient/{{context.patientId}}`) gets the first resource of that type or null, a search gets a
    searchset Bundle of every resource of that type. The draft order's subject defaults to the patient.
    """
    resources = list(resources)
    patient = next((r for r in resources if r.get("resourceType") == "Patient"), None)
    patient_id = patient.get("id") if patient else "unknown"
    context: dict[str, Any] = {"userId": user, "patientId": patient_id}
    if service.hook in ORDER_HOOKS:
        entries = []
        if order is not None:
            entries.append({"resource": {"subject": {"reference": f"Patient/{patient_id}"}, **order}})
        context["draftOrders"] = {"resourceType": "Bundle", "entry": entries}
        if service.hook == "order-select":
            context["selections"] = [f"{order['resourceType']}/{order.get('id')}"] if order else []
    return {
        "hook": service.hook,
        "hookInstance": hook_instance,
        "context": context,
        "prefetch": {key: _prefetch(item.query, resources) for key, item in service.prefetch.items()},
    }


def _prefetch(query: str, resources: list[Resource]) -> Resource | None:
    kind = query.split("?")[0].split("/")[0]
    if "?" not in query and "/" in query:
        return next((r for r in resources if r.get("resourceType") == kind), None)
    matching = [r for r in resources if r.get("resourceType") == kind]
    return {
        "resourceType": "Bundle",
        "type": "searchset",
        "total": len(matching),
        "entry": [{"resource": r} for r in matching],
    }
