"""A rule file broken while the service is under load does not disturb serving.

A client posts order-sign calls back to back while the rule files change under the running service
(hot reload every 0.1 s): first a half-written file (invalid YAML), then a change that fails its test
cases, then a valid change. Every answer is 200 and carries the old ruleset's hash until the valid
change lands, then the new one's; never a broken ruleset's, never an error.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any, Self

import httpx

from cds_service.cards.render import PROVENANCE_KEY
from cds_service.engine.ruleset import ruleset_hash
from tests.engine.rulesdir import copy_rules
from tests.engine.test_reload import wait_for
from tests.security.test_http import dosed_order_sign
from tests.test_app import ORDER_SIGN

OLD_SUMMARY = "is above the {param.max_daily_dose} mg/day maximum"
NEW_SUMMARY = "exceeds the maximum of {param.max_daily_dose} mg/day"
OLD_QUOTED, NEW_QUOTED = "is above the 2400 mg/day maximum", "exceeds the maximum of 2400 mg/day"
ANSWERS_PER_PHASE = 3


class Load:
    """One client posting the same order-sign call back to back, recording every answer."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.answers: list[tuple[int, set[str], str]] = []  # (status, ruleset hashes, max-dose summary)
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="order-sign-load", daemon=True)

    def _run(self) -> None:
        body = dosed_order_sign()
        with httpx.Client(base_url=self.base_url, timeout=30) as http:
            while not self._stop.is_set():
                try:
                    response = http.post(ORDER_SIGN, json=body)
                except httpx.HTTPError as exc:
                    self.errors.append(repr(exc))
                    continue
                if response.status_code != 200:
                    self.answers.append((response.status_code, set(), response.text))
                    continue
                cards = response.json()["cards"]
                hashes = {card["extension"][PROVENANCE_KEY]["rulesetHash"] for card in cards}
                summary = next(
                    card["summary"]
                    for card in cards
                    if card["extension"][PROVENANCE_KEY]["ruleId"] == "max-dose"
                )
                self.answers.append((200, hashes, summary))

    def more_answers(self, count: int = ANSWERS_PER_PHASE) -> None:
        """Wait until `count` more calls have been answered: the load goes on through each phase."""
        target = len(self.answers) + count
        wait_for(lambda: len(self.answers) >= target, 30)

    def __enter__(self) -> Self:
        self._thread.start()
        self.more_answers()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join(30)


def test_a_rule_file_broken_under_load_never_disturbs_serving(tmp_path: Path, service_with: Any) -> None:
    rules = copy_rules(tmp_path)
    http: httpx.Client = service_with(rules_dir=rules, reload_interval_seconds=0.1)
    old = http.get("/healthz").json()["rules"]["hash"]
    path = rules / "max-dose.yaml"
    good = path.read_text(encoding="utf-8")
    assert OLD_SUMMARY in good and "    value: 2400\n    unit: mg/d" in good

    def rejected() -> bool:
        rules_health = http.get("/healthz").json()["rules"]
        return rules_health.get("rejected", {}).get("hash") == ruleset_hash(rules)

    phases: dict[str, int] = {}
    with Load(str(http.base_url)) as load:
        # A half-written file: invalid YAML.
        path.write_text(good[: good.index(OLD_SUMMARY)] + '"\n  detail: [unclosed\n', encoding="utf-8")
        wait_for(rejected)
        load.more_answers()
        phases["invalid-yaml"] = len(load.answers)
        # A change that loads but fails its own test cases.
        path.write_text(good.replace("value: 2400\n    unit: mg/d", "value: 3500\n    unit: mg/d"), "utf-8")
        wait_for(rejected)
        load.more_answers()
        phases["failing-case"] = len(load.answers)
        # A valid change, and the cases that quote the old wording updated with it.
        for cases in rules.glob("*.cases.yaml"):
            text = cases.read_text(encoding="utf-8")
            cases.write_text(text.replace(OLD_QUOTED, NEW_QUOTED), encoding="utf-8")
        path.write_text(good.replace(OLD_SUMMARY, NEW_SUMMARY), encoding="utf-8")
        new = ruleset_hash(rules)
        wait_for(lambda: http.get("/healthz").json()["rules"]["hash"] == new)
        load.more_answers()

    assert load.errors == []
    assert [status for status, _, _ in load.answers] == [200] * len(load.answers), load.answers
    served = [hashes for _, hashes, _ in load.answers]
    assert all(hashes in ({old}, {new}) for hashes in served), "an answer mixed rulesets or used a broken one"
    switched = served.index({new})
    # Old until the valid change landed (through both broken edits), new from then on.
    assert switched >= phases["failing-case"]
    assert served[:switched] == [{old}] * switched
    assert served[switched:] == [{new}] * (len(served) - switched)
    # The content changed with the hash: the same card, in the new wording.
    summaries = [summary for _, _, summary in load.answers]
    assert all(OLD_QUOTED in s for s in summaries[:switched])
    assert all(NEW_QUOTED in s for s in summaries[switched:])
