"""Hypothesis strategies for hook requests: realistic ones first, then broken the ways EHRs break them.

Seeds are real: the CDS Hooks sandbox capture, fhir_fixtures/requests/order-sign-500mg-day.json, and a
request per fhir_fixtures/patients Bundle (its Patient, labs, medication orders and conditions as
prefetch) with a draft order in each shape of cds_service/facts/orders.py (A, B, C). Mutations
then reach into any depth: odd UCUM units, censored values, huge / negative / non-finite numbers,
missing fields, wrong types, unicode and control characters, very long strings, deep nesting, duplicate
ids and keys, malformed dates, broken bundles and MedicationRequests with broken dose, rate and bag.

Values JSON cannot carry in Python's types (1e999, 40-digit integers, lone surrogates, 5000-deep
nesting, duplicate keys, NaN) are sent verbatim as `orjson.Fragment`s.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import hypothesis.strategies as st
import orjson

from tests.conftest import ROOT
from tests.test_app import sandbox_order_sign

Json = Any
Draw = Callable[[st.SearchStrategy[Any]], Any]

SERVICES = {
    "anakinra-order-sign": "order-sign",
    "anakinra-order-select": "order-select",
    "mas-patient-view": "patient-view",
}
# Nothing listens on the discard port: a fetch the mutations provoke fails at once, never leaves the host.
FHIR_SERVER = "http://127.0.0.1:9/fhir"

UCUM = "http://unitsofmeasure.org"
LOINC = "http://loinc.org"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
SNOMED = "http://snomed.info/sct"

# What the labs prefetch asks for (rules/services/*.yaml).
LAB_CODES = (  # noqa: SIM905 - a list of codes reads better as one
    "2276-4 718-7 777-3 751-8 753-4 26499-4 770-8 6690-2 2571-8 14927-8 3255-7 1920-8 1742-6 2532-0 "
    "2160-0 14682-9 76039-7 8310-5 29463-7 8302-2 1988-5 600-7 664-3"
).split()
REAL_UNITS = (  # noqa: SIM905 - a list of codes reads better as one
    "ug/L ng/mL pmol/L g/dL g/L mmol/L 10*9/L 10*3/uL /uL % mg/dL umol/L Cel [degF] kg [lb_av] g cm "
    "[in_i] mg/L U/L [IU]/L ukat/L mg mL mg/d mg/h mg/kg/h mg/kg/d mL/h h min d wk mo a s"
).split()
ODD_UNITS = [
    "mg/dL",  # on a count
    "[degF]",
    "umol/L",
    "",
    " ",
    "{score}",  # UCUM: an annotated unity
    "{cells}",
    "{a}.{b}",
    "10*9/L",
    "10*12/L",
    "mL/min/{1.73_m2}",
    "mg/dL/",
    "((",
    "10.L/mL",
    "kg.m-2",
    "[pH]",
    "Ohm",
    "m/s",
    "1/min",
    "%{x}",
    "10*-3",
    "mg/mg",
    "K",
    "[degRe]",
    "mol",
    "eq/L",
    "mg\u0000/L",
    "µg/L",
    "MG/DL",
    "x" * 300,
]
UNITS = st.sampled_from(REAL_UNITS + ODD_UNITS) | st.text(max_size=12)
COMPARATORS = st.sampled_from([">", "<", ">=", "<=", "ad", "", "~", "=", "&lt;", ">>"]) | st.none()

# Numbers in JSON; sent verbatim (Fragment) what a Python float or orjson's 64-bit integers cannot hold.
INT64 = st.integers(min_value=-(2**63), max_value=2**63 - 1)
RAW_NUMBERS = [
    "18446744073709551615",
    "-9223372036854775809",
    "123456789012345678901234567890",
    "1e-400",
    "-0",
    "0e0",
    "-1E+308",
    "4.9e-324",
]
# Refused, 400: not JSON (NaN, Infinity, hex...), or JSON out of the decoder's range (1e999).
UNREADABLE_NUMBERS = ["1e999", "-1e999", "NaN", "Infinity", "-Infinity", "0x10", "01", "+1", ".5", "1."]
NUMBER = st.one_of(
    st.sampled_from([0, -0.0, -1, 1, 0.5, 1e-9, 1e308, -1e308, 5e-324, 2**53 + 1, 2**63 - 1, -(2**63)]),
    st.floats(allow_nan=False, allow_infinity=False),
    INT64,
    st.sampled_from(RAW_NUMBERS).map(lambda text: orjson.Fragment(text.encode())),
)
NUMBER_LIKE_STRINGS = st.sampled_from(
    ["NaN", "nan", "inf", "-inf", "Infinity", "1e999", "1,5", "12 mg", "<5", ">40000", "", "0x1F", "१२"]
)
DATE_ELEMENTS = "effectiveDateTime issued birthDate authoredOn onsetDateTime recordedDate performedDateTime"
DATE_KEYS = frozenset(f"{DATE_ELEMENTS} start end abatementDateTime lastUpdated".split())
ODD_DATES = [
    "0001-01-01",
    "9999-12-31T23:59:59Z",
    "2026-02-30",
    "2026-13-01",
    "2026-11-23T25:00:00Z",
    "2026-11-23T12:00:00",  # no offset
    "2026-11-23T12:00:00+14:00",
    "2026-11-23T12:00:00-12:00",
    "2026-11-23T12:00:00.123456789Z",
    "2026",
    "2026-11",
    "-0001-01-01",
    "10000-01-01",
    "yesterday",
    "",
    "2026-11-23T12:00:00Z/2026-11-24",
    "1970-01-01T00:00:00Z",
    "2100-01-01T00:00:00Z",
    "1900-01-01",
    "2026-11-23 12:00",
]
DATE_TEXT = st.one_of(
    st.sampled_from(ODD_DATES),
    st.datetimes().map(lambda d: d.isoformat()),
    st.dates().map(str),
)
DATES = DATE_TEXT | INT64
TEXT = st.one_of(
    st.text(max_size=40),
    st.text(st.characters(codec="utf-8", categories=["Cc", "Cf", "Zl", "Zp", "Mn", "So"]), max_size=20),
    st.sampled_from(
        [
            "\u0000",
            "\u202e",
            "\ufeff",
            "\U0001f600",
            "'; DROP TABLE cards; --",
            "{{context.patientId}}",
            "%s%n",
        ]
    ),
)
# "\ud800" escapes are JSON by RFC 8259's grammar but no Unicode text (its section 8.2): refused, 400.
LONE_SURROGATES = st.sampled_from(["\ud800", "\udfff", "a\ud83dz", "\ude00\ud83d"]).map(
    lambda s: orjson.Fragment(json.dumps(s).encode())
)
ANY_TEXT = TEXT | LONE_SURROGATES


def raw_json(text: str) -> orjson.Fragment:
    return orjson.Fragment(text.encode())


def _containers(inner: st.SearchStrategy[Json]) -> st.SearchStrategy[Json]:
    return st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)


def any_json(max_leaves: int = 6, text: st.SearchStrategy[Any] = ANY_TEXT) -> st.SearchStrategy[Json]:
    return st.recursive(st.one_of(st.none(), st.booleans(), NUMBER, text), _containers, max_leaves=max_leaves)


# --- seeds --------------------------------------------------------------------------------------------------


def _quantity(value: float, code: str) -> dict[str, Any]:
    return {"value": value, "unit": code, "system": UCUM, "code": code}


def _anakinra() -> dict[str, Any]:
    return {"coding": [{"system": RXNORM, "code": "72435", "display": "anakinra"}]}


def _route(code: str = "47625008") -> dict[str, Any]:
    return {"coding": [{"system": SNOMED, "code": code}]}


def draft_shapes(patient: str) -> list[list[dict[str, Any]]]:
    """The draftOrders entries of each order shape EHRs send (order-representation.md)."""
    common = {"resourceType": "MedicationRequest", "status": "draft", "intent": "order"}
    subject = {"reference": f"Patient/{patient}"}
    shape_a = {
        **common,
        "id": "draft-a",
        "subject": subject,
        "medicationCodeableConcept": _anakinra(),
        "dosageInstruction": [
            {
                "text": "anakinra 2400 mg/day continuous IV infusion",
                "route": _route(),
                "doseAndRate": [{"rateQuantity": _quantity(2400, "mg/d")}],
            }
        ],
    }
    bag = {
        "resourceType": "Medication",
        "id": "bag",
        "code": {"text": "anakinra 800 mg in sodium chloride 0.9% 250 mL"},
        "ingredient": [
            {
                "itemCodeableConcept": _anakinra(),
                "isActive": True,
                "strength": {"numerator": _quantity(800, "mg"), "denominator": _quantity(250, "mL")},
            },
            {"itemCodeableConcept": {"text": "sodium chloride 0.9%"}, "isActive": False},
        ],
    }
    dosage_b = {
        "route": _route(),
        "timing": {"repeat": {"frequency": 1, "period": 8, "periodUnit": "h"}},
        "doseAndRate": [{"doseQuantity": _quantity(800, "mg"), "rateQuantity": _quantity(31.25, "mL/h")}],
    }
    shape_b = {
        **common,
        "id": "draft-b",
        "subject": subject,
        "contained": [bag],
        "medicationReference": {"reference": "#bag"},
        "dosageInstruction": [dosage_b],
    }
    shape_b_referenced = {
        **common,
        "id": "draft-b2",
        "subject": subject,
        "medicationReference": {"reference": "Medication/bag"},
        "dosageInstruction": [{**dosage_b, "timing": {"code": {"text": "q8h"}}}],
    }
    shape_c = {
        **common,
        "id": "draft-c",
        "subject": subject,
        "medicationCodeableConcept": {"text": "Kineret 100 mg/0.67 mL prefilled syringe"},
        "dosageInstruction": [
            {
                "route": _route("34206005"),
                "timing": {"repeat": {"frequency": 1, "period": 1, "periodUnit": "d"}},
                "doseAndRate": [{"doseQuantity": _quantity(100, "mg")}],
            }
        ],
    }
    return [[shape_a], [shape_b], [shape_b_referenced, bag], [shape_c]]


def _searchset(resources: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "resourceType": "Bundle",
        "type": "searchset",
        "total": len(resources),
        "entry": [{"resource": r, "search": {"mode": "match"}} for r in resources],
    }


def _from_patient_bundle(path: Path, shape: list[dict[str, Any]]) -> dict[str, Any]:
    resources = [e["resource"] for e in orjson.loads(path.read_bytes())["entry"]]
    patient = next(r for r in resources if r["resourceType"] == "Patient")

    def of(kind: str) -> dict[str, Any]:
        return _searchset([r for r in resources if r["resourceType"] == kind])

    return {
        "hook": "order-sign",
        "hookInstance": "0b6d7c0e-3a55-4d4b-9a34-5f5d0f3d1c2e",
        "fhirServer": FHIR_SERVER,
        "context": {
            "userId": "Practitioner/fuzz",
            "patientId": patient["id"],
            "draftOrders": {
                "resourceType": "Bundle",
                "type": "collection",
                "entry": [{"resource": r} for r in shape],
            },
        },
        "prefetch": {
            "patient": patient,
            "labs": of("Observation"),
            "medications": of("MedicationRequest"),
            "specimens": of("Specimen"),
            "conditions": of("Condition"),
        },
    }


@functools.cache
def seeds() -> tuple[bytes, ...]:
    """Realistic order-sign requests as JSON (each example decodes its own copy)."""
    sandbox = sandbox_order_sign()
    sandbox["fhirServer"] = FHIR_SERVER
    from_file = orjson.loads((ROOT / "fhir_fixtures" / "requests" / "order-sign-500mg-day.json").read_bytes())
    out = [sandbox, from_file]
    for index, path in enumerate(sorted((ROOT / "fhir_fixtures" / "patients").glob("*.json"))):
        patient = orjson.loads(path.read_bytes())["entry"][0]["resource"]["id"]
        shapes = draft_shapes(patient)
        out.append(_from_patient_bundle(path, shapes[index % len(shapes)]))
    return tuple(orjson.dumps(body) for body in out)


def for_service(body: dict[str, Any], service_id: str) -> dict[str, Any]:
    """An order-sign request made into a request for `service_id`."""
    hook = SERVICES[service_id]
    body["hook"] = hook
    context = body["context"]
    if hook == "order-select":
        entries = context["draftOrders"]["entry"]
        context["selections"] = [f"MedicationRequest/{entries[0]['resource']['id']}"]
    elif hook == "patient-view":
        del context["draftOrders"]
    return body


def requests_for(service_id: str) -> st.SearchStrategy[dict[str, Any]]:
    """Unmutated realistic requests for the service."""
    return st.sampled_from(seeds()).map(lambda data: for_service(orjson.loads(data), service_id))


# --- walking a request --------------------------------------------------------------------------------------

Slot = tuple[Any, Any]  # (container, key or index): container[key] is the node


def slots(node: Json) -> Iterator[Slot]:
    """Every (container, key) below `node`, depth first."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield node, key
            yield from slots(value)
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield node, index
            yield from slots(value)


