"""Kernels of the layout ops (transpose, reshape, expand_dims, squeeze, flatten2d, reverse, slices) against
coremltools' value_inference."""

from __future__ import annotations

import coremltools as ct
import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from kernel_checks import (
    axes_of,
    check_against_coremltools,
    floats,
    ints,
    seeds,
    shapes,
)
from mil_testing import assert_close, coremltools_reference, run_one_op

IOS18 = ct.target.iOS18


@settings(deadline=None)
@given(shape=shapes, seed=seeds, data=st.data())
def test_transpose_matches_coremltools(shape, seed, data):
    perm = data.draw(st.permutations(range(len(shape))), label="perm")
    check_against_coremltools("transpose", {"x": floats(seed, shape)}, {"perm": list(perm)})


@settings(deadline=None)
@given(shape=shapes, seed=seeds, data=st.data())
def test_reshape_with_zero_and_minus_one_matches_coremltools(shape, seed, data):
    target = [d if data.draw(st.booleans()) else 0 for d in shape]
    target[data.draw(st.integers(0, len(shape) - 1))] = -1
    check_against_coremltools("reshape", {"x": floats(seed, shape)}, {"shape": np.array(target, np.int32)})


@settings(deadline=None)
@given(shape=shapes, seed=seeds, data=st.data())
def test_expand_dims_and_squeeze_match_coremltools(shape, seed, data):
    rank = len(shape)
    axis = data.draw(st.integers(-rank - 1, rank), label="axis")
    check_against_coremltools("expand_dims", {"x": floats(seed, shape)}, {"axes": [axis]})
    with_ones = tuple(1 if data.draw(st.booleans()) else d for d in shape)
    ones = [i for i, d in enumerate(with_ones) if d == 1]
    if ones and len(ones) < len(with_ones):
        check_against_coremltools("squeeze", {"x": floats(seed, with_ones)}, {"axes": ones[:1]})
        check_against_coremltools("squeeze", {"x": floats(seed, with_ones)}, {})


@settings(deadline=None)
@given(shape=shapes, seed=seeds, data=st.data())
def test_flatten2d_matches_coremltools_for_every_axis(shape, seed, data):
    rank = len(shape)
    axis = data.draw(st.integers(-rank, rank), label="axis")
    for x in (floats(seed, shape), ints(seed, shape)):
        if axis in (0, -rank, rank):
            # coremltools' value_inference crashes when one side is empty (np.prod(()) is the float 1.0,
            # which reshape refuses): the op docs' formula, (prod(shape[:axis]), prod(shape[axis:])).
            expected = x.reshape(1, -1) if axis != rank else x.reshape(-1, 1)
            actual = run_one_op("flatten2d", {"x": x}, {"axis": axis})[0]
            assert_close(expected, actual, what=f"flatten2d axis {axis}")
        else:
            check_against_coremltools("flatten2d", {"x": x}, {"axis": axis})


@settings(deadline=None)
@given(shape=shapes, seed=seeds, data=st.data())
def test_reverse_matches_coremltools(shape, seed, data):
    axes = data.draw(st.none() | axes_of(len(shape)), label="axes")
    attrs = {} if axes is None else {"axes": np.array(axes, np.int32)}
    check_against_coremltools("reverse", {"x": floats(seed, shape)}, attrs)


