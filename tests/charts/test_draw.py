"""Payload -> SVG: one line per analyte through every result, higher values higher up, bounds marked."""

from __future__ import annotations

import copy
import itertools
import re
import warnings
from typing import Any

import pytest

from cds_service.charts import draw
from cds_service.charts.draw import draw_svg
from cds_service.charts.snapshot import Payload
from cds_service.pipeline import Runtime
from tests.charts.conftest import Ask, payload_of
from tests.charts.requests import draft_order, patient
from tests.charts.svg import has_group, markers, vertices


async def test_one_path_per_analyte_with_a_vertex_per_result(runtime: Runtime, ask: Ask) -> None:
    payload = payload_of(runtime, await ask("ferritin-rising", draft_order(400)))
    svg = draw_svg(payload)
    ferritin = vertices(svg, "series-ferritin")
    assert len(ferritin) == 4 == len(payload["panels"][0]["series"][0]["points"])
    assert markers(svg, "points-ferritin") == ferritin
    xs = [x for x, _ in ferritin]
    assert xs == sorted(xs) and len(set(xs)) == 4  # oldest on the left
    # 8200, 12000, 10500, 26000 ug/L: the higher the value, the smaller y.
    y = {value: y for value, (_, y) in zip((8200, 12000, 10500, 26000), ferritin, strict=True)}
    assert y[26000] < y[12000] < y[10500] < y[8200]
    assert len(vertices(svg, "series-platelets")) == 1
    assert len(vertices(svg, "series-creatinine")) == 1
    # No AST or ALT: no line, and the panel says so.
    assert not has_group(svg, "series-ast") and not has_group(svg, "series-alt")
    assert "no AST, ALT results in this period" in svg


async def test_a_censored_result_is_on_the_line_with_its_own_marker(runtime: Runtime, ask: Ask) -> None:
    svg = draw_svg(payload_of(runtime, await ask("ferritin-censored", draft_order(400))))
    line = vertices(svg, "series-ferritin")
    assert len(line) == 2
    # The exact 38500 gets a dot; the ">40000" an open triangle instead, both on the line.
    assert markers(svg, "points-ferritin") == line[:1]
    assert markers(svg, "censored-ferritin") == line[1:]
    assert "reported as a bound" in svg


async def test_dose_steps_are_one_step_line_and_the_draft_another(runtime: Runtime, ask: Ask) -> None:
    svg = draw_svg(payload_of(runtime, await ask("ferritin-escalation", draft_order(2400))))
    given = vertices(svg, "series-dose")
    # 400 then 1200 then 1200 mg/d, each from its start to the next: one path, two vertices per order.
    assert len(given) == 6
    assert given[1][0] == given[2][0] and given[1][1] > given[2][1]  # up from 400 to 1200 at 11-19 12:00
    assert given[3][1] == given[4][1]  # the renewal at the same dose is no step
    draft = vertices(svg, "series-dose-draft")
    assert len(draft) == 2 and draft[0][1] < given[-1][1]  # 2400 above 1200
    assert draft[0][0] == given[-1][0]  # the draft starts where the active order ends: now


async def test_the_drawing_is_deterministic_and_names_nobody(runtime: Runtime, ask: Ask) -> None:
    payload: Payload = payload_of(runtime, await ask("ferritin-escalation", draft_order(1200)))
    svg = draw_svg(payload)
    assert draw_svg(payload) == svg
    person = next(r for r in patient("ferritin-escalation") if r["resourceType"] == "Patient")
    identifying = [person["id"], person["birthDate"], *(n["family"] for n in person["name"])]
    assert not [text for text in identifying if text in svg]
    assert "<script" not in svg and "<dc:date>" not in svg
    assert payload["title"] in svg


async def test_an_order_without_a_known_end_is_a_start_not_a_line(runtime: Runtime, ask: Ask) -> None:
    finished = draft_order(800, "earlier") | {"status": "completed", "authoredOn": "2026-11-20T08:00:00Z"}
    answer = await ask(
        "ferritin-rising", draft_order(1200), resources=[*patient("ferritin-rising"), finished]
    )
    payload = payload_of(runtime, answer)
    assert [(s["dose"], s["end"], s["draft"]) for s in payload["dose"]["steps"]] == [
        (800.0, None, False),
        (1200.0, None, True),
    ]
    svg = draw_svg(payload)
    assert not has_group(svg, "series-dose")
    (start,) = markers(svg, "series-dose-unknown-end")
    (draft_start, _) = vertices(svg, "series-dose-draft")
    assert start[0] < draft_start[0] and start[1] > draft_start[1]  # earlier, and a lower dose


def _axes(panel: Payload) -> Any:
    """One panel drawn on its own axes, as draw_svg draws each: for its limits, labels and lines."""
    from matplotlib.figure import Figure

    ax = Figure().subplots()
    draw._panel(ax, panel, itertools.cycle(["#000000"]))
    return ax