def _clone(node: Json) -> Json:
    """A deep copy that shares the (immutable, unpicklable) orjson.Fragments."""
    if isinstance(node, dict):
        return {key: _clone(value) for key, value in node.items()}
    if isinstance(node, list):
        return [_clone(value) for value in node]
    return node


def _pick(draw: Draw, candidates: list[Slot]) -> Slot | None:
    if not candidates:
        return None
    return candidates[draw(st.integers(0, len(candidates) - 1))]


def _is_quantity(value: Json) -> bool:
    # A Coding has a code too: it gets a unit or a comparator, elements FHIR does not define there.
    return (
        isinstance(value, dict)
        and ("value" in value or "code" in value or "unit" in value)
        and ("resourceType" not in value)
    )


def _resources(body: Json) -> list[dict[str, Any]]:
    return [
        c[k] for c, k in slots(body) if isinstance(c[k], dict) and isinstance(c[k].get("resourceType"), str)
    ]


def _bundles(body: Json) -> list[dict[str, Any]]:
    return [r for r in _resources(body) if r["resourceType"] == "Bundle" and isinstance(r.get("entry"), list)]


# --- mutations: each changes `body` in place (or returns a replacement) -------------------------------------


def odd_unit(draw: Draw, body: Json) -> Json:
    slot = _pick(draw, [(c, k) for c, k in slots(body) if _is_quantity(c[k])])
    if slot is not None:
        quantity = slot[0][slot[1]]
        unit = draw(UNITS)
        field = draw(st.sampled_from(["code", "unit", "both", "drop-code", "system"]))
        if field in ("code", "both"):
            quantity["code"] = unit
        if field in ("unit", "both"):
            quantity["unit"] = unit
        if field == "drop-code":
            quantity.pop("code", None)
        if field == "system":
            quantity["system"] = draw(st.sampled_from(["http://snomed.info/sct", "", "urn:x", UCUM + "/"]))
    return body


