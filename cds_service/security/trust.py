"""The trust file: which issuers (EHRs) may call, and where their public keys are.

    - iss: https://sandbox.cds-hooks.org
      jwks_url: https://sandbox.cds-hooks.org/.well-known/jwks.json   # or jwks_file: keys.json
      jku: [https://sandbox.cds-hooks.org/.well-known/jwks.json]       # jku headers honoured, optional
      tenant: sandbox                                                  # recorded in the audit trail
      fhir_servers: [https://ehr.example.org/fhir]                     # optional: fetched from only there

YAML or JSON (JSON is YAML). A relative `jwks_file` is relative to the trust file.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Annotated
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    TypeAdapter,
    ValidationError,
    model_validator,
)

from cds_service.store.limits import varchar
from cds_service.store.schema import audit_log, jwt_seen
from cds_service.yamlfile import FileProblems, Problem, load_yaml, validation_problems

Text = Annotated[str, StringConstraints(min_length=1)]
# The audit trail and the replay table record both: no longer than their columns (store/limits.py).
Issuer = Annotated[
    str,
    StringConstraints(min_length=1, max_length=min(varchar(jwt_seen.c.issuer), varchar(audit_log.c.issuer))),
]
Tenant = Annotated[str, StringConstraints(min_length=1, max_length=varchar(audit_log.c.tenant))]


class _Entry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    iss: Issuer
    jwks_file: Text | None = None
    jwks_url: Text | None = None
    jku: list[Text] = Field(default_factory=list)
    tenant: Tenant | None = None
    # Base URLs this issuer's calls may have data fetched from (data/upstream.py); without the key, any
    # https server on a public address.
    fhir_servers: list[Text] | None = None

    @model_validator(mode="after")
    def _one_key_source(self) -> _Entry:
        if (self.jwks_file is None) == (self.jwks_url is None):
            raise ValueError("give exactly one of jwks_file or jwks_url")
        for url in ([self.jwks_url] if self.jwks_url else []) + self.jku:
            if not _https_or_local(url):
                raise ValueError(f"{url!r}: key URLs must be https (http only for localhost)")
        return self

    @model_validator(mode="after")
    def _fhir_server_bases(self) -> _Entry:
        for url in self.fhir_servers or ():
            parts = urlsplit(url)
            if not _https_or_local(url):
                raise ValueError(f"fhir_servers: {url!r} must be https (http only for localhost)")
            if parts.query or parts.fragment or parts.username or parts.password:
                raise ValueError(
                    f"fhir_servers: {url!r} must be a base URL: no credentials, query or fragment"
                )
            if any(segment in (".", "..") for segment in parts.path.split("/")):
                raise ValueError(f"fhir_servers: {url!r} has '.' or '..' segments")
        return self


@dataclasses.dataclass(frozen=True)
class TrustedIssuer:
    iss: str
    jwks_file: Path | None
    jwks_url: str | None
    jku: tuple[str, ...]
    tenant: str | None
    fhir_servers: tuple[str, ...] | None = None


def load_trust(path: Path) -> dict[str, TrustedIssuer]:
    """Trusted issuers by `iss`; raises FileProblems (file:line) for anything wrong."""
    doc = load_yaml(path)
    try:
        entries = TypeAdapter(list[_Entry]).validate_python(doc.data)
    except ValidationError as exc:
        raise FileProblems(validation_problems(doc, exc)) from None
    problems: list[Problem] = []
    issuers: dict[str, TrustedIssuer] = {}
    for index, entry in enumerate(entries):
        if entry.iss in issuers:
            problems.append(doc.problem((index, "iss"), f"issuer {entry.iss!r} is listed twice"))
            continue
        jwks_file = None
        if entry.jwks_file is not None:
            jwks_file = (path.parent / entry.jwks_file).resolve()
            if not jwks_file.is_file():
                problems.append(doc.problem((index, "jwks_file"), f"no such file: {jwks_file}"))
        issuers[entry.iss] = TrustedIssuer(
            entry.iss,
            jwks_file,
            entry.jwks_url,
            tuple(entry.jku),
            entry.tenant,
            fhir_servers=tuple(url.rstrip("/") for url in entry.fhir_servers)
            if entry.fhir_servers is not None
            else None,
        )
    if not issuers:
        problems.append(Problem(path, 1, "no trusted issuers: every call would be refused"))
    if problems:
        raise FileProblems(problems)
    return issuers


def _https_or_local(url: str) -> bool:
    parts = urlsplit(url)
    if parts.scheme == "https" and parts.hostname:
        return True
    return parts.scheme == "http" and parts.hostname in ("localhost", "127.0.0.1", "::1")
