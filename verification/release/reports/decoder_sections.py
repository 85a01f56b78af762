"""The decoder sections of the reports: the per-step PSNR plot (SVG line over the steps, the threshold as a
dashed line), the top-5 overlap, the generated text or tokens, and readiness per function."""

from __future__ import annotations

from html import escape

from .content import threshold_of
from .plots import FAIL, NEUTRAL, PASS, value_label

WIDTH, HEIGHT, LEFT, BOTTOM, TOP = 640, 260, 56, 40, 30


def step_plot(
    values: list, threshold: float | None, title: str = "logits PSNR per step vs transformers fp32"
) -> str:
    """SVG line of ``values`` (step 0 = prefill), each point green at or above ``threshold``, else red."""
    if not values:
        return ""
    top = max(max(values), threshold or 0) * 1.1 or 1.0
    span_x, span_y = WIDTH - LEFT - 16, HEIGHT - BOTTOM - TOP

    def xy(i, v):
        x = LEFT + (span_x * i / max(len(values) - 1, 1))
        return x, TOP + span_y * (1 - max(v, 0) / top)

    points = " ".join(f"{x:.1f},{y:.1f}" for x, y in (xy(i, v) for i, v in enumerate(values)))
    body = [
        f'<line x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{TOP + span_y}" class="axis"/>',
        f'<line x1="{LEFT}" y1="{TOP + span_y}" x2="{LEFT + span_x}" y2="{TOP + span_y}" class="axis"/>',
        f'<text x="{LEFT + span_x / 2}" y="{HEIGHT - 6}" text-anchor="middle" class="label">'
        "step (0 = prefill, then one per decode step)</text>",
        f'<text x="12" y="{TOP + span_y / 2}" class="label" transform="rotate(-90 12 {TOP + span_y / 2})" '
        'text-anchor="middle">PSNR (dB)</text>',
        f'<polyline points="{points}" fill="none" stroke="{NEUTRAL}" stroke-width="1.5"/>',
    ]
    for tick in (0, top / 2, top):
        y = TOP + span_y * (1 - tick / top)
        body.append(f'<text x="{LEFT - 4}" y="{y + 4:.1f}" text-anchor="end" class="label">{tick:.0f}</text>')
    if threshold is not None:
        y = TOP + span_y * (1 - threshold / top)
        body.append(
            f'<line x1="{LEFT}" y1="{y:.1f}" x2="{LEFT + span_x}" y2="{y:.1f}" stroke="{FAIL}" '
            f'stroke-dasharray="4 3"><title>threshold {value_label(threshold)} dB</title></line>'
        )
    for i, v in enumerate(values):
        x, y = xy(i, v)
        colour = PASS if threshold is None or v >= threshold else FAIL
        body.append(
            f'<circle cx="{x:.1f}" cy="{y:.1f}" r="2.5" fill="{colour}"><title>step {i}: '
            f"{value_label(v)} dB</title></circle>"
        )
    return (
        f'<svg role="img" aria-label="{escape(title)}" width="{WIDTH}" height="{HEIGHT}" '
        f'viewBox="0 0 {WIDTH} {HEIGHT}" class="plot"><title>{escape(title)}</title>'
        f'<text x="4" y="18" class="plot-title">{escape(title)}</text>' + "".join(body) + "</svg>"
    )


def _generated(decoder: dict) -> str:
    if "generated_text" in decoder:
        return f"{decoder.get('prompt_text', '')}{decoder['generated_text']}"
    return " ".join(map(str, decoder.get("generated_tokens", [])))


def generation_summary(decoder: dict) -> str:
    """One line beside the verdict: a degenerate answer and the near-ties, which the token checks skip."""
    tokens = decoder.get("generated_tokens") or []
    ties = decoder.get("near_tie_positions") or []
    gaps = decoder.get("top2_gap") or []
    parts = []
    if decoder.get("degenerate"):
        parts.append(
            f"degenerate: one token ({tokens[0]}) repeated over all {len(tokens)} new tokens (seeded weights "
            "do this; a real checkpoint should not)"
        )
    if gaps:
        parts.append(
            f"{len(ties)} of {len(gaps)} positions are near-ties (transformers' top-2 gap under 0.1), "
            "not counted by the token checks"
        )
    return "; ".join(parts)


