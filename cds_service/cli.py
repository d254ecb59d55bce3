"""cds-service: serve | evaluate | audit | report | client | rules lint | test | explain | schema | doc |
configmap | regen."""

from __future__ import annotations

import argparse
import asyncio
import errno
import os
import re
import socket
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import orjson

from cds_service.client_cli import add_client_commands
from cds_service.config import Settings
from cds_service.protocol.capture import captured_body
from cds_service.protocol.discovery import ServiceFileError
from cds_service.protocol.outcome import ProblemError
from cds_service.yamlfile import FileProblems

if TYPE_CHECKING:
    from cds_service.store.report import Counts, FeedbackReport, Reason


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        settings = Settings.from_env(
            database_url=getattr(args, "database_url", None),
            rules_dir=Path(args.rules_dir) if getattr(args, "rules_dir", None) else None,
            host=getattr(args, "host", None),
            port=getattr(args, "port", None),
            workers=getattr(args, "workers", None),
            log_level=getattr(args, "log_level", None),
            trust_file=Path(args.trust) if getattr(args, "trust", None) else None,
            public_url=getattr(args, "public_url", None),
            insecure_no_auth=True if getattr(args, "insecure_no_auth", False) else None,
            playground=True if getattr(args, "playground", False) else None,
            report_page=True if getattr(args, "report_page", False) else None,
        )
    except ValueError as exc:
        parser.error(str(exc))
    try:
        result: int = args.run(args, settings)
        return result
    except ServiceFileError as exc:
        print("error: the service definitions could not be loaded:", file=sys.stderr)
        for problem in exc.problems:
            print(f"  {problem}", file=sys.stderr)
        return 2
    except FileProblems as exc:
        print("error: the rules could not be loaded:", file=sys.stderr)
        for file_problem in exc.problems:
            print(f"  {file_problem}", file=sys.stderr)
        return 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="cds-service", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--rules-dir", help="rule and service files (env CDS_RULES_DIR, default rules/)")
    common.add_argument("--database-url", help="SQLAlchemy URL (env CDS_DATABASE_URL, default SQLite file)")
    common.add_argument("--log-level", choices=["debug", "info", "warning", "error"])

    # What evaluates (evaluate, rules explain, rules test) takes its "now" from here, never implicitly
    # from the clock when it is given: synthetic data was written on another day.
    as_of = argparse.ArgumentParser(add_help=False)
    as_of.add_argument(
        "--now",
        type=timestamp,
        metavar="TIMESTAMP",
        help="evaluate as of this time, ISO 8601 with its offset, e.g. 2026-11-23T07:00:00Z "
        "(default: the current time)",
    )

    serve = sub.add_parser("serve", parents=[common], help="serve the CDS Hooks API")
    serve.add_argument("--host", help="bind address (env CDS_HOST, default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port (env CDS_PORT, default 8080)")
    serve.add_argument("--workers", type=int, help="worker processes (env CDS_WORKERS, default 1)")
    serve.add_argument("--trust", help="trusted issuers, YAML or JSON (env CDS_TRUST_FILE); see docs/trust/")
    serve.add_argument(
        "--public-url", help="the URL clients call, e.g. https://cds.example.org (env CDS_PUBLIC_URL)"
    )
    serve.add_argument(
        "--insecure-no-auth",
        action="store_true",
        help="serve without verifying callers; local development only (env CDS_INSECURE_NO_AUTH=1)",
    )
    serve.add_argument(
        "--playground",
        action="store_true",
        help="serve the rule playground at /playground, unauthenticated (env CDS_PLAYGROUND=1)",
    )
    serve.add_argument(
        "--report-page",
        action="store_true",
        help="serve the feedback report at /report, unauthenticated (env CDS_REPORT_PAGE=1)",
    )
    serve.set_defaults(run=_serve)

    audit = sub.add_parser("audit", parents=[common], help="print the audit trail of calls")
    audit.add_argument("--patient", help="only calls about this patient id")
    audit.add_argument("--hook-instance", help="only this hookInstance")
    audit.add_argument("--since", help="only calls at or after this time (ISO 8601, e.g. 2026-11-23T08:00Z)")
    audit.add_argument("--limit", type=int, help="at most this many rows")
    audit.add_argument("--json", action="store_true", help="one JSON object per line")
    audit.add_argument(
        "--refusals",
        action="store_true",
        help="the calls refused before their caller was known (401), counted per minute, source and reason",
    )
    audit.set_defaults(run=_audit)

    report = sub.add_parser(
        "report",
        parents=[common],
        help="cards issued, accepted and overridden per rule version, and the top override reasons",
        description=_REPORT_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    report.add_argument(
        "--since", help="cards issued at or after this time (ISO 8601; default: --until - 30 days)"
    )
    report.add_argument("--until", help="cards issued before this time (ISO 8601; default: now)")
    report.add_argument("--rule", help="only this rule id")
    report.add_argument("--by-service", action="store_true", help="a row per service as well")
    report.add_argument("--top", type=int, default=5, help="override reasons listed per rule (default 5)")
    report.add_argument("--json", action="store_true", help="one JSON document")
    report.set_defaults(run=_report)

    evaluate = sub.add_parser(
        "evaluate",
        parents=[common, as_of],
        help="print the JSON body a service call would return, without a server",
    )
    evaluate.add_argument(
        "request", type=Path, help="a hook request body, or a captured HTTP exchange with 'body'"
    )
    evaluate.add_argument(
        "--service", help="service id (default: the one service registered on the request's hook)"
    )
    evaluate.add_argument(
        "--public-url",
        help="the URL the service is served at, for chart links on cards (env CDS_PUBLIC_URL; "
        "default http://HOST:PORT)",
    )
    evaluate.set_defaults(run=_evaluate)

    add_client_commands(sub)

    rules = sub.add_parser("rules", help="lint, test and explain the rule files").add_subparsers(
        dest="rules_command", required=True
    )
    lint = rules.add_parser(
        "lint", help="check rule and case files; print file:line: message; exit 1 on errors"
    )
    lint.add_argument("path", nargs="?", type=Path, help="rules directory (default: --rules-dir)")
    lint.add_argument("--log-level", choices=["debug", "info", "warning", "error"])
    lint.set_defaults(run=_rules_lint, rules_dir=None, database_url=None)
    test = rules.add_parser(
        "test",
        parents=[as_of],
        help="run the test cases stored beside the rules (*.cases.yaml)",
        description="Run the cases beside the rules. A case's own `now` wins; --now is the time of the "
        "cases that give none (without it, such a case fails: the clock would make it pass one day and "
        "fail the next).",
    )
    test.add_argument("path", nargs="?", type=Path, help="rules directory (default: --rules-dir)")
    test.add_argument("-k", dest="select", help="only cases whose file or name contains this text")
    test.set_defaults(run=_rules_test, rules_dir=None, database_url=None)
    explain = rules.add_parser(
        "explain",
        parents=[common, as_of],
        help="for every rule: fired / not fired / could not evaluate, and why",
    )
    explain.add_argument("request", type=Path, help="a hook request body, or a captured exchange with 'body'")
    explain.add_argument("--service", help="service id (default: the one registered on the request's hook)")
    explain.add_argument("--json", action="store_true", help="machine-readable output")
    explain.set_defaults(run=_rules_explain)
    schema = rules.add_parser(
        "schema", help="print the JSON Schema of rule files (docs/rule-file.schema.json)"
    )
    schema.add_argument(
        "--ruleset",
        action="store_true",
        help="the schema of rules/ruleset.yaml instead (scopes, response step; docs/ruleset-file.schema.json)",
    )
    schema.set_defaults(run=_rules_schema, rules_dir=None, database_url=None)
    doc = rules.add_parser("doc", help="print the rule pack as Markdown (docs/rules.md)")
    doc.add_argument("path", nargs="?", type=Path, help="rules directory (default: --rules-dir)")
    doc.set_defaults(run=_rules_doc, rules_dir=None, database_url=None)
    configmap = rules.add_parser(
        "configmap",
        help="write the rules as a Kubernetes ConfigMap and the volume that mounts them (docs/deployment.md)",
    )
    configmap.add_argument("path", nargs="?", type=Path, help="rules directory (default: --rules-dir)")
    configmap.add_argument(
        "--out", type=Path, required=True, help="where to write rules-configmap.yaml and rules-volume.yaml"
    )
    configmap.add_argument("--name", default="cds-rules", help="the ConfigMap's name (default cds-rules)")
    configmap.set_defaults(run=_rules_configmap, rules_dir=None, database_url=None)
    regen = rules.add_parser(
        "regen",
        help="after a rule change: write every file generated from the rules (docs/rules.md, the "
        "Kubernetes ConfigMap, docs/rule-file.schema.json, docs/ruleset-file.schema.json)",
    )
    regen.add_argument("path", nargs="?", type=Path, help="rules directory (default: --rules-dir)")
    regen.add_argument(
        "--root", type=Path, default=Path("."), help="the repository's top directory (default: here)"
    )
    regen.add_argument(
        "--check", action="store_true", help="write nothing; exit 1 if any generated file is out of date"
    )
    regen.set_defaults(run=_rules_regen, rules_dir=None, database_url=None)
    return parser


def _serve(args: argparse.Namespace, settings: Settings) -> int:
    import uvicorn

    from cds_service.data.upstream import ALLOW_PRIVATE_WARNING
    from cds_service.engine.ruleset import check_rules
    from cds_service.http_server import LimitedHttpToolsProtocol
    from cds_service.security.guard import INSECURE_WARNING
    from cds_service.security.trust import load_trust
    from cds_service.store.database import Store, StoreError

    # Fail here, with file:line or the database URL, rather than in every worker.
    errors = [p for p in check_rules(settings.rules_dir) if p.severity == "error"]
    if errors:
        raise FileProblems(errors)
    problem = settings.auth_problem()
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    # Before anything slow: a port in use is the commonest reason a second `serve` cannot start.
    problem = _listen_problem(settings.host, settings.port)
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return 1
    mismatch = _public_port_mismatch(settings)
    if mismatch:
        print(f"warning: {mismatch}", file=sys.stderr)
    if settings.trust_file is not None and not settings.insecure_no_auth:
        load_trust(settings.trust_file)
    if settings.insecure_no_auth:
        print(f"WARNING: {INSECURE_WARNING}", file=sys.stderr)
    if settings.fetch_allow_private:
        print(f"WARNING: {ALLOW_PRIVATE_WARNING}", file=sys.stderr)
    try:
        Store(settings.database_url).close()
    except StoreError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    # Workers are separate processes that build their own Settings from the environment.
    os.environ.update(settings.to_env())
    uvicorn.run(
        "cds_service.app:create_app",
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=settings.workers,
        loop="uvloop",
        # httptools, with the header size, count and time limits it lacks (http_server.py).
        http=LimitedHttpToolsProtocol,
        timeout_keep_alive=settings.keep_alive_seconds,
        # Applied by uvicorn in every worker process too: a logging.basicConfig here would reach only
        # this one, and the workers' own lines (one per call, refusals included) would be lost.
        log_config=_log_config(settings.log_level),
        log_level=settings.log_level,
        access_log=False,
    )
    return 0


def _listen_problem(host: str, port: int) -> str | None:
    """Why the server could not listen on host:port, in one line naming the setting to change; or None.
    uvicorn would say so too, later and without the way out."""
    try:
        addresses = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        return f"cannot listen on {host!r}: {exc.strerror}; change --host (CDS_HOST)"
    family, kind, proto, _, address = addresses[0]
    with socket.socket(family, kind, proto) as probe:
        # As uvicorn binds: a port left in TIME_WAIT by a server that just stopped is free.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                return (
                    f"port {port} on {host} is already in use; choose another with --port or CDS_PORT "
                    f"(make serve PORT={port + 1})"
                )
            if exc.errno == errno.EACCES:
                return f"not allowed to listen on port {port}; choose one above 1023 with --port or CDS_PORT"
            return (
                f"cannot listen on {host}:{port}: {exc.strerror}; "
                "change --host (CDS_HOST) or --port (CDS_PORT)"
            )
    return None


