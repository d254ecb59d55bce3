"""A small CDS client for trying the service the way an EHR calls it: its own signing key, signed JWTs.

`cds-service client keygen` makes an ES384 key pair with the JWKS and trust file the service needs to
trust it; `discover`, `call` and `feedback` sign a fresh token per request (CDS Hooks 2.0 "Trusting CDS
Clients": iss, sub, aud = the endpoint's URL, iat, exp, jti) and print the answer. It is a development and
integration aid, not part of the service's request path.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from cds_service.protocol.capture import captured_body

ALGORITHM = "ES384"
# Short-lived, like the sandbox's tokens: well inside the service's default maximum lifetime (600 s).
TOKEN_LIFETIME_SECONDS = 300
PRIVATE_KEY = "private-key.pem"
JWKS = "jwks.json"
TRUST = "trust.yaml"


class ClientError(Exception):
    """Something the user must fix: a missing key file, an unreadable request, an unreachable service."""


@dataclasses.dataclass(frozen=True)
class Signer:
    issuer: str
    key: ec.EllipticCurvePrivateKey
    kid: str
    subject: str = "cds-service-client"

    @classmethod
    def load(cls, key_dir: Path, issuer: str | None = None) -> Signer:
        """The key made by `keygen` in `key_dir`; the issuer defaults to the one its trust file names."""
        try:
            pem = (key_dir / PRIVATE_KEY).read_bytes()
            jwks = json.loads((key_dir / JWKS).read_text())
        except (OSError, ValueError) as exc:
            raise ClientError(f"{key_dir}: no usable key ({exc}); make one with `cds-service client keygen`")
        key = serialization.load_pem_private_key(pem, password=None)
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise ClientError(f"{key_dir / PRIVATE_KEY}: not an EC private key")
        kid = jwks["keys"][0]["kid"]
        return cls(issuer=issuer or _trusted_issuer(key_dir / TRUST), key=key, kid=kid)

    def token(self, audience: str) -> str:
        now = int(time.time())
        claims = {
            "iss": self.issuer,
            "sub": self.subject,
            "aud": audience,
            "iat": now,
            "exp": now + TOKEN_LIFETIME_SECONDS,
            "jti": str(uuid.uuid4()),
        }
        return jwt.encode(claims, self.key, algorithm=ALGORITHM, headers={"typ": "JWT", "kid": self.kid})


def keygen(key_dir: Path, issuer: str, tenant: str | None = None) -> list[Path]:
    """Write a new ES384 key pair: the private key (mode 0600), its JWKS and a trust file naming it."""
    key_dir.mkdir(parents=True, exist_ok=True)
    private = key_dir / PRIVATE_KEY
    if private.exists():
        raise ClientError(f"{private} exists; keys are never overwritten (remove it to make a new one)")
    key = ec.generate_private_key(ec.SECP384R1())
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    descriptor = os.open(private, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(pem)
    public = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(key.public_key()))
    kid = f"client-{uuid.uuid4().hex[:12]}"
    public.update({"kid": kid, "alg": ALGORITHM, "use": "sig"})
    (key_dir / JWKS).write_text(json.dumps({"keys": [public]}, indent=2) + "\n")
    trust = [
        "# Trust file for cds-service serve --trust: the issuer below and its public key (jwks.json).",
        f"- iss: {json.dumps(issuer)}",
        f"  jwks_file: {JWKS}",
        f"  tenant: {json.dumps(tenant or 'local-development')}",
        "",
    ]
    (key_dir / TRUST).write_text("\n".join(trust))
    return [private, key_dir / JWKS, key_dir / TRUST]


@dataclasses.dataclass(frozen=True)
class Reply:
    status: int
    body: Any


def discover(base_url: str, signer: Signer, timeout: float = 10.0) -> Reply:
    return _send("GET", base_url, "/cds-services", signer, None, timeout)


def call(
    base_url: str, service_id: str, request: dict[str, Any], signer: Signer, timeout: float = 10.0
) -> Reply:
    return _send("POST", base_url, f"/cds-services/{service_id}", signer, request, timeout)


def feedback(
    base_url: str, service_id: str, body: dict[str, Any], signer: Signer, timeout: float = 10.0
) -> Reply:
    return _send("POST", base_url, f"/cds-services/{service_id}/feedback", signer, body, timeout)


def read_request(path: Path) -> dict[str, Any]:
    """A hook request body, or a captured exchange with the body under "body" (as in
    tests/fixtures/real-clients/)."""
    try:
        document = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ClientError(f"{path}: not a readable JSON request ({exc})") from None
    document = captured_body(document)
    if not isinstance(document, dict):
        raise ClientError(f"{path}: a hook request is a JSON object")
    return document


def _send(
    method: str, base_url: str, path: str, signer: Signer, body: dict[str, Any] | None, timeout: float
) -> Reply:
    url = base_url.rstrip("/") + path
    # The audience is the URL called, exactly what the service compares with its public URL.
    headers = {"Authorization": f"Bearer {signer.token(url)}"}
    try:
        response = httpx.request(method, url, json=body, headers=headers, timeout=timeout)
    except httpx.HTTPError as exc:
        raise ClientError(f"{method} {url}: {type(exc).__name__}: {exc}") from None
    try:
        parsed: Any = response.json() if response.content else None
    except ValueError:
        parsed = response.text
    return Reply(response.status_code, parsed)


def _trusted_issuer(trust_file: Path) -> str:
    try:
        for line in trust_file.read_text().splitlines():
            if line.startswith("- iss:"):
                issuer: str = json.loads(line.split(":", 1)[1].strip())
                return issuer
    except (OSError, ValueError):
        pass
    raise ClientError(f"{trust_file}: no issuer found; pass --issuer")
