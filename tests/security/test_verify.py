"""Verifier.verify in process: every way a token is refused, and the tokens that are accepted.

`now` is injected, keys come from JWKS files, and an httpx transport that fails the test stands in for
the network: nothing here may fetch anything.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from cds_service.security.errors import AuthError
from cds_service.security.keys import KeyStore
from cds_service.security.trust import load_trust
from cds_service.security.verify import Caller, Policy, Verifier
from tests.conftest import SANDBOX_TRUST, sandbox_capture
from tests.security.keys import (
    EC_KID,
    ISSUER,
    PUBLIC_URL,
    RSA_KID,
    TENANT,
    JwksServer,
    b64url,
    bearer,
    default_jwks,
    ec256_key,
    ec_key,
    jwks,
    mint,
    public_pem,
    rsa_key,
    unsigned,
    write_jwks,
    write_trust,
)

T = 1_800_000_000  # the tokens' iat
NOW = datetime.fromtimestamp(T + 5, UTC)
SERVICE = "/cds-services/anakinra-order-sign"
AUD = PUBLIC_URL + SERVICE


class Seen:
    """An in-memory replay check: remembers every (issuer, jti) it was asked about."""

    def __init__(self) -> None:
        self.used: dict[tuple[str, str], datetime] = {}

    async def __call__(self, issuer: str, jti: str, expires_at: datetime) -> bool:
        if (issuer, jti) in self.used:
            return False
        self.used[(issuer, jti)] = expires_at
        return True


def _no_network(request: httpx.Request) -> httpx.Response:
    raise AssertionError(f"no request may leave the verifier here: {request.method} {request.url}")


@pytest.fixture
async def offline() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=httpx.MockTransport(_no_network)) as client:
        yield client


MakeVerifier = Callable[..., Verifier]


@pytest.fixture
def make_verifier(tmp_path: Path, offline: httpx.AsyncClient) -> MakeVerifier:
    """A Verifier for ISSUER (EC and RSA keys in a jwks_file), or for the trust entries given."""

    def make(
        entries: list[dict[str, Any]] | None = None,
        policy: Policy | None = None,
        client: httpx.AsyncClient | None = None,
        seen: Seen | None = None,
        keys: dict[str, Any] | None = None,
    ) -> Verifier:
        write_jwks(tmp_path / "ehr-jwks.json", keys)
        trust = write_trust(
            tmp_path / "trust.json",
            entries or [{"iss": ISSUER, "jwks_file": "ehr-jwks.json", "tenant": TENANT}],
        )
        return Verifier(load_trust(trust), KeyStore(client or offline), seen or Seen(), policy)

    return make


async def refused(
    verifier: Verifier, authorization: str | None, audience: str = AUD, now: datetime = NOW
) -> AuthError:
    with pytest.raises(AuthError) as caught:
        await verifier.verify(authorization, audience, now)
    return caught.value


def token(**changes: Any) -> str:
    """A token of ISSUER for the order-sign service, issued at T, living 300 s."""
    values: dict[str, Any] = {"aud": AUD, "iat": T, "exp": T + 300, "sub": "Practitioner/123"}
    values.update(changes)
    key = values.pop("key", ec_key())
    return mint(key, **values)


# Accepted


async def test_valid_es384_token_is_accepted(make_verifier: MakeVerifier) -> None:
    caller = await make_verifier().verify(bearer(token(jti="jti-es384")), AUD, NOW)
    assert caller == Caller(
        iss=ISSUER,
        tenant=TENANT,
        jti="jti-es384",
        sub="Practitioner/123",
        kid=EC_KID,
        alg="ES384",
        expires_at=datetime.fromtimestamp(T + 300, UTC) + timedelta(seconds=10),
    )


async def test_valid_rs384_token_is_accepted(make_verifier: MakeVerifier) -> None:
    signed = token(key=rsa_key(), alg="RS384", kid=RSA_KID, jti="jti-rs384", sub="Practitioner/9")
    caller = await make_verifier().verify(bearer(signed), AUD, NOW)
    assert (caller.iss, caller.tenant, caller.jti, caller.sub, caller.kid, caller.alg) == (
        ISSUER,
        TENANT,
        "jti-rs384",
        "Practitioner/9",
        RSA_KID,
        "RS384",
    )


async def test_token_without_sub_is_accepted_with_no_subject(make_verifier: MakeVerifier) -> None:
    caller = await make_verifier().verify(bearer(token(sub=None)), AUD, NOW)
    assert caller.sub is None and caller.iss == ISSUER


async def test_the_bearer_scheme_is_case_insensitive(make_verifier: MakeVerifier) -> None:
    caller = await make_verifier().verify("bearer " + token(jti="lower"), AUD, NOW)
    assert caller.jti == "lower"


# Missing or unreadable


@pytest.mark.parametrize("authorization", [None, ""])
async def test_missing_authorization_header(make_verifier: MakeVerifier, authorization: str | None) -> None:
    error = await refused(make_verifier(), authorization)
    assert error.reason == "missing-token"
    assert "Authorization" in error.message


@pytest.mark.parametrize(
    "authorization",
    [
        "Bearer garbage",
        "Bearer not.a-jwt",  # two segments
        "Bearer a.b.c",  # three segments, none of them JSON
        "Bearer "
        + b64url(b'{"alg":"ES384","typ":"JWT","kid":"ec-2026"}')
        + ".e30",  # header and payload, no sig
        "Bearer",
        "Bearer    ",
        "Basic dXNlcjpwYXNzd29yZA==",
        "Token {token}",  # a valid JWT under another scheme
        "{token}",  # no scheme at all
    ],
)
async def test_malformed_token(make_verifier: MakeVerifier, authorization: str) -> None:
    error = await refused(make_verifier(), authorization.replace("{token}", token()))
    assert error.reason == "malformed-token", error.message


# The header: alg, typ, kid, jku


@pytest.mark.parametrize("alg", ["none", "None", "NONE"])
async def test_alg_none_is_refused(make_verifier: MakeVerifier, alg: str) -> None:
    forged = unsigned(
        {"alg": alg, "typ": "JWT", "kid": EC_KID},
        {"iss": ISSUER, "aud": AUD, "iat": T, "exp": T + 300, "jti": "none-jti"},
    )
    assert forged.endswith(".")  # header.payload. : no signature at all
    verifier = make_verifier()
    error = await refused(verifier, bearer(forged))
    assert error.reason == "algorithm-not-allowed"
    assert verifier.first_use.used == {}  # type: ignore[attr-defined]


async def test_hs256_signed_with_the_issuers_public_key_is_never_verified(
    make_verifier: MakeVerifier,
) -> None:
    """The classic key-confusion attack: the public key (which anyone has) used as an HMAC secret."""
    header = {"alg": "HS256", "typ": "JWT", "kid": EC_KID}
    claims = {"iss": ISSUER, "aud": AUD, "iat": T, "exp": T + 300, "jti": "hs-jti"}
    signing_input = f"{b64url(json.dumps(header).encode())}.{b64url(json.dumps(claims).encode())}"
    for pem in (public_pem(ec_key()), public_pem(rsa_key())):
        signature = hmac.new(pem, signing_input.encode(), hashlib.sha256).digest()
        forged = f"{signing_input}.{b64url(signature)}"
        verifier = make_verifier()
        error = await refused(verifier, bearer(forged))
        assert error.reason == "algorithm-not-allowed"
        assert verifier.first_use.used == {}  # type: ignore[attr-defined]


async def test_algorithm_of_the_key_but_not_of_the_policy_is_refused(make_verifier: MakeVerifier) -> None:
    keys = jwks((ec_key(), EC_KID, "ES384"), (ec256_key(), "p256", "ES256"))
    es256 = token(key=ec256_key(), alg="ES256", kid="p256", jti="es256")
    error = await refused(make_verifier(keys=keys), bearer(es256))
    assert error.reason == "algorithm-not-allowed"
    assert "ES256" in error.message
    # The same token is fine under a policy that allows ES256: only the policy refused it.
    allowing = make_verifier(keys=keys, policy=Policy(algorithms=("ES256", "ES384")))
    assert (await allowing.verify(bearer(es256), AUD, NOW)).alg == "ES256"


async def test_token_alg_that_is_not_the_keys_alg_is_refused(make_verifier: MakeVerifier) -> None:
    """An ES384 header naming the RSA key's kid: both algorithms are allowed, but not together."""
    error = await refused(make_verifier(), bearer(token(kid=RSA_KID)))
    assert error.reason == "algorithm-not-allowed"