def censored(draw: Draw, body: Json) -> Json:
    slot = _pick(draw, [(c, k) for c, k in slots(body) if _is_quantity(c[k])])
    if slot is not None:
        slot[0][slot[1]]["comparator"] = draw(COMPARATORS)
        if draw(st.booleans()):
            slot[0][slot[1]]["value"] = draw(NUMBER)
    return body


def odd_number(draw: Draw, body: Json) -> Json:
    numbers = [(c, k) for c, k in slots(body) if isinstance(c[k], int | float) and not isinstance(c[k], bool)]
    slot = _pick(draw, numbers)
    if slot is not None:
        slot[0][slot[1]] = draw(NUMBER | NUMBER_LIKE_STRINGS)
    return body


def unreadable_number(draw: Draw, body: Json) -> Json:
    numbers = [(c, k) for c, k in slots(body) if isinstance(c[k], int | float) and not isinstance(c[k], bool)]
    slot = _pick(draw, numbers)
    if slot is not None:
        slot[0][slot[1]] = raw_json(draw(st.sampled_from(UNREADABLE_NUMBERS)))
    return body


def drop_field(draw: Draw, body: Json) -> Json:
    slot = _pick(draw, [(c, k) for c, k in slots(body) if isinstance(c, dict)] + [(body, k) for k in body])
    if slot is not None:
        del slot[0][slot[1]]
    return body


