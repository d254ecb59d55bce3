"""What accepting a suggestion would do to the orders, in words a prescriber reads: the draft before and
the order after, field by field, from the FHIR resources alone (nothing here knows any drug)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from cds_service.ruleformat.text import format_number

Resource = Mapping[str, Any]
Row = tuple[str, str]


def draft_orders(request: Mapping[str, Any]) -> dict[str, Resource]:
    """The request's draft orders by "ResourceType/id", as suggestions' actions refer to them."""
    context = request.get("context")
    bundle = context.get("draftOrders") if isinstance(context, dict) else None
    entries = bundle.get("entry") if isinstance(bundle, dict) else None
    found: dict[str, Resource] = {}
    for entry in entries if isinstance(entries, list) else ():
        resource = entry.get("resource") if isinstance(entry, dict) else None
        if isinstance(resource, dict) and resource.get("resourceType") and resource.get("id"):
            found[f"{resource['resourceType']}/{resource['id']}"] = resource
    return found


def action_view(action: Mapping[str, Any], drafts: Mapping[str, Resource]) -> dict[str, Any]:
    """One action of a suggestion: what it targets, and the rows before and after it is applied."""
    kind = str(action.get("type", ""))
    resource = action.get("resource") if isinstance(action.get("resource"), dict) else None
    before: Resource | None = None
    after: Resource | None = None
    targets: list[str] = []
    if kind == "update" and resource is not None:
        target = f"{resource.get('resourceType')}/{resource.get('id')}"
        targets = [target]
        before, after = drafts.get(target), resource
    elif kind == "create" and resource is not None:
        targets, after = [str(resource.get("resourceType", "resource"))], resource
    elif kind == "delete":
        targets = [str(t) for t in action.get("resourceId") or ()]
        before = next((drafts[t] for t in targets if t in drafts), None)
    return {
        "type": kind,
        "description": action.get("description"),
        "targets": targets,
        "rows": compare(before, after),
        "resource": resource,
    }


def compare(before: Resource | None, after: Resource | None) -> list[dict[str, Any]]:
    """Rows of label, before, after and whether it changed; a side that does not exist is None."""
    rows_before = dict(describe(before)) if before is not None else {}
    rows_after = dict(describe(after)) if after is not None else {}
    labels = list(dict.fromkeys([*rows_after, *rows_before]))
    return [
        {
            "label": label,
            "before": rows_before.get(label) if before is not None else None,
            "after": rows_after.get(label) if after is not None else None,
            "changed": before is not None
            and after is not None
            and rows_before.get(label) != rows_after.get(label),
        }
        for label in labels
    ]


def describe(resource: Resource) -> list[Row]:
    """The fields of an order that matter to whoever signs it, in reading order."""
    if resource.get("resourceType") != "MedicationRequest":
        return _describe_other(resource)
    rows: list[Row] = [("medication", _medication(resource))]
    bag = _contained(resource)
    if bag is not None:
        strength = _bag_strength(bag)
        if strength:
            rows.append(("bag", strength))
    for index, dosage in enumerate(_list(resource.get("dosageInstruction"))):
        prefix = "" if index == 0 else f"dosage {index + 1}: "
        rows += [(prefix + label, value) for label, value in _dosage(dosage)]
    rows.append(("status", f"{resource.get('status', '?')} / {resource.get('intent', '?')}"))
    return [(label, value) for label, value in rows if value]


def _describe_other(resource: Resource) -> list[Row]:
    rows: list[Row] = [("resource", str(resource.get("resourceType", "?")))]
    rows.append(("what", _concept(resource.get("code"))))
    rows.append(("status", " / ".join(str(resource[k]) for k in ("status", "intent") if resource.get(k))))
    rows.append(("note", "; ".join(str(n.get("text")) for n in _list(resource.get("note")) if n.get("text"))))
    return [(label, value) for label, value in rows if value]


def _dosage(dosage: Mapping[str, Any]) -> list[Row]:
    rows: list[Row] = []
    for dose_and_rate in _list(dosage.get("doseAndRate")):
        rows.append(("dose per administration", _quantity(dose_and_rate.get("doseQuantity"))))
        rows.append(("dose range", _range(dose_and_rate.get("doseRange"))))
        rows.append(("rate", _quantity(dose_and_rate.get("rateQuantity"))))
        rows.append(("rate", _ratio(dose_and_rate.get("rateRatio"))))
    rows.append(("timing", _timing(dosage.get("timing"))))
    rows.append(("route", _concept(dosage.get("route"))))
    rows.append(("instructions", str(dosage.get("text") or "")))
    extra = [_concept(item) for item in _list(dosage.get("additionalInstruction"))]
    rows.append(("additional instruction", "; ".join(e for e in extra if e)))
    return rows


def _medication(resource: Resource) -> str:
    concept = _concept(resource.get("medicationCodeableConcept"))
    if concept:
        return concept
    bag = _contained(resource)
    if bag is not None:
        return _concept(bag.get("code")) or "contained Medication"
    reference = resource.get("medicationReference")
    if isinstance(reference, dict):
        return str(reference.get("display") or reference.get("reference") or "")
    return ""


def _contained(resource: Resource) -> Resource | None:
    reference = resource.get("medicationReference")
    target = reference.get("reference") if isinstance(reference, dict) else None
    if not isinstance(target, str) or not target.startswith("#"):
        return None
    return next((c for c in _list(resource.get("contained")) if c.get("id") == target[1:]), None)


def _bag_strength(medication: Resource) -> str:
    parts = []
    for ingredient in _list(medication.get("ingredient")):
        strength = _ratio(ingredient.get("strength"), " in ")
        if strength and ingredient.get("isActive", True):
            parts.append(strength)
    return "; ".join(parts)


def _timing(timing: Any) -> str:
    if not isinstance(timing, dict):
        return ""
    repeat = timing.get("repeat")
    if isinstance(repeat, dict) and repeat.get("period") is not None:
        period = f"{_number(repeat['period'])} {repeat.get('periodUnit', '')}".strip()
        frequency = repeat.get("frequency", 1)
        return f"every {period}" if frequency == 1 else f"{_number(frequency)} times every {period}"
    return _concept(timing.get("code"))


def _concept(concept: Any) -> str:
    if not isinstance(concept, dict):
        return ""
    if concept.get("text"):
        return str(concept["text"])
    for coding in _list(concept.get("coding")):
        if coding.get("display"):
            return str(coding["display"])
    # Without a display, the code itself; its system after it, as a reader looks codes up.
    return ", ".join(
        f"{c.get('code', '?')} ({c['system']})" if c.get("system") else str(c.get("code", "?"))
        for c in _list(concept.get("coding"))
    )


def _quantity(quantity: Any) -> str:
    if not isinstance(quantity, dict) or quantity.get("value") is None:
        return ""
    unit = quantity.get("unit") or quantity.get("code") or ""
    return f"{quantity.get('comparator', '')}{_number(quantity['value'])} {unit}".strip()


def _range(value: Any) -> str:
    if not isinstance(value, dict):
        return ""
    low, high = _quantity(value.get("low")), _quantity(value.get("high"))
    return f"{low or '?'} to {high or '?'}" if low or high else ""


def _ratio(ratio: Any, between: str = " per ") -> str:
    if not isinstance(ratio, dict):
        return ""
    numerator, denominator = _quantity(ratio.get("numerator")), _quantity(ratio.get("denominator"))
    return f"{numerator}{between}{denominator}" if numerator and denominator else numerator


def _number(value: Any) -> str:
    return format_number(float(value)) if isinstance(value, int | float) else str(value)


def _list(value: Any) -> list[dict[str, Any]]:
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []
