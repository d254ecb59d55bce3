"""KeyStore against a real (local) JWKS URL: caching, rotation, rate-limited refresh, jku, failures."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from cds_service.security.errors import AuthError
from cds_service.security.keys import KeyStore
from cds_service.security.trust import TrustedIssuer, load_trust
from cds_service.security.verify import Verifier
from tests.security.keys import (
    EC_KID,
    ISSUER,
    PUBLIC_URL,
    RSA_KID,
    TENANT,
    FakeClock,
    JwksServer,
    bearer,
    default_jwks,
    ec_key,
    jwks,
    mint,
    rsa_key,
    write_jwks,
    write_trust,
)

AUD = PUBLIC_URL + "/cds-services"
JWKS_PATH = "/.well-known/jwks.json"
REFRESH = 30.0  # KeyStore's default; the fake clock passes it in no time
# Tokens are issued at T and verified at NOW, whatever the day: the key cache has its own (fake) clock.
T = 1_800_000_000
NOW = datetime.fromtimestamp(T + 5, UTC)


class Seen:
    def __init__(self) -> None:
        self.used: set[tuple[str, str]] = set()

    async def __call__(self, issuer: str, jti: str, expires_at: datetime) -> bool:
        fresh = (issuer, jti) not in self.used
        self.used.add((issuer, jti))
        return fresh


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as http:
        yield http


def _issuers(tmp_path: Path, entry: dict[str, Any]) -> dict[str, TrustedIssuer]:
    return load_trust(write_trust(tmp_path / "trust.json", [{"iss": ISSUER, "tenant": TENANT, **entry}]))


def _verifier(issuers: dict[str, TrustedIssuer], keys: KeyStore) -> Verifier:
    return Verifier(issuers, keys, Seen())


async def _verify(verifier: Verifier, token: str) -> str:
    """The caller's kid, or the reason of the refusal."""
    try:
        return (await verifier.verify(bearer(token), AUD, NOW)).kid
    except AuthError as error:
        return error.reason


def _ec(kid: str = EC_KID, name: str = "main", **changes: Any) -> str:
    return mint(ec_key(name), kid=kid, aud=AUD, iat=T, **changes)


async def test_jwks_url_is_fetched_once_and_cached(
    tmp_path: Path, jwks_server: JwksServer, client: httpx.AsyncClient
) -> None:
    url = jwks_server.publish(JWKS_PATH, default_jwks())
    verifier = _verifier(_issuers(tmp_path, {"jwks_url": url}), KeyStore(client, refresh_interval=REFRESH))
    assert jwks_server.requests == []  # nothing is fetched before the first call
    assert await _verify(verifier, _ec()) == EC_KID
    assert await _verify(verifier, _ec()) == EC_KID
    assert await _verify(verifier, mint(rsa_key(), alg="RS384", kid=RSA_KID, aud=AUD, iat=T)) == RSA_KID
    assert jwks_server.count(JWKS_PATH) == 1


async def test_cache_expires_after_cache_seconds(
    tmp_path: Path, jwks_server: JwksServer, client: httpx.AsyncClient
) -> None:
    url = jwks_server.publish(JWKS_PATH, default_jwks())
    clock = FakeClock()
    keys = KeyStore(client, cache_seconds=3600, refresh_interval=60, clock=clock)
    verifier = _verifier(_issuers(tmp_path, {"jwks_url": url}), keys)
    assert await _verify(verifier, _ec()) == EC_KID
    clock.advance(3599)
    assert await _verify(verifier, _ec()) == EC_KID
    assert jwks_server.count(JWKS_PATH) == 1
    clock.advance(1)
    assert await _verify(verifier, _ec()) == EC_KID
    assert jwks_server.count(JWKS_PATH) == 2


async def test_unknown_kid_triggers_one_refresh_and_a_rotated_key_is_accepted(
    tmp_path: Path, jwks_server: JwksServer, client: httpx.AsyncClient
) -> None:
    url = jwks_server.publish(JWKS_PATH, jwks((ec_key(), EC_KID, "ES384")))
    clock = FakeClock()
    keys = KeyStore(client, refresh_interval=REFRESH, clock=clock)
    verifier = _verifier(_issuers(tmp_path, {"jwks_url": url}), keys)
    assert await _verify(verifier, _ec()) == EC_KID
    assert jwks_server.count(JWKS_PATH) == 1
    clock.advance(REFRESH)
    # The issuer rotates: a new key, the old one gone.
    jwks_server.publish(JWKS_PATH, jwks((ec_key("next"), "ec-2027", "ES384")))
    assert await _verify(verifier, _ec("ec-2027", "next")) == "ec-2027"
    assert jwks_server.count(JWKS_PATH) == 2
    # The new key set is now the cached one, with no further fetch.
    assert await _verify(verifier, _ec("ec-2027", "next")) == "ec-2027"
    assert await _verify(verifier, _ec()) == "unknown-kid"
    assert jwks_server.count(JWKS_PATH) == 2


