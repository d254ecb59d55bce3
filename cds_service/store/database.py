"""The database: one SQLAlchemy engine per process, SQLite in WAL mode by default.

Writes are small and synchronous; the web layer runs them off the event loop (the answer path's through
store/writer.py). A write returns only after COMMIT, so acknowledged data is on disk.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, delete, event, select, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError

from cds_service.store.limits import clip_row
from cds_service.store.postgres import connect_args
from cds_service.store.report import FeedbackReport, Offered, feedback_report
from cds_service.store.schema import (
    audit_log,
    cards_issued,
    chart_snapshots,
    feedback,
    health_heartbeat,
    jwt_seen,
    merged_card_rules,
    refused_calls,
)
from cds_service.store.startup import create_schema, retry_while_locked

log = logging.getLogger(__name__)


class StoreError(Exception):
    """The database could not be used; the message names the URL without its password."""


@dataclasses.dataclass(frozen=True)
class IssuedCard:
    card_uuid: str
    service_id: str
    rule_id: str
    rule_version: str
    indicator: str
    patient_id: str | None
    hook_instance: str
    issued_at: datetime
    issuer: str | None = None
    # [system, code] of each override reason the card offered
    override_reasons: list[list[str]] | None = None
    # The other rules (id, version) a merged card speaks for; the first rule is rule_id above.
    also: tuple[tuple[str, str], ...] = ()


def _card_rows(cards: Sequence[IssuedCard]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """cards_issued rows, and merged_card_rules rows for the other rules of merged cards."""
    issued = [{k: v for k, v in _row(card).items() if k != "also"} for card in cards]
    others = [
        {"card_uuid": card.card_uuid, "rule_id": rule_id, "rule_version": version}
        for card in cards
        for rule_id, version in card.also
    ]
    return issued, others


@dataclasses.dataclass(frozen=True)
class CardOwner:
    """What feedback on a card is checked against: the service and issuer it went to, and the override
    reasons it offered."""

    service_id: str
    issuer: str | None
    override_reasons: frozenset[tuple[str, str]]


@dataclasses.dataclass(frozen=True)
class ChartSnapshot:
    """What one chart link shows, frozen at answer time; `token` is the link's secret."""

    token: str
    chart_id: str
    created_at: datetime
    expires_at: datetime
    payload: dict[str, Any]


@dataclasses.dataclass(frozen=True)
class FeedbackRow:
    service_id: str
    card_uuid: str
    outcome: str
    outcome_timestamp: str
    accepted_suggestions: list[str] | None
    override_code: str | None
    override_system: str | None
    override_display: str | None
    user_comment: str | None
    received_at: datetime
    issuer: str | None = None
    reason_offered: bool | None = None


@dataclasses.dataclass
class AuditRow:
    """What the audit trail keeps of one call. Never the access token or the bearer JWT."""

    at: datetime
    endpoint: str  # discovery | service | feedback
    latency_ms: float
    status: int
    service_id: str | None = None
    hook_instance: str | None = None
    issuer: str | None = None
    tenant: str | None = None
    subject: str | None = None
    patient_id: str | None = None
    # A service call: [{"id", "version", "status"}] for the rules that fired or could not evaluate. A
    # feedback call: [{"id", "version", "card", "outcome"}] per item (id and version None for a card
    # never issued here).
    rules: list[dict[str, str | None]] | None = None
    card_uuids: list[str] | None = None
    reason: str | None = None
    process: int | None = None


@dataclasses.dataclass(frozen=True)
class RefusalCount:
    """Calls refused in one minute from one source, for one reason, on one endpoint (security/refusals.py)."""

    minute: datetime
    source: str
    reason: str
    endpoint: str
    count: int


