"""verification/coreml/fp16_range.py: coremltools' fp16 range check (which ops stay fp32), the same
decision in bounded memory."""

import tracemalloc

import numpy as np
import pytest
import torch
from coremltools.converters.mil.mil import Builder as mb
from coremltools.converters.mil.mil import types
from coremltools.converters.mil.mil.passes.defs.quantization import FP16ComputePrecision
from hypothesis import given, settings
from hypothesis import strategies as st

from verification.coreml import convert, fp16_range

pytestmark = pytest.mark.skipif(fp16_range.ORIGINAL is None, reason="this coremltools has no fp16_overflow")

F32_MAX = float(np.finfo(np.float32).max)
# the values either side of every bound the check draws: fp16's largest, coremltools' infinity (1e38),
# fp32's largest, the non-finite ones, and fp16's smallest subnormal
EDGES = [
    0.0,
    6e-8,
    1.0,
    65504.0,
    float(np.nextafter(np.float32(65504), np.float32(np.inf))),
    65520.0,
    float(np.nextafter(np.float32(1e38), np.float32(0))),
    float(np.float32(1e38)),
    F32_MAX,
    float("inf"),
    float("nan"),
]


def signed_edges():
    return st.sampled_from(EDGES).flatmap(lambda v: st.sampled_from([v, -v]))


def fp32_constants():
    """fp32 arrays of 0 to 3 axes, mostly small values, with the range edges mixed in."""
    shapes = st.lists(st.integers(1, 5), min_size=0, max_size=3).map(tuple)
    values = st.one_of(st.floats(-1e3, 1e3, width=32), signed_edges())
    return shapes.flatmap(
        lambda shape: st.lists(values, min_size=int(np.prod(shape)), max_size=int(np.prod(shape))).map(
            lambda items: np.array(items, np.float32).reshape(shape)
        )
    )


def op_reading(constant: np.ndarray):
    """A MIL ``add`` op whose second input is ``constant`` (a const op), as coremltools' pass sees it."""
    shape = constant.shape or (1,)

    @mb.program(input_specs=[mb.TensorSpec(shape=shape, dtype=types.fp32)])
    def program(x):
        return mb.add(x=x, y=constant)

    return next(op for op in program.functions["main"].operations if op.op_type == "add")


@settings(max_examples=150, deadline=None)
@given(constant=fp32_constants(), block=st.integers(1, 7))
def test_the_decision_is_coremltools_own_for_every_array_and_block_size(constant, block):
    op = op_reading(constant)
    expected = fp16_range.ORIGINAL.__func__(op)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(fp16_range, "BLOCK", block)  # blocks smaller than the array: edges split
        got = fp16_range.fp16_overflow(op)
    assert got == expected, (
        f"fp16_overflow {got} but coremltools' own check says {expected}, block {block}, "
        f"shape {constant.shape}, values {constant.reshape(-1).tolist()}"
    )


def test_one_value_beyond_65504_in_a_large_constant_is_found_in_bounded_memory():
    """The check of a 64 MB constant allocates a few blocks, not whole-array temporaries (coremltools'
    own allocated 5x the constant: abs, a mask, int64 indices per axis)."""
    constant = np.zeros((1 << 12, 1 << 12), np.float32)
    constant[-1, -1] = 65536.0  # in the last block
    op = op_reading(constant)
    tracemalloc.start()
    try:
        found = fp16_range.fp16_overflow(op)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    limit = 3 * fp16_range.BLOCK * 4
    assert found, "65536 (beyond fp16's 65504) was not found in the constant's last block"
    size = constant.nbytes / 1e6
    assert peak < limit, f"the check of a {size:.0f} MB constant peaked at {peak / 1e6:.1f} MB"


class _ScaledBy(torch.nn.Module):
    def __init__(self, scale: float):
        super().__init__()
        self.scale = scale

    def forward(self, x):
        return x * torch.full((4,), self.scale)


@pytest.mark.parametrize("scale, stays_fp32", [(65504.0, False), (70000.0, True)])
def test_conversion_uses_it_and_keeps_an_op_whose_constant_fp16_cannot_hold_in_fp32(scale, stays_fp32):
    assert FP16ComputePrecision.__dict__["fp16_overflow"].__func__ is fp16_range.fp16_overflow
    program = convert(_ScaledBy(scale), (torch.ones(4),), precision="fp16")._mil_program
    (mul,) = [op for op in program.functions["main"].operations if op.op_type == "mul"]
    dtypes = {types.builtin_to_string(mul.x.dtype), types.builtin_to_string(mul.y.dtype)}
    assert dtypes == ({"fp32"} if stays_fp32 else {"fp16"}), f"scale {scale}: mul reads {dtypes}"
