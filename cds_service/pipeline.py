"""One request, one direction, in seven stages run in order by name:

    parse -> gather data -> facts -> derived facts -> rule evaluation -> cards -> response

`call_service` runs them; stages 3 to 6 are `compute_answer`, one piece of work on the compute thread.
Each stage is one call with a typed input and output (docs/architecture.md names the module that owns
each). The HTTP routes and `cds-service evaluate` both call this module, so the CLI prints exactly the
body the HTTP call would return.
"""

from __future__ import annotations

import asyncio
import contextvars
import dataclasses
import functools
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import ParamSpec, TypeVar

from cds_service.cards.render import Rendered, render_response
from cds_service.charts.links import ChartLinks
from cds_service.config import Settings
from cds_service.data.prefetch import (
    DataError,
    FetchSettings,
    PatientData,
    RequiredDataUnavailable,
    gather_data,
)
from cds_service.data.upstream import Upstreams
from cds_service.engine import Evaluation, RuleEngine
from cds_service.engine.durable import DurableRules, EngineError
from cds_service.engine.ruleset import RuleSet, load_ruleset
from cds_service.facts.build import build_facts
from cds_service.facts.derive import named_facts
from cds_service.facts.model import Facts
from cds_service.facts.named import Fact, missing
from cds_service.protocol.discovery import ServiceDefinition, ServiceRegistry
from cds_service.protocol.outcome import Issue, ProblemError
from cds_service.protocol.request import HookRequest, parse_hook_request
from cds_service.security.trust import TrustedIssuer
from cds_service.store.database import ChartSnapshot, IssuedCard

log = logging.getLogger(__name__)

_P = ParamSpec("_P")
_T = TypeVar("_T")


@dataclasses.dataclass
class Runtime:
    """Everything a request needs that outlives it; built once per process."""

    settings: Settings
    engine: RuleEngine
    # The FHIR servers' connection pools, one per calling issuer.
    upstreams: Upstreams
    fetch: FetchSettings
    # "Now" for every call that is not given its own time: the wall clock, or a test's fixed instant.
    clock: Callable[[], datetime] = dataclasses.field(default=lambda: datetime.now(UTC))
    # The CPU-bound stages (facts, derived facts, cards) run here, one at a time, not on the event
    # loop: a request with a large body would otherwise stall every other request, /healthz included,
    # for as long as it computes. One thread, because the unit registry's parse caches are shared.
    compute: ThreadPoolExecutor = dataclasses.field(
        default_factory=lambda: ThreadPoolExecutor(max_workers=1, thread_name_prefix="cds-compute")
    )

    async def off_loop(self, function: Callable[_P, _T], *args: _P.args, **kwargs: _P.kwargs) -> _T:
        """`function(*args, **kwargs)` on the compute thread, with this task's context (log fields)."""
        call = functools.partial(contextvars.copy_context().run, function, *args, **kwargs)
        return await asyncio.get_running_loop().run_in_executor(self.compute, call)

    @property
    def services(self) -> ServiceRegistry:
        # Services come with the ruleset, so a reload swaps both together.
        return self.engine.ruleset.services

    @classmethod
    def create(cls, settings: Settings) -> Runtime:
        """Load and compile the rules; raises FileProblems (file:line) if they do not lint clean."""
        durable = DurableRules()
        try:
            ruleset = load_ruleset(settings.rules_dir, durable)
        except BaseException:
            durable.close()
            raise
        return cls(
            settings=settings,
            engine=RuleEngine(ruleset, durable),
            upstreams=Upstreams(settings.fetch_allow_private, settings.fetch_max_connections),
            fetch=FetchSettings(
                deadline_seconds=settings.fetch_deadline_seconds,
                max_pages=settings.fetch_max_pages,
                without_token=settings.fetch_without_token,
                max_answer_bytes=settings.fetch_max_answer_bytes,
                max_call_bytes=settings.fetch_max_call_bytes,
            ),
        )

    async def aclose(self) -> None:
        await self.upstreams.aclose()
        self.compute.shutdown(wait=True)
        self.engine.close()


def data_problem(error: DataError) -> ProblemError:
    """The data layer's refusal as the caller sees it: 412 when required data could not be had, 400
    when what the caller sent cannot be used."""
    status = 412 if isinstance(error, RequiredDataUnavailable) else 400
    issues = [Issue(p.message, code=p.code, expression=p.expression) for p in error.problems]
    return ProblemError(status, issues)


@dataclasses.dataclass(frozen=True)
class Answer:
    body: bytes
    issued: list[IssuedCard]
    patient_id: str | None
    hook_instance: str
    facts: Facts
    data: PatientData
    evaluation: Evaluation
    # The data behind chart links on the cards; stored with the cards before the answer leaves.
    charts: tuple[ChartSnapshot, ...] = ()