@settings(deadline=None)
@given(shape=shapes, seed=seeds, data=st.data())
def test_slice_by_index_matches_coremltools(shape, seed, data):
    rank = len(shape)
    begin, end, stride, begin_mask, end_mask, squeeze_mask = [], [], [], [], [], []
    for d in shape:
        begin.append(data.draw(st.integers(-d, d - 1)))
        end.append(data.draw(st.integers(-d, d)))
        stride.append(data.draw(st.sampled_from([1, 2, -1, -2])))
        begin_mask.append(data.draw(st.booleans()))
        end_mask.append(data.draw(st.booleans()))
        squeeze_mask.append(False)
    squeezed = data.draw(st.integers(-1, rank - 1), label="squeezed axis")
    if squeezed >= 0 and rank > 1:
        squeeze_mask[squeezed], begin_mask[squeezed], end_mask[squeezed] = True, False, False
        stride[squeezed] = 1
    attrs = dict(
        begin=np.array(begin, np.int32), end=np.array(end, np.int32), stride=np.array(stride, np.int32)
    )
    attrs.update(begin_mask=begin_mask, end_mask=end_mask, squeeze_mask=squeeze_mask)
    try:
        expected = coremltools_reference("slice_by_index", {"x": floats(seed, shape)}, attrs)
    except ValueError:
        expected = None  # coremltools rejects some empty slices at build time; Core ML never runs them
    assume(expected is not None and 0 not in expected[0].shape)
    check_against_coremltools("slice_by_index", {"x": floats(seed, shape)}, attrs)


@settings(deadline=None)
@given(shape=shapes, seed=seeds, data=st.data())
def test_slice_by_size_matches_coremltools(shape, seed, data):
    begin = [data.draw(st.integers(0, d - 1)) for d in shape]
    size = [data.draw(st.sampled_from([-1, 1, d - b])) for d, b in zip(shape, begin, strict=True)]
    attrs = {"begin": np.array(begin, np.int32), "size": np.array(size, np.int32)}
    check_against_coremltools("slice_by_size", {"x": floats(seed, shape)}, attrs)


# slice_update slices whose element count a wrong stride keeps: a stride defect here writes the same
# number of elements to other places (or in another order), so only the values can show it.
SAME_COUNT_SLICES = {
    # x[::-1] = update: stride sign ignored writes forwards; an unflipped write lands reversed
    "reversed axis": ((5,), [0], [0], [-1], [True], [True]),
    # x[::-2]: elements 4, 2, 0
    "reversed stride 2": ((5,), [0], [0], [-2], [True], [True]),
    # x[0:4:2, 0:2]: rows 0, 2 (2 x 2); the strides swapped between axes read rows 0..3 of column 0 (4 x 1)
    "stride 2 then 1": ((4, 2), [0, 0], [4, 2], [2, 1], [False, False], [False, False]),
    # x[3::-1, 1:4:2] on (4, 4): the sign and the step on different axes
    "reversed then stride 2": ((4, 4), [3, 1], [0, 4], [-1, 2], [False, False], [True, False]),
}


@pytest.mark.parametrize("name", sorted(SAME_COUNT_SLICES))
def test_slice_update_strides_by_value(name):
    """slice_update against numpy's ``x[slice] = update`` and coremltools' value_inference, with distinct
    values everywhere, on slices where a wrong stride would not change the element count."""
    shape, begin, end, stride, begin_mask, end_mask = SAME_COUNT_SLICES[name]
    slices = tuple(
        slice(None if bm else b, None if em else e, s)
        for b, e, s, bm, em in zip(begin, end, stride, begin_mask, end_mask, strict=True)
    )
    x = np.arange(np.prod(shape), dtype=np.float32).reshape(shape)
    region_shape = x[slices].shape
    update = -1.0 - np.arange(np.prod(region_shape), dtype=np.float32).reshape(region_shape)
    expected = x.copy()
    expected[slices] = update
    attrs = dict(
        begin=np.array(begin, np.int32),
        end=np.array(end, np.int32),
        stride=np.array(stride, np.int32),
        begin_mask=begin_mask,
        end_mask=end_mask,
    )
    reference = coremltools_reference("slice_update", {"x": x, "update": update}, attrs, opset=IOS18)[0]
    assert np.array_equal(reference, expected), f"{name}: numpy and coremltools differ: {reference}"
    actual = run_one_op("slice_update", {"x": x, "update": update}, attrs, opset=IOS18)[0]
    assert np.array_equal(actual, expected), (
        f"slice_update {name} (x {shape}, begin {begin}, end {end}, stride {stride}, begin_mask "
        f"{begin_mask}, end_mask {end_mask}): expected\n{expected}\ngot\n{actual}"
    )