def _public_port_mismatch(settings: Settings) -> str | None:
    """A public URL on this machine that names another port than the one served: every token would be
    addressed to the wrong place. Only a warning, since a local proxy may forward one to the other."""
    if not settings.public_url:
        return None
    parts = urlsplit(settings.public_url)
    if parts.hostname not in ("127.0.0.1", "localhost", "::1") or parts.port is None:
        return None
    if parts.port == settings.port:
        return None
    return (
        f"the public URL {settings.public_url} names port {parts.port} but the service listens on "
        f"{settings.port}: tokens must be addressed (aud) to {settings.public_url}/cds-services...; "
        "give both the same port (make serve PORT=N moves both)"
    )


def _log_config(level: str) -> dict[str, Any]:
    return {
        "version": 1,
        "disable_existing_loggers": False,
        # The process id says which worker wrote a line.
        "formatters": {"plain": {"format": "%(asctime)s %(levelname)s [%(process)d] %(name)s: %(message)s"}},
        "handlers": {
            "stderr": {"class": "logging.StreamHandler", "formatter": "plain", "stream": "ext://sys.stderr"}
        },
        "root": {"handlers": ["stderr"], "level": level.upper()},
    }


def _evaluate(args: argparse.Namespace, settings: Settings) -> int:
    answer = _answer_file(settings, args.request, args.service, args.now)
    if answer is None:
        return 1
    sys.stdout.buffer.write(answer.body + b"\n")
    if answer.charts:
        _store_charts(settings, answer.charts)
    return 0


