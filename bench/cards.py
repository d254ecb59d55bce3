"""What the cards say, measured over every request we have: how many cards per call, how many only ask
for data, duplicate suggestions, contradictions, and cards on orders that are not the service's drug.

    python bench/cards.py [--now 2026-11-23T12:00:00Z] [--json] [--details N]

Prints figures; it asserts nothing. Every call goes through the real pipeline (`call_service`: parse,
prefetch, facts, rules, cards), with everything given as prefetch and nothing fetched. The calls:

  case        every rule case (rules/*.cases.yaml), at the case's own `now`;
  request     every fixture request (fhir_fixtures/requests/*.json) with the service answering its hook,
              at --now, or else one hour after the newest data in the request (the playground's default);
  playground  every service x fixture patient x order preset the playground offers (order-sign also with
              no order at all, order-select only with one, patient-view without), at --now, or else one
              hour after the patient's newest data.

The definitions (DEFINITIONS below) are printed with the figures. docs/cards.md keeps the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import math
import statistics
import sys
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson

from cds_service.cases import load_cases, request_body
from cds_service.config import Settings
from cds_service.data.compose import hook_request
from cds_service.engine.ruleset import RuleSet
from cds_service.facts.named import Fact, missing
from cds_service.facts.orders import normalise
from cds_service.pages import fixtures
from cds_service.pipeline import Runtime, call_service
from cds_service.protocol.outcome import ProblemError

ROOT = Path(__file__).resolve().parent.parent

PROVENANCE = "cds-service-provenance"
DATA_QUALITY_RULE = "incomplete-data"  # the services' data-quality card (rules/services/*.yaml)
ORDER_HOOKS = ("order-sign", "order-select")
SOURCES = ("case", "request", "playground")

# Which cards state a dose ceiling, and where its value is read: a rule parameter in a daily-dose unit, a
# rule parameter per kg per hour (times the patient's weight), or a fact the card states. The values are
# never typed here; they come from the rule files and the evaluation. `statuses`: the rule outcomes whose
# card states it (max-dose's "could not check" card still names both limits; renal-dose's does not).
CEILINGS: dict[str, tuple[tuple[str, str, tuple[str, ...]], ...]] = {
    "max-dose": (
        ("parameter", "max_daily_dose", ("fired", "unknown")),
        ("parameter per kg", "max_dose_rate", ("fired", "unknown")),
    ),
    "renal-dose": (("fact", "renal.reduced_dose", ("fired",)),),
}
DAILY = "mg/d"

DEFINITIONS = {
    "cards per call": "cards in the response; median, 90th percentile (nearest rank) and maximum over calls",
    "data-only": (
        "info cards that only ask for data: indicator info, and either the rule's outcome was 'unknown' "
        "(its could-not-evaluate card, for missing data) or every suggestion on the card only creates "
        "a ServiceRequest (orders a test)"
    ),
    "data-quality": f"the service's '{DATA_QUALITY_RULE}' card (data that could not be read or fetched)",
    "duplicate suggestions": (
        "in one response, suggestions beyond the first that order the same test (the same ServiceRequest "
        "codes) or the same order (the same action on the same resource, ids aside)"
    ),
    "contradictions": (
        "in one response, suggestions proposing a medication order whose daily dose (read from the "
        "suggested resource by the service's own order reader) is above a ceiling stated by another "
        "card of the response: max-dose's max_daily_dose, its max_dose_rate times the patient's weight, "
        "renal-dose's renal.reduced_dose when it fired; 'recommended' counts those marked isRecommended"
    ),
    "non-drug calls": (
        "order-sign / order-select calls whose draft orders hold no order for the service's medication "
        "(order.present is not true), and the cards they got"
    ),
}


# ---------------------------------------------------------------------------------------------- counting


def rule_of(card: Mapping[str, Any]) -> str | None:
    """The rule id in a card's provenance extension."""
    provenance = (card.get("extension") or {}).get(PROVENANCE) or {}
    rule = provenance.get("ruleId")
    return rule if isinstance(rule, str) else None


