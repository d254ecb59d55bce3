"""The chart links of one answer: one snapshot per chart, made the first time a card links to it.

A link is `{base_url}/charts/{token}`: the token is 256 random bits and the only key to the data, so the
URL says nothing about the patient and cannot be guessed. The face stores each snapshot with the answer's
audit row, before the answer leaves; it expires after the configured time.
"""

from __future__ import annotations

import dataclasses
import logging
import re
import secrets
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from cds_service.charts.definition import ChartDefinition
from cds_service.charts.snapshot import chart_payload
from cds_service.facts.catalog import FactCatalog
from cds_service.facts.model import Facts
from cds_service.facts.named import Fact, missing

log = logging.getLogger(__name__)

TOKEN_BYTES = 32
# secrets.token_urlsafe(32): 43 characters of the URL-safe base64 alphabet, no padding.
TOKEN = re.compile(r"[A-Za-z0-9_-]{43}")
CHARTS_PATH = "/charts"


def is_token(text: str) -> bool:
    """Whether `text` could be a chart token at all; anything else is refused without a database query."""
    return TOKEN.fullmatch(text) is not None


@dataclasses.dataclass(frozen=True)
class LinkedChart:
    """What one chart link shows, frozen at answer time; `token` is the link's secret."""

    token: str
    chart_id: str
    created_at: datetime
    expires_at: datetime
    payload: dict[str, Any]


@dataclasses.dataclass
class ChartLinks:
    definitions: Mapping[str, ChartDefinition]
    catalog: FactCatalog
    facts: Facts
    base_url: str
    ttl: timedelta
    weight: Fact = dataclasses.field(default_factory=lambda: missing("patient.weight", "no body weight"))
    # The evaluation's facts: thresholds drawn per request (renal.creatinine_limit...) are among them.
    named: Mapping[str, Fact] = dataclasses.field(default_factory=dict)
    snapshots: dict[str, LinkedChart] = dataclasses.field(default_factory=dict)
    failed: set[str] = dataclasses.field(default_factory=set)

    def url(self, chart_id: str) -> str | None:
        """The link to `chart_id` for this answer; None when its data could not be gathered, so the card
        goes out without the link rather than the answer failing for a chart."""
        if chart_id in self.failed:
            return None
        snapshot = self.snapshots.get(chart_id)
        if snapshot is None:
            try:
                snapshot = self._snapshot(chart_id)
            except Exception:
                log.exception("chart %s could not be made; its links are left out of this answer", chart_id)
                self.failed.add(chart_id)
                return None
            self.snapshots[chart_id] = snapshot
        return f"{self.base_url.rstrip('/')}{CHARTS_PATH}/{snapshot.token}"

    def _snapshot(self, chart_id: str) -> LinkedChart:
        # Validity runs from the wall clock, not from the request's `now`: a case or a replay evaluated
        # "as of" last week still gets a link that works for the whole time to live.
        created = datetime.now(UTC)
        return LinkedChart(
            token=secrets.token_urlsafe(TOKEN_BYTES),
            chart_id=chart_id,
            created_at=created,
            expires_at=created + self.ttl,
            payload=chart_payload(
                self.definitions[chart_id], self.catalog, self.facts, self.weight, self.named
            ),
        )