def _store_charts(settings: Settings, charts: Any) -> None:
    """Keep the charts behind the answer's links in the configured database, so that the links work
    once `serve` runs on the same database, as they would after an HTTP call."""
    from cds_service.store.database import Store, StoreError

    try:
        store = Store(settings.database_url)
    except StoreError as exc:
        print(f"warning: the chart links will not work: {exc}", file=sys.stderr)
        return
    try:
        store.save_charts(charts)
    except Exception as exc:  # noqa: BLE001 - any database failure means the same to the user
        print(f"warning: the chart links will not work: {type(exc).__name__}: {exc}", file=sys.stderr)
        return
    finally:
        store.close()
    until = min(chart.expires_at for chart in charts)
    print(
        f"{len(charts)} chart link(s) stored in {store.safe_url}, valid until {until:%Y-%m-%d %H:%M} UTC",
        file=sys.stderr,
    )


def _answer_file(settings: Settings, path: Path, service_id: str | None, now: datetime | None) -> Any:
    """The pipeline's Answer for the request in `path` as of `now` (None: the current time), or None
    after printing why there is none."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        print(f"error: cannot read {path}: {exc.strerror}", file=sys.stderr)
        return None
    try:
        return asyncio.run(_answer(settings, raw, service_id, now))
    except ProblemError as exc:
        print(f"error: the service would answer HTTP {exc.status}:", file=sys.stderr)
        for issue in exc.issues:
            print(f"  {issue.diagnostics}", file=sys.stderr)
        return None


async def _answer(settings: Settings, raw: bytes, service_id: str | None, now: datetime | None) -> Any:
    from cds_service.pipeline import Runtime, call_service

    runtime = Runtime.create(settings)
    try:
        body, hook = _request_body(raw)
        service = service_id or runtime.services.for_hook(hook, "give --service")
        return await call_service(runtime, service, body, now=now, public_url=settings.public_url)
    finally:
        await runtime.aclose()


def _audit(args: argparse.Namespace, settings: Settings) -> int:
    from cds_service.store.database import Store, StoreError

    since = None
    if args.since:
        try:
            since = datetime.fromisoformat(args.since)
        except ValueError:
            print(f"error: --since {args.since!r} is not an ISO 8601 time", file=sys.stderr)
            return 1
        since = since.replace(tzinfo=UTC) if since.tzinfo is None else since.astimezone(UTC)
    try:
        store = Store(settings.database_url)
    except StoreError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    try:
        if args.refusals:
            rows = store.refusals(since=since)[: args.limit]
        else:
            rows = store.audit(
                patient_id=args.patient, hook_instance=args.hook_instance, since=since, limit=args.limit
            )
    finally:
        store.close()
    if args.refusals:
        for row in rows:
            if args.json:
                sys.stdout.buffer.write(
                    orjson.dumps({str(k): v for k, v in row.items()}, default=str) + b"\n"
                )
            else:
                print(_refusal_line(row))
        print(f"{sum(row['count'] for row in rows)} refused call(s)", file=sys.stderr)
        return 0
    for row in rows:
        if args.json:
            # Column names come back as SQLAlchemy's str subclass, which orjson refuses as keys.
            sys.stdout.buffer.write(orjson.dumps({str(k): v for k, v in row.items()}, default=str) + b"\n")
        else:
            print(_audit_line(row))
    print(f"{len(rows)} call(s)", file=sys.stderr)
    return 0


def _refusal_line(row: dict[str, Any]) -> str:
    minute = (
        row["minute"].isoformat(timespec="minutes") if hasattr(row["minute"], "isoformat") else row["minute"]
    )
    return f"{minute} {row['endpoint']} source={row['source']} reason={row['reason']} count={row['count']}"


def _audit_line(row: dict[str, Any]) -> str:
    # A service call lists each rule's status; a feedback call each card's rule and outcome.
    rules = ",".join(_audit_rule(r) for r in row.get("rules") or ()) or "-"
    cards = ",".join(row.get("card_uuids") or ()) or "-"
    at = row["at"].isoformat(timespec="milliseconds") if hasattr(row["at"], "isoformat") else row["at"]
    return terminal_text(
        f"{at} {row['status']} {row['endpoint']} service={row['service_id'] or '-'} "
        f"hookInstance={row['hook_instance'] or '-'} patient={row['patient_id'] or '-'} "
        f"issuer={row['issuer'] or '-'} tenant={row['tenant'] or '-'} rules={rules} cards={cards} "
        f"{row['latency_ms']:.1f} ms{' reason=' + row['reason'] if row['reason'] else ''}"
    )


def _audit_rule(entry: dict[str, Any]) -> str:
    text = f"{entry.get('id') or 'unknown-card'}@{entry.get('version') or '-'}:{entry.get('status') or entry.get('outcome')}"
    return f"{text}({entry['card']})" if entry.get("card") else text


_REPORT_DESCRIPTION = """\
Feedback on the cards issued in a period, per rule and rule version: issued, with feedback, accepted,
overridden, and the override rate = overridden / (accepted + overridden) ("-" without feedback); then
each rule's most frequent override reasons.

  - The period is [--since, --until) on each card's issue time, compared in UTC; a time without an
    offset is UTC. Feedback counts for its card whenever it arrived.
  - "Issued" counts advice: a rule's cards for one hookInstance (repeated order-select calls answer
    with fresh card copies) count once, and so does their feedback, by the latest outcome on any of
    them (outcomeTimestamp, then reception).
  - Feedback about card uuids never issued here is counted apart, by reception time in the period.
  - Override reasons are grouped by (system, code), with the most recent display the EHR sent, else
    the display the rule file offers for that code; comments may hold PHI and are only counted, never
    shown.

