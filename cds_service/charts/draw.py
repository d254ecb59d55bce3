"""A chart payload -> SVG, with matplotlib: one panel per group of analytes and one for the dose steps,
stacked on a shared time axis.

matplotlib is imported on the first drawing, not at start-up (it takes about half a second), and only
through its object API: pyplot keeps global figures, which a server must not. Drawing is serialised by a
lock because matplotlib's text and font caches are not made for threads.

Every series is a group the page's tests (and a curious reader of the SVG) can find by id:
`series-<analyte>` (the line through every result), `points-<analyte>` (exact results),
`censored-<analyte>` (results reported as a bound, ">40000", drawn as open triangles pointing the way the
true value lies), `series-dose` and `series-dose-draft`. Nothing identifying the patient is in a payload,
so nothing is in the drawing.
"""

from __future__ import annotations

import io
import itertools
import logging
import math
import threading
from datetime import datetime, timedelta
from typing import Any

from cds_service.charts.text import axis_text, number_text, unit_text

log = logging.getLogger(__name__)

# Okabe-Ito: told apart by colour-blind readers, and in greyscale print by marker and line style.
_COLOURS = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9")
_DOSE = "#333333"
_PANEL_HEIGHT = 1.9  # inches
_WIDTH = 10.0
# For phones: drawn this wide, the page scales it to the screen with its text still readable at 360 px.
NARROW_WIDTH = 4.6
_BOTTOM, _TOP = 0.75, 0.35  # inches for the time axis below, and above the first title
_RC: Any = {  # matplotlib types rcParams keys as one Literal; this stays a plain mapping
    "svg.fonttype": "none",  # text stays text: smaller, selectable, read by screen readers
    "svg.hashsalt": "cds-service-chart",  # stable element ids: the same payload draws the same SVG
    "path.simplify": False,  # every result is a vertex, however close to its neighbours
    "font.size": 9,
    "axes.titlesize": 10,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "timezone": "UTC",
}
_LOWER_BOUND = {">", ">="}
_MAX_LOG_LABELS = 7
_THRESHOLD = "#555555"
# A log axis spans at least this factor, and a linear one starts at zero: one result, or a flat series,
# is never stretched over the whole panel as if it were a change.
_MIN_LOG_SPAN = 10.0
_HEADROOM = 1.15
_LOG_MARGIN = 1.1  # no result or line on the axis's edge
_LOCK = threading.Lock()
# Magnitudes an axis can hold with room to spare: matplotlib subtracts and scales axis limits, which
# overflows near 1e308 and divides by zero near 5e-324. A value beyond them is left out of the drawing,
# and the image says how many were; the page's tables list every value.
_DRAWABLE = (1e-100, 1e100)

Payload = dict[str, Any]  # as charts.snapshot makes it


def draw_svg(payload: Payload, width: float = _WIDTH) -> str:
    """The chart of `payload` as an SVG document, `width` inches wide (NARROW_WIDTH for phones); if
    drawing fails after all, an image saying so (the page's tables still list every value) and the
    failure in the log."""
    import matplotlib

    try:
        with _LOCK, matplotlib.rc_context(_RC):
            return _draw(payload, width)
    except Exception:
        log.exception("chart %s could not be drawn", payload.get("chart"))
        return _FAILED


_FAILED = (
    '<svg xmlns="http://www.w3.org/2000/svg" width="720" height="60" viewBox="0 0 720 60">'
    '<text x="10" y="35" font-family="sans-serif" font-size="14">'
    "This chart could not be drawn; every value is listed in the tables below.</text></svg>"
)


