"""``report.html``: one self-contained page (inline CSS and SVG, no script, no external reference) that
shows the verdict first, then plots where people would rather look than read."""

from __future__ import annotations

from html import escape

from . import content, plots

STYLE = """
body { font: 14px/1.45 -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; margin: 24px auto;
       max-width: 1000px; color: #1b1b1b; }
h1 { margin-bottom: 4px; } h2 { margin-top: 32px; border-bottom: 1px solid #ddd; padding-bottom: 4px; }
.verdict { display: inline-block; padding: 6px 14px; border-radius: 4px; color: #fff; font-weight: 700; }
.passed { background: #2e7d32; } .failed { background: #c62828; }
table { border-collapse: collapse; margin: 8px 0; } td, th { border: 1px solid #ddd; padding: 4px 8px;
       text-align: left; vertical-align: top; } th { background: #f4f4f4; }
tr.row-failed td.verdict-cell { color: #c62828; font-weight: 700; }
tr.row-passed td.verdict-cell { color: #2e7d32; font-weight: 700; }
tr.row-not-measured td.verdict-cell { color: #8a6d00; font-weight: 700; }
tr.row-failed { background: #fdecea; }
.notice { background: #fff8e1; border: 1px solid #f0c36d; padding: 8px 12px; border-radius: 4px; }
pre { background: #f6f8fa; padding: 10px; overflow-x: auto; }
svg.plot { display: block; margin: 8px 0; } .plot-title { font-weight: 700; font-size: 14px; }
.label, .value, .axis-label, .threshold-label { font-size: 12px; } .axis { stroke: #555; }
.threshold { stroke: #000; stroke-dasharray: 4 3; }
"""


def _table(header: tuple, rows: list[tuple], row_class=None) -> str:
    head = "".join(f"<th>{escape(str(h))}</th>" for h in header)
    body = []
    for row in rows:
        cls = f' class="{escape(row_class(row))}"' if row_class else ""
        cells = "".join(
            f"<td{' class=verdict-cell' if row_class and i == len(row) - 1 else ''}>{escape(str(x))}</td>"
            for i, x in enumerate(row)
        )
        body.append(f"<tr{cls}>{cells}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _verdict_class(row) -> str:
    return {"passed": "row-passed", "not measured": "row-not-measured"}.get(row[-1], "row-failed")


def _sections(report: dict) -> list[str]:
    details = report.get("details", {})
    parts = []
    layers = details.get("layer_parity")
    if layers:
        parts += [
            "<h2>Parity per layer</h2>",
            plots.horizontal_bars(
                "PSNR per layer: optimized model vs baseline (torch, fp32)",
                [r["layer"] for r in layers],
                [float(r["psnr_db"]) for r in layers],
                unit="PSNR (dB)",
                threshold=content.threshold_of(report, "torch_parity_psnr_db"),
            ),
        ]
    if details.get("op_counts"):
        rows = content.op_count_rows(details["op_counts"])
        parts += [
            "<h2>Op counts</h2>",
            plots.paired_bars(
                "Op counts by type: baseline vs optimized (converted programs)",
                [r[0] for r in rows],
                [r[1] for r in rows],
                [r[2] for r in rows],
                names=("baseline", "optimized"),
                unit="ops",
            ),
        ]
    precision = details.get("fp16_precision")
    if precision:
        parts += [
            "<h2>fp16 precision loss per op</h2>",
            plots.horizontal_bars(
                "PSNR of each op's fp16 output vs the same program in fp32 (worst first)",
                [f"{r['op']} ({r['op_type']})" for r in precision],
                [float(r["psnr_db"]) for r in precision],
                unit="PSNR (dB)",
            ),
        ]
    speedup = details.get("speedup")
    if speedup is not None:
        parts.append("<h2>Speed-up</h2>")
        if speedup.get("measured") and speedup.get("timings"):
            timings = speedup["timings"]
            parts.append(
                plots.horizontal_bars(
                    "Median latency per configuration (lower is faster)",
                    [t["label"] for t in timings],
                    [t["median_ms"] for t in timings],
                    unit="median latency (ms)",
                )
            )
            parts.append(
                _table(
                    ("configuration", "median (ms)", "p90 (ms)", "runs"),
                    [(t["label"], f"{t['median_ms']:.3g}", f"{t['p90_ms']:.3g}", t["runs"]) for t in timings],
                )
            )
        else:
            parts.append(f'<p class="notice">Not measured here: {escape(str(speedup.get("reason")))}</p>')
    readiness_rows = content.readiness_rows(details.get("readiness", {}))
    if readiness_rows:
        parts += [
            "<h2>ANE readiness (static estimate)</h2>",
            _table(("figure", "baseline", "optimized", "ratio (baseline / optimized)"), readiness_rows),
        ]
    if details.get("stages"):
        parts += [
            "<h2>Stages</h2>",
            _table(("stage", "seconds"), [(s["name"], f"{s['seconds']:.1f}") for s in details["stages"]]),
        ]
    if details.get("hazards_text"):
        parts += ["<h2>fp16 hazards</h2>", f"<pre>{escape(details['hazards_text'])}</pre>"]
    return parts


def render_html(report: dict) -> str:
    verdict = "PASSED" if report["passed"] else "FAILED"
    config = ", ".join(f"{k} {v}" for k, v in report["config"].items())
    environment = sorted(report["environment"].get("fingerprint", {}).items())
    artifacts = "".join(
        f"<li>{escape(k)}: <code>{escape(str(v))}</code></li>" for k, v in report["artifacts"].items()
    )
    body = [
        f"<h1>ane-verify report: {escape(str(report['model']))}</h1>",
        f'<p><span class="verdict {verdict.lower()}">{verdict}</span> {escape(config)}</p>',
        "<h2>Checks</h2>",
        _table(
            ("check", "metric", "value (or why not measured)", "threshold", "verdict"),
            content.checks_rows(report),
            row_class=_verdict_class,
        ),
        *_sections(report),
        "<h2>Environment</h2>",
        _table(("key", "value"), environment),
        f"<h2>Artifacts</h2><ul>{artifacts}</ul>",
    ]
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>ane-verify {escape(str(report['model']))}: {verdict}</title><style>{STYLE}</style></head>"
        f"<body>{''.join(body)}</body></html>\n"
    )
