"""How long `cds-service report` takes over a busy database.

    python bench/report_time.py [--cards 100000] [--feedback 30000] [--database-url URL] [--runs 5]

Fills a fresh SQLite file (or the given, emptied, database) with cards issued over 60 days by 11 rules
in 2 versions and 3 services, and feedback on some of them (a tenth sent twice, a twentieth for cards
never issued), then times the command as a person runs it: a new process, the default 30 days, and
the whole of the 60 days. Prints figures; it asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import random
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import create_engine

from cds_service.store.database import AuditRow, FeedbackRow, IssuedCard, Store
from cds_service.store.schema import metadata

ROOT = Path(__file__).resolve().parent.parent
RULES = [f"rule-{n:02d}" for n in range(11)]
SERVICES = ["order-sign", "order-select", "patient-view"]
REASONS = [("not-relevant", "Not relevant"), ("patient-declined", None), ("already-done", "Already done")]


def fill(store: Store, cards: int, answered: int, now: datetime) -> None:
    rng = random.Random(7)
    issued = [
        IssuedCard(
            card_uuid=f"card-{n}",
            service_id=rng.choice(SERVICES),
            rule_id=rng.choice(RULES),
            rule_version=rng.choice(["1.0.0", "1.1.0"]),
            indicator="warning",
            patient_id=f"p{n % 5000}",
            hook_instance=f"hook-{n}",
            issued_at=now - timedelta(seconds=rng.uniform(0, 60 * 86400)),
        )
        for n in range(cards)
    ]
    for start in range(0, cards, 10_000):
        audit = AuditRow(at=now, endpoint="service", latency_ms=1.0, status=200)
        store.record_call(audit, issued[start : start + 10_000])
    rows = []
    for n in range(answered):
        unknown = n % 20 == 0
        card = f"unknown-{n}" if unknown else f"card-{rng.randrange(cards)}"
        outcome = "overridden" if rng.random() < 0.4 else "accepted"
        code, display = rng.choice(REASONS)
        given = outcome == "overridden" and rng.random() < 0.8
        rows.append(
            FeedbackRow(
                service_id="order-sign",
                card_uuid=card,
                outcome=outcome,
                outcome_timestamp=(now - timedelta(minutes=n)).isoformat(),
                accepted_suggestions=["s"] if outcome == "accepted" else None,
                override_code=code if given else None,
                override_system="http://example.org/override" if given else None,
                override_display=display if given else None,
                user_comment="free text" if given and n % 3 == 0 else None,
                received_at=now - timedelta(minutes=n),
            )
        )
    # record_feedback commits each call with an fsync: batches keep the fill quick.
    for start in range(0, answered, 5_000):
        store.record_feedback(rows[start : start + 5_000])


def timed_command(url: str, *options: str) -> float:
    env = {**os.environ, "CDS_DATABASE_URL": url, "CDS_RULES_DIR": str(ROOT / "rules")}
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "cds_service", "report", *options],
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
    )
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--cards", type=int, default=100_000)
    parser.add_argument("--feedback", type=int, default=30_000)
    parser.add_argument("--database-url")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        url = args.database_url or f"sqlite:///{Path(folder) / 'report.db'}"
        if args.database_url:
            engine = create_engine(url)
            metadata.drop_all(engine)
            engine.dispose()
        now = datetime.now(UTC)
        store = Store(url)
        started = time.perf_counter()
        fill(store, args.cards, args.feedback, now)
        print(
            f"filled {args.cards} cards, {args.feedback} feedback rows in {time.perf_counter() - started:.1f} s"
        )
        for label, options in [
            ("in process, 30 days", None),
            ("in process, 60 days", now - timedelta(days=61)),
        ]:
            times = []
            for _ in range(args.runs):
                started = time.perf_counter()
                report = store.feedback_report(
                    options or now - timedelta(days=30), now + timedelta(seconds=1)
                )
                times.append(time.perf_counter() - started)
            print(
                f"{label}: best {min(times) * 1000:.0f} ms, median {sorted(times)[len(times) // 2] * 1000:.0f} ms"
                f" ({report.totals.issued} cards, {report.totals.with_feedback} with feedback)"
            )
        store.close()
        since = (now - timedelta(days=61)).isoformat()
        for label, command in [
            ("cds-service report", ()),
            ("cds-service report, 60 days", ("--since", since)),
        ]:
            times = [timed_command(url, *command) for _ in range(args.runs)]
            print(
                f"{label} (new process): best {min(times):.2f} s, median {sorted(times)[len(times) // 2]:.2f} s"
            )
        # What a process spends before any query: interpreter, imports, argument parsing.
        times = [
            timed_command(url, "--since", "2000-01-01", "--until", "2000-01-02") for _ in range(args.runs)
        ]
        print(f"cds-service report over an empty period (start-up): best {min(times):.2f} s")


if __name__ == "__main__":
    main()
