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
from cds_service.engine.ruleset import load_ruleset
from cds_service.reload import Reloader
from tests.engine.rulesdir import copy_rules, edit
from tests.processes import START_SECONDS, start_server, stop_group

# Each check compiles a whole ruleset and runs every case; some tests serve over HTTP or as processes.
pytestmark = pytest.mark.integration

SUMMARY = "Anakinra {order.daily_dose} mg/day is above the {param.max_daily_dose} mg/day maximum"
# The author's change: the over-the-maximum card (the first variant: above 2400 mg/day with a weight)
# becomes critical. Every case expecting a warning from max-dose above 2400 mg/day then fails until the
# cases say critical too.
WARNING_CARD = (
    '    card:\n      indicator: warning\n      summary: "Anakinra {order.daily_dose} mg/day is above'
)
CRITICAL_CARD = WARNING_CARD.replace("warning", "critical")
CASES_EXPECTING_WARNING = [
    (
        "max-dose.cases.yaml",
        '- rule: max-dose\n          indicator: warning\n          summary_contains: ["3000',
    ),
    # The case where max-dose's card suppresses the build card (issue 15): the same variant.
    (
        "max-dose.cases.yaml",
        (
            '- rule: max-dose\n          indicator: warning\n          summary_contains: ["3000 mg/day", "2400 mg/day"]'
            "\n      no_cards: [infusion-build]"
        ),
    ),
    ("infusion-build.cases.yaml", "- rule: max-dose\n          indicator: warning\n      facts:"),
]


def make_max_dose_critical(rules: Path) -> None:
    edit(rules / "max-dose.yaml", WARNING_CARD, CRITICAL_CARD)


def expect_critical_in_the_cases(rules: Path) -> None:
    for name, expectation in CASES_EXPECTING_WARNING:
        edit(rules / name, expectation, expectation.replace("warning", "critical"))


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
    from cds_service.pipeline import derive_facts

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
    derived = derive_facts(old, service, facts)
    evaluation = reloader.engine.evaluate(service, derived, old)  # a request that began before the swap
    (outcome,) = [o for o in evaluation.outcomes if o.rule.id == "max-dose"]
    assert outcome.rule is old.rules["max-dose"]
    assert "exceeds the maximum" not in outcome.rule.spec.card.summary


async def test_fixing_only_the_cases_of_a_rejected_change_serves_it(reloader: Reloader) -> None:
    """The author's workflow: the rule change fails its cases and is rejected; the author agrees with
    the rule and updates the cases, touching nothing else; the change serves."""
    before = reloader.engine.ruleset
    make_max_dose_critical(reloader.rules_dir)
    rejected = await reloader.check()
    assert rejected.outcome == "rejected"
    assert any("FAIL max-dose.cases.yaml" in e for e in rejected.errors), rejected.errors
    assert any("FAIL infusion-build.cases.yaml" in e for e in rejected.errors), rejected.errors
    assert reloader.engine.ruleset is before
    expect_critical_in_the_cases(reloader.rules_dir)
    result = await reloader.check()
    assert result.outcome == "reloaded", result.errors
    served = reloader.engine.ruleset
    assert served is not before and served.hash == result.hash == rejected.hash != before.hash
    assert served.rules["max-dose"].spec.variants[0].card.indicator == "critical"
    assert reloader.state.rejected_hash is None and reloader.state.rejected_errors == ()


async def test_putting_a_broken_file_back_clears_the_rejection(reloader: Reloader) -> None:
    before = reloader.engine.ruleset
    path = reloader.rules_dir / "max-dose.yaml"
    original = path.read_bytes()
    make_max_dose_critical(reloader.rules_dir)
    assert (await reloader.check()).outcome == "rejected"
    assert reloader.state.rejected_hash is not None
    path.write_bytes(original)
    result = await reloader.check()
    assert result.outcome == "unchanged" and result.hash == before.hash
    assert reloader.engine.ruleset is before
    assert reloader.state.rejected_hash is None and reloader.state.rejected_errors == ()


async def test_putting_back_the_serving_content_after_a_reload_clears_the_rejection(
    reloader: Reloader,
) -> None:
    make_max_dose_critical(reloader.rules_dir)
    expect_critical_in_the_cases(reloader.rules_dir)
    assert (await reloader.check()).outcome == "reloaded"
    serving = reloader.engine.ruleset
    path = reloader.rules_dir / "max-dose.yaml"
    good = path.read_bytes()
    edit(path, "fact: order.daily_dose", "fact: order.daily_dos")
    assert (await reloader.check()).outcome == "rejected"
    path.write_bytes(good)
    assert (await reloader.check()).outcome == "unchanged"
    assert reloader.engine.ruleset is serving and reloader.state.rejected_hash is None


async def test_a_rejected_change_is_tried_once_per_content(
    reloader: Reloader, monkeypatch: pytest.MonkeyPatch
) -> None:
    import cds_service.reload as reload_module

    loads: list[Path] = []
    real = reload_module.load_cases

    def counted(rules_dir: Path) -> Any:
        loads.append(rules_dir)
        return real(rules_dir)

    monkeypatch.setattr(reload_module, "load_cases", counted)
    make_max_dose_critical(reloader.rules_dir)
    first = await reloader.check()
    again = await reloader.check()
    assert first.outcome == again.outcome == "rejected" and again.errors == first.errors
    assert len(loads) == 1  # the same content is not run again at every poll
    retried = await reloader.check(retry=True)  # what SIGHUP asks for
    assert retried.outcome == "rejected" and len(loads) == 2


