"""``report.html``: one self-contained page (inline CSS and SVG, no script, no external reference) that
shows the verdict first, then plots where people would rather look than read.

Every string taken from the report goes through ``html.escape``.
"""

from __future__ import annotations

import math
from html import escape

from . import content, decoder_sections, plots

STYLE = """
body { font: 14px/1.45 -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; margin: 24px auto;
       max-width: 1100px; padding: 0 16px; color: #1b1b1b; }
h1 { margin-bottom: 8px; } h2 { margin-top: 32px; border-bottom: 1px solid #ddd; padding-bottom: 4px; }
.verdict { display: inline-block; padding: 6px 16px; border-radius: 4px; color: #fff; font-weight: 700;
           font-size: 22px; letter-spacing: 1px; margin-right: 12px; }
.verdict.passed { background: #2e7d32; } .verdict.failed { background: #c62828; }
.summary { font-size: 16px; }
table { border-collapse: collapse; margin: 8px 0; } caption { text-align: left; font-weight: 700; }
td, th { border: 1px solid #ddd; padding: 4px 8px; text-align: left; vertical-align: top; }
th { background: #f4f4f4; }
tr.failed td.verdict-cell { color: #c62828; font-weight: 700; } tr.failed { background: #fdecea; }
tr.passed td.verdict-cell { color: #2e7d32; font-weight: 700; }
tr.not-measured td.verdict-cell { color: #8a6d00; font-weight: 700; } tr.not-measured { background: #fff8e1; }
.not-measured-panel { background: #fff8e1; border: 2px solid #f0c36d; padding: 10px 14px; border-radius: 4px;
                      font-size: 15px; }
.side-by-side { display: flex; gap: 32px; flex-wrap: wrap; align-items: flex-start; }
pre { background: #f6f8fa; padding: 10px; overflow-x: auto; }
code { word-break: break-all; }
svg.plot { display: block; margin: 12px 0; font-family: inherit; }
.plot-title { font-weight: 700; font-size: 14px; }
.label, .value, .tick, .legend { font-size: 12px; } .axis-label { font-size: 12px; font-style: italic; }
.axis { stroke: #555; } .threshold { stroke: #000; stroke-width: 1.5; stroke-dasharray: 5 3; }
"""


def _table(
    header: tuple, rows: list[tuple], *, row_classes: list[str] | None = None, caption: str = ""
) -> str:
    """A table of escaped cells; the last cell of a row with a class is its verdict."""
    head = "".join(f"<th>{escape(str(h))}</th>" for h in header)
    body = []
    for i, row in enumerate(rows):
        row_class = row_classes[i] if row_classes else ""
        cells = [f"<td>{escape(str(x))}</td>" for x in row]
        if row_class:
            cells[-1] = f'<td class="verdict-cell">{escape(str(row[-1]))}</td>'
        body.append(f'<tr class="{row_class}">' if row_class else "<tr>")
        body.append("".join(cells) + "</tr>")
    caption = f"<caption>{escape(caption)}</caption>" if caption else ""
    return f"<table>{caption}<thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _row_class(check: dict) -> str:
    if check["passed"] is False:
        return "failed"
    return "passed" if check["passed"] else "not-measured"


def _not_measured_panel(reason) -> str:
    return f'<p class="not-measured-panel"><strong>Not measured here:</strong> {escape(str(reason))}</p>'


def _layer_parity(report: dict, layers: list[dict]) -> list[str]:
    threshold = content.threshold_of(report, "torch_parity_psnr_db")
    values = [content.as_number(r["psnr_db"]) for r in layers]
    verdicts = [None if threshold is None else v >= threshold for v in values]
    return [
        "<h2>Parity per layer</h2>",
        plots.horizontal_bars(
            "Parity per layer: PSNR of the optimized model vs the baseline (torch, fp32)",
            [str(r["layer"]) for r in layers],
            values,
            unit="PSNR (dB)",
            verdicts=verdicts,
            threshold=threshold,
        ),
    ]


def _op_counts(op_counts: dict) -> list[str]:
    rows = content.op_count_rows(op_counts)
    if not op_counts.get("baseline"):
        chart = plots.horizontal_bars(
            "Op counts of the optimized program (no baseline program to compare with)",
            [str(r[0]) for r in rows],
            [r[2] for r in rows],
            unit="ops of this type",
        )
        return ["<h2>Op counts</h2>", chart]
    return [
        "<h2>Op counts</h2>",
        plots.paired_bars(
            "Op counts, baseline vs optimized (converted programs)",
            [str(r[0]) for r in rows],
            [r[1] for r in rows],
            [r[2] for r in rows],
            names=("baseline", "optimized"),
            unit="ops of this type",
        ),
    ]


def _fp16_precision(ops: list[dict]) -> list[str]:
    values = [content.as_number(r["psnr_db"]) for r in ops]
    # The pipeline records an op whose fp16 output is not finite as -1 dB: no precision left.
    lost = [False if not math.isfinite(v) or v <= 0 else None for v in values]
    return [
        "<h2>fp16 precision loss per op</h2>",
        plots.horizontal_bars(
            "fp16 precision loss per op: PSNR of each op in fp16 vs fp32, on the same inputs (worst first)",
            [f"{r['op']} ({r['op_type']}, {r.get('layer') or '?'})" for r in ops],
            values,
            unit="PSNR vs fp32 (dB)",
            verdicts=lost,
            legend=[
                (plots.NEUTRAL, "PSNR vs fp32"),
                (plots.FAIL, "no precision left (non-finite or ≤ 0 dB)"),
            ],
        ),
    ]


