"""Every axis of rank-3, -4 and -5 tensors, the middle ones included, for every kernel that takes an axis.

A kernel that works on the wrong axis passes any test that only draws the first or the last one (and one
that draws sides of 1 or equal sides may not see it either). Here every side is distinct (a rotation of
2, 3, 4, 5, 6, so each axis has a different length in each rank) and every axis is written both positive
and negative, so an op on the wrong axis changes its output's shape or values. Each test sweeps every
(rank, axis) and reports all that fail, against coremltools' value_inference or a numpy formula.
"""

from __future__ import annotations

import numpy as np
import pytest
from kernel_checks import distinct_floats, floats, ints
from mil_testing import assert_close, coremltools_reference, run_one_op

SIDES = (2, 3, 4, 5, 6)
RANKS = (3, 4, 5)


def distinct_sides(rank: int) -> tuple:
    """Distinct sides, rotated by rank so the middle axes are not always the same lengths."""
    rotated = SIDES[rank % len(SIDES) :] + SIDES[: rank % len(SIDES)]
    return tuple(rotated[:rank])


def every_axis(extra: int = 0):
    """(rank, axis, shape) for every axis of every rank, axes written both ways; ``extra`` widens the
    range by that many positions past the last axis (expand_dims and stack address rank + 1 axes)."""
    for rank in RANKS:
        for axis in range(-rank - extra, rank + extra):
            yield rank, axis, distinct_sides(rank)


def sweep(op_type, build, *, extra=0, expected=None, rtol=1e-5, atol=1e-6):
    """Run ``op_type`` on ``build(rank, axis, shape)`` -> (data, attrs) for every axis; compare with
    coremltools (or ``expected(data, attrs, axis)``, a numpy formula); fail listing every bad axis."""
    failures = []
    for rank, axis, shape in every_axis(extra):
        case = build(rank, axis, shape)
        if case is None:
            continue
        data, attrs = case
        what = f"{op_type} rank {rank} shape {shape} axis {axis} {attrs}"
        try:
            references = (
                coremltools_reference(op_type, data, attrs)
                if expected is None
                else [expected(data, attrs, axis)]
            )
            actual = run_one_op(op_type, data, attrs)
            for reference, got in zip(references, actual, strict=True):
                assert_close(reference, got, rtol=rtol, atol=atol, what=what)
        except (AssertionError, RuntimeError) as error:  # a kernel's own range check raises RuntimeError
            failures.append(str(error).split("\n")[0])
    assert not failures, f"{len(failures)} axis case(s) wrong:\n" + "\n".join(failures)


def positive(axis, rank):
    return axis % rank


# Seeds are built from rank and axis (negative axes included): keep them non-negative for numpy.
def floats_at(seed, shape, low=-3.0, high=3.0):
    return floats(abs(seed) + 1000 * (seed < 0), shape, low, high)


def ints_at(seed, shape, low, high):
    return ints(abs(seed) + 1000 * (seed < 0), shape, low, high)


def distinct_at(seed, shape):
    return distinct_floats(abs(seed) + 1000 * (seed < 0), shape)


# ---------------------------------------------------------------- softmax, reductions, layer_norm

REDUCTIONS = ["reduce_sum", "reduce_mean", "reduce_max", "reduce_min", "reduce_prod", "reduce_sum_square"]
REDUCTIONS += ["reduce_l2_norm", "reduce_log_sum_exp"]


def test_softmax_on_every_axis():
    sweep("softmax", lambda r, a, s: ({"x": floats_at(r * 10 + a, s, -4, 4)}, {"axis": a}), atol=1e-7)


@pytest.mark.parametrize("op_type", REDUCTIONS)
def test_reductions_on_every_axis(op_type):
    def one_axis(rank, axis, shape):
        return {"x": floats_at(rank + axis, shape, 0.5, 1.5)}, {"axes": [axis], "keep_dims": axis % 2 == 0}

    sweep(op_type, one_axis)


@pytest.mark.slow
@pytest.mark.parametrize("op_type", REDUCTIONS)
def test_reductions_on_every_pair_of_neighbouring_axes(op_type):
    """Exhaustive (``-m slow``): each axis with its right neighbour, wrapping (middle pairs, first+last)."""

    def two_axes(rank, axis, shape):
        axes = sorted({positive(axis, rank), positive(axis + 1, rank)})
        return {"x": floats_at(rank - axis, shape, 0.5, 1.5)}, {"axes": axes, "keep_dims": axis < 0}

    sweep(op_type, two_axes)


@pytest.mark.parametrize("op_type", ["reduce_argmax", "reduce_argmin"])
def test_argmax_argmin_on_every_axis(op_type):
    sweep(
        op_type,
        lambda r, a, s: ({"x": distinct_at(r + a, s)}, {"axis": a, "keep_dims": a % 2 == 1}),
    )