@pytest.mark.parametrize("typ", ["at+jwt", "JWS", "JOSE", ""])
async def test_typ_other_than_jwt_is_refused(make_verifier: MakeVerifier, typ: str) -> None:
    signed = token(headers={"typ": typ})
    assert json.loads(_segment(signed, 0)).get("typ", "") == typ  # "" leaves typ out altogether
    error = await refused(make_verifier(), bearer(signed))
    assert error.reason == "wrong-type"


async def test_missing_kid_is_refused(make_verifier: MakeVerifier) -> None:
    error = await refused(make_verifier(), bearer(token(kid=None)))
    assert error.reason == "missing-kid"


async def test_unknown_kid_is_refused(make_verifier: MakeVerifier) -> None:
    error = await refused(make_verifier(), bearer(token(kid="rotated-away")))
    assert error.reason == "unknown-kid"
    assert "rotated-away" in error.message


@pytest.mark.parametrize("jku_path", ["/evil/jwks.json", "/good/jwks.json?v=2", "/good/jwks.json/"])
async def test_jku_that_is_not_allow_listed_is_refused_without_a_fetch(
    make_verifier: MakeVerifier, jwks_server: JwksServer, jku_path: str
) -> None:
    attacker = ec_key("attacker")
    jwks_server.publish("/good/jwks.json", jwks((attacker, "attacker-kid", "ES384")))
    jwks_server.publish(jku_path.split("?")[0], jwks((attacker, "attacker-kid", "ES384")))
    entries = [
        {
            "iss": ISSUER,
            "jwks_file": "ehr-jwks.json",
            "tenant": TENANT,
            "jku": [jwks_server.url("/good/jwks.json")],
        }
    ]
    async with httpx.AsyncClient() as client:
        verifier = make_verifier(entries, client=client)
        signed = token(key=attacker, kid="attacker-kid", headers={"jku": jwks_server.url(jku_path)})
        error = await refused(verifier, bearer(signed))
    assert error.reason == "jku-not-allowed"
    assert jwks_server.requests == []