def _actions(suggestion: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return [a for a in suggestion.get("actions") or () if isinstance(a, Mapping)]


def _orders_only_tests(suggestion: Mapping[str, Any]) -> bool:
    actions = _actions(suggestion)
    return bool(actions) and all(
        a.get("type") == "create" and (a.get("resource") or {}).get("resourceType") == "ServiceRequest"
        for a in actions
    )


def asks_only_for_data(card: Mapping[str, Any], statuses: Mapping[str, str]) -> bool:
    """An info card that only asks for data (DEFINITIONS["data-only"])."""
    if card.get("indicator") != "info":
        return False
    if statuses.get(rule_of(card) or "") == "unknown":
        return True
    suggestions = card.get("suggestions") or ()
    return bool(suggestions) and all(_orders_only_tests(s) for s in suggestions)


def _codes(resource: Mapping[str, Any]) -> tuple[str, ...]:
    codings = (resource.get("code") or {}).get("coding") or ()
    return tuple(
        sorted(f"{c.get('system', '')}|{c.get('code', '')}" for c in codings if isinstance(c, Mapping))
    )


def action_key(action: Mapping[str, Any]) -> tuple[Any, ...]:
    """What makes two actions the same: a test by its codes, anything else by its JSON (ids aside)."""
    resource = action.get("resource") or {}
    kind = resource.get("resourceType")
    if action.get("type") == "create" and kind == "ServiceRequest":
        return ("test", _codes(resource))
    target = resource.get("id") if action.get("type") != "create" else None
    body = {k: v for k, v in resource.items() if k != "id"}
    return (action.get("type"), kind, target, orjson.dumps(body, option=orjson.OPT_SORT_KEYS))


def suggestion_key(suggestion: Mapping[str, Any]) -> tuple[Any, ...]:
    return tuple(action_key(a) for a in _actions(suggestion))


def _key_label(suggestion: Mapping[str, Any]) -> str:
    return str(suggestion.get("label") or "?")


@dataclasses.dataclass(frozen=True)
class Duplicate:
    label: str  # the first suggestion's label
    rules: tuple[str, ...]  # the rules whose cards carry it, once per suggestion
    extra: int  # suggestions beyond the first


def duplicate_suggestions(cards: Iterable[Mapping[str, Any]]) -> list[Duplicate]:
    """Suggestions of one response that order the same test or the same order as an earlier one."""
    seen: dict[tuple[Any, ...], list[tuple[str, str]]] = {}
    for card in cards:
        for suggestion in card.get("suggestions") or ():
            key = suggestion_key(suggestion)
            if key:
                seen.setdefault(key, []).append((_key_label(suggestion), rule_of(card) or "?"))
    return [
        Duplicate(label=found[0][0], rules=tuple(rule for _, rule in found), extra=len(found) - 1)
        for found in seen.values()
        if len(found) > 1
    ]


@dataclasses.dataclass(frozen=True)
class Ceiling:
    rule: str
    what: str  # the parameter or fact it comes from
    value: float  # mg/d


@dataclasses.dataclass(frozen=True)
class Contradiction:
    rule: str  # the card that suggests the dose
    label: str
    dose: float  # mg/d
    recommended: bool
    ceiling: Ceiling


Convert = Callable[[float, str, str], float]


def stated_ceilings(
    cards: Iterable[Mapping[str, Any]],
    statuses: Mapping[str, str],
    parameters: Callable[[str, str], tuple[float, str] | None],
    facts: Mapping[str, Fact],
    convert: Convert,
) -> list[Ceiling]:
    """The daily-dose ceilings the cards of one response state (CEILINGS); `parameters(rule, name)` gives
    a rule parameter's (value, unit)."""
    ceilings = []
    for rule in dict.fromkeys(r for c in cards if (r := rule_of(c)) in CEILINGS):
        for kind, name, when in CEILINGS[rule]:
            if statuses.get(rule) not in when:
                continue
            value = _ceiling_value(rule, kind, name, parameters, facts, convert)
            if value is not None:
                ceilings.append(Ceiling(rule, name, value))
    return ceilings


def _ceiling_value(
    rule: str,
    kind: str,
    name: str,
    parameters: Callable[[str, str], tuple[float, str] | None],
    facts: Mapping[str, Fact],
    convert: Convert,
) -> float | None:
    if kind == "fact":
        fact = facts.get(name)
        if fact is None or not isinstance(fact.value, int | float) or fact.unit is None:
            return None
        return convert(float(fact.value), fact.unit, DAILY)
    parameter = parameters(rule, name)
    if parameter is None:
        return None
    value, unit = parameter
    if kind == "parameter":
        return convert(value, unit, DAILY)
    weight = facts.get("patient.weight")
    if weight is None or not isinstance(weight.value, int | float) or weight.unit is None:
        return None  # the card cannot state a per-kg ceiling as a dose without a weight
    per_kg_hour = convert(value, unit, "mg/kg/h")
    return convert(per_kg_hour * convert(float(weight.value), weight.unit, "kg"), "mg/h", DAILY)


def contradictions(
    cards: Iterable[Mapping[str, Any]],
    ceilings: list[Ceiling],
    daily_dose: Callable[[Mapping[str, Any]], float | None],
) -> list[Contradiction]:
    """Suggestions whose medication order's daily dose is above a ceiling another card states; one
    entry per suggestion, against the lowest such ceiling."""
    found = []
    for card in cards:
        rule = rule_of(card) or "?"
        for suggestion in card.get("suggestions") or ():
            for action in _actions(suggestion):
                resource = action.get("resource") or {}
                if resource.get("resourceType") != "MedicationRequest" or action.get("type") == "delete":
                    continue
                dose = daily_dose(resource)
                if dose is None:
                    continue
                above = [c for c in ceilings if c.rule != rule and dose > c.value * (1 + 1e-9)]
                if above:
                    found.append(
                        Contradiction(
                            rule=rule,
                            label=_key_label(suggestion),
                            dose=dose,
                            recommended=bool(suggestion.get("isRecommended")),
                            ceiling=min(above, key=lambda c: c.value),
                        )
                    )
                    break
    return found


def nearest_rank(values: list[int], share: float) -> int:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)]