async def test_made_up_kids_within_the_refresh_interval_do_not_refetch(
    tmp_path: Path, jwks_server: JwksServer, client: httpx.AsyncClient
) -> None:
    url = jwks_server.publish(JWKS_PATH, default_jwks())
    clock = FakeClock()
    keys = KeyStore(client, refresh_interval=REFRESH, clock=clock)
    verifier = _verifier(_issuers(tmp_path, {"jwks_url": url}), keys)
    assert await _verify(verifier, _ec()) == EC_KID
    clock.advance(REFRESH)
    results = []
    for i in range(10):
        results.append(await _verify(verifier, _ec(f"made-up-{i}")))
        clock.advance(REFRESH / 10 - 0.01)  # all ten within one interval of the first
    assert results == ["unknown-kid"] * 10
    assert jwks_server.count(JWKS_PATH) == 2  # the first made-up kid refreshed once; the others did not
    # Concurrent made-up kids are no different, even on a clock that does not move while they wait.
    clock.advance(REFRESH)
    results = await asyncio.gather(*(_verify(verifier, _ec(f"flood-{i}")) for i in range(20)))
    assert results == ["unknown-kid"] * 20
    assert jwks_server.count(JWKS_PATH) == 3
    # Known keys are still served from the cache meanwhile.
    assert await _verify(verifier, _ec()) == EC_KID
    assert jwks_server.count(JWKS_PATH) == 3


async def test_server_down_is_keys_unavailable(tmp_path: Path, client: httpx.AsyncClient) -> None:
    server = JwksServer()
    server.start()
    url = server.url(JWKS_PATH)
    server.stop()  # the port is closed now: connection refused
    verifier = _verifier(_issuers(tmp_path, {"jwks_url": url}), KeyStore(client, refresh_interval=REFRESH))
    assert await _verify(verifier, _ec()) == "keys-unavailable"


@pytest.mark.parametrize("status", [404, 500, 503])
async def test_error_status_is_keys_unavailable(
    tmp_path: Path, jwks_server: JwksServer, client: httpx.AsyncClient, status: int
) -> None:
    url = jwks_server.publish(JWKS_PATH, default_jwks(), status=status)
    verifier = _verifier(_issuers(tmp_path, {"jwks_url": url}), KeyStore(client))
    assert await _verify(verifier, _ec()) == "keys-unavailable"


async def test_redirect_is_not_followed(
    tmp_path: Path, jwks_server: JwksServer, client: httpx.AsyncClient
) -> None:
    jwks_server.publish("/elsewhere.json", default_jwks())
    jwks_server.documents[JWKS_PATH] = (302, b"")
    verifier = _verifier(_issuers(tmp_path, {"jwks_url": jwks_server.url(JWKS_PATH)}), KeyStore(client))
    assert await _verify(verifier, _ec()) == "keys-unavailable"
    assert jwks_server.count("/elsewhere.json") == 0


async def test_cached_keys_are_kept_when_a_refresh_fails(tmp_path: Path, client: httpx.AsyncClient) -> None:
    server = JwksServer()
    server.start()
    url = server.publish(JWKS_PATH, default_jwks())
    clock = FakeClock()
    keys = KeyStore(client, refresh_interval=REFRESH, clock=clock)
    verifier = _verifier(_issuers(tmp_path, {"jwks_url": url}), keys)
    try:
        assert await _verify(verifier, _ec()) == EC_KID
    finally:
        server.stop()
    clock.advance(REFRESH)
    # The unknown kid makes the store refresh, which fails: still unknown-kid, not keys-unavailable ...
    assert await _verify(verifier, _ec("never-seen")) == "unknown-kid"
    # ... and the keys it had keep working.
    assert await _verify(verifier, _ec()) == EC_KID
    assert await _verify(verifier, mint(rsa_key(), alg="RS384", kid=RSA_KID, aud=AUD, iat=T)) == RSA_KID


async def test_expired_cache_is_still_used_when_the_server_is_down(
    tmp_path: Path, client: httpx.AsyncClient
) -> None:
    server = JwksServer()
    server.start()
    url = server.publish(JWKS_PATH, default_jwks())
    clock = FakeClock()
    keys = KeyStore(client, cache_seconds=3600, clock=clock)
    verifier = _verifier(_issuers(tmp_path, {"jwks_url": url}), keys)
    try:
        assert await _verify(verifier, _ec()) == EC_KID
    finally:
        server.stop()
    clock.advance(3601)
    assert await _verify(verifier, _ec()) == EC_KID


@pytest.mark.parametrize(
    "document",
    [
        b"<html><body>Sign in</body></html>",
        b'{"issuer": "https://ehr.example.org"}',
        b'{"keys": "none"}',
        b"[1, 2, 3]",
        b"",
    ],
    ids=["html", "no-keys", "keys-not-a-list", "a-list", "empty"],
)
async def test_a_document_that_is_not_a_jwks_is_keys_unavailable(
    tmp_path: Path, jwks_server: JwksServer, client: httpx.AsyncClient, document: bytes
) -> None:
    url = jwks_server.publish(JWKS_PATH, document)
    verifier = _verifier(_issuers(tmp_path, {"jwks_url": url}), KeyStore(client))
    assert await _verify(verifier, _ec()) == "keys-unavailable"
    assert jwks_server.count(JWKS_PATH) == 1