def _speedup(report: dict, speedup: dict) -> list[str]:
    parts = ["<h2>Speed-up</h2>"]
    timings = speedup.get("timings") or []
    if not (speedup.get("measured") and timings):
        return parts + [_not_measured_panel(speedup.get("reason") or "no timings were recorded")]
    ratios = [c for c in report["checks"] if "speedup" in c["name"] and c["measured"]]
    if ratios:
        parts.append(
            plots.horizontal_bars(
                "Speed-up per check (higher is faster; colour is the check's verdict)",
                [f"{c['name']} (threshold {content.value_text(c['threshold'])})" for c in ratios],
                [c["value"] for c in ratios],
                unit="speed-up (x)",
                verdicts=[c["passed"] for c in ratios],
            )
        )
    parts.append(
        plots.horizontal_bars(
            "Median latency per configuration (lower is faster)",
            [str(t["label"]) for t in timings],
            [t["median_ms"] for t in timings],
            unit="median latency (ms)",
        )
    )
    parts.append(
        _table(
            ("configuration", "median (ms)", "p90 (ms)", "runs"),
            [
                (t["label"], content.value_text(t["median_ms"]), content.value_text(t["p90_ms"]), t["runs"])
                for t in timings
            ],
        )
    )
    return parts


def _readiness(readiness: dict) -> list[str]:
    rows = content.readiness_rows(readiness)
    if not rows:
        return []
    parts = ["<h2>ANE readiness (static estimate)</h2>"]
    if readiness.get("reason"):
        parts.append(f"<p>No baseline figures: {escape(str(readiness['reason']))}</p>")
    header = ("figure", "baseline", "optimized", "ratio (baseline / optimized)")
    return parts + [_table(header, rows, caption="static estimate: baseline and optimized side by side")]


def _readiness_failures(report: dict) -> list[str]:
    parts = []
    for name, rows in content.readiness_failures(report):
        parts.append(f"<h2>Failed <code>{escape(name)}</code>: the ops it counted</h2>")
        parts.append(_table(content.FINDING_COLUMNS, rows, caption=f"ops counted by {name}"))
    return parts


def _details(report: dict) -> list[str]:
    details = report.get("details") or {}
    parts = _readiness_failures(report)
    if details.get("layer_parity"):
        parts += _layer_parity(report, details["layer_parity"])
    if details.get("op_counts"):
        parts += _op_counts(details["op_counts"])
    if details.get("fp16_precision"):
        parts += _fp16_precision(details["fp16_precision"])
    if details.get("speedup") is not None:
        parts += _speedup(report, details["speedup"])
    if details.get("readiness"):
        parts += _readiness(details["readiness"])
    if details.get("compression"):
        from .compression_section import compression_html

        parts += compression_html(details["compression"])
    parts += decoder_sections.html_sections(report)
    if details.get("stages"):
        stages = [(s["name"], f"{s['seconds']:.2f}", content.stage_peak(s)) for s in details["stages"]]
        total = ("total", f"{content.stage_seconds(report):.2f}", content.run_peak(report))
        parts += ["<h2>Stage timings</h2>", _table(("stage", "seconds", "peak RSS (MB)"), [*stages, total])]
        for line in (content.memory_line(report), content.cache_line(report)):
            if line:
                parts.append(f"<p>{escape(line)}</p>")
    if details.get("hazards_text"):
        parts += ["<h2>fp16 hazards</h2>", f"<pre>{escape(str(details['hazards_text']))}</pre>"]
    return parts


def render_html(report: dict) -> str:
    verdict = "PASSED" if report["passed"] else "FAILED"
    model = escape(str(report["model"]))
    device_rows, version_rows = content.environment_rows(report)
    body = [
        f"<h1>ane-verify report: {model}</h1>",
        f'<p><span class="verdict {verdict.lower()}">{verdict}</span>'
        f'<span class="summary">{escape(content.checks_summary(report))}</span></p>',
        "<h2>Provenance</h2>",
        _table(("provenance", "value"), content.provenance_rows(report)),
        "<h2>Configuration</h2>",
        _table(("setting", "value"), [(k, content.value_text(v)) for k, v in report["config"].items()]),
        "<h2>Checks</h2>",
        _table(
            ("check", "metric", "value (or why not measured)", "threshold", "verdict"),
            content.checks_rows(report),
            row_classes=[_row_class(c) for c in report["checks"]],
        ),
        *_details(report),
        "<h2>Environment</h2>",
        '<div class="side-by-side">',
        _table(("device", "value"), device_rows, caption="fingerprint"),
        _table(("library", "version"), version_rows, caption="versions"),
        "</div>",
        "<h2>Artifacts</h2>",
        _table(("artifact", "path"), list(report["artifacts"].items())),
    ]
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>ane-verify {model}: {verdict}</title><style>{STYLE}</style></head>\n"
        "<body>\n" + "\n".join(body) + "\n</body></html>\n"
    )
