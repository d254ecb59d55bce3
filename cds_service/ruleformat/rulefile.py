"""The rule file format: what an informaticist writes in rules/*.yaml.

The pydantic models here are the single definition of the format: the JSON Schema in
docs/rule-file.schema.json is generated from them (`cds-service rules schema`), and lint validates
with them, so the editor's autocomplete and the linter can never disagree.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Discriminator, Field, StringConstraints, Tag, model_validator

from cds_service.store.limits import varchar
from cds_service.store.schema import cards_issued

Text = Annotated[str, StringConstraints(min_length=1)]
RuleId = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9\-]{0,63}$")]
# A chart file's id (rules/charts), which a card's link may name.
ChartId = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9\-]{0,63}$")]
FactName = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]*(\.[a-z0-9_]+)+$")]
ParamName = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]*$")]
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


All.model_rebuild()
Any_.model_rebuild()
Not.model_rebuild()
Variant.model_rebuild()
RuleFile.model_rebuild()


def rule_file_schema() -> dict[str, Any]:
    schema = RuleFile.model_json_schema(by_alias=True)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "CDS service rule file"
    return schema
