"""Static ANE-readiness report of a converted ML Program: no device needed, every figure an estimate.

``analyze(program)`` reads the MIL program (a coremltools ``Program``, an ``MLModel`` or a saved
``.mlpackage``) and reports op counts, copies, layer-norm fusion, 64-byte padding, a liveness estimate
of peak activation memory, ops that typically run off the Neural Engine and dimensions over the known
limits. ``compare(baseline, optimized)`` puts two reports side by side with ratios (baseline over
optimized); ``readiness_checks`` gates one report. ``ESTIMATE_MODEL`` states the model behind the
numbers; it travels in every report.
"""

from __future__ import annotations

import math
import os
from collections import Counter
from dataclasses import asdict, dataclass, field

import numpy as np
from coremltools.converters.mil.mil import Program, types

from verification.coreml.scopes import op_modules

from .locate import layer_of

ALIGNMENT_BYTES = 64
# Limits reported from M1 measurements, third-party and reverse-engineered (docs/ane-facts.md, "Limits").
MAX_WIDTH, MAX_HEIGHT, MAX_CHANNELS, MAX_CONV_KERNEL_WIDTH = 16384, 16384, 65536, 13
# Minimize copies: a transpose always moves data; a reshape only when it changes the padded row layout
# (see reshape_moves_data).
TRANSPOSE_OP_TYPE, RESHAPE_OP_TYPE = "transpose", "reshape"
GATHER_OP_TYPES = ("gather", "gather_nd", "gather_along_axis")
LAYER_NORM_OP_TYPE = "layer_norm"

ESTIMATE_MODEL = (
    "Static estimate from the converted MIL program alone, not a measurement. Tensors: every program "
    "input and every output of a non-const op (weights and other consts excluded: they stream from "
    "memory, and the compiler lays them out its own way). Size: elements times bytes per element (fp16 "
    "2, fp32 and int32 4, bool and int8 1) with the last axis padded to 64 bytes, as the Neural Engine "
    "stores it; rank-0 tensors count as one element. Liveness: ops run in program order, one at a time; "
    "a tensor is live from the op that makes it (inputs: from the start) to its last consumer (program "
    "outputs: to the end), so an op's inputs and outputs are live together; every op output is a new "
    "buffer (no in-place ops, no aliasing of reshapes: the compiler may do better). Peak: the largest "
    "sum of live tensor sizes over the ops. Copies: every transpose, and every reshape that moves data: "
    "one that changes the last axis while a row on either side is padded (its bytes not a multiple of 64); "
    "a reshape that keeps the last axis, or whose rows are unpadded on both sides, only relabels the "
    "buffer (expand_dims, squeeze and slices are not counted). Layer norms: layer_norm ops "
    "(fused) and decomposed ones (a mean of squared deviations from a mean; a mean is a reduce_mean or a "
    "reduce_sum divided by a constant). Encoder layers: from the "
    "first to the last layer norm (post-LN encoders such as BERT: one embedding layer norm, then two per "
    "layer), layer count = (layer norms - 1) // 2 unless given. Off the Neural Engine: gathers and any "
    "op with an int32 input or output tensor. Dimension limits: last axis as width, the one before as "
    "height, the one before that as channels; conv kernel width from the weight's last axis. A reshape that "
    "moves no data computes nothing and is not counted off the Neural Engine, whatever its dtype. Where "
    "an op came from: its position in the program, its place among the layer norms, and the torch module "
    "path (verification.coreml.scopes) where the program records one."
)


def bytes_per_element(dtype) -> int:
    if dtype == types.bool:
        return 1
    return np.dtype(types.nptype_from_builtin(dtype)).itemsize


def _static_shape(var) -> tuple[int, ...] | None:
    shape = tuple(var.shape) if types.is_tensor(var.sym_type) else ()
    if any(not isinstance(d, (int, np.integer)) for d in shape):
        return None  # symbolic dimension
    return tuple(int(d) for d in shape)


def tensor_bytes(shape: tuple[int, ...], itemsize: int) -> tuple[int, int]:
    """(unpadded, padded) bytes of a tensor whose last axis is padded to 64 bytes."""
    shape = shape or (1,)
    rows = math.prod(shape[:-1])
    padded_row = math.ceil(shape[-1] * itemsize / ALIGNMENT_BYTES) * ALIGNMENT_BYTES
    return rows * shape[-1] * itemsize, rows * padded_row