async def test_jku_on_an_issuer_without_allow_list_is_refused_without_a_fetch(
    make_verifier: MakeVerifier, jwks_server: JwksServer
) -> None:
    url = jwks_server.publish("/jwks.json", default_jwks())
    async with httpx.AsyncClient() as client:
        error = await refused(make_verifier(client=client), bearer(token(headers={"jku": url})))
    assert error.reason == "jku-not-allowed"
    assert jwks_server.requests == []


# The issuer and the signature


@pytest.mark.parametrize("iss", ["https://evil.example.org", ISSUER + "/", "http://ehr.example.org"])
async def test_unknown_issuer_is_refused(make_verifier: MakeVerifier, iss: str) -> None:
    error = await refused(make_verifier(), bearer(token(iss=iss)))
    assert error.reason == "unknown-issuer"


async def test_token_without_iss_is_refused(make_verifier: MakeVerifier) -> None:
    error = await refused(make_verifier(), bearer(token(drop=("iss",))))
    assert error.reason == "unknown-issuer"


async def test_bad_signature_from_another_key_with_the_same_kid(make_verifier: MakeVerifier) -> None:
    forged = token(key=ec_key("attacker"), kid=EC_KID, jti="victim-jti")
    verifier = make_verifier()
    error = await refused(verifier, bearer(forged))
    assert error.reason == "bad-signature"
    # A forged token must not use up the jti it names: the genuine token is still accepted.
    assert (await verifier.verify(bearer(token(jti="victim-jti")), AUD, NOW)).jti == "victim-jti"


