"""What every rendering shows, taken out of a report once: verdicts, formatted values, plot data."""

from __future__ import annotations

import math


def verdict(check: dict) -> str:
    if not check["measured"]:
        return "FAILED (strict: not measured)" if check["passed"] is False else "not measured"
    return "passed" if check["passed"] else "FAILED"


def as_number(value) -> float:
    """A figure as a float: non-finite values arrive as "inf"/"-inf"/"nan" strings, missing ones as None."""
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def value_text(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def checks_rows(report: dict) -> list[tuple[str, str, str, str, str]]:
    """(name, metric, value, threshold, verdict) per check; the reason stands in for a missing value,
    and follows a measured one as its caveat (a median that did not settle, say)."""
    return [
        (
            c["name"],
            c["metric"],
            _value_with_caveat(c) if c["measured"] else c.get("reason", ""),
            threshold_text(c),
            verdict(c),
        )
        for c in report["checks"]
    ]


def threshold_text(check: dict) -> str:
    """The threshold with where it came from: ``60 (default)``, ``80 (from /p/pyproject.toml)``."""
    text = value_text(check["threshold"])
    source = check.get("threshold_source")
    if not source:
        return text
    return f"{text} ({source})" if source in ("default", "--threshold") else f"{text} (from {source})"


def provenance_rows(report: dict) -> list[tuple[str, str]]:
    """(what, value): the tool that wrote the report and when; for a run, what was verified from where."""
    from .provenance import describe

    rows = [("written by", describe(report.get("tool"))), ("written at", str(report.get("created") or "-"))]
    source = report.get("source") or {}
    for key, label in (
        ("architecture", "architecture"),
        ("checkpoint", "checkpoint"),
        ("seed", "seed"),
        ("inputs", "inputs"),
    ):
        if key in source:
            rows.append((label, value_text(source[key])))
    return rows


def _value_with_caveat(check: dict) -> str:
    caveat = check.get("reason")
    return value_text(check["value"]) + (f" ({caveat})" if caveat else "")


def threshold_of(report: dict, name: str):
    return next((c["threshold"] for c in report["checks"] if c["name"] == name), None)


def op_count_rows(op_counts: dict) -> list[tuple[str, int, int]]:
    """(op type, baseline, optimized), largest first; missing sides count 0."""
    baseline, optimized = op_counts.get("baseline") or {}, op_counts.get("optimized") or {}
    types = sorted(set(baseline) | set(optimized), key=lambda t: -(baseline.get(t, 0) + optimized.get(t, 0)))
    return [(t, baseline.get(t, 0), optimized.get(t, 0)) for t in types]


def stage_seconds(report: dict) -> float:
    return sum(s["seconds"] for s in report.get("details", {}).get("stages", []))


def stage_peak(stage: dict) -> str:
    """A stage's peak RSS in MB; "(so far)" when it is the process's peak, not the stage's own; "(with
    children)" when it is the process tree's, child processes included."""
    if stage.get("peak_mb") is None:
        return "-"
    note = {"process": " (so far)", "process tree": " (with children)"}.get(stage.get("peak_scope"), "")
    return f"{stage['peak_mb']:.0f}{note}"


def run_peak(report: dict) -> str:
    peak = (report.get("details", {}).get("memory") or {}).get("peak_mb")
    return "-" if peak is None else f"{peak:.0f}"


def cache_line(report: dict) -> str:
    """What the program cache did in this run, one sentence; "" when it was not consulted."""
    cache = report.get("details", {}).get("program_cache") or {}
    if not cache.get("directory"):
        return "Program cache: off (every program converted)." if cache else ""
    hits, misses = cache.get("hits", 0), cache.get("misses", 0)
    return (
        f"Program cache ({cache['directory']}): {hits} hit(s), conversion skipped for them; "
        f"{misses} miss(es), converted and kept."
    )


def memory_line(report: dict) -> str:
    """The run's peak against the model's fp32 weights, one sentence; "" when not recorded."""
    memory = report.get("details", {}).get("memory") or {}
    if not memory.get("weights_fp32_mb"):
        return ""
    return (
        f"Peak RSS {memory['peak_mb']:.0f} MB = {memory['peak_over_weights']:.2f}x the model's fp32 "
        f"weights ({memory['weights_fp32_mb']:.0f} MB)."
    )


def _is_figure(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) or value in ("inf", "-inf", "nan")


def readiness_rows(readiness: dict) -> list[tuple[str, str, str, str]]:
    """(figure, baseline, optimized, ratio), from ``readiness.Comparison.to_dict()``'s rows or, without
    rows, from the numeric figures of ``baseline`` and ``optimized`` (either may be None) and ``ratios``."""
    if readiness.get("rows"):
        rows = [
            (r["metric"], r.get("baseline"), r.get("optimized"), r.get("ratio")) for r in readiness["rows"]
        ]
    else:
        baseline, optimized = readiness.get("baseline") or {}, readiness.get("optimized") or {}
        ratios = readiness.get("ratios") or {}
        labels = dict.fromkeys([*baseline, *optimized, *ratios])
        rows = [
            (label, baseline.get(label), optimized.get(label), ratios.get(label))
            for label in labels
            if any(_is_figure(side.get(label)) for side in (baseline, optimized, ratios))
        ]
    return [(str(label), value_text(b), value_text(o), value_text(r)) for label, b, o, r in rows]


def checks_summary(report: dict) -> str:
    checks = report["checks"]
    counts = {
        "passed": sum(c["passed"] is True for c in checks),
        "failed": sum(c["passed"] is False for c in checks),
        "not measured": sum(c["passed"] is None for c in checks),
    }
    return f"{len(checks)} check{'s' if len(checks) != 1 else ''}: " + ", ".join(
        f"{n} {what}" for what, n in counts.items()
    )


def environment_rows(report: dict) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """(device rows, version rows): the fingerprint's (key, value) pairs, library versions apart."""
    environment = report["environment"]
    fingerprint = environment.get("fingerprint") or {}
    versions = environment.get("versions") or {}
    device = [(str(k), value_text(v)) for k, v in fingerprint.items() if k not in versions]
    return device, [(str(k), value_text(v)) for k, v in versions.items()]


FINDING_COLUMNS = ("op type", "op", "position", "place", "torch module", "detail")


def readiness_failures(report: dict) -> list[tuple[str, list[tuple[str, str, str, str, str, str]]]]:
    """(check name, rows of ``FINDING_COLUMNS``) for every measured readiness check that failed, from the
    ops each check counted (``details["readiness_findings"]``); a check with nothing recorded is left out."""
    findings = (report.get("details") or {}).get("readiness_findings") or {}
    failed = []
    for check in report["checks"]:
        found = findings.get(check["name"])
        if check["passed"] is False and check["measured"] and found:
            rows = [
                (
                    str(f.get("op_type")),
                    str(f.get("op")),
                    "input" if f.get("position") is None else f"#{f['position']}",
                    str(f.get("layer") or "-"),
                    "top level" if f.get("module") == "" else str(f.get("module") or "-"),
                    str(f.get("detail") or ""),
                )
                for f in found
            ]
            failed.append((check["name"], rows))
    return failed


def finding_line(row: tuple[str, ...]) -> str:
    """One row of ``readiness_failures`` as a line of text (JUnit, terminals)."""
    op_type, op, position, place, module, detail = row
    where = "; ".join(part for part in (position, place, module) if part != "-")
    return f"{op_type} {op} ({where}): {detail}"
