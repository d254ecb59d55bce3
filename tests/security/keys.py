"""Test support for tests/security: keys made once per session, JWKS and trust files, signed tokens."""

from __future__ import annotations

import base64
import functools
import json
import time
import uuid
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tests.threaded import ThreadedServer

Key = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey

ISSUER = "https://ehr.example.org"
TENANT = "example-hospital"
PUBLIC_URL = "https://cds.example.org"
EC_KID = "ec-2026"
RSA_KID = "rsa-2026"


def ec_key(name: str = "main") -> ec.EllipticCurvePrivateKey:
    """An EC P-384 key (ES384); another `name` gives another, independent key."""
    return _ec_key(name, "P-384")


def ec256_key(name: str = "main") -> ec.EllipticCurvePrivateKey:
    """An EC P-256 key (ES256)."""
    return _ec_key(name, "P-256")


def rsa_key(name: str = "main") -> rsa.RSAPrivateKey:
    """An RSA 3072 key (RS384), made once per session and name: it takes about half a second."""
    return _rsa_key(name)


# Cached on positional arguments only, so that ec_key() and ec_key("main") are the same key.
@functools.cache
def _ec_key(name: str, curve: str) -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP384R1() if curve == "P-384" else ec.SECP256R1())


@functools.cache
def _rsa_key(name: str) -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=3072)


def public_jwk(private_key: Key, kid: str, alg: str) -> dict[str, Any]:
    public = private_key.public_key()
    if isinstance(public, ec.EllipticCurvePublicKey):
        jwk: dict[str, Any] = ECAlgorithm.to_jwk(public, as_dict=True)
    else:
        jwk = RSAAlgorithm.to_jwk(public, as_dict=True)
    return {**jwk, "kid": kid, "alg": alg, "use": "sig"}


def jwks(*entries: tuple[Key, str, str]) -> dict[str, Any]:
    """A JWKS document of (private key, kid, alg) entries; only the public halves are in it."""
    return {"keys": [public_jwk(key, kid, alg) for key, kid, alg in entries]}


def default_jwks() -> dict[str, Any]:
    return jwks((ec_key(), EC_KID, "ES384"), (rsa_key(), RSA_KID, "RS384"))


def write_jwks(path: Path, document: dict[str, Any] | None = None) -> Path:
    path.write_text(json.dumps(document if document is not None else default_jwks()), encoding="utf-8")
    return path


def write_trust(path: Path, entries: list[dict[str, Any]]) -> Path:
    """A trust file; JSON is YAML, so one writer serves both."""
    path.write_text(json.dumps(entries, indent=2), encoding="utf-8")
    return path


def default_trust(folder: Path) -> Path:
    """A trust file for ISSUER with its EC and RSA keys in a jwks_file beside it."""
    write_jwks(folder / "ehr-jwks.json")
    return write_trust(
        folder / "trust.json", [{"iss": ISSUER, "jwks_file": "ehr-jwks.json", "tenant": TENANT}]
    )


def public_pem(private_key: Key) -> bytes:
    return private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def mint(
    private_key: Key,
    alg: str = "ES384",
    kid: str | None = EC_KID,
    iss: str = ISSUER,
    aud: str | list[str] = PUBLIC_URL + "/cds-services",
    iat: float | None = None,
    exp: float | None = None,
    jti: str | None = None,
    sub: str | None = None,
    headers: dict[str, Any] | None = None,
    claims: dict[str, Any] | None = None,
    drop: tuple[str, ...] = (),
) -> str:
    """A signed JWT: iat defaults to now, exp to iat + 300, jti to a fresh uuid4. `headers` and `claims`
    are merged last; `drop` leaves claims out (e.g. drop=("jti",))."""
    issued = int(time.time()) if iat is None else iat
    payload: dict[str, Any] = {
        "iss": iss,
        "aud": aud,
        "iat": issued,
        "exp": issued + 300 if exp is None else exp,
        "jti": str(uuid.uuid4()) if jti is None else jti,
    }
    if sub is not None:
        payload["sub"] = sub
    payload.update(claims or {})
    for name in drop:
        payload.pop(name, None)
    header: dict[str, Any] = {"typ": "JWT"}
    if kid is not None:
        header["kid"] = kid
    header.update(headers or {})
    return jwt.encode(payload, private_key, algorithm=alg, headers=header)


class FakeClock:
    """A monotonic clock that moves only when told to: cache and back-off intervals pass without sleeping."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unsigned(header: dict[str, Any], claims: dict[str, Any], signature: bytes = b"") -> str:
    """A JWT assembled by hand, e.g. alg none: header.payload. with an empty signature."""
    return ".".join(
        (
            b64url(json.dumps(header).encode()),
            b64url(json.dumps(claims).encode()),
            b64url(signature),
        )
    )


def bearer(token: str) -> str:
    return f"Bearer {token}"


class JwksServer:
    """A local HTTP server for JWKS documents (jwks_url and jku tests), with a log of what was asked."""

    def __init__(self) -> None:
        self.documents: dict[str, tuple[int, bytes]] = {}
        self.requests: list[str] = []

        async def serve(request: Request) -> Response:
            self.requests.append(request.url.path)
            status, body = self.documents.get(request.url.path, (404, b'{"error": "not found"}'))
            return Response(body, status_code=status, media_type="application/json")

        self._server = ThreadedServer(
            Starlette(routes=[Route("/{path:path}", serve)]), "jwks-server", loop="asyncio"
        )

    def start(self) -> None:
        self._server.start()

    def stop(self) -> None:
        self._server.stop()

    @property
    def port(self) -> int:
        assert self._server.port is not None, "the JWKS server is not running"
        return self._server.port

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def publish(self, path: str, document: Any, status: int = 200) -> str:
        """Serve `document` (JSON, or bytes as they are) at `path`; returns its URL."""
        body = document if isinstance(document, bytes) else json.dumps(document).encode()
        self.documents[path] = (status, body)
        return self.url(path)

    def count(self, path: str) -> int:
        return self.requests.count(path)