async def test_bad_signature_from_another_rsa_key_with_the_same_kid(make_verifier: MakeVerifier) -> None:
    forged = token(key=rsa_key("attacker"), alg="RS384", kid=RSA_KID)
    error = await refused(make_verifier(), bearer(forged))
    assert error.reason == "bad-signature"


async def test_tampered_payload_is_a_bad_signature(make_verifier: MakeVerifier) -> None:
    header, _, signature = token().split(".")
    claims = {"iss": ISSUER, "aud": AUD, "iat": T, "exp": T + 300, "jti": "tampered", "sub": "admin"}
    tampered = f"{header}.{b64url(json.dumps(claims).encode())}.{signature}"
    error = await refused(make_verifier(), bearer(tampered))
    assert error.reason == "bad-signature"


# The audience


@pytest.mark.parametrize(
    "aud",
    [
        PUBLIC_URL + "/cds-services",  # discovery
        PUBLIC_URL + "/cds-services/mas-patient-view",  # another service
        PUBLIC_URL + SERVICE + "/feedback",  # this service's feedback
        PUBLIC_URL + SERVICE + "/",  # trailing slash
        "http://cds.example.org" + SERVICE,  # another scheme
        "https://evil.example" + SERVICE,  # another host
        PUBLIC_URL.upper() + SERVICE,
    ],
)
async def test_wrong_audience_is_refused(make_verifier: MakeVerifier, aud: str) -> None:
    error = await refused(make_verifier(), bearer(token(aud=aud)))
    assert error.reason == "wrong-audience"
    assert AUD in error.message


async def test_audience_list_with_only_other_endpoints_is_refused(make_verifier: MakeVerifier) -> None:
    aud = [PUBLIC_URL + "/cds-services", PUBLIC_URL + SERVICE + "/feedback"]
    error = await refused(make_verifier(), bearer(token(aud=aud)))
    assert error.reason == "wrong-audience"


@pytest.mark.parametrize("changes", [{"drop": ("aud",)}, {"aud": ""}, {"aud": []}])
async def test_missing_audience_is_refused(make_verifier: MakeVerifier, changes: dict[str, Any]) -> None:
    error = await refused(make_verifier(), bearer(token(**changes)))
    assert error.reason == "missing-claim"
    assert "aud" in error.message


# Times


async def test_expired_token_is_refused(make_verifier: MakeVerifier) -> None:
    signed = token(iat=T - 400, exp=T - 100)
    error = await refused(make_verifier(), bearer(signed), now=datetime.fromtimestamp(T, UTC))
    assert error.reason == "expired"


async def test_token_expired_within_the_leeway_is_accepted(make_verifier: MakeVerifier) -> None:
    signed = token(iat=T - 300, exp=T - 5)  # expired 5 s ago; the leeway is 10 s
    caller = await make_verifier().verify(bearer(signed), AUD, datetime.fromtimestamp(T, UTC))
    assert caller.iss == ISSUER


async def test_token_just_beyond_the_leeway_is_expired(make_verifier: MakeVerifier) -> None:
    signed = token(iat=T - 300, exp=T - 11)
    error = await refused(make_verifier(), bearer(signed), now=datetime.fromtimestamp(T, UTC))
    assert error.reason == "expired"


async def test_token_issued_in_the_future_is_refused(make_verifier: MakeVerifier) -> None:
    signed = token(iat=T + 60, exp=T + 360)
    error = await refused(make_verifier(), bearer(signed), now=datetime.fromtimestamp(T, UTC))
    assert error.reason == "issued-in-future"


async def test_token_issued_slightly_in_the_future_within_the_leeway_is_accepted(
    make_verifier: MakeVerifier,
) -> None:
    signed = token(iat=T + 8, exp=T + 308)  # the issuer's clock is 8 s ahead; the leeway is 10 s
    caller = await make_verifier().verify(bearer(signed), AUD, datetime.fromtimestamp(T, UTC))
    assert caller.iss == ISSUER


async def test_lifetime_too_long_is_refused(make_verifier: MakeVerifier) -> None:
    error = await refused(make_verifier(), bearer(token(iat=T, exp=T + 3600)))
    assert error.reason == "lifetime-too-long"


