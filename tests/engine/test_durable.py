"""The durable-rules hazards measured on this project, each shown on the raw engine and designed out."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import durable_rules_engine as raw
import pytest

from cds_service.engine import durable as durable_module
from cds_service.engine.durable import CompiledRuleset, DurableRules, EngineError

RULES = {
    "high|T": {"$gt": {"f0": 2400}},
    "high|F": {"$lte": {"f0": 2400}},
    "weightless|T": {"$nex": {"f1": 1}},
}


@pytest.fixture
def engine() -> Iterator[tuple[DurableRules, CompiledRuleset]]:
    rules = DurableRules()
    compiled = rules.compile(RULES)
    yield rules, compiled
    rules.release(compiled)
    rules.close()


def test_evaluate_returns_every_rule_the_fact_satisfies(engine: tuple[DurableRules, CompiledRuleset]) -> None:
    rules, compiled = engine
    assert rules.evaluate(compiled, {"f0": 3000}) == {"high|T", "weightless|T"}
    assert rules.evaluate(compiled, {"f0": 100, "f1": 70}) == {"high|F"}
    assert rules.evaluate(compiled, {"f1": 70}) == frozenset()


def test_raw_engine_reports_a_fact_that_matches_no_rule_but_ours_answers_empty() -> None:
    handle = raw.create_ruleset("hazard_unmatched", json.dumps({"r": {"all": [{"m": {"x": 1}}]}}))
    try:
        result = raw.assert_fact(handle, json.dumps({"sid": "1", "id": "a", "x": 2}))
        # 1 is "message not handled": durable.engine.Ruleset turns it into MessageNotHandledException.
        assert result[0] == 1
    finally:
        raw.delete_ruleset(handle)
    rules = DurableRules()
    compiled = rules.compile({"r": {"x": 1}})
    try:
        assert rules.evaluate(compiled, {"x": 2}) == frozenset()
    finally:
        rules.close()


def test_raw_engine_refuses_an_identical_fact_twice_in_a_session_but_ours_never_reuses_one(
    engine: tuple[DurableRules, CompiledRuleset],
) -> None:
    handle = raw.create_ruleset("hazard_duplicate", json.dumps({"r": {"all": [{"m": {"x": 1}}]}}))
    try:
        fact = json.dumps({"sid": "1", "id": "a", "x": 1})
        assert raw.assert_fact(handle, fact)[0] == 0
        # 2 is "message observed": durable.engine.Ruleset turns it into MessageObservedException.
        assert raw.assert_fact(handle, fact)[0] == 2
    finally:
        raw.delete_ruleset(handle)
    rules, compiled = engine
    same = {"f0": 3000, "f1": 60}
    assert [rules.evaluate(compiled, same) for _ in range(3)] == [{"high|T"}] * 3


def test_more_than_1024_evaluations_do_not_exhaust_sessions(
    engine: tuple[DurableRules, CompiledRuleset],
) -> None:
    rules, compiled = engine
    for value in range(2500):
        assert rules.evaluate(compiled, {"f0": value, "f1": 1}) == (
            {"high|T"} if value > 2400 else {"high|F"}
        )


def test_state_is_deleted_even_when_an_evaluation_fails(
    engine: tuple[DurableRules, CompiledRuleset], monkeypatch: pytest.MonkeyPatch
) -> None:
    rules, compiled = engine

    class Failing:
        def __getattr__(self, name: str) -> Any:
            return getattr(raw, name)

        def complete_and_start_action(self, *args: Any) -> Any:
            raise RuntimeError("injected failure while draining actions")

    monkeypatch.setattr(durable_module, "_engine", Failing())
    for _ in range(1100):
        with pytest.raises(EngineError, match="injected"):
            rules.evaluate(compiled, {"f0": 3000})
    monkeypatch.undo()
    # Had the 1,100 failed sessions kept their state, the engine would now raise MemoryError.
    assert rules.evaluate(compiled, {"f0": 3000, "f1": 1}) == {"high|T"}


def test_actions_are_complete_when_evaluate_returns_and_no_background_thread_runs(
    engine: tuple[DurableRules, CompiledRuleset],
) -> None:
    before = {t.ident for t in threading.enumerate()}
    rules, compiled = engine
    assert rules.evaluate(compiled, {"f0": 3000}) == {"high|T", "weightless|T"}
    time.sleep(0.7)  # the default Host would dispatch deferred actions on timer threads by now
    new = [t for t in threading.enumerate() if t.ident not in before]
    assert all(t.name.startswith("rules-engine") for t in new), [t.name for t in new]


def test_many_threads_posting_at_once_are_serialised_onto_one_engine_thread(
    engine: tuple[DurableRules, CompiledRuleset],
) -> None:
    rules, compiled = engine
    errors: list[BaseException] = []
    idents: set[int | None] = set()

    def post(offset: int) -> None:
        try:
            for value in range(offset, offset + 400):
                expected = {"high|T"} if value > 2400 else {"high|F"}
                assert rules.evaluate(compiled, {"f0": value, "f1": 1}) == expected
                idents.add(rules.thread_ident)
        except BaseException as exc:  # noqa: BLE001 - collected and re-raised in the main thread
            errors.append(exc)

    threads = [threading.Thread(target=post, args=(i * 1000,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert len(idents) == 1 and threading.get_ident() not in idents


async def test_the_event_loop_keeps_running_while_rules_evaluate(
    engine: tuple[DurableRules, CompiledRuleset], monkeypatch: pytest.MonkeyPatch
) -> None:
    rules, compiled = engine
    slow = rules._evaluate

    def slow_evaluate(ruleset: CompiledRuleset, fact: Any) -> frozenset[str]:
        time.sleep(0.3)
        return slow(ruleset, fact)

    monkeypatch.setattr(rules, "_evaluate", slow_evaluate)
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    task = asyncio.create_task(ticker())
    assert await rules.evaluate_async(compiled, {"f0": 3000, "f1": 1}) == {"high|T"}
    task.cancel()
    assert ticks >= 10


def test_a_released_ruleset_is_refused_not_used(engine: tuple[DurableRules, CompiledRuleset]) -> None:
    rules, _ = engine
    other = rules.compile(RULES)
    rules.release(other)
    with pytest.raises(EngineError, match="released"):
        rules.evaluate(other, {"f0": 1})


def test_reserved_rule_name_is_refused() -> None:
    rules = DurableRules()
    try:
        with pytest.raises(EngineError):
            rules.compile({durable_module.CATCH_ALL: {"x": 1}})
    finally:
        rules.close()


def test_action_names_with_json_escapes_come_back_as_compiled() -> None:
    # Only a frame's key is read (not the matched fact): names needing JSON escapes must survive that.
    names = {'quote"d|T': {"$gt": {"f0": 1}}, "back\\slash|T": {"$gt": {"f0": 1}}, "dose ≥ max|T": {"$gt": {"f0": 1}}}
    rules = DurableRules()
    compiled = rules.compile(names)
    try:
        assert rules.evaluate(compiled, {"f0": 2}) == set(names)
    finally:
        rules.release(compiled)
        rules.close()


@pytest.mark.parametrize("frame", ["", "[]", '{"unterminated', '{"name" 1}', "{1: 2}"])
def test_an_action_frame_that_is_not_name_then_fact_is_an_engine_error(frame: str) -> None:
    with pytest.raises(EngineError, match="action frame"):
        durable_module._action_name(frame)
