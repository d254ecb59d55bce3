"""Suggestion builders that rule files name by `action:`; each returns CDS Hooks actions whose resources
are checked FHIR R4 (fhir.resources R4B) before any EHR sees them.

A builder knows how to write an order, never why: what to order and when to suggest it comes from the
rule file.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Mapping
from typing import Any, Protocol

from fhir.resources.R4B.servicerequest import ServiceRequest

from cds_service.facts.named import Fact


@dataclasses.dataclass(frozen=True)
class SuggestionContext:
    patient_id: str | None
    facts: Mapping[str, Fact]
    # Draft orders as the EHR sent them, by "ResourceType/id".
    draft_orders: Mapping[str, dict[str, Any]]


class Action(Protocol):
    def argument_problems(self, arguments: Mapping[str, Any], parameters: Mapping[str, Any]) -> list[str]: ...

    def build(self, arguments: Mapping[str, Any], context: SuggestionContext) -> list[dict[str, Any]] | None:
        """CDS Hooks actions, or None when this suggestion cannot be made for this request."""
        ...


class OrderLabTest:
    """Create a draft lab ServiceRequest, e.g. a repeat ferritin or a CBC with differential.

    arguments: code (system|code), display, optional note.
    """

    def argument_problems(self, arguments: Mapping[str, Any], parameters: Mapping[str, Any]) -> list[str]:
        problems = []
        code = arguments.get("code")
        system, _, value = code.partition("|") if isinstance(code, str) else ("", "", "")
        if not (system.strip() and value.strip()):
            problems.append("order-lab-test needs code: system|code (e.g. http://loinc.org|2276-4)")
        display = arguments.get("display")
        if not isinstance(display, str) or not display.strip():
            problems.append("order-lab-test needs display: the test's name")
        unknown = set(arguments) - {"code", "display", "note"}
        if unknown:
            problems.append(f"order-lab-test does not take {sorted(unknown)}")
        return problems

    def build(self, arguments: Mapping[str, Any], context: SuggestionContext) -> list[dict[str, Any]] | None:
        if not context.patient_id:
            return None
        system, _, code = str(arguments["code"]).partition("|")
        display = str(arguments["display"])
        resource: dict[str, Any] = {
            "resourceType": "ServiceRequest",
            "id": str(uuid.uuid4()),
            "status": "draft",
            "intent": "proposal",
            "category": [
                {
                    "coding": [
                        {
                            "system": "http://snomed.info/sct",
                            "code": "108252007",
                            "display": "Laboratory procedure",
                        }
                    ]
                }
            ],
            "code": {"coding": [{"system": system, "code": code, "display": display}], "text": display},
            "subject": {"reference": f"Patient/{context.patient_id}"},
        }
        if arguments.get("note"):
            resource["note"] = [{"text": str(arguments["note"])}]
        checked = ServiceRequest.model_validate(resource)
        return [
            {
                "type": "create",
                "description": f"Order {display}",
                "resource": checked.model_dump(mode="json", exclude_none=True),
            }
        ]


ACTIONS: dict[str, Action] = {"order-lab-test": OrderLabTest()}
