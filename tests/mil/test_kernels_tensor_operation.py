"""Kernels of concat, split, tile, stack, pad, cumsum, topk, argsort, one_hot, fill, range_1d, band_part and
shape against coremltools' value_inference or the published formula."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from kernel_checks import (
    check_against_coremltools,
    check_constant_op_against_coremltools,
    distinct_floats,
    fill_values,
    floats,
    ints,
    seeds,
    shapes,
    shapes_of_rank,
)
from mil_testing import assert_close, coremltools_reference, run_one_op


@settings(deadline=None)
@given(shape=shapes, seed=seeds, data=st.data())
def test_concat_and_split_match_coremltools(shape, seed, data):
    axis = data.draw(st.integers(-len(shape), len(shape) - 1), label="axis")
    interleave = data.draw(st.booleans(), label="interleave")
    values = [floats(seed + i, shape) for i in range(3)]
    if interleave:
        # coremltools' concat value_inference ignores ``interleave``: the op docs' example is the reference,
        # output[i::n] = values[i] along ``axis``.
        expected = np.stack(values, axis=axis % len(shape) + 1).reshape(
            tuple(d * 3 if i == axis % len(shape) else d for i, d in enumerate(shape))
        )
        actual = run_one_op("concat", {"values": values}, {"axis": axis, "interleave": True})[0]
        assert_close(expected, actual, what=f"concat interleave axis {axis}")
    else:
        check_against_coremltools("concat", {"values": values}, {"axis": axis})
    joined = np.concatenate(values, axis=axis)
    check_against_coremltools("split", {"x": joined}, {"axis": axis, "num_splits": 3})
    size = shape[axis]
    check_against_coremltools("split", {"x": joined}, {"axis": axis, "split_sizes": [size, 2 * size]})


@settings(deadline=None)
@given(shape=shapes, seed=seeds, data=st.data())
def test_tile_and_stack_match_coremltools(shape, seed, data):
    reps = [data.draw(st.integers(1, 3)) for _ in shape]
    check_against_coremltools("tile", {"x": floats(seed, shape)}, {"reps": reps})
    axis = data.draw(st.integers(0, len(shape)), label="stack axis")
    check_against_coremltools(
        "stack", {"values": [floats(seed, shape), floats(seed + 1, shape)]}, {"axis": axis}
    )


@pytest.mark.parametrize("mode", ["constant", "reflect", "replicate"])
@settings(deadline=None)
@given(shape=st.lists(st.integers(2, 4), min_size=2, max_size=4).map(tuple), seed=seeds, data=st.data())
def test_pad_modes_match_coremltools(mode, shape, seed, data):
    padded_axes = data.draw(st.integers(1, 2 if mode != "constant" else len(shape)), label="padded axes")
    limit = 1 if mode == "reflect" else 2
    pad = [data.draw(st.integers(0, limit)) for _ in range(2 * padded_axes)]
    attrs = {"pad": np.array(pad, np.int32), "mode": mode, "constant_val": 1.5}
    check_against_coremltools("pad", {"x": floats(seed, shape)}, attrs)


@settings(deadline=None)
@given(shape=shapes, seed=seeds, data=st.data())
def test_cumsum_matches_coremltools(shape, seed, data):
    attrs = {
        "axis": data.draw(st.integers(-1, len(shape) - 1), label="axis"),  # coremltools' accepted range
        "exclusive": data.draw(st.booleans(), label="exclusive"),
        "reverse": data.draw(st.booleans(), label="reverse"),
    }
    x = floats(seed, shape)
    if not attrs["exclusive"]:
        check_against_coremltools("cumsum", {"x": x}, attrs, atol=1e-5)
        return
    # coremltools' exclusive cumsum value_inference crashes (np.zeros(shape, data)): numpy formula instead.
    axis = attrs["axis"]
    flipped = np.flip(x, axis) if attrs["reverse"] else x
    running = np.cumsum(flipped, axis=axis) - flipped
    expected = np.flip(running, axis) if attrs["reverse"] else running
    assert_close(expected, run_one_op("cumsum", {"x": x}, attrs)[0], atol=1e-5, what=f"cumsum {attrs}")


@settings(deadline=None)
@given(shape=shapes, seed=seeds, data=st.data())
def test_topk_matches_coremltools(shape, seed, data):
    axis = data.draw(st.integers(-len(shape), len(shape) - 1), label="axis")
    k = data.draw(st.integers(1, shape[axis]), label="k")
    ascending = data.draw(st.booleans(), label="ascending")
    x = np.random.default_rng(seed).permutation(int(np.prod(shape))).reshape(shape).astype(np.float32)
    check_against_coremltools("topk", {"x": x}, {"k": k, "axis": axis, "ascending": ascending})


@settings(deadline=None)
@given(shape=shapes, seed=seeds, data=st.data())
def test_argsort_matches_coremltools(shape, seed, data):
    axis = data.draw(st.integers(-len(shape), len(shape) - 1), label="axis")
    ascending = data.draw(st.booleans(), label="ascending")
    attrs = {"axis": axis, "ascending": ascending}
    check_against_coremltools("argsort", {"x": distinct_floats(seed, shape)}, attrs)
    check_against_coremltools("argsort", {"x": distinct_floats(seed, shape).astype(np.int32)}, attrs)


def numpy_one_hot(indices, depth, axis, on_value, off_value):
    """The op docs' one_hot: a new axis of length ``depth`` at ``axis``; on_value where it equals the
    index, off_value elsewhere."""
    hot = np.arange(depth) == indices[..., None]
    out = np.where(hot, on_value, off_value)
    return np.moveaxis(out, -1, axis % (indices.ndim + 1))


@settings(deadline=None)
@given(shape=shapes_of_rank(1, 3), seed=seeds, data=st.data())
def test_one_hot_is_the_published_formula(shape, seed, data):
    """one_hot has no value_inference: numpy formula, float and int on/off values."""
    depth = data.draw(st.integers(1, 5), label="one_hot_vector_size")
    axis = data.draw(st.integers(-len(shape) - 1, len(shape)), label="axis")
    on_value, off_value = data.draw(
        st.sampled_from([(1.0, 0.0), (2.5, -1.0), (1, 0), (7, -3)]), label="on/off values"
    )
    indices = ints(seed, shape, 0, depth)
    attrs = {"one_hot_vector_size": depth, "axis": axis, "on_value": on_value, "off_value": off_value}
    expected = numpy_one_hot(indices, depth, axis, on_value, off_value)
    actual = run_one_op("one_hot", {"indices": indices}, attrs)[0]
    assert actual.dtype.kind == np.asarray(on_value).dtype.kind, f"one_hot {attrs}: dtype {actual.dtype}"
    assert_close(expected, actual, what=f"one_hot {attrs}")


@settings(deadline=None)
@given(shape=shapes, seed=seeds)
def test_shape_fill_like_and_identity_match_coremltools(shape, seed):
    x = floats(seed, shape)
    check_against_coremltools("shape", {"x": x}, {})
    check_against_coremltools("fill_like", {"ref_tensor": x}, {"value": 2.5})
    check_against_coremltools("identity", {"x": x}, {})


@settings(deadline=None)
@given(shape=shapes, value=fill_values)
def test_fill_matches_coremltools(shape, value):
    attrs = {"shape": np.array(shape, np.int32), "value": value}
    check_constant_op_against_coremltools("fill", attrs)
    # the shape as a run-time input (its output shape is only known when the program runs)
    actual = run_one_op("fill", {"shape": np.array(shape, np.int32)}, {"value": value})[0]
    assert_close(coremltools_reference("fill", {}, attrs)[0], actual, what=f"fill {attrs} at run time")


def int_ranges():
    """(start, end, step) with a non-empty range, positive or negative step."""
    return st.tuples(st.integers(-20, 20), st.integers(1, 15), st.integers(1, 5), st.booleans()).map(
        lambda t: (t[0], t[0] + t[1], t[2]) if t[3] else (t[0] + t[1], t[0], -t[2])
    )


def float_ranges():
    """(start, end, step) as fp32 values, steps that do not divide the span included."""
    values = st.floats(-10, 10, width=32)
    steps = st.floats(0.125, 3.0, width=32)
    return (
        st.tuples(values, values, steps)
        .filter(lambda t: abs(t[1] - t[0]) / t[2] >= 1)
        .map(lambda t: (t[0], t[1], t[2] if t[1] > t[0] else -t[2]))
    )


@settings(deadline=None)
@given(bounds=int_ranges() | float_ranges())
def test_range_1d_matches_coremltools(bounds):
    start, end, step = bounds
    if isinstance(start, int):
        attrs = {"start": np.int32(start), "end": np.int32(end), "step": np.int32(step)}
        check_constant_op_against_coremltools("range_1d", attrs)
        return
    attrs = {"start": np.float32(start), "end": np.float32(end), "step": np.float32(step)}
    # fp32: numpy's arange (coremltools' value_inference) accumulates rounding along the range (12 fp32
    # ulps of |start| measured at 31 elements); the kernel gives start + i * step rounded once. Same length,
    # values within one ulp of the float64 formula, and within numpy's drift of value_inference.
    expected = coremltools_reference("range_1d", {}, attrs)[0]
    exact = np.float64(start) + np.arange(len(expected)) * np.float64(step)
    drift = 2 * len(expected) * np.spacing(np.float32(max(abs(start), abs(end))))
    for fold in (True, False):
        actual = run_one_op("range_1d", {}, attrs, fold_constants=fold)[0]
        what = f"range_1d {attrs} (folded: {fold})"
        assert_close(exact, actual, rtol=0, atol=np.spacing(np.float32(max(abs(start), abs(end)))), what=what)
        assert_close(expected, actual, rtol=0, atol=drift, what=what)


@settings(deadline=None)
@given(shape=shapes_of_rank(2, 4, 6), seed=seeds, data=st.data())
def test_band_part_matches_coremltools(shape, seed, data):
    lower = data.draw(st.integers(-1, shape[-2]), label="lower")
    upper = data.draw(st.integers(-1, shape[-1]), label="upper")
    check_against_coremltools("band_part", {"x": floats(seed, shape)}, {"lower": lower, "upper": upper})
    attrs = {"x": floats(seed, shape), "lower": lower, "upper": upper}
    check_constant_op_against_coremltools("band_part", attrs)


def test_concat_of_scalars_stacks_them_like_coremltools():
    """torch.export programs build slice bounds by concatenating scalars (rank 0 placeholders cannot be
    function inputs, so the op runs on constants, folded and at call time)."""
    values = [np.array(v, np.int32) for v in (3, -1, 7)]
    check_constant_op_against_coremltools("concat", {"values": values, "axis": 0})
