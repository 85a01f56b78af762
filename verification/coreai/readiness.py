"""Core AI's own Neural Engine authoring rules, checked statically on a converted Core AI program.

Source of every rule: Apple, apple/coreai-models, ``skills/skills/model-authoring/references/
neural_engine_rules.md`` (read 2026-12-01; section names quoted beside each rule below). The checks read
the program's MLIR (the ``coreai`` dialect ops of every graph) and return ``verification.checks.Check``
records shaped for ``report.json``; each names the offending ops in its reason.

=============================  =================================================================  =====
name                           rule (section of neural_engine_rules.md)                           limit
=============================  =================================================================  =====
coreai_no_fused_sdpa           "Per-head attention": no fused SDPA path on the Neural Engine;     0
                               calls of a scaled_dot_product_attention composite
coreai_mask_layout             "Causal mask": masks shaped (1, key, 1, query), softmax over the   0
                               key axis 1; additive masks into a softmax in any other layout
coreai_mask_sentinel           "Causal mask": a finite sentinel (-40000.0), never -inf; float     0
                               constants <= -1e4 that are non-finite or below -4e4 (no headroom
                               left in fp16 for the scores they are added to)
coreai_fp32_tensors            "Float32 intermediates": any fp32 literal or op makes an f32       0
                               buffer the Neural Engine cannot run (fp16 programs only)
coreai_singleton_last_axis     "Tensor memory alignment": never a singleton last axis (padded to  0
                               64 bytes: 32x the memory in fp16); non-constant tensors of rank
                               >= 2 whose last axis is 1
coreai_rank_over_5             "Neural Engine Programming Constraints": max tensor rank 5         0
coreai_linear_ops              "Conv2d instead of Linear": projections as 1x1 conv2d; matmuls     0
                               with a constant (weight) operand
=============================  =================================================================  =====
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from verification.checks import COREAI_RULE_NAMES, Check, at_most, not_measured

RULE_NAMES = COREAI_RULE_NAMES
SOURCE = "apple/coreai-models skills/skills/model-authoring/references/neural_engine_rules.md"
SENTINEL_FLOOR = -4e4  # Apple's -40000.0
MASK_LIKE = -1e4


@dataclass
class Tensor:
    shape: tuple[int, ...]
    dtype: str


@dataclass
class Op:
    index: int
    name: str
    graph: str
    results: list[Tensor]
    operands: list[int | None]  # index of the producing op in the same graph, None for graph arguments
    operand_types: list[Tensor] = field(default_factory=list)
    value: np.ndarray | None = None  # constants whose values are inline (not weight resources)
    composite: str | None = None  # for coreai.invoke: the composite the callee declares


@dataclass
class ProgramView:
    """The ops of a Core AI program, per graph, with shapes, dtypes and inline constant values."""

    ops: list[Op] = field(default_factory=list)
    inputs: list[Tensor] = field(default_factory=list)
    outputs: list[Tensor] = field(default_factory=list)
    precision: str = "fp32"

    def producer(self, op: Op, operand: int) -> Op | None:
        index = op.operands[operand]
        return self.ops[index] if index is not None else None


def _tensor(mlir_type) -> Tensor:
    text = str(mlir_type)
    if not text.startswith("tensor<"):
        return Tensor((), text)
    body = text[len("tensor<") : -1]
    *dims, dtype = body.split("x")
    return Tensor(tuple(int(d) if d.isdigit() else -1 for d in dims), dtype)


def _constant_value(op) -> np.ndarray | None:
    from coreai._compiler import ir

    try:
        dense = ir.DenseElementsAttr(op.attributes["value"])
    except Exception:
        return None  # dense_resource: a weight blob, not a literal
    try:
        if dense.is_splat:
            splat = dense.get_splat_value()
            return np.asarray(float(splat.value) if hasattr(splat, "value") else float(str(splat).split()[0]))
        return np.array(dense)
    except Exception:
        return None


def view(program, precision: str | None = None) -> ProgramView:
    """Read a ``CoreAIProgram`` (or an ``AIProgram``: then give its ``precision``) into a ``ProgramView``."""
    module = program.mlir_module if hasattr(program, "mlir_module") else program._module._mlir_module
    composites: dict[str, str] = {}
    graphs = list(module.body.operations)
    for graph in graphs:
        name = str(graph.attributes["sym_name"]).strip('"') if "sym_name" in graph.attributes else "?"
        if "composite_decl" in graph.attributes:
            composites[name] = str(graph.attributes["composite_decl"])
    result = ProgramView(precision=precision or getattr(program, "precision", "fp32"))
    for graph in graphs:
        graph_name = str(graph.attributes["sym_name"]).strip('"') if "sym_name" in graph.attributes else "?"
        block = graph.regions[0].blocks[0]
        positions: dict = {}
        for op in block.operations:
            operands = []
            for value in op.operands:
                owner = value.owner
                operands.append(positions.get(_key(owner)))
            entry = Op(
                index=len(result.ops),
                name=op.operation.name,
                graph=graph_name,
                results=[_tensor(r.type) for r in op.results],
                operands=operands,
                operand_types=[_tensor(v.type) for v in op.operands],
            )
            if entry.name == "coreai.constant":
                entry.value = _constant_value(op)
            if entry.name == "coreai.invoke":
                # the callee reads "#param.constant<@layer_norm_abc> : !param.symbol"
                callee = (
                    re.search(r"@([\w$.]+)", str(op.attributes["callee"]))
                    if "callee" in op.attributes
                    else None
                )
                entry.composite = composites.get(callee.group(1)) if callee else None
            positions[_key(op.operation)] = entry.index
            result.ops.append(entry)
        if graph_name == "main":
            result.inputs = [_tensor(a.type) for a in block.arguments]
            output = [o for o in block.operations][-1]
            result.outputs = [_tensor(v.type) for v in output.operands]
    return result


def _key(operation):
    return getattr(operation, "operation", operation)


def _names(ops, limit: int = 6) -> str:
    counts = Counter(op if isinstance(op, str) else op.name.removeprefix("coreai.") for op in ops)
    return ", ".join(f"{name} x{n}" for name, n in counts.most_common(limit))


def _rule(name: str, metric: str, offenders: list, rule: str) -> Check:
    check = at_most(name, metric, float(len(offenders)), 0.0)
    reason = f"{rule} ({SOURCE})"
    if offenders:
        reason = f"{reason}: {_names(offenders)}"
    return Check(check.name, check.metric, check.value, check.threshold, check.passed, True, reason)


def _fused_sdpa(program: ProgramView) -> list[Op]:
    return [op for op in program.ops if op.composite and "scaled_dot_product_attention" in op.composite]


def _softmax_axis(program: ProgramView, softmax: Op) -> int | None:
    axis = program.producer(softmax, 1) if len(softmax.operands) > 1 else None
    if axis is None or axis.value is None:
        return None
    rank = len(softmax.results[0].shape)
    return int(axis.value.reshape(-1)[0]) % rank


def _mask_layout(program: ProgramView) -> list[Op]:
    """Softmaxes whose input adds a mask in another layout than (1 | B, key, 1, query | 1) over axis 1."""
    offenders = []
    for op in program.ops:
        if op.name != "coreai.softmax":
            continue
        add = program.producer(op, 0)
        if add is None or "add" not in add.name:
            continue
        scores = op.results[0].shape
        masks = [m for m in add.operand_types if m.shape != scores] or add.operand_types[1:]
        axis = _softmax_axis(program, op)
        for mask in masks:
            shape = mask.shape
            in_layout = (
                len(shape) == 4
                and len(scores) == 4
                and shape[2] == 1
                and axis == 1
                and shape[1] in (1, scores[1])
            )
            if not in_layout:
                offenders.append(op)
                break
    return offenders


def _bad_sentinel(values) -> bool:
    values = np.asarray(values, dtype=np.float64).reshape(-1)
    mask_like = values[~np.isfinite(values) | (values <= MASK_LIKE)]
    return bool(mask_like.size) and (not np.all(np.isfinite(mask_like)) or mask_like.min() < SENTINEL_FLOOR)


def _bad_sentinels(program: ProgramView, exported_program=None) -> list:
    """Inline constants of the program, and (large constants are weight blobs the MLIR bindings do not
    read) the exported program's buffers, constants and float literals."""
    offenders: list = [
        op
        for op in program.ops
        if op.name == "coreai.constant"
        and op.value is not None
        and op.value.dtype.kind == "f"
        and _bad_sentinel(op.value)
    ]
    if exported_program is None:
        return offenders
    import torch

    tensors = {**dict(exported_program.named_buffers()), **exported_program.constants}
    for name, tensor in tensors.items():
        if (
            isinstance(tensor, torch.Tensor)
            and tensor.is_floating_point()
            and _bad_sentinel(tensor.float().numpy())
        ):
            offenders.append(f"buffer {name}")
    for node in exported_program.graph.nodes:
        literals = [a for a in (*node.args, *node.kwargs.values()) if isinstance(a, float)]
        if node.op == "call_function" and literals and _bad_sentinel(literals):
            offenders.append(f"literal in {node.target}")
    return offenders


