"""Each kernel against an independent reference: coremltools' own ``value_inference`` where the op class
defines one (Hypothesis draws shapes, values and attributes), otherwise a numpy or torch formula written
here. Ops run as function inputs, so the executor's run-time path is what is checked (ops whose inputs
are all constants are checked both folded at load time and run at call time).
``test_every_kernel_is_checked_here`` keeps that true for every kernel in the table."""

from __future__ import annotations

import ast
import importlib
import inspect
import re
import sys

import coremltools as ct
import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from mil_testing import assert_close, coremltools_reference, describe_difference, run_one_op

from verification.mil import KERNELS

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


# ---------------------------------------------------------------- elementwise

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


# ---------------------------------------------------------------- softmax, reductions, normalization


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


# ---------------------------------------------------------------- linear algebra


@settings(deadline=None)
@given(seed=seeds, data=st.data())
def test_matmul_with_transposes_matches_coremltools(seed, data):
    batch = data.draw(st.lists(st.integers(1, 3), max_size=2), label="batch")
    m, k, n = (data.draw(st.integers(1, 4)) for _ in range(3))
    tx, ty = data.draw(st.booleans(), label="transpose_x"), data.draw(st.booleans(), label="transpose_y")
    x = floats(seed, tuple(batch) + ((k, m) if tx else (m, k)))
    y = floats(seed + 1, (k, n)[::-1] if ty else (k, n))
    check_against_coremltools("matmul", {"x": x, "y": y}, {"transpose_x": tx, "transpose_y": ty}, atol=1e-5)


@settings(deadline=None)
@given(shape=shapes, seed=seeds, out_features=st.integers(1, 5))
def test_linear_matches_coremltools(shape, seed, out_features):
    weight = floats(seed + 1, (out_features, shape[-1]))
    bias = floats(seed + 2, (out_features,))
    check_against_coremltools(
        "linear", {"x": floats(seed, shape)}, {"weight": weight, "bias": bias}, atol=1e-5
    )


EINSUM_CASES = [
    ("nchw,nwhu->nchu", (2, 3, 4, 5), (2, 5, 4, 3)),
    ("bkhc,bchq->bkhq", (1, 6, 1, 4), (1, 4, 1, 6)),  # the ANE attention scores, operands as converted
    ("bchk,bkhq->bchq", (1, 4, 1, 6), (1, 6, 1, 6)),  # the ANE weighted sum
    ("nchw,nwhu->nchu", (1, 3, 1, 5), (2, 5, 4, 3)),  # batch and H broadcast from 1
    ("chw,whr->chr", (3, 4, 5), (5, 4, 2)),
]


@pytest.mark.parametrize("equation, x_shape, y_shape", EINSUM_CASES)
@settings(deadline=None)
@given(seed=seeds)
def test_einsum_matches_coremltools(equation, x_shape, y_shape, seed):
    values = [floats(seed, x_shape), floats(seed + 1, y_shape)]
    check_against_coremltools("einsum", {"values": values}, {"equation": equation}, atol=1e-5)


def numpy_conv(x, weight, bias, strides, pad, dilations, groups):
    """Direct convolution in float64, written independently of torch: x already padded by ``pad``."""
    spatial = x.ndim - 2
    widths = [(0, 0), (0, 0)] + [(pad[2 * i], pad[2 * i + 1]) for i in range(spatial)]
    x = np.pad(x.astype(np.float64), widths)
    batch, c_in = x.shape[:2]
    c_out, c_per_group = weight.shape[:2]
    kernel = weight.shape[2:]
    out_sizes = [
        (x.shape[2 + i] - (kernel[i] - 1) * dilations[i] - 1) // strides[i] + 1 for i in range(spatial)
    ]
    out = np.zeros((batch, c_out, *out_sizes))
    per_group_out = c_out // groups
    for offsets in np.ndindex(*kernel):
        window = tuple(
            slice(
                offsets[i] * dilations[i],
                offsets[i] * dilations[i] + strides[i] * (out_sizes[i] - 1) + 1,
                strides[i],
            )
            for i in range(spatial)
        )
        patch = x[(slice(None), slice(None)) + window]
        for g in range(groups):
            w = weight[(slice(g * per_group_out, (g + 1) * per_group_out), slice(None)) + offsets].astype(
                np.float64
            )
            xs = patch[:, g * c_per_group : (g + 1) * c_per_group]
            out[:, g * per_group_out : (g + 1) * per_group_out] += np.einsum("oc,bc...->bo...", w, xs)
    if bias is not None:
        out += bias.reshape((1, -1) + (1,) * spatial)
    return out


