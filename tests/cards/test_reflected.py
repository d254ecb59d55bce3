"""EHR data reflected into cards, over real HTTP (issue 16): units, ids, display texts and server
messages full of Markdown and HTML reach the clinician as text, never as links, images or markup."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator

import httpx
import pytest
from markdown_it import MarkdownIt

EVIL = "[click](https://evil.example/a) <img src=x onerror=alert(1)> **b** www.evil.example"
# An EHR that renders Markdown with raw HTML allowed: the most a hostile string could get from it.
PERMISSIVE = MarkdownIt("commonmark", {"html": True}).enable(["table", "strikethrough"])
# What the rule files' own Markdown produces; anything else came from the data.
OUR_ELEMENTS = {"p", "strong", "em", "ul", "ol", "li", "code", "br"}


@pytest.fixture
def playground(service_with: Callable[..., httpx.Client]) -> Iterator[httpx.Client]:
    with service_with(playground=True) as client:
        yield client


def _poisoned(client: httpx.Client, patient: str, service: str) -> str:
    """A fixture patient's request with every unit, id and text poisoned."""
    params = {"patient": patient, "service": service, "order": "iv-2400-mg-day"}
    text = json.dumps(client.get("/playground/api/request", params=params).json()["request"])
    for key in ("unit", "id", "text", "display"):
        text = re.sub(
            rf'"{key}": "([^"]*)"',
            lambda m, key=key: f'"{key}": ' + json.dumps(m.group(1) + " " + EVIL),
            text,
        )
    request = json.loads(text)
    # And a server message in the prefetch, which the incomplete-data card quotes.
    labs = request["prefetch"].get("labs") or {"resourceType": "Bundle", "type": "searchset", "entry": []}
    labs.setdefault("entry", []).append(
        {
            "resource": {
                "resourceType": "OperationOutcome",
                "issue": [{"severity": "warning", "code": "incomplete", "diagnostics": EVIL}],
            }
        }
    )
    labs["entry"].append({"resource": {"resourceType": "Basic<script>x</script>", "id": "b"}})
    request["prefetch"]["labs"] = labs
    return json.dumps(request)


@pytest.mark.parametrize("patient", ["renal-aki-rise", "hlh-adult-fulfilled", "ferritin-escalation"])
def test_no_ehr_markup_survives_into_a_card(playground: httpx.Client, patient: str) -> None:
    reached = 0
    for service in ("anakinra-order-sign", "mas-patient-view"):
        response = playground.post(
            f"/cds-services/{service}",
            content=_poisoned(playground, patient, service),
            headers={"content-type": "application/json"},
        )
        assert response.status_code == 200, response.text
        for card in response.json()["cards"]:
            detail = card.get("detail") or ""
            reached += "evil" in detail
            html = PERMISSIVE.render(detail)
            elements = set(re.findall(r"<([a-z0-9]+)", html))
            assert elements <= OUR_ELEMENTS, (elements, detail)
            assert "href" not in html and "src=" not in html.replace("src=x", "")
            for text in [card["summary"], *(s["label"] for s in card.get("suggestions", []))]:
                assert not re.search(r"[\x00-\x1f]", text), text
    assert reached, "no poisoned value reached a card: the test would prove nothing"
