"""Hand-written SVG bar charts for the HTML report: self-contained, no plotting dependency.

Every chart has a title, axis labels, value labels, an accessible name, and colours that say pass or
fail where a threshold applies.
"""

from __future__ import annotations

from html import escape

PASS, FAIL, NEUTRAL, SECOND = "#2e7d32", "#c62828", "#1565c0", "#ef6c00"
ROW, LABEL_WIDTH, BAR_WIDTH = 22, 230, 420


def _svg(title: str, width: int, height: int, body: list[str]) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" role="img" aria-label="{escape(title)}" '
        f'width="{width}" height="{height}" viewBox="0 0 {width} {height}" class="plot">'
        f"<title>{escape(title)}</title>"
        f'<text x="4" y="16" class="plot-title">{escape(title)}</text>' + "".join(body) + "</svg>"
    )


def horizontal_bars(
    title: str,
    labels: list[str],
    values: list[float],
    *,
    unit: str,
    threshold: float | None = None,
    higher_is_better: bool = True,
) -> str:
    """One bar per label; with a threshold, bars are green when they meet it and red when they do not."""
    finite = [v for v in values if v == v and abs(v) != float("inf")]
    top = max([*finite, threshold or 0, 1e-9])
    scale = BAR_WIDTH / top
    height = 40 + ROW * len(labels) + 24
    body = []
    for i, (label, value) in enumerate(zip(labels, values, strict=True)):
        y = 30 + i * ROW
        shown = max(0.0, min(value, top)) if value == value else 0.0
        ok = threshold is None or (value >= threshold if higher_is_better else value <= threshold)
        colour = NEUTRAL if threshold is None else (PASS if ok else FAIL)
        body.append(
            f'<text x="{LABEL_WIDTH - 6}" y="{y + 14}" text-anchor="end" class="label">{escape(label)}</text>'
        )
        body.append(
            f'<rect class="bar" x="{LABEL_WIDTH}" y="{y + 3}" width="{shown * scale:.1f}" height="{ROW - 6}" '
            f'fill="{colour}"><title>{escape(label)}: {value:.4g} {escape(unit)}</title></rect>'
        )
        body.append(
            f'<text x="{LABEL_WIDTH + shown * scale + 4:.1f}" y="{y + 14}" class="value">{value:.4g}</text>'
        )
    axis_y = 30 + ROW * len(labels)
    body.append(f'<line x1="{LABEL_WIDTH}" y1="26" x2="{LABEL_WIDTH}" y2="{axis_y}" class="axis"/>')
    body.append(
        f'<text x="{LABEL_WIDTH + BAR_WIDTH / 2}" y="{axis_y + 18}" text-anchor="middle" '
        f'class="axis-label">{escape(unit)}</text>'
    )
    if threshold is not None:
        x = LABEL_WIDTH + threshold * scale
        body.append(
            f'<line x1="{x:.1f}" y1="26" x2="{x:.1f}" y2="{axis_y}" class="threshold">'
            f"<title>threshold {threshold:g} {escape(unit)}</title></line>"
        )
        body.append(
            f'<text x="{x:.1f}" y="{axis_y + 18}" text-anchor="middle" class="threshold-label">'
            f"threshold {threshold:g}</text>"
        )
    return _svg(title, LABEL_WIDTH + BAR_WIDTH + 90, height, body)


def paired_bars(
    title: str,
    labels: list[str],
    first: list[float],
    second: list[float],
    *,
    names: tuple[str, str],
    unit: str,
) -> str:
    """Two bars per label (e.g. baseline and optimized op counts), with a legend."""
    top = max([*first, *second, 1e-9])
    scale = BAR_WIDTH / top
    pair_row = 2 * (ROW - 6) + 8
    height = 52 + pair_row * len(labels) + 24
    body = [
        f'<rect x="{LABEL_WIDTH}" y="24" width="12" height="12" fill="{NEUTRAL}"/>'
        f'<text x="{LABEL_WIDTH + 16}" y="34" class="label">{escape(names[0])}</text>',
        f'<rect x="{LABEL_WIDTH + 140}" y="24" width="12" height="12" fill="{SECOND}"/>'
        f'<text x="{LABEL_WIDTH + 156}" y="34" class="label">{escape(names[1])}</text>',
    ]
    for i, label in enumerate(labels):
        y = 44 + i * pair_row
        body.append(
            f'<text x="{LABEL_WIDTH - 6}" y="{y + ROW - 4}" text-anchor="end" class="label">'
            f"{escape(label)}</text>"
        )
        for j, (value, colour) in enumerate(((first[i], NEUTRAL), (second[i], SECOND))):
            bar_y = y + j * (ROW - 6)
            body.append(
                f'<rect class="bar" x="{LABEL_WIDTH}" y="{bar_y}" width="{value * scale:.1f}" '
                f'height="{ROW - 8}" fill="{colour}"><title>{escape(label)} ({escape(names[j])}): '
                f"{value:g}</title></rect>"
            )
            body.append(
                f'<text x="{LABEL_WIDTH + value * scale + 4:.1f}" y="{bar_y + ROW - 10}" class="value">'
                f"{value:g}</text>"
            )
    axis_y = 44 + pair_row * len(labels)
    body.append(f'<line x1="{LABEL_WIDTH}" y1="40" x2="{LABEL_WIDTH}" y2="{axis_y}" class="axis"/>')
    body.append(
        f'<text x="{LABEL_WIDTH + BAR_WIDTH / 2}" y="{axis_y + 18}" text-anchor="middle" '
        f'class="axis-label">{escape(unit)}</text>'
    )
    return _svg(title, LABEL_WIDTH + BAR_WIDTH + 90, height, body)