@dataclass(frozen=True)
class Tensor:
    name: str
    producer: str  # op type, or "input"
    shape: tuple[int, ...]
    dtype: str
    bytes: int
    padded_bytes: int


@dataclass(frozen=True)
class Finding:
    op: str  # op name (its first output's name)
    op_type: str
    detail: str
    position: int | None = None  # top-level op index in the program (consts included)
    layer: str | None = None  # place among the layer norms: "embeddings", "layer 2", "head"...
    module: str | None = None  # torch module path (verification.coreml.scopes; "" top level)


@dataclass
class ReadinessReport:
    label: str
    ops: int  # non-const ops, nested blocks included
    op_counts: dict[str, int]
    layer_norms_fused: int
    layer_norms_unfused: int
    num_layers: int | None
    num_layers_source: str  # "given", "inferred from layer norms" or "unknown"
    copies: list[Finding]
    copies_in_layers: int
    copies_outside_layers: int
    tensors: int
    short_last_axis_tensors: list[Tensor]  # last axis shorter than 64 bytes
    padding_bytes_short_last_axis: int
    padding_bytes_total: int  # over every activation tensor of the program
    peak_activation_bytes: int  # padded
    peak_activation_bytes_unpadded: int
    peak_at_op: str | None
    largest_intermediate: Tensor | None
    off_ane_ops: list[Finding]
    over_limits: list[Finding]
    unknown_shape_tensors: int
    # the variance op of every layer norm left decomposed (the fusion check names them)
    unfused_layer_norm_ops: list[Finding] = field(default_factory=list)
    kind: str = "static estimate"
    estimate_model: str = ESTIMATE_MODEL

    @property
    def copies_per_layer(self) -> float | None:
        return self.copies_in_layers / self.num_layers if self.num_layers else None

    @property
    def layer_norms(self) -> int:
        return self.layer_norms_fused + self.layer_norms_unfused

    def to_dict(self) -> dict:
        data = asdict(self)
        data["copies_per_layer"] = self.copies_per_layer
        return data


def _program(source) -> Program:
    if isinstance(source, Program):
        return source
    program = getattr(source, "_mil_program", None)
    if isinstance(program, Program):
        return program
    from verification.mil import load_program

    return load_program(source)


def _walk(block, top_index=None, out=None):
    """(top-level index, op) for every op, nested blocks' ops carrying their top-level op's index."""
    out = [] if out is None else out
    for position, op in enumerate(list(block.operations)):
        index = position if top_index is None else top_index
        out.append((index, op))
        for inner in op.blocks:
            _walk(inner, index, out)
    return out


def _input_vars(op):
    for value in op.inputs.values():
        yield from value if isinstance(value, (list, tuple)) else (value,)


def _is_const(var) -> bool:
    return var.op is not None and var.op.op_type == "const"


def _producer_type(var) -> str | None:
    return var.op.op_type if var.op is not None else None


def _is_constant(var) -> bool:
    return var is not None and (_is_const(var) or getattr(var, "val", None) is not None)


def _scaled_sum(op):
    """The ``reduce_sum`` op that ``op`` turns into a mean: sum / constant (``real_div``) or sum * constant
    (``mul``); None if ``op`` is not such a division."""
    if op.op_type not in ("real_div", "mul"):
        return None
    x, y = op.inputs.get("x"), op.inputs.get("y")
    pairs = [(x, y)] if op.op_type == "real_div" else [(x, y), (y, x)]
    for total, factor in pairs:
        if total is not None and _producer_type(total) == "reduce_sum" and _is_constant(factor):
            return total.op
    return None


def _is_mean(var) -> bool:
    """``var`` is a mean: a ``reduce_mean``, or a ``reduce_sum`` divided by (or scaled by) a constant."""
    return var.op is not None and (var.op.op_type == "reduce_mean" or _scaled_sum(var.op) is not None)


