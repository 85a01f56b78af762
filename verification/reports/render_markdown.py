"""``report.md``: the report as GitHub-flavoured Markdown (tables; the plots live in report.html)."""

from __future__ import annotations

from . import content


def _cell(text) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _table(header: tuple, rows: list[tuple]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_cell(x) for x in row) + " |" for row in rows]
    return lines + [""]


def render_markdown(report: dict) -> str:
    details = report.get("details", {})
    config = report["config"]
    lines = [
        f"# ane-verify: {'PASSED' if report['passed'] else 'FAILED'}",
        "",
        f"Model `{report['model']}`; " + ", ".join(f"{key} `{value}`" for key, value in config.items()),
        "",
        "## Checks",
        "",
        *_table(
            ("check", "metric", "value (or why not measured)", "threshold", "verdict"),
            content.checks_rows(report),
        ),
    ]
    if details.get("layer_parity"):
        lines += ["## Parity per layer (torch, optimized vs baseline)", ""]
        lines += _table(
            ("layer", "PSNR (dB)"), [(r["layer"], f"{r['psnr_db']:.1f}") for r in details["layer_parity"]]
        )
    if details.get("op_counts"):
        lines += ["## Op counts, baseline vs optimized (converted programs)", ""]
        lines += _table(("op type", "baseline", "optimized"), content.op_count_rows(details["op_counts"]))
    if details.get("fp16_precision"):
        lines += ["## fp16 precision loss per op (worst first)", ""]
        lines += _table(
            ("op", "type", "PSNR vs fp32 run (dB)"),
            [(r["op"], r["op_type"], f"{r['psnr_db']:.1f}") for r in details["fp16_precision"]],
        )
    speedup = details.get("speedup")
    if speedup is not None:
        lines += ["## Speed-up", ""]
        if speedup.get("measured"):
            lines += _table(
                ("configuration", "median (ms)", "p90 (ms)", "runs"),
                [
                    (t["label"], f"{t['median_ms']:.3g}", f"{t['p90_ms']:.3g}", t["runs"])
                    for t in speedup["timings"]
                ],
            )
        else:
            lines += [f"Not measured here: {speedup.get('reason')}", ""]
    readiness_rows = content.readiness_rows(details.get("readiness", {}))
    if readiness_rows:
        lines += ["## ANE readiness (static estimate)", ""]
        lines += _table(("figure", "baseline", "optimized", "ratio"), readiness_rows)
    if details.get("stages"):
        lines += ["## Stages", ""]
        lines += _table(("stage", "seconds"), [(s["name"], f"{s['seconds']:.1f}") for s in details["stages"]])
    if details.get("hazards_text"):
        lines += ["## fp16 hazards", "", "```", details["hazards_text"], "```", ""]
    lines += ["## Environment", ""]
    lines += _table(("key", "value"), sorted(report["environment"].get("fingerprint", {}).items()))
    lines += ["## Artifacts", ""]
    lines += [f"- {name}: `{path}`" for name, path in report["artifacts"].items()] + [""]
    return "\n".join(lines)