def _draw(payload: Payload, width: float) -> str:
    from matplotlib.backends.backend_svg import FigureCanvasSVG
    from matplotlib.figure import Figure

    panels: list[Payload] = payload["panels"]
    dose: Payload | None = payload.get("dose")
    rows = len(panels) + (1 if dose else 0)
    height = _PANEL_HEIGHT * rows + _BOTTOM + _TOP
    figure = Figure(figsize=(width, height))
    FigureCanvasSVG(figure)
    # Fixed margins: matplotlib's constrained layout would measure every label and triple the time.
    figure.subplots_adjust(
        left=0.8 / width, right=1 - 0.2 / width, bottom=_BOTTOM / height, top=1 - _TOP / height, hspace=0.45
    )
    axes = figure.subplots(rows, 1, sharex=True, squeeze=False)[:, 0]
    start, as_of = _time(payload["from"]), _time(payload["as_of"])
    # A little room after the request's time, so a draft order's new dose shows as a step.
    end = as_of + max((as_of - start) * 0.06, timedelta(hours=6))
    colour = itertools.cycle(_COLOURS)
    left_out = sum(_panel(ax, panel, colour) for ax, panel in zip(axes, panels, strict=False))
    if dose:
        left_out += _dose(axes[-1], dose, end)
    if left_out:
        figure.text(
            0.01,
            0.005,
            f"{left_out} value(s) not drawn (beyond what the axis holds, or not above 0 on a log scale); "
            "the tables list them.",
            fontsize=8,
            color="#666666",
        ).set_gid("not-drawn")
    for ax in axes:
        ax.axvline(_num(as_of), color="#888888", linestyle=":", linewidth=1).set_gid("as-of")
        ax.grid(True, axis="y", color="#e5e5e5", linewidth=0.6)
    _time_axis(axes[-1], start, end, narrow=width < _WIDTH)
    buffer = io.StringIO()
    figure.savefig(buffer, format="svg", metadata={"Date": None, "Title": payload["title"]})
    return buffer.getvalue()


def _drawable(value: float) -> bool:
    return value == 0 or _DRAWABLE[0] <= abs(value) <= _DRAWABLE[1]


def _panel(ax: Any, panel: Payload, colours: Any) -> int:
    """Draw one panel; returns how many results were left out as not drawable."""
    ax.set_title(panel["title"], loc="left", y=1.0, pad=4)
    log = panel["scale"] == "log"
    ax.set_ylabel(unit_text(panel) + (" (log scale)" if log else ""))
    drawn = False
    left_out = 0
    for series in panel["series"]:
        colour = next(colours)
        # A log scale has no place for zero or below (matplotlib would drop them silently).
        points = [p for p in series["points"] if _drawable(p[1]) and (p[1] > 0 or panel["scale"] != "log")]
        left_out += len(series["points"]) - len(points)
        if not points:
            continue
        drawn = True
        name = series["analyte"]
        times = [_num(_time(p[0])) for p in points]
        values = [p[1] for p in points]
        (line,) = ax.plot(times, values, color=colour, linewidth=1.6, label=series["label"])
        line.set_gid(f"series-{name}")
        exact = [(t, v) for t, v, p in zip(times, values, points, strict=True) if p[2] is None]
        if exact:
            (dots,) = ax.plot(
                *zip(*exact, strict=True), linestyle="none", marker="o", markersize=4.5, color=colour
            )
            dots.set_gid(f"points-{name}")
        for marker, side in (("^", True), ("v", False)):
            bounds = [(t, v) for t, v, p in zip(times, values, points, strict=True) if _bound(p[2]) is side]
            if bounds:
                (censored,) = ax.plot(
                    *zip(*bounds, strict=True),
                    linestyle="none",
                    marker=marker,
                    markersize=9,
                    markerfacecolor="white",
                    markeredgewidth=1.6,
                    color=colour,
                    label=f"{series['label']}, reported as a bound",
                )
                censored.set_gid(f"censored-{name}")
    thresholds = panel.get("thresholds") or []
    if drawn:
        # The axis spans the results and the criterion lines both: where a value stands is read against them.
        values = [p[1] for s in panel["series"] for p in s["points"] if _drawable(p[1])]
        values += [t["value"] for t in thresholds if _drawable(t["value"])]
        if log:
            positive = [v for v in values if v > 0]
            _log_axis(ax, min(positive, default=1.0), max(positive, default=10.0))
        else:
            _linear_axis(ax, values)
        for index, threshold in enumerate(thresholds):
            _threshold_line(ax, threshold, unit_text(panel), index)
    if not drawn:
        labels = ", ".join(s["label"] for s in panel["series"])
        _empty(ax, f"no {labels} results in this period" if not left_out else f"no {labels} result to draw")
    elif len(panel["series"]) > 1 or any(_has_bounds(s) for s in panel["series"]):
        ax.legend(loc="upper left", fontsize=8, frameon=False)
    return left_out


