"""What verifying the client's JWT adds to a call.

    python bench/auth_time.py [--requests N]

Prints figures; it asserts nothing.
  1. In process: Verifier.verify for ES384 and RS384 tokens (signature, claims, jti written to SQLite),
     and the jti write alone.
  2. Over HTTP: `cds-service serve` (1 worker) with and without authentication, the same order-sign
     body sent sequentially on one keep-alive connection; each authenticated request carries a fresh
     token minted before its timer starts.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from timing import free_port, summary, timed

from cds_service.security.keys import KeyStore
from cds_service.security.trust import load_trust
from cds_service.security.verify import Verifier
from cds_service.store.database import Store

ROOT = Path(__file__).resolve().parent.parent
SANDBOX = ROOT / "tests" / "fixtures" / "real-clients" / "cds-hooks-sandbox" / "order-sign-request.json"
ISSUER = "https://ehr.bench.example"
PUBLIC_URL = "https://cds.bench.example"


def keys_and_trust(folder: Path) -> tuple[dict[str, Any], Path]:
    private = {
        "ES384": ec.generate_private_key(ec.SECP384R1()),
        "RS384": rsa.generate_private_key(public_exponent=65537, key_size=3072),
    }
    jwks = []
    for alg, key in private.items():
        algorithm = jwt.algorithms.get_default_algorithms()[alg]
        jwk = json.loads(algorithm.to_jwk(key.public_key()))
        jwks.append({**jwk, "kid": alg, "alg": alg, "use": "sig"})
    (folder / "jwks.json").write_text(json.dumps({"keys": jwks}))
    trust = folder / "trust.yaml"
    trust.write_text(f"- iss: {ISSUER}\n  jwks_file: jwks.json\n  tenant: bench\n")
    return private, trust


def mint(private: dict[str, Any], alg: str, audience: str) -> str:
    now = int(time.time())
    claims = {"iss": ISSUER, "aud": audience, "iat": now, "exp": now + 300, "jti": str(uuid.uuid4())}
    return jwt.encode(claims, private[alg], algorithm=alg, headers={"kid": alg, "typ": "JWT"})


async def in_process(private: dict[str, Any], trust: Path, folder: Path, iterations: int) -> None:
    store = Store(f"sqlite:///{folder / 'bench.db'}")

    async def first_use(issuer: str, jti: str, expires_at: datetime) -> bool:
        return store.first_use(issuer, jti, expires_at)

    async with httpx.AsyncClient() as client:
        keys = KeyStore(client)
        issuers = load_trust(trust)
        keys.load_files(issuers)
        verifier = Verifier(issuers, keys, first_use)
        audience = PUBLIC_URL + "/cds-services/anakinra-order-sign"
        for alg in ("ES384", "RS384"):
            tokens = [mint(private, alg, audience) for _ in range(iterations)]
            samples = []
            for token in tokens:
                started = time.perf_counter()
                await verifier.verify(f"Bearer {token}", audience)
                samples.append((time.perf_counter() - started) * 1e6)
            print(f"verify {alg} (incl. jti write)      {summary(samples)}")
    expires = datetime.now(UTC)
    samples = timed(lambda: store.first_use(ISSUER, str(uuid.uuid4()), expires), iterations)
    print(f"jti write alone (SQLite)           {summary(samples)}")
    store.close()


def over_http(private: dict[str, Any], trust: Path, folder: Path, requests: int) -> None:
    body = json.loads(SANDBOX.read_text())["body"]
    path = "/cds-services/anakinra-order-sign"
    for label, auth in (("no auth (--insecure-no-auth)", False), ("ES384 token per call", True)):
        port = free_port()
        env = {
            **os.environ,
            "CDS_DATABASE_URL": f"sqlite:///{folder / f'http-{auth}.db'}",
            "CDS_RULES_DIR": str(ROOT / "rules"),
            "CDS_LOG_LEVEL": "warning",
        }
        command = [sys.executable, "-m", "cds_service", "serve", "--port", str(port)]
        command += ["--trust", str(trust), "--public-url", PUBLIC_URL] if auth else ["--insecure-no-auth"]
        server = subprocess.Popen(command, env=env, stderr=subprocess.DEVNULL)
        try:
            base = f"http://127.0.0.1:{port}"
            wait_until_up(base)
            samples = []
            with httpx.Client(base_url=base) as client:
                for index in range(requests + 50):
                    headers = (
                        {"Authorization": f"Bearer {mint(private, 'ES384', PUBLIC_URL + path)}"}
                        if auth
                        else {}
                    )
                    started = time.perf_counter()
                    response = client.post(path, json=body, headers=headers)
                    elapsed = (time.perf_counter() - started) * 1e6
                    assert response.status_code == 200, response.text
                    if index >= 50:  # warm-up
                        samples.append(elapsed)
            print(f"HTTP order-sign, {label:28s} {summary(samples)}")
        finally:
            server.terminate()
            server.wait(timeout=10)


def wait_until_up(base: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(base + "/healthz").status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.02)
    raise RuntimeError("the service did not start")


def main(requests: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        private, trust = keys_and_trust(folder)
        asyncio.run(in_process(private, trust, folder, requests))
        over_http(private, trust, folder, requests)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=1000)
    main(parser.parse_args().requests)
