"""MIL kernels: selection and gathers."""

from __future__ import annotations

import torch

from .registry import positive_axis, register


@register("select")
def select(cond, a, b):
    """iOS15.control_flow.select: a where cond else b, with broadcasting."""
    return torch.where(cond.bool() if cond.dtype != torch.bool else cond, a, b)


def _checked_indices(indices, size, validate, allow_negative, op_type):
    indices = indices.long()
    if validate or allow_negative:
        low = -size if allow_negative else 0
        if indices.numel() and (indices.min() < low or indices.max() >= size):
            raise IndexError(
                f"{op_type}: index out of range [{low}, {size}): "
                f"min {int(indices.min())}, max {int(indices.max())}"
            )
    return torch.where(indices < 0, indices + size, indices) if allow_negative else indices


@register("gather", attributes=("axis", "batch_dims", "validate_indices"), moves_data=True)
def gather(x, indices, axis=0, batch_dims=0, validate_indices=False):
    """iOS15/iOS16/iOS17.scatter_gather.gather (tf.gather): output shape D[:axis] + N[batch_dims:] +
    D[axis+1:]; indices may be negative (iOS15/16 semantics, accepted here for every version); out-of-range
    indices always raise, naming the range."""
    axis = positive_axis(axis, x.dim())
    indices = _checked_indices(indices, x.shape[axis], True, True, "gather")
    if batch_dims == 0:
        if axis == 0 and indices.dim() > 0:
            flat = x.index_select(0, indices.reshape(-1))
            return flat.reshape(tuple(indices.shape) + tuple(x.shape[1:]))
        out = x.index_select(axis, indices.reshape(-1))
        return out.reshape(tuple(x.shape[:axis]) + tuple(indices.shape) + tuple(x.shape[axis + 1 :]))
    # batch_dims > 0: loop over the shared leading batch axes (rare; correctness over speed).
    batch_shape = tuple(x.shape[:batch_dims])
    xs = x.reshape((-1,) + tuple(x.shape[batch_dims:]))
    ids = indices.reshape((-1,) + tuple(indices.shape[batch_dims:]))
    parts = [gather(xb, ib, axis - batch_dims) for xb, ib in zip(xs, ids, strict=True)]
    out = torch.stack(parts)
    return out.reshape(batch_shape + tuple(out.shape[1:]))


@register("gather_along_axis", attributes=("axis", "validate_indices"), moves_data=True)
def gather_along_axis(x, indices, axis=0, validate_indices=False):
    """iOS15/iOS17.scatter_gather.gather_along_axis: numpy take_along_axis; negative indices count from
    the end; out-of-range indices raise."""
    axis = positive_axis(axis, x.dim())
    indices = _checked_indices(indices, x.shape[axis], True, True, "gather_along_axis")
    return torch.gather(x, axis, indices)


@register("gather_nd", attributes=("batch_dims", "validate_indices"), moves_data=True)
def gather_nd(x, indices, batch_dims=0, validate_indices=False):
    """iOS15/iOS16/iOS17.scatter_gather.gather_nd (tf.gather_nd): output shape
    K[:-1] + D[batch_dims + K[-1]:]; the last axis of ``indices`` indexes the axes of ``x`` that follow
    the ``batch_dims`` shared leading batch axes (iOS16 adds ``batch_dims``); out-of-range indices raise,
    naming the axis and its range."""
    depth = int(indices.shape[-1])
    batch_shape = tuple(x.shape[:batch_dims])
    if tuple(indices.shape[:batch_dims]) != batch_shape:
        raise ValueError(
            f"gather_nd: expected indices with the leading batch shape {batch_shape} of x "
            f"(batch_dims {batch_dims}), got indices of shape {tuple(indices.shape)}"
        )
    xs = x.reshape((-1,) + tuple(x.shape[batch_dims:]))
    idx = indices.long().reshape(xs.shape[0], -1, depth)
    for axis in range(depth):
        size = xs.shape[1 + axis]
        column = idx[..., axis]
        if column.numel() and (column.min() < 0 or column.max() >= size):
            raise IndexError(
                f"gather_nd: index out of range [0, {size}) on axis {batch_dims + axis} of x: "
                f"min {int(column.min())}, max {int(column.max())}"
            )
    batch = torch.arange(xs.shape[0])[:, None]
    out = xs[(batch,) + tuple(idx[..., i] for i in range(depth))]
    return out.reshape(tuple(indices.shape[:-1]) + tuple(x.shape[batch_dims + depth :]))
