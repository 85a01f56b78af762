"""Kernels of gather, gather_along_axis and gather_nd against coremltools' value_inference or tf.gather_nd
written out."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from kernel_checks import (
    check_against_coremltools,
    floats,
    ints,
    seeds,
    shapes_of_rank,
)
from mil_testing import assert_close, run_one_op


def numpy_gather_nd(x, indices, batch_dims):
    """tf.gather_nd, written out: out[b..., i...] = x[b..., indices[b..., i...]]."""
    depth = indices.shape[-1]
    out_shape = indices.shape[:-1] + x.shape[batch_dims + depth :]
    out = np.zeros(out_shape, x.dtype)
    for position in np.ndindex(*indices.shape[:-1]):
        batch = position[:batch_dims]
        out[position] = x[batch + tuple(indices[position])]
    return out


@settings(deadline=None)
@given(seed=seeds, data=st.data())
def test_gather_nd_is_the_published_formula(seed, data):
    """gather_nd has no value_inference: tf.gather_nd written out in numpy, with iOS16's batch_dims."""
    batch_dims = data.draw(st.integers(0, 1), label="batch_dims")
    shape = data.draw(shapes_of_rank(batch_dims + 1, 4), label="x shape")
    depth = data.draw(st.integers(1, len(shape) - batch_dims), label="index depth")
    positions = data.draw(shapes_of_rank(0, 2, 3), label="index positions")
    index_shape = tuple(shape[:batch_dims]) + positions + (depth,)
    rng = np.random.default_rng(seed)
    sizes = shape[batch_dims : batch_dims + depth]
    indices = np.stack([rng.integers(0, n, index_shape[:-1]) for n in sizes], axis=-1).astype(np.int32)
    x = floats(seed, shape)
    actual = run_one_op("gather_nd", {"x": x, "indices": indices}, {"batch_dims": batch_dims})[0]
    assert_close(numpy_gather_nd(x, indices, batch_dims), actual, what=f"gather_nd batch_dims {batch_dims}")


def test_gather_nd_rejects_out_of_range_indices_with_the_range():
    x = floats(0, (4, 3))
    with pytest.raises(RuntimeError, match=r"gather_nd: index out of range \[0, 3\) on axis 1 of x: .*max 3"):
        run_one_op("gather_nd", {"x": x, "indices": np.array([[1, 3]], np.int32)}, {})


@settings(deadline=None)
@given(shape=shapes_of_rank(1, 5), seed=seeds, data=st.data())
def test_gather_matches_coremltools(shape, seed, data):
    axis = data.draw(st.integers(-len(shape), len(shape) - 1), label="axis")
    size = shape[axis]
    index_shape = tuple(data.draw(st.lists(st.integers(1, 3), min_size=1, max_size=2)))
    indices = ints(seed + 1, index_shape, -size, size)  # negative indices count from the end
    check_against_coremltools("gather", {"x": floats(seed, shape), "indices": indices}, {"axis": axis})


@settings(deadline=None)
@given(seed=seeds, data=st.data())
def test_gather_with_batch_dims_matches_coremltools(seed, data):
    shape = (2, 3, 4)
    indices = ints(seed, (2, data.draw(st.integers(1, 3))), 0, 3)
    check_against_coremltools(
        "gather", {"x": floats(seed, shape), "indices": indices}, {"axis": 1, "batch_dims": 1}
    )


@settings(deadline=None)
@given(shape=shapes_of_rank(1, 5), seed=seeds, data=st.data())
def test_gather_along_axis_matches_coremltools(shape, seed, data):
    axis = data.draw(st.integers(-len(shape), len(shape) - 1), label="axis")
    index_shape = list(shape)
    index_shape[axis] = data.draw(st.integers(1, 3))
    indices = ints(seed + 1, tuple(index_shape), 0, shape[axis])
    check_against_coremltools(
        "gather_along_axis", {"x": floats(seed, shape), "indices": indices}, {"axis": axis}
    )


def test_gather_rejects_out_of_range_indices_with_the_range():
    x = floats(0, (4, 3))
    with pytest.raises(RuntimeError, match=r"out of range \[-4, 4\)"):
        run_one_op("gather", {"x": x, "indices": np.array([1, 4], np.int32)}, {"axis": 0})
