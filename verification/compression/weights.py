"""The weights of a converted program: which ops carry one, how each is stored, and its dense values.

A weight is a constant input of a conv, linear, matmul or gather op with more than ``WEIGHT_THRESHOLD``
elements (coremltools' compression skips the others, biases and norms, and one of exactly 2048 too:
its rule is ``size > weight_threshold``). In a compressed program the input
comes from a chain of ``constexpr_*`` ops; its stored size is the sum of the chain's constant inputs at
their MIL bit widths (uint4 indices: 4 bits each, fp16 tables: 16 ...).

The dense values of a compressed weight are read with coremltools' own value inference (the op
definitions' ``materialized_val_inference``), not the executor's kernels, so that the fake-compressed
torch model of the three-way comparison is independent of the kernels it helps to check.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass

import numpy as np
from coremltools.converters.mil.mil import types

from ..mil.program import load_program

# the op types whose constant inputs coremltools compresses, and which of their inputs is the weight
WEIGHT_INPUTS = {"conv": ("weight",), "linear": ("weight",), "matmul": ("x", "y"), "gather": ("x",)}
WEIGHT_OPS = tuple(WEIGHT_INPUTS)
WEIGHT_THRESHOLD = 2048  # coremltools.optimize.coreml's default weight_threshold (elements)


@dataclass(frozen=True)
class Weight:
    op: str  # the consuming op's name (the key of coremltools' op_name_configs)
    op_type: str
    input: str  # its input name: "weight" for conv/linear, "x" for gather, "x"/"y" for matmul
    shape: tuple
    stored_bits: int  # as the program stores it
    dense_bits: int  # as a dense tensor of the op's float type
    form: str  # "dense" or the constexpr chain, e.g. "constexpr_lut_to_dense"

    @property
    def count(self) -> int:
        return int(np.prod(self.shape))

    @property
    def bits_per_weight(self) -> float:
        return self.stored_bits / self.count


def _bitwidth(var) -> int:
    dtype = var.dtype if types.is_tensor(var.sym_type) else var.sym_type
    if dtype == types.str:
        return 0
    return (
        int(dtype.get_bitwidth())
        if hasattr(dtype, "get_bitwidth")
        else 8 * np.dtype(types.nptype_from_builtin(dtype)).itemsize
    )


def _numel(var) -> int:
    return int(np.prod(var.shape)) if types.is_tensor(var.sym_type) else 1


def _chain(var, seen: set | None = None) -> tuple[list, int]:
    """The constexpr ops behind ``var`` (innermost first) and the bits their constant leaves occupy; an
    op reached twice (a sparse op's mask and values both come from the op before it) counts once."""
    seen = set() if seen is None else seen
    op = var.op
    if op is None or id(op) in seen:
        return [], 0
    seen.add(id(op))
    if op.op_type == "const":
        return [], _numel(var) * _bitwidth(var)
    ops, bits = [], 0
    for value in op.inputs.values():
        inner_ops, inner_bits = _chain(value, seen)
        ops += inner_ops
        bits += inner_bits
    return ops + [op], bits


def _is_constant(var) -> bool:
    return var.op is not None and (var.op.op_type == "const" or var.op.op_type.startswith("constexpr_"))


def weights(source, threshold: int = WEIGHT_THRESHOLD, function_name: str | None = None) -> list[Weight]:
    """Every weight of one function of the program (``source``: MLModel, path or Program), in op order:
    ``function_name``, by default ``main`` or, in a package without one, its first function (the functions
    of a multifunction package share their weights)."""
    functions = load_program(source).functions
    function = functions[function_name or ("main" if "main" in functions else next(iter(functions)))]
    found = []
    for op in function.operations:
        if op.op_type not in WEIGHT_OPS:
            continue
        for name, var in op.inputs.items():
            if (
                name not in WEIGHT_INPUTS[op.op_type]
                or not _is_constant(var)
                or not types.is_tensor(var.sym_type)
            ):
                continue
            if not types.is_float(var.dtype) or _numel(var) <= threshold:  # coremltools: size > threshold
                continue
            ops, bits = _chain(var)
            form = "+".join(dict.fromkeys(o.op_type for o in ops)) or "dense"
            dense = _numel(var) * _bitwidth(var)
            found.append(
                Weight(op.name, op.op_type, name, tuple(int(d) for d in var.shape), bits, dense, form)
            )
    return found


def producers(source) -> dict[str, str]:
    """Weight-carrying op name -> the name of the op producing its weight (a const, or the outermost
    constexpr op of a compressed weight): the names coremltools' op_name_configs match weights by."""
    function = load_program(source).functions["main"]
    found: dict[str, str] = {}
    for op in function.operations:
        for name in WEIGHT_INPUTS.get(op.op_type, ()):
            var = op.inputs.get(name)
            if var is not None and _is_constant(var):
                found.setdefault(op.name, var.op.name)
    return found


def dense_values(source) -> dict[tuple[str, str], np.ndarray]:
    """(op name, input name) -> the weight's dense values, decompressed by coremltools' value inference."""
    function = load_program(source).functions["main"]
    values = {}
    for op in function.operations:
        if op.op_type not in WEIGHT_OPS:
            continue
        for name, var in op.inputs.items():
            if (
                name not in WEIGHT_INPUTS[op.op_type]
                or not _is_constant(var)
                or not types.is_tensor(var.sym_type)
            ):
                continue
            values[(op.name, name)] = np.asarray(_coremltools_value(var, {}))
    return values


def _coremltools_value(var, cache: dict):
    """``var``'s value by coremltools' own op definitions: each constexpr op's ``decompress`` on its
    inputs' values, chained (coremltools' ``materialized_val_inference`` of a LUT whose table is itself a
    constexpr output, palettized + quantized, finds no value: it reads ``lut.val``, which is None)."""
    if var.val is not None:
        return var.val
    op = var.op
    if id(op) not in cache:
        if op.op_type == "constexpr_cast":
            result = np.asarray(_coremltools_value(op.source_val, cache), dtype=np.float32)
        else:
            wanted = inspect.signature(type(op).decompress).parameters
            inputs = {k: _coremltools_value(v, cache) for k, v in op.inputs.items() if k in wanted}
            result = type(op).decompress(**{k: inputs.get(k) for k in wanted})
        cache[id(op)] = result
    result = cache[id(op)]
    return result[list(op.outputs).index(var)] if isinstance(result, tuple) else result


@dataclass(frozen=True)
class SizeSummary:
    """Weights over the threshold (the compressible ones) before and after, and the whole program."""

    weights: int  # how many
    elements: int
    dense_bytes: float
    stored_bytes: float
    program_bytes: float  # every constant of the program as stored (the static weight memory)

    @property
    def bits_per_weight(self) -> float:
        return 8 * self.stored_bytes / self.elements if self.elements else 0.0

    @property
    def ratio(self) -> float:
        return self.dense_bytes / self.stored_bytes if self.stored_bytes else 0.0

    def to_dict(self) -> dict:
        return {
            "weights": self.weights,
            "elements": self.elements,
            "dense_bytes": int(self.dense_bytes),
            "stored_bytes": int(self.stored_bytes),
            "bits_per_weight": round(self.bits_per_weight, 3),
            "compression_ratio": round(self.ratio, 3),
            "program_weight_bytes": int(self.program_bytes),
        }


def program_constant_bytes(source) -> float:
    """Bytes of every constant of the main function as the program stores them (compressed leaves)."""
    function = load_program(source).functions["main"]
    bits = 0
    for op in function.operations:
        if op.op_type == "const":  # a compressed weight's leaves are consts too; its dense form is not
            bits += sum(_numel(v) * _bitwidth(v) for v in op.outputs)
    return bits / 8


def size_summary(source) -> SizeSummary:
    source = load_program(source)
    found = weights(source)
    return SizeSummary(
        weights=len(found),
        elements=sum(w.count for w in found),
        dense_bytes=sum(w.dense_bits for w in found) / 8,
        stored_bytes=sum(w.stored_bits for w in found) / 8,
        program_bytes=program_constant_bytes(source),
    )
