"""The playground's pieces on their own: card Markdown, data times, order summaries, composed requests."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson
import pytest

from cds_service.data.compose import bundle_resources, hook_request
from cds_service.pages import fixtures
from cds_service.pages.markdown import to_html
from cds_service.pages.orders import action_view, compare, describe
from cds_service.protocol.discovery import load_services
from tests.conftest import RULES

FIXTURES = RULES.parent / "fhir_fixtures"


def test_markdown_keeps_raw_html_as_text_and_opens_links_in_a_new_tab() -> None:
    html = to_html(
        "**bold** <script>alert(1)</script> <img src=x onerror=alert(1)> [ref](https://example.org/a)"
    )
    assert "<strong>bold</strong>" in html
    assert "<script>" not in html and "<img" not in html
    assert "&lt;script&gt;" in html
    assert '<a href="https://example.org/a" target="_blank" rel="noopener noreferrer">ref</a>' in html


def test_markdown_drops_script_urls_and_images() -> None:
    html = to_html("[x](javascript:alert(1)) ![pixel](https://tracker.example/p.png)")
    assert 'href="javascript' not in html
    assert "<img" not in html
    assert to_html(None) == "" and to_html("") == ""


def test_markdown_renders_lists_and_tables() -> None:
    html = to_html("- a\n- b\n\n| x | y |\n|---|---|\n| 1 | 2 |\n")
    assert "<ul>" in html and "<li>a</li>" in html
    assert "<table>" in html and "<td>1</td>" in html


def test_default_as_of_is_an_hour_after_the_newest_data_in_any_zone() -> None:
    document = {
        "entry": [
            {"resource": {"effectiveDateTime": "2026-11-23T09:00:00+01:00"}},  # 08:00Z, the newest
            {"resource": {"effectivePeriod": {"start": "2026-11-22T10:00:00Z"}}},
            {"resource": {"authoredOn": "2026-11-21"}},
            {"resource": {"birthDate": "2026-12-31"}},  # not a data time
        ]
    }
    assert fixtures.default_as_of(document) == datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
    # Seconds are rounded up, so the data are still before "now".
    assert fixtures.default_as_of({"issued": "2026-11-23T08:00:30Z"}) == datetime(
        2026, 11, 23, 9, 1, tzinfo=UTC
    )
    now = datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert fixtures.default_as_of({"effectiveDateTime": "garbage"}, now=now) == datetime(
        2030, 1, 2, 3, 4, tzinfo=UTC
    )


def test_every_order_preset_is_a_labelled_draft_medication_request() -> None:
    presets = fixtures.order_presets(FIXTURES)
    files = sorted(p.stem for p in (FIXTURES / "orders").glob("*.json"))
    assert sorted(p.key for p in presets) == files
    for preset in presets:
        assert preset.label
        assert preset.resource["resourceType"] == "MedicationRequest"
        assert preset.resource["status"] == "draft" and preset.resource["intent"] == "order"
        assert "subject" not in preset.resource  # filled in with the chosen patient


def test_a_bag_build_reads_as_medication_bag_dose_rate_timing_and_route() -> None:
    (bag,) = [p for p in fixtures.order_presets(FIXTURES) if p.key == "iv-bag-800-mg-250-ml-q8h"]
    assert dict(describe(bag.resource)) == {
        "medication": "anakinra 800 mg in sodium chloride 0.9% 250 mL",
        "bag": "800 mg in 250 mL",
        "dose per administration": "800 mg",
        "rate": "31.25 mL/h",
        "timing": "every 8 h",
        "route": "Intravenous route",
        "status": "draft / order",
    }


def test_create_and_delete_actions_show_one_side_only() -> None:
    draft = {"resourceType": "MedicationRequest", "id": "d1", "status": "draft", "intent": "order"}
    lab = {"resourceType": "ServiceRequest", "id": "s1", "status": "draft", "code": {"text": "Ferritin"}}
    created = action_view({"type": "create", "description": "Order it", "resource": lab}, {})
    assert created["targets"] == ["ServiceRequest"]
    assert {r["label"]: (r["before"], r["after"]) for r in created["rows"]}["what"] == (None, "Ferritin")
    deleted = action_view(
        {"type": "delete", "description": "Cancel", "resourceId": ["MedicationRequest/d1"]},
        {"MedicationRequest/d1": draft},
    )
    assert deleted["targets"] == ["MedicationRequest/d1"]
    assert all(r["after"] is None and r["before"] for r in deleted["rows"])
    assert compare(None, None) == []


@pytest.mark.parametrize("service_id", ["anakinra-order-sign", "anakinra-order-select", "mas-patient-view"])
def test_hook_request_fills_every_prefetch_key_from_the_bundle(service_id: str) -> None:
    service = load_services(RULES).get(service_id)
    assert service is not None
    resources = bundle_resources(orjson.loads((FIXTURES / "patients" / "mas-adult-female.json").read_bytes()))
    order = {"resourceType": "MedicationRequest", "id": "x", "status": "draft", "intent": "order"}
    body = hook_request(service, resources, order, "hook-1", "Practitioner/p")
    assert body["hook"] == service.hook and body["context"]["patientId"] == "mas-f1"
    assert body["prefetch"]["patient"]["id"] == "mas-f1"
    labs = body["prefetch"]["labs"]
    assert labs["total"] == len(labs["entry"]) > 0
    assert all(e["resource"]["resourceType"] == "Observation" for e in labs["entry"])
    if service.hook == "patient-view":
        assert "draftOrders" not in body["context"]
    else:
        (entry,) = body["context"]["draftOrders"]["entry"]
        assert entry["resource"]["subject"] == {"reference": "Patient/mas-f1"}
    if service.hook == "order-select":
        assert body["context"]["selections"] == ["MedicationRequest/x"]