Exit status: 0; 2 for a bad time, period or rule id; 1 when the database is unusable."""


def _report(args: argparse.Namespace, settings: Settings) -> int:
    from cds_service.store.database import Store, StoreError
    from cds_service.store.report import PeriodError, check_rule_id, period

    try:
        since, until = period(args.since, args.until, datetime.now(UTC), names=("--since", "--until"))
        rule_id = check_rule_id(args.rule)
    except PeriodError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.top < 0:
        print(f"error: --top {args.top} must be 0 or more", file=sys.stderr)
        return 2
    try:
        store = Store(settings.database_url)
    except StoreError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    from cds_service.engine.reasons import offered_reasons_in

    offered = offered_reasons_in(settings.rules_dir)
    try:
        report = store.feedback_report(
            since, until, rule_id, by_service=args.by_service, top=args.top, offered=offered
        )
    except StoreError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    finally:
        store.close()
    if args.json:
        sys.stdout.buffer.write(orjson.dumps(report.as_dict(), option=orjson.OPT_INDENT_2) + b"\n")
    else:
        sys.stdout.write(_report_text(report))
    return 0


def _report_text(report: FeedbackReport) -> str:
    from cds_service.store.report import NOT_OFFERED, iso

    scope = f"rule {report.rule_id}" if report.rule_id else "all rules"
    lines = [f"Cards issued from {iso(report.since)} to {iso(report.until)} (excluded), {scope}", ""]
    if not report.rows:
        lines.append("No cards were issued in this period.")
    else:
        header = ["rule", "version", *(["service"] if report.by_service else [])]
        header += ["issued", "with feedback", "accepted", "overridden", "override rate"]
        body = [
            [
                row.rule_id,
                row.rule_version,
                *([row.service_id or "-"] if report.by_service else []),
                *_figures(row),
            ]
            for row in report.rows
        ]
        body.append(["total", "", *([""] if report.by_service else []), *_figures(report.totals)])
        lines += _table(header, body, first_number=len(header) - 5)
    for reasons in report.reasons:
        lines += ["", f"Override reasons, {reasons.rule_id}: {reasons.overridden} card(s) overridden"]
        if reasons.top:
            rows = [
                [
                    str(r.cards),
                    str(r.with_comment),
                    r.code or "-",
                    (r.display or r.offered_display or _no_display(r))
                    + ("" if r.offered else f" {NOT_OFFERED}"),
                    r.system or "-",
                ]
                for r in reasons.top
            ]
            header = ["cards", "with a comment", "code", "display", "system"]
            lines += ["  " + line for line in _table(header, rows, first_number=0, last_number=1)]
        if reasons.more_reasons:
            lines.append(f"  and {reasons.more_reasons} more reason(s), {reasons.more_cards} card(s)")
    unknown = report.unknown_cards
    entries = f"{unknown.entries} entr{'y' if unknown.entries == 1 else 'ies'}"
    lines += [
        "",
        f"Feedback for unknown cards (received in the period): {entries} on {unknown.cards} card(s)",
    ]
    # Codes, displays and systems are the EHR's text: a terminal must not receive its escape sequences.
    return "\n".join(terminal_text(line) for line in lines) + "\n"


# Control characters (escape sequences included) and the bidirectional overrides that can make a line
# read other than it is.
_UNPRINTABLE = re.compile(r"[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\u2028\u2029]")


def terminal_text(text: str) -> str:
    """Text safe to print to a terminal: every control character shown as '?'."""
    return _UNPRINTABLE.sub("?", text)


def _no_display(reason: Reason) -> str:
    from cds_service.store.report import NO_REASON

    return NO_REASON if reason.code is None else "-"


def _figures(counts: Counts) -> list[str]:
    rate = counts.override_rate
    return [
        str(counts.issued),
        str(counts.with_feedback),
        str(counts.accepted),
        str(counts.overridden),
        "-" if rate is None else f"{rate:.1%}",
    ]


def _table(
    header: list[str], rows: list[list[str]], first_number: int, last_number: int | None = None
) -> list[str]:
    """Columns padded to their widest cell; the numeric ones (first_number..last_number) to the right."""
    last = len(header) - 1 if last_number is None else last_number
    widths = [max(len(cell) for cell in column) for column in zip(header, *rows, strict=True)]
    lines = []
    for cells in [header, *rows]:
        padded = [
            cell.rjust(width) if first_number <= i <= last else cell.ljust(width)
            for i, (cell, width) in enumerate(zip(cells, widths, strict=True))
        ]
        lines.append("  ".join(padded).rstrip())
    return lines


def _rules_lint(args: argparse.Namespace, settings: Settings) -> int:
    from cds_service.lint import lint_rules

    folder = args.path or settings.rules_dir
    problems = lint_rules(folder)
    for problem in problems:
        print(problem)
    errors = sum(1 for p in problems if p.severity == "error")
    warnings = len(problems) - errors
    print(f"{folder}: {errors} error(s), {warnings} warning(s)", file=sys.stderr)
    return 1 if errors else 0


def _rules_test(args: argparse.Namespace, settings: Settings) -> int:
    from cds_service.cases import format_result, load_cases, run_cases
    from cds_service.engine.durable import DurableRules
    from cds_service.engine.ruleset import load_ruleset

    folder = args.path or settings.rules_dir
    durable = DurableRules()
    try:
        ruleset = load_ruleset(folder, durable)
        cases = load_cases(folder)
        if args.select:
            cases = [c for c in cases if args.select in c.label]
        if not cases:
            print(f"{folder}: no test cases (*.cases.yaml)", file=sys.stderr)
            return 1
        results = asyncio.run(
            run_cases(
                ruleset,
                durable,
                cases,
                on_result=lambda r: print(format_result(r), flush=True),
                now=args.now,
            )
        )
    finally:
        durable.close()
    failed = sum(1 for r in results if not r.passed)
    print(f"{len(results) - failed} passed, {failed} failed", file=sys.stderr)
    return 1 if failed else 0


def _rules_explain(args: argparse.Namespace, settings: Settings) -> int:
    from cds_service.engine.explain import explain_json, explain_text

    answer = _answer_file(settings, args.request, args.service, args.now)
    if answer is None:
        return 1
    # What strict FHIR R4 validation says of each draft order: the order is read leniently either way,
    # and an integrator fixing the EHR's orders wants to see it.
    orders = [(f"{o.resource_type}/{o.id}", o.validation_notes) for o in answer.facts.draft_orders]
    if args.json:
        report = explain_json(answer.evaluation)
        report["draft_orders"] = [
            {"order": order, "validation_notes": list(notes)} for order, notes in orders
        ]
        sys.stdout.buffer.write(orjson.dumps(report, option=orjson.OPT_INDENT_2) + b"\n")
    else:
        sys.stdout.write(explain_text(answer.evaluation))
        if orders:
            sys.stdout.write(
                "\ndraft orders, as strict FHIR R4 validation sees them (each is read leniently):\n"
            )
        for order, notes in orders:
            sys.stdout.write(f"  {order}: {'; '.join(notes) if notes else 'valid'}\n")
    return 0


def _rules_schema(args: argparse.Namespace, settings: Settings) -> int:
    from cds_service.ruleformat.rulefile import rule_file_schema, ruleset_file_schema

    schema = ruleset_file_schema() if args.ruleset else rule_file_schema()
    sys.stdout.buffer.write(orjson.dumps(schema, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS) + b"\n")
    return 0


def _rules_doc(args: argparse.Namespace, settings: Settings) -> int:
    from cds_service.engine.docs import rule_pack_markdown
    from cds_service.engine.durable import DurableRules
    from cds_service.engine.ruleset import load_ruleset
    from cds_service.yamlfile import FileProblems

    durable = DurableRules()
    try:
        ruleset = load_ruleset(args.path or settings.rules_dir, durable)
    except FileProblems as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        return 1
    try:
        sys.stdout.write(rule_pack_markdown(ruleset))
    finally:
        ruleset.release(durable)
        durable.close()
    return 0


def _rules_configmap(args: argparse.Namespace, settings: Settings) -> int:
    from cds_service.deploy import ConfigMapError, rules_configmap
    from cds_service.lint import lint_rules

    folder = args.path or settings.rules_dir
    # Only rules that lint clean are worth deploying: a pod would refuse them at start, and a running
    # one would keep its old rules (a reload runs the cases first).
    errors = [p for p in lint_rules(folder) if p.severity == "error"]
    if errors:
        raise FileProblems(errors)
    try:
        generated = rules_configmap(folder, name=args.name)
    except (ConfigMapError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    for path in generated.write(args.out):
        print(f"wrote {path}", file=sys.stderr)
    print(
        f"{generated.files} files, {generated.size} bytes; ruleset sha256 {generated.hash}; "
        f"CDS_RULES_DIR is the volume's mount path + /{generated.rules_path}",
        file=sys.stderr,
    )
    return 0


def _rules_regen(args: argparse.Namespace, settings: Settings) -> int:
    from cds_service.deploy import ConfigMapError
    from cds_service.derived import KUBERNETES, RULES_DOC, derived_files
    from cds_service.lint import lint_rules

    folder = args.path or settings.rules_dir
    root: Path = args.root
    missing = [d for d in (RULES_DOC.parent, KUBERNETES) if not (root / d).is_dir()]
    if missing:
        print(
            f"error: {root.absolute()} has no {missing[0]}/: run this from the repository's top directory, "
            "or give --root",
            file=sys.stderr,
        )
        return 2
    # Generated files describe and deploy the rules: only rules that lint clean are worth it.
    errors = [p for p in lint_rules(folder) if p.severity == "error"]
    if errors:
        raise FileProblems(errors)
    try:
        derived = derived_files(folder)
    except ConfigMapError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    stale = [d for d in derived if not d.is_current(root)]
    for item in derived:
        state = "out of date" if item in stale else "up to date"
        if item in stale and not args.check:
            (root / item.path).write_bytes(item.content)
            state = "written"
        print(f"{item.path}: {state}", file=sys.stderr)
    return 1 if args.check and stale else 0


def timestamp(text: str) -> datetime:
    """An ISO 8601 time with its UTC offset (argparse type): a time without one would be read in
    whatever zone the machine is set to."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not an ISO 8601 time; write e.g. 2026-11-23T07:00:00Z"
        ) from None
    if moment.tzinfo is None:
        raise argparse.ArgumentTypeError(
            f"{text!r} needs a time and a UTC offset, e.g. 2026-11-23T07:00:00Z or 2026-11-23T08:00:00+01:00"
        )
    return moment


def _request_body(raw: bytes) -> tuple[bytes, str | None]:
    """The hook request in `raw`: either the body itself or a captured exchange holding it in `body`."""
    try:
        document = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise ProblemError.single(400, f"the file is not valid JSON: {exc}") from None
    if (body := captured_body(document)) is not document:
        document, raw = body, orjson.dumps(body)
    hook = document.get("hook") if isinstance(document, dict) else None
    return raw, hook if isinstance(hook, str) else None