async def test_a_case_change_alone_is_checked_against_the_serving_rules(reloader: Reloader) -> None:
    before = reloader.engine.ruleset
    expect_critical_in_the_cases(reloader.rules_dir)  # cases ahead of the rules: they fail
    result = await reloader.check()
    assert result.outcome == "rejected" and result.hash == before.hash
    assert any("FAIL max-dose.cases.yaml" in e for e in result.errors), result.errors
    make_max_dose_critical(reloader.rules_dir)  # the rule change arrives: both agree
    assert (await reloader.check()).outcome == "reloaded"
    assert reloader.state.rejected_hash is None


async def test_a_fixture_the_cases_read_is_part_of_the_change(tmp_path: Path) -> None:
    """A case fails because its patient file was edited; putting the file back is a change too."""
    import shutil

    from tests.conftest import ROOT, RULES

    rules = tmp_path / "rules"
    shutil.copytree(RULES, rules)
    shutil.copytree(ROOT / "fhir_fixtures", tmp_path / "fhir_fixtures")
    durable = DurableRules()
    engine = RuleEngine(load_ruleset(rules, durable), durable)
    reloader = Reloader(engine, rules, release_after_seconds=0)
    try:
        patient = tmp_path / "fhir_fixtures" / "patients" / "mas-adult-female.json"
        original = patient.read_bytes()
        assert b'"value": 67.9' in original
        patient.write_bytes(original.replace(b'"value": 67.9', b'"value": 97.9'))
        result = await reloader.check()
        assert result.outcome == "rejected"
        assert any("67.9" in e for e in result.errors), result.errors
        patient.write_bytes(original)
        assert (await reloader.check()).outcome == "unchanged"
        assert reloader.state.rejected_hash is None
    finally:
        engine.close()


def _now() -> Any:
    from datetime import UTC, datetime

    return datetime(2026, 11, 23, tzinfo=UTC)


# A reload compiles the rules and runs every case: seconds alone, much longer on a loaded CI machine.
RELOAD_SECONDS = 60


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
    process = start_server(
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
        wait_for(answering, START_SECONDS)
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
        stop_group(process)


def test_the_authors_workflow_seen_on_healthz(tmp_path: Path, service_with: Any) -> None:
    """Break a rule so that its cases fail, fix only the cases, break it again and put the file back:
    /healthz follows each step."""
    rules = copy_rules(tmp_path)
    http: httpx.Client = service_with(rules_dir=rules, reload_interval_seconds=0.1)

    def rules_health() -> dict[str, Any]:
        health: dict[str, Any] = http.get("/healthz").json()["rules"]
        return health

    first = rules_health()
    make_max_dose_critical(rules)
    wait_for(lambda: "rejected" in rules_health(), RELOAD_SECONDS)
    assert any("FAIL max-dose.cases.yaml" in e for e in rules_health()["rejected"]["errors"])
    assert rules_health()["hash"] == first["hash"]

    expect_critical_in_the_cases(rules)
    wait_for(lambda: rules_health()["hash"] != first["hash"], RELOAD_SECONDS)
    serving = rules_health()
    assert "rejected" not in serving
    path = rules / "max-dose.yaml"
    good = path.read_bytes()

    edit(path, "fact: order.daily_dose", "fact: order.daily_dos")
    wait_for(lambda: "rejected" in rules_health(), RELOAD_SECONDS)
    path.write_bytes(good)
    wait_for(lambda: "rejected" not in rules_health(), RELOAD_SECONDS)
    assert rules_health() == serving


async def test_sighup_retries_a_change_already_rejected(
    reloader: Reloader, monkeypatch: pytest.MonkeyPatch
) -> None:
    import asyncio
    import os
    import signal

    import cds_service.reload as reload_module
    from cds_service.reload import watching

    make_max_dose_critical(reloader.rules_dir)
    assert (await reloader.check()).outcome == "rejected"
    retried = asyncio.Event()
    real = reload_module.load_cases

    def counted(rules_dir: Path) -> Any:
        retried.set()
        return real(rules_dir)

    monkeypatch.setattr(reload_module, "load_cases", counted)
    async with watching(reloader, interval_seconds=3600):
        os.kill(os.getpid(), signal.SIGHUP)
        await asyncio.wait_for(retried.wait(), timeout=10)


async def test_sighup_checks_at_once_without_waiting_for_the_interval(reloader: Reloader) -> None:
    import asyncio
    import os
    import signal

    from cds_service.reload import watching

    before = reloader.engine.ruleset
    edit(
        reloader.rules_dir / "max-dose.yaml",
        SUMMARY,
        "Anakinra {order.daily_dose} mg/day exceeds the maximum of {param.max_daily_dose} mg/day",
    )
    async with watching(reloader, interval_seconds=3600):
        os.kill(os.getpid(), signal.SIGHUP)
        # The interval is an hour, so only the signal can reload within the bound; the bound is generous
        # because a reload runs every rule case.
        deadline = time.monotonic() + RELOAD_SECONDS
        while reloader.engine.ruleset is before and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
    assert reloader.engine.ruleset is not before