def _dose(ax: Any, dose: Payload, end: datetime) -> int:
    """Draw the dose steps; returns how many were left out as not drawable."""
    ax.set_title(dose["title"], loc="left", y=1.0, pad=4)
    ax.set_ylabel(unit_text(dose))
    given: list[tuple[float, float]] = []
    draft: list[tuple[float, float]] = []
    open_ended: list[tuple[float, float]] = []
    left_out = 0
    for step in dose["steps"]:
        if step["dose"] is None or step["start"] is None:
            continue  # cannot be placed; the table below lists it with the reason
        if not _drawable(step["dose"]):
            left_out += 1
            continue
        start = _num(_time(step["start"]))
        if step["end"] is None and not step["draft"]:
            # A finished order that says neither when it ended nor what came next: only its start is
            # known, and a line would claim a duration.
            open_ended.append((start, step["dose"]))
            continue
        stop = _num(_time(step["end"]) if step["end"] else end)
        target = draft if step["draft"] else given
        if target and target[-1][0] != start:
            target.append((math.nan, math.nan))  # a gap between orders: lift the pen
        target += [(start, step["dose"]), (stop, step["dose"])]
    if given:
        (line,) = ax.plot(
            *zip(*given, strict=True), color=_DOSE, linewidth=2, label=f"{dose['label']} orders"
        )
        line.set_gid("series-dose")
    if draft:
        (line,) = ax.plot(
            *zip(*draft, strict=True),
            color=_DOSE,
            linewidth=2,
            linestyle="--",
            label="the order being signed",
        )
        line.set_gid("series-dose-draft")
    if open_ended:
        (starts,) = ax.plot(
            *zip(*open_ended, strict=True),
            linestyle="none",
            marker=">",
            markersize=8,
            color=_DOSE,
            label="start of an order whose end is unknown",
        )
        starts.set_gid("series-dose-unknown-end")
    if not given and not draft and not open_ended:
        _empty(ax, f"no {dose['label']} order with a known start and daily dose")
        return left_out
    ceilings = dose.get("thresholds") or []
    highest = max(
        [v for _, v in given + draft + open_ended if not math.isnan(v)] + [t["value"] for t in ceilings]
    )
    ax.set_ylim(0, highest * 1.2 if highest > 0 else 1)
    _grouped_ticks(ax)
    for index, ceiling in enumerate(ceilings):
        _threshold_line(ax, ceiling, unit_text(dose), index)
    ax.legend(loc="upper left", fontsize=8, frameon=False)
    return left_out


def _log_axis(ax: Any, low: float, high: float) -> None:
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullFormatter

    ax.set_yscale("log", nonpositive="mask")
    low, high = low / _LOG_MARGIN, high * _LOG_MARGIN
    if high / low < _MIN_LOG_SPAN:
        middle = math.sqrt(low * high)
        low, high = middle / math.sqrt(_MIN_LOG_SPAN), middle * math.sqrt(_MIN_LOG_SPAN)
    # From the 1-2-5 step at or below the lowest result to the one at or above the highest, labelled at
    # every 1-2-5 step between: 20,000 and 50,000 as a lab writes them, not 2x10^4 and eight crowded ticks.
    steps = _steps(low, high)
    ax.set_ylim(steps[0], steps[-1])
    if len(steps) > _MAX_LOG_LABELS:
        steps = [step for step in steps if f"{step:.0e}"[0] in "15"]  # 500, 1,000, 5,000, 10,000...
    if len(steps) > _MAX_LOG_LABELS:
        steps = [step for step in steps if f"{step:.0e}".startswith("1")]  # powers of ten only
        every = math.ceil(len(steps) / _MAX_LOG_LABELS)  # and only every few across many decades
        steps = steps[::every]
    elif len(steps) == 2:
        # Within one 1-2-5 step (20000 to 50000): label the whole multiples between, 30000 and 40000.
        unit = 10.0 ** math.floor(math.log10(steps[0]))
        steps = [m * unit for m in range(1, 11) if steps[0] <= m * unit <= steps[-1]]
    ax.yaxis.set_major_locator(FixedLocator(steps))
    ax.yaxis.set_major_formatter(FuncFormatter(lambda value, _: axis_text(value)))
    ax.yaxis.set_minor_formatter(NullFormatter())