# ------------------------------------------------------------------------------------------------ calls


@dataclasses.dataclass(frozen=True)
class Call:
    source: str
    label: str
    service: str
    body: bytes
    now: datetime


@dataclasses.dataclass
class Measured:
    call: Call
    cards: int = 0
    data_only: int = 0
    data_quality: int = 0
    duplicates: list[Duplicate] = dataclasses.field(default_factory=list)
    contradictions: list[Contradiction] = dataclasses.field(default_factory=list)
    non_drug: bool | None = None  # None: a hook without orders
    refused: str | None = None


def case_calls(ruleset: RuleSet) -> list[Call]:
    return [
        Call("case", loaded.label, loaded.case.service, request_body(loaded, ruleset), loaded.case.now)
        for loaded in load_cases(ruleset.directory)
    ]


def request_calls(ruleset: RuleSet, folder: Path, now: datetime | None) -> list[Call]:
    calls = []
    for key in fixtures.saved_requests(folder):
        raw = fixtures.saved_request(folder, key)
        assert raw is not None
        document = orjson.loads(raw)
        if isinstance(document.get("body"), dict) and "hook" not in document:
            document = document["body"]  # a captured HTTP exchange
        for access in ("fhirServer", "fhirAuthorization"):
            document.pop(access, None)  # nothing is fetched: the prefetch is the data
        services = [s.id for s in ruleset.services if s.hook == document.get("hook")]
        if len(services) != 1:
            raise SystemExit(f"{key}: {len(services)} services answer hook {document.get('hook')!r}")
        if now is None and max(fixtures.data_times(document), default=None) is None:
            raise SystemExit(f"{key}: no dated data to evaluate it after; give --now")
        moment = now or fixtures.default_as_of(document)
        calls.append(Call("request", f"requests/{key}.json", services[0], orjson.dumps(document), moment))
    return calls


def playground_calls(ruleset: RuleSet, folder: Path, now: datetime | None) -> list[Call]:
    calls = []
    presets = fixtures.order_presets(folder)
    for patient in fixtures.patients(folder):
        resources = fixtures.patient_resources(folder, patient.key)
        assert resources is not None
        for service in ruleset.services:
            if service.hook == "order-sign":
                orders: list[Any] = [None, *presets]
            elif service.hook == "order-select":
                orders = list(presets)
            else:
                orders = [None]
            for preset in orders:
                order = preset.resource if preset is not None else None
                label = f"{service.id} / {patient.key} / {preset.key if preset else 'no order'}"
                instance = str(uuid.uuid5(uuid.NAMESPACE_URL, f"bench-cards:{label}"))
                body = hook_request(service, resources, order, instance, "Practitioner/bench")
                calls.append(Call("playground", label, service.id, orjson.dumps(body), now or patient.as_of))
    return calls


