"""coremltools' fp16 range check, the same decision in bounded memory.

Before its fp16 pass (``common::add_fp16_cast``) casts an op, coremltools asks whether any fp32 constant
input holds a finite value (``|x| < 1e38``) beyond fp16's largest, 65504; such an op stays in fp32
(``FP16ComputePrecision.fp16_overflow``, coremltools 7 to 9). It answers with whole-array temporaries:
``abs`` of the constant, a mask, and ``np.where``'s int64 index arrays, one per axis of the constant
with a leading axis added. For an embedding table of 151936 x 1024 (Qwen3-0.6B's) that is 4.7 GB for a
622 MB constant, and 29 s, once per op that reads it.

``install()`` replaces that method with ``fp16_overflow`` below: the same answer for every array (NaN
excluded as before, infinities and values at or above 1e38 excluded as before), computed over blocks
of ``BLOCK`` elements, so the transient memory is a few MB whatever the constant's size.
docs/memory.md gives the measurements.
"""

from __future__ import annotations

import numpy as np
from coremltools.converters.mil.mil.passes.defs.quantization import FP16ComputePrecision

FP16_MAX = 65504.0
INFINITE = 1e38  # coremltools counts |x| >= 1e38 as an infinity: it may become fp16 inf
BLOCK = 1 << 20  # elements per block: 4 MB of fp32


def exceeds_fp16(value) -> bool:
    """True where some element has ``65504 < |x| < 1e38``: a finite value fp16 cannot hold."""
    flat = np.asarray(value).reshape(-1)
    for start in range(0, flat.size, BLOCK):
        magnitude = np.abs(flat[start : start + BLOCK])
        if np.any((magnitude > FP16_MAX) & (magnitude < INFINITE)):
            return True
    return False


def fp16_overflow(op) -> bool:
    """``FP16ComputePrecision.fp16_overflow``'s decision: does any fp32 constant input of ``op`` hold a
    finite value beyond fp16's range?"""
    for inputs in op.inputs.values():
        for var in inputs if isinstance(inputs, (list, tuple)) else [inputs]:
            if (
                var.op is not None
                and var.op.op_type == "const"
                and var.is_tensor_or_scalar_of(dtype="fp32")
                and exceeds_fp16(var.op.val.val)
            ):
                return True
    return False


ORIGINAL = FP16ComputePrecision.__dict__.get("fp16_overflow")


def install() -> None:
    """Use ``fp16_overflow`` in coremltools' fp16 pass (idempotent)."""
    if ORIGINAL is not None:  # a coremltools without the method needs nothing
        FP16ComputePrecision.fp16_overflow = staticmethod(fp16_overflow)