class Store:
    def __init__(self, url: str) -> None:
        self.url = url
        try:
            self.engine = _engine(url, synchronous="FULL")
            # Cards issued are our own record, written on the answer's path: in WAL mode NORMAL
            # survives a killed process and skips the fsync per answer; only an OS crash can lose
            # the last few, and then only their join to feedback, never an acknowledged row.
            self.cards_engine = (
                _engine(url, synchronous="NORMAL") if self.engine.dialect.name == "sqlite" else self.engine
            )
            # Its own short lock wait, so that a stuck writer makes the check fail fast, not hang.
            self._health_engine = (
                _engine(url, synchronous="NORMAL", busy_seconds=1.0)
                if self.engine.dialect.name == "sqlite"
                else self.engine
            )
            # Several processes may start at once on an empty database: see store/startup.py.
            create_schema(self.engine, _busy_seconds(url))
        except (SQLAlchemyError, ImportError, OSError, ValueError) as exc:
            text = str(exc).strip()
            first_line = text.splitlines()[0] if text else ""
            raise StoreError(
                f"database {self.safe_url} is not usable: {type(exc).__name__}: {first_line}"
            ) from None

    @property
    def safe_url(self) -> str:
        try:
            return make_url(self.url).render_as_string(hide_password=True)
        except ArgumentError:  # an unparseable URL may still hold a password: show none of it
            return "<unparseable database URL>"

    def close(self) -> None:
        self.engine.dispose()
        self.cards_engine.dispose()
        self._health_engine.dispose()

    def ping(self) -> bool:
        try:
            with self.engine.connect() as conn:
                conn.execute(select(1))
        except SQLAlchemyError:
            return False
        return True

    def heartbeat(self, now: datetime, process: int) -> bool:
        """Whether the database takes a write: one row rewritten, waiting at most a second for a lock
        (a read proves nothing when the disk is full, the file read-only or a writer stuck)."""
        insert = (sqlite if self.engine.dialect.name == "sqlite" else postgresql).insert(health_heartbeat)
        upsert = insert.on_conflict_do_update(index_elements=["id"], set_={"at": now, "process": process})
        try:
            with self._health_engine.begin() as conn:
                if self.engine.dialect.name == "postgresql":
                    conn.execute(text("SET LOCAL lock_timeout = '1s'"))
                    conn.execute(text("SET LOCAL statement_timeout = '1500ms'"))
                conn.execute(upsert, {"id": 1, "at": now, "process": process})
        except SQLAlchemyError:
            return False
        return True

    def record_call(
        self, audit: AuditRow, cards: Sequence[IssuedCard] = (), charts: Sequence[ChartSnapshot] = ()
    ) -> None:
        """The audit row, the cards issued and their charts' data, in one transaction: committed before
        the answer leaves, so a chart link works as soon as the clinician can click it."""
        with self.cards_engine.begin() as conn:
            self.write_call(conn, audit, cards, charts)

    def write_call(
        self,
        conn: Connection,
        audit: AuditRow,
        cards: Sequence[IssuedCard] = (),
        charts: Sequence[ChartSnapshot] = (),
    ) -> None:
        """`record_call` inside the caller's transaction (store/writer.py commits several calls in one)."""
        if cards:
            rows, others = _card_rows(cards)
            conn.execute(cards_issued.insert(), rows)
            if others:
                conn.execute(merged_card_rules.insert(), others)
        if charts:
            conn.execute(chart_snapshots.insert(), [_row(chart) for chart in charts])
        # The audit row is the record of the call: a value too long or not storable (a token's sub, a
        # path naming no service) is clipped rather than failing it (store/limits.py).
        conn.execute(audit_log.insert(), clip_row(audit_log, _row(audit)))

    def record_refusals(self, counts: Sequence[RefusalCount]) -> None:
        """Add refused-call counts to their (minute, source, reason, endpoint) rows, which other workers
        may be adding to as well."""
        if not counts:
            return
        key = ["minute", "source", "reason", "endpoint"]
        dialect = self.engine.dialect.name
        if dialect not in ("sqlite", "postgresql"):
            raise StoreError(f"unsupported database dialect {dialect!r}: use SQLite or PostgreSQL")
        insert = (sqlite if dialect == "sqlite" else postgresql).insert(refused_calls)
        upsert = insert.on_conflict_do_update(
            index_elements=key, set_={"count": refused_calls.c.count + insert.excluded.count}
        )
        with self.cards_engine.begin() as conn:
            conn.execute(upsert, [_row(count) for count in counts])

    def refusals(self, since: datetime | None = None) -> list[dict[str, Any]]:
        query = select(refused_calls).order_by(refused_calls.c.minute, refused_calls.c.source)
        if since is not None:
            query = query.where(refused_calls.c.minute >= since.astimezone(UTC))
        with self.engine.connect() as conn:
            return [dict(row._mapping) for row in conn.execute(query)]

    def save_charts(self, charts: Sequence[ChartSnapshot]) -> None:
        if not charts:
            return
        with self.cards_engine.begin() as conn:
            conn.execute(chart_snapshots.insert(), [_row(chart) for chart in charts])

    def chart(self, token: str, now: datetime) -> ChartSnapshot | None:
        """The snapshot behind a link, or None when unknown or expired (the two are not told apart)."""
        query = select(chart_snapshots).where(
            chart_snapshots.c.token == token, chart_snapshots.c.expires_at > now.astimezone(UTC)
        )
        with self.engine.connect() as conn:
            row = conn.execute(query).first()
        if row is None:
            return None
        values = dict(row._mapping)
        for key in ("created_at", "expires_at"):
            # SQLite hands back naive UTC.
            if values[key].tzinfo is None:
                values[key] = values[key].replace(tzinfo=UTC)
        return ChartSnapshot(**values)

    def first_use(self, issuer: str, jti: str, expires_at: datetime) -> bool:
        """Remember a token id until it expires; False if it was already remembered (a replay).

        Raises StoreError when the database cannot say: the caller must refuse the token (503), since
        accepting it unchecked would let a replay through."""
        try:
            with self.cards_engine.begin() as conn:
                return self.claim_token(conn, issuer, jti, expires_at)
        except SQLAlchemyError as exc:
            raise self.replay_check_failed(exc) from exc

    def claim_token(self, conn: Connection, issuer: str, jti: str, expires_at: datetime) -> bool:
        """`first_use` inside the caller's transaction: the row is the claim once it commits."""
        insert = _insert_ignoring(jwt_seen, ("issuer", "jti"), self.engine.dialect.name)
        row = conn.execute(
            insert.returning(jwt_seen.c.jti), {"issuer": issuer, "jti": jti, "expires_at": expires_at}
        ).first()
        return row is not None

    def replay_check_failed(self, exc: BaseException) -> StoreError:
        return StoreError(
            f"database {self.safe_url}: a token id could not be checked for replay ({type(exc).__name__})"
        )

    def purge(
        self, now: datetime, audit_before: datetime | None, feedback_before: datetime | None = None
    ) -> tuple[int, int]:
        """Forget expired token ids, expired chart data, audit rows older than their retention, and
        feedback and issued cards older than theirs; (tokens, audit rows) removed."""
        with self.engine.begin() as conn:
            if feedback_before is not None:
                conn.execute(delete(feedback).where(feedback.c.received_at < feedback_before))
                conn.execute(delete(cards_issued).where(cards_issued.c.issued_at < feedback_before))
            tokens = conn.execute(delete(jwt_seen).where(jwt_seen.c.expires_at < now)).rowcount or 0
            conn.execute(delete(chart_snapshots).where(chart_snapshots.c.expires_at <= now))
            audits = 0
            if audit_before is not None:
                audits = conn.execute(delete(audit_log).where(audit_log.c.at < audit_before)).rowcount or 0
                conn.execute(delete(refused_calls).where(refused_calls.c.minute < audit_before))
        return tokens, audits

    def audit(
        self,
        patient_id: str | None = None,
        hook_instance: str | None = None,
        since: datetime | None = None,
        limit: int | None = None,
    ) -> list[dict[str, Any]]:
        query = select(audit_log).order_by(audit_log.c.at, audit_log.c.id)
        if patient_id is not None:
            query = query.where(audit_log.c.patient_id == patient_id)
        if hook_instance is not None:
            query = query.where(audit_log.c.hook_instance == hook_instance)
        if since is not None:
            # SQLite keeps times as naive UTC text: compare in UTC whatever offset `since` was given in.
            query = query.where(audit_log.c.at >= since.astimezone(UTC))
        if limit is not None:
            query = query.limit(limit)
        with self.engine.connect() as conn:
            return [dict(row._mapping) for row in conn.execute(query)]

    def record_feedback(self, rows: Sequence[FeedbackRow]) -> int:
        """Insert feedback, ignoring exact repeats; returns how many rows were new."""
        if not rows:
            return 0
        values = [_row(row) for row in rows]
        insert = _insert_ignoring(feedback, _FEEDBACK_KEY, self.engine.dialect.name)
        stored = 0
        with self.engine.begin() as conn:
            for value in values:
                # RETURNING says whether the row went in; psycopg reports rowcount -1 for ON CONFLICT.
                stored += conn.execute(insert.returning(feedback.c.id), value).first() is not None
        return stored

    def card_owners(self, card_uuids: Iterable[str]) -> dict[str, CardOwner]:
        """The cards among `card_uuids` that this service issued, with whom they went to."""
        wanted = sorted(set(card_uuids))
        if not wanted:
            return {}
        query = select(
            cards_issued.c.card_uuid,
            cards_issued.c.service_id,
            cards_issued.c.issuer,
            cards_issued.c.override_reasons,
        ).where(cards_issued.c.card_uuid.in_(wanted))
        with self.engine.connect() as conn:
            return {
                row.card_uuid: CardOwner(
                    row.service_id,
                    row.issuer,
                    frozenset((system, code) for system, code in row.override_reasons or ()),
                )
                for row in conn.execute(query)
            }

    def feedback(self, card_uuid: str | None = None) -> list[dict[str, Any]]:
        query = select(feedback).order_by(feedback.c.id)
        if card_uuid is not None:
            query = query.where(feedback.c.card_uuid == card_uuid)
        with self.engine.connect() as conn:
            return [dict(row._mapping) for row in conn.execute(query)]

    def feedback_report(
        self,
        since: datetime,
        until: datetime,
        rule_id: str | None = None,
        by_service: bool = False,
        top: int = 5,
        offered: Offered | None = None,
    ) -> FeedbackReport:
        """Cards issued in [since, until), accepted and overridden, per rule version (store/report.py);
        `offered`: the rule files' override reasons, for codes an EHR sends without a display."""
        try:
            return feedback_report(self.engine, since, until, rule_id, by_service, top, offered)
        except SQLAlchemyError as exc:
            raise StoreError(
                f"database {self.safe_url}: the report could not be read ({type(exc).__name__})"
            ) from exc

    def card_rules(self, card_uuids: Sequence[str]) -> dict[str, list[tuple[str, str]]]:
        """card uuid -> every (rule id, rule version) the card speaks for (its first rule first), for the
        cards issued here among `card_uuids`."""
        if not card_uuids:
            return {}
        wanted = sorted(set(card_uuids))
        first = select(cards_issued.c.card_uuid, cards_issued.c.rule_id, cards_issued.c.rule_version).where(
            cards_issued.c.card_uuid.in_(wanted)
        )
        others = (
            select(
                merged_card_rules.c.card_uuid, merged_card_rules.c.rule_id, merged_card_rules.c.rule_version
            )
            .where(merged_card_rules.c.card_uuid.in_(wanted))
            .order_by(merged_card_rules.c.card_uuid, merged_card_rules.c.rule_id)
        )
        found: dict[str, list[tuple[str, str]]] = {}
        with self.engine.connect() as conn:
            for row in conn.execute(first):
                found[row.card_uuid] = [(row.rule_id, row.rule_version)]
            for row in conn.execute(others):
                found.setdefault(row.card_uuid, []).append((row.rule_id, row.rule_version))
        return found

    def issued_cards(self, hook_instance: str | None = None) -> list[dict[str, Any]]:
        query = select(cards_issued).order_by(cards_issued.c.issued_at)
        if hook_instance is not None:
            query = query.where(cards_issued.c.hook_instance == hook_instance)
        with self.engine.connect() as conn:
            return [dict(row._mapping) for row in conn.execute(query)]