def wrong_type(draw: Draw, body: Json) -> Json:
    slot = _pick(draw, list(slots(body)))
    if slot is not None:
        container, key = slot
        current = container[key]
        replacement = draw(
            st.one_of(
                st.just([current]),  # a list for an object, a list of the number...
                st.just({"value": current}),
                st.just(str(current)[:50]),
                st.none(),
                st.booleans(),
                NUMBER,
                st.just([]),
                st.just({}),
                any_json(),
            )
        )
        container[key] = replacement
    return body


def odd_text(draw: Draw, body: Json) -> Json:
    slot = _pick(draw, [(c, k) for c, k in slots(body) if isinstance(c[k], str)])
    if slot is not None:
        slot[0][slot[1]] = draw(ANY_TEXT)
    return body


def long_text(draw: Draw, body: Json) -> Json:
    slot = _pick(draw, [(c, k) for c, k in slots(body) if isinstance(c[k], str)])
    if slot is not None:
        size = draw(st.sampled_from([140, 1_000, 65_536, 300_000]))
        unit = draw(st.sampled_from(["x", "é", "😀", "\u0000", "<", "a b"]))
        slot[0][slot[1]] = unit * size
    return body


def deep_nesting(draw: Draw, body: Json) -> Json:
    """A FHIR extension nested `depth` levels into some resource (or any object, or array)."""
    depth = draw(st.sampled_from([50, 256, 1_000, 5_000]))
    kind = draw(st.sampled_from(["extension", "object", "array"]))
    if kind == "extension":
        nested = (
            '{"url":"http://x","extension":[' * depth
            + '{"url":"http://x","valueString":"deep"}'
            + "]}" * depth
        )
    elif kind == "object":
        nested = '{"a":' * depth + "1" + "}" * depth
    else:
        nested = "[" * depth + "]" * depth
    targets = _resources(body) + [c[k] for c, k in slots(body) if isinstance(c[k], dict)] + [body]
    target = targets[draw(st.integers(0, len(targets) - 1))]
    target[draw(st.sampled_from(["extension", "modifierExtension", "x-deep", "text"]))] = raw_json(nested)
    return body