def test_layer_norm_on_every_single_axis():
    def build(rank, axis, shape):
        side = shape[axis]
        attrs = {"axes": [axis], "epsilon": 1e-5}
        attrs.update(gamma=floats_at(rank, (side,), 0.5, 1.5), beta=floats_at(rank + 1, (side,)))
        return {"x": floats_at(rank * 3 + axis, shape)}, attrs

    sweep("layer_norm", build, rtol=1e-4, atol=1e-5)


# ---------------------------------------------------------------- gathers


def test_gather_on_every_axis():
    def build(rank, axis, shape):
        side = shape[axis]
        indices = ints_at(rank + axis, (2, 3), -side, side)  # negative indices count from the end
        return {"x": floats_at(rank * 7 + axis, shape), "indices": indices}, {"axis": axis}

    sweep("gather", build)


def test_gather_with_batch_dims_on_every_later_axis():
    """coremltools' value inference fails on a negative axis with batch_dims (numpy AxisError): the
    reference is its value at the same axis written positive."""

    def build(rank, axis, shape):
        if positive(axis, rank) == 0:
            return None  # the gathered axis must follow the batch axis
        indices = ints_at(rank + axis, (shape[0], 3), 0, shape[axis])
        return {"x": floats_at(rank + 5 * axis, shape), "indices": indices}, {"axis": axis, "batch_dims": 1}

    def expected(data, attrs, axis):
        attrs = dict(attrs, axis=positive(axis, data["x"].ndim))
        return coremltools_reference("gather", data, attrs)[0]

    sweep("gather", build, expected=expected)


def test_gather_along_axis_on_every_axis():
    def build(rank, axis, shape):
        index_shape = list(shape)
        index_shape[axis] = 3
        indices = ints_at(rank - axis, tuple(index_shape), 0, shape[axis])
        return {"x": floats_at(rank * 11 + axis, shape), "indices": indices}, {"axis": axis}

    sweep("gather_along_axis", build)


def test_gather_nd_for_every_batch_dims_and_depth():
    """gather_nd takes no axis: the axes it indexes are set by batch_dims and the index depth; every pair."""
    from test_kernels_scatter_gather import numpy_gather_nd

    failures = []
    for rank in RANKS:
        shape = distinct_sides(rank)
        for batch_dims in range(rank):
            for depth in range(1, rank - batch_dims + 1):
                rng = np.random.default_rng(rank * 100 + batch_dims * 10 + depth)
                positions = shape[:batch_dims] + (2,)
                sizes = shape[batch_dims : batch_dims + depth]
                indices = np.stack([rng.integers(0, n, positions) for n in sizes], axis=-1).astype(np.int32)
                x = floats_at(rank + depth, shape)
                actual = run_one_op("gather_nd", {"x": x, "indices": indices}, {"batch_dims": batch_dims})[0]
                try:
                    what = f"gather_nd shape {shape} batch_dims {batch_dims} depth {depth}"
                    assert_close(numpy_gather_nd(x, indices, batch_dims), actual, what=what)
                except AssertionError as error:
                    failures.append(str(error).split("\n")[0])
    assert not failures, "\n".join(failures)


# ---------------------------------------------------------------- layout and data movement


def test_concat_of_unequal_parts_on_every_axis():
    def build(rank, axis, shape):
        smaller = list(shape)
        smaller[axis] = 1
        values = [floats_at(rank + axis, shape), floats_at(rank - axis, tuple(smaller))]
        return {"values": values}, {"axis": axis}

    sweep("concat", build)


def test_split_into_unequal_parts_on_every_axis():
    def build(rank, axis, shape):
        return {"x": floats_at(rank + 2 * axis, shape)}, {"axis": axis, "split_sizes": [1, shape[axis] - 1]}

    sweep("split", build)


def test_stack_on_every_axis():
    sweep(
        "stack",
        lambda r, a, s: ({"values": [floats_at(r + a, s), floats_at(r + a + 1, s)]}, {"axis": a}),
        extra=1,
    )


def test_slice_by_index_on_every_single_axis():
    def build(rank, axis, shape):
        begin, end = [0] * rank, list(shape)
        begin[axis] = 1
        end[axis] = shape[axis] - (1 if shape[axis] > 2 else 0)
        attrs = dict(begin=np.array(begin, np.int32), end=np.array(end, np.int32))
        attrs["stride"] = np.array([1] * rank, np.int32)
        return {"x": floats_at(rank * 13 + axis, shape)}, attrs

    sweep("slice_by_index", build)