async def call_service(
    runtime: Runtime,
    service_id: str,
    body: bytes,
    now: datetime | None = None,
    public_url: str | None = None,
    issuer: TrustedIssuer | None = None,
) -> Answer:
    """Answer one hook call. Raises ProblemError for anything the caller must fix (400/404/412).

    `public_url` is where the service is reached, for the chart links on cards; without one they point
    at the configured host and port. `issuer` is the verified caller's trust-file entry: data is fetched
    through its pool and under its fhir_servers (None: auth off, any public https server)."""
    engine = runtime.engine
    # One ruleset for the whole request, even if a reload swaps in another while we fetch data.
    ruleset = engine.ruleset
    service = ruleset.services.get(service_id)
    if service is None:
        raise ProblemError.single(404, f"no CDS service with id {service_id!r}; GET /cds-services lists them")
    # 1. parse
    request = await runtime.off_loop(parse_hook_request, body, service.hook)
    # 2. gather data
    try:
        data = await gather_data(
            service, request, runtime.upstreams.for_issuer(issuer), runtime.fetch, runtime.off_loop
        )
    except DataError as exc:
        raise data_problem(exc) from None
    # 3-6: one piece of work on the compute thread (stage 5 hands the facts to the rules engine's own
    # thread and waits there), so one hop from the event loop and back instead of four.
    moment = now or runtime.clock()
    facts, evaluation, rendered = await runtime.off_loop(
        compute_answer, runtime, ruleset, service, request, data, moment, public_url
    )
    # 7. response
    return Answer(
        body=rendered.response.body(),
        issued=issued_cards(rendered, service.id, facts, moment),
        patient_id=request.patient_id,
        hook_instance=request.hook_instance,
        facts=facts,
        data=data,
        evaluation=evaluation,
        # The store's rows of the charts the cards link to (the charts package knows no store).
        charts=tuple(
            ChartSnapshot(c.token, c.chart_id, c.created_at, c.expires_at, c.payload) for c in rendered.charts
        ),
    )


def compute_answer(
    runtime: Runtime,
    ruleset: RuleSet,
    service: ServiceDefinition,
    request: HookRequest,
    data: PatientData,
    moment: datetime,
    public_url: str | None,
) -> tuple[Facts, Evaluation, Rendered]:
    """Stages 3 to 6, in order, on the calling thread (the compute thread)."""
    # 3. facts
    facts = build_facts(service, request, data, now=moment)
    # 4. derived facts
    derived = derive_facts(ruleset, service, facts)
    # 5. rule evaluation
    evaluation = evaluate_rules(runtime.engine, service, derived, ruleset)
    # 6. cards
    settings = runtime.settings
    charts = ChartLinks(
        definitions=ruleset.charts,
        catalog=ruleset.catalog,
        facts=facts,
        base_url=public_url or settings.base_url,
        ttl=timedelta(hours=settings.chart_ttl_hours),
        weight=derived.get("patient.weight") or missing("patient.weight", "no body weight"),
        named=derived,
    )
    return facts, evaluation, render_response(service, facts, evaluation, charts=charts)


def derive_facts(ruleset: RuleSet, service: ServiceDefinition, facts: Facts) -> dict[str, Fact]:
    """Stage 4: the named facts of the ruleset's catalog, then its calculations over them (each a fact
    the rules read by name). The costliest stage; a service with no rules reads none, so gets none."""
    rules = ruleset.by_service.get(service.id)
    if rules is None or not rules.rules:
        return {}
    named = named_facts(ruleset.catalog, facts, service.medication)
    ruleset.calculations.compute(named, facts, ruleset.catalog.specs)
    return named


def evaluate_rules(
    engine: RuleEngine, service: ServiceDefinition, derived: dict[str, Fact], ruleset: RuleSet
) -> Evaluation:
    """Stage 5: the service's rules over the derived facts. An engine failure is the service's, not the
    caller's: 503, retry."""
    try:
        return engine.evaluate(service, derived, ruleset)
    except EngineError as exc:
        log.error("rules engine failed on %s: %s", service.id, exc)
        raise ProblemError.single(503, "the rules engine could not evaluate this request; retry") from exc


def issued_cards(rendered: Rendered, service_id: str, facts: Facts, issued_at: datetime) -> list[IssuedCard]:
    """The store's record of each card answered: which rule made it, for whom, and the override reasons
    it offered (feedback is checked against them)."""
    return [
        IssuedCard(
            card_uuid=item.card.uuid,
            service_id=service_id,
            rule_id=item.rule_id,
            rule_version=item.rule_version,
            indicator=item.card.indicator,
            patient_id=facts.patient_id,
            hook_instance=facts.hook_instance,
            issued_at=issued_at,
            override_reasons=[[r.system or "", r.code] for r in item.card.overrideReasons or ()],
            also=item.also,
        )
        for item in rendered.cards
    ]
