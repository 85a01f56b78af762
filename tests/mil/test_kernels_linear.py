"""Kernels of matmul, linear, einsum and conv against coremltools' value_inference or a direct numpy
formula."""

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
)
from mil_testing import assert_close, run_one_op


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
