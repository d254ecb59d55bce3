"""Verify the client's JWT (CDS Hooks 2.0.1, "Trusting CDS Clients").

Order matters: nothing is trusted from the token before its issuer is known and its signature checks,
except what is needed to find the key (alg, kid, jku, iss); the algorithm comes from our allow-list,
never from the token alone, so `none` and HMAC-with-the-public-key cannot get through.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt

from cds_service.security.errors import AuthError, shown
from cds_service.security.keys import KeyStore
from cds_service.security.trust import TrustedIssuer
from cds_service.store import limits

# Longest Authorization header read. Real tokens are about 1 KB (the sandbox's: 0.8 KB); the check comes
# before any decoding, so a megabyte header costs a length comparison, not seconds of base64 and JSON on
# the event loop while every other request waits.
MAX_AUTHORIZATION = 8192
# Times are seconds since 1970 up to the year 9999: beyond, no datetime holds them (and NaN, inf or 1e20
# would slip past every comparison or raise on conversion).
_LAST_SECOND = 253402300799
# jti -> False if it was seen before (a replay); must be shared by every worker process.
ReplayCheck = Callable[[str, str, datetime], Awaitable[bool]]


@dataclasses.dataclass(frozen=True)
class Caller:
    iss: str
    tenant: str | None
    jti: str
    sub: str | None
    kid: str
    alg: str
    expires_at: datetime


@dataclasses.dataclass(frozen=True)
class Policy:
    algorithms: tuple[str, ...] = ("ES384", "RS384")
    leeway_seconds: float = 10.0
    max_lifetime_seconds: float = 600.0


class Verifier:
    def __init__(
        self,
        issuers: dict[str, TrustedIssuer],
        keys: KeyStore,
        first_use: ReplayCheck,
        policy: Policy | None = None,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.issuers = issuers
        self.keys = keys
        self.first_use = first_use
        self.policy = policy or Policy()
        # What exp, iat and nbf are compared with; the signer must use the same clock.
        self.clock = clock or _utc_now

    async def verify(self, authorization: str | None, audience: str, now: datetime | None = None) -> Caller:
        """The verified caller, or AuthError naming the first thing wrong; as of `now`, else the clock."""
        now = now or self.clock()
        token = _bearer(authorization)
        header = _header(token)
        alg = header.get("alg")
        if alg not in self.policy.algorithms:
            raise AuthError(
                "algorithm-not-allowed",
                f"alg {shown(alg)} is not accepted; use one of {', '.join(self.policy.algorithms)}",
            )
        if str(header.get("typ", "")).upper() != "JWT":
            raise AuthError("wrong-type", f"typ must be JWT, not {shown(header.get('typ'))}")
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise AuthError("missing-kid", "the token header has no kid")
        jku = header.get("jku")
        if jku is not None and not isinstance(jku, str):
            raise AuthError("malformed-token", "jku must be a URL")
        unverified = _unverified_claims(token)
        iss = unverified.get("iss")
        issuer = self.issuers.get(iss) if isinstance(iss, str) else None
        if issuer is None:
            raise AuthError("unknown-issuer", f"issuer {shown(iss)} is not trusted by this service")
        key = await self.keys.key(issuer, kid, jku)
        if not key.suits(alg):
            raise AuthError("algorithm-not-allowed", f"key {shown(kid)} is not a key for {alg}")
        claims = self._checked_signature(token, key.jwk, alg, audience)
        if claims.get("aud") != audience:
            # PyJWT accepts a list holding the audience; a token for this endpoint names only it.
            raise AuthError("wrong-audience", f"aud must be the one string {audience!r}")
        caller = self._checked_times(claims, issuer, kid, alg, now)
        if not await self.first_use(caller.iss, caller.jti, caller.expires_at):
            raise AuthError("replayed", f"token jti {shown(caller.jti)} was already used")
        return caller

    def _checked_signature(self, token: str, key: jwt.PyJWK, alg: str, audience: str) -> dict[str, Any]:
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key=key.key,
                algorithms=[alg],
                audience=audience,
                # Times are checked below against our clock (and a test's), with our own messages.
                options={"verify_exp": False, "verify_iat": False, "verify_nbf": False, "require": ["aud"]},
            )
        except jwt.InvalidAudienceError:
            claims = _unverified_claims(token)
            raise AuthError(
                "wrong-audience", f"aud {shown(claims.get('aud'))} is not this endpoint ({audience})"
            ) from None
        except jwt.InvalidSignatureError:
            raise AuthError("bad-signature", "the token's signature does not verify") from None
        except jwt.MissingRequiredClaimError as exc:
            raise AuthError("missing-claim", f"the token has no {exc.claim!r} claim") from None
        except jwt.InvalidAlgorithmError as exc:
            raise AuthError("algorithm-not-allowed", str(exc)) from None
        except jwt.PyJWTError as exc:
            raise AuthError("malformed-token", f"the token cannot be read: {exc}") from None
        return claims

    def _checked_times(
        self, claims: dict[str, Any], issuer: TrustedIssuer, kid: str, alg: str, now: datetime
    ) -> Caller:
        for name in ("exp", "iat", "jti"):
            if name not in claims:
                raise AuthError("missing-claim", f"the token has no {name!r} claim")
        exp, iat, jti = claims["exp"], claims["iat"], claims["jti"]
        nbf = claims.get("nbf")
        if not all(_seconds(v) for v in (exp, iat)) or (nbf is not None and not _seconds(nbf)):
            raise AuthError(
                "malformed-token", "exp, iat and nbf must be finite numbers of seconds since 1970"
            )
        if not isinstance(jti, str) or not jti:
            raise AuthError("malformed-token", "jti must be a non-empty string")
        # Remembered in the replay table: a jti it cannot hold would fail the check (a 503) on every try.
        unstorable = limits.problem("jti", jti)
        if unstorable:
            raise AuthError("malformed-token", f"jti {unstorable}")
        leeway = self.policy.leeway_seconds
        moment = now.timestamp()
        if exp <= moment - leeway:
            raise AuthError("expired", f"the token expired at {_iso(exp)}")
        if iat > moment + leeway:
            raise AuthError("issued-in-future", f"the token is issued in the future ({_iso(iat)})")
        if nbf is not None and nbf > moment + leeway:
            raise AuthError("not-yet-valid", f"the token is not valid before {_iso(nbf)}")
        if exp - iat > self.policy.max_lifetime_seconds:
            raise AuthError(
                "lifetime-too-long",
                f"the token lives {exp - iat:.0f} s; at most {self.policy.max_lifetime_seconds:.0f} s is accepted",
            )
        sub = claims.get("sub")
        expires_at = datetime.fromtimestamp(exp, UTC) + timedelta(seconds=leeway)
        return Caller(
            issuer.iss, issuer.tenant, jti, sub if isinstance(sub, str) else None, kid, alg, expires_at
        )


def _seconds(value: Any) -> bool:
    return (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and math.isfinite(value)
        and 0 <= value <= _LAST_SECOND
    )


def _utc_now() -> datetime:
    return datetime.now(UTC)


def _bearer(authorization: str | None) -> str:
    if not authorization:
        raise AuthError("missing-token", "no Authorization header; send Authorization: Bearer <JWT>")
    if len(authorization) > MAX_AUTHORIZATION:
        raise AuthError(
            "malformed-token",
            f"the Authorization header is {len(authorization)} characters; at most {MAX_AUTHORIZATION} are read",
        )
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise AuthError("malformed-token", "the Authorization header must be 'Bearer <JWT>'")
    return token.strip()


def _header(token: str) -> dict[str, Any]:
    try:
        header: dict[str, Any] = jwt.get_unverified_header(token)
    except jwt.PyJWTError as exc:
        raise AuthError("malformed-token", f"the token cannot be read: {exc}") from None
    return header


def _unverified_claims(token: str) -> dict[str, Any]:
    try:
        claims = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError as exc:
        raise AuthError("malformed-token", f"the token cannot be read: {exc}") from None
    if not isinstance(claims, dict):
        raise AuthError("malformed-token", "the token's payload is not a JSON object")
    return claims


def _iso(seconds: float) -> str:
    try:
        return datetime.fromtimestamp(seconds, UTC).isoformat()
    except (OverflowError, OSError, ValueError):
        return str(seconds)