def _linear_axis(ax: Any, values: list[float]) -> None:
    # Counts and concentrations start at zero: a single result sits at its height, not mid-panel.
    low = min(0.0, min(values, default=0.0))
    high = max(values, default=0.0)
    top = high * _HEADROOM if high > 0 else 1.0
    ax.set_ylim(low * _HEADROOM if low < 0 else 0.0, top)
    _grouped_ticks(ax)


def _grouped_ticks(ax: Any) -> None:
    from matplotlib.ticker import FuncFormatter

    ax.yaxis.set_major_formatter(FuncFormatter(lambda value, _: axis_text(value)))


def _threshold_line(ax: Any, threshold: Payload, unit: str, index: int) -> None:
    """A criterion as a labelled dashed line across the panel; the label sits just above it, at the right."""
    value = threshold["value"]
    line = ax.axhline(value, color=_THRESHOLD, linestyle=(0, (5, 3)), linewidth=1.1, zorder=1)
    line.set_gid(f"threshold-{index}")
    ax.text(
        0.995,
        value,
        f"{threshold['label']}: {number_text(value)} {unit}",
        transform=ax.get_yaxis_transform(),
        ha="right",
        va="bottom",
        fontsize=8,
        color=_THRESHOLD,
        gid=f"threshold-label-{index}",
    )


def _steps(low: float, high: float) -> list[float]:
    """The 1-2-5 values (..., 10, 20, 50, 100, ...) from the one at or below `low` to the one at or above
    `high`."""
    decade = 10.0 ** math.floor(math.log10(low))
    decades = math.ceil(math.log10(high / decade)) + 1
    candidates = [m * decade * 10**k for k in range(decades + 1) for m in (1.0, 2.0, 5.0)]
    below = max(c for c in candidates if c <= low * (1 + 1e-9))
    above = min(c for c in candidates if c >= high * (1 - 1e-9))
    if above == below:
        above = min(c for c in candidates if c > below)
    return [c for c in candidates if below <= c <= above]


def _time_axis(ax: Any, start: datetime, end: datetime, narrow: bool = False) -> None:
    from matplotlib.dates import AutoDateLocator, ConciseDateFormatter

    locator = AutoDateLocator(minticks=3 if narrow else 5, maxticks=6 if narrow else 12)
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(ConciseDateFormatter(locator))
    ax.set_xlim(_num(start), _num(end))
    # Narrow, the longer label would run into the month under the last tick; the page's caption says it.
    ax.set_xlabel("time (UTC)" if narrow else "time (UTC); dotted line: the time of the request")


def _empty(ax: Any, text: str) -> None:
    ax.text(0.5, 0.5, text, transform=ax.transAxes, ha="center", va="center", color="#666666")
    ax.set_yticks([])


def _bound(comparator: str | None) -> bool | None:
    """True for a lower bound (">x": the value is higher), False for an upper bound, None when exact."""
    if comparator is None:
        return None
    return comparator in _LOWER_BOUND


def _has_bounds(series: Payload) -> bool:
    return any(p[2] is not None for p in series["points"])


def _time(text: str) -> datetime:
    return datetime.fromisoformat(text)


def _num(moment: datetime) -> float:
    from matplotlib.dates import date2num

    return float(date2num(moment))
