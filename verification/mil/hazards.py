"""Find fp16 hazards in a MIL program: where fp16 goes non-finite, which ops lose the most precision, and
which constants fp16 cannot represent.

The reference executor runs the fp16 program in "fp32" mode (every value kept in fp32: the reference) and
in an fp16 mode ("fp16_storage" by default, or "fp16_native"):
- the full fp16 run gives each op's drift (its output against the reference, every upstream loss
  included) and the first op whose output goes NaN or Inf;
- each op's own loss ranks the ops: every op is run on the same inputs in both modes, namely the
  reference run's values as fp16 stores them, and its two outputs are compared. Only what the op adds
  counts (its fp16 arithmetic in the native mode, the rounding of its own output); the rounding of a value
  is charged to the op that produced it, not to its readers. Ranked by drift instead, every op after the
  first real loss would inherit it and crowd the guilty op out of the top of the list.
No op is constant-folded in these runs, so ops whose inputs are all constants are compared too.
Constants are scanned in the fp16 program and, when given, in the fp32 program.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import torch

from verification.metrics import psnr

from .executor import MILExecutor
from .program import load_program

FP16_MAX = 65504.0
FP16_OVERFLOWS_FROM = 65520.0  # halfway to 2**16: from here on round-to-nearest-even gives inf
FP16_SMALLEST_NORMAL = 2.0**-14  # 6.10e-5: below it fp16 values are subnormal, spaced 2**-24 apart
FP16_SMALLEST_SUBNORMAL = 2.0**-24  # 5.96e-8: also what coremltools stores for a constant that rounds to 0
FP16_ROUNDS_TO_ZERO = 2.0**-25  # 2.98e-8: half the smallest subnormal; magnitudes up to it become 0
FP16_RELATIVE_ROUNDING = 2.0**-11  # half an ulp of a normal fp16 value, relative: the precision fp16 has
ROUNDING_BLOCK = 1 << 20  # elements per block of fp16_rounding (its float64 temporaries: 8 MB each)
# The epsilon coremltools' torch frontend gives every rsqrt (MIL's default; torch.rsqrt has none). From the
# iOS 17 opset on it stays an fp32 1e-12 in an fp16 program, where the iOS 16 opset stores fp16's 2**-24.
CONVERTER_RSQRT_EPSILON = 1e-12
# What fp16_unrepresentable_constants counts: constants fp16 turns into Inf or 0 that the model computes with.
UNREPRESENTABLE_KINDS = ("infinite", "overflow", "underflow")
SMALL_CONSTANT = 16  # constants up to this many elements are reported value by value (epsilons, scales)


@dataclass(frozen=True)
class OpPrecision:
    """One op output in fp16 against the fp32 run.

    ``own_psnr_db``: the op in fp16 against the op in fp32, both run on the fp32 run's values as fp16
    stores them: the precision this op loses by itself (its fp16 arithmetic and output rounding).
    ``psnr_db`` (drift): its output in the full fp16 run, every upstream loss included; ``input_psnr_db``
    is the worst drift among its computed float inputs (inf when all its inputs are exact).
    ``-inf`` marks a non-finite fp16 output where the fp32 run is finite. ``module``: the torch module the
    op comes from (``verification.coreml.scopes``; None when the program does not say)."""

    position: int
    name: str
    op_type: str
    output: str
    psnr_db: float
    max_abs_error: float
    input_psnr_db: float
    own_psnr_db: float
    own_max_abs_error: float
    module: str | None = None


@dataclass(frozen=True)
class NonFinite:
    """The first op (program order) whose fp16 output holds NaN or Inf, in even one element; ``module``:
    the torch module it comes from."""

    position: int
    name: str
    op_type: str
    output: str
    nan_count: int
    inf_count: int
    size: int
    reference_is_finite: bool
    module: str | None = None


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
    ops_by_precision: list  # OpPrecision, lowest own PSNR first (most precision lost by the op itself)
    constant_warnings: list  # ConstantWarning
    output_psnr_db: dict = field(default_factory=dict)
    # stateful programs: each state after the step, as the fp32 run left it (the next step's start)
    states_after: dict = field(default_factory=dict)

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
                f"FIRST NON-FINITE: op #{item.position} {item.op_type} {item.name!r} -> {item.output!r} "
                f"in {describe(item.module)}: {item.nan_count} NaN, {item.inf_count} Inf of {item.size} "
                f"elements ({origin})"
            )
        if self.constant_warnings:
            lines.append(f"{len(self.constant_warnings)} constant warning(s):")
        for warning in self.constant_warnings:
            users = ", ".join(warning.used_by) or "no op"
            lines.append(
                f"  [{warning.kind}] {warning.program} const {warning.name!r}: {warning.detail}; "
                f"used by {users}"
            )
        lines.append(
            f"ops that lose the most precision themselves (worst {top}): own = the op in fp16 on the fp32 "
            "run's inputs; drift = its output in the fp16 run, inputs = its inputs' drift (PSNR vs fp32 run)"
        )
        for op in self.ops_by_precision[:top]:
            lines.append(
                f"  #{op.position:<4} {op.op_type:<14} {op.name!r:<32} own {op.own_psnr_db:7.1f} dB "
                f"(max abs error {op.own_max_abs_error:.3g}); drift {op.psnr_db:7.1f} dB, "
                f"inputs {op.input_psnr_db:6.1f} dB; in {describe(op.module)}"
            )
        return "\n".join(lines)


def _consumers(function, modules: dict | None = None) -> dict:
    used_by: dict = {}
    modules = modules or {}
    for op in function.operations:
        where = f" in {describe(modules[op.name])}" if op.name in modules else ""
        for input_name, value in op.inputs.items():
            for var in value if isinstance(value, (list, tuple)) else [value]:
                used_by.setdefault(var.name, []).append(f"{op.op_type} {op.name!r}.{input_name}{where}")
    return used_by


def _only_converter_epsilon(function, name: str, value: np.ndarray) -> bool:
    """True when constant ``name`` is coremltools' default rsqrt epsilon and is read only as such: the torch
    op it was converted from had no epsilon, so what fp16 makes of it changes nothing the source model
    computed (reported as ``converter_epsilon``, not as an underflow)."""
    # No absolute tolerance: isclose's default (1e-8) would take any epsilon up to 1e-8 for this one.
    if value.size != 1 or not np.isclose(float(value.ravel()[0]), CONVERTER_RSQRT_EPSILON, rtol=1e-3, atol=0):
        return False
    readers = [
        (op.op_type, input_name)
        for op in function.operations
        for input_name, var in op.inputs.items()
        if not isinstance(var, (list, tuple)) and var.name == name
    ]
    return bool(readers) and all(reader == ("rsqrt", "epsilon") for reader in readers)


def _describe(values: np.ndarray, mask: np.ndarray) -> str:
    shown = values[mask].ravel()[:4]
    return f"{int(mask.sum())} of {values.size} element(s), e.g. {', '.join(f'{v:.3g}' for v in shown)}"


def fp16_rounding(values: np.ndarray) -> dict:
    """What storing ``values`` (any float dtype) in fp16 does to them, element by element, as IEEE
    round-to-nearest-even does it (numpy's cast): ``overflow`` (finite, becomes +-inf: magnitudes from
    65520 on; 65504 < |v| < 65520 rounds to 65504, no hazard), ``underflow`` (nonzero, becomes 0: magnitudes
    up to 2**-25, which ties to 0), ``inexact_subnormal`` (becomes a subnormal further from the value than a
    normal fp16 value would be: relative error above 2**-11). Exactly representable subnormals (2**-23,
    the fp16-safe eps ``ane_models.optimize`` chooses) are none of these: fp16 holds them as they are."""
    flat = np.asarray(values).reshape(-1)
    masks = {kind: np.empty(flat.size, dtype=bool) for kind in ("overflow", "underflow", "inexact_subnormal")}
    # a block at a time: the float64 temporaries stay a few MB whatever the weight's size
    for start in range(0, flat.size, ROUNDING_BLOCK):
        block = slice(start, start + ROUNDING_BLOCK)
        wide = flat[block].astype(np.float64)
        with np.errstate(over="ignore", under="ignore", invalid="ignore"):
            stored = wide.astype(np.float16).astype(np.float64)
            finite, nonzero = np.isfinite(wide), wide != 0
            relative = np.abs(stored - wide) / np.where(nonzero, np.abs(wide), 1.0)
        subnormal = (np.abs(stored) > 0) & (np.abs(stored) < FP16_SMALLEST_NORMAL)
        masks["overflow"][block] = finite & np.isinf(stored)
        masks["underflow"][block] = finite & nonzero & (stored == 0)
        masks["inexact_subnormal"][block] = finite & subnormal & (relative > FP16_RELATIVE_ROUNDING)
    return {kind: mask.reshape(np.shape(values)) for kind, mask in masks.items()}


def scan_constants(program, label: str, modules: dict | None = None, function_name: str = "main") -> list:
    """Constants fp16 cannot represent faithfully.

    In an fp32 program (what fp16 storage would do to each value; ``fp16_rounding``): magnitudes that
    become +-inf (from 65520), nonzero values that become 0 (up to 2**-25), values that become a subnormal
    with more than fp16's normal rounding error, and infinities. In an fp16 program the asked values are
    gone: infinities, and the smallest subnormal 2**-24 (5.96e-8), which is what coremltools stores for a
    constant that would round to 0 (an eps of 1e-12). Other subnormals of an fp16 program are exact values
    (fp16 holds them), so they are not warned about. Weight-sized tensors are reported for overflow and
    infinities, and for underflow and subnormals only when over 1% of their elements are affected.
    ``modules`` (op name -> torch module path) adds each reader's layer to ``used_by``; ``function_name``
    picks the function scanned."""
    function = program.functions[function_name]
    used_by = _consumers(function, modules)
    warnings = []
    for op in function.operations:
        if op.op_type != "const":
            continue
        value = op.outputs[0].val
        if not isinstance(value, (np.ndarray, np.floating, float)) or np.asarray(value).dtype.kind != "f":
            continue
        values = np.asarray(value)
        small = values.size <= SMALL_CONSTANT
        checks = [("infinite", np.isinf(values), "infinite; 0 * inf and inf - inf give NaN")]
        if values.dtype != np.float16:
            rounding = fp16_rounding(values)
            checks.append(("overflow", rounding["overflow"], "65520 or beyond: +-inf in fp16"))
            if _only_converter_epsilon(function, op.outputs[0].name, values):
                meaning = "coremltools' default rsqrt epsilon (torch.rsqrt has none): 0 in fp16"
                checks.append(("converter_epsilon", rounding["underflow"], meaning))
            else:
                checks.append(("underflow", rounding["underflow"], "at most 2**-25: 0 in fp16"))
            checks.append(
                (
                    "subnormal",
                    rounding["inexact_subnormal"],
                    "an inexact fp16 subnormal (below 2**-14, rounding error above 2**-11)",
                )
            )
        else:
            clamped = np.abs(values) == np.float16(FP16_SMALLEST_SUBNORMAL)  # exact in fp16: no wide copy
            meaning = (
                "2**-24, the smallest fp16 subnormal: what coremltools stores for a value that rounds to 0"
            )
            checks.append(("subnormal", clamped, meaning))
        for kind, mask, meaning in checks:
            count = int(mask.sum())
            if count == 0:
                continue
            sparse = count <= 0.01 * values.size
            if not small and kind in ("underflow", "subnormal", "converter_epsilon") and sparse:
                continue
            name = op.outputs[0].name
            detail = f"{meaning}: {_describe(values, mask)}"
            warnings.append(ConstantWarning(label, name, kind, detail, tuple(used_by.get(name, ()))))
    return warnings


def _op_inputs(function) -> dict:
    names = {}
    for op in function.operations:
        found = []
        for value in op.inputs.values():
            for var in value if isinstance(value, (list, tuple)) else [value]:
                found.append(var.name)
        names[op.name] = found
    return names


def _finished(run) -> dict:
    """The return value (the outputs) of a stepwise run that has yielded its last op."""
    try:
        info, _ = next(run)
    except StopIteration as finished:
        return finished.value
    raise AssertionError(f"the runs fell out of lockstep: op {info.name!r} was left to run")


class _StoredAs(Mapping):
    """``values`` (name -> tensor) as ``executor`` stores each variable, converted on access."""

    def __init__(self, executor: MILExecutor, values: dict):
        self._executor, self._values = executor, values

    def __getitem__(self, name):
        return self._executor.stored(name, self._values[name])

    def __contains__(self, name):
        return name in self._values

    def __iter__(self):
        return iter(self._values)

    def __len__(self):
        return len(self._values)


def _rank(own_psnr_db: float) -> float:
    return np.inf if np.isnan(own_psnr_db) else own_psnr_db


def _compare(reference: torch.Tensor, got: torch.Tensor) -> tuple[float, float]:
    """(PSNR, max abs error) of ``got`` against a finite ``reference``; (-inf, inf) when ``got`` is not
    finite."""
    ref, got = reference.double(), got.double()
    if not torch.isfinite(got).all():
        return float("-inf"), float("inf")
    return psnr(ref, got), float((ref - got).abs().max())


def describe(module: str | None) -> str:
    """A module path as the report shows it ("layers.0.norm1", "top level", "unknown layer")."""
    from verification.coreml.scopes import describe as describe_module

    return describe_module(module)


def _modules_of(program, function_name: str = "main") -> dict:
    from verification.coreml.scopes import op_modules

    try:
        return op_modules(program, function_name)
    except TypeError:
        return {}


def find_hazards(
    fp16_program,
    inputs: dict,
    *,
    fp32_program=None,
    fp16_mode: str = "fp16_storage",
    modules: dict | None = None,
    function_name: str = "main",
    states: Mapping | None = None,
) -> HazardReport:
    """Run ``fp16_program`` in fp32 and in ``fp16_mode`` on ``inputs`` and report its fp16 hazards.

    ``fp16_program`` / ``fp32_program``: a MIL Program, MLModel or .mlpackage path (the fp32 program is
    only scanned for constants). ``modules``: op name -> torch module path; by default what the program
    records (``verification.coreml.scopes.op_modules``: packages converted by verification.coreml.convert
    carry it), so each op reported names the layer it comes from. ``function_name``: the function to
    run. A stateful function runs one step at a time: ``states`` (state name -> array; zeros when
    omitted) is every run's state before the step, and ``states_after`` of the report is the fp32 run's
    after it, to pass to the next step."""
    if modules is None:
        modules = _modules_of(fp16_program, function_name)
    kwargs = dict(fold_constants=False, function_name=function_name, in_place_states=False)
    reference_run = MILExecutor(fp16_program, mode="fp32", **kwargs)
    fp16_run = MILExecutor(reference_run.program, mode=fp16_mode, **kwargs)
    reference: dict = {}

    def state_for(executor):
        if not executor.state_specs:
            return None
        state = executor.make_state()
        for name, value in (states or {}).items():
            state.write(name, value)
        return state

    reference_state = state_for(reference_run)
    stored_inputs = {
        name: np.asarray(value).astype(np.float16) if fp16_run.inputs[name].dtype == "fp16" else value
        for name, value in inputs.items()
    }
    op_inputs = _op_inputs(fp16_run.function)
    drift: dict = {}  # output name -> (PSNR, max abs error, worst input PSNR)
    first: list[NonFinite] = []
    precision: list[OpPrecision] = []
    # Four runs in lockstep, an op at a time, each holding only its live values (not every activation):
    # the reference (fp32) and the fp16 run (drift: how far each op's output is), and both again on the
    # reference's values as fp16 stores them (own loss: what each op alone adds). ``reference`` holds the
    # current op's reference outputs, the values the own-loss runs take before their next op.
    reference: dict = {}
    with torch.inference_mode():
        runs = (
            reference_run.run_stepwise(inputs, state=reference_state),
            fp16_run.run_stepwise(inputs, state=state_for(fp16_run)),
            reference_run.run_stepwise(
                stored_inputs, replacements=_StoredAs(fp16_run, reference), state=state_for(reference_run)
            ),
            fp16_run.run_stepwise(inputs, replacements=reference, state=state_for(fp16_run)),
        )
        while True:
            try:
                info, reference_out = next(runs[0])
            except StopIteration as finished:
                reference_outputs = finished.value
                break
            (fp16_info, fp16_out), (exact_info, exact_out), (own_info, own_out) = (next(r) for r in runs[1:])
            if not info.name == fp16_info.name == exact_info.name == own_info.name:
                raise AssertionError(f"the runs fell out of lockstep at op {info.name!r}")
            reference.clear()
            for name, ref, tensor, exact, own in zip(
                info.output_names, reference_out, fp16_out, exact_out, own_out, strict=True
            ):
                reference[name] = ref
                if not tensor.is_floating_point():
                    continue
                bad = ~torch.isfinite(tensor)
                if bad.any() and not first:
                    first.append(
                        NonFinite(
                            info.position,
                            info.name,
                            info.op_type,
                            name,
                            int(torch.isnan(tensor).sum()),
                            int(torch.isinf(tensor).sum()),
                            tensor.numel(),
                            bool(torch.isfinite(ref).all()),
                            modules.get(info.name),
                        )
                    )
                if not torch.isfinite(ref).all() or tensor.numel() == 0:
                    continue
                upstream = [drift[n][0] for n in op_inputs.get(info.name, ()) if n in drift]
                value, error = _compare(ref, tensor)
                drift[name] = (value, error, min(upstream, default=np.inf))
                own_value, own_error = (
                    _compare(exact, own) if torch.isfinite(exact).all() else (float("nan"), float("nan"))
                )
                precision.append(
                    OpPrecision(
                        info.position,
                        info.name,
                        info.op_type,
                        name,
                        value,
                        error,
                        drift[name][2],
                        own_value,
                        own_error,
                        modules.get(info.name),
                    )
                )
        fp16_outputs = _finished(runs[1])
    reference.clear()
    warnings = scan_constants(
        reference_run.program,
        "fp16 program" if reference_run.is_fp16_program else "program",
        modules,
        function_name,
    )
    if fp32_program is not None:
        warnings += scan_constants(load_program(fp32_program), "fp32 program", function_name=function_name)
    output_psnr = {}
    for name, value in fp16_outputs.items():
        ref = reference_outputs[name]
        if ref.dtype.kind == "f" and np.isfinite(ref).all():
            output_psnr[name] = psnr(ref, value) if np.isfinite(value).all() else float("-inf")
    precision.sort(key=lambda item: (_rank(item.own_psnr_db), item.position))
    after = {name: reference_state.read(name) for name in reference_state.names} if reference_state else {}
    return HazardReport(fp16_mode, first[0] if first else None, precision, warnings, output_psnr, after)
