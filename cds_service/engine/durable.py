"""The only module that touches durable-rules, and the hazards it designs out.

durable-rules 2.0.28 (unmaintained since 2020) was measured here to:
- segfault when two threads use it (its default `Host` starts timer threads that dispatch actions in the
  background): we never create a `Host`; we call the C extension directly, and only from one thread
  that this module owns, so at most one evaluation runs at a time per process;
- raise when a fact matches no rule: every compiled ruleset has a catch-all rule;
- raise on two identical facts in one session: every evaluation gets its own session id and fact id;
- run a batch assert's actions later on a background thread: we assert exactly one fact and drain its
  actions synchronously before returning;
- raise MemoryError past 1024 live sessions: the session's state is deleted in `finally`;
- block the event loop while it runs: `evaluate` runs on the engine thread; the caller awaits it;
- refuse a number written with an exponent but no fraction ("1e-09", Python's repr of 1e-9) or a
  non-finite one ("Infinity"), failing the whole request: facts are written as `_fact_json` says.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import math
import threading
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import durable_rules_engine as _engine

# Present on every fact we assert and required by every rule, so that rules never match the
# session-state fact durable-rules keeps beside ours.
MARKER = "cdsfact"
CATCH_ALL = "$seen"
# assert_fact's status codes: 0 handled, 1 matched no rule, 2 already seen in this session.
_OBSERVED = 2


class EngineError(Exception):
    """durable-rules failed or behaved unexpectedly; the request cannot be answered by the rules."""


class CompiledRuleset:
    """A ruleset loaded into the C engine. Only DurableRules creates and releases these."""

    def __init__(self, handle: int, name: str, actions: frozenset[str]) -> None:
        self.handle = handle
        self.name = name
        self.actions = actions
        self.released = False


class DurableRules:
    """One engine thread per process; all calls into durable-rules go through it."""

    def __init__(self) -> None:
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="rules-engine")
        self._ids = itertools.count(1)
        # Tests use this to check that the event loop keeps running while rules are evaluated.
        self.thread_ident: int | None = None

    def compile(self, rules: Mapping[str, dict[str, Any]]) -> CompiledRuleset:
        """rules: action name -> durable-rules JSON expression over one fact."""
        if CATCH_ALL in rules:
            raise EngineError(f"{CATCH_ALL!r} is reserved")
        definition: dict[str, Any] = {
            name: {"all": [{"m": {"$and": [{MARKER: 1}, expression]}}]} for name, expression in rules.items()
        }
        definition[CATCH_ALL] = {"all": [{"m": {MARKER: 1}}]}
        name = f"ruleset{next(self._ids)}"
        text = json.dumps(definition, ensure_ascii=False)
        handle = self._executor.submit(_engine.create_ruleset, name, text).result()
        return CompiledRuleset(handle, name, frozenset(rules))

    def release(self, ruleset: CompiledRuleset) -> None:
        if not ruleset.released:
            ruleset.released = True
            self._executor.submit(_engine.delete_ruleset, ruleset.handle).result()

    def evaluate(self, ruleset: CompiledRuleset, fact: Mapping[str, Any]) -> frozenset[str]:
        """The names of the rules the fact satisfies. Blocks; use `evaluate_async` on an event loop."""
        return self._executor.submit(self._evaluate, ruleset, fact).result()

    async def evaluate_async(self, ruleset: CompiledRuleset, fact: Mapping[str, Any]) -> frozenset[str]:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self._evaluate, ruleset, fact)

    def close(self) -> None:
        self._executor.shutdown(wait=True)

    def _evaluate(self, ruleset: CompiledRuleset, fact: Mapping[str, Any]) -> frozenset[str]:
        self.thread_ident = threading.get_ident()
        if ruleset.released:
            raise EngineError("the ruleset was released (reloaded) before this evaluation")
        number = next(self._ids)
        sid = f"s{number}"
        message = {**fact, "sid": sid, "id": f"f{number}", MARKER: 1}
        fired: set[str] = set()
        try:
            result = _engine.assert_fact(ruleset.handle, _fact_json(message))
            if result[0] == _OBSERVED:
                raise EngineError("durable-rules saw this fact before in the same session")
            state_handle = result[1]
            action = _engine.start_action_for_state(ruleset.handle, state_handle)
            frame = action[1] if action else None
            while frame:
                # A rule with OR branches fires once per satisfied branch; we only need its name.
                fired.add(_action_name(frame))
                frame = _engine.complete_and_start_action(ruleset.handle, state_handle)
        except EngineError:
            raise
        except Exception as exc:  # the C extension raises bare Exceptions with its error codes
            raise EngineError(f"durable-rules failed: {exc}") from exc
        finally:
            _delete_state(ruleset.handle, sid)
        if CATCH_ALL not in fired:
            raise EngineError("durable-rules did not see the fact (the catch-all rule did not run)")
        fired.discard(CATCH_ALL)
        return frozenset(fired)


_JSON = json.JSONDecoder()


def _action_name(frame: str) -> str:
    """The action an action frame is for: {"<name>": {"m": <the matched fact>}}.

    Only the key is read, as durable-rules' own dispatcher reads only the first key: parsing the whole
    frame (the matched fact, every field of the request) cost 0.6 ms of a 1 ms evaluation on W1."""
    try:
        name, end = _JSON.raw_decode(frame, 1)
    except (ValueError, IndexError):
        name, end = None, 0
    if not (frame.startswith("{") and isinstance(name, str) and frame[end : end + 1] == ":"):
        raise EngineError(f"durable-rules returned an action frame we cannot read: {frame[:80]!r}")
    return name


def _fact_json(fact: Mapping[str, Any]) -> str:
    """The flat fact as JSON durable-rules' parser reads: "1.0e-09", never "1e-09". A value that is not
    finite is left out, as a missing fact is, so the rules reading it cannot evaluate (NaN and inf are
    no measurement)."""
    parts = []
    for key, value in fact.items():
        if isinstance(value, float):
            if not math.isfinite(value):
                continue
            text = repr(value)
            if "e" in text and "." not in text:
                mantissa, _, exponent = text.partition("e")
                text = f"{mantissa}.0e{exponent}"
        else:
            text = json.dumps(value, ensure_ascii=False)
        parts.append(f"{json.dumps(key, ensure_ascii=False)}:{text}")
    return "{" + ",".join(parts) + "}"


def _delete_state(handle: int, sid: str) -> None:
    try:
        _engine.delete_state(handle, sid)
    except Exception:  # noqa: BLE001, S110 - a session that never started has no state to free
        pass