async def test_lifetime_of_exactly_the_maximum_is_accepted(make_verifier: MakeVerifier) -> None:
    caller = await make_verifier().verify(bearer(token(iat=T, exp=T + 600)), AUD, NOW)
    assert caller.iss == ISSUER


@pytest.mark.parametrize("claim", ["jti", "exp", "iat"])
async def test_missing_claim_is_refused(make_verifier: MakeVerifier, claim: str) -> None:
    error = await refused(make_verifier(), bearer(token(drop=(claim,))))
    assert error.reason == "missing-claim"
    assert repr(claim) in error.message


# Replays


async def test_replayed_token_is_refused(make_verifier: MakeVerifier) -> None:
    verifier = make_verifier()
    signed = bearer(token(jti="once"))
    assert (await verifier.verify(signed, AUD, NOW)).jti == "once"
    error = await refused(verifier, signed)
    assert error.reason == "replayed"


async def test_new_token_reusing_a_jti_is_refused(make_verifier: MakeVerifier) -> None:
    verifier = make_verifier()
    await verifier.verify(bearer(token(jti="reused")), AUD, NOW)
    error = await refused(verifier, bearer(token(jti="reused", iat=T + 1, exp=T + 301)))
    assert error.reason == "replayed"


async def test_without_now_the_verifier_reads_its_clock(tmp_path: Path, offline: httpx.AsyncClient) -> None:
    trust = write_trust(tmp_path / "trust.json", [{"iss": ISSUER, "jwks_file": "ehr-jwks.json"}])
    write_jwks(tmp_path / "ehr-jwks.json")
    moments = [NOW]
    verifier = Verifier(load_trust(trust), KeyStore(offline), Seen(), clock=lambda: moments[0])
    assert (await verifier.verify(bearer(token(jti="on-time")), AUD)).jti == "on-time"
    moments[0] = NOW + timedelta(seconds=600)
    with pytest.raises(AuthError) as caught:
        await verifier.verify(bearer(token(jti="late")), AUD)
    assert caught.value.reason == "expired"


# The real CDS Hooks sandbox


SANDBOX_ISSUER = "https://sandbox.cds-hooks.org"
SANDBOX_JKU = "https://sandbox.cds-hooks.org/.well-known/jwks.json"
SANDBOX_AUD = "http://127.0.0.1:8765/cds-services/med-lab-check"


def _segment(jwt_text: str, index: int) -> str:
    part = jwt_text.split(".")[index]
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)).decode()


@pytest.fixture
def sandbox() -> tuple[str, dict[str, Any]]:
    authorization: str = sandbox_capture("order-sign-request.json")["headers"]["authorization"]
    claims: dict[str, Any] = json.loads(_segment(authorization.split(" ", 1)[1], 1))
    return authorization, claims


@pytest.fixture
def sandbox_verifier(offline: httpx.AsyncClient) -> Verifier:
    # The trust file `make serve` ships, as it is: the sandbox's key from the file beside it.
    return Verifier(load_trust(SANDBOX_TRUST), KeyStore(offline), Seen())


def test_shipped_sandbox_trust_reads_the_key_from_the_repository_and_allows_the_jku() -> None:
    (issuer,) = load_trust(SANDBOX_TRUST).values()
    assert issuer.iss == SANDBOX_ISSUER and issuer.jwks_url is None
    assert issuer.jwks_file == SANDBOX_TRUST.parent / "cds-hooks-sandbox-jwks.json"
    assert issuer.jku == (SANDBOX_JKU,)


async def test_real_sandbox_token_verifies(
    sandbox: tuple[str, dict[str, Any]], sandbox_verifier: Verifier
) -> None:
    authorization, claims = sandbox
    assert claims["iss"] == SANDBOX_ISSUER and claims["aud"] == SANDBOX_AUD
    # The sandbox names its key set in a jku header; the allow-listed jku is honoured, and the key is
    # found in the trust file's jwks_file, so nothing is fetched (`offline` fails the test if it were).
    assert json.loads(_segment(authorization.split(" ", 1)[1], 0))["jku"] == SANDBOX_JKU
    now = datetime.fromtimestamp(claims["iat"] + 5, UTC)
    caller = await sandbox_verifier.verify(authorization, SANDBOX_AUD, now)
    assert (caller.iss, caller.tenant, caller.jti, caller.alg) == (
        SANDBOX_ISSUER,
        "cds-hooks-sandbox",
        claims["jti"],
        "ES384",
    )
    assert caller.kid == json.loads(_segment(authorization.split(" ", 1)[1], 0))["kid"]
    # ... once.
    assert (await refused(sandbox_verifier, authorization, SANDBOX_AUD, now)).reason == "replayed"


