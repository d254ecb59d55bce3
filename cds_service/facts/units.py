"""UCUM units: parsed by ucumvert, converted by pint; never a hand-typed factor.

Parsing a code costs 1-2.5 ms and pint's `.to()` about 20 us, far too slow for every lab value of every
request. So codes are parsed once (`parse`, cached: failures too, or a result with a bad unit would cost a
parse every time it is read), and each (from, to, molar mass) pair is reduced once to the affine map
`y = scale * x + offset` that pint computes (`_affine`, cached); after warm-up a conversion is a
dictionary lookup and a multiplication. Affine covers every UCUM unit the service reads, including the
offset temperatures ([degF] -> Cel). The caches are bounded (the EHR chooses the codes), and so is the
length of a code worth parsing: ucumvert's parser takes longer than linear in the length (about 7 ms at
64 characters, 200 ms at 1,000 for UCUM-like text), so longer codes are refused unparsed.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from cds_service.markup import markdown_text

# Results are rounded to this many significant digits: pint's factors are binary floats (1/24 h is
# 0.041666666666666664), and 2400 mg/d at 50 kg must be exactly 2.0 mg/kg/h for an inclusive limit.
SIGNIFICANT = 12
MOLAR_MASS_UNIT = "g/mol"
# The longest code the rule pack, the fixtures and the captured EHR requests use is 16 characters
# (mL/min/{1.73_m2}); four times that leaves room for long annotations and refuses text that only costs.
MAX_CODE_LENGTH = 64
PARSE_CACHE_SIZE = 4096
_SHOWN_LENGTH = 40


# What a card says of a unit that is not UCUM: the EHR's spelling is never echoed into card text.
UNRECOGNISED_UNIT = "an unrecognised unit"
_POWER = re.compile(r"(?<![\d.])10\*(-?\d+)")
_MICRO = re.compile(r"(?<![A-Za-z])u(?=[a-zA-Z])")
_SUPERSCRIPT = str.maketrans("-0123456789", "⁻⁰¹²³⁴⁵⁶⁷⁸⁹")


def _spellings(
    aliases: Mapping[str, str], display: Mapping[str, str]
) -> tuple[re.Pattern[str], dict[str, str]] | None:
    """A regex of the unit spellings that card text writes otherwise (UCUM codes and aliases whose display
    form differs), longest first, as whole tokens; and what each becomes."""
    shown: dict[str, str] = {}
    for code, text in display.items():
        if text != code and _unambiguous(code):
            shown[code] = text
    for seen, code in aliases.items():
        written = display.get(code)
        if written is not None and written != seen and _unambiguous(seen):
            shown.setdefault(seen, written)
    if not shown:
        return None
    # Card detail is Markdown, and text the service composed there has its EHR parts escaped ("10\*9/L",
    # "\[degF\]"): the escaped spelling is written as people write it too.
    for spelling, text in list(shown.items()):
        shown.setdefault(markdown_text(spelling), text)
    alternatives = "|".join(re.escape(s) for s in sorted(shown, key=len, reverse=True))
    return re.compile(rf"(?<![A-Za-z_\]\[*^])(?:{alternatives})(?![A-Za-z0-9_\[])"), shown


def _unambiguous(spelling: str) -> bool:
    # "h", "d", "a", "in", "cc" are words too; a spelling with a symbol or of 3 letters or more is a unit.
    return any(c in spelling for c in "/*^[]%°º") or (len(spelling) >= 3 and " " not in spelling)


def unit_text(code: str) -> str:
    """A UCUM code that units.yaml does not list, as a lab report prints it: 10*6/L -> ×10⁶/L, ug -> µg."""
    text = _POWER.sub(lambda m: "×10" + m.group(1).translate(_SUPERSCRIPT), code)
    return _MICRO.sub("µ", text)


class UnitError(ValueError):
    """A unit that is unknown, or does not convert to the unit asked for."""


class UnknownUnit(UnitError):
    def __init__(self, code: str, reason: str = "is not a UCUM unit this service knows") -> None:
        self.code = code
        self.reason = reason
        # A refused code can be any length: the message names it by its start.
        self.shown = code if len(code) <= _SHOWN_LENGTH else f"{code[:_SHOWN_LENGTH]}…"
        super().__init__(f"unit '{self.shown}' {reason}")


class NotConvertible(UnitError):
    pass


@functools.cache
def _registry() -> Any:
    # Importing and building the registry takes ~0.5 s: only when a unit is first needed, once per process.
    from ucumvert import PintUcumRegistry

    return PintUcumRegistry()


def parse(code: str) -> Any:
    """A UCUM code as a pint Quantity of magnitude 1 (or the code's own factor, e.g. 10*9/L).

    Raises UnknownUnit for a code that is not UCUM (remembered: it is not parsed again) or is longer than
    MAX_CODE_LENGTH (not parsed at all)."""
    if len(code) > MAX_CODE_LENGTH:
        raise UnknownUnit(
            code, f"is {len(code):,} characters long; units longer than {MAX_CODE_LENGTH} are not read"
        )
    parsed = _parsed(code)
    if parsed is _NOT_UCUM:
        raise UnknownUnit(code)
    return parsed


_NOT_UCUM = object()


@functools.lru_cache(maxsize=PARSE_CACHE_SIZE)
def _parsed(code: str) -> Any:
    """`parse` without the length check, failures answered as _NOT_UCUM so that they are cached too."""
    registry = _registry()
    try:
        quantity = registry.from_ucum(code)
    except Exception:  # noqa: BLE001 (ucumvert raises lark and pint errors of many kinds; all mean "not UCUM")
        return _NOT_UCUM
    if hasattr(quantity, "magnitude") and hasattr(quantity, "units"):  # a pint Quantity
        return quantity
    # An annotation alone ("{score}") is the unity in UCUM; ucumvert answers it with its parse token
    # ("{a}.{b}" with a number). Both are dimensionless.
    factor = quantity if isinstance(quantity, int | float) and not isinstance(quantity, bool) else 1
    # The unity as ucumvert parses it: registry.Quantity belongs to another pint registry than the
    # quantities from_ucum makes, and pint refuses to multiply across registries (by a molar mass).
    return registry.from_ucum("1") * factor


def tidy(value: float) -> float:
    """`value` without the last bits of float noise conversions leave (1.9999999999999998 -> 2.0)."""
    return float(f"{value:.{SIGNIFICANT}g}")


def _quantity(value: float, code: str) -> Any:
    unit = parse(code)
    # Quantity(value, unit) rather than value * unit: multiplying an offset unit ([degF]) is an error in pint.
    return type(unit)(value * unit.magnitude, unit.units)


@functools.lru_cache(maxsize=4096)
def _affine(from_code: str, to_code: str, molar_mass: float | None) -> tuple[float, float] | str:
    """(scale, offset) with to = scale * from + offset, or why there is none."""
    import pint

    target = parse(to_code)
    parse(from_code)  # an unknown code raises UnknownUnit: not cached here, but parse() remembers it

    def at(x: float) -> float:
        quantity = _quantity(x, from_code)
        try:
            return float(quantity.to(target.units).magnitude) / target.magnitude
        except pint.DimensionalityError:
            if molar_mass is None:
                raise
        # Mass <-> amount of substance through the analyte's molar mass: still unit algebra, not a factor.
        mass = parse(MOLAR_MASS_UNIT) * molar_mass
        for candidate in (quantity * mass, quantity / mass):
            try:
                return float(candidate.to(target.units).magnitude) / target.magnitude
            except pint.DimensionalityError:
                continue
        raise pint.DimensionalityError(from_code, to_code)

    try:
        offset = at(0.0)
        scale = at(1.0) - offset
    except pint.DimensionalityError:
        return f"'{from_code}' does not convert to {to_code}"
    except pint.PintError as exc:
        return f"'{from_code}' does not convert to {to_code}: {exc}"
    return scale, offset


_PROSE_CACHE_SIZE = 4096
_PROSE_CACHED_LENGTH = 200

class Units:
    """Unit handling for one catalog: the alias table for non-UCUM spellings seen in EHR data, and how
    each unit is written for people."""

    def __init__(self, aliases: Mapping[str, str], display: Mapping[str, str] | None = None) -> None:
        self._aliases = dict(aliases)
        self.display: Mapping[str, str] = dict(display or {})
        self._spellings = _spellings(self._aliases, self.display)

    def prose(self, text: str) -> str:
        """`text` with every machine spelling of a unit written as people write it ("39.8 Cel" -> "39.8
        °C", "0.9 x10^9/L" -> "0.9 ×10⁹/L"): applied to all card text as it is composed, so the values
        calculations write into it read as a lab report does. Single letters (h, d, a) are left alone."""
        if self._spellings is None:
            return text
        if len(text) > _PROSE_CACHED_LENGTH:
            return self._prose(text)
        return self._prose_cached(text)

    def _prose(self, text: str) -> str:
        assert self._spellings is not None
        pattern, shown = self._spellings
        return pattern.sub(lambda m: shown[m.group(0)], text)

    @functools.cached_property
    def _prose_cached(self) -> Callable[[str], str]:
        # Card text is composed from the same template pieces and much the same values on every call:
        # the substitution was 0.8 ms of a 4 ms card stage on W1. Bounded, and only for short texts.
        return functools.lru_cache(maxsize=_PROSE_CACHE_SIZE)(self._prose)

    def text(self, code: str | None) -> str:
        """A unit as people write it: the display form of units.yaml ("Cel" -> "°C"); a UCUM code it does
        not list, with powers of ten and micro written out ("10*6/L" -> "×10⁶/L"); a unit that is not
        UCUM at all is never echoed: "an unrecognised unit"."""
        if not code:
            return ""
        shown = self.display.get(code)
        if shown is not None:
            return shown
        ucum = self.ucum(code) or code
        if ucum in self.display:
            return self.display[ucum]
        if "{" in ucum:
            # A UCUM annotation ({pill}, {tbl}) counts things this service cannot weigh: not a unit to show.
            return UNRECOGNISED_UNIT
        try:
            parse(ucum)
        except Exception:  # noqa: BLE001 - the parser's errors differ by cause; all mean "not UCUM"
            return UNRECOGNISED_UNIT
        return unit_text(ucum)

    def quantity(self, value: str, code: str | None) -> str:
        """A number and its unit for card text: "1.2 mg/dL", or "1 (in an unrecognised unit)"."""
        shown = self.text(code)
        if shown == UNRECOGNISED_UNIT:
            return f"{value} (in {UNRECOGNISED_UNIT})"
        return f"{value} {shown}".rstrip()

    def ucum(self, text: str | None) -> str | None:
        """The UCUM code for a unit as reported (an alias mapped), or None when there is no unit."""
        if text is None:
            return None
        text = text.strip()
        if not text:
            return None
        return self._aliases.get(text, text)

    @staticmethod
    def check(code: str, arbitrary: Iterable[str] = ()) -> None:
        """Raise UnknownUnit unless `code` is UCUM (or one of the arbitrary units allowed here)."""
        if code not in arbitrary:
            parse(code)

    @staticmethod
    def affine(
        from_code: str,
        to_code: str,
        molar_mass: float | None = None,
        same: frozenset[str] = frozenset(),
    ) -> tuple[float, float]:
        """(scale, offset) converting `from_code` to `to_code`; raises UnitError.

        `same`: codes that all denote one arbitrary unit (e.g. sCD25's [U]/mL and U/mL). UCUM cannot
        convert arbitrary units, so these compare only with each other, at a factor of one.
        """
        if from_code == to_code:
            if from_code not in same:
                parse(from_code)
            return 1.0, 0.0
        if from_code in same or to_code in same:
            if from_code in same and to_code in same:
                return 1.0, 0.0
            raise NotConvertible(
                f"'{from_code}' does not convert to {to_code}: "
                "an arbitrary unit compares only with the same assay's unit"
            )
        result = _affine(from_code, to_code, molar_mass)
        if isinstance(result, str):
            raise NotConvertible(result)
        return result

    def convert(
        self,
        value: float,
        from_code: str,
        to_code: str,
        molar_mass: float | None = None,
        same: frozenset[str] = frozenset(),
    ) -> float:
        scale, offset = self.affine(from_code, to_code, molar_mass, same)
        if scale == 1.0 and offset == 0.0:
            return value
        return tidy(scale * value + offset)

    def try_convert(self, value: float, from_code: str | None, to_code: str) -> float | None:
        """`value` in `to_code`, or None when the unit is absent, unknown or of another dimension."""
        if from_code is None:
            return None
        try:
            return self.convert(value, from_code, to_code)
        except UnitError:
            return None

    @staticmethod
    @functools.lru_cache(maxsize=256)
    def product_factor(first: str, second: str, to_code: str) -> float:
        """k with (x first) * (y second) = k*x*y to_code, e.g. 10*9/L x % -> 10*9/L is 0.01."""
        product = parse(first) * parse(second)
        target = parse(to_code)
        try:
            return float(product.to(target.units).magnitude) / target.magnitude
        except Exception as exc:  # pint's DimensionalityError; kept out of the cache's failure path
            raise NotConvertible(f"{first} x {second} does not convert to {to_code}") from exc
