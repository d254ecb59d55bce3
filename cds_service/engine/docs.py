"""The rule pack as a document (docs/rules.md): per rule what it checks, why, every threshold with its
source, and what it does when data are missing — generated from the rule files, so it cannot drift."""

from __future__ import annotations

from collections.abc import Mapping

from cds_service.charts.definition import ChartDefinition
from cds_service.engine.ruleset import RuleSet
from cds_service.ruleformat.rulefile import (
    All,
    Any_,
    CardTemplate,
    Comparison,
    Condition,
    In,
    Is,
    Missing,
    Not,
    Parameter,
    Present,
)

HEADER = """\
# The rule pack

Generated from the rule files in `rules/` by `cds-service rules regen` (with every other file made from
them); edit the rule files, not this page (a test fails when it is out of date). How to write and test
rules: [rule-authoring.md](rule-authoring.md).

Every rule answers in three ways: its card when the condition holds, nothing when it certainly does
not, and (when data are missing) the card or the stated reason for silence under "Missing data".
Thresholds marked [project choice] are this project's defaults, not the papers'; change them in the
rule file.
"""


def rule_pack_markdown(ruleset: RuleSet) -> str:
    parts = [HEADER, f"Ruleset **{ruleset.name}** version {ruleset.version}.\n"]
    parts.append(_index(ruleset))
    parts.append(_response_section(ruleset))
    services = {s.id: s for s in ruleset.services}
    for rule in sorted(ruleset.rules.values(), key=lambda r: r.id):
        spec = rule.spec
        lines = [f"## {spec.id}: {spec.title}", "", f"Version {spec.version}.", "", spec.description, ""]
        hooks = ", ".join(
            f"`{sid}` ({services[sid].hook})" if sid in services else f"`{sid}`" for sid in spec.services
        )
        lines += [f"**Runs in:** {hooks}.", ""]
        scopes = " or ".join(f"[`{name}`](#scopes)" for name in spec.speaks_when)
        lines += [f"**Speaks when:** {scopes}.", ""]
        if spec.signal is not None:
            lines += [
                (
                    f"**Signal:** also for any patient when {condition_text(spec.signal.when, spec.parameters)}: "
                    f"{_cell(spec.signal.why)}"
                ),
                "",
            ]
        if spec.provides:
            facts = sorted(n for n in ruleset.catalog.specs if n.split(".")[0] in spec.provides)
            lines += [
                f"**Provides the calculation(s)** {', '.join(f'`{p}`' for p in spec.provides)}, with facts "
                + ", ".join(f"`{f}`" for f in facts)
                + "; its settings are the parameters below.",
                "",
            ]
        lines += ["**Fires when:** " + condition_text(spec.when, spec.parameters) + ".", ""]
        lines += _card_lines("Card", spec.card)
        for variant in spec.variants:
            lines += _card_lines(
                "Instead, when " + condition_text(variant.when, spec.parameters), variant.card
            )
        if spec.unknown.card is not None:
            lines += _card_lines("Missing data", spec.unknown.card)
        else:
            lines += [f"**Missing data:** no card. {spec.unknown.silent}", ""]
        if spec.parameters:
            lines += ["| Parameter | Value | Source |", "|---|---|---|"]
            for name, parameter in spec.parameters.items():
                lines.append(f"| `{name}` | {_value(parameter)} | {_cell(parameter.source)} |")
            lines.append("")
        parts.append("\n".join(lines))
    parts += [_chart_section(chart) for _, chart in sorted(ruleset.charts.items())]
    return "\n".join(parts).rstrip() + "\n"


def _chart_section(chart: ChartDefinition) -> str:
    """A chart behind card links (rules/charts): what it draws, from how far back, and why."""
    lines = [
        f'<a id="chart-{chart.id}"></a>',
        "",
        f"## Chart {chart.id}: {chart.title}",
        "",
        chart.description,
        "",
    ]
    days = chart.lookback.total_seconds() / 86400
    lines += [
        f"Drawn from the request's data, the {days:g} days before it; a link is valid for the configured time.",
        "",
    ]
    lines += ["| Panel | Analytes | Unit | Scale |", "|---|---|---|---|"]
    for panel in chart.panels:
        analytes = ", ".join(f"`{a}`" for a in panel.analytes)
        lines.append(f"| {_cell(panel.title)} | {analytes} | {panel.unit} | {panel.scale} |")
    if chart.dose is not None:
        lines.append(
            f"| {_cell(chart.dose.title)} | orders of `{chart.dose.medication}` | {chart.dose.unit} | steps |"
        )
    lines += ["", f"Source: {_cell(chart.source)}", ""]
    return "\n".join(lines)


def condition_text(node: Condition, parameters: Mapping[str, Parameter]) -> str:
    if isinstance(node, All):
        return " and ".join(_grouped(child, parameters) for child in node.all)
    if isinstance(node, Any_):
        return " or ".join(_grouped(child, parameters) for child in node.any)
    if isinstance(node, Not):
        return f"not ({condition_text(node.not_, parameters)})"
    if isinstance(node, Is):
        return f"`{node.fact}` is {'true' if node.is_ else 'false'}" + _if_missing(node.if_missing)
    if isinstance(node, In):
        return f"`{node.fact}` is {' or '.join(node.in_)}" + _if_missing(node.if_missing)
    if isinstance(node, Missing):
        return f"`{node.missing}` is missing"
    if isinstance(node, Present):
        return f"`{node.present}` is known"
    assert isinstance(node, Comparison)
    if node.param is not None and node.param in parameters:
        operand = f"{_value(parameters[node.param])} (`{node.param}`)"
    else:
        operand = str(node.value)
    return f"`{node.fact}` {node.op} {operand}" + _if_missing(node.if_missing)