def duplicate_ids(draw: Draw, body: Json) -> Json:
    bundles = _bundles(body)
    if not bundles:
        return body
    bundle = bundles[draw(st.integers(0, len(bundles) - 1))]
    entries = bundle["entry"]
    if not entries:
        return body
    index = draw(st.integers(0, len(entries) - 1))
    how = draw(st.sampled_from(["copy", "same-id", "twice-as-many"]))
    if how == "copy":
        entries.insert(draw(st.integers(0, len(entries))), _clone(entries[index]))
    elif how == "same-id":
        duplicate = entries[index].get("resource", {}).get("id") if isinstance(entries[index], dict) else None
        for entry in entries:
            if isinstance(entry, dict) and isinstance(entry.get("resource"), dict):
                entry["resource"]["id"] = duplicate
    else:
        entries.extend(_clone(entries))
    return body


def duplicate_key(draw: Draw, body: Json) -> Json:
    """An object sent with one of its keys twice (JSON allows it; which one wins is the parser's)."""
    slot = _pick(draw, [(c, k) for c, k in slots(body) if isinstance(c[k], dict) and c[k]])
    if slot is not None:
        container, key = slot
        node = container[key]
        name = draw(st.sampled_from(sorted(node, key=str)))
        other = orjson.dumps(draw(st.one_of(st.none(), INT64, st.text(max_size=5))))
        encoded = orjson.dumps(node)
        container[key] = orjson.Fragment(encoded[:-1] + b"," + orjson.dumps(str(name)) + b":" + other + b"}")
    return body


def odd_date(draw: Draw, body: Json) -> Json:
    slot = _pick(draw, [(c, k) for c, k in slots(body) if isinstance(c, dict) and k in DATE_KEYS])
    if slot is not None:
        slot[0][slot[1]] = draw(DATES)
    return body


def odd_bundle(draw: Draw, body: Json) -> Json:
    bundles = _bundles(body)
    if not bundles:
        return body
    bundle = bundles[draw(st.integers(0, len(bundles) - 1))]
    how = draw(
        st.sampled_from(
            [
                "entry-null",
                "entry-object",
                "resource-null",
                "no-resource",
                "outcome",
                "nested",
                "link",
                "total",
                "type",
            ]
        )
    )
    if how == "entry-null":
        bundle["entry"] = None
    elif how == "entry-object":
        bundle["entry"] = {"resource": bundle["entry"][0]} if bundle["entry"] else {}
    elif how == "resource-null":
        bundle["entry"].append({"resource": None})
    elif how == "no-resource":
        bundle["entry"].append({"fullUrl": "urn:uuid:x", "search": {"mode": "match"}})
    elif how == "outcome":
        issue = {
            "severity": draw(st.sampled_from(["error", "warning", "fatal", "", "odd"])),
            "code": "too-costly",
        }
        mode = draw(st.sampled_from(["outcome", "match", "include"]))
        bundle["entry"].append(
            {"resource": {"resourceType": "OperationOutcome", "issue": [issue]}, "search": {"mode": mode}}
        )
    elif how == "nested":
        bundle["entry"].append({"resource": _clone(bundle)})
    elif how == "link":
        url = draw(st.sampled_from(["http://127.0.0.1:9/fhir/next", "https://evil.example/steal", "", "::"]))
        bundle["link"] = [{"relation": "next", "url": url}]
    elif how == "total":
        bundle["total"] = draw(NUMBER)
    else:
        bundle["type"] = draw(st.sampled_from(["transaction", "", "document", "batch-response"]))
    return body


