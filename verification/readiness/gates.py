"""Gating a readiness report (``readiness_checks``) and putting two side by side (``compare``)."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from verification import thresholds
from verification.checks import Check, at_least, at_most, not_measured

from .analysis import ESTIMATE_MODEL, Finding, ReadinessReport

READINESS_METRICS = {
    "readiness_layer_norms_fused": "fused layer_norm ops / all layer norms (static)",
    "readiness_copies_per_layer": "transposes + data-moving reshapes inside the encoder layers per layer "
    "(static)",
    "readiness_copies_outside_layers": "transposes + data-moving reshapes outside the encoder layers "
    "(static)",
    "readiness_dims_within_limits": "tensors and kernels over the known ANE dimension limits (static)",
    "readiness_off_ane_ops": "ops that typically run off the ANE: gathers, int32 tensors (static)",
}


NO_LAYER_NORMS = (
    "no layer norm found in the program (neither layer_norm ops nor the decomposed form: mean, centre, "
    "square, mean, where a mean is a reduce_mean or a reduce_sum divided by a constant): nothing to check"
)


def findings_by_check(report: ReadinessReport) -> dict[str, list[Finding]]:
    """The ops each readiness check counts, by check name: what a failed check names."""
    inside = [c for c in report.copies if c.layer and c.layer.startswith(("layer ", "between "))]
    outside = [c for c in report.copies if c not in inside]
    return {
        "readiness_layer_norms_fused": list(report.unfused_layer_norm_ops),
        "readiness_copies_per_layer": inside,
        "readiness_copies_outside_layers": outside,
        "readiness_dims_within_limits": list(report.over_limits),
        "readiness_off_ane_ops": list(report.off_ane_ops),
    }


def describe_finding(finding: Finding) -> str:
    """One line: op type, name, position, place among the layer norms and torch module, and the detail."""
    where = [f"#{finding.position}" if finding.position is not None else "program input"]
    module = "top level" if finding.module == "" else finding.module
    where += [part for part in (finding.layer, module) if part]
    return f"{finding.op_type} {finding.op} ({'; '.join(where)}): {finding.detail}"


def _named(check: Check, findings: list[Finding], limit: int = 5) -> Check:
    """``check`` with the ops it counted as its reason, when it failed (``findings_by_check`` has all of
    them, with the module and the detail)."""
    if check.passed is not False or not findings:
        return check
    listed = "; ".join(
        f"{f.op_type} {f.op} at #{f.position}" + (f" ({f.layer})" if f.layer else "")
        for f in findings[:limit]
    )
    more = f"; and {len(findings) - limit} more" if len(findings) > limit else ""
    return replace(check, reason=f"counted {len(findings)}: {listed}{more}")


def readiness_checks(
    report: ReadinessReport, *, strict: bool = False, architecture: str | None = None
) -> list[Check]:
    """Gate one report (thresholds in ``verification.thresholds``; copies outside the layers by the
    head of ``architecture``, a transformers class name). The static figures are always there; the
    layer-norm fusion share is not measured when no layer norm is found, and copies per layer when no
    encoder layers are (a failure when ``strict``). A failed check names the ops it counted."""
    m = READINESS_METRICS
    if report.layer_norms:
        checks = [
            at_least(
                "readiness_layer_norms_fused",
                m["readiness_layer_norms_fused"],
                report.layer_norms_fused / report.layer_norms,
                thresholds.READINESS_LAYER_NORMS_FUSED_MIN,
            )
        ]
    else:
        checks = [
            not_measured(
                "readiness_layer_norms_fused",
                m["readiness_layer_norms_fused"],
                thresholds.READINESS_LAYER_NORMS_FUSED_MIN,
                NO_LAYER_NORMS,
                strict=strict,
            )
        ]
    if report.copies_per_layer is None:
        checks.append(
            not_measured(
                "readiness_copies_per_layer",
                m["readiness_copies_per_layer"],
                thresholds.READINESS_COPIES_PER_LAYER_MAX,
                "no encoder layers found (fewer than 3 layer norms) and num_layers not given",
                strict=strict,
            )
        )
    else:
        checks.append(
            at_most(
                "readiness_copies_per_layer",
                m["readiness_copies_per_layer"],
                report.copies_per_layer,
                thresholds.READINESS_COPIES_PER_LAYER_MAX,
            )
        )
    checks += [
        at_most(
            "readiness_copies_outside_layers",
            m["readiness_copies_outside_layers"],
            report.copies_outside_layers,
            thresholds.readiness_copies_outside_layers_max(architecture),
        ),
        at_most(
            "readiness_dims_within_limits",
            m["readiness_dims_within_limits"],
            len(report.over_limits),
            thresholds.READINESS_DIMS_OVER_LIMITS_MAX,
        ),
        at_most(
            "readiness_off_ane_ops",
            m["readiness_off_ane_ops"],
            len(report.off_ane_ops),
            thresholds.READINESS_OFF_ANE_OPS_MAX,
        ),
    ]
    findings = findings_by_check(report)
    return [_named(c, findings.get(c.name, [])) for c in checks]


@dataclass
class Comparison:
    baseline: ReadinessReport
    optimized: ReadinessReport
    rows: list[tuple[str, float | None, float | None, float | None]] = field(default_factory=list)

    def ratio(self, metric: str) -> float | None:
        return next(r[3] for r in self.rows if r[0] == metric)

    def to_dict(self) -> dict:
        return {
            "kind": "static estimate",
            "estimate_model": ESTIMATE_MODEL,
            "ratio": "baseline / optimized",
            "rows": [
                dict(zip(("metric", "baseline", "optimized", "ratio"), row, strict=True)) for row in self.rows
            ],
            "baseline": self.baseline.to_dict(),
            "optimized": self.optimized.to_dict(),
        }

    def format_table(self) -> str:
        width = max(len(r[0]) for r in self.rows)
        labels = f"{self.baseline.label:>14}  {self.optimized.label:>14}"
        lines = [f"{'static estimate':<{width}}  {labels}  {'ratio':>8}"]
        for metric, base, opt, ratio in self.rows:
            lines.append(
                f"{metric:<{width}}  {_cell(base):>14}  {_cell(opt):>14}  "
                f"{(f'{ratio:.2f}x' if ratio is not None else '-'):>8}"
            )
        return "\n".join(lines)


def _cell(value) -> str:
    if value is None:
        return "-"
    return (
        f"{value:,.2f}" if isinstance(value, float) and not float(value).is_integer() else f"{int(value):,}"
    )


def compare(baseline: ReadinessReport, optimized: ReadinessReport) -> Comparison:
    """Side-by-side figures with ratios baseline / optimized (None where the optimized figure is 0)."""

    def figures(r: ReadinessReport) -> dict[str, float | None]:
        return {
            "ops": r.ops,
            "copies (transposes + data-moving reshapes)": len(r.copies),
            "copies per layer": r.copies_per_layer,
            "layer norms fused": r.layer_norms_fused,
            "layer norms unfused": r.layer_norms_unfused,
            "tensors with last axis < 64 B": len(r.short_last_axis_tensors),
            "padding bytes (all tensors)": r.padding_bytes_total,
            "peak activation bytes (padded)": r.peak_activation_bytes,
            "peak activation bytes (unpadded)": r.peak_activation_bytes_unpadded,
            "largest intermediate bytes (padded)": r.largest_intermediate.padded_bytes
            if r.largest_intermediate
            else None,
            "ops off the ANE": len(r.off_ane_ops),
            "dims over limits": len(r.over_limits),
        }

    base, opt = figures(baseline), figures(optimized)
    rows = []
    for metric, b in base.items():
        o = opt[metric]
        rows.append((metric, b, o, b / o if b is not None and o else None))
    return Comparison(baseline, optimized, rows)