def _series(analyte: str, *values: float) -> dict[str, Any]:
    points = [[f"2026-11-2{i}T06:00:00+00:00", v, None, None] for i, v in enumerate(values)]
    return {"analyte": analyte, "label": analyte, "points": points, "excluded": []}


def _panel(scale: str, unit: str, series: dict[str, Any], *lines: tuple[str, float]) -> Payload:
    thresholds = [{"label": label, "value": value, "source": "test"} for label, value in lines]
    return {"title": "t", "unit": unit, "scale": scale, "series": [series], "thresholds": thresholds}


@pytest.mark.parametrize("values", [(0.8,), (250.0, 251.0, 250.0)], ids=["one result", "a flat series"])
def test_a_linear_axis_starts_at_zero_so_nothing_looks_like_a_trend(values: tuple[float, ...]) -> None:
    low, high = _axes(_panel("linear", "mg/dL", _series("creatinine", *values))).get_ylim()
    assert low == 0
    # The results sit near the top, at their height: not stretched over the panel.
    assert min(values) / high > 0.8


def test_a_log_axis_spans_a_decade_says_log_scale_and_labels_thousands() -> None:
    ax = _axes(_panel("log", "ug/L", _series("ferritin", 21000.0, 26500.0)))
    low, high = ax.get_ylim()
    assert high / low >= 10
    assert "log scale" in ax.get_ylabel()
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert "10,000" in labels or "20,000" in labels
    assert all("e+" not in label and "^" not in label for label in labels)


def test_the_axis_includes_every_threshold_and_draws_it_labelled() -> None:
    ax = _axes(
        _panel("log", "ug/L", _series("ferritin", 21000.0, 39200.0), ("HLH-2004 ferritin criterion", 500))
    )
    low, high = ax.get_ylim()
    assert low < 500 < high
    assert "HLH-2004 ferritin criterion: 500 µg/L" in [t.get_text() for t in ax.texts]
    linear = _axes(_panel("linear", "mg/dL", _series("creatinine", 0.8), ("renal limit", 2.3), ("AKI", 1.1)))
    assert linear.get_ylim()[1] > 2.3
    assert {line.get_gid() for line in linear.lines} >= {"threshold-0", "threshold-1"}


async def test_the_rule_pack_chart_draws_its_thresholds(runtime: Runtime, ask: Ask) -> None:
    payload = payload_of(runtime, await ask("mas-adult-female", draft_order(2400)))
    svg = draw_svg(payload)
    for label in ("HLH-2004 ferritin criterion: 500 µg/L", "maximum daily dose: 2400 mg/d"):
        assert label in svg
    narrow = draw_svg(payload, draw.NARROW_WIDTH)
    assert "HLH-2004 ferritin criterion: 500 µg/L" in narrow and narrow != svg
    renal = draw_svg(payload_of(runtime, await ask("renal-ckd-female", draft_order(2400))))
    assert "renal dose threshold (Cockcroft-Gault CrCl)" in renal


EXTREMES = [5e-324, 1e-300, 1e-15, 1e15, 1e300, 1.7e308, 1.7976931348623157e308, -1e308, -5e-324, 0.0]


async def test_any_finite_value_is_drawn_or_named_never_an_error(runtime: Runtime, ask: Ask) -> None:
    """Found by fuzzing: 5e-324, values near +-1e308, a ratio past 1.8e308 between two results, or a dose of
    1.7e308 mg/d made GET chart.svg a 500 (the facts now refuse such values; a payload is drawn whatever
    finite number it holds). A value no axis can hold, or not above 0 on a log scale, is left out of the
    drawing and the image says how many, with no matplotlib warning; the page's table lists it."""
    base = payload_of(runtime, await ask("ferritin-escalation", draft_order(2400)))
    failures = []
    pairs = [(x, 400.0) for x in EXTREMES] + [
        (1e-300, 1e300),
        (5e-324, 1.7976931348623157e308),
        (-1e308, 1e308),
    ]
    for low, high in pairs:
        payload = copy.deepcopy(base)
        expected = 0
        for panel in payload["panels"]:
            for series in panel["series"]:
                for index, point in enumerate(series["points"]):
                    point[1] = low if index % 2 == 0 else high
                    expected += not _drawable(point[1], panel["scale"])
        for index, step in enumerate(payload["dose"]["steps"]):
            step["dose"] = high if index % 2 else low
            expected += not _drawable(step["dose"], "linear")
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("error")  # matplotlib warns where it drops a value silently
                svg = draw_svg(payload)
        except Exception as exc:  # noqa: BLE001 - every failure is collected and shown
            failures.append((low, high, repr(exc)[:120]))
            continue
        assert "could not be drawn" not in svg, (low, high)  # not the last resort: drawn
        note = re.search(r"(\d+) value\(s\) not drawn", svg)
        assert (int(note.group(1)) if note else 0) == expected, (low, high)
    assert failures == []


def _drawable(value: float, scale: str) -> bool:
    if scale == "log" and value <= 0:
        return False
    return value == 0 or 1e-100 <= abs(value) <= 1e100
