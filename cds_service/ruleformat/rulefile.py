"""The rule file format: what an informaticist writes in rules/*.yaml.

The pydantic models here are the single definition of the format: the JSON Schema in
docs/rule-file.schema.json is generated from them (`cds-service rules schema`), and lint validates
with them, so the editor's autocomplete and the linter can never disagree.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Discriminator, Field, StringConstraints, Tag, model_validator

from cds_service.protocol.discovery import IncompleteDataCard
from cds_service.store.limits import varchar
from cds_service.store.schema import cards_issued

Text = Annotated[str, StringConstraints(min_length=1)]
RuleId = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9\-]{0,63}$")]
# A chart file's id (rules/charts), which a card's link may name.
ChartId = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9\-]{0,63}$")]
FactName = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]*(\.[a-z0-9_]+)+$")]
ParamName = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]*$")]
# A scope of ruleset.yaml (`scopes:`): when a rule, or a whole service, may speak at all.
ScopeName = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9\-]{0,63}$")]
CalculationName = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]*$")]
# Every card issued records its rule's version: no longer than that column (store/limits.py).
RuleVersion = Annotated[
    str, StringConstraints(pattern=r"^\d+\.\d+\.\d+$", max_length=varchar(cards_issued.c.rule_version))
]
Scalar = float | int | str | bool
Operator = Literal[">", ">=", "<", "<=", "==", "!="]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class NativeThreshold(_Strict):
    """The same threshold as stated in another unit; a value reported in that unit is compared with it
    directly, so conversion rounding cannot flip a result at the boundary (265 mg/dL vs 3.0 mmol/L)."""

    value: float
    unit: Text


class Parameter(_Strict):
    """A threshold or setting, with the citation that justifies it."""

    value: Scalar | list[float | int | str] = Field(
        description="a number (with unit), a text, a yes/no, or a list of numbers or texts (e.g. bag volumes)"
    )
    unit: str | None = Field(default=None, description="UCUM unit of value, e.g. mg/d, mg/kg/h, ug/L")
    also: list[NativeThreshold] = Field(default_factory=list, description="the threshold in other units")
    source: Text = Field(description="where the value comes from: paper, section, or [project choice] why")
    description: str | None = None


class Comparison(_Strict):
    """`fact` compared with a parameter (quantities) or a literal value (counts, text, booleans)."""

    fact: FactName
    op: Operator
    param: ParamName | None = None
    value: float | int | str | bool | None = None
    if_missing: Literal["unknown", "false", "true"] = Field(
        default="unknown",
        description="what the comparison means when the fact could not be computed; "
        "'unknown' makes the rule report that it could not evaluate",
    )

    @model_validator(mode="after")
    def _one_operand(self) -> Comparison:
        if (self.param is None) == (self.value is None):
            raise ValueError("give exactly one of 'param' or 'value'")
        return self


class Is(_Strict):
    """A boolean fact is true (or false)."""

    fact: FactName
    is_: bool = Field(alias="is")
    if_missing: Literal["unknown", "false", "true"] = "unknown"

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class In(_Strict):
    """A text fact is one of the listed values."""

    fact: FactName
    in_: list[str] = Field(alias="in", min_length=1)
    if_missing: Literal["unknown", "false", "true"] = "unknown"

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class Missing(_Strict):
    """True when the fact could not be computed; never unknown."""

    missing: FactName


class Present(_Strict):
    """True when the fact was computed; never unknown."""

    present: FactName


class All(_Strict):
    all: list[Condition] = Field(min_length=1)


class Any_(_Strict):
    any: list[Condition] = Field(min_length=1)


class Not(_Strict):
    not_: Condition = Field(alias="not")

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


def _condition_kind(data: Any) -> str:
    # Pick the member by its key so an error names one shape, not every member of the union.
    if isinstance(data, BaseModel):
        return type(data).__name__.lower().rstrip("_")
    if isinstance(data, dict):
        for key in ("all", "any", "not", "missing", "present", "is", "in"):
            if key in data:
                return {"is": "is", "in": "in"}.get(key, key)
    return "comparison"


Condition = Annotated[
    Annotated[Comparison, Tag("comparison")]
    | Annotated[Is, Tag("is")]
    | Annotated[In, Tag("in")]
    | Annotated[Missing, Tag("missing")]
    | Annotated[Present, Tag("present")]
    | Annotated[All, Tag("all")]
    | Annotated[Any_, Tag("any")]
    | Annotated[Not, Tag("not")],
    Discriminator(_condition_kind),
]


class Source(_Strict):
    label: Text
    url: str | None = None


class Link(_Strict):
    """A link on the card: to a fixed `url`, or to a `chart` of rules/charts drawn from this request's
    data (the service makes a short-lived link for it)."""

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        json_schema_extra={"oneOf": [{"required": ["url"]}, {"required": ["chart"]}]},
    )

    label: Text
    url: Text | None = None
    chart: ChartId | None = Field(default=None, description="id of a chart in rules/charts")
    type: Literal["absolute", "smart"] = "absolute"

    @model_validator(mode="after")
    def _one_target(self) -> Link:
        if (self.url is None) == (self.chart is None):
            raise ValueError("give exactly one of 'url' or 'chart'")
        if self.chart is not None and self.type != "absolute":
            raise ValueError("a chart link is an absolute link; leave out 'type'")
        return self


class OverrideReason(_Strict):
    code: Text
    display: Text
    system: str = "https://cds-service.example.org/override-reasons"


_BOTH: tuple[Literal["fired", "unknown"], ...] = ("fired", "unknown")


class Supersedes(_Strict):
    """Another rule's card that this card makes redundant or wrong in the same response: e.g. the build of
    a dose that this card says to lower. Declared on the card that wins (docs/rule-authoring.md)."""

    rule: RuleId = Field(description="id of the rule whose card gives way")
    effect: Literal["hide", "not-recommended"] = Field(
        default="hide",
        description="hide: that card is left out of the response; not-recommended: it stays, but none of "
        "its suggestions is marked isRecommended",
    )
    outcomes: list[Literal["fired", "unknown"]] = Field(
        default_factory=lambda: list(_BOTH),
        min_length=1,
        description="which of that rule's cards give way: its card when it fired, its could-not-evaluate "
        "card, or both (the default)",
    )
    because: Text = Field(
        description="why this card's advice supersedes the other's, for explain and the docs"
    )


class DataNeeded(_Strict):
    """Marks a card that asks for data. When several cards of one response ask for data, the response step
    (ruleset.yaml `response.data_needed`) merges them into one card that lists each missing item, what it
    is needed for, and each test once."""

    check: Annotated[str, StringConstraints(min_length=1, max_length=32)] = Field(
        description="the check that waits for the data, as a clinician names it (e.g. 'renal dose'); "
        "listed in the merged card's summary"
    )
    needs: Text = Field(
        default="{missing}",
        description="what is missing, as a card template; the default {missing} lists each reason the "
        "rule could not evaluate as its own item",
    )
    unblocks: Text = Field(
        description="what the data would decide, as a card template (the merged card's 'needed for')"
    )


class SuggestionTemplate(_Strict):
    label: Text
    action: Text = Field(description="name of a suggestion builder, e.g. update-draft-order")
    arguments: dict[str, Any] = Field(default_factory=dict)
    isRecommended: bool = False


class CardTemplate(_Strict):
    """Card text with {placeholders}: {fact.name}, {fact.name.unit}, {fact.name.time},
    {fact.name.missing}, {fact.name.detail}, {param.name}, {missing} (what could not be read)."""

    indicator: Literal["info", "warning", "critical"]
    summary: Text
    detail: str | None = None
    source: Source
    suggestions: list[SuggestionTemplate] = Field(default_factory=list)
    selectionBehavior: Literal["at-most-one", "any"] | None = None
    links: list[Link] = Field(default_factory=list)
    overrideReasons: list[OverrideReason] = Field(default_factory=list)
    supersedes: list[Supersedes] = Field(
        default_factory=list, description="cards of other rules that give way to this one in one response"
    )
    data_needed: DataNeeded | None = Field(
        default=None, description="this card asks for data: merged with the other such cards of a response"
    )


class Signal(_Strict):
    """A finding that speaks for any patient, outside the rule's scopes: e.g. HLH-2004 criteria fulfilled on
    the chart of a patient never given the drug, a finding that would motivate therapy."""

    when: Condition = Field(description="the finding: while it certainly holds, the rule's card is shown")
    why: Text = Field(description="why this finding matters for a patient outside the scopes")


class Variant(_Strict):
    """Another wording of the card for a narrower situation: the first variant whose `when` certainly
    holds replaces `card` (e.g. a critical band, a subcutaneous order, the maximum dose reached)."""

    when: Condition
    card: CardTemplate


class WhenUnknown(_Strict):
    """What the rule says when its condition cannot be decided for lack of data. Either a card, or
    `silent` with the reason silence is safe; there is no default, so no rule can pass silently
    by accident."""

    card: CardTemplate | None = None
    silent: str | None = None

    @model_validator(mode="after")
    def _one(self) -> WhenUnknown:
        if (self.card is None) == (self.silent is None):
            raise ValueError("give exactly one of 'card' or 'silent' (with the reason silence is safe)")
        return self


class RuleFile(_Strict):
    id: RuleId
    version: RuleVersion
    title: Text
    description: Text
    services: list[Text] = Field(min_length=1, description="ids of the services (rules/services) it runs in")
    speaks_when: list[ScopeName] = Field(
        min_length=1,
        description="scopes of ruleset.yaml: the rule's cards are shown only while one of them holds "
        "(e.g. the drug is being ordered, or was given recently)",
    )
    signal: Signal | None = Field(
        default=None, description="a finding shown for any patient even outside the scopes"
    )
    provides: list[CalculationName] = Field(
        default_factory=list,
        description="calculations (e.g. renal, hlh) whose settings are this file's parameters; "
        "their facts (renal.crcl, hlh.met...) can then be read by any rule",
    )
    parameters: dict[ParamName, Parameter] = Field(default_factory=dict)
    when: Condition
    card: CardTemplate
    variants: list[Variant] = Field(
        default_factory=list, description="other wordings of the card; the first whose `when` holds is used"
    )
    unknown: WhenUnknown


class Scope(_Strict):
    """When a rule may speak: e.g. the drug is being ordered, or was given recently. Rules name scopes in
    `speaks_when`; a service names one in its `speaks_when` to stay silent altogether without it."""

    description: Text
    when: Condition = Field(
        description="a condition over facts, without parameters; a scope holds only when it certainly "
        "holds (write if_missing: 'false' where missing data must not count)"
    )


class DataNeededMerge(_Strict):
    """The card that several cards asking for data become (each carries `data_needed`)."""

    id: RuleId = Field(description="the merge's name, as explain and the playground show it")
    version: RuleVersion
    min_cards: int = Field(default=2, ge=2, description="merge when at least this many cards ask for data")
    summary: Text = Field(
        description="{count}: how many checks wait for data; {checks}: their names, as many as fit"
    )
    detail: Text = Field(description="{items}: one line per missing item with what it is needed for")
    overrideReasons: list[OverrideReason] = Field(default_factory=list)


class ResponseSettings(_Strict):
    """The response-level step: one voice per response (docs/cards.md)."""

    data_needed: DataNeededMerge | None = Field(
        default=None, description="merge the cards that ask for data into one"
    )
    incomplete_data: IncompleteDataCard | None = Field(
        default=None,
        description="the card every service shows when data could not be read ({sources}, {details})",
    )
    actions: dict[str, Text] = Field(
        default_factory=dict,
        description="the description (CDS Hooks Action.description) of the actions a suggestion builder "
        "writes, by builder: e.g. order-lab-test: 'Order {display}' ({display}: the test's name)",
    )


class RulesetFile(_Strict):
    """rules/ruleset.yaml: the ruleset's name and version, its scopes and its response step."""

    name: Text
    version: Annotated[str, StringConstraints(pattern=r"^\d+\.\d+\.\d+$")]
    description: str | None = None
    scopes: dict[ScopeName, Scope] = Field(
        default_factory=dict, description="when rules and services may speak (their `speaks_when`)"
    )
    response: ResponseSettings = Field(default_factory=ResponseSettings)


All.model_rebuild()
Any_.model_rebuild()
Not.model_rebuild()
Variant.model_rebuild()
Signal.model_rebuild()
Scope.model_rebuild()
RuleFile.model_rebuild()
RulesetFile.model_rebuild()


def rule_file_schema() -> dict[str, Any]:
    schema = RuleFile.model_json_schema(by_alias=True)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "CDS service rule file"
    return schema


def ruleset_file_schema() -> dict[str, Any]:
    schema = RulesetFile.model_json_schema(by_alias=True)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "CDS service ruleset file (rules/ruleset.yaml)"
    return schema
