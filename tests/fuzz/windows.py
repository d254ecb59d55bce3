"""Strategies for requests whose data sit inside the calculations' windows, around a fixed "now".

The body fuzzers in strategies.py mutate realistic requests, but their results rarely land inside a
window that ends at the time of the call, so the calculations (trend, AKI, exposure, charts) seldom see
two results to compare. Here every request is the 500 mg/day order of fhir_fixtures/requests with
results of any analyte the rules read (rules/facts/analytes.yaml) placed within hours of NOW: pairs 12 h
apart, at one instant, just before NOW or after it; values anywhere from 5e-324 to 1.8e308, in the
analyte's unit or any other; prior orders whose bounds, durations and doses are extreme; a draft order
likewise. The service runs with its clock at NOW (create_app(clock=...)).
"""

from __future__ import annotations

import copy
import functools
from datetime import UTC, datetime, timedelta
from typing import Any

import hypothesis.strategies as st
import orjson
import yaml

from tests.conftest import ROOT, RULES
from tests.fuzz.strategies import COMPARATORS, ODD_UNITS, REAL_UNITS, UCUM, Draw, for_service

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
BASE_PATH = ROOT / "fhir_fixtures" / "requests" / "order-sign-500mg-day.json"

# Numbers at the edges of what a float holds and of what the facts take (facts/numbers.py), and ordinary ones.
EDGE_NUMBERS = [
    0,
    -0.0,
    5e-324,
    -5e-324,
    2.2250738585072014e-308,
    1e-300,
    1e-150,
    1e-16,
    1e-15,
    0.001,
    0.5,
    1,
    12,
    400,
    5200,
    40000,
    1e15,
    1.0000001e15,
    1e150,
    1e300,
    1.7e308,
    1.7976931348623157e308,
    -1e308,
    -1,
    2**63 - 1,
]
VALUES = st.one_of(
    st.sampled_from(EDGE_NUMBERS),
    st.floats(allow_nan=False, allow_infinity=False),
    st.floats(min_value=1e-3, max_value=1e5),
)
# Hours before NOW: the same instant, minutes apart, the trend's 12 h spacing, the windows' edges, after NOW.
OFFSETS = st.one_of(
    st.sampled_from([0, 0.001, 1, 11, 12, 12.0001, 23, 24, 47.99, 48, 72, 96, 168, 335, 336, -1, -0.5]),
    st.floats(min_value=-2, max_value=400, allow_nan=False),
)


@functools.cache
def analytes() -> tuple[tuple[str, str], ...]:
    """(system|code, canonical unit) for every code of every analyte the rules read."""
    document = yaml.safe_load((RULES / "facts" / "analytes.yaml").read_text(encoding="utf-8"))
    found = []
    for analyte in document["analytes"].values():
        for code in analyte.get("codes") or ():
            key = code if isinstance(code, str) else next(iter(code))
            found.append((key, analyte["unit"]))
    return tuple(found)


@functools.cache
def _base() -> bytes:
    return BASE_PATH.read_bytes()


def _time(hours_before: float) -> str:
    try:
        moment = NOW - timedelta(hours=hours_before)
    except OverflowError:  # before year 1 or after 9999: the calendar's ends, as EHRs write "no date"
        return "0001-01-01T00:00:00Z" if hours_before > 0 else "9999-12-31T23:59:59Z"
    return moment.isoformat().replace("+00:00", "Z")