def _is_unfused_layer_norm(op) -> bool:
    """The variance op of a decomposed layer norm: mean((x - mean(x)) ** 2), where each mean is a
    ``reduce_mean`` or a ``reduce_sum`` divided by a constant (``real_div``, or ``mul`` by its inverse)."""
    if op.op_type == "reduce_mean":
        square = op.inputs["x"].op
    else:
        summed = _scaled_sum(op)
        if summed is None:
            return False
        square = summed.inputs["x"].op
    if square is None or square.op_type not in ("mul", "square", "pow"):
        return False
    for centered in _input_vars(square):
        if _producer_type(centered) == "sub":
            if any(_is_mean(v) for v in _input_vars(centered.op)):
                return True
    return False


def _name(op) -> str:
    return op.outputs[0].name if op.outputs else op.name


def analyze(
    source, *, label: str = "model", num_layers: int | None = None, function: str = "main"
) -> ReadinessReport:
    """The static readiness report of ``source`` (``Program``, ``MLModel`` or ``.mlpackage`` path)."""
    program = _program(source)
    modules = op_modules(source if not isinstance(source, os.PathLike) else str(source))
    block = program.functions[function]
    walked = _walk(block)
    ops = [(i, op) for i, op in walked if op.op_type != "const"]
    end = len(block.operations)

    # Layer norms mark the encoder layers: fused ones are layer_norm ops, unfused ones their variance.
    norm_positions = sorted(
        i for i, op in ops if op.op_type == LAYER_NORM_OP_TYPE or _is_unfused_layer_norm(op)
    )
    fused = sum(op.op_type == LAYER_NORM_OP_TYPE for _, op in ops)
    if num_layers is not None:
        layers_source = "given"
    elif len(norm_positions) >= 3:
        num_layers, layers_source = (len(norm_positions) - 1) // 2, "inferred from layer norms"
    else:
        layers_source = "unknown"

    def in_layers(index: int) -> bool:
        return bool(norm_positions) and norm_positions[0] < index < norm_positions[-1]

    def found(index: int | None, op, detail: str, name: str | None = None) -> Finding:
        inferred = layers_source == "inferred from layer norms"
        layer = None if index is None else layer_of(index, norm_positions, inferred)
        return Finding(name or _name(op), op.op_type, detail, index, layer, modules.get(op.name))

    copies, copies_inside = [], 0
    for index, op in ops:
        if is_copy(op):
            source_shape = _static_shape(op.inputs["x"])
            copies.append(found(index, op, f"{source_shape} -> {_static_shape(op.outputs[0])}"))
            copies_inside += in_layers(index)

    # Activation tensors and their live ranges over top-level op positions (-1: before the first op).
    activations = [(var, -1) for var in block.inputs.values()]
    activations += [(var, i) for i, op in walked if op.op_type != "const" for var in op.outputs]
    last_use: dict[int, int] = {}
    for index, op in ops:
        for var in _input_vars(op):
            last_use[id(var)] = max(last_use.get(id(var), -1), index)
    for var in block.outputs:
        last_use[id(var)] = end

    tensors, short, unknown = [], [], 0
    delta_padded: Counter[int] = Counter()
    delta_raw: Counter[int] = Counter()
    for var, born in activations:
        shape = _static_shape(var)
        if shape is None:
            unknown += 1
            continue
        itemsize = bytes_per_element(var.dtype)
        raw, padded = tensor_bytes(shape, itemsize)
        producer = "input" if var.op is None else var.op.op_type
        tensors.append(Tensor(var.name, producer, shape, types.builtin_to_string(var.dtype), raw, padded))
        if (shape[-1] if shape else 1) * itemsize < ALIGNMENT_BYTES:
            short.append(tensors[-1])
        dies = max(last_use.get(id(var), born), born)
        delta_padded[born] += padded
        delta_padded[dies + 1] -= padded
        delta_raw[born] += raw
        delta_raw[dies + 1] -= raw

    peak = peak_raw = live = live_raw = 0
    peak_index = None
    for position in range(-1, end + 1):
        live += delta_padded[position]
        live_raw += delta_raw[position]
        if live > peak:
            peak, peak_index = live, position
        peak_raw = max(peak_raw, live_raw)
    top_ops = list(block.operations)
    peak_at = _name(top_ops[peak_index]) if peak_index is not None and 0 <= peak_index < end else None

    intermediates = [t for t in tensors if t.producer != "input"]

    return ReadinessReport(
        label=label,
        ops=len(ops),
        op_counts=dict(sorted(Counter(op.op_type for _, op in ops).items(), key=lambda kv: (-kv[1], kv[0]))),
        layer_norms_fused=fused,
        layer_norms_unfused=len(norm_positions) - fused,
        num_layers=num_layers,
        num_layers_source=layers_source,
        copies=copies,
        copies_in_layers=copies_inside,
        copies_outside_layers=len(copies) - copies_inside,
        tensors=len(tensors),
        short_last_axis_tensors=sorted(short, key=lambda t: t.padded_bytes - t.bytes, reverse=True),
        padding_bytes_short_last_axis=sum(t.padded_bytes - t.bytes for t in short),
        padding_bytes_total=sum(t.padded_bytes - t.bytes for t in tensors),
        peak_activation_bytes=peak,
        peak_activation_bytes_unpadded=peak_raw,
        peak_at_op=peak_at,
        largest_intermediate=max(intermediates, key=lambda t: t.padded_bytes, default=None),
        off_ane_ops=_off_ane_ops(ops, found),
        over_limits=_over_limits(ops, block, found),
        unknown_shape_tensors=unknown,
        unfused_layer_norm_ops=[
            found(index, op, "layer norm left decomposed (mean, centre, square, mean): not one layer_norm op")
            for index, op in ops
            if op.op_type != LAYER_NORM_OP_TYPE and _is_unfused_layer_norm(op)
        ],
    )


