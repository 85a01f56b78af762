"""Hand-written SVG bar charts for the HTML report: inline, self-contained, no plotting dependency.

Every chart has a title (shown, and as the SVG's ``<title>`` and ``aria-label``), a value axis with
ticks and a label, a value label on each bar, and a legend wherever colour carries meaning: green
meets the threshold, red does not, blue has no verdict.
"""

from __future__ import annotations

import math
from html import escape

from .content import as_number

PASS, FAIL, NEUTRAL, SECOND = "#2e7d32", "#c62828", "#1565c0", "#ef6c00"
VERDICT_COLOURS = {True: PASS, False: FAIL, None: NEUTRAL}
ROW = 22  # height of one bar's row
BAR_SPACE = 520  # width of the value axis
LABEL_CHARS = 48  # longer bar labels are shortened (the full label stays in the bar's tooltip)
TOP = 30  # room for the chart title


def value_label(value: float) -> str:
    return f"{value:.4g}" if math.isfinite(value) else {math.inf: "inf", -math.inf: "-inf"}.get(value, "nan")


def _short(label: str) -> str:
    return label if len(label) <= LABEL_CHARS else label[: LABEL_CHARS - 1] + "…"


def _category_label(left: float, y: float, label: str) -> str:
    return f'<text x="{left - 6}" y="{y}" text-anchor="end" class="label">{escape(_short(label))}</text>'


def _label_width(labels: list[str]) -> int:
    return max(80, min(LABEL_CHARS, max((len(_short(x)) for x in labels), default=0)) * 7 + 12)


def _ticks(top: float) -> list[float]:
    """Round tick values from 0 to at least ``top`` (steps of 1, 2 or 5 times a power of ten)."""
    raw_step = top / 5
    power = 10 ** math.floor(math.log10(raw_step))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw_step)
    return [i * step for i in range(math.ceil(top / step - 1e-9) + 1)]


def _svg(title: str, width: float, height: float, body: list[str]) -> str:
    return (
        f'<svg role="img" aria-label="{escape(title)}" width="{width:.0f}" height="{height:.0f}" '
        f'viewBox="0 0 {width:.0f} {height:.0f}" class="plot">'
        f"<title>{escape(title)}</title>"
        f'<text x="4" y="18" class="plot-title">{escape(title)}</text>' + "".join(body) + "</svg>"
    )


def _value_axis(left: float, top_y: float, bottom_y: float, scale: float, ticks: list[float], unit: str):
    parts = [f'<line x1="{left}" y1="{top_y}" x2="{left}" y2="{bottom_y}" class="axis"/>']
    parts.append(
        f'<line x1="{left}" y1="{bottom_y}" x2="{left + ticks[-1] * scale:.1f}" y2="{bottom_y}" '
        'class="axis"/>'
    )
    for tick in ticks:
        x = left + tick * scale
        parts.append(f'<line x1="{x:.1f}" y1="{bottom_y}" x2="{x:.1f}" y2="{bottom_y + 4}" class="axis"/>')
        parts.append(
            f'<text x="{x:.1f}" y="{bottom_y + 16}" text-anchor="middle" class="tick">{tick:g}</text>'
        )
    parts.append(
        f'<text x="{left + ticks[-1] * scale / 2:.1f}" y="{bottom_y + 32}" text-anchor="middle" '
        f'class="axis-label">{escape(unit)}</text>'
    )
    return parts


def _legend(x: float, y: float, entries: list[tuple[str, str]], threshold: float | None = None) -> list[str]:
    """A colour key per (colour, meaning), then the dashed threshold line's key."""
    parts = []
    for colour, text in entries:
        parts.append(f'<rect x="{x:.1f}" y="{y - 10}" width="12" height="12" fill="{colour}"/>')
        parts.append(f'<text x="{x + 16:.1f}" y="{y}" class="legend">{escape(text)}</text>')
        x += 16 + 6.5 * len(text) + 18
    if threshold is not None:
        parts.append(
            f'<line x1="{x:.1f}" y1="{y - 4}" x2="{x + 20:.1f}" y2="{y - 4}" class="threshold"/>'
            f'<text x="{x + 24:.1f}" y="{y}" class="legend">threshold {threshold:g}</text>'
        )
    return parts