async def test_real_sandbox_token_is_not_for_our_service(
    sandbox: tuple[str, dict[str, Any]], sandbox_verifier: Verifier
) -> None:
    authorization, claims = sandbox
    now = datetime.fromtimestamp(claims["iat"] + 5, UTC)
    error = await refused(sandbox_verifier, authorization, AUD, now)
    assert error.reason == "wrong-audience"


async def test_real_sandbox_token_expires(
    sandbox: tuple[str, dict[str, Any]], sandbox_verifier: Verifier
) -> None:
    authorization, claims = sandbox
    now = datetime.fromtimestamp(claims["exp"] + 3600, UTC)
    error = await refused(sandbox_verifier, authorization, SANDBOX_AUD, now)
    assert error.reason == "expired"


async def test_real_sandbox_token_with_a_flipped_signature_bit_is_refused(
    sandbox: tuple[str, dict[str, Any]], sandbox_verifier: Verifier
) -> None:
    authorization, claims = sandbox
    head, payload, signature = authorization.split(" ", 1)[1].split(".")
    flipped = signature[:10] + ("A" if signature[10] != "A" else "B") + signature[11:]
    now = datetime.fromtimestamp(claims["iat"] + 5, UTC)
    error = await refused(sandbox_verifier, bearer(f"{head}.{payload}.{flipped}"), SANDBOX_AUD, now)
    assert error.reason == "bad-signature"


# Numbers that are no times, and claims of the wrong shape (issue 16)


@pytest.mark.parametrize(
    "changes",
    [
        {"iat": float("nan")},  # NaN compares false: it once skipped the lifetime check
        {"exp": float("nan")},
        {"exp": float("inf")},
        {"exp": 1e20},  # past the year 9999: no datetime holds it
        {"iat": float("-inf")},
        {"iat": -1.0},
        {"iat": T, "exp": T + 300, "claims": {"nbf": "yesterday"}},
        {"claims": {"nbf": float("nan")}},
        {"claims": {"nbf": True}},
        {"exp": True},
    ],
)
async def test_times_that_are_no_finite_seconds_are_malformed(
    make_verifier: MakeVerifier, changes: dict[str, Any]
) -> None:
    verifier = make_verifier()
    error = await refused(verifier, bearer(token(**changes)))
    assert error.reason == "malformed-token", error.message
    assert verifier.first_use.used == {}  # type: ignore[attr-defined]


async def test_nan_iat_with_a_far_exp_does_not_bypass_the_lifetime(make_verifier: MakeVerifier) -> None:
    error = await refused(make_verifier(), bearer(token(iat=float("nan"), exp=T + 10 * 365 * 86400)))
    assert error.reason == "malformed-token"


async def test_nbf_in_the_future_is_refused_and_a_past_one_accepted(make_verifier: MakeVerifier) -> None:
    error = await refused(make_verifier(), bearer(token(claims={"nbf": T + 120})))
    assert error.reason == "not-yet-valid"
    caller = await make_verifier().verify(bearer(token(claims={"nbf": T - 1})), AUD, NOW)
    assert caller.iss == ISSUER


@pytest.mark.parametrize("aud", [[AUD], [AUD, PUBLIC_URL + "/cds-services"], [PUBLIC_URL + "/x", AUD]])
async def test_audience_list_is_refused_even_when_it_holds_this_endpoint(
    make_verifier: MakeVerifier, aud: list[str]
) -> None:
    verifier = make_verifier()
    error = await refused(verifier, bearer(token(aud=aud)))
    assert error.reason == "wrong-audience"
    assert verifier.first_use.used == {}  # type: ignore[attr-defined]


