"""The exposure calculation (courses of a drug from active and completed orders plus the draft) and the
neutrophils calculation (the newest ANC, only while current), configured from their rule files."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from cds_service.clinical.base import ParameterError, Params
from cds_service.clinical.exposure.facts import (
    EXPOSURE_FACTS,
    Course,
    Exposure,
    ExposureSettings,
    Neutrophils,
    NeutrophilSettings,
    order_period,
    planned_duration,
    prior_courses,
    union_seconds,
    within,
)
from cds_service.clinical.tristate import Tri
from cds_service.data.resources import Resource
from cds_service.facts.derive import named_facts
from cds_service.facts.model import Facts
from cds_service.facts.named import Fact
from cds_service.facts.orders import resolver
from cds_service.ruleformat.rulefile import RuleFile
from cds_service.yamlfile import load_yaml
from tests.conftest import RULES
from tests.facts.support import LOINC, RXNORM, UCUM, catalog, make_facts, observation, resource, rule_params

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
DRUG = {"coding": [{"system": RXNORM, "code": "72435"}]}
OTHER = {"coding": [{"system": RXNORM, "code": "29561", "display": "meropenem"}]}


def params(name: str, **changes: Any) -> Params:
    spec = RuleFile.model_validate(load_yaml(RULES / f"{name}.yaml").data)
    parameters = dict(spec.parameters)
    for key, value in changes.items():
        if value is None:
            del parameters[key]
        else:
            parameters[key] = parameters[key].model_copy(update={"value": value})
    return Params(spec.id, parameters, catalog())


def exposure(**changes: Any) -> ExposureSettings:
    return Exposure().configure(params("high-dose-infection-watch", **changes), catalog(), {})


def neutrophils(**changes: Any) -> NeutrophilSettings:
    return Neutrophils().configure(params("neutropenia", **changes), catalog(), {})


def rate(mg_per_day: float) -> list[dict[str, Any]]:
    quantity = {"value": mg_per_day, "unit": "mg/d", "system": UCUM, "code": "mg/d"}
    return [{"route": {"text": "IV"}, "doseAndRate": [{"rateQuantity": quantity}]}]


def order(
    ident: str,
    status: str,
    mg_per_day: float | None,
    authored: str | None,
    bounds: Mapping[str, str] | None = None,
    medication: Mapping[str, Any] = DRUG,
) -> Resource:
    dosage: list[dict[str, Any]] = rate(mg_per_day) if mg_per_day is not None else [{"route": {"text": "IV"}}]
    if bounds is not None:
        dosage[0]["timing"] = {"repeat": {"boundsPeriod": dict(bounds)}}
    fields: dict[str, Any] = {
        "resourceType": "MedicationRequest",
        "id": ident,
        "status": status,
        "intent": "order",
        "medicationCodeableConcept": dict(medication),
        "dosageInstruction": dosage,
    }
    if authored is not None:
        fields["authoredOn"] = authored
    return resource(**fields)


def draft(mg_per_day: float, ident: str = "draft-1", **extra: Any) -> dict[str, Any]:
    return {
        "resourceType": "MedicationRequest",
        "id": ident,
        "status": "draft",
        "intent": "order",
        "medicationCodeableConcept": DRUG,
        "dosageInstruction": rate(mg_per_day),
        **extra,
    }


def run(
    resources: Sequence[Resource] = (),
    drafts: Sequence[Mapping[str, Any]] = (),
    settings: ExposureSettings | None = None,
    unavailable: Mapping[str, str] | None = None,
) -> dict[str, Fact]:
    facts = make_facts(resources, drafts, NOW, unavailable)
    named = named_facts(catalog(), facts, "anakinra")
    return (settings or exposure()).compute(named, facts)


def courses_of(resources: Sequence[Resource], draft_id: str | None = None) -> list[Course]:
    facts = make_facts(resources, (), NOW)
    settings = exposure()
    weight = Fact("patient.weight", None, missing="no weight")
    return prior_courses(
        facts, settings.drug, settings.medications, settings.units, resolver(facts), weight, draft_id
    )


def at(text: str) -> datetime:
    return datetime.fromisoformat(text)


# --- pure helpers -----------------------------------------------------------------------------------


def test_union_counts_overlapping_periods_once() -> None:
    day = timedelta(days=1)
    periods = [(NOW - 10 * day, NOW - 6 * day), (NOW - 8 * day, NOW - 4 * day), (NOW - 2 * day, NOW)]
    assert union_seconds(periods) == (6 + 2) * 86400
    assert union_seconds([]) == 0


def test_a_course_is_in_a_window_by_its_end_or_by_a_start_inside_it() -> None:
    since = NOW - timedelta(days=7)

    def course(start: datetime | None, end: datetime | None) -> Course:
        return Course("MedicationRequest/x", "completed", 1200, "", start, end, "1200 mg/d")

    assert within(course(NOW - timedelta(days=12), NOW - timedelta(days=3)), since) is Tri.MET
    assert within(course(NOW - timedelta(days=12), NOW - timedelta(days=10)), since) is Tri.NOT_MET
    assert within(course(NOW - timedelta(days=12), since), since) is Tri.MET  # inclusive
    # No end: given inside the window if it started there; otherwise it cannot be told.
    assert within(course(NOW - timedelta(days=2), None), since) is Tri.MET
    assert within(course(NOW - timedelta(days=12), None), since) is Tri.UNKNOWN
    assert within(course(None, None), since) is Tri.UNKNOWN


def test_order_period_reads_bounds_then_authored_on() -> None:
    units = catalog().units
    bounds = {"start": "2026-11-10T08:00:00Z", "end": "2026-11-14T08:00:00Z"}
    raw = {
        "authoredOn": "2026-11-09T20:00:00Z",
        "dosageInstruction": [{"timing": {"repeat": {"boundsPeriod": bounds}}}],
    }
    assert order_period(raw, units) == (at("2026-11-10T08:00:00+00:00"), at("2026-11-14T08:00:00+00:00"))
    duration = {"value": 72, "unit": "hours", "code": "h"}
    raw = {
        "authoredOn": "2026-11-09T20:00:00Z",
        "dosageInstruction": [{"timing": {"repeat": {"boundsDuration": duration}}}],
    }
    assert order_period(raw, units) == (at("2026-11-09T20:00:00+00:00"), at("2026-11-12T20:00:00+00:00"))
    assert order_period({"authoredOn": "2026-11-09"}, units) == (at("2026-11-09T00:00:00+00:00"), None)
    assert order_period({}, units) == (None, None)


def test_planned_duration_from_bounds_or_the_expected_supply() -> None:
    units = catalog().units
    period = {
        "dosageInstruction": [{"timing": {"repeat": {"boundsPeriod": {"end": "2026-12-03T12:00:00Z"}}}}]
    }
    assert planned_duration(period, NOW, units) == (10.0, "boundsPeriod")  # no start: from now
    weeks = {"dosageInstruction": [{"timing": {"repeat": {"boundsDuration": {"value": 2, "code": "wk"}}}}]}
    assert planned_duration(weeks, NOW, units) == (14.0, "boundsDuration")
    supply = {"dispenseRequest": {"expectedSupplyDuration": {"value": 5, "unit": "days", "code": "d"}}}
    assert planned_duration(supply, NOW, units) == (5.0, "dispenseRequest.expectedSupplyDuration")
    not_time = {"dispenseRequest": {"expectedSupplyDuration": {"value": 5, "code": "mL"}}}
    assert planned_duration(not_time, NOW, units) is None
    assert planned_duration({"dosageInstruction": [{"text": "continuous"}]}, NOW, units) is None


# --- courses ----------------------------------------------------------------------------------------


def test_a_dose_change_ends_the_order_it_replaces() -> None:
    courses = courses_of(
        [
            order("a", "completed", 600, "2026-11-12T10:00:00Z"),
            order("b", "active", 1200, "2026-11-15T10:00:00Z"),
        ]
    )
    assert [(c.reference, c.dose, c.start, c.end) for c in courses] == [
        ("MedicationRequest/a", 600, at("2026-11-12T10:00:00+00:00"), at("2026-11-15T10:00:00+00:00")),
        ("MedicationRequest/b", 1200, at("2026-11-15T10:00:00+00:00"), NOW),
    ]


def test_courses_skip_other_drugs_other_statuses_and_the_draft_itself() -> None:
    courses = courses_of(
        [
            order("mero", "active", 3000, "2026-11-20T10:00:00Z", medication=OTHER),
            order("wrong", "entered-in-error", 1200, "2026-11-20T10:00:00Z"),
            order("planned", "draft", 1200, "2026-11-20T10:00:00Z"),
            order("draft-1", "active", 1200, "2026-11-20T10:00:00Z"),
            order("kept", "completed", None, "2026-11-20T10:00:00Z"),
        ],
        draft_id="draft-1",
    )
    assert [c.reference for c in courses] == ["MedicationRequest/kept"]
    assert courses[0].dose is None and courses[0].why  # why the dose is unknown is kept
    assert courses[0].end is None  # completed, no end, no later order


def test_a_verified_bag_order_with_a_contained_medication_is_recognised() -> None:
    bag = {
        "resourceType": "Medication",
        "id": "bag",
        "ingredient": [
            {
                "itemCodeableConcept": DRUG,
                "strength": {
                    "numerator": {"value": 800, "code": "mg"},
                    "denominator": {"value": 250, "code": "mL"},
                },
            }
        ],
    }
    verified = resource(
        resourceType="MedicationRequest",
        id="verified",
        status="active",
        authoredOn="2026-11-20T10:00:00Z",
        contained=[bag],
        medicationReference={"reference": "#bag"},
        dosageInstruction=[{"route": {"text": "IV"}, "timing": {"code": {"text": "q8h"}}}],
    )
    (course,) = courses_of([verified])
    assert course.dose == 2400


# --- exposure facts ---------------------------------------------------------------------------------


def test_every_fact_is_produced_with_its_spec() -> None:
    specs = {s.name: s for s in Exposure().specs(catalog(), rule_params("high-dose-infection-watch"))}
    assert tuple(specs) == EXPOSURE_FACTS
    out = run()
    assert set(out) == set(specs)
    assert specs["exposure.days_high"].unit == "d"


def test_days_high_counts_prior_orders_at_or_above_the_high_dose_overlaps_once() -> None:
    out = run(
        [
            order("low", "completed", 600, "2026-11-08T12:00:00Z", {"end": "2026-11-10T12:00:00Z"}),
            order("a", "completed", 1200, "2026-11-10T12:00:00Z", {"end": "2026-11-15T12:00:00Z"}),
            # Overlaps the first by one day (an order the EHR closed late).
            order("b", "active", 2400, "2026-11-14T12:00:00Z", {"start": "2026-11-14T12:00:00Z"}),
        ],
        [draft(2400)],
    )
    days = out["exposure.days_high"]
    assert (days.value, days.unit, days.comparator) == (13.0, "d", None)
    assert days.evidence == ("MedicationRequest/a", "MedicationRequest/b")
    assert "13 days at >= 1200 mg/d" in (days.detail or "")


def test_days_high_is_a_bound_once_it_is_prolonged_and_missing_below() -> None:
    undated = order("undated", "completed", 2400, "2026-11-14T12:00:00Z")  # no end, no later order
    known = order("known", "completed", 2400, "2026-11-05T12:00:00Z", {"end": "2026-11-13T12:00:00Z"})
    bound = run([undated, known])["exposure.days_high"]
    assert (bound.value, bound.comparator) == (8.0, ">=")
    assert "MedicationRequest/undated (completed) has no end date" in (bound.detail or "")
    short = run([undated])["exposure.days_high"]
    assert short.value is None
    assert short.missing == (
        "0 days at >= 1200 mg/day are known, but MedicationRequest/undated (completed) has no end date "
        "and no later order"
    )


def test_an_order_without_a_daily_dose_cannot_be_counted() -> None:
    out = run([order("nodose", "active", None, "2026-11-20T12:00:00Z")])
    assert out["exposure.days_high"].value is None
    assert "MedicationRequest/nodose: daily dose unknown" in (out["exposure.days_high"].missing or "")


def test_recent_means_in_force_now_or_ended_within_the_window() -> None:
    ended_3d = order("e3", "completed", 600, "2026-11-10T12:00:00Z", {"end": "2026-11-20T12:00:00Z"})
    ended_10d = order("e10", "completed", 600, "2026-11-05T12:00:00Z", {"end": "2026-11-13T12:00:00Z"})
    assert run([ended_3d])["exposure.recent"].value is True
    stopped = run([ended_10d])["exposure.recent"]
    assert stopped.value is False
    assert "no anakinra order active now or ended in the last 7 days" in (stopped.detail or "")
    assert run([order("now", "active", 600, "2026-10-01T12:00:00Z")])["exposure.recent"].value is True
    assert run()["exposure.recent"].value is False


def test_recent_is_unknown_when_a_completed_order_may_have_run_into_the_window() -> None:
    old_open = order("open", "completed", 600, "2026-11-01T12:00:00Z")
    fact = run([old_open])["exposure.recent"]
    assert fact.value is None
    assert fact.missing == (
        "MedicationRequest/open (completed) has no end date and started before the last 7 days"
    )
    # Started inside the window: certainly given inside it.
    assert run([order("new", "completed", 600, "2026-11-21T12:00:00Z")])["exposure.recent"].value is True


def test_recent_or_ordered_is_true_for_a_draft_order_even_without_prior_orders() -> None:
    out = run([], [draft(400)])
    assert out["exposure.recent"].value is False
    assert out["exposure.recent_or_ordered"].value is True
    assert out["exposure.recent_or_ordered"].evidence == ("MedicationRequest/draft-1",)
    # A draft for another drug is no exposure.
    other = {**draft(400), "medicationCodeableConcept": OTHER}
    assert run([], [other])["exposure.recent_or_ordered"].value is False


def test_daily_dose_is_the_draft_then_the_order_in_force_then_the_one_just_ended() -> None:
    in_force = order("b", "active", 1800, "2026-11-18T12:00:00Z")
    ended = order("a", "completed", 900, "2026-11-10T12:00:00Z", {"end": "2026-11-18T12:00:00Z"})
    assert run([ended, in_force], [draft(2400)])["exposure.daily_dose"].value == 2400
    assert run([ended, in_force])["exposure.daily_dose"].value == 1800
    just_ended = run([ended])["exposure.daily_dose"]
    assert (just_ended.value, just_ended.evidence) == (900, ("MedicationRequest/a",))
    none = run([])["exposure.daily_dose"]
    assert none.missing == "no anakinra order in force now or ended in the last 7 days"


def test_planned_days_high_for_the_draft_order() -> None:
    end = {"repeat": {"boundsPeriod": {"start": "2026-11-23T12:00:00Z", "end": "2026-12-01T12:00:00Z"}}}
    planned = {**draft(2400), "dosageInstruction": [{**rate(2400)[0], "timing": end}]}
    fact = run([], [planned])["exposure.planned_days_high"]
    assert (fact.value, fact.unit) == (8.0, "d")
    assert fact.detail == "8 days planned (boundsPeriod) at 2400 mg/day"
    below = run([], [{**planned, "dosageInstruction": [{**rate(600)[0], "timing": end}]}])
    assert below["exposure.planned_days_high"].value == 0
    unstated = run([], [draft(2400)])["exposure.planned_days_high"]
    assert unstated.value is None and "no planned duration" in (unstated.missing or "")
    assert run([])["exposure.planned_days_high"].missing == "no draft anakinra order"


def test_prior_orders_counts_the_episode_window_only() -> None:
    recent = order("recent", "completed", 600, "2026-11-10T12:00:00Z", {"end": "2026-11-14T12:00:00Z"})
    last_admission = order("old", "completed", 100, "2026-08-01T12:00:00Z", {"end": "2026-09-01T12:00:00Z"})
    fact = run([recent, last_admission], [draft(600)])["exposure.prior_orders"]
    assert (fact.value, fact.comparator, fact.evidence) == (1, None, ("MedicationRequest/recent",))
    assert run([last_admission])["exposure.prior_orders"].value == 0


def test_prior_orders_is_missing_only_when_an_unplaced_order_could_be_the_first() -> None:
    undated = order("undated", "completed", 600, None)
    alone = run([undated])["exposure.prior_orders"]
    assert alone.value is None
    assert alone.missing == "MedicationRequest/undated (completed) has no start or end date"
    with_known = run([undated, order("now", "active", 600, "2026-11-20T12:00:00Z")])["exposure.prior_orders"]
    assert (with_known.value, with_known.comparator) == (1, ">=")


def test_orders_that_could_not_be_read_make_the_prior_facts_missing_but_not_the_draft() -> None:
    why = "HTTP 503 from the FHIR server"
    out = run([], [draft(1200)], unavailable={"medications": why})
    for name in ("exposure.recent", "exposure.days_high", "exposure.prior_orders"):
        assert out[name].value is None
        assert out[name].missing == f"medication orders could not be read: {why}"
    assert out["exposure.recent_or_ordered"].value is True
    assert out["exposure.daily_dose"].value == 1200
    no_draft = run([], [], unavailable={"medications": why})
    assert no_draft["exposure.recent_or_ordered"].value is None


def test_the_high_dose_and_windows_come_from_the_parameters() -> None:
    orders = [order("a", "active", 900, "2026-11-15T12:00:00Z")]
    assert run(orders)["exposure.days_high"].value == 0
    assert run(orders, settings=exposure(high_dose=900))["exposure.days_high"].value == 8
    ended = [order("e", "completed", 600, "2026-11-01T12:00:00Z", {"end": "2026-11-13T12:00:00Z"})]
    assert run(ended)["exposure.recent"].value is False
    assert run(ended, settings=exposure(recent_window=14))["exposure.recent"].value is True


@pytest.mark.parametrize("name", ["medication", "high_dose", "prolonged", "recent_window", "episode_window"])
def test_a_missing_parameter_is_reported_by_name(name: str) -> None:
    with pytest.raises(ParameterError) as raised:
        exposure(**{name: None})
    assert raised.value.name == name


def test_bad_parameter_values_are_refused() -> None:
    with pytest.raises(ParameterError, match="must be one of"):
        exposure(medication="aspirin")
    with pytest.raises(ParameterError, match="above 0"):
        exposure(recent_window=0)


# --- neutrophils ------------------------------------------------------------------------------------


def anc(value: float, unit: str, hours_ago: float, **extra: Any) -> Resource:
    time = (NOW - timedelta(hours=hours_ago)).isoformat()
    return observation(f"anc-{hours_ago:g}", "751-8", value, unit, time, **extra)


def current(resources: Sequence[Resource], settings: NeutrophilSettings | None = None) -> Fact:
    facts: Facts = make_facts(resources, (), NOW)
    named = named_facts(catalog(), facts, "anakinra")
    return (settings or neutrophils()).compute(named, facts)["neutrophils.current"]


def test_the_current_count_keeps_the_value_as_reported() -> None:
    fact = current([anc(800, "/uL", 2), anc(2.4, "10*9/L", 30)])
    assert (fact.value, fact.unit, fact.native_value, fact.native_unit) == (0.8, "10*9/L", 800, "/uL")
    assert fact.evidence == ("Observation/anc-2",)
    assert fact.detail == "800 /µL at 2026-11-23 10:00 (2 h ago)"


def test_a_count_older_than_the_window_is_missing_with_its_value_and_age() -> None:
    fact = current([anc(0.6, "10*9/L", 30)])
    assert fact.value is None
    assert fact.missing == "the newest ANC (0.6 ×10⁹/L at 2026-11-22 06:00) is 30 h old, more than 24 h"
    assert current([anc(0.6, "10*9/L", 30)], neutrophils(current_within=36)).value == 0.6
    assert current([anc(0.6, "10*9/L", 24)]).value == 0.6  # inclusive


def test_without_a_count_the_reason_of_the_lab_facts_is_kept() -> None:
    assert current([]).missing == (
        "no ANC in the last 14 days, and no WBC with neutrophils % within 1 hour of each other"
    )
    derived = current(
        [
            observation("wbc", "6690-2", 3.8, "10*9/L", (NOW - timedelta(hours=3)).isoformat()),
            observation("pct", "770-8", 22, "%", (NOW - timedelta(hours=3)).isoformat()),
        ]
    )
    assert derived.value == pytest.approx(0.836)
    assert derived.evidence == ("Observation/wbc", "Observation/pct")
    assert "derived from WBC x neutrophils %" in (derived.detail or "")


def last_known(resources: Sequence[Resource]) -> Fact:
    facts: Facts = make_facts(resources, (), NOW)
    named = named_facts(catalog(), facts, "anakinra")
    return neutrophils().compute(named, facts)["neutrophils.last_known"]


@pytest.mark.parametrize(
    ("resources", "text"),
    [
        ([anc(0.3, "10*9/L", 30)], "last ANC 0.3 ×10⁹/L, 30 h ago: severe (<0.5)"),
        ([anc(500, "/uL", 30)], "last ANC 0.5 ×10⁹/L, 30 h ago: low (<1)"),  # 500 /uL is not below 500
        ([anc(1.0, "10*9/L", 2)], "last ANC 1 ×10⁹/L, 2 h ago"),  # 1.0 is not below 1.0
        ([], "no ANC in the last 14 days"),
    ],
)
def test_the_last_known_count_keeps_its_value_age_and_band(resources: list[Resource], text: str) -> None:
    assert last_known(resources).value == text


def test_neutrophils_needs_its_window() -> None:
    spec = Neutrophils().specs(catalog(), rule_params("neutropenia"))[0]
    assert (spec.name, spec.unit) == ("neutrophils.current", "10*9/L")
    for name in ("current_within", "neutropenia", "severe_neutropenia"):
        with pytest.raises(ParameterError) as raised:
            neutrophils(**{name: None})
        assert raised.value.name == name


def test_loinc_of_the_neutrophil_count_is_the_catalogs() -> None:
    # The calculation reads anc.latest: the catalog's ANC codes decide what counts (not this module).
    assert f"{LOINC}|751-8" in catalog().analytes["anc"].codes


# --- wording ------------------------------------------------------------------------------------------


def test_exposure_is_worded_by_its_rule_file() -> None:
    settings = exposure(
        planned_text="{days} d ({where}), {dose} {dose_unit} a day",
        no_current_text="{drug}: nothing within {window}",
    )
    end = {"repeat": {"boundsPeriod": {"start": "2026-11-23T12:00:00Z", "end": "2026-12-01T12:00:00Z"}}}
    planned = {**draft(2400), "dosageInstruction": [{**rate(2400)[0], "timing": end}]}
    fact = run([], [planned], settings)["exposure.planned_days_high"]
    assert fact.detail == "8 d (boundsPeriod), 2400 mg a day"
    assert run([], settings=settings)["exposure.daily_dose"].missing == "anakinra: nothing within 7 days"


def test_neutrophils_are_worded_by_their_rule_file() -> None:
    settings = neutrophils(current_text="{result} ({age} h old, {time})")
    assert current([anc(800, "/uL", 2)], settings).detail == "800 /µL (2 h old, 2026-11-23 10:00)"
