"""MIL kernels: shape and layout (iOS15.tensor_transformation)."""

from __future__ import annotations

import math

import torch

from .registry import axes_or_all, positive_axes, positive_axis, register


@register("transpose", attributes=("perm",), moves_data=True)
def transpose(x, perm):
    """iOS15.tensor_transformation.transpose: permute axes by ``perm`` (a view, no copy)."""
    return x.permute(*perm)


@register("reshape", attributes=("shape",), moves_data=True)
def reshape(x, shape):
    """iOS15/iOS17.tensor_transformation.reshape: 0 copies the matching input dim, counted from the right
    (iOS17 rule; for len(shape) == rank(x) it equals iOS15's positional rule), -1 is inferred."""
    rank, length = x.dim(), len(shape)
    target = []
    for i, size in enumerate(shape):
        if size == 0:
            j = rank - (length - i)
            size = x.shape[j] if j >= 0 else 1
        target.append(int(size))
    return x.reshape(target)


@register("expand_dims", attributes=("axes",), moves_data=True)
def expand_dims(x, axes):
    """iOS15.tensor_transformation.expand_dims: insert size-1 axes; negative axes count in the output rank."""
    out_rank = x.dim() + len(axes)
    for axis in sorted(positive_axes(axes, out_rank)):
        x = x.unsqueeze(axis)
    return x


@register("squeeze", attributes=("axes",), moves_data=True)
def squeeze(x, axes=None):
    """iOS15.tensor_transformation.squeeze: drop the given size-1 axes (non-unit axes are ignored, as in
    PyTorch), or every size-1 axis when ``axes`` is None."""
    if axes is None:
        return x.squeeze()
    return x.squeeze(tuple(positive_axes(axes, x.dim())))


@register("flatten2d", attributes=("axis",), moves_data=True)
def flatten2d(x, axis=1):
    """iOS15.tensor_operation.flatten2d: (prod(shape[:axis]), prod(shape[axis:])); axis in [-rank, rank],
    negative counts from the end."""
    axis = positive_axis(axis, x.dim())
    return x.reshape(math.prod(x.shape[:axis]), -1)


def _python_slice_indices(size, begin, end, stride):
    return torch.arange(*slice(begin, end, stride).indices(size), dtype=torch.long)


@register(
    "slice_by_index",
    attributes=("begin", "end", "stride", "begin_mask", "end_mask", "squeeze_mask"),
    moves_data=True,
)
def slice_by_index(x, begin, end, stride=None, begin_mask=None, end_mask=None, squeeze_mask=None):
    """iOS15.tensor_transformation.slice_by_index: per axis the Python slice begin:end:stride (negative
    values count from the end); begin_mask/end_mask ignore begin/end; squeeze_mask takes the single
    element at ``begin`` and drops the axis."""
    rank = x.dim()
    stride = stride or [1] * rank
    begin_mask = begin_mask or [False] * rank
    end_mask = end_mask or [False] * rank
    squeeze_mask = squeeze_mask or [False] * rank
    for axis in range(rank):
        b = None if begin_mask[axis] else int(begin[axis])
        e = None if end_mask[axis] else int(end[axis])
        s = int(stride[axis])
        if squeeze_mask[axis]:
            index = b if b is not None else (0 if s > 0 else -1)
            x = x.narrow(axis, index + x.shape[axis] if index < 0 else index, 1)
        elif s > 0:
            start, stop, step = slice(b, e, s).indices(x.shape[axis])
            x = x.narrow(axis, start, max(0, stop - start))[
                (slice(None),) * axis + (slice(None, None, step),)
            ]
        else:
            x = x.index_select(axis, _python_slice_indices(x.shape[axis], b, e, s))
    dropped = [axis for axis in range(rank) if squeeze_mask[axis]]
    return x.squeeze(tuple(dropped)) if dropped else x


@register("slice_by_size", attributes=("begin", "size"), moves_data=True)
def slice_by_size(x, begin, size):
    """iOS15.tensor_transformation.slice_by_size: x[begin : begin + size] per axis, size -1 to the end,
    negative begin counts from the end."""
    for axis, (b, n) in enumerate(zip(begin, size, strict=True)):
        b = int(b) + x.shape[axis] if b < 0 else int(b)
        x = x.narrow(axis, b, x.shape[axis] - b if n == -1 else int(n))
    return x


@register("reverse", attributes=("axes",), moves_data=True)
def reverse(x, axes=None):
    """iOS15.tensor_transformation.reverse: flip along ``axes`` (all axes when None)."""
    return torch.flip(x, axes_or_all(x, axes))