def _fp32_tensors(program: ProgramView) -> list[Op]:
    return [
        op for op in program.ops if op.name != "coreai.output" and any(t.dtype == "f32" for t in op.results)
    ]


def _singleton_last_axis(program: ProgramView) -> list[Op]:
    return [
        op
        for op in program.ops
        if op.name != "coreai.constant" and any(len(t.shape) >= 2 and t.shape[-1] == 1 for t in op.results)
    ]


def _over_rank_5(program: ProgramView) -> list[Op]:
    return [op for op in program.ops if any(len(t.shape) > 5 for t in op.results)]


def _from_constant(program: ProgramView, op: Op | None, depth: int = 4) -> bool:
    """Whether ``op`` is a constant of rank >= 2, maybe through a few transposes, reshapes or casts."""
    while op is not None and depth > 0:
        if op.name == "coreai.constant":
            return len(op.results[0].shape) >= 2
        if op.name not in ("coreai.transpose", "coreai.reshape", "coreai.cast") or not op.operands:
            return False
        op, depth = program.producer(op, 0), depth - 1
    return False


def _linear_ops(program: ProgramView) -> list[Op]:
    return [
        op
        for op in program.ops
        if ("matmul" in op.name or "linear" in op.name)
        and any(_from_constant(program, program.producer(op, i)) for i in range(len(op.operands)))
    ]


