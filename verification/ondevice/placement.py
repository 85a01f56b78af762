"""Where Core ML plans to run each op (the compute plan, macOS 14.4+), summarized and gated.

``summarize`` is pure: it takes per-op ``OpPlacement`` records (op type, preferred device, supported
devices, estimated cost) and reports the share of ops and of estimated cost whose preferred device is
the Neural Engine, and the ops that fall back. ``const`` ops are not counted (they are weights, not
work). The gated shares leave out the allowed fallbacks (the embedding lookup: gather ops), so that
"only the embedding lookup may leave the Neural Engine" holds for a 50-op model as for a 600-op one;
the shares over all ops (the published 602 of 606) are reported beside them. ``placement_checks``
gates the summary (thresholds in ``verification.thresholds``).

``compute_plan_records`` and ``measure_placement`` are the macOS glue around coremltools'
``MLComputePlan``; elsewhere ``measure_placement`` returns a "not available here" report (and warns
``PlacementNotMeasured``) and ``compute_plan_records`` raises ``NotAvailableHere`` with the reason.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace

from verification import thresholds
from verification.checks import (
    Check,
    PlacementNotMeasured,
    at_least,
    at_most,
    not_measured,
    warn_not_measured,
)
from verification.ondevice.device import DeviceSpec, NotAvailableHere, compute_plan_gate, detect, fingerprint
from verification.ondevice.speedup import COMPUTE_UNITS

NEURAL_ENGINE, CPU, GPU = "neural_engine", "cpu", "gpu"


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
    ane_op_share: float | None  # over ops other than the allowed fallbacks; None if there are none
    ane_cost_share: float | None  # likewise, over their estimated cost; None when nothing was costed
    fallbacks: list[OpPlacement]  # non-const ops not preferring the ANE
    disallowed_fallbacks: list[OpPlacement]  # fallbacks that are not of an allowed op type
    allowed_fallback_op_types: tuple[str, ...] = ()
    ane_op_share_all_ops: float = 0.0  # over every non-const op (the published 602 / 606)
    ane_cost_share_all_ops: float | None = None

    def to_dict(self) -> dict:
        data = asdict(self)
        data["fallback_op_types"] = dict(Counter(op.op_type for op in self.fallbacks))
        return data


def _ane_cost_share(ops) -> float | None:
    costed = [r for r in ops if r.cost is not None]
    total = sum(r.cost for r in costed)
    on_ane = sum(r.cost for r in costed if r.preferred_device == NEURAL_ENGINE)
    return on_ane / total if total > 0 else None


def summarize(
    records, *, allowed_fallback_op_types=thresholds.ANE_ALLOWED_FALLBACK_OP_TYPES
) -> PlacementSummary:
    allowed = tuple(allowed_fallback_op_types)
    ops = [r for r in records if r.op_type != "const"]
    if not ops:
        raise ValueError("summarize: no non-const ops in the compute plan records")
    gated = [r for r in ops if r.op_type not in allowed]
    fallbacks = [r for r in ops if r.preferred_device != NEURAL_ENGINE]
    return PlacementSummary(
        ops=len(ops),
        ops_by_device=dict(Counter(r.preferred_device or "unknown" for r in ops)),
        ane_op_share=sum(r.preferred_device == NEURAL_ENGINE for r in gated) / len(gated) if gated else None,
        ane_cost_share=_ane_cost_share(gated),
        fallbacks=fallbacks,
        disallowed_fallbacks=[r for r in fallbacks if r.op_type not in allowed],
        allowed_fallback_op_types=allowed,
        ane_op_share_all_ops=sum(r.preferred_device == NEURAL_ENGINE for r in ops) / len(ops),
        ane_cost_share_all_ops=_ane_cost_share(ops),
    )


METRICS = {
    "ane_op_share": (
        "share of non-const ops, embedding lookups (gathers) excepted, whose preferred compute device is "
        "the Neural Engine"
    ),
    "ane_cost_share": (
        "share of the compute plan's estimated cost on the Neural Engine, embedding lookups excepted"
    ),
    "ane_fallback_ops": "ops whose preferred device is not the Neural Engine, embedding lookups excepted",
}


def _limits() -> dict[str, float]:
    return {
        "ane_op_share": thresholds.ANE_OP_SHARE_MIN,
        "ane_cost_share": thresholds.ANE_COST_SHARE_MIN,
        "ane_fallback_ops": thresholds.ANE_FALLBACK_OPS_MAX,
    }


def placement_checks(summary: PlacementSummary, *, strict: bool = False) -> list[Check]:
    """Gate ``summary``; a share that cannot be computed is not measured (a failure when ``strict``)."""
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
        fallback = replace(fallback, reason=f"off the Neural Engine: {listed}")
    allowed = ", ".join(summary.allowed_fallback_op_types) or "none"

    def share_check(name: str, value: float | None, missing: str) -> Check:
        if value is None:
            return not_measured(name, METRICS[name], limits[name], missing, strict=strict)
        return at_least(name, METRICS[name], value, limits[name])

    return [
        share_check(
            "ane_op_share",
            summary.ane_op_share,
            f"the compute plan holds no ops other than the allowed fallbacks ({allowed})",
        ),
        share_check(
            "ane_cost_share",
            summary.ane_cost_share,
            f"the compute plan gave no cost estimate for any op other than the allowed fallbacks ({allowed})",
        ),
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
    compiled_model_path: str,
    compute_units: str = "ALL",
    device: DeviceSpec | None = None,
    function_name: str = "main",
) -> list[OpPlacement]:
    """Per-op placement of the compiled model (``.mlmodelc``) at ``compiled_model_path`` (macOS 14.4+);
    ``function_name``: the function of a multifunction model (loaded as the selected one)."""
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
    functions = program.functions
    function = functions.get(function_name) or functions.get("main") or next(iter(functions.values()))
    for op in _operations(function.block):
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


class NoCompiledModel(RuntimeError):
    """The given ``MLModel`` has no compiled model to read a compute plan from (the message says why)."""


def _load_mlmodel(path: str, compute_units: str):
    import coremltools as ct

    return ct.models.MLModel(str(path), compute_units=getattr(ct.ComputeUnit, compute_units))


@contextmanager
def compiled_model_path(
    model_or_path, compute_units: str = "ALL", *, load_model=_load_mlmodel
) -> Iterator[str]:
    """The ``.mlmodelc`` path of an ``MLModel``, ``.mlpackage`` or ``.mlmodelc``, valid inside the block.

    coremltools documents that ``MLModel.get_compiled_model_path()`` "is available only for the lifetime
    of this Python object": the native model deletes its compiled directory when it is destroyed. So the
    ``MLModel`` loaded here for a package path is held until the block ends, and the compute plan must
    be read inside it. ``load_model(path, compute_units)`` is injectable for tests.

    Raises ``NoCompiledModel`` for an ``MLModel`` without one (opened with ``skip_model_load=True``).
    """
    if isinstance(model_or_path, (str, os.PathLike)) and str(model_or_path).rstrip("/").endswith(".mlmodelc"):
        yield str(model_or_path)
        return
    model = (
        load_model(str(model_or_path), compute_units)
        if isinstance(model_or_path, (str, os.PathLike))
        else model_or_path
    )
    try:
        path = model.get_compiled_model_path()
    except Exception as error:  # coremltools raises a bare Exception when the model has no Core ML proxy
        raise NoCompiledModel(
            f"not available: the MLModel has no compiled model to read a compute plan from ({error}); it "
            "was probably opened with skip_model_load=True: pass the .mlpackage path, or an MLModel "
            "loaded without skip_model_load"
        ) from error
    try:
        yield path
    finally:
        del model  # only now may the native model delete its compiled directory


def measure_placement(
    model_or_path,
    *,
    compute_units: str = "ALL",
    device: DeviceSpec | None = None,
    strict: bool = False,
    records_from=compute_plan_records,
    allowed_fallback_op_types=thresholds.ANE_ALLOWED_FALLBACK_OP_TYPES,
    load_model=_load_mlmodel,
) -> PlacementReport:
    """The placement report of an ``MLModel`` or saved ``.mlpackage`` / compiled ``.mlmodelc``.

    Where no compute plan can be read, the report is "not measured" with the reason (no exception) and
    ``PlacementNotMeasured`` is warned for each check; ``strict`` makes those checks failures.
    ``records_from(compiled_path, compute_units, device)`` returns the ``OpPlacement`` records and
    ``load_model(path, compute_units)`` opens a package (both injectable for tests).
    """
    if compute_units not in COMPUTE_UNITS:
        raise ValueError(f"compute_units: expected one of {list(COMPUTE_UNITS)}, got {compute_units!r}")
    device = device or detect()
    report = PlacementReport(False, compute_plan_gate(device), fingerprint(device), compute_units)
    if report.reason is None:
        try:
            with compiled_model_path(model_or_path, compute_units, load_model=load_model) as path:
                records = records_from(path, compute_units, device)
        except NoCompiledModel as error:
            report.reason = str(error)
    if report.reason is not None:
        report.checks = [
            not_measured(name, metric, limit, report.reason, strict=strict)
            for (name, metric), limit in zip(METRICS.items(), _limits().values(), strict=True)
        ]
    else:
        report.measured = True
        report.summary = summarize(records, allowed_fallback_op_types=allowed_fallback_op_types)
        report.checks = placement_checks(report.summary, strict=strict)
    warn_not_measured(report.checks, PlacementNotMeasured)
    return report
