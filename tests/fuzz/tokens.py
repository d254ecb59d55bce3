"""Strategies for the Authorization header: JWTs signed with the trusted test key whose header and claims
are mutated (so that the mutation reaches past the signature check), tokens broken in other ways, and
header values of odd sizes, schemes and bytes.

Times are relative to the wall clock when the example is drawn, as the verifier reads the wall clock:
a valid token is issued now and lives five minutes.
"""

from __future__ import annotations

import json
import math
import time
import uuid
from typing import Any

import hypothesis.strategies as st
from jwt.algorithms import ECAlgorithm

from tests.fuzz.strategies import Draw
from tests.security.keys import EC_KID, ISSUER, PUBLIC_URL, b64url, ec_key

# Values for the JOSE header; non-Latin-1 and control characters included (an `alg` of "ES384é").
HEADER_VALUES: dict[str, list[Any]] = {
    "alg": [
        "ES384",
        "RS384",
        "ES256",
        "HS256",
        "none",
        "None",
        "ES384\u00e9",
        "\u2603",
        "",
        None,
        384,
        ["ES384"],
    ],
    "typ": ["JWT", "jwt", "JOSE", "", None, 1, "JWT\u0000"],
    "kid": [
        EC_KID,
        "unknown",
        "../../etc/passwd",
        "\u00e9\u2603",
        "k" * 1000,
        "a\u0000b",
        "\ud800",
        "",
        None,
        7,
        {},
    ],
    "jku": ["http://127.0.0.1:9/jwks.json", "https://evil.example/jwks", "", 5, None],
    "crit": [["exp"], ["b64"], [], "exp", None],
    "jwk": [{"kty": "EC", "crv": "P-384", "x": "AA", "y": "AA"}, "key", None],
    "x5u": ["https://evil.example/cert", None],
    "b64": [False, True],
}
# Values for the claims. Numbers JSON cannot write (NaN, Infinity) are written as Python's json does.
CLAIM_VALUES: dict[str, list[Any]] = {
    "iss": [
        ISSUER,
        ISSUER + "/",
        "https://other.example",
        "\u00e9\u2603",
        "i" * 600,
        "a\u0000",
        "\udc00",
        "",
        None,
        1,
    ],
    "aud": ["<audience>", ["<audience>"], ["<audience>", "x"], [], PUBLIC_URL, "", None, 3],
    "exp": ["<exp>", math.nan, math.inf, -math.inf, 1e20, 10**30, -1, 0, "<exp-as-text>", True, None, 2**63],
    "iat": ["<now>", math.nan, math.inf, 1e20, -1e20, "<now-as-text>", False, None],
    "nbf": ["<now>", math.nan, 1e20, "tomorrow", None, [1]],
    "jti": ["<uuid>", "j" * 257, "j" * 256, "a\u0000b", "\ud800", "", 5, None, ["x"], "\u2603" * 100],
    "sub": ["Practitioner/1", "s" * 300, "a\u0000b", "\udfff", "\u2603" * 300, 1, None, {"a": 1}],
}
SCHEMES = ["Bearer", "bearer", "BEARER", "Basic", "Bearer:", "", "Token", "Bearer  "]


def _resolve(value: Any, audience: str, now: int) -> Any:
    placeholders = {
        "<audience>": audience,
        "<exp>": now + 300,
        "<exp-as-text>": str(now + 300),
        "<now>": now,
        "<now-as-text>": str(now),
        "<uuid>": str(uuid.uuid4()),
    }
    if isinstance(value, str) and value in placeholders:
        return placeholders[value]
    if isinstance(value, list):
        return [_resolve(v, audience, now) for v in value]
    return value


def _segment(document: dict[str, Any], raw: bytes | None) -> str:
    # json.dumps writes NaN and Infinity, and escapes lone surrogates, as a careless issuer might.
    return b64url(raw if raw is not None else json.dumps(document).encode())


def sign(header: str, payload: str) -> str:
    signature = ECAlgorithm(ECAlgorithm.SHA384).sign(f"{header}.{payload}".encode(), ec_key())
    return b64url(signature)


@st.composite
def tokens(draw: Draw, audience: str) -> str:
    """A JWT for `audience`, signed with the trusted EC key, with zero to four fields mutated or dropped."""
    now = int(time.time())
    header: dict[str, Any] = {"alg": "ES384", "typ": "JWT", "kid": EC_KID}
    claims: dict[str, Any] = {
        "iss": ISSUER,
        "aud": audience,
        "iat": now,
        "exp": now + 300,
        "jti": str(uuid.uuid4()),
    }
    fields = [("header", name) for name in HEADER_VALUES] + [("claims", name) for name in CLAIM_VALUES]
    for where, name in draw(st.lists(st.sampled_from(fields), max_size=4, unique=True)):
        target = header if where == "header" else claims
        choices = HEADER_VALUES[name] if where == "header" else CLAIM_VALUES[name]
        value = draw(st.sampled_from([*choices, "<drop>"]))
        if value == "<drop>":
            target.pop(name, None)
        else:
            target[name] = _resolve(value, audience, now)
    raw_header = draw(
        st.sampled_from([None] * 8 + [b'{"alg":"ES384","kid":"\xff\xfe"}', b"[]", b"null", b"{", b'"x"'])
    )
    head, body = _segment(header, raw_header), _segment(claims, None)
    signature = draw(st.sampled_from(["valid"] * 6 + ["empty", "garbled", "swapped"]))
    if signature == "valid":
        sig = sign(head, body)
    elif signature == "empty":
        sig = ""
    elif signature == "garbled":
        sig = sign(head, body)[::-1]
    else:
        sig = sign(body, head)
    return f"{head}.{body}.{sig}"


@st.composite
def authorizations(draw: Draw, audience: str) -> list[bytes]:
    """Authorization header values (none, one, or two of them) as bytes, as they would come off the wire."""
    token = draw(tokens(audience))
    how = draw(
        st.sampled_from(
            ["plain"] * 6 + ["scheme", "truncate", "extra", "bytes", "long", "two", "none", "dots"]
        )
    )
    if how == "none":
        return []
    scheme = draw(st.sampled_from(SCHEMES)) if how == "scheme" else "Bearer"
    value = f"{scheme} {token}".encode()
    if how == "truncate":
        value = value[: draw(st.integers(0, len(value)))]
    elif how == "extra":
        value += draw(st.sampled_from([b" ", b".", b".x", b" x", b"\t", b"==", b"\x00"]))
    elif how == "bytes":
        at = draw(st.integers(0, len(value)))
        value = (
            value[:at]
            + draw(st.sampled_from([b"\xff", b"\xc3\xa9", b"\xe2\x98\x83", b"\x80", b"\x7f"]))
            + value[at:]
        )
    elif how == "long":
        value += b"A" * draw(st.sampled_from([1_000, 8_000, 16_000]))
    elif how == "dots":
        value = b"Bearer " + b".".join([token.encode()] * draw(st.integers(2, 4)))
    if how == "two":
        return [value, f"Bearer {draw(tokens(audience))}".encode()]
    return [value]
