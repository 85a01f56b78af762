"""The executor's fp16 modes round where the program declares fp16, once, from the op's arithmetic."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from kernel_checks import (
    broadcast_partner,
    floats,
    seeds,
    shapes,
)
from mil_testing import coremltools_reference, describe_difference, run_one_op


@pytest.mark.parametrize("op_type", ["softmax", "exp", "gelu"])
def test_fp16_storage_rounds_each_output_once_from_fp32_arithmetic(op_type):
    x16 = floats(3, (3, 7), -4, 4).astype(np.float16)
    expected = coremltools_reference(op_type, {"x": x16.astype(np.float32)}, {})[0].astype(np.float16)
    actual = run_one_op(op_type, {"x": x16}, {}, mode="fp16_storage")[0]
    assert actual.dtype == np.float16
    ulp = np.spacing(np.abs(expected).astype(np.float16)).astype(np.float32)
    error = np.abs(actual.astype(np.float32) - expected.astype(np.float32))
    assert np.all(error <= ulp), (
        f"{op_type}: errors beyond one fp16 ulp, max {error.max()} vs ulp {ulp.max()}"
    )


@settings(deadline=None)
@given(shape=shapes, seed=seeds)
def test_native_fp16_mode_rounds_each_product_correctly(shape, seed):
    """The exact product of two fp16 values (float64 holds it) rounded once to fp16 is the IEEE fp16
    product; the native mode must give exactly that."""
    x16 = floats(seed, shape, -200.0, 200.0).astype(np.float16)
    y16 = floats(seed + 1, broadcast_partner(seed, shape), -200.0, 200.0).astype(np.float16)
    got = run_one_op("mul", {"x": x16, "y": y16}, {}, mode="fp16_native")[0]
    assert got.dtype == np.float16
    expected = (x16.astype(np.float64) * y16.astype(np.float64)).astype(np.float16)
    assert np.array_equal(got, expected), describe_difference(expected, got)