def test_slice_by_index_squeezes_every_single_axis():
    def build(rank, axis, shape):
        begin, squeeze = [0] * rank, [False] * rank
        begin[axis], squeeze[axis] = 1, True
        attrs = dict(
            begin=np.array(begin, np.int32),
            end=np.array(shape, np.int32),
            stride=np.array([1] * rank, np.int32),
            squeeze_mask=squeeze,
        )
        return {"x": floats_at(rank * 17 + axis, shape)}, attrs

    sweep("slice_by_index", build)


def test_slice_by_size_on_every_single_axis():
    def build(rank, axis, shape):
        begin, size = [0] * rank, [-1] * rank
        begin[axis], size[axis] = 1, shape[axis] - 1
        attrs = {"begin": np.array(begin, np.int32), "size": np.array(size, np.int32)}
        return {"x": floats_at(rank * 19 + axis, shape)}, attrs

    sweep("slice_by_size", build)


def test_expand_dims_at_every_position():
    sweep("expand_dims", lambda r, a, s: ({"x": floats_at(r + a, s)}, {"axes": [a]}), extra=1)


def test_squeeze_of_every_single_axis():
    def build(rank, axis, shape):
        with_one = list(shape)
        with_one[axis] = 1
        return {"x": floats_at(rank + axis, tuple(with_one))}, {"axes": [axis]}

    sweep("squeeze", build)


def test_transpose_swapping_every_axis_with_its_neighbour():
    def build(rank, axis, shape):
        perm = list(range(rank))
        a, b = positive(axis, rank), positive(axis + 1, rank)
        perm[a], perm[b] = perm[b], perm[a]
        return {"x": floats_at(rank + axis, shape)}, {"perm": perm}

    sweep("transpose", build)


def test_reverse_on_every_axis():
    sweep("reverse", lambda r, a, s: ({"x": floats_at(r + a, s)}, {"axes": np.array([a], np.int32)}))


def test_flatten2d_at_every_inner_axis():
    sweep(
        "flatten2d",
        lambda r, a, s: None if positive(a, r) == 0 else ({"x": floats_at(r + a, s)}, {"axis": a}),
    )


def test_tile_repeating_every_single_axis():
    def build(rank, axis, shape):
        reps = [1] * rank
        reps[axis] = 2
        return {"x": floats_at(rank + axis, shape)}, {"reps": reps}

    sweep("tile", build)


def test_pad_of_every_single_axis():
    """pad's list covers the last N axes: padding axis p alone takes 2 * (rank - p) entries."""

    def build(rank, axis, shape):
        count = rank - positive(axis, rank)
        pad = [0] * (2 * count)
        pad[0], pad[1] = 1, 2
        attrs = {"pad": np.array(pad, np.int32), "mode": "constant", "constant_val": 1.5}
        return {"x": floats_at(rank + axis, shape)}, attrs

    sweep("pad", build)


def numpy_cumsum(data, attrs, axis):
    x = data["x"]
    flipped = np.flip(x, axis) if attrs["reverse"] else x
    running = np.cumsum(flipped, axis=axis)
    if attrs["exclusive"]:
        running = running - flipped
    return np.flip(running, axis) if attrs["reverse"] else running


@pytest.mark.parametrize("exclusive, reverse", [(False, False), (True, False), (False, True), (True, True)])
def test_cumsum_on_every_axis(exclusive, reverse):
    """The op's definition accepts axes -1..rank-1; coremltools' value inference crashes on exclusive:
    numpy formula."""
    sweep(
        "cumsum",
        lambda r, a, s: (
            None
            if a < -1  # the op's definition accepts -1..rank-1 only
            else ({"x": floats_at(r + a, s)}, {"axis": a, "exclusive": exclusive, "reverse": reverse})
        ),
        expected=numpy_cumsum,
        atol=1e-5,
    )


def test_topk_on_every_axis():
    sweep(
        "topk",
        lambda r, a, s: ({"x": distinct_at(r + a, s)}, {"k": 2, "axis": a, "ascending": a % 2 == 0}),
    )


def test_argsort_on_every_axis():
    sweep(
        "argsort",
        lambda r, a, s: ({"x": distinct_at(r + a, s)}, {"axis": a, "ascending": a % 2 == 1}),
    )


def test_one_hot_at_every_axis():
    from test_kernels_tensor_operation import numpy_one_hot

    def build(rank, axis, shape):
        return {"indices": ints_at(rank + axis, shape[:-1], 0, 4)}, {"one_hot_vector_size": 4, "axis": axis}

    def expected(data, attrs, axis):
        return numpy_one_hot(data["indices"], 4, axis, 1.0, 0.0)

    sweep("one_hot", build, expected=expected)
