"""The rules engine behind one interface, so that the engine could be replaced.

Findings are what a rule concluded, already worded from its rule file; the cards layer turns them
into spec-valid cards.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Protocol

from cds_service.facts.model import Facts
from cds_service.protocol.discovery import ServiceDefinition


@dataclasses.dataclass(frozen=True)
class Finding:
    rule_id: str
    rule_version: str
    # Card fields as the rule file words them: summary, indicator, detail, source, suggestions, links...
    card: dict[str, Any]


class Engine(Protocol):
    @property
    def version(self) -> str: ...

    def evaluate(self, service: ServiceDefinition, facts: Facts) -> list[Finding]: ...


class EmptyEngine:
    """The engine with no rules loaded: every service answers only with data-completeness cards."""

    version = "none"

    def evaluate(self, service: ServiceDefinition, facts: Facts) -> list[Finding]:
        return []
