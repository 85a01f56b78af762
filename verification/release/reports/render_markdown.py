"""``report.md``: the report as GitHub-flavoured Markdown (tables only; the plots live in report.html).

Strings from the report are either code spans (names, paths) or escaped text, so a model path holding
``|``, ``<`` or backticks can neither break a table nor inject HTML.
"""

from __future__ import annotations

import re

from . import content, decoder_sections

_MARKDOWN_PUNCTUATION = re.compile(r"([\\`*_\[\]<>&~])")
_CONTROL_CHARACTERS = re.compile("[\x00-\x08\x0b-\x1f\x7f]")  # ANSI escapes would reach terminals


def _line(value) -> str:
    return _CONTROL_CHARACTERS.sub("\ufffd", " ".join(str(value).splitlines()))


def _text(value) -> str:
    """Plain text, one line, every Markdown and HTML special character escaped (``|`` by tables)."""
    return _MARKDOWN_PUNCTUATION.sub(r"\\\1", _line(value))


def _code(value) -> str:
    """A code span fenced by more backticks than the text holds in a row."""
    text = _line(value)
    fence = "`" * (max((len(run) for run in re.findall("`+", text)), default=0) + 1)
    padding = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{padding}{text}{padding}{fence}"


def _fenced_block(text: str) -> list[str]:
    fence = "`" * max(3, max((len(run) for run in re.findall("`+", text)), default=0) + 1)
    return [fence + "text", _CONTROL_CHARACTERS.sub("\ufffd", text.rstrip("\n")), fence, ""]


def _table(header: tuple, rows: list[tuple]) -> list[str]:
    """Cells come escaped by ``_text`` or ``_code``; a pipe in a cell, even in a code span, gets ``\\|``."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(cell).replace("|", "\\|") for cell in row) + " |" for row in rows]
    return lines + [""]


def _verdict(check: dict) -> str:
    verdict = content.verdict(check)
    return f"**{verdict}**" if check["passed"] is False else verdict


def _checks(report: dict) -> list[str]:
    rows = [
        (_code(name), _text(metric), _text(value), _text(threshold), _verdict(check))
        for (name, metric, value, threshold, _), check in zip(
            content.checks_rows(report), report["checks"], strict=True
        )
    ]
    header = ("check", "metric", "value (or why not measured)", "threshold", "verdict")
    return ["## Checks", "", *_table(header, rows)]


def _layer_parity(report: dict, layers: list[dict]) -> list[str]:
    threshold = content.threshold_of(report, "torch_parity_psnr_db")
    header = ["layer", "PSNR (dB)"]
    if threshold is not None:
        header.append(f"at least {content.value_text(threshold)} dB")
    rows = []
    for layer in layers:
        value = content.as_number(layer["psnr_db"])
        row = [_code(layer["layer"]), _text(content.value_text(value))]
        if threshold is not None:
            row.append("yes" if value >= threshold else "**no**")
        rows.append(tuple(row))
    return ["## Parity per layer (torch fp32, optimized vs baseline)", "", *_table(tuple(header), rows)]


def _speedup(speedup: dict) -> list[str]:
    timings = speedup.get("timings") or []
    if not (speedup.get("measured") and timings):
        reason = speedup.get("reason") or "no timings were recorded"
        return ["## Speed-up", "", f"> **Not measured here:** {_text(reason)}", ""]
    rows = [
        (
            _code(t["label"]),
            content.value_text(t["median_ms"]),
            content.value_text(t["p90_ms"]),
            content.value_text(t["runs"]),
        )
        for t in timings
    ]
    return ["## Speed-up", "", *_table(("configuration", "median (ms)", "p90 (ms)", "runs"), rows)]


def _readiness(readiness: dict) -> list[str]:
    rows = [tuple(_text(cell) for cell in row) for row in content.readiness_rows(readiness)]
    if not rows:
        return []
    lines = ["## ANE readiness (static estimate)", ""]
    if readiness.get("reason"):
        lines += [f"No baseline figures: {_text(readiness['reason'])}", ""]
    return lines + _table(("figure (static estimate)", "baseline", "optimized", "ratio"), rows)


def _readiness_failures(report: dict) -> list[str]:
    lines = []
    for name, rows in content.readiness_failures(report):
        lines += [f"## Failed {_code(name)}: the ops it counted", ""]
        lines += _table(
            content.FINDING_COLUMNS,
            [tuple(_code(c) if i < 2 else _text(c) for i, c in enumerate(r)) for r in rows],
        )
    return lines


def _details(report: dict) -> list[str]:
    details = report.get("details") or {}
    lines = _readiness_failures(report)
    if details.get("layer_parity"):
        lines += _layer_parity(report, details["layer_parity"])
    if details.get("op_counts"):
        rows: list[tuple] = [(_code(t), b, o) for t, b, o in content.op_count_rows(details["op_counts"])]
        lines += ["## Op counts, baseline vs optimized (converted programs)", ""]
        lines += _table(("op type", "baseline", "optimized"), rows)
    if details.get("fp16_precision"):
        rows = [
            (
                _code(r["op"]),
                _code(r["op_type"]),
                _code(r.get("layer") or "?"),
                _text(content.value_text(content.as_number(r["psnr_db"]))),
            )
            for r in details["fp16_precision"]
        ]
        lines += ["## fp16 precision loss per op (worst first)", ""]
        lines += _table(("op", "type", "layer (torch module)", "PSNR vs fp32 (dB)"), rows)
    if details.get("speedup") is not None:
        lines += _speedup(details["speedup"])
    if details.get("readiness"):
        lines += _readiness(details["readiness"])
    lines += decoder_sections.markdown_sections(report)
    if details.get("stages"):
        rows = [(_text(s["name"]), f"{s['seconds']:.2f}", content.stage_peak(s)) for s in details["stages"]]
        rows.append(("**total**", f"**{content.stage_seconds(report):.2f}**", content.run_peak(report)))
        lines += ["## Stage timings", "", *_table(("stage", "seconds", "peak RSS (MB)"), rows)]
        for line in (content.memory_line(report), content.cache_line(report)):
            if line:
                lines += ["", line]
    if details.get("hazards_text"):
        lines += ["## fp16 hazards", "", *_fenced_block(str(details["hazards_text"]))]
    return lines


def render_markdown(report: dict) -> str:
    device_rows, version_rows = content.environment_rows(report)
    config_rows = [(_code(k), _code(content.value_text(v))) for k, v in report["config"].items()]
    artifact_rows = [(_code(name), _code(path)) for name, path in report["artifacts"].items()]
    lines = [
        f"# ane-verify: {'PASSED' if report['passed'] else 'FAILED'}",
        "",
        f"Model {_code(report['model'])}. {content.checks_summary(report)}.",
        "",
        *_table(("provenance", "value"), [(_text(k), _code(v)) for k, v in content.provenance_rows(report)]),
        *_table(("setting", "value"), config_rows),
        *_checks(report),
        *_details(report),
        "## Environment",
        "",
        *_table(("device", "value"), [(_code(k), _code(v)) for k, v in device_rows]),
        *_table(("library", "version"), [(_code(k), _code(v)) for k, v in version_rows]),
        "## Artifacts",
        "",
        *_table(("artifact", "path"), artifact_rows),
    ]
    return "\n".join(lines)