def speed_summary(details: dict) -> str:
    """Tokens per second as measured, or why not, and why the figures are not gated."""
    speed = details.get("tokens_per_second")
    if not speed:
        return ""
    if not speed.get("measured"):
        return f"tokens per second: not measured ({speed.get('reason')}); {speed.get('floor')}"
    return (
        f"tokens per second: prefill {speed['prefill_tokens_per_second']:.1f}, decode "
        f"{speed['decode_tokens_per_second']:.1f} (Core ML {speed['compute_units']}, median of "
        f"{speed['rounds']} rounds after {speed['warmup_rounds']} warm-up); {speed.get('floor')}"
    )


def constants_summary(details: dict) -> list[str]:
    """The constants fp16_unrepresentable_constants counted, one line each (function, name, kind, use)."""
    counted = details.get("fp16_unrepresentable_constants")
    if counted is None:
        return []
    if not counted:
        return [
            "fp16 constants counted as unrepresentable: none (coremltools' default rsqrt epsilon, 1e-12, "
            "is listed in the hazard report and not counted)"
        ]
    return [
        f"{c['function']}: [{c['kind']}] {c['constant']}: {c['detail']}; used by "
        f"{', '.join(c['used_by']) or 'nothing'}"
        for c in counted
    ]


def html_sections(report: dict) -> list[str]:
    decoder = (report.get("details") or {}).get("decoder")
    if not decoder:
        return []
    first = decoder.get("first_diverging_step")
    overlap = decoder.get("top5_overlap") or []
    parts = [
        "<h2>Decoder, step by step</h2>",
        step_plot(decoder.get("step_psnr_db", []), threshold_of(report, "decoder_step_psnr_db")),
        f"<p>top-5 overlap with transformers, mean over {len(overlap)} steps: "
        f"{sum(overlap) / max(len(overlap), 1):.3f}; free-running greedy tokens "
        f"{'identical to transformers' if first is None else f'first differ at new token {first}'}.</p>",
        f"<h3>Generated</h3><p>{escape(generation_summary(decoder))}</p>"
        f"<pre>{escape(_generated(decoder))}</pre>",
    ]
    details = report.get("details") or {}
    constants = constants_summary(details)
    if constants:
        parts.append(
            "<h3>fp16 constants</h3><ul>" + "".join(f"<li>{escape(c)}</li>" for c in constants) + "</ul>"
        )
    if speed_summary(details):
        parts.append(f"<h3>Tokens per second</h3><p>{escape(speed_summary(details))}</p>")
    per_function = (report.get("details") or {}).get("readiness_per_function") or {}
    if per_function:
        rows = "".join(
            f"<tr><td>{escape(name)}</td><td>{f['ops']}</td><td>{f['copies']}</td>"
            f"<td>{f['fp32_literals']}</td>"
            f"<td>{f['singleton_last_axes']}</td>"
            f"<td>{escape(str(f['states'] or f['cache_inputs']))}</td></tr>"
            for name, f in per_function.items()
        )
        parts.append(
            "<h3>Readiness per function</h3><table><tr><th>function</th><th>ops</th><th>copies</th>"
            "<th>fp32 literals</th><th>singleton last axes</th><th>cache</th></tr>" + rows + "</table>"
        )
    return parts


def markdown_sections(report: dict) -> list[str]:
    decoder = (report.get("details") or {}).get("decoder")
    if not decoder:
        return []
    steps = ", ".join(f"{v:.1f}" for v in decoder.get("step_psnr_db", []))
    lines = ["", "## Decoder, step by step", "", f"logits PSNR per step (dB, step 0 = prefill): {steps}", ""]
    first = decoder.get("first_diverging_step")
    lines.append(
        "free-running greedy tokens: "
        + ("identical to transformers" if first is None else f"first differ at new token {first}")
    )
    lines += ["", f"Generated: {generation_summary(decoder)}", "", "```", _generated(decoder), "```"]
    details = report.get("details") or {}
    constants = constants_summary(details)
    if constants:
        lines += ["", "### fp16 constants", "", *(f"- {c}" for c in constants)]
    if speed_summary(details):
        lines += ["", "### Tokens per second", "", speed_summary(details)]
    return lines