async def test_an_oversized_authorization_header_is_refused_before_decoding(
    make_verifier: MakeVerifier, monkeypatch: pytest.MonkeyPatch
) -> None:
    import jwt

    def never(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the token was decoded")

    monkeypatch.setattr(jwt, "get_unverified_header", never)
    monkeypatch.setattr(jwt, "decode", never)
    error = await refused(make_verifier(), "Bearer " + "a" * 8200)
    assert error.reason == "malformed-token"
    assert "8207 characters" in error.message


async def test_a_token_of_ordinary_size_is_under_the_limit(make_verifier: MakeVerifier) -> None:
    from cds_service.security.verify import MAX_AUTHORIZATION

    padded = token(claims={"pad": "x" * 5000})
    assert len(bearer(padded)) < MAX_AUTHORIZATION
    assert (await make_verifier().verify(bearer(padded), AUD, NOW)).iss == ISSUER


@pytest.mark.parametrize(
    "header", [{"alg": "ES384\u2603"}, {"kid": "k\u2603\u0000"}, {"typ": "J\u00e9WT\u2603"}]
)
async def test_non_latin1_header_values_are_ordinary_refusals(
    make_verifier: MakeVerifier, header: dict[str, Any]
) -> None:
    from cds_service.security.guard import Unauthorized

    claims = {"iss": ISSUER + "\u2603", "aud": AUD, "iat": T, "exp": T + 300, "jti": "j"}
    forged = unsigned({"alg": "ES384", "typ": "JWT", "kid": EC_KID, **header}, claims, b"sig")
    error = await refused(make_verifier(), bearer(forged))
    problem = Unauthorized(error)
    problem.headers["WWW-Authenticate"].encode("latin-1")  # what Starlette does with a header
    assert problem.headers["WWW-Authenticate"].isascii()


@pytest.mark.parametrize(
    "kid", ["../../../../etc/passwd", "/etc/passwd", "ehr-jwks.json", "..", "ec-2026/../rsa-2026"]
)
async def test_a_kid_is_a_name_in_the_key_set_never_a_path(make_verifier: MakeVerifier, kid: str) -> None:
    # Keys are looked up by kid in the issuer's key set; a kid that looks like a path reads nothing.
    verifier = make_verifier()
    error = await refused(verifier, bearer(token(kid=kid)))
    assert error.reason == "unknown-kid"
    assert verifier.first_use.used == {}  # type: ignore[attr-defined]


# Held since the review (issue 16): kept, with tests


async def test_an_embedded_jwk_is_never_used_to_verify(make_verifier: MakeVerifier) -> None:
    from tests.security.keys import public_jwk

    attacker = ec_key("attacker")
    forged = token(key=attacker, headers={"jwk": public_jwk(attacker, EC_KID, "ES384")})
    error = await refused(make_verifier(), bearer(forged))
    assert error.reason == "bad-signature"


async def test_a_key_of_another_curve_does_not_verify(make_verifier: MakeVerifier) -> None:
    # ES384 in the header, the P-384 key's kid, but signed with a P-256 key.
    from jwt.algorithms import ECAlgorithm

    header = {"alg": "ES384", "typ": "JWT", "kid": EC_KID}
    claims = {"iss": ISSUER, "aud": AUD, "iat": T, "exp": T + 300, "jti": "curve"}
    signing_input = f"{b64url(json.dumps(header).encode())}.{b64url(json.dumps(claims).encode())}"
    signature = ECAlgorithm(ECAlgorithm.SHA384).sign(signing_input.encode(), ec256_key("curve"))
    forged = f"{signing_input}.{b64url(signature)}"
    error = await refused(make_verifier(), bearer(forged))
    assert error.reason in ("bad-signature", "malformed-token", "algorithm-not-allowed")


async def test_an_unknown_critical_header_is_refused(make_verifier: MakeVerifier) -> None:
    signed = token(headers={"crit": ["x-must-understand"], "x-must-understand": True})
    error = await refused(make_verifier(), bearer(signed))
    assert error.reason in ("malformed-token", "bad-signature")
