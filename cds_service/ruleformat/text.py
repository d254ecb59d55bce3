"""Card text templates: `{fact.name}`, `{fact.name:.1f}`, `{fact.name.unit}`, `{param.name}`, `{missing}`.

Placeholders are checked when the rules are loaded (an unknown fact or parameter is a lint error) and
the longest text a template can produce is computed, so that a summary can be proved to fit in the
spec's 140 characters before any patient sees it.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any, Protocol

from cds_service.facts.named import Fact, FactSpec
from cds_service.facts.units import Units
from cds_service.markup import Markdown, markdown_text, plain_text

# Formats that only set precision (".1f", ".0%"): a width or padding would break the length bound.
_FORMAT = re.compile(r"^\.[0-3][f%]$")
_PLACEHOLDER = re.compile(r"\{\{|\}\}|\{([^{}:]*)(?::([^{}]*))?\}")
FACT_ATTRIBUTES = ("unit", "time", "missing", "detail", "evidence")
PARAM_ATTRIBUTES = ("unit", "source")
# Widest rendering assumed for each kind of value when checking a template's longest output.
WIDTH = {"number": 10, "unit": 10, "time": 16, "missing": 80, "detail": 60, "evidence": 40, "text": 24}
MISSING_WIDTH = 120


class ParameterLike(Protocol):
    @property
    def value(self) -> float | int | str | bool | list[float | int | str]: ...
    @property
    def unit(self) -> str | None: ...
    @property
    def source(self) -> str: ...


def placeholders(template: str) -> list[tuple[str, str | None]]:
    """(name, format spec) of every placeholder, in order."""
    return [
        (m.group(1).strip(), m.group(2))
        for m in _PLACEHOLDER.finditer(template)
        if m.group(0) not in ("{{", "}}")
    ]


def template_problems(
    template: str, specs: Mapping[str, FactSpec], parameters: Mapping[str, ParameterLike]
) -> list[str]:
    problems = []
    for name, spec in placeholders(template):
        problem = _placeholder_problem(name, spec, specs, parameters)
        if problem:
            problems.append(problem)
    stray = _PLACEHOLDER.sub("", template)
    if "{" in stray or "}" in stray:
        problems.append("unbalanced brace; write {{ or }} for a literal brace")
    return problems


def longest(
    template: str,
    specs: Mapping[str, FactSpec],
    parameters: Mapping[str, ParameterLike],
    units: Units | None = None,
) -> int:
    """An upper bound of the rendered length (assumes valid placeholders): the template rendered with the
    widest value each placeholder can take (its width), its literal text as card text writes units."""
    length = 0
    last = 0
    for match in _PLACEHOLDER.finditer(template):
        length += len(_prose(template[last : match.start()], units))
        last = match.end()
        if match.group(0) in ("{{", "}}"):
            length += 1
        else:
            length += width(match.group(1).strip(), match.group(2), specs, parameters, units)
    return length + len(_prose(template[last:], units))


def fill(
    template: str,
    facts: Mapping[str, Fact],
    parameters: Mapping[str, ParameterLike],
    missing: str = "",
    markdown: bool = False,
    thresholds: Mapping[str, Sequence[float]] | None = None,
    units: Units | None = None,
    fit: Mapping[str, FactSpec] | None = None,
) -> str:
    """The template with its placeholders filled; with `markdown` (a card's detail), made safe to render.

    `thresholds` are, per fact, the values the rule compares it with: a number is shown with as many more
    digits as it takes to stay on its side of each (2.004 mg/kg/h, never "2.00" above a limit of 2).
    `units` writes a UCUM code as people do ("Cel" -> "°C", rules/facts/units.yaml display).
    `fit` (the fact specs; for a summary) holds each value to the width lint assumed for its placeholder,
    shortened at a word boundary: the length lint proved is then the longest a summary can be.
    """
    parts: list[str] = []
    last = 0
    for match in _PLACEHOLDER.finditer(template):
        parts.append(_prose(template[last : match.start()], units))
        last = match.end()
        token = match.group(0)
        if token in ("{{", "}}"):
            parts.append(token[0])
            continue
        name, spec = match.group(1).strip(), match.group(2)
        limits = thresholds.get(name, ()) if thresholds else ()
        rendered = _render(name, spec, facts, parameters, missing, limits, units.text if units else _as_is)
        value = _prose(rendered, units)
        if name.startswith("param."):
            parts.append(value)  # the rule file's own text
            continue
        if fit is not None and _open(name, fit):
            value = shorten(value, width(name, spec, fit, parameters, units))
        if not markdown:
            parts.append(plain_text(value))
        elif isinstance(rendered, Markdown):
            # Markdown the service put together with its EHR parts escaped (prose knows units' escaped
            # spellings, so "10\*9/L" there is written "×10⁹/L" too).
            parts.append(value)
        else:
            # Anything else may quote the EHR (a unit, a route, an order's text, a resource id).
            parts.append(markdown_text(value))
    parts.append(_prose(template[last:], units))
    text = "".join(parts)
    return protect_units(text) if markdown else text


def shorten(text: str, limit: int) -> str:
    """`text` within `limit` characters, cut at a word boundary with "…" (never inside a word)."""
    if len(text) <= limit:
        return text
    cut = text[: max(limit - 1, 0)]
    space = cut.rfind(" ")
    if space > 0:
        cut = cut[:space]
    return cut.rstrip(" ,;:(") + "…"


def _open(name: str, specs: Mapping[str, FactSpec]) -> bool:
    """Whether a placeholder renders free text (a reason, a description), which can be shortened at a word;
    a number, time or unit never is."""
    if name == "missing":
        return True
    if name.startswith("param."):
        return False
    fact, attribute = _split(name, specs)
    if attribute is not None:
        return attribute in ("missing", "detail", "evidence")
    return fact in specs and specs[fact].kind in ("text", "build")


def _prose(text: str, units: Units | None) -> str:
    return units.prose(text) if units is not None and text else text


# UCUM writes powers of ten with "*": two "10*9/L" in one line read as emphasis in markdown, and every
# EHR that renders the detail (as the spec asks) would show an italic "109/L". Values and units may carry
# markdown on purpose (bold numbers), so only a "*" between two digits is escaped.
_POWER = re.compile(r"(?<=\d)\*(?=\d)")
_ESCAPE = re.compile(r"\\([!-/:-@\[-`{-~])")


def protect_units(markdown_text: str) -> str:
    return _POWER.sub(r"\\*", markdown_text)


def visible(markdown: str) -> str:
    """The text as a reader sees it once rendered (backslash escapes undone), for rule cases that quote
    it."""
    return _ESCAPE.sub(r"\1", markdown)


def format_number(value: float, spec: str | None = None, thresholds: Sequence[float] = ()) -> str:
    text = _format(value, spec)
    if not thresholds or not math.isfinite(value) or (spec or "").endswith("%"):
        return text
    # Rounding must not carry the shown value to, or across, a threshold the true value is not at.
    digits = int(spec[1]) if spec else 2
    while digits < _MAX_DIGITS and any(_side(float(text), t) != _side(value, t) for t in thresholds):
        digits += 1
        text = f"{value:.{digits}f}" if spec else f"{value:.{digits}f}".rstrip("0").rstrip(".")
    return text


_MAX_DIGITS = 9


def _side(value: float, threshold: float) -> int:
    return (value > threshold) - (value < threshold)


def _format(value: float, spec: str | None) -> str:
    if spec:
        return format(value, spec)
    if math.isfinite(value) and value == int(value) and abs(value) < 1e15:
        return str(int(value))
    return f"{value:.2f}".rstrip("0").rstrip(".")


def format_time(time: datetime | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M") if time else "unknown time"


def _split(name: str, specs: Mapping[str, FactSpec]) -> tuple[str, str | None]:
    if name in specs:
        return name, None
    head, _, attribute = name.rpartition(".")
    return head, attribute


def _placeholder_problem(
    name: str,
    spec: str | None,
    specs: Mapping[str, FactSpec],
    parameters: Mapping[str, ParameterLike],
) -> str | None:
    if name == "missing":
        return None
    if name.startswith("param."):
        param, _, param_attribute = name.removeprefix("param.").partition(".")
        if param not in parameters:
            return f"{{{name}}}: unknown parameter {param!r}"
        if param_attribute and param_attribute not in PARAM_ATTRIBUTES:
            return f"{{{name}}}: a parameter has {', '.join(PARAM_ATTRIBUTES)}, not {param_attribute!r}"
        if spec and (param_attribute or not _FORMAT.match(spec)):
            return f"{{{name}:{spec}}}: only a precision format (.0f to .3f, .0% to .3%) applies to numbers"
        if spec and not isinstance(parameters[param].value, int | float):
            return f"{{{name}:{spec}}}: a format applies only to numbers"
        return None
    fact, attribute = _split(name, specs)
    if fact not in specs:
        return f"{{{name}}}: unknown fact {name!r}"
    if attribute is not None and attribute not in FACT_ATTRIBUTES:
        return f"{{{name}}}: a fact has {', '.join(FACT_ATTRIBUTES)}, not {attribute!r}"
    if spec and attribute is None and specs[fact].kind not in ("quantity", "count"):
        return f"{{{name}:{spec}}}: a format applies only to numbers"
    if spec and (attribute is not None or not _FORMAT.match(spec)):
        return f"{{{name}:{spec}}}: only a precision format (.0f to .3f, .0% to .3%) applies to numbers"
    return None


def width(
    name: str,
    spec: str | None,
    specs: Mapping[str, FactSpec],
    parameters: Mapping[str, ParameterLike],
    units: Units | None = None,
) -> int:
    """The widest a placeholder renders: declared per fact (FactSpec.width, closed values) or per kind
    (WIDTH); a parameter's exact rendering."""
    if name == "missing":
        return MISSING_WIDTH
    if name.startswith("param."):
        param, _, param_attribute = name.removeprefix("param.").partition(".")
        parameter = parameters.get(param)
        if parameter is None:
            return WIDTH["text"]
        if param_attribute == "unit":
            return len(units.text(parameter.unit) if units else parameter.unit or "")
        if param_attribute == "source":
            return len(parameter.source)
        return len(_prose(_param_value(parameter, spec), units))
    fact, attribute = _split(name, specs)
    if fact not in specs:
        return WIDTH["text"]
    if attribute == "detail" and specs[fact].detail_width is not None:
        return specs[fact].detail_width or 0
    if attribute is not None:
        return WIDTH[attribute]
    fact_spec = specs[fact]
    if fact_spec.kind in ("text", "build"):
        return max((len(v) for v in fact_spec.values), default=fact_spec.width or WIDTH["text"])
    if fact_spec.kind == "boolean":
        return 3
    # A censored value renders with its comparator (">40000").
    return WIDTH["number"] + 2


def _param_value(parameter: ParameterLike, spec: str | None) -> str:
    value = parameter.value
    if isinstance(value, list):
        return ", ".join(format_number(float(v)) if isinstance(v, int | float) else str(v) for v in value)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    return format_number(float(value), spec)


def _as_is(code: str | None) -> str:
    return code or ""


def _render(
    name: str,
    spec: str | None,
    facts: Mapping[str, Fact],
    parameters: Mapping[str, ParameterLike],
    missing: str,
    thresholds: Sequence[float] = (),
    units: Callable[[str | None], str] = _as_is,
) -> str:
    if name == "missing":
        return missing or "nothing"
    if name.startswith("param."):
        param, _, param_attribute = name.removeprefix("param.").partition(".")
        parameter = parameters[param]
        if param_attribute == "unit":
            return units(parameter.unit)
        if param_attribute == "source":
            return parameter.source
        return _param_value(parameter, spec)
    fact = facts.get(name)
    attribute: str | None = None
    if fact is None:
        head, _, attribute = name.rpartition(".")
        fact = facts.get(head)
    if fact is None:
        return "?"
    if attribute == "unit":
        return units(fact.unit)
    if attribute == "time":
        return format_time(fact.time)
    if attribute == "missing":
        return fact.missing or ""
    if attribute == "detail":
        return fact.detail or ""
    if attribute == "evidence":
        return ", ".join(fact.evidence)
    return _value(fact, spec, thresholds if fact.comparator is None else ())


def _value(fact: Fact, spec: str | None, thresholds: Sequence[float] = ()) -> str:
    value: Any = fact.value
    if value is None:
        return "unknown"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int | float):
        text = format_number(float(value), spec, thresholds)
        return f"{fact.comparator}{text}" if fact.comparator else text
    return value if isinstance(value, str) else str(value)
