"""Settings from command-line flags and CDS_* environment variables, in one place.

Flags win over the environment; the environment wins over defaults. `serve` writes the
resolved settings back into the environment so that every uvicorn worker process builds
the same Settings.
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

_TRUE = {"1", "true", "yes", "on"}
# Only public-key algorithms: an HMAC secret would have to be shared with every EHR.
_ASYMMETRIC = {"ES256", "ES384", "ES512", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512"}


@dataclasses.dataclass(frozen=True)
class Settings:
    database_url: str = "sqlite:///./cds-service.db"
    rules_dir: Path = Path("rules")
    host: str = "127.0.0.1"
    port: int = 8080
    workers: int = 1
    # Whole budget for fetching absent prefetch from the EHR's FHIR server, per request.
    fetch_deadline_seconds: float = 1.5
    # Bundle `next` links followed per prefetch key before giving up on the rest.
    fetch_max_pages: int = 10
    # Without a token the FHIR server is not contacted: the EHR chose not to authorise us.
    fetch_without_token: bool = False
    # For issuers without fhir_servers in the trust file (and with auth off): also fetch from loopback
    # and private addresses. Local development only (data/upstream.py).
    fetch_allow_private: bool = False
    # Bytes one FHIR answer, and all the answers to one call, may hold; reading stops there.
    fetch_max_answer_bytes: int = 8 * 1024 * 1024
    fetch_max_call_bytes: int = 32 * 1024 * 1024
    # Connections to FHIR servers, per calling issuer (each issuer has its own pool).
    fetch_max_connections: int = 16
    max_body_bytes: int = 5 * 1024 * 1024
    # A body must arrive within this, from the first read (a slow client holds a worker's connection).
    body_timeout_seconds: float = 10.0
    # The request line and headers together, and how many headers (431 past either); the Authorization
    # header alone is refused past 8 KB, before any decoding (security/verify.py).
    max_header_bytes: int = 32 * 1024
    max_headers: int = 100
    # A request's headers must arrive within this, from the connection's opening or the previous answer.
    header_timeout_seconds: float = 10.0
    # An idle keep-alive connection is closed after this many seconds (uvicorn's timeout_keep_alive).
    keep_alive_seconds: int = 5
    # How often the rules directory is checked for changes (0 turns hot reload off; SIGHUP checks at once).
    reload_interval_seconds: float = 2.0
    # Authentication (CDS Hooks "Trusting CDS Clients") is on unless explicitly turned off.
    trust_file: Path | None = None
    # The URL clients call us at; each JWT's `aud` must be this plus the endpoint's path. Never taken
    # from the Host header, which the caller controls.
    public_url: str | None = None
    insecure_no_auth: bool = False
    jwt_algorithms: tuple[str, ...] = ("ES384", "RS384")
    jwt_leeway_seconds: float = 10.0
    jwt_max_lifetime_seconds: float = 600.0
    jwks_cache_seconds: float = 3600.0
    audit_retention_days: float = 365.0
    # Feedback, and the record of the cards issued that it joins to, are deleted after this.
    feedback_retention_days: float = 365.0
    # /healthz checks that the database takes a write at most this often per process (0: every time).
    health_write_seconds: float = 5.0
    # Calls refused before their caller is known are counted in memory and written this often, one row
    # per minute, source address, reason and endpoint (security/refusals.py).
    refusal_write_seconds: float = 10.0
    cors_origins: tuple[str, ...] = ("*",)
    log_level: str = "info"
    # Pages for people. The playground evaluates pasted requests without authentication and the
    # report shows override reasons, so both are off unless asked for (`make serve` asks).
    playground: bool = False
    report_page: bool = False
    # How long a chart link from a card stays valid; its data (lab values) is deleted after that.
    chart_ttl_hours: float = 12.0

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Read CDS_* variables, then apply explicit overrides (flags) that are not None."""
        env = os.environ if env is None else env
        values: dict[str, Any] = {}
        for field in dataclasses.fields(cls):
            raw = env.get("CDS_" + field.name.upper())
            # An empty list variable means "none" (e.g. no CORS origin); other empty variables are unset.
            if raw is not None and (raw != "" or field.type.startswith("tuple")):
                values[field.name] = _parse(field.name, raw)
        values.update({k: v for k, v in overrides.items() if v is not None})
        settings = cls(**values)
        settings.check()
        return settings

    def check(self) -> None:
        # `not (x > 0)` also refuses NaN, which every ordinary comparison lets through.
        if not (0 < self.fetch_deadline_seconds < math.inf):
            raise ValueError("CDS_FETCH_DEADLINE_SECONDS must be a positive number of seconds")
        if self.fetch_max_pages < 1:
            raise ValueError("CDS_FETCH_MAX_PAGES must be at least 1")
        if self.fetch_max_answer_bytes < 1024 or self.fetch_max_call_bytes < self.fetch_max_answer_bytes:
            raise ValueError(
                "CDS_FETCH_MAX_ANSWER_BYTES must be at least 1024, and CDS_FETCH_MAX_CALL_BYTES at least that"
            )
        if self.fetch_max_connections < 1:
            raise ValueError("CDS_FETCH_MAX_CONNECTIONS must be at least 1")
        if self.workers < 1:
            raise ValueError("CDS_WORKERS (--workers) must be at least 1")
        if not (0 < self.port < 65536):
            raise ValueError("CDS_PORT (--port) must be between 1 and 65535")
        if not (0 <= self.reload_interval_seconds < math.inf):
            raise ValueError("CDS_RELOAD_INTERVAL_SECONDS must be 0 (off) or a positive number of seconds")
        unknown = set(self.jwt_algorithms) - _ASYMMETRIC
        if unknown or not self.jwt_algorithms:
            raise ValueError(
                f"CDS_JWT_ALGORITHMS: {sorted(unknown) or 'empty'}; allowed are {', '.join(sorted(_ASYMMETRIC))}"
            )
        if self.public_url is not None and not self.public_url.startswith(("https://", "http://")):
            raise ValueError("CDS_PUBLIC_URL (--public-url) must be an http(s) URL")
        for name in (
            "jwt_leeway_seconds",
            "jwt_max_lifetime_seconds",
            "jwks_cache_seconds",
            "audit_retention_days",
            "feedback_retention_days",
            "health_write_seconds",
        ):
            if not (0 <= getattr(self, name) < math.inf):
                raise ValueError(f"CDS_{name.upper()} must be a non-negative number")
        if self.max_body_bytes < 1024:
            raise ValueError("CDS_MAX_BODY_BYTES must be at least 1024")
        if self.max_header_bytes < 8 * 1024:
            raise ValueError("CDS_MAX_HEADER_BYTES must be at least 8192 (a token alone may take 8 KB)")
        if self.max_headers < 10:
            raise ValueError("CDS_MAX_HEADERS must be at least 10")
        if self.keep_alive_seconds < 1:
            raise ValueError("CDS_KEEP_ALIVE_SECONDS must be at least 1")
        for name in ("body_timeout_seconds", "header_timeout_seconds", "refusal_write_seconds"):
            if not (0 < getattr(self, name) < math.inf):
                raise ValueError(f"CDS_{name.upper()} must be a positive number of seconds")
        if not (0 < self.chart_ttl_hours < math.inf):
            raise ValueError("CDS_CHART_TTL_HOURS must be a positive number of hours")

    @property
    def base_url(self) -> str:
        """Where clients reach the service, for links on cards and pages: the public URL, else the bind
        address (loopback for a wildcard). Never the Host header, which the caller chooses."""
        if self.public_url:
            return self.public_url.rstrip("/")
        host = "127.0.0.1" if self.host in ("0.0.0.0", "::", "") else self.host
        host = f"[{host}]" if ":" in host else host
        return f"http://{host}:{self.port}"

    def auth_problem(self) -> str | None:
        """Why authentication cannot be set up from these settings, or None."""
        if self.insecure_no_auth:
            return None
        if self.trust_file is None or not self.public_url:
            return (
                "authentication is on: give --trust FILE (CDS_TRUST_FILE) and --public-url URL "
                "(CDS_PUBLIC_URL), or --insecure-no-auth (CDS_INSECURE_NO_AUTH=1) for local development only"
            )
        return None

    def to_env(self) -> dict[str, str]:
        """The CDS_* variables that reproduce these settings in another process."""
        out: dict[str, str] = {}
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if value is None:
                continue
            if isinstance(value, tuple):
                value = ",".join(value)
            elif isinstance(value, bool):
                value = "1" if value else "0"
            out["CDS_" + field.name.upper()] = str(value)
        return out


def local_public_url(env: Mapping[str, str] | None = None) -> str:
    """The URL a service started on this machine is called at: CDS_PUBLIC_URL when set, else
    http://127.0.0.1:CDS_PORT (8080). `make serve` derives its --public-url by the same rule, and the
    `cds-service client` commands call it, so moving the port moves both ends."""
    env = os.environ if env is None else env
    explicit = env.get("CDS_PUBLIC_URL")
    if explicit:
        return explicit.rstrip("/")
    port = env.get("CDS_PORT") or str(Settings.port)
    return f"http://127.0.0.1:{port}"


def _parse(name: str, raw: str) -> Any:
    field_type = {f.name: f.type for f in dataclasses.fields(Settings)}[name]
    try:
        if field_type == "bool":
            return raw.strip().lower() in _TRUE
        if field_type == "int":
            return int(raw)
        if field_type == "float":
            return float(raw)
        if field_type.startswith("Path"):
            return Path(raw)
        if field_type.startswith("tuple"):
            return tuple(part.strip() for part in raw.split(",") if part.strip())
    except ValueError as exc:
        raise ValueError(f"CDS_{name.upper()}={raw!r}: {exc}") from None
    return raw
