"""What strict FHIR R4 validation (fhir.resources R4B) says of a draft order; informational only.

Real clients send draft orders that strict validation refuses (the CDS Hooks sandbox omits `intent`);
the order is still read leniently, and these notes say what was wrong, for explain.
"""

from __future__ import annotations

from typing import Any

from fhir.resources.R4B.fhirresourcemodel import FHIRAbstractModel
from fhir.resources.R4B.medicationrequest import MedicationRequest
from fhir.resources.R4B.servicerequest import ServiceRequest
from pydantic import ValidationError


def strict_notes(raw: dict[str, Any]) -> tuple[str, ...]:
    """What strict R4 validation says of a draft order; informational, the order is still read."""
    model = R4B_MODELS.get(raw["resourceType"])
    if model is None:
        return ()
    try:
        model.model_validate(raw)
    except ValidationError as exc:
        return tuple(
            f"{'.'.join(map(str, e['loc'])) or raw['resourceType']}: {e['msg']}" for e in exc.errors()
        )
    except (TypeError, ValueError) as exc:
        return (str(exc),)
    return ()


R4B_MODELS: dict[str, type[FHIRAbstractModel]] = {
    "MedicationRequest": MedicationRequest,
    "ServiceRequest": ServiceRequest,
}
