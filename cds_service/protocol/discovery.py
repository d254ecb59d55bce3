"""Service definitions (rules/services/*.yaml) and the discovery document built from them."""

from __future__ import annotations

import string
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError, field_validator

from cds_service.protocol.hooks import HOOK_CONTEXT
from cds_service.protocol.outcome import ProblemError
from cds_service.protocol.response import SUMMARY_MAX
from cds_service.protocol.templates import template_problems
from cds_service.yamlfile import FileProblems, load_yaml, validation_problems

Text = Annotated[str, StringConstraints(min_length=1)]
ServiceId = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9\-]{0,63}$")]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PrefetchItem(_Strict):
    query: Text
    # A short noun for cards and errors ("medication orders"); defaults to the key.
    label: str | None = None
    # Required data that cannot be had makes the call fail with 412; optional data that cannot be had
    # is reported on an "incomplete data" card and the rules that need it say they could not evaluate.
    required: bool = True
    # Whether optional data that cannot be had is announced on the "incomplete data" card. False for data
    # only some results need (the Specimens of Gram stains): the facts that need it say so themselves,
    # and a card on every call without it would say nothing about this patient.
    announce: bool = True
    description: str | None = None


class IncompleteDataCard(_Strict):
    """Wording of the card that says which data could not be read. Placeholders: {sources}, {details}."""

    id: Text
    version: Text
    indicator: Literal["info", "warning", "critical"] = "info"
    summary: Annotated[str, StringConstraints(min_length=1, max_length=SUMMARY_MAX - 60)]
    detail: Text
    source_label: Text

    @field_validator("summary", "detail")
    @classmethod
    def _placeholders(cls, text: str) -> str:
        used = {name for _, name, _, _ in string.Formatter().parse(text) if name is not None}
        unknown = used - {"sources", "details"}
        if unknown:
            raise ValueError(f"unknown placeholder(s) {sorted(unknown)}; use {{sources}} or {{details}}")
        return text


class ServiceDefinition(_Strict):
    id: ServiceId
    hook: Text
    title: Text
    description: Text
    usageRequirements: str | None = None
    prefetch: dict[str, PrefetchItem] = Field(default_factory=dict)
    # The medication whose draft order the `order.*` facts describe (a key of rules/facts medications).
    medication: str | None = None
    # A scope of rules/ruleset.yaml: without it holding, the service answers with no card at all, not
    # even the incomplete-data card (an order-sign service called for every order in the hospital).
    speaks_when: Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9\-]{0,63}$")] | None = None
    # Not written in a service file: the rule pack's one card (ruleset.yaml `response.incomplete_data`),
    # which load_services gives every service.
    incomplete_data_card: IncompleteDataCard | None = Field(default=None, exclude=True)

    @field_validator("hook")
    @classmethod
    def _known_hook(cls, hook: str) -> str:
        if hook not in HOOK_CONTEXT:
            raise ValueError(f"hook {hook!r} is not supported (supported: {', '.join(sorted(HOOK_CONTEXT))})")
        return hook

    def discovery_entry(self, extension: dict[str, Any] | None = None) -> dict[str, Any]:
        entry: dict[str, Any] = {
            "hook": self.hook,
            "title": self.title,
            "description": self.description,
            "id": self.id,
        }
        if self.prefetch:
            entry["prefetch"] = {key: item.query for key, item in self.prefetch.items()}
        if self.usageRequirements:
            entry["usageRequirements"] = self.usageRequirements
        if extension:
            entry["extension"] = extension
        return entry


class ServiceFileError(Exception):
    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class ServiceRegistry:
    services: dict[str, ServiceDefinition]
    discovery_body: bytes

    def get(self, service_id: str) -> ServiceDefinition | None:
        return self.services.get(service_id)

    def __iter__(self) -> Iterator[ServiceDefinition]:
        return iter(self.services.values())

    def for_hook(self, hook: object, advice: str) -> str:
        """The id of the one service answering `hook`; a 400 saying `advice` (how to name one) when
        none or several do."""
        candidates = [s.id for s in self if s.hook == hook]
        if len(candidates) == 1:
            return candidates[0]
        if not candidates:
            raise ProblemError.single(400, f"no service answers hook {hook!r}; {advice}", "hook")
        raise ProblemError.single(
            400, f"several services answer {hook!r} ({', '.join(candidates)}); {advice}"
        )

    def with_extension(self, extension: dict[str, Any]) -> ServiceRegistry:
        """The same services, with `extension` on every discovery entry (e.g. the ruleset version)."""
        body = orjson.dumps({"services": [s.discovery_entry(extension) for s in self.services.values()]})
        return ServiceRegistry(services=self.services, discovery_body=body)


RULESET_FILE = "ruleset.yaml"
_SERVICE_CARD = "incomplete_data_card"


def _incomplete_data_card(path: Path) -> IncompleteDataCard | None:
    """The rule pack's incomplete-data card (ruleset.yaml `response.incomplete_data`), if one is declared;
    the ruleset file's problems, this card's among them, are the engine's to report (lint, load)."""
    if not path.exists():
        return None
    try:
        doc = load_yaml(path)
    except FileProblems:
        return None
    response = doc.data.get("response") if isinstance(doc.data, dict) else None
    if not isinstance(response, dict) or "incomplete_data" not in response:
        return None
    try:
        return IncompleteDataCard.model_validate(response["incomplete_data"])
    except ValidationError:
        return None


def load_services(rules_dir: Path) -> ServiceRegistry:
    """Load every rules_dir/services/*.yaml; raise ServiceFileError listing every problem as
    file:line: message."""
    folder = rules_dir / "services"
    files = sorted(folder.glob("*.yaml")) + sorted(folder.glob("*.yml"))
    problems: list[str] = []
    if not files:
        problems.append(f"{folder}:1: no service definition files (*.yaml)")
    services: dict[str, ServiceDefinition] = {}
    incomplete = _incomplete_data_card(rules_dir / RULESET_FILE)
    for path in files:
        try:
            doc = load_yaml(path)
            if isinstance(doc.data, dict) and _SERVICE_CARD in doc.data:
                problems.append(
                    str(
                        doc.problem(
                            (_SERVICE_CARD,),
                            f"{_SERVICE_CARD} is declared once for every service, in {RULESET_FILE} "
                            "(response.incomplete_data)",
                        )
                    )
                )
                continue
            service = ServiceDefinition.model_validate(doc.data).model_copy(
                update={"incomplete_data_card": incomplete}
            )
        except FileProblems as exc:
            problems.extend(map(str, exc.problems))
            continue
        except ValidationError as exc:
            problems.extend(map(str, validation_problems(doc, exc)))
            continue
        for key, item in service.prefetch.items():
            problems.extend(
                str(doc.problem(("prefetch", key, "query"), f"prefetch.{key}: {p}"))
                for p in template_problems(item.query, service.hook)
            )
        if service.id in services:
            problems.append(str(doc.problem(("id",), f"duplicate service id {service.id!r}")))
        services[service.id] = service
    if problems:
        raise ServiceFileError(problems)
    body = orjson.dumps({"services": [s.discovery_entry() for s in services.values()]})
    return ServiceRegistry(services=services, discovery_body=body)
