"""Issuers' public keys: from a JWKS file, or a JWKS URL fetched with httpx and cached.

An unknown `kid` triggers one refresh (an issuer rotating keys), and a source is fetched at most once
per `refresh_interval` for such refreshes and after a failed fetch, so a flood of tokens with made-up
kids, or an issuer that is down, cannot turn into a flood of fetches. A `jku` header
is fetched only when the trust file allow-lists it for that issuer.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import time
from collections.abc import Callable
from typing import Any

import httpx
import jwt

from cds_service.security.errors import AuthError
from cds_service.security.trust import TrustedIssuer

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class VerificationKey:
    jwk: jwt.PyJWK
    alg: str | None  # the JWK's own `alg`, when it pins one

    def suits(self, alg: str) -> bool:
        """Whether a token signed with `alg` may be checked with this key."""
        if self.alg is not None:
            return self.alg == alg
        family = {"ES": "EC", "RS": "RSA", "PS": "RSA"}.get(alg[:2])
        return family == self.jwk.key_type


@dataclasses.dataclass
class _Cached:
    keys: dict[str, VerificationKey]
    loaded_at: float  # KeyStore.clock
    stamp: float | None = None  # a file's mtime


class KeyStore:
    def __init__(
        self,
        client: httpx.AsyncClient,
        cache_seconds: float = 3600.0,
        timeout_seconds: float = 2.0,
        refresh_interval: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.client = client
        self.cache_seconds = cache_seconds
        self.timeout_seconds = timeout_seconds
        self.refresh_interval = refresh_interval
        # Seconds on any monotonic scale; tests move it by hand instead of sleeping out the intervals.
        self.clock = clock
        self._cache: dict[str, _Cached] = {}
        self._attempts: dict[str, float] = {}
        self._failures: dict[str, float] = {}
        # Fetches finished per source: tells a request that waited for the lock whether another request
        # fetched meanwhile, whatever the clock's resolution (or a test's clock standing still).
        self._fetches: dict[str, int] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    async def key(self, issuer: TrustedIssuer, kid: str, jku: str | None) -> VerificationKey:
        """The key `kid` of `issuer`; raises AuthError naming why there is none."""
        if jku is not None and jku not in issuer.jku:
            raise AuthError("jku-not-allowed", f"jku {jku!r} is not allow-listed for issuer {issuer.iss!r}")
        sources = [self._configured(issuer)]
        if jku is not None:
            sources.append(jku)
        for source in sources:
            keys = await self._keys(source, refresh=False)
            if kid in keys:
                return keys[kid]
        for source in sources:
            keys = await self._keys(source, refresh=True)
            if kid in keys:
                return keys[kid]
        raise AuthError("unknown-kid", f"issuer {issuer.iss!r} has no key with kid {kid!r}")

    def load_files(self, issuers: dict[str, TrustedIssuer]) -> None:
        """Read every jwks_file now, so that a broken key file stops start-up instead of a call."""
        for issuer in issuers.values():
            if issuer.jwks_file is not None:
                self._cache[str(issuer.jwks_file)] = self._read_file(str(issuer.jwks_file))

    @staticmethod
    def _configured(issuer: TrustedIssuer) -> str:
        if issuer.jwks_file is not None:
            return str(issuer.jwks_file)
        assert issuer.jwks_url is not None
        return issuer.jwks_url

    async def _keys(self, source: str, refresh: bool) -> dict[str, VerificationKey]:
        cached = self._cache.get(source)
        now = self.clock()
        fresh = cached is not None and now - cached.loaded_at < self.cache_seconds
        if fresh and not refresh:
            assert cached is not None
            return cached.keys
        # A refresh for an unknown kid waits for the interval since the last fetch; any fetch waits for
        # it after a failure, so an issuer that is down is not hammered by every call.
        last = self._failures.get(source, -1e9)
        if refresh:
            last = max(last, self._attempts.get(source, -1e9))
        if now - last < self.refresh_interval:
            if cached is not None or refresh:
                return cached.keys if cached else {}
            raise AuthError("keys-unavailable", f"the keys at {source} could not be had a moment ago")
        lock = self._locks.setdefault(source, asyncio.Lock())
        fetches = self._fetches.get(source, 0)
        async with lock:
            cached = self._cache.get(source)
            if self._fetches.get(source, 0) != fetches:
                # Another request fetched while we waited: use what it got, as the back-off would.
                if cached is not None or refresh:
                    return cached.keys if cached else {}
                raise AuthError("keys-unavailable", f"the keys at {source} could not be had a moment ago")
            self._attempts[source] = self.clock()
            try:
                loaded = await self._load(source, cached)
            except AuthError:
                self._failures[source] = self.clock()
                if cached is not None:
                    log.warning("keeping the cached keys of %s: refresh failed", source)
                    return cached.keys
                raise
            finally:
                self._fetches[source] = fetches + 1
            self._cache[source] = loaded
            return loaded.keys

    async def _load(self, source: str, cached: _Cached | None) -> _Cached:
        if source.startswith(("https://", "http://")):
            return await self._fetch(source)
        return self._read_file(source, cached)

    def _read_file(self, path: str, cached: _Cached | None = None) -> _Cached:
        from pathlib import Path

        try:
            file = Path(path)
            stamp = file.stat().st_mtime
            if cached is not None and cached.stamp == stamp:
                return _Cached(cached.keys, self.clock(), stamp)
            document = json.loads(file.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise AuthError("keys-unavailable", f"the key file {path} cannot be read: {exc}") from None
        return _Cached(_parse_jwks(document, path), self.clock(), stamp)

    async def _fetch(self, url: str) -> _Cached:
        try:
            response = await self.client.get(url, timeout=self.timeout_seconds, follow_redirects=False)
            response.raise_for_status()
            document = response.json()
        except (httpx.HTTPError, ValueError) as exc:
            log.warning("could not fetch keys from %s: %s", url, exc)
            raise AuthError(
                "keys-unavailable", f"the issuer's keys could not be fetched from {url}"
            ) from None
        return _Cached(_parse_jwks(document, url), self.clock())


def _parse_jwks(document: Any, where: str) -> dict[str, VerificationKey]:
    keys: dict[str, VerificationKey] = {}
    entries = document.get("keys") if isinstance(document, dict) else None
    if not isinstance(entries, list):
        raise AuthError("keys-unavailable", f"{where} is not a JWKS (no 'keys' list)")
    for entry in entries:
        if not isinstance(entry, dict) or not isinstance(entry.get("kid"), str):
            continue  # a key without kid cannot be chosen by a token's header
        if entry.get("use", "sig") != "sig":
            continue
        try:
            alg = entry.get("alg")
            keys[entry["kid"]] = VerificationKey(jwt.PyJWK(entry), alg if isinstance(alg, str) else None)
        except jwt.PyJWTError as exc:
            log.warning("skipping key %s in %s: %s", entry.get("kid"), where, exc)
    return keys
