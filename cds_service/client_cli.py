"""`cds-service client ...`: the command line of cds_service.client (keygen, discover, call, feedback)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from cds_service.client import ClientError, Reply, Signer, call, discover, feedback, keygen, read_request
from cds_service.config import local_public_url


def add_client_commands(sub: Any) -> None:
    client = sub.add_parser(
        "client", help="act as a signing CDS client (EHR) against a running service"
    ).add_subparsers(dest="client_command", required=True)

    make = client.add_parser("keygen", help="make an ES384 key pair, its JWKS and a trust file in DIR")
    make.add_argument("dir", type=Path)
    make.add_argument(
        "--issuer", required=True, help="the iss this client signs as, e.g. https://ehr.example.org"
    )
    make.add_argument("--tenant", help="recorded in the service's audit trail (default local-development)")
    make.set_defaults(run=_keygen)

    signing = argparse.ArgumentParser(add_help=False)
    signing.add_argument("--key", type=Path, required=True, help="the directory `client keygen` wrote")
    signing.add_argument("--issuer", help="default: the issuer in the key directory's trust.yaml")
    signing.add_argument(
        "--url",
        help="the service's public URL (default: CDS_PUBLIC_URL, else http://127.0.0.1:CDS_PORT, port 8080 "
        "when unset: where `make serve` listens with the same variables)",
    )

    disc = client.add_parser("discover", parents=[signing], help="GET /cds-services, signed")
    disc.set_defaults(run=_discover)
    hook = client.add_parser("call", parents=[signing], help="POST a hook request to a service, signed")
    hook.add_argument("service", help="service id, e.g. anakinra-order-sign")
    hook.add_argument("request", type=Path, help="a hook request body, or a captured exchange with 'body'")
    hook.set_defaults(run=_call)
    back = client.add_parser("feedback", parents=[signing], help="POST feedback on cards, signed")
    back.add_argument("service")
    back.add_argument("body", type=Path, help='a feedback body: {"feedback": [...]}')
    back.set_defaults(run=_feedback)


def _keygen(args: argparse.Namespace, _settings: object) -> int:
    try:
        written = keygen(args.dir, args.issuer, args.tenant)
    except ClientError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    for path in written:
        print(path)
    print(
        f"serve with: cds-service serve --trust {args.dir / 'trust.yaml'} --public-url URL", file=sys.stderr
    )
    return 0


def _discover(args: argparse.Namespace, _settings: object) -> int:
    return _run(lambda signer, url: discover(url, signer), args)


def _call(args: argparse.Namespace, _settings: object) -> int:
    return _run(lambda signer, url: call(url, args.service, read_request(args.request), signer), args)


def _feedback(args: argparse.Namespace, _settings: object) -> int:
    return _run(lambda signer, url: feedback(url, args.service, read_request(args.body), signer), args)


def _run(send: Any, args: argparse.Namespace) -> int:
    try:
        reply: Reply = send(Signer.load(args.key, args.issuer), args.url or local_public_url())
    except ClientError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if reply.body is not None:
        print(json.dumps(reply.body, indent=2, ensure_ascii=False))
    print(f"HTTP {reply.status}", file=sys.stderr)
    return 0 if reply.status == 200 else 1
