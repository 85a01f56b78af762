"""MIL kernels: linear algebra (iOS15.linear, iOS15.conv)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from .registry import register


@register("matmul", attributes=("transpose_x", "transpose_y"), fp32_accumulate=True)
def matmul(x, y, transpose_x=False, transpose_y=False):
    """iOS15.linear.matmul: numpy matmul broadcasting; ``transpose_*`` swaps the last two axes of a
    rank >= 2 operand."""
    if transpose_x and x.dim() >= 2:
        x = x.transpose(-1, -2)
    if transpose_y and y.dim() >= 2:
        y = y.transpose(-1, -2)
    return torch.matmul(x, y)


@register("linear", fp32_accumulate=True)
def linear(x, weight, bias=None):
    """iOS15.linear.linear: x @ weight.T + bias, weight of shape (D_out, D_in)."""
    return F.linear(x, weight, bias)


@register("einsum", attributes=("equation",), fp32_accumulate=True)
def einsum(values, equation):
    """iOS15.linear.einsum: the op docs allow only a batched matrix product on axes -3 and -1
    ("nchw,nwhu->nchu", "chw,whr->chr" and renamings), broadcasting the batch axes of size 1; torch's
    einsum implements that and every renaming."""
    return torch.einsum(equation, *values)


def _same_padding(in_sizes, kernel_sizes, strides, dilations, extra_before):
    pad = []
    for size, kernel, stride, dilation in zip(in_sizes, kernel_sizes, strides, dilations, strict=True):
        effective = (kernel - 1) * dilation + 1
        total = max(0, stride * math.ceil(size / stride) - size + effective - stride)
        small, large = total // 2, total - total // 2
        pad += [large, small] if extra_before else [small, large]
    return pad


def _conv_padding(x, weight, strides, pad_type, pad, dilations):
    spatial = x.dim() - 2
    if pad_type == "valid":
        return [0] * (2 * spatial)
    if pad_type == "custom":
        return list(pad)
    if pad_type in ("same", "same_lower"):
        return _same_padding(x.shape[2:], weight.shape[2:], strides, dilations, pad_type == "same_lower")
    raise ValueError(f"conv: unknown pad_type {pad_type!r}; expected valid, custom, same or same_lower")


_CONV_BY_RANK = {3: F.conv1d, 4: F.conv2d, 5: F.conv3d}


@register("conv", attributes=("strides", "pad_type", "pad", "dilations", "groups"), fp32_accumulate=True)
def conv(x, weight, bias=None, strides=None, pad_type="valid", pad=None, dilations=None, groups=1):
    """iOS15.conv.conv: 1-3 spatial dims, weight (C_out, C_in/groups, *K). ``pad`` lists (before, after)
    per spatial dim; ``same`` pads total = max(0, s*ceil(i/s) - i + dilated_k - s) with the odd element
    after, ``same_lower`` with it before (the op docs' pad_type prose, as coremltools' aggregated_pad)."""
    spatial = x.dim() - 2
    strides = list(strides) if strides is not None else [1] * spatial
    dilations = list(dilations) if dilations is not None else [1] * spatial
    padding = _conv_padding(x, weight, strides, pad_type, pad, dilations)
    before, after = padding[0::2], padding[1::2]
    if before == after:
        return _CONV_BY_RANK[x.dim()](x, weight, bias, strides, before, dilations, groups)
    torch_pad = []
    for b, a in zip(reversed(before), reversed(after), strict=True):
        torch_pad += [b, a]
    x = F.pad(x, torch_pad)
    return _CONV_BY_RANK[x.dim()](x, weight, bias, strides, 0, dilations, groups)
