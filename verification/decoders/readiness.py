"""Static ANE readiness of each function of a decoder package: op counts, copies, the cache's layout and
state shapes, fp32 literals and singleton last axes.

Two of these follow Core AI's published Neural Engine authoring rules: any fp32 literal forces its op off
the Neural Engine, and a last axis of length 1 is padded to 64 bytes (32x the memory in fp16; the
(B, C, 1, S) layout keeps the sequence last for that reason). A decode step has S = 1 by nature, so its
singleton last axes are counted, not gated.
"""

from __future__ import annotations

from collections import Counter

from coremltools.converters.mil.mil import types

from verification.mil import load_program
from verification.mil.state import state_specs

COPY_OPS = ("transpose", "reshape")


def _fp32_literals(function) -> int:
    """fp32 constants read by compute ops of a program that computes in fp16."""
    count = 0
    for op in function.operations:
        if op.op_type != "const":
            continue
        var = op.outputs[0]
        dtype = var.dtype if types.is_tensor(var.sym_type) else var.sym_type
        if dtype == types.fp32 and any(child.op_type != "cast" for child in var.child_ops):
            count += 1
    return count


def function_readiness(path) -> dict:
    """Per function name: the figures above (JSON-ready)."""
    program = load_program(path)
    result = {}
    for name, function in program.functions.items():
        ops = [op for op in function.operations if op.op_type != "const"]
        counts = Counter(op.op_type for op in ops)
        fp16 = any(
            getattr(out, "dtype", None) == types.fp16
            for op in ops
            for out in op.outputs
            if types.is_tensor(out.sym_type)
        )
        singleton = sum(
            1
            for op in ops
            for out in op.outputs
            if types.is_tensor(out.sym_type) and len(out.shape) >= 2 and out.shape[-1] == 1
        )
        caches = {
            n: list(v.shape)
            for n, v in function.inputs.items()
            if "cache" in n and not types.is_state(v.sym_type)
        }
        result[name] = {
            "ops": len(ops),
            "op_counts": dict(sorted(counts.items())),
            "copies": sum(counts[t] for t in COPY_OPS),
            "states": {s.name: {"shape": list(s.shape), "dtype": s.dtype} for s in state_specs(function)},
            "cache_inputs": caches,
            "fp32_literals": _fp32_literals(function) if fp16 else 0,
            "singleton_last_axes": singleton,
        }
    return result