@st.composite
def results(draw: Draw, index: int) -> list[dict[str, Any]]:
    """One to four results of one analyte inside its window."""
    key, canonical = draw(st.sampled_from(analytes()))
    system, _, code = key.partition("|")
    count = draw(st.integers(1, 4))
    start = draw(OFFSETS)
    spacing = draw(st.sampled_from([0, 0.5, 12, 24]) | st.floats(min_value=0, max_value=72))
    out = []
    for n in range(count):
        unit = draw(st.sampled_from([canonical] * 4 + REAL_UNITS + ODD_UNITS[:8]))
        quantity: dict[str, Any] = {"value": draw(VALUES), "unit": unit, "system": UCUM, "code": unit}
        if draw(st.integers(0, 5)) == 0:
            quantity["comparator"] = draw(COMPARATORS)
        out.append(
            {
                "resourceType": "Observation",
                "id": f"win-{index}-{n}",
                "status": "final",
                "code": {"coding": [{"system": system, "code": code}]},
                "subject": {"reference": "Patient/infusion-m1"},
                "effectiveDateTime": _time(start + n * spacing),
                "valueQuantity": quantity,
            }
        )
    return out


def _duration(draw: Draw) -> dict[str, Any]:
    unit = draw(st.sampled_from(["d", "h", "a", "mo", "wk", "min", "s", "mg", ""]))
    return {"value": draw(VALUES), "unit": unit, "system": UCUM, "code": unit}


@st.composite
def timing(draw: Draw) -> dict[str, Any]:
    repeat: dict[str, Any] = {}
    which = draw(st.sets(st.sampled_from(["boundsDuration", "boundsPeriod", "period"]), max_size=3))
    if "boundsDuration" in which:
        repeat["boundsDuration"] = _duration(draw)
    if "boundsPeriod" in which:
        repeat["boundsPeriod"] = {
            key: _time(draw(OFFSETS) * draw(st.sampled_from([1, 10, 1000, 1e7])))
            for key in draw(st.sets(st.sampled_from(["start", "end"]), min_size=1))
        }
    if "period" in which:
        repeat.update(
            frequency=draw(st.sampled_from([1, 2, 0, 2**63 - 1])),
            period=draw(VALUES),
            periodUnit=draw(st.sampled_from(["h", "d", "min", "s", "a"])),
        )
    return {"repeat": repeat}


@st.composite
def anakinra_orders(draw: Draw, ident: str, status: str) -> dict[str, Any]:
    """A MedicationRequest for anakinra with an extreme dose, rate or timing."""
    base = orjson.loads(_base())["context"]["draftOrders"]["entry"][0]["resource"]
    order = copy.deepcopy(base)
    order.update(id=ident, status=status)
    if status != "draft" or draw(st.booleans()):
        order["authoredOn"] = _time(draw(OFFSETS) * draw(st.sampled_from([1, 24, 1000])))
    dosage = order["dosageInstruction"][0]
    rate = dosage["doseAndRate"][0]["rateQuantity"]
    rate["value"] = draw(VALUES)
    rate["code"] = rate["unit"] = draw(st.sampled_from(["mg/d", "mg/h", "mg/kg/h", "mg/kg/d", "mL/h", "mg"]))
    if draw(st.booleans()):
        dosage["timing"] = draw(timing())
    if draw(st.booleans()):
        order["dispenseRequest"] = {"expectedSupplyDuration": _duration(draw)}
    return order


@st.composite
def windowed_requests(draw: Draw, service_id: str) -> bytes:
    """The 500 mg/day request with results and orders inside the windows ending at NOW."""
    body = orjson.loads(_base())
    entries = body["prefetch"]["labs"]["entry"]
    if draw(st.booleans()):
        entries.clear()  # only the generated results, so that they are the ones compared
    for index in range(draw(st.integers(1, 4))):
        entries.extend({"resource": r} for r in draw(results(index)))
    priors = [
        draw(anakinra_orders(f"prior-{n}", draw(st.sampled_from(["active", "completed", "stopped"]))))
        for n in range(draw(st.integers(0, 3)))
    ]
    body["prefetch"]["medications"] = {
        "resourceType": "Bundle",
        "type": "searchset",
        "entry": [{"resource": order} for order in priors],
    }
    if draw(st.booleans()):
        body["context"]["draftOrders"]["entry"][0]["resource"] = draw(anakinra_orders("draft-500", "draft"))
    return orjson.dumps(for_service(body, service_id))
