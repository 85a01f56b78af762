"""Find fp16 hazards in a MIL program: where fp16 goes non-finite, which ops lose the most precision, and
which constants fp16 cannot represent.

The fp16 program is run twice on the same inputs by the reference executor: in "fp32" mode (every value
kept in fp32: the reference) and in an fp16 mode ("fp16_storage" by default, or "fp16_native"), comparing
every op's output. Constants are scanned in the fp16 program and, when given, in the fp32 program.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from verification.metrics import psnr

from .executor import MILExecutor
from .program import load_program

FP16_MAX = 65504.0
FP16_SMALLEST_NORMAL = 2.0**-14  # 6.10e-5: below it fp16 values are subnormal (fewer significant bits)
FP16_ROUNDS_TO_ZERO = 2.0**-25  # 2.98e-8: half the smallest subnormal; smaller magnitudes become 0
SMALL_CONSTANT = 16  # constants up to this many elements are reported value by value (epsilons, scales)


@dataclass(frozen=True)
class OpPrecision:
    """One op's fp16 output against its fp32-mode output. ``input_psnr_db`` is the worst PSNR among its
    computed float inputs (inf when all inputs are exact), so ``input_psnr_db - psnr_db`` is what the op
    itself lost."""

    position: int
    name: str
    op_type: str
    output: str
    psnr_db: float
    max_abs_error: float
    input_psnr_db: float


@dataclass(frozen=True)
class NonFinite:
    """The first op (program order) whose fp16 output holds NaN or Inf."""

    position: int
    name: str
    op_type: str
    output: str
    nan_count: int
    inf_count: int
    size: int
    reference_is_finite: bool


@dataclass(frozen=True)
class ConstantWarning:
    """A constant fp16 cannot hold faithfully; ``used_by`` lists "op_type 'op name'.input" entries."""

    program: str
    name: str
    kind: str
    detail: str
    used_by: tuple


@dataclass
class HazardReport:
    fp16_mode: str
    first_non_finite: NonFinite | None
    ops_by_precision: list  # OpPrecision, worst PSNR first
    constant_warnings: list  # ConstantWarning
    output_psnr_db: dict = field(default_factory=dict)

    def render(self, top: int = 10) -> str:
        """A readable summary: first non-finite op, constant warnings, the ``top`` least precise ops."""
        lines = [f"fp16 hazard report (fp16 run: {self.fp16_mode}; reference: same program in fp32)"]
        for name, value in self.output_psnr_db.items():
            lines.append(f"  output {name!r}: {value:.1f} dB vs the fp32 run")
        item = self.first_non_finite
        if item is None:
            lines.append("no op produced NaN or Inf in fp16")
        else:
            origin = "fp32 run finite there" if item.reference_is_finite else "fp32 run also non-finite"
            lines.append(
                f"FIRST NON-FINITE: op #{item.position} {item.op_type} {item.name!r} -> {item.output!r}: "
                f"{item.nan_count} NaN, {item.inf_count} Inf of {item.size} elements ({origin})"
            )
        if self.constant_warnings:
            lines.append(f"{len(self.constant_warnings)} constant warning(s):")
        for warning in self.constant_warnings:
            users = ", ".join(warning.used_by) or "no op"
            lines.append(
                f"  [{warning.kind}] {warning.program} const {warning.name!r}: {warning.detail}; "
                f"used by {users}"
            )
        lines.append(f"least precise ops (PSNR of the fp16 output vs the fp32 run, worst {top}):")
        for op in self.ops_by_precision[:top]:
            lines.append(
                f"  #{op.position:<4} {op.op_type:<14} {op.name!r:<32} {op.psnr_db:7.1f} dB "
                f"(inputs {op.input_psnr_db:6.1f} dB, max abs error {op.max_abs_error:.3g})"
            )
        return "\n".join(lines)


def _consumers(function) -> dict:
    used_by: dict = {}
    for op in function.operations:
        for input_name, value in op.inputs.items():
            for var in value if isinstance(value, (list, tuple)) else [value]:
                used_by.setdefault(var.name, []).append(f"{op.op_type} {op.name!r}.{input_name}")
    return used_by


def _describe(values: np.ndarray, mask: np.ndarray) -> str:
    shown = values[mask].ravel()[:4]
    return f"{int(mask.sum())} of {values.size} element(s), e.g. {', '.join(f'{v:.3g}' for v in shown)}"


def scan_constants(program, label: str) -> list:
    """Constants fp16 cannot represent. In an fp32 program: magnitudes above 65504 (become +-inf), nonzero
    values below 2**-25 (become 0) or below 2**-14 (become subnormal), infinities. In an fp16 program:
    subnormal values (what an epsilon like 1e-12 turns into: ~6e-8) and infinities. Weight-sized tensors
    are reported for overflow and infinities, and for underflow only when over 1% of them underflow."""
    function = program.functions["main"]
    used_by = _consumers(function)
    warnings = []
    for op in function.operations:
        if op.op_type != "const":
            continue
        value = op.outputs[0].val
        if not isinstance(value, (np.ndarray, np.floating, float)) or np.asarray(value).dtype.kind != "f":
            continue
        values = np.asarray(value)
        magnitude = np.abs(values.astype(np.float64))
        small = values.size <= SMALL_CONSTANT
        checks = [("infinite", np.isinf(values), "infinite; 0 * inf and inf - inf give NaN")]
        if values.dtype != np.float16:
            checks.append(
                ("overflow", np.isfinite(values) & (magnitude > FP16_MAX), "beyond fp16's 65504: +-inf")
            )
            checks.append(
                ("underflow", (magnitude > 0) & (magnitude < FP16_ROUNDS_TO_ZERO), "below 2**-25: 0 in fp16")
            )
        subnormal = (magnitude >= (FP16_ROUNDS_TO_ZERO if values.dtype != np.float16 else 0)) & (
            magnitude > 0
        )
        subnormal &= magnitude < FP16_SMALLEST_NORMAL
        checks.append(("subnormal", subnormal, "subnormal in fp16 (below 2**-14, few significant bits)"))
        for kind, mask, meaning in checks:
            count = int(mask.sum())
            if count == 0:
                continue
            if not small and kind in ("underflow", "subnormal") and count <= 0.01 * values.size:
                continue
            name = op.outputs[0].name
            detail = f"{meaning}: {_describe(values, mask)}"
            warnings.append(ConstantWarning(label, name, kind, detail, tuple(used_by.get(name, ()))))
    return warnings


def _float_inputs(function) -> dict:
    names = {}
    for op in function.operations:
        found = []
        for value in op.inputs.values():
            for var in value if isinstance(value, (list, tuple)) else [value]:
                found.append(var.name)
        names[op.name] = found
    return names


def find_hazards(
    fp16_program, inputs: dict, *, fp32_program=None, fp16_mode: str = "fp16_storage"
) -> HazardReport:
    """Run ``fp16_program`` in fp32 and in ``fp16_mode`` on ``inputs`` and report its fp16 hazards.

    ``fp16_program`` / ``fp32_program``: a MIL Program, MLModel or .mlpackage path (the fp32 program is
    only scanned for constants)."""
    reference_run = MILExecutor(fp16_program, mode="fp32")
    fp16_run = MILExecutor(reference_run.program, mode=fp16_mode)
    reference: dict = {}

    def keep(info, outputs):
        for name, tensor in zip(info.output_names, outputs, strict=True):
            if tensor.is_floating_point():
                reference[name] = tensor

    reference_outputs = reference_run.run(inputs, observe=keep)
    op_inputs = _float_inputs(fp16_run.function)
    var_psnr: dict = {}
    precision: list[OpPrecision] = []
    first: list[NonFinite] = []

    def compare(info, outputs):
        for name, tensor in zip(info.output_names, outputs, strict=True):
            if name not in reference:
                continue
            ref, got = reference[name].double(), tensor.double()
            bad = ~torch.isfinite(got)
            if bad.any() and not first:
                first.append(
                    NonFinite(
                        info.position,
                        info.name,
                        info.op_type,
                        name,
                        int(torch.isnan(got).sum()),
                        int(torch.isinf(got).sum()),
                        got.numel(),
                        bool(torch.isfinite(ref).all()),
                    )
                )
            if not torch.isfinite(ref).all() or got.numel() == 0:
                continue
            value = psnr(ref, got) if not bad.any() else float("-inf")
            var_psnr[name] = value
            error = float((ref - got).abs().max()) if not bad.any() else float("inf")
            upstream = [var_psnr[n] for n in op_inputs.get(info.name, ()) if n in var_psnr]
            precision.append(
                OpPrecision(
                    info.position, info.name, info.op_type, name, value, error, min(upstream, default=np.inf)
                )
            )

    fp16_outputs = fp16_run.run(inputs, observe=compare)
    warnings = scan_constants(
        reference_run.program, "fp16 program" if reference_run.is_fp16_program else "program"
    )
    if fp32_program is not None:
        warnings += scan_constants(load_program(fp32_program), "fp32 program")
    output_psnr = {}
    for name, value in fp16_outputs.items():
        ref = reference_outputs[name]
        if ref.dtype.kind == "f" and np.isfinite(ref).all():
            output_psnr[name] = psnr(ref, value) if np.isfinite(value).all() else float("-inf")
    precision.sort(key=lambda item: (item.psnr_db, item.position))
    return HazardReport(fp16_mode, first[0] if first else None, precision, warnings, output_psnr)
