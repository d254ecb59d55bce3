"""Hot reload: a new ruleset serves only after it loads clean and passes its cases; never a broken one."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from cds_service.engine import RuleEngine
from cds_service.engine.durable import DurableRules
from cds_service.engine.reload import Reloader
from cds_service.engine.ruleset import load_ruleset
from tests.engine.rulesdir import copy_rules, edit

SUMMARY = "Anakinra {order.daily_dose} mg/day is above the {param.max_daily_dose} mg/day maximum"


@pytest.fixture
async def reloader(tmp_path: Path) -> AsyncIterator[Reloader]:
    rules = copy_rules(tmp_path)
    durable = DurableRules()
    engine = RuleEngine(load_ruleset(rules, durable), durable)
    yield Reloader(engine, rules, release_after_seconds=0)
    engine.close()


async def test_nothing_happens_when_nothing_changed(reloader: Reloader) -> None:
    before = reloader.engine.ruleset
    result = await reloader.check()
    assert result.outcome == "unchanged" and reloader.engine.ruleset is before


async def test_a_passing_change_is_swapped_in(reloader: Reloader) -> None:
    before = reloader.engine.ruleset
    edit(
        reloader.rules_dir / "max-dose.yaml",
        SUMMARY,
        "Anakinra {order.daily_dose} mg/day exceeds the maximum of {param.max_daily_dose} mg/day",
    )
    result = await reloader.check()
    assert result.outcome == "reloaded", result.errors
    after = reloader.engine.ruleset
    assert after is not before and after.hash == result.hash != before.hash
    # SUMMARY is the card of an order above the daily maximum (with its weight known), the first variant.
    assert "exceeds the maximum" in after.rules["max-dose"].spec.variants[0].card.summary


async def test_a_broken_file_never_replaces_the_working_ruleset(reloader: Reloader) -> None:
    before = reloader.engine.ruleset
    path = reloader.rules_dir / "max-dose.yaml"
    edit(path, "fact: order.daily_dose", "fact: order.daily_dos")
    result = await reloader.check()
    assert result.outcome == "rejected"
    assert any(e.startswith(f"{path}:") and "order.daily_dos" in e for e in result.errors), result.errors
    assert reloader.engine.ruleset is before
    assert reloader.state.rejected_hash == result.hash
    # Fixing the file reloads it.
    edit(path, "fact: order.daily_dos", "fact: order.daily_dose")
    edit(path, "title: Maximum anakinra dose", "title: Maximum anakinra daily dose")
    assert (await reloader.check()).outcome == "reloaded"
    assert reloader.state.rejected_hash is None


async def test_a_change_that_fails_its_cases_is_rejected(reloader: Reloader) -> None:
    before = reloader.engine.ruleset
    edit(
        reloader.rules_dir / "max-dose.yaml",
        "    value: 2400\n    unit: mg/d",
        "    value: 3500\n    unit: mg/d",
    )
    result = await reloader.check()
    assert result.outcome == "rejected"
    assert any("FAIL max-dose.cases.yaml" in e for e in result.errors), result.errors
    assert reloader.engine.ruleset is before


async def test_the_old_ruleset_keeps_answering_until_it_is_released(reloader: Reloader) -> None:
    from cds_service.facts.model import Facts

    old = reloader.engine.ruleset
    service = old.services.get("anakinra-order-sign")
    assert service is not None
    edit(
        reloader.rules_dir / "max-dose.yaml",
        SUMMARY,
        "Anakinra {order.daily_dose} mg/day exceeds the maximum of {param.max_daily_dose} mg/day",
    )
    assert (await reloader.check()).outcome == "reloaded"
    facts = Facts(now=_now(), hook="order-sign", hook_instance="x", patient_id="p")
    evaluation = await reloader.engine.evaluate(service, facts, old)  # a request that began before the swap
    (outcome,) = [o for o in evaluation.outcomes if o.rule.id == "max-dose"]
    assert outcome.rule is old.rules["max-dose"]
    assert "exceeds the maximum" not in outcome.rule.spec.card.summary


def _now() -> Any:
    from datetime import UTC, datetime

    return datetime(2026, 11, 23, tzinfo=UTC)


def wait_for(check: Callable[[], bool], seconds: float = 10) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.05)
    raise AssertionError("condition not reached in time")


def test_a_running_service_reloads_and_reports_a_rejected_edit(tmp_path: Path, service_with: Any) -> None:
    rules = copy_rules(tmp_path)
    http: httpx.Client = service_with(rules_dir=rules, reload_interval_seconds=0.1)
    first = http.get("/healthz").json()["rules"]
    path = rules / "max-dose.yaml"
    edit(path, "fact: order.daily_dose", "fact: order.daily_dos")
    wait_for(lambda: "rejected" in http.get("/healthz").json()["rules"])
    health = http.get("/healthz").json()["rules"]
    assert health["hash"] == first["hash"]
    assert any("order.daily_dos" in e for e in health["rejected"]["errors"])
    edit(path, "fact: order.daily_dos", "fact: order.daily_dose")
    edit(
        path,
        SUMMARY,
        "Anakinra {order.daily_dose} mg/day exceeds the maximum of {param.max_daily_dose} mg/day",
    )
    wait_for(lambda: http.get("/healthz").json()["rules"]["hash"] != first["hash"])
    discovery = http.get("/cds-services").json()["services"][0]
    assert (
        discovery["extension"]["cds-service-ruleset"]["hash"] == http.get("/healthz").json()["rules"]["hash"]
    )


def test_every_worker_process_switches_to_the_new_ruleset(tmp_path: Path) -> None:
    import os
    import socket
    import subprocess
    import sys

    rules = copy_rules(tmp_path)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {
        **os.environ,
        "CDS_RULES_DIR": str(rules),
        "CDS_DATABASE_URL": f"sqlite:///{tmp_path / 'cds.db'}",
        "CDS_RELOAD_INTERVAL_SECONDS": "0.2",
        "CDS_INSECURE_NO_AUTH": "1",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "cds_service", "serve", "--port", str(port), "--workers", "2"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"

    def health() -> dict[str, Any]:
        # A new connection each time, so the kernel spreads requests over both workers.
        with httpx.Client(base_url=base, timeout=2) as client:
            body: dict[str, Any] = client.get("/healthz").json()
            return body

    def answering() -> bool:
        try:
            health()
        except httpx.TransportError:
            return False
        return True

    try:
        wait_for(answering, 30)
        seen: dict[int, str] = {}

        def both_workers_seen() -> bool:
            h = health()
            seen[h["process"]] = h["rules"]["hash"]
            return len(seen) == 2

        wait_for(both_workers_seen, 20)
        old = set(seen.values())
        assert len(old) == 1
        edit(
            rules / "max-dose.yaml",
            SUMMARY,
            "Anakinra {order.daily_dose} mg/day exceeds the maximum of {param.max_daily_dose} mg/day",
        )
        after: dict[int, str] = {}

        def all_switched() -> bool:
            h = health()
            after[h["process"]] = h["rules"]["hash"]
            return set(after) == set(seen) and not (set(after.values()) & old)

        wait_for(all_switched, 20)
        assert len(set(after.values())) == 1
    finally:
        process.terminate()
        process.wait(timeout=10)


async def test_sighup_checks_at_once_without_waiting_for_the_interval(reloader: Reloader) -> None:
    import asyncio
    import os
    import signal

    from cds_service.engine.reload import watching

    before = reloader.engine.ruleset
    edit(
        reloader.rules_dir / "max-dose.yaml",
        SUMMARY,
        "Anakinra {order.daily_dose} mg/day exceeds the maximum of {param.max_daily_dose} mg/day",
    )
    async with watching(reloader, interval_seconds=3600):
        os.kill(os.getpid(), signal.SIGHUP)
        for _ in range(100):
            if reloader.engine.ruleset is not before:
                break
            await asyncio.sleep(0.02)
    assert reloader.engine.ruleset is not before
