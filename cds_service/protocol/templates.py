"""Prefetch templates: the query restrictions of CDS Hooks 2.0 and filling in their tokens."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qsl, quote

from cds_service.protocol.hooks import prefetch_tokens

_TOKEN = re.compile(r"\{\{\s*([A-Za-z][A-Za-z0-9_.]*)\s*\}\}")
_RESOURCE_TYPE = re.compile(r"^[A-Z][A-Za-z]+$")
_DATE_PREFIX = ("ge", "le", "gt", "lt")
# Search parameters whose values are dates; the spec allows only ge/le/gt/lt comparisons on them.
_DATE_PARAMS = {"date", "authoredon", "onset-date", "recorded-date", "issued", "_lastupdated"}
_FORBIDDEN = {"_include", "_revinclude", "_has", "_elements", "_summary", "_contained", "_containedtype"}
_USER_TOKENS = {
    "userPractitionerId": "Practitioner",
    "userPractitionerRoleId": "PractitionerRole",
    "userPatientId": "Patient",
    "userRelatedPersonId": "RelatedPerson",
}


def template_problems(template: str, hook: str) -> list[str]:
    """Why `template` breaks the spec's prefetch restrictions for `hook` (empty when it does not)."""
    problems = []
    allowed = prefetch_tokens(hook)
    for token in _TOKEN.findall(template):
        if token not in allowed:
            problems.append(f"token {{{{{token}}}}} is not available on {hook}")
    path, _, query = template.partition("?")
    if not query:
        parts = path.split("/")
        if len(parts) != 2 or not _RESOURCE_TYPE.match(parts[0]) or not parts[1]:
            problems.append("a read must be 'Type/{{token}}' or 'Type/id'")
        return problems
    if not _RESOURCE_TYPE.match(path):
        problems.append(f"search must be on a resource type, not {path!r}")
    for name, value in parse_qsl(query, keep_blank_values=True):
        base, _, modifier = name.partition(":")
        if base in _FORBIDDEN:
            problems.append(f"{base} is not allowed in prefetch")
        elif "." in base:
            problems.append(f"chained search {name!r} is not allowed in prefetch")
        elif modifier and modifier != "in":
            problems.append(f"modifier :{modifier} is not allowed (did you mean _sort=-{value or 'date'}?)")
        elif base == "_sort":
            for key in value.split(","):
                if not re.match(r"^-?[a-z][a-z0-9\-_]*$", key):
                    problems.append(f"_sort={value!r} must list parameters, '-' for descending")
        elif base == "_count" and not re.fullmatch(r"[0-9]+", value):
            problems.append("_count must be a whole number")
        elif (
            base.lower() in _DATE_PARAMS
            and not _TOKEN.fullmatch(value)
            and not value.startswith(_DATE_PREFIX)
        ):
            problems.append(f"{base}={value!r}: dates may only be compared with ge, le, gt or lt")
    return problems


def fill_template(template: str, context: dict[str, Any]) -> str | None:
    """The query with tokens replaced from the hook context, or None when a token has no value."""
    missing = False

    def value_of(match: re.Match[str]) -> str:
        nonlocal missing
        value = token_value(match.group(1), context)
        if value is None:
            missing = True
            return ""
        return quote(value, safe="")

    filled = _TOKEN.sub(value_of, template)
    return None if missing else filled


def token_value(token: str, context: dict[str, Any]) -> str | None:
    if token.startswith("context."):
        value = context.get(token.removeprefix("context."))
        return value if isinstance(value, str) and value else None
    resource_type = _USER_TOKENS.get(token)
    user = context.get("userId")
    if resource_type and isinstance(user, str):
        kind, _, ident = user.partition("/")
        return ident if kind == resource_type and ident else None
    return None