def odd_prefetch(draw: Draw, body: Json) -> Json:
    prefetch = body.get("prefetch")
    if not isinstance(prefetch, dict):
        return body
    key = draw(st.sampled_from(["patient", "labs", "medications", "conditions", "extra"]))
    how = draw(st.sampled_from(["null", "absent", "outcome", "other-type", "not-a-resource", "empty-bundle"]))
    if how == "null":
        prefetch[key] = None
    elif how == "absent":
        prefetch.pop(key, None)
    elif how == "outcome":
        prefetch[key] = {
            "resourceType": "OperationOutcome",
            "issue": [{"severity": "error", "code": "exception"}],
        }
    elif how == "other-type":
        prefetch[key] = {
            "resourceType": draw(st.sampled_from(["Observation", "Patient", "Basic", "", "Bundle"]))
        }
    elif how == "not-a-resource":
        prefetch[key] = draw(any_json())
    else:
        prefetch[key] = {"resourceType": "Bundle", "type": "searchset", "total": 0}
    return body


def odd_context(draw: Draw, body: Json) -> Json:
    context = body.get("context")
    if not isinstance(context, dict):
        return body
    field = draw(
        st.sampled_from(["userId", "patientId", "encounterId", "selections", "hookInstance", "hook"])
    )
    value = draw(
        st.one_of(
            st.sampled_from(
                [
                    "Practitioner/",
                    "Patient/x/y",
                    "../../etc/passwd",
                    "a" * 129,
                    "mas-f1",
                    ["MedicationRequest/draft-a", "MedicationRequest/nope"],
                    ["Observation/1"],
                    "00000000-0000-0000-0000-000000000000",
                    "5F0E1C2A-8D3B-4C6E-9A71-2B4D6F8E0A13",
                ]
            ),
            ANY_TEXT,
            any_json(),
        )
    )
    (body if field in ("hookInstance", "hook") else context)[field] = value
    return body


def odd_authorization(draw: Draw, body: Json) -> Json:
    body["fhirAuthorization"] = draw(
        st.one_of(
            st.just(
                {
                    "access_token": "t",
                    "token_type": "Bearer",
                    "expires_in": 300,
                    "scope": "patient/*.read",
                    "subject": "s",
                }
            ),
            st.fixed_dictionaries(
                {
                    "access_token": ANY_TEXT,
                    "token_type": ANY_TEXT,
                    "expires_in": NUMBER,
                    "scope": ANY_TEXT,
                    "subject": ANY_TEXT,
                }
            ),
            any_json(),
        )
    )
    if draw(st.booleans()):
        body["fhirServer"] = draw(
            st.sampled_from([FHIR_SERVER, "http://127.0.0.1:9", "ftp://x", "", "http://[::1", 5])
        )
    return body


def replace_draft(draw: Draw, body: Json) -> Json:
    context = body.get("context")
    drafts = context.get("draftOrders") if isinstance(context, dict) else None
    if isinstance(drafts, dict) and isinstance(drafts.get("entry"), list):
        drafts["entry"] = [{"resource": r} for r in draw(draft_orders())]
    return body


def replace_labs(draw: Draw, body: Json) -> Json:
    prefetch = body.get("prefetch")
    if isinstance(prefetch, dict):
        prefetch["labs"] = _searchset(draw(st.lists(observations(), max_size=12)))
    return body


MUTATIONS: list[Callable[[Draw, Json], Json]] = [
    odd_unit,
    censored,
    odd_number,
    unreadable_number,
    drop_field,
    wrong_type,
    odd_text,
    long_text,
    deep_nesting,
    duplicate_ids,
    duplicate_key,
    odd_date,
    odd_bundle,
    odd_prefetch,
    odd_context,
    odd_authorization,
    replace_draft,
    replace_labs,
]


@st.composite
def mutated_requests(draw: Draw, service_id: str) -> bytes:
    """A realistic request for `service_id` with one to four mutations, as the bytes to post."""
    body = draw(requests_for(service_id))
    for mutation in draw(st.lists(st.sampled_from(MUTATIONS), min_size=1, max_size=4)):
        body = mutation(draw, body)
    return orjson.dumps(body)


# --- well-formed envelopes around odd clinical content ------------------------------------------------------


