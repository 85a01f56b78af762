"""Kernels of softmax, the reductions and the normalizations against coremltools' value_inference or the
published formula."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from kernel_checks import (
    check_against_coremltools,
    floats,
    seeds,
    shapes,
    shapes_of_rank,
)
from mil_testing import assert_close, run_one_op


@settings(deadline=None)
@given(shape=shapes, seed=seeds, data=st.data())
def test_softmax_matches_coremltools(shape, seed, data):
    axis = data.draw(st.integers(-len(shape), len(shape) - 1), label="axis")
    check_against_coremltools(
        "softmax", {"x": floats(seed, shape, -6, 6)}, {"axis": axis}, rtol=1e-5, atol=1e-7
    )


REDUCTIONS = ["reduce_sum", "reduce_mean", "reduce_max", "reduce_min", "reduce_prod", "reduce_sum_square"]


REDUCTIONS += ["reduce_l2_norm", "reduce_log_sum_exp"]


@pytest.mark.parametrize("op_type", REDUCTIONS)
@settings(deadline=None)
@given(shape=shapes, seed=seeds, data=st.data())
def test_reductions_match_coremltools(op_type, shape, seed, data):
    rank = len(shape)
    axes = data.draw(
        st.none() | st.lists(st.integers(-rank, rank - 1), min_size=1, max_size=rank), label="axes"
    )
    if axes is not None:
        axes = sorted({a % rank for a in axes})
    keep_dims = data.draw(st.booleans(), label="keep_dims")
    attrs = {"keep_dims": keep_dims} if axes is None else {"axes": axes, "keep_dims": keep_dims}
    check_against_coremltools(op_type, {"x": floats(seed, shape, 0.5, 1.5)}, attrs, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("op_type", ["reduce_argmax", "reduce_argmin"])
@settings(deadline=None)
@given(shape=shapes, seed=seeds, data=st.data())
def test_argmax_argmin_match_coremltools(op_type, shape, seed, data):
    axis = data.draw(st.integers(-len(shape), len(shape) - 1), label="axis")
    keep = data.draw(st.booleans(), label="keep_dims")
    check_against_coremltools(op_type, {"x": floats(seed, shape)}, {"axis": axis, "keep_dims": keep})


@settings(deadline=None)
@given(shape=st.lists(st.integers(1, 5), min_size=2, max_size=4).map(tuple), seed=seeds, data=st.data())
def test_layer_norm_matches_coremltools_on_any_axes(shape, seed, data):
    rank = len(shape)
    axes = sorted(data.draw(st.sets(st.integers(0, rank - 1), min_size=1, max_size=rank), label="axes"))
    param_shape = tuple(shape[a] for a in axes)
    attrs = {"axes": axes, "epsilon": data.draw(st.sampled_from([1e-5, 1e-7, 1e-2]), label="epsilon")}
    if data.draw(st.booleans(), label="affine"):
        attrs["gamma"] = floats(seed + 1, param_shape, 0.5, 1.5)
        attrs["beta"] = floats(seed + 2, param_shape)
    check_against_coremltools("layer_norm", {"x": floats(seed, shape)}, attrs, rtol=1e-4, atol=1e-5)


@settings(deadline=None)
@given(shape=st.lists(st.integers(1, 4), min_size=3, max_size=5).map(tuple), seed=seeds)
def test_batch_norm_is_the_published_formula(shape, seed):
    """batch_norm has no value_inference: gamma (x - mean) / sqrt(var + eps) + beta per channel, numpy."""
    channels = shape[1]
    x = floats(seed, shape)
    mean, gamma, beta = floats(seed + 1, channels), floats(seed + 2, channels), floats(seed + 3, channels)
    variance = floats(seed + 4, channels, 0.1, 2.0)
    eps = 1e-3
    bshape = (1, channels) + (1,) * (len(shape) - 2)
    expected = (x - mean.reshape(bshape)) / np.sqrt(variance.reshape(bshape) + eps) * gamma.reshape(
        bshape
    ) + beta.reshape(bshape)
    attrs = {"mean": mean, "variance": variance, "gamma": gamma, "beta": beta, "epsilon": eps}
    assert_close(
        expected, run_one_op("batch_norm", {"x": x}, attrs)[0], rtol=1e-5, atol=1e-5, what="batch_norm"
    )


@settings(deadline=None)
@given(shape=st.lists(st.integers(2, 4), min_size=3, max_size=4).map(tuple), seed=seeds)
def test_instance_norm_is_the_published_formula(shape, seed):
    x = floats(seed, shape)
    dims = tuple(range(2, len(shape)))
    expected = (x - x.mean(axis=dims, keepdims=True)) / np.sqrt(x.var(axis=dims, keepdims=True) + 1e-5)
    assert_close(
        expected, run_one_op("instance_norm", {"x": x}, {})[0], rtol=1e-4, atol=1e-4, what="instance_norm"
    )


@settings(deadline=None)
@given(shape=shapes_of_rank(3, 5), seed=seeds, epsilon=st.sampled_from([1e-6, 1e-3, 1.0]))
def test_l2_norm_matches_coremltools_over_the_last_three_axes(shape, seed, epsilon):
    x = floats(seed, shape)
    check_against_coremltools("l2_norm", {"x": x}, {"epsilon": epsilon}, rtol=1e-5, atol=1e-6)
