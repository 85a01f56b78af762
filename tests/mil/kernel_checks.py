"""Shared helpers of the kernel tests (tests/mil/test_kernels_*.py): seeded values, shape and axis
strategies, and the checks against coremltools' own ``value_inference``."""

from __future__ import annotations

import coremltools as ct
import numpy as np
from hypothesis import strategies as st
from mil_testing import assert_close, coremltools_reference, run_one_op

shapes = st.lists(st.integers(1, 4), min_size=1, max_size=4).map(tuple)


seeds = st.integers(0, 2**31 - 1)


def floats(seed, shape, low=-3.0, high=3.0):
    return np.random.default_rng(seed).uniform(low, high, shape).astype(np.float32)


def ints(seed, shape, low=-5, high=6):
    return np.random.default_rng(seed).integers(low, high, shape).astype(np.int32)


def broadcast_partner(seed, shape):
    """A shape that broadcasts against ``shape``: some axes set to 1, maybe fewer leading axes."""
    rng = np.random.default_rng(seed)
    partner = [1 if rng.random() < 0.4 else d for d in shape]
    return tuple(partner[int(rng.integers(0, len(partner))) :]) or (1,)


def shapes_of_rank(min_rank, max_rank, max_side=4):
    return st.lists(st.integers(1, max_side), min_size=min_rank, max_size=max_rank).map(tuple)


def axes_of(rank):
    """Distinct axes of a rank-``rank`` tensor, each written positive or negative."""
    return (
        st.sets(st.integers(0, rank - 1), max_size=rank)
        .flatmap(lambda axes: st.tuples(*[st.sampled_from([a, a - rank]) for a in sorted(axes)]))
        .map(list)
    )


def distinct_floats(seed, shape):
    """Values without ties (sorting ops may order ties differently: coremltools' argsort is unstable)."""
    count = int(np.prod(shape))
    return (np.random.default_rng(seed).permutation(count).reshape(shape) - count / 2).astype(np.float32)


def check_against_coremltools(op_type, data, attrs, *, rtol=1e-5, atol=1e-6, opset=ct.target.iOS16):
    expected = coremltools_reference(op_type, data, attrs, opset=opset)
    actual = run_one_op(op_type, data, attrs, opset=opset)
    assert len(expected) == len(actual)
    for i, (e, a) in enumerate(zip(expected, actual, strict=True)):
        assert_close(e, a, rtol=rtol, atol=atol, what=f"{op_type}{attrs} output {i}")


def check_constant_op_against_coremltools(op_type, attrs, *, rtol=1e-6, atol=1e-6):
    """An op with constant inputs only, folded at load time and run at call time, against coremltools."""
    expected = coremltools_reference(op_type, {}, attrs)[0]
    for fold in (True, False):
        actual = run_one_op(op_type, {}, attrs, fold_constants=fold)[0]
        assert_close(expected, actual, rtol=rtol, atol=atol, what=f"{op_type} {attrs} (folded: {fold})")


fill_values = st.sampled_from([0.0, 1.5, -2.25]) | st.integers(-5, 5)
