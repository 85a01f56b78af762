"""Kernels of the elementwise ops (binary, unary, activations, cast, select) against coremltools'
value_inference or a formula written here."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from kernel_checks import (
    broadcast_partner,
    check_against_coremltools,
    floats,
    ints,
    seeds,
    shapes,
)
from mil_testing import assert_close, run_one_op

FLOAT_BINARY = ["add", "sub", "mul", "real_div", "maximum", "minimum", "floor_div", "mod"]


COMPARISONS = ["equal", "not_equal", "greater", "greater_equal", "less", "less_equal"]


@pytest.mark.parametrize("op_type", FLOAT_BINARY + COMPARISONS)
@settings(deadline=None)
@given(shape=shapes, seed=seeds)
def test_float_binary_ops_broadcast_like_coremltools(op_type, shape, seed):
    x = floats(seed, shape)
    y = floats(seed + 1, broadcast_partner(seed, shape))
    if op_type in ("real_div", "floor_div", "mod"):
        y = np.where(np.abs(y) < 0.5, 1.5, y).astype(np.float32)
    if op_type in COMPARISONS:
        y.flat[0] = x.flat[0]  # make equality cases appear
    check_against_coremltools(op_type, {"x": x, "y": y}, {}, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(
    "op_type", ["add", "sub", "mul", "floor_div", "mod", "maximum", "minimum", "equal", "less"]
)
@settings(deadline=None)
@given(shape=shapes, seed=seeds)
def test_int32_binary_ops_match_coremltools(op_type, shape, seed):
    x = ints(seed, shape)
    y = ints(seed + 1, broadcast_partner(seed, shape))
    if op_type in ("floor_div", "mod"):
        y = np.where(y == 0, 3, y).astype(np.int32)
    check_against_coremltools(op_type, {"x": x, "y": y}, {})


@settings(deadline=None)
@given(shape=shapes, seed=seeds)
def test_pow_matches_coremltools(shape, seed):
    x = floats(seed, shape, 0.1, 3.0)
    y = floats(seed + 1, broadcast_partner(seed, shape), -2.0, 2.0)
    check_against_coremltools("pow", {"x": x, "y": y}, {}, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("op_type", ["logical_and", "logical_or", "logical_xor"])
@settings(deadline=None)
@given(shape=shapes, seed=seeds)
def test_logical_binary_ops_match_coremltools(op_type, shape, seed):
    x = ints(seed, shape, 0, 2).astype(bool)
    y = ints(seed + 1, broadcast_partner(seed, shape), 0, 2).astype(bool)
    check_against_coremltools(op_type, {"x": x, "y": y}, {})


UNARY = {
    "abs": (-3, 3),
    "ceil": (-3, 3),
    "floor": (-3, 3),
    "round": (-3, 3),
    "sign": (-3, 3),
    "exp": (-3, 3),
    "exp2": (-3, 3),
    "sqrt": (0, 9),
    "square": (-3, 3),
    "erf": (-3, 3),
    "tanh": (-3, 3),
    "sigmoid": (-5, 5),
    "relu": (-3, 3),
    "relu6": (-8, 8),
    "sin": (-3, 3),
    "cos": (-3, 3),
    "softplus": (-3, 3),
}


@pytest.mark.parametrize("op_type", sorted(UNARY))
@settings(deadline=None)
@given(shape=shapes, seed=seeds)
def test_unary_ops_match_coremltools(op_type, shape, seed):
    x = floats(seed, shape, *UNARY[op_type])
    if op_type == "round":
        x.flat[0] = 2.5  # halves round to even
    check_against_coremltools(op_type, {"x": x}, {}, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    "op_type, low, high, attrs",
    [
        ("log", 0.0, 5.0, {"epsilon": 1e-3}),
        ("rsqrt", 0.0, 5.0, {"epsilon": 1e-3}),
        ("inverse", 0.2, 5.0, {"epsilon": 1e-2}),
        ("clip", -5.0, 5.0, {"alpha": -1.5, "beta": 2.0}),
        ("threshold", -5.0, 5.0, {"alpha": 0.5}),
        ("leaky_relu", -5.0, 5.0, {"alpha": 0.2}),
    ],
)
@settings(deadline=None)
@given(shape=shapes, seed=seeds)
def test_unary_ops_with_attributes_match_coremltools(op_type, low, high, attrs, shape, seed):
    check_against_coremltools(op_type, {"x": floats(seed, shape, low, high)}, attrs, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("mode", ["EXACT", "TANH_APPROXIMATION", "SIGMOID_APPROXIMATION"])
@settings(deadline=None)
@given(shape=shapes, seed=seeds)
def test_gelu_modes_match_coremltools(mode, shape, seed):
    check_against_coremltools("gelu", {"x": floats(seed, shape, -4, 4)}, {"mode": mode}, rtol=1e-5, atol=1e-6)


@settings(deadline=None)
@given(shape=shapes, seed=seeds)
def test_silu_is_x_times_logistic(shape, seed):
    """silu has no value_inference: compare with x / (1 + exp(-x)) in float64."""
    x = floats(seed, shape, -6, 6)
    expected = x.astype(np.float64) / (1.0 + np.exp(-x.astype(np.float64)))
    assert_close(expected, run_one_op("silu", {"x": x}, {})[0], rtol=1e-5, atol=1e-6, what="silu")


@pytest.mark.parametrize("dtype", ["int32", "fp32", "bool"])
@settings(deadline=None)
@given(shape=shapes, seed=seeds)
def test_cast_matches_coremltools(dtype, shape, seed):
    x = floats(seed, shape, -4, 4)
    x.flat[0] = 0.0
    check_against_coremltools("cast", {"x": x}, {"dtype": dtype})


@settings(deadline=None)
@given(shape=shapes, seed=seeds)
def test_logical_not_and_select_match_coremltools(shape, seed):
    cond = ints(seed, shape, 0, 2).astype(bool)
    check_against_coremltools("logical_not", {"x": cond}, {})
    a = floats(seed + 1, broadcast_partner(seed, shape))
    b = floats(seed + 2, shape)
    check_against_coremltools("select", {"cond": cond, "a": a, "b": b}, {})