async def measure(runtime: Runtime, call: Call) -> Measured:
    measured = Measured(call)
    ruleset = runtime.engine.ruleset
    try:
        answer = await call_service(runtime, call.service, call.body, now=call.now)
    except ProblemError as exc:
        measured.refused = f"HTTP {exc.status}: {'; '.join(i.diagnostics for i in exc.issues)}"
        return measured
    cards = orjson.loads(answer.body)["cards"]
    evaluation = answer.evaluation
    statuses = {o.rule.id: o.status for o in evaluation.outcomes}
    measured.cards = len(cards)
    measured.data_only = sum(asks_only_for_data(card, statuses) for card in cards)
    measured.data_quality = sum(rule_of(card) == DATA_QUALITY_RULE for card in cards)
    measured.duplicates = duplicate_suggestions(cards)
    catalog = ruleset.catalog
    service = ruleset.services.get(call.service)
    assert service is not None

    def parameter(rule: str, name: str) -> tuple[float, str] | None:
        spec = ruleset.rules[rule].spec if rule in ruleset.rules else None
        found = spec.parameters.get(name) if spec else None
        if found is None or not isinstance(found.value, int | float) or found.unit is None:
            return None
        return float(found.value), found.unit

    weight = evaluation.facts.get("patient.weight") or missing("patient.weight", "no body weight")
    drug = catalog.medications.classes.get(service.medication or "")

    def daily_dose(resource: Mapping[str, Any]) -> float | None:
        order = normalise(resource, drug, catalog.medications, catalog.units, lambda _: None, weight)
        return order.values.get("daily_dose")

    ceilings = stated_ceilings(cards, statuses, parameter, evaluation.facts, catalog.convert)
    measured.contradictions = contradictions(cards, ceilings, daily_dose)
    if service.hook in ORDER_HOOKS:
        present = evaluation.facts.get("order.present")
        measured.non_drug = present is None or present.value is not True
    return measured


# ---------------------------------------------------------------------------------------------- figures


def figures(rows: list[Measured]) -> dict[str, Any]:
    answered = [m for m in rows if m.refused is None]
    counts = [m.cards for m in answered]
    non_drug = [m for m in answered if m.non_drug]
    return {
        "calls": len(rows),
        "refused": len(rows) - len(answered),
        "cards": sum(counts),
        "cards_per_call": {
            "median": statistics.median(counts) if counts else None,
            "p90": nearest_rank(counts, 0.9) if counts else None,
            "max": max(counts) if counts else None,
        },
        "data_only_cards": sum(m.data_only for m in answered),
        "calls_with_data_only": sum(m.data_only > 0 for m in answered),
        "data_quality_cards": sum(m.data_quality for m in answered),
        "duplicate_suggestions": sum(d.extra for m in answered for d in m.duplicates),
        "calls_with_duplicates": sum(bool(m.duplicates) for m in answered),
        "contradictions": sum(len(m.contradictions) for m in answered),
        "contradictions_recommended": sum(c.recommended for m in answered for c in m.contradictions),
        "calls_with_contradictions": sum(bool(m.contradictions) for m in answered),
        "non_drug_calls": len(non_drug),
        "non_drug_calls_with_cards": sum(m.cards > 0 for m in non_drug),
        "non_drug_cards": sum(m.cards for m in non_drug),
    }


def report(measured: list[Measured], hooks: Mapping[str, str]) -> dict[str, Any]:
    services: dict[str, dict[str, Any]] = {}
    for service in dict.fromkeys(m.call.service for m in measured):
        mine = [m for m in measured if m.call.service == service]
        by_source = {"all": figures(mine)}
        for source in SOURCES:
            subset = [m for m in mine if m.call.source == source]
            if subset:
                by_source[source] = figures(subset)
        services[service] = {"hook": hooks.get(service), "figures": by_source}
    return {
        "definitions": DEFINITIONS,
        "calls": dict(Counter(m.call.source for m in measured)),
        "services": services,
        "duplicates": [
            {"call": m.call.label, "suggestion": d.label, "rules": list(d.rules), "extra": d.extra}
            for m in measured
            for d in m.duplicates
        ],
        "contradictions": [
            {
                "call": m.call.label,
                "rule": c.rule,
                "suggestion": c.label,
                "daily_dose": c.dose,
                "recommended": c.recommended,
                "ceiling": {"rule": c.ceiling.rule, "from": c.ceiling.what, "daily_dose": c.ceiling.value},
            }
            for m in measured
            for c in m.contradictions
        ],
        "refused": [{"call": m.call.label, "why": m.refused} for m in measured if m.refused],
    }