def readiness_checks(program, *, strict: bool = False, precision: str | None = None) -> list[Check]:
    """Core AI's Neural Engine authoring rules on ``program`` (a ``CoreAIProgram``, or an ``AIProgram``
    read from a saved asset with its ``precision``), as report checks."""
    prog = view(program, precision)
    checks = [
        _rule("coreai_no_fused_sdpa", "fused SDPA calls", _fused_sdpa(prog), "no fused SDPA path on the ANE"),
        _rule(
            "coreai_mask_layout",
            "softmax masks not in (1, key, 1, query) layout over axis 1",
            _mask_layout(prog),
            "mask shaped (1, key, 1, query), softmax over the key axis",
        ),
        _rule(
            "coreai_mask_sentinel",
            "mask constants non-finite or below -4e4",
            _bad_sentinels(prog, getattr(program, "exported_program", None)),
            "finite mask sentinel (-40000.0), never -inf",
        ),
    ]
    if prog.precision == "fp16":
        checks.append(
            _rule(
                "coreai_fp32_tensors",
                "ops with fp32 results in an fp16 program",
                _fp32_tensors(prog),
                "no fp32 literal or op: f32 buffers run off the ANE",
            )
        )
    else:
        checks.append(
            not_measured(
                "coreai_fp32_tensors",
                "ops with fp32 results in an fp16 program",
                0.0,
                "an fp32 program: the Neural Engine computes in fp16 only; convert with precision='fp16'",
                strict=strict,
            )
        )
    checks += [
        _rule(
            "coreai_singleton_last_axis",
            "non-constant tensors with a last axis of 1",
            _singleton_last_axis(prog),
            "never a singleton last axis (padded to 64 bytes)",
        ),
        _rule("coreai_rank_over_5", "tensors of rank > 5", _over_rank_5(prog), "max tensor rank 5"),
        _rule(
            "coreai_linear_ops",
            "matmuls with a constant weight operand",
            _linear_ops(prog),
            "projections as 1x1 conv2d, not linear",
        ),
    ]
    return checks


__all__ = ["RULE_NAMES", "SOURCE", "ProgramView", "readiness_checks", "view"]
