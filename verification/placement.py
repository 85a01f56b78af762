"""Where Core ML plans to run each op (the compute plan, macOS 14.4+), summarized and gated.

``summarize`` is pure: it takes per-op ``OpPlacement`` records (op type, preferred device, supported
devices, estimated cost) and reports the share of ops and of estimated cost whose preferred device is
the Neural Engine, and the ops that fall back. ``const`` ops are not counted (they are weights, not
work). ``placement_checks`` gates the summary: by default only the embedding lookup (gather ops) may
leave the Neural Engine (thresholds in ``verification.thresholds``).

``compute_plan_records`` and ``measure_placement`` are the macOS glue around coremltools'
``MLComputePlan``; elsewhere ``measure_placement`` returns a "not available here" report and
``compute_plan_records`` raises ``NotAvailableHere`` with the reason.
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import asdict, dataclass, field

from verification import thresholds
from verification.checks import Check, NotMeasuredWarning, at_least, at_most, not_measured
from verification.device import DeviceSpec, NotAvailableHere, compute_plan_gate, detect, fingerprint

NEURAL_ENGINE, CPU, GPU = "neural_engine", "cpu", "gpu"


class PlacementNotMeasured(NotMeasuredWarning):
    """An ANE placement check was skipped: no compute plan here (not macOS 14.4+ with Core ML)."""


@dataclass(frozen=True)
class OpPlacement:
    op_type: str
    preferred_device: str | None  # "neural_engine", "cpu", "gpu"; None if Core ML could not tell
    supported_devices: tuple[str, ...]
    cost: float | None  # share of the model's estimated work, 0..1; None if not estimated
    name: str | None = None  # the op's first output name, to find it in the program


@dataclass
class PlacementSummary:
    ops: int
    ops_by_device: dict[str, int]
    ane_op_share: float
    ane_cost_share: float | None  # None when no op had a cost estimate
    fallbacks: list[OpPlacement]  # non-const ops not preferring the ANE
    disallowed_fallbacks: list[OpPlacement]  # fallbacks that are not of an allowed op type

    def to_dict(self) -> dict:
        data = asdict(self)
        data["fallback_op_types"] = dict(Counter(op.op_type for op in self.fallbacks))
        return data


def summarize(
    records, *, allowed_fallback_op_types=thresholds.ANE_ALLOWED_FALLBACK_OP_TYPES
) -> PlacementSummary:
    ops = [r for r in records if r.op_type != "const"]
    if not ops:
        raise ValueError("summarize: no non-const ops in the compute plan records")
    on_ane = [r for r in ops if r.preferred_device == NEURAL_ENGINE]
    costed = [r for r in ops if r.cost is not None]
    total_cost = sum(r.cost for r in costed)
    ane_cost = sum(r.cost for r in costed if r.preferred_device == NEURAL_ENGINE)
    fallbacks = [r for r in ops if r.preferred_device != NEURAL_ENGINE]
    return PlacementSummary(
        ops=len(ops),
        ops_by_device=dict(Counter(r.preferred_device or "unknown" for r in ops)),
        ane_op_share=len(on_ane) / len(ops),
        ane_cost_share=ane_cost / total_cost if total_cost > 0 else None,
        fallbacks=fallbacks,
        disallowed_fallbacks=[r for r in fallbacks if r.op_type not in allowed_fallback_op_types],
    )


METRICS = {
    "ane_op_share": "share of non-const ops whose preferred compute device is the Neural Engine",
    "ane_cost_share": "share of the compute plan's estimated cost on the Neural Engine",
    "ane_fallback_ops": "ops whose preferred device is not the Neural Engine, embedding lookups excepted",
}


def _limits() -> dict[str, float]:
    return {
        "ane_op_share": thresholds.ANE_OP_SHARE_MIN,
        "ane_cost_share": thresholds.ANE_COST_SHARE_MIN,
        "ane_fallback_ops": thresholds.ANE_FALLBACK_OPS_MAX,
    }


def placement_checks(summary: PlacementSummary) -> list[Check]:
    limits = _limits()
    fallback = at_most(
        "ane_fallback_ops",
        METRICS["ane_fallback_ops"],
        len(summary.disallowed_fallbacks),
        limits["ane_fallback_ops"],
    )
    if summary.disallowed_fallbacks:
        listed = ", ".join(
            f"{r.op_type} {r.name or ''} on {r.preferred_device}".replace("  ", " ")
            for r in summary.disallowed_fallbacks[:20]
        )
        fallback = Check(**{**fallback.to_dict(), "reason": f"off the Neural Engine: {listed}"})
    if summary.ane_cost_share is None:
        cost = not_measured(
            "ane_cost_share",
            METRICS["ane_cost_share"],
            limits["ane_cost_share"],
            "the compute plan gave no cost estimate for any op",
        )
    else:
        cost = at_least(
            "ane_cost_share", METRICS["ane_cost_share"], summary.ane_cost_share, limits["ane_cost_share"]
        )
    return [
        at_least("ane_op_share", METRICS["ane_op_share"], summary.ane_op_share, limits["ane_op_share"]),
        cost,
        fallback,
    ]


@dataclass
class PlacementReport:
    measured: bool
    reason: str | None
    device: dict
    compute_units: str
    summary: PlacementSummary | None = None
    checks: list[Check] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {
            "measured": self.measured,
            "reason": self.reason,
            "device": self.device,
            "compute_units": self.compute_units,
            "summary": self.summary.to_dict() if self.summary else None,
            "checks": [c.to_dict() for c in self.checks],
        }


def _device_kind(device) -> str:
    from coremltools.models import compute_device as cd

    for kind, cls in (
        (NEURAL_ENGINE, cd.MLNeuralEngineComputeDevice),
        (GPU, cd.MLGPUComputeDevice),
        (CPU, cd.MLCPUComputeDevice),
    ):
        if isinstance(device, cls):
            return kind
    return type(device).__name__


def _operations(block):
    for op in block.operations:
        yield op
        for inner in op.blocks:
            yield from _operations(inner)


def compute_plan_records(
    compiled_model_path: str, compute_units: str = "ALL", device: DeviceSpec | None = None
) -> list[OpPlacement]:
    """Per-op placement of the compiled model (``.mlmodelc``) at ``compiled_model_path`` (macOS 14.4+)."""
    blocked = compute_plan_gate(device or detect())
    if blocked is not None:
        raise NotAvailableHere(blocked)
    import coremltools as ct
    from coremltools.models.compute_plan import MLComputePlan

    plan = MLComputePlan.load_from_path(
        path=str(compiled_model_path), compute_units=getattr(ct.ComputeUnit, compute_units)
    )
    program = plan.model_structure.program
    if program is None:
        raise ValueError(f"{compiled_model_path}: not an ML Program (compute plans here cover ML Programs)")
    records = []
    for op in _operations(program.functions["main"].block):
        usage = plan.get_compute_device_usage_for_mlprogram_operation(op)
        cost = plan.get_estimated_cost_for_mlprogram_operation(op)
        records.append(
            OpPlacement(
                op_type=op.operator_name,
                preferred_device=_device_kind(usage.preferred_compute_device) if usage else None,
                supported_devices=tuple(_device_kind(d) for d in usage.supported_compute_devices)
                if usage
                else (),
                cost=cost.weight if cost else None,
                name=op.outputs[0].name if op.outputs else None,
            )
        )
    return records


def measure_placement(
    model_or_path,
    *,
    compute_units: str = "ALL",
    device: DeviceSpec | None = None,
    strict: bool = False,
    records_from=compute_plan_records,
    allowed_fallback_op_types=thresholds.ANE_ALLOWED_FALLBACK_OP_TYPES,
) -> PlacementReport:
    """The placement report of an ``MLModel`` or saved ``.mlpackage`` / compiled ``.mlmodelc``.

    Where no compute plan can be read, the report is "not measured" with the reason (no exception);
    ``strict`` makes those checks failures. ``records_from(compiled_path, compute_units, device)``
    returns the ``OpPlacement`` records (injectable for tests).
    """
    device = device or detect()
    report = PlacementReport(False, compute_plan_gate(device), fingerprint(device), compute_units)
    if report.reason is not None:
        report.checks = [
            not_measured(name, metric, limit, report.reason, strict=strict)
            for (name, metric), limit in zip(METRICS.items(), _limits().values(), strict=True)
        ]
        return report
    records = records_from(_compiled_path(model_or_path, compute_units), compute_units, device)
    report.measured, report.reason = True, None
    report.summary = summarize(records, allowed_fallback_op_types=allowed_fallback_op_types)
    report.checks = placement_checks(report.summary)
    return report


def _compiled_path(model_or_path, compute_units: str) -> str:
    if isinstance(model_or_path, (str, os.PathLike)) and str(model_or_path).endswith(".mlmodelc"):
        return str(model_or_path)
    if isinstance(model_or_path, (str, os.PathLike)):
        import coremltools as ct

        model_or_path = ct.models.MLModel(
            str(model_or_path), compute_units=getattr(ct.ComputeUnit, compute_units)
        )
    return model_or_path.get_compiled_model_path()