def _n(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:g}" if isinstance(value, float) else str(value)


def text(result: dict[str, Any], details: int) -> str:
    calls = result["calls"]
    lines = [
        "Cards per call, through call_service at a fixed now: "
        + "; ".join(f"{calls.get(s, 0)} {s} calls at {result['now'][s]}" for s in SOURCES),
        "",
        (
            f"{'service':<24}{'source':<11}{'calls':>6}{'cards':>7}{'med':>5}{'p90':>5}{'max':>5}"
            f"{'data-only':>11}{'data-q':>8}{'dup sugg':>10}{'contra':>8}{'(rec)':>6}"
            f"{'non-drug':>10}{'(cards)':>9}"
        ),
    ]
    for service, entry in result["services"].items():
        orders = entry["hook"] in ORDER_HOOKS
        for source, f in entry["figures"].items():
            per = f["cards_per_call"]
            non_drug = f["non_drug_calls"] if orders else "-"
            non_drug_cards = f["non_drug_cards"] if orders else "-"
            lines.append(
                f"{service if source == 'all' else '':<24}{source:<11}{f['calls']:>6}{f['cards']:>7}"
                f"{_n(per['median']):>5}{_n(per['p90']):>5}{_n(per['max']):>5}"
                f"{f['data_only_cards']:>11}{f['data_quality_cards']:>8}{f['duplicate_suggestions']:>10}"
                f"{f['contradictions']:>8}{f['contradictions_recommended']:>6}{non_drug:>10}{non_drug_cards:>9}"
            )
    lines += ["", "Definitions:"]
    lines += [f"  {name}: {meaning}" for name, meaning in result["definitions"].items()]
    if details:
        for title, key, fmt in (
            ("Duplicate suggestions", "duplicates", _duplicate_line),
            ("Contradictions", "contradictions", _contradiction_line),
            ("Refused calls", "refused", lambda r: f"{r['call']}: {r['why']}"),
        ):
            items = result[key]
            if not items:
                continue
            lines += ["", f"{title} ({len(items)}; the first {min(details, len(items))}):"]
            lines += [f"  {fmt(item)}" for item in items[:details]]
    return "\n".join(lines) + "\n"


def _duplicate_line(item: dict[str, Any]) -> str:
    return f"{item['call']}: {item['suggestion']!r} from {', '.join(item['rules'])}"


def _contradiction_line(item: dict[str, Any]) -> str:
    ceiling = item["ceiling"]
    mark = " (isRecommended)" if item["recommended"] else ""
    return (
        f"{item['call']}: {item['rule']} suggests {item['daily_dose']:g} mg/day{mark}, above "
        f"{ceiling['rule']}'s {ceiling['from']} = {ceiling['daily_dose']:g} mg/day"
    )


async def run(now: datetime | None) -> dict[str, Any]:
    runtime = Runtime.create(Settings(rules_dir=ROOT / "rules"))
    try:
        ruleset = runtime.engine.ruleset
        folder = fixtures.fixtures_dir(ruleset.directory)
        calls = (
            case_calls(ruleset) + request_calls(ruleset, folder, now) + playground_calls(ruleset, folder, now)
        )
        measured = [await measure(runtime, call) for call in calls]
        result = report(measured, {s.id: s.hook for s in ruleset.services})
        result["now"] = {
            "case": "the case's own now",
            "request": now.isoformat() if now else "1 h after the request's newest data",
            "playground": now.isoformat() if now else "1 h after the patient's newest data",
        }
        return result
    finally:
        await runtime.aclose()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--now", help="evaluate fixture requests and playground combinations at this time (ISO 8601)"
    )
    parser.add_argument("--json", action="store_true", help="one JSON document")
    parser.add_argument("--details", type=int, default=10, help="list this many of each finding (default 10)")
    args = parser.parse_args()
    now = fixtures.parse_fhir_time(args.now) if args.now else None
    if args.now and now is None:
        parser.error(f"--now {args.now!r} is not an ISO 8601 time")
    result = asyncio.run(run(now))
    if args.json:
        sys.stdout.buffer.write(orjson.dumps(result, option=orjson.OPT_INDENT_2) + b"\n")
    else:
        sys.stdout.write(text(result, args.details))


if __name__ == "__main__":
    main()