def _row(item: Any) -> dict[str, Any]:
    """A dataclass as the column values of its row. Not `dataclasses.asdict`: that deep-copies every
    nested value, and a chart snapshot's payload is thousands of them (4 ms of a 6 ms write on W1); the
    JSON columns serialise the values as they are, and nothing keeps the dict after the insert."""
    return {field.name: getattr(item, field.name) for field in dataclasses.fields(item)}


def _insert_ignoring(table: Any, key: Iterable[str], dialect: str) -> Any:
    """INSERT that does nothing when a row with the same key exists (rowcount 0)."""
    if dialect == "sqlite":
        return sqlite.insert(table).on_conflict_do_nothing(index_elements=list(key))
    if dialect == "postgresql":
        return postgresql.insert(table).on_conflict_do_nothing(index_elements=list(key))
    raise StoreError(f"unsupported database dialect {dialect!r}: use SQLite or PostgreSQL")


_FEEDBACK_KEY: Iterable[str] = ("card_uuid", "outcome", "outcome_timestamp")


def _private_file(path: Path) -> None:
    """Create the SQLite file readable by its owner only (it holds lab values and override comments);
    SQLite gives its -wal and -shm files the same mode. An existing file keeps its mode, with a warning
    when others may read it."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
    except FileExistsError:
        if path.is_file() and path.stat().st_mode & 0o077:
            log.warning(
                "%s can be read by other users (mode %o); chmod 600 it", path, path.stat().st_mode & 0o777
            )


def _engine(url: str, synchronous: str, busy_seconds: float | None = None) -> Engine:
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return create_engine(url, pool_pre_ping=True, future=True, connect_args=connect_args(parsed))
    if parsed.database and parsed.database != ":memory:" and not parsed.database.startswith("file:"):
        _private_file(Path(parsed.database).expanduser().resolve())
    if busy_seconds is None:
        busy_seconds = _busy_seconds(url)
    engine = create_engine(url, future=True, connect_args={"timeout": busy_seconds})

    @event.listens_for(engine, "connect")
    def _pragmas(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout={round(busy_seconds * 1000)}")
        # WAL lets readers and one writer work at once across worker processes; FULL syncs the WAL
        # on every commit so that an acknowledged row survives a crash of the process or the machine.
        # Turning it on can meet another process's clean-up of the WAL files, which SQLite reports at
        # once instead of waiting (store/startup.py).
        retry_while_locked(lambda: cursor.execute("PRAGMA journal_mode=WAL"), busy_seconds)
        cursor.execute(f"PRAGMA synchronous={synchronous}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    return engine


def _busy_seconds(url: str) -> float:
    """How long a writer waits for another process's SQLite lock: 30 s, or the URL's `timeout` in
    seconds (sqlite:///cds.db?timeout=5, pysqlite's own parameter, which the PRAGMA must not override)."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return 30.0
    timeout = parsed.query.get("timeout", "30")
    return float(timeout if isinstance(timeout, str) else timeout[-1])