async def test_keys_that_are_not_for_signing_are_ignored(
    tmp_path: Path, jwks_server: JwksServer, client: httpx.AsyncClient
) -> None:
    document = jwks((ec_key(), EC_KID, "ES384"))
    document["keys"][0]["use"] = "enc"
    url = jwks_server.publish(JWKS_PATH, document)
    verifier = _verifier(_issuers(tmp_path, {"jwks_url": url}), KeyStore(client))
    assert await _verify(verifier, _ec()) == "unknown-kid"


async def test_allow_listed_jku_is_fetched_when_the_kid_is_not_in_the_configured_set(
    tmp_path: Path, jwks_server: JwksServer, client: httpx.AsyncClient
) -> None:
    write_jwks(tmp_path / "ehr-jwks.json", jwks((ec_key(), EC_KID, "ES384")))
    jku = jwks_server.publish("/jku.json", jwks((ec_key("jku"), "jku-kid", "ES384")))
    issuers = _issuers(tmp_path, {"jwks_file": "ehr-jwks.json", "jku": [jku]})
    verifier = _verifier(issuers, KeyStore(client, refresh_interval=REFRESH))
    # A kid of the configured file: the jku is not needed, so not fetched.
    assert await _verify(verifier, _ec(headers={"jku": jku})) == EC_KID
    assert jwks_server.requests == []
    # A kid only the jku has: fetched once, then cached.
    assert await _verify(verifier, _ec("jku-kid", "jku", headers={"jku": jku})) == "jku-kid"
    assert await _verify(verifier, _ec("jku-kid", "jku", headers={"jku": jku})) == "jku-kid"
    assert jwks_server.count("/jku.json") == 1


async def test_a_jku_key_is_only_usable_with_that_jku_header(
    tmp_path: Path, jwks_server: JwksServer, client: httpx.AsyncClient
) -> None:
    write_jwks(tmp_path / "ehr-jwks.json", jwks((ec_key(), EC_KID, "ES384")))
    jku = jwks_server.publish("/jku.json", jwks((ec_key("jku"), "jku-kid", "ES384")))
    verifier = _verifier(
        _issuers(tmp_path, {"jwks_file": "ehr-jwks.json", "jku": [jku]}), KeyStore(client, refresh_interval=0)
    )
    assert await _verify(verifier, _ec("jku-kid", "jku", headers={"jku": jku})) == "jku-kid"
    assert await _verify(verifier, _ec("jku-kid", "jku")) == "unknown-kid"


async def test_jwks_file_is_reread_when_it_changes(tmp_path: Path, client: httpx.AsyncClient) -> None:
    path = write_jwks(tmp_path / "ehr-jwks.json", jwks((ec_key(), EC_KID, "ES384")))
    issuers = _issuers(tmp_path, {"jwks_file": "ehr-jwks.json"})
    keys = KeyStore(client, refresh_interval=0)
    keys.load_files(issuers)
    verifier = _verifier(issuers, keys)
    assert await _verify(verifier, _ec("ec-2027", "next")) == "unknown-kid"
    write_jwks(path, jwks((ec_key(), EC_KID, "ES384"), (ec_key("next"), "ec-2027", "ES384")))
    os.utime(path, (path.stat().st_atime, path.stat().st_mtime + 5))  # a visibly newer file
    assert await _verify(verifier, _ec("ec-2027", "next")) == "ec-2027"


async def test_a_broken_jwks_file_stops_load_files(tmp_path: Path, client: httpx.AsyncClient) -> None:
    path = write_jwks(tmp_path / "ehr-jwks.json")
    issuers = _issuers(tmp_path, {"jwks_file": "ehr-jwks.json"})
    path.write_text("{not json", encoding="utf-8")
    with pytest.raises(AuthError) as caught:
        KeyStore(client).load_files(issuers)
    assert caught.value.reason == "keys-unavailable"
    assert str(path) in caught.value.message


async def test_an_issuer_that_is_down_is_not_fetched_on_every_call(
    tmp_path: Path, jwks_server: JwksServer, client: httpx.AsyncClient
) -> None:
    url = jwks_server.publish(JWKS_PATH, default_jwks())
    clock = FakeClock()
    keys = KeyStore(client, cache_seconds=3600, refresh_interval=60, clock=clock)
    verifier = _verifier(_issuers(tmp_path, {"jwks_url": url}), keys)
    assert await _verify(verifier, _ec()) == EC_KID
    jwks_server.publish(JWKS_PATH, {"error": "down"}, status=503)
    clock.advance(3601)
    # The cache has expired and the source fails: the stale keys keep serving, fetched once, not ten times.
    for _ in range(10):
        assert await _verify(verifier, _ec()) == EC_KID
        clock.advance(5)
    assert jwks_server.count(JWKS_PATH) == 2
    # Once the back-off interval has passed, the source is tried again.
    clock.advance(60)
    assert await _verify(verifier, _ec()) == EC_KID
    assert jwks_server.count(JWKS_PATH) == 3
