"""Tables. Feedback joins to the card (and through it to the rule and its version) by card uuid."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    DateTime,
    Float,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    UniqueConstraint,
)

metadata = MetaData()

cards_issued = Table(
    "cards_issued",
    metadata,
    Column("card_uuid", String(64), primary_key=True),
    Column("service_id", String(64), nullable=False),
    Column("rule_id", String(128), nullable=False),
    Column("rule_version", String(64), nullable=False),
    Column("indicator", String(16), nullable=False),
    Column("patient_id", String(128)),
    Column("hook_instance", String(64), nullable=False, index=True),
    Column("issued_at", DateTime(timezone=True), nullable=False, index=True),
    # Who the card was issued to (None with authentication off), and the override reasons it offered
    # as [system, code] pairs: feedback is checked against both.
    Column("issuer", String(512)),
    Column("override_reasons", JSON),
)

# The other rules a card speaks for, when the response merged several rules' cards into one (the card's
# first rule is in cards_issued): the report and feedback count the card for each of them. A table of
# its own, so that a database made before merged cards needs no migration.
merged_card_rules = Table(
    "merged_card_rules",
    metadata,
    Column("card_uuid", String(64), nullable=False),
    Column("rule_id", String(128), nullable=False),
    Column("rule_version", String(64), nullable=False),
    PrimaryKeyConstraint("card_uuid", "rule_id", name="pk_merged_card_rules"),
)

feedback = Table(
    "feedback",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("service_id", String(64), nullable=False),
    Column("card_uuid", String(64), nullable=False, index=True),
    Column("outcome", String(16), nullable=False),
    Column("outcome_timestamp", String(64), nullable=False),
    Column("accepted_suggestions", JSON),
    Column("override_code", String(128)),
    Column("override_system", String(256)),
    Column("override_display", String(256)),
    Column("user_comment", Text),
    Column("received_at", DateTime(timezone=True), nullable=False),
    # Who sent it, and whether its override reason is one the card offered (None: no reason, or a card
    # this service does not know).
    Column("issuer", String(512)),
    Column("reason_offered", Boolean),
    # A client that retries the same feedback must not double-count it.
    UniqueConstraint("card_uuid", "outcome", "outcome_timestamp", name="uq_feedback_once"),
)

# The data behind a chart link on a card: lab series and dose steps from one request, under a random
# token that is the link's only key. Lab values are PHI, so rows are deleted once expired.
chart_snapshots = Table(
    "chart_snapshots",
    metadata,
    Column("token", String(64), primary_key=True),
    Column("chart_id", String(128), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False, index=True),
    Column("payload", JSON, nullable=False),
)

# Every token's jti is remembered until it expires, in the database every worker shares, so a replayed
# token is refused whichever worker it reaches.
jwt_seen = Table(
    "jwt_seen",
    metadata,
    Column("issuer", String(512), nullable=False),
    Column("jti", String(256), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False, index=True),
    PrimaryKeyConstraint("issuer", "jti", name="pk_jwt_seen"),
)

# One row per call (discovery, service call, feedback), refused ones included. Never a token.
audit_log = Table(
    "audit_log",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", DateTime(timezone=True), nullable=False, index=True),
    Column("endpoint", String(16), nullable=False),
    Column("service_id", String(64)),
    Column("hook_instance", String(64), index=True),
    Column("issuer", String(512)),
    Column("tenant", String(128)),
    Column("subject", String(256)),
    Column("patient_id", String(128), index=True),
    Column("rules", JSON),
    Column("card_uuids", JSON),
    Column("latency_ms", Float, nullable=False),
    Column("status", Integer, nullable=False),
    Column("reason", String(512)),
    Column("process", Integer),
)

# Calls refused before their caller was known (401), counted per minute, source address, reason and
# endpoint (security/refusals.py): a flood of refusals is a few rows a minute, not a row per call.
refused_calls = Table(
    "refused_calls",
    metadata,
    Column("minute", DateTime(timezone=True), nullable=False, index=True),
    Column("source", String(64), nullable=False),
    Column("reason", String(64), nullable=False),
    Column("endpoint", String(16), nullable=False),
    Column("count", Integer, nullable=False),
    PrimaryKeyConstraint("minute", "source", "reason", "endpoint", name="pk_refused_calls"),
)

# One row, rewritten by /healthz now and then: the database is ready only if it can be written, not
# just read (a locked or read-only database refuses every signed call's replay check).
health_heartbeat = Table(
    "health_heartbeat",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("process", Integer, nullable=False),
)
