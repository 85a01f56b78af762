"""What every rendering shows, taken out of a report once: verdicts, formatted values, plot data."""

from __future__ import annotations


def verdict(check: dict) -> str:
    if not check["measured"]:
        return "FAILED (strict: not measured)" if check["passed"] is False else "not measured"
    return "passed" if check["passed"] else "FAILED"


def value_text(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def checks_rows(report: dict) -> list[tuple[str, str, str, str, str]]:
    """(name, metric, value, threshold, verdict) per check; the reason stands in for a missing value."""
    return [
        (
            c["name"],
            c["metric"],
            value_text(c["value"]) if c["measured"] else c.get("reason", ""),
            value_text(c["threshold"]),
            verdict(c),
        )
        for c in report["checks"]
    ]


def threshold_of(report: dict, name: str):
    return next((c["threshold"] for c in report["checks"] if c["name"] == name), None)


def op_count_rows(op_counts: dict) -> list[tuple[str, int, int]]:
    """(op type, baseline, optimized), largest first; missing sides count 0."""
    baseline, optimized = op_counts.get("baseline") or {}, op_counts.get("optimized") or {}
    types = sorted(set(baseline) | set(optimized), key=lambda t: -(baseline.get(t, 0) + optimized.get(t, 0)))
    return [(t, baseline.get(t, 0), optimized.get(t, 0)) for t in types]


def stage_seconds(report: dict) -> float:
    return sum(s["seconds"] for s in report.get("details", {}).get("stages", []))


def readiness_rows(readiness: dict) -> list[tuple[str, str, str, str]]:
    """(figure, baseline, optimized, ratio) from ``readiness.Comparison.to_dict()``'s rows."""
    return [
        (
            row["metric"],
            value_text(row.get("baseline")),
            value_text(row.get("optimized")),
            value_text(row.get("ratio")),
        )
        for row in readiness.get("rows", [])
    ]