def reshape_moves_data(op) -> bool:
    """A reshape moves data unless it keeps the padded row layout: the Neural Engine stores the last
    axis contiguously, each row padded to 64 bytes (Data format), so a reshape that keeps the last axis
    relabels rows, and one whose rows are unpadded on both sides relabels bytes; any other reshape
    rewrites the buffer, a copy (Minimize copies). A symbolic shape counts as a copy (cannot tell)."""
    source, target = _static_shape(op.inputs["x"]), _static_shape(op.outputs[0])
    if source is None or target is None:
        return True
    source_width, target_width = (source[-1] if source else 1), (target[-1] if target else 1)
    if source_width == target_width:
        return False
    itemsize = bytes_per_element(op.outputs[0].dtype)
    return any(width * itemsize % ALIGNMENT_BYTES for width in (source_width, target_width))


def is_copy(op) -> bool:
    """A transpose, or a reshape that moves data (``reshape_moves_data``)."""
    return op.op_type == TRANSPOSE_OP_TYPE or (op.op_type == RESHAPE_OP_TYPE and reshape_moves_data(op))


def _off_ane_ops(ops, found) -> list[Finding]:
    result = []
    for index, op in ops:
        if op.op_type in GATHER_OP_TYPES:
            result.append(found(index, op, "gather (embedding lookup): runs off the Neural Engine"))
            continue
        if op.op_type == RESHAPE_OP_TYPE and not reshape_moves_data(op):
            continue  # a relabelling: no arithmetic, no data moved, whatever the dtype
        tensors = [v for v in _input_vars(op) if not _is_const(v)] + list(op.outputs)
        int32 = [v.name for v in tensors if v.dtype == types.int32]
        if int32:
            result.append(found(index, op, f"int32 tensors {int32}: run off the Neural Engine"))
    return result


def _over_limits(ops, block, found) -> list[Finding]:
    result = []
    limits = (("width", -1, MAX_WIDTH), ("height", -2, MAX_HEIGHT), ("channels", -3, MAX_CHANNELS))
    outputs = [(None, None, var) for var in block.inputs.values()] + [
        (index, op, var) for index, op in ops for var in op.outputs
    ]
    for index, op, var in outputs:
        shape = _static_shape(var)
        if not shape:
            continue
        for what, axis, limit in limits:
            if len(shape) >= -axis and shape[axis] > limit:
                detail = f"{what} {shape[axis]} > {limit} (shape {shape})"
                if op is None:
                    result.append(Finding(var.name, "input", detail))
                else:
                    result.append(found(index, op, detail, name=var.name))
    for index, op in ops:
        if op.op_type == "conv":
            kernel = _static_shape(op.inputs["weight"])
            if kernel and kernel[-1] > MAX_CONV_KERNEL_WIDTH:
                result.append(
                    found(index, op, f"kernel width {kernel[-1]} > {MAX_CONV_KERNEL_WIDTH} (weight {kernel})")
                )
    return result