def horizontal_bars(
    title: str,
    labels: list[str],
    values: list,
    *,
    unit: str,
    verdicts: list[bool | None] | None = None,
    legend: list[tuple[str, str]] | None = None,
    threshold: float | None = None,
) -> str:
    """One bar per label, coloured by its verdict (None: neutral), with an optional threshold line.

    ``legend`` lists (colour, meaning); by default pass and fail, shown when any bar has a verdict.

    Values at or below zero and NaN draw no bar (a sliver, when failing); the value label says what they
    are. Infinite values reach the end of the axis.
    """
    numbers = [as_number(v) for v in values]
    verdicts = verdicts or [None] * len(labels)
    finite = [v for v in numbers if math.isfinite(v)]
    ticks = _ticks(max([*finite, threshold or 0, 1e-9]))
    left = _label_width(labels)
    scale = BAR_SPACE / ticks[-1]
    if legend is None:
        has_verdicts = any(v is not None for v in verdicts)
        legend = [(PASS, "meets the threshold"), (FAIL, "misses the threshold")] if has_verdicts else []
    first_row = TOP + (22 if legend or threshold is not None else 0)
    body = _legend(left, TOP + 8, legend, threshold)
    for i, (label, value, verdict) in enumerate(zip(labels, numbers, verdicts, strict=True)):
        y = first_row + i * ROW
        length = min(value, ticks[-1]) * scale if value > 0 else 0.0  # NaN compares False: no bar
        if verdict is False:
            length = max(length, 3.0)  # a failing bar stays visible (red) even at zero or below
        body.append(
            _category_label(left, y + 15, label)
            + f'<rect class="bar" x="{left}" y="{y + 4}" width="{length:.1f}" height="{ROW - 6}" '
            f'fill="{VERDICT_COLOURS[verdict]}"><title>{escape(label)}: {value_label(value)} {escape(unit)}'
            f"</title></rect>"
            f'<text x="{left + length + 4:.1f}" y="{y + 15}" class="value">{value_label(value)}</text>'
        )
    bottom = first_row + ROW * len(labels) + 4
    body += _value_axis(left, first_row, bottom, scale, ticks, unit)
    if threshold is not None:
        x = left + threshold * scale
        body.append(
            f'<line x1="{x:.1f}" y1="{first_row - 2}" x2="{x:.1f}" y2="{bottom}" class="threshold">'
            f"<title>threshold {threshold:g} {escape(unit)}</title></line>"
        )
    return _svg(title, left + BAR_SPACE + 70, bottom + 42, body)


def paired_bars(
    title: str,
    labels: list[str],
    first: list[float],
    second: list[float],
    *,
    names: tuple[str, str],
    unit: str,
) -> str:
    """Two bars per label (e.g. baseline and optimized op counts), with a legend naming the two."""
    ticks = _ticks(max([*first, *second, 1e-9]))
    left = _label_width(labels)
    scale = BAR_SPACE / ticks[-1]
    bar = ROW - 8
    pair_row = 2 * bar + 10
    first_row = TOP + 22
    body = _legend(left, TOP + 8, [(NEUTRAL, names[0]), (SECOND, names[1])])
    for i, label in enumerate(labels):
        y = first_row + i * pair_row
        body.append(_category_label(left, y + bar + 4, label))
        for j, (value, colour) in enumerate(((first[i], NEUTRAL), (second[i], SECOND))):
            bar_y = y + 3 + j * bar
            body.append(
                f'<rect class="bar" x="{left}" y="{bar_y}" width="{value * scale:.1f}" height="{bar - 1}" '
                f'fill="{colour}"><title>{escape(label)} ({escape(names[j])}): {value:g}</title></rect>'
                f'<text x="{left + value * scale + 4:.1f}" y="{bar_y + bar - 3}" class="value">'
                f"{value:g}</text>"
            )
    bottom = first_row + pair_row * len(labels) + 2
    body += _value_axis(left, first_row, bottom, scale, ticks, unit)
    return _svg(title, left + BAR_SPACE + 70, bottom + 42, body)