def same_pads(in_sizes, kernel, strides, dilations, lower):
    pads = []
    for size, k, s, d in zip(in_sizes, kernel, strides, dilations, strict=True):
        total = max(0, (-(-size // s) - 1) * s + (k - 1) * d + 1 - size)
        small, large = total // 2, total - total // 2
        pads += [large, small] if lower else [small, large]
    return pads


@settings(deadline=None)
@given(seed=seeds, data=st.data())
def test_conv_matches_a_direct_numpy_convolution(seed, data):
    spatial = data.draw(st.integers(1, 2), label="spatial dims")
    groups = data.draw(st.sampled_from([1, 2]), label="groups")
    c_in = groups * data.draw(st.integers(1, 2))
    c_out = groups * data.draw(st.integers(1, 2))
    kernel = [data.draw(st.integers(1, 3)) for _ in range(spatial)]
    strides = [data.draw(st.integers(1, 2)) for _ in range(spatial)]
    dilations = [data.draw(st.integers(1, 2)) for _ in range(spatial)]
    sizes = [
        data.draw(st.integers(max(3, (k - 1) * d + 1), 7)) for k, d in zip(kernel, dilations, strict=True)
    ]
    pad_type = data.draw(st.sampled_from(["valid", "custom", "same", "same_lower"]), label="pad_type")
    pad = (
        [data.draw(st.integers(0, 2)) for _ in range(2 * spatial)]
        if pad_type == "custom"
        else [0] * (2 * spatial)
    )
    x = floats(seed, (1, c_in, *sizes))
    weight = floats(seed + 1, (c_out, c_in // groups, *kernel))
    bias = floats(seed + 2, (c_out,)) if data.draw(st.booleans(), label="bias") else None
    attrs = {"weight": weight, "strides": strides, "pad_type": pad_type, "pad": pad, "dilations": dilations}
    attrs["groups"] = groups
    if bias is not None:
        attrs["bias"] = bias
    if pad_type in ("same", "same_lower"):
        pad = same_pads(sizes, kernel, strides, dilations, pad_type == "same_lower")
    expected = numpy_conv(x, weight, bias, strides, pad, dilations, groups)
    assert_close(expected, run_one_op("conv", {"x": x}, attrs)[0], rtol=1e-5, atol=1e-5, what=f"conv {attrs}")


# ---------------------------------------------------------------- layout and data movement


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
@given(shape=shapes, seed=seeds, data=st.data())
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
@given(shape=shapes, seed=seeds, data=st.data())
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


@settings(deadline=None)
@given(shape=shapes, seed=seeds)
def test_shape_fill_like_and_identity_match_coremltools(shape, seed):
    x = floats(seed, shape)
    check_against_coremltools("shape", {"x": x}, {})
    check_against_coremltools("fill_like", {"ref_tensor": x}, {"value": 2.5})
    check_against_coremltools("identity", {"x": x}, {})


def check_constant_op_against_coremltools(op_type, attrs, *, rtol=1e-6, atol=1e-6):
    """An op with constant inputs only, folded at load time and run at call time, against coremltools."""
    expected = coremltools_reference(op_type, {}, attrs)[0]
    for fold in (True, False):
        actual = run_one_op(op_type, {}, attrs, fold_constants=fold)[0]
        assert_close(expected, actual, rtol=rtol, atol=atol, what=f"{op_type} {attrs} (folded: {fold})")


fill_values = st.sampled_from([0.0, 1.5, -2.25]) | st.integers(-5, 5)


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


# ---------------------------------------------------------------- fp16 modes round at op boundaries


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


# ---------------------------------------------------------------- the kernel table itself

# "iOS15.elementwise_binary.add: ..." or "iOS15/iOS17.reduction.reduce_argmax: ...": the opset version(s)
# whose op definition (coremltools.converters.mil.mil.ops.defs.<version>.<module>.<op>) the kernel follows.
PUBLISHED_SEMANTICS = re.compile(
    r"^(?P<versions>iOS1[5-8](?:/iOS1[5-8])*)\.(?P<module>[a-z_0-9]+)\.(?P<op>\w+)\b"
)


def test_every_kernel_docstring_names_the_published_op_it_follows():
    """Each docstring starts with version(s).module.op, the op is the kernel's own op type, and that op
    exists in coremltools' definitions for every version named."""
    problems = []
    for op_type, fn in sorted(KERNELS.items()):
        doc = (fn.__doc__ or "").strip()
        match = PUBLISHED_SEMANTICS.match(doc)
        if match is None:
            problems.append(f"{op_type}: docstring does not start with iOS<version>.<module>.<op>: {doc!r}")
            continue
        if match["op"] != op_type:
            problems.append(f"{op_type}: docstring names op {match['op']!r}")
        for version in match["versions"].split("/"):
            module_name = f"coremltools.converters.mil.mil.ops.defs.{version}.{match['module']}"
            try:
                module = importlib.import_module(module_name)
            except ImportError:
                problems.append(f"{op_type}: no module {module_name}")
                continue
            if not inspect.isclass(getattr(module, op_type, None)):
                problems.append(f"{op_type}: {module_name} defines no op {op_type!r}")
    assert not problems, "\n".join(problems)


CHECKERS = {"check_against_coremltools", "run_one_op", "coremltools_reference"}
CHECKERS |= {"check_constant_op_against_coremltools", "check_constexpr_against_coremltools"}


def op_types_checked_here() -> set:
    """Op types this module checks: literal first arguments of the checking helpers, and the values of
    every ``op_type`` parameter of a parametrized test."""
    module = sys.modules[__name__]
    found = set()
    # the compressed-constant kernels have their own module (their checks build constexpr programs)
    sources = [inspect.getsource(module), inspect.getsource(importlib.import_module("test_mil_constexpr"))]
    for node in (n for source in sources for n in ast.walk(ast.parse(source))):
        if (
            isinstance(node, ast.Call)
            and getattr(node.func, "id", None) in CHECKERS
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            found.add(node.args[0].value)
    for test in vars(module).values():
        for mark in getattr(test, "pytestmark", []):
            if mark.name != "parametrize":
                continue
            names = [n.strip() for n in mark.args[0].split(",")]
            if "op_type" in names:
                index = names.index("op_type")
                found |= {value[index] if len(names) > 1 else value for value in mark.args[1]}
    return found


def test_every_kernel_is_checked_here():
    unchecked = sorted(set(KERNELS) - op_types_checked_here())
    assert not unchecked, f"kernels no test in this module checks: {unchecked}"