def quantities(units: st.SearchStrategy[str] = UNITS) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries(
        {},
        optional={
            "value": NUMBER | NUMBER_LIKE_STRINGS,
            "unit": units,
            "code": units,
            "system": st.sampled_from([UCUM, "", "http://example.org/units"]),
            "comparator": COMPARATORS,
        },
    )


def _medication(ident: str) -> st.SearchStrategy[dict[str, Any]]:
    ingredient = st.fixed_dictionaries(
        {"itemCodeableConcept": st.sampled_from([_anakinra(), {"text": "sodium chloride 0.9%"}, {}])},
        optional={
            "isActive": st.booleans() | st.none(),
            "strength": st.fixed_dictionaries(
                {}, optional={"numerator": quantities(), "denominator": quantities()}
            ),
        },
    )
    return st.fixed_dictionaries(
        {"resourceType": st.just("Medication"), "id": st.just(ident)},
        optional={
            "code": st.sampled_from([_anakinra(), {"text": "anakinra 800 mg in 250 mL"}]),
            "ingredient": st.lists(ingredient, max_size=3),
        },
    )


def _timing() -> st.SearchStrategy[Any]:
    repeat = st.fixed_dictionaries(
        {},
        optional={
            "frequency": NUMBER,
            "period": NUMBER,
            "periodUnit": st.sampled_from(["h", "d", "min", "s", "wk", "mo", "a", "", "{dose}", "mg", "H"])
            | st.text(max_size=4),
            "duration": NUMBER,
            "when": st.lists(st.sampled_from(["MORN", "ACM", ""]), max_size=2),
        },
    )
    code = st.sampled_from(
        [
            {"text": "q8h"},
            {"text": "Q6H"},
            {"text": "BID"},
            {"text": "continuous"},
            {"coding": [{"code": "Q8H"}]},
            {"text": ""},
        ]
    )
    return st.one_of(st.fixed_dictionaries({}, optional={"repeat": repeat, "code": code}), any_json(3, TEXT))


def _dosage() -> st.SearchStrategy[dict[str, Any]]:
    dose_and_rate = st.fixed_dictionaries(
        {},
        optional={
            "doseQuantity": quantities(),
            "rateQuantity": quantities(),
            "doseRange": st.fixed_dictionaries({}, optional={"low": quantities(), "high": quantities()}),
            "rateRatio": st.fixed_dictionaries(
                {}, optional={"numerator": quantities(), "denominator": quantities()}
            ),
        },
    )
    route = st.sampled_from(
        [
            _route(),
            _route("34206005"),
            {"text": "IV"},
            {"text": "subcut"},
            {"text": "oral"},
            {"coding": [{}]},
            {},
        ]
    )
    return st.fixed_dictionaries(
        {},
        optional={
            "text": TEXT,
            "route": route | any_json(3, TEXT),
            "timing": _timing(),
            "doseAndRate": st.lists(dose_and_rate | any_json(3, TEXT), max_size=3),
            "additionalInstruction": st.lists(st.fixed_dictionaries({"text": TEXT}), max_size=2),
        },
    )


def medication_requests(ident: str = "draft-fuzz") -> st.SearchStrategy[dict[str, Any]]:
    """A MedicationRequest in any shape: A (daily rate), B (bag: contained or referenced Medication), C (SC)
    and whatever lies between, each value possibly broken."""
    medication = st.one_of(
        st.fixed_dictionaries(
            {
                "medicationCodeableConcept": st.sampled_from(
                    [_anakinra(), {"text": "Kineret"}, {"text": "meropenem"}, {}]
                )
            }
        ),
        st.fixed_dictionaries(
            {
                "medicationReference": st.just({"reference": "#bag"}),
                "contained": st.lists(_medication("bag"), min_size=1, max_size=2),
            }
        ),
        st.fixed_dictionaries(
            {
                "medicationReference": st.sampled_from(
                    [
                        {"reference": "Medication/bag"},
                        {"reference": "Medication/missing"},
                        {"reference": "#"},
                        {"reference": ""},
                        {"display": "anakinra"},
                    ]
                )
            }
        ),
    )
    return st.builds(
        lambda base, med, extra: {**base, **med, **extra},
        st.fixed_dictionaries(
            {"resourceType": st.just("MedicationRequest"), "id": st.just(ident)},
            optional={
                "status": st.sampled_from(["draft", "active", "entered-in-error", "", "DRAFT"]),
                "intent": st.sampled_from(["order", "proposal", "plan"]),
                "subject": st.sampled_from(
                    [{"reference": "Patient/mas-f1"}, {"reference": "Patient/other"}, {}]
                ),
                "authoredOn": DATES,
            },
        ),
        medication,
        st.fixed_dictionaries({}, optional={"dosageInstruction": st.lists(_dosage(), max_size=3)}),
    )