def _grouped(node: Condition, parameters: Mapping[str, Parameter]) -> str:
    text = condition_text(node, parameters)
    return f"({text})" if isinstance(node, All | Any_) else text


def _if_missing(if_missing: str) -> str:
    return "" if if_missing == "unknown" else f" (taken as {if_missing} when unknown)"


def _card_lines(title: str, card: CardTemplate) -> list[str]:
    lines = [f"**{title}:** `{card.indicator}` — {card.summary}", ""]
    for suggestion in card.suggestions:
        lines.append(f"- suggestion ({suggestion.action}): {suggestion.label}")
    for entry in card.supersedes:
        effect = "hides" if entry.effect == "hide" else "withdraws isRecommended from"
        which = " and ".join(entry.outcomes)
        lines.append(
            f"- supersedes: {effect} the card of `{entry.rule}` ({which}) in the same "
            f"response: {_cell(entry.because)}"
        )
    if card.data_needed is not None:
        lines.append(
            f"- asks for data (merged with the other such cards into one, see [Response](#response)): "
            f"{_cell(card.data_needed.check)}, for {_cell(card.data_needed.unblocks)}"
        )
    for link in card.links:
        target = f"the chart [`{link.chart}`](#chart-{link.chart})" if link.chart else link.url
        lines.append(f"- link: {link.label} ({target})")
    if card.suggestions or card.links or card.supersedes or card.data_needed:
        lines.append("")
    return lines


def _response_section(ruleset: RuleSet) -> str:
    """When services and rules speak, and what the response step does with the cards rules ask for."""
    settings = ruleset.settings
    lines = ['<a id="scopes"></a>', "", "## Scopes: when the services and rules speak", ""]
    if settings is None or not settings.scopes:
        lines += ["No scopes: every rule speaks whenever it fires.", ""]
    else:
        lines += ["| Scope | Holds when | Meaning |", "|---|---|---|"]
        for name, scope in settings.scopes.items():
            lines.append(f"| `{name}` | {condition_text(scope.when, {})} | {_cell(scope.description)} |")
        lines.append("")
    for service in ruleset.services:
        if service.speaks_when is not None:
            lines.append(
                f"- `{service.id}` ({service.hook}) answers with no card at all, not even the "
                f"incomplete-data card, unless `{service.speaks_when}` holds."
            )
        else:
            lines.append(f"- `{service.id}` ({service.hook}) speaks as its rules do.")
    lines += ["", '<a id="response"></a>', "", "## Response: one voice", ""]
    lines += [
        (
            "Of the cards the rules ask for, a response shows those whose rule is in scope (one of its "
            "`speaks_when` scopes holds, or its `signal` does); a card hides, or withdraws isRecommended from, "
            "the cards it `supersedes`; no suggestion is offered twice (the same test, the same order: the card "
            "with the higher indicator keeps it). `cds-service rules explain` and the playground say what "
            "became of each card."
        ),
        "",
    ]
    merge = settings.response.data_needed if settings is not None else None
    if merge is not None:
        asking = sorted(
            rule.id
            for rule in ruleset.rules.values()
            if any(
                card is not None and card.data_needed is not None
                for card in (rule.spec.card, *(v.card for v in rule.spec.variants), rule.spec.unknown.card)
            )
        )
        lines += [
            f"**Merge `{merge.id}` {merge.version}:** when {merge.min_cards} or more cards of a response ask "
            f"for data, they become one info card — `{merge.summary}` — listing each missing item once "
            "with every check it is needed for, each test once; its provenance lists every rule it speaks "
            "for, so cards issued, feedback and the report count per rule. Cards that can ask for data: "
            + ", ".join(f"[`{r}`](#{_anchor(ruleset, r)})" for r in asking)
            + ".",
            "",
        ]
    precedence = [
        (rule.id, entry)
        for rule in sorted(ruleset.rules.values(), key=lambda r: r.id)
        for card in (rule.spec.card, *(v.card for v in rule.spec.variants), rule.spec.unknown.card)
        if card is not None
        for entry in card.supersedes
    ]
    if precedence:
        lines += ["| Card of | supersedes | effect | when that rule | because |", "|---|---|---|---|---|"]
        shown: set[tuple[str, str, str, str]] = set()
        for winner, entry in precedence:
            key = (winner, entry.rule, entry.effect, entry.because)
            if key in shown:
                continue
            shown.add(key)
            lines.append(
                f"| `{winner}` | `{entry.rule}` | {entry.effect} | {' or '.join(entry.outcomes)} | "
                f"{_cell(entry.because)} |"
            )
        lines.append("")
    return "\n".join(lines)


def _value(parameter: Parameter) -> str:
    value = parameter.value
    shown = ", ".join(str(v) for v in value) if isinstance(value, list) else str(value)
    if parameter.unit:
        shown = f"{shown} {parameter.unit}"
    if parameter.also:
        shown += " (" + ", ".join(f"{n.value:g} {n.unit}" for n in parameter.also) + ")"
    return _cell(shown)


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def _anchor(ruleset: RuleSet, rule_id: str) -> str:
    """The anchor a Markdown renderer gives the rule's heading ("## id: title")."""
    rule = ruleset.rules.get(rule_id)
    text = f"{rule_id}-{rule.spec.title}".lower() if rule else rule_id
    return "".join(c if c.isalnum() or c in "- " else "" for c in text).replace(" ", "-")


def _index(ruleset: RuleSet) -> str:
    lines = ["| Rule | Title | Services |", "|---|---|---|"]
    for rule in sorted(ruleset.rules.values(), key=lambda r: r.id):
        anchor = _anchor(ruleset, rule.id)
        lines.append(f"| [{rule.id}](#{anchor}) | {rule.spec.title} | {', '.join(rule.spec.services)} |")
    return "\n".join(lines) + "\n"
