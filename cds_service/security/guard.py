"""The service's door: every endpoint but /healthz asks the guard who is calling before doing anything."""

from __future__ import annotations

import logging
import re

import httpx

from cds_service.config import Settings
from cds_service.protocol.outcome import Issue, ProblemError
from cds_service.security.errors import AuthError
from cds_service.security.keys import KeyStore
from cds_service.security.trust import TrustedIssuer, load_trust
from cds_service.security.verify import Caller, Policy, Verifier
from cds_service.store.writer import Writer

log = logging.getLogger(__name__)

INSECURE_WARNING = "INSECURE: authentication is OFF (--insecure-no-auth); any caller is served"


class Guard:
    def __init__(self, verifier: Verifier | None, public_url: str | None) -> None:
        self.verifier = verifier
        self.public_url = (public_url or "").rstrip("/")

    @property
    def insecure(self) -> bool:
        return self.verifier is None

    def issuer(self, caller: Caller | None) -> TrustedIssuer | None:
        """The trust-file entry of a verified caller (what it may fetch from); None with auth off."""
        if caller is None or self.verifier is None:
            return None
        return self.verifier.issuers.get(caller.iss)

    @classmethod
    def create(cls, settings: Settings, writer: Writer, client: httpx.AsyncClient) -> Guard:
        """Raises ValueError (settings) or FileProblems (trust or key files) when auth cannot be set up."""
        problem = settings.auth_problem()
        if problem:
            raise ValueError(problem)
        if settings.insecure_no_auth:
            log.warning(INSECURE_WARNING)
            return cls(None, settings.public_url)
        assert settings.trust_file is not None
        issuers = load_trust(settings.trust_file)
        keys = KeyStore(client, cache_seconds=settings.jwks_cache_seconds)
        try:
            keys.load_files(issuers)
        except AuthError as exc:
            raise ValueError(exc.message) from None

        policy = Policy(
            algorithms=settings.jwt_algorithms,
            leeway_seconds=settings.jwt_leeway_seconds,
            max_lifetime_seconds=settings.jwt_max_lifetime_seconds,
        )
        log.info(
            "authentication on: %d trusted issuer(s), audience %s/cds-services...",
            len(issuers),
            settings.public_url,
        )
        return cls(Verifier(issuers, keys, writer.first_use, policy), settings.public_url)

    async def caller(self, authorization: str | None, path: str) -> Caller | None:
        """The verified caller of `path` (e.g. /cds-services/x), None when auth is off; 401 otherwise."""
        if self.verifier is None:
            return None
        audience = self.public_url + path
        try:
            return await self.verifier.verify(authorization, audience)
        except AuthError as exc:
            raise Unauthorized(exc) from None


_NOT_HEADER_SAFE = re.compile(r'[^\x20-\x7e]|["\\]')
_DESCRIPTION_MAX = 200


def keys_client() -> httpx.AsyncClient:
    """The client JWKS URLs are fetched with: its own few connections, apart from the FHIR fetches'
    pools, so that neither can starve the other."""
    return httpx.AsyncClient(
        limits=httpx.Limits(max_connections=4, max_keepalive_connections=4),
        timeout=httpx.Timeout(10.0),
        follow_redirects=False,
    )


class Unauthorized(ProblemError):
    """401 with the reason in the OperationOutcome and in WWW-Authenticate (RFC 6750)."""

    def __init__(self, error: AuthError) -> None:
        super().__init__(401, [Issue(diagnostics=f"{error.message} ({error.reason})", code="login")])
        self.reason = error.reason
        # A header is Latin-1 on the wire and the message quotes the token (its alg, kid, iss): only
        # printable ASCII goes in, the whole message is in the OperationOutcome.
        description = _NOT_HEADER_SAFE.sub("?", error.message)[:_DESCRIPTION_MAX]
        self.headers = {
            "WWW-Authenticate": f'Bearer error="invalid_token", error_description="{description}"'
        }