@st.composite
def draft_orders(draw: Draw) -> list[dict[str, Any]]:
    """One to three draft MedicationRequests (same id possible), perhaps with a Medication beside them."""
    count = draw(st.integers(1, 3))
    ids = draw(st.lists(st.sampled_from(["draft-a", "draft-b", "draft-c"]), min_size=count, max_size=count))
    orders: list[dict[str, Any]] = [draw(medication_requests(ident)) for ident in ids]
    if draw(st.booleans()):
        orders.append(draw(_medication("bag")))
    return orders


@st.composite
def observations(draw: Draw) -> dict[str, Any]:
    code = draw(st.sampled_from(LAB_CODES) | st.text(max_size=8))
    value = draw(
        st.one_of(
            quantities().map(lambda q: {"valueQuantity": q}),
            st.sampled_from(["<5", ">40000", "positive", ""]).map(lambda s: {"valueString": s}),
            st.just(
                {
                    "valueCodeableConcept": {
                        "coding": [{"system": SNOMED, "code": "87172008"}],
                        "text": "E. coli",
                    }
                }
            ),
            st.just({}),
        )
    )
    when = draw(
        st.one_of(
            DATES.map(lambda d: {"effectiveDateTime": d}),
            st.fixed_dictionaries({}, optional={"start": DATES, "end": DATES}).map(
                lambda p: {"effectivePeriod": p}
            ),
            DATES.map(lambda d: {"issued": d}),
            st.just({}),
        )
    )
    extra = draw(
        st.fixed_dictionaries(
            {},
            optional={
                "referenceRange": st.lists(
                    st.fixed_dictionaries({}, optional={"low": quantities(), "high": quantities()}),
                    max_size=2,
                ),
                "component": st.lists(
                    st.fixed_dictionaries(
                        {
                            "code": st.just({"coding": [{"system": LOINC, "code": code}]}),
                            "valueQuantity": quantities(),
                        }
                    ),
                    max_size=2,
                ),
                "interpretation": st.just([{"coding": [{"code": "H"}]}]),
                "specimen": st.just({"reference": "Specimen/blood"}),
            },
        )
    )
    return {
        "resourceType": "Observation",
        "id": draw(st.sampled_from(["o1", "o2", "o3"]) | st.text(max_size=6)),
        "status": draw(
            st.sampled_from(["final", "amended", "preliminary", "entered-in-error", "cancelled", "", "FINAL"])
        ),
        "code": {
            "coding": [{"system": draw(st.sampled_from([LOINC, "", "http://acme.org/labs"])), "code": code}]
        },
        "subject": {"reference": "Patient/mas-f1"},
        **value,
        **when,
        **extra,
    }


@st.composite
def valid_envelope_requests(draw: Draw, service_id: str) -> bytes:
    """A request the protocol layer accepts (right hook, ids, draftOrders a Bundle of objects, every
    prefetch value a resource) around odd clinical content: the service must answer it, 200."""
    body = draw(requests_for(service_id))
    prefetch = body["prefetch"]
    if draw(st.booleans()):
        prefetch["labs"] = _searchset(draw(st.lists(observations(), max_size=15)))
    if draw(st.booleans()):
        prefetch["patient"] = draw(
            st.fixed_dictionaries(
                {"resourceType": st.just("Patient"), "id": st.just(body["context"]["patientId"])},
                optional={
                    "gender": st.sampled_from(["female", "male", "other", "unknown", "", "F"]),
                    "birthDate": DATE_TEXT,  # a number there makes the Patient unreadable: a 400
                },
            )
        )
    for key in ("medications", "conditions"):
        if draw(st.booleans()):
            prefetch[key] = draw(st.none() | st.just(_searchset([])))
    if "draftOrders" in body["context"]:
        orders = draw(draft_orders())
        body["context"]["draftOrders"]["entry"] = [{"resource": r} for r in orders]
        if "selections" in body["context"]:
            body["context"]["selections"] = [f"MedicationRequest/{orders[0]['id']}"]
    return orjson.dumps(body)
