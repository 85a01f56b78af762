"""MIL kernels: reductions (iOS15.reduction)."""

from __future__ import annotations

import torch

from .registry import axes_or_all, register


@register("reduce_sum", attributes=("axes", "keep_dims"))
def reduce_sum(x, axes=None, keep_dims=False):
    """iOS15.reduction.reduce_sum: sum over ``axes`` (all axes when None)."""
    return torch.sum(x, dim=axes_or_all(x, axes), keepdim=keep_dims)


@register("reduce_mean", attributes=("axes", "keep_dims"))
def reduce_mean(x, axes=None, keep_dims=False):
    """iOS15.reduction.reduce_mean: mean over ``axes`` (all axes when None)."""
    return torch.mean(x, dim=axes_or_all(x, axes), keepdim=keep_dims)


@register("reduce_prod", attributes=("axes", "keep_dims"))
def reduce_prod(x, axes=None, keep_dims=False):
    """iOS15.reduction.reduce_prod: product over ``axes`` (all axes when None)."""
    for dim in sorted(axes_or_all(x, axes), reverse=True):
        x = torch.prod(x, dim=dim, keepdim=keep_dims)
    return x


@register("reduce_max", attributes=("axes", "keep_dims"))
def reduce_max(x, axes=None, keep_dims=False):
    """iOS15.reduction.reduce_max: max over ``axes`` (all axes when None)."""
    return torch.amax(x, dim=axes_or_all(x, axes), keepdim=keep_dims)


@register("reduce_min", attributes=("axes", "keep_dims"))
def reduce_min(x, axes=None, keep_dims=False):
    """iOS15.reduction.reduce_min: min over ``axes`` (all axes when None)."""
    return torch.amin(x, dim=axes_or_all(x, axes), keepdim=keep_dims)


@register("reduce_sum_square", attributes=("axes", "keep_dims"))
def reduce_sum_square(x, axes=None, keep_dims=False):
    """iOS15.reduction.reduce_sum_square: sum of x**2 over ``axes``."""
    return torch.sum(x * x, dim=axes_or_all(x, axes), keepdim=keep_dims)


@register("reduce_l2_norm", attributes=("axes", "keep_dims"))
def reduce_l2_norm(x, axes=None, keep_dims=False):
    """iOS15.reduction.reduce_l2_norm: sqrt(sum of x**2) over ``axes``."""
    return torch.sqrt(torch.sum(x * x, dim=axes_or_all(x, axes), keepdim=keep_dims))


@register("reduce_log_sum_exp", attributes=("axes", "keep_dims"))
def reduce_log_sum_exp(x, axes=None, keep_dims=False):
    """iOS15.reduction.reduce_log_sum_exp: log(sum(exp(x))) over ``axes``."""
    return torch.logsumexp(x, dim=axes_or_all(x, axes), keepdim=keep_dims)


@register("reduce_argmax", attributes=("axis", "keep_dims", "output_dtype"))
def reduce_argmax(x, axis=-1, keep_dims=False, output_dtype="int32"):
    """iOS15/iOS17.reduction.reduce_argmax: index of the maximum along ``axis`` (ties: first index)."""
    return torch.argmax(x, dim=axis, keepdim=keep_dims)


@register("reduce_argmin", attributes=("axis", "keep_dims", "output_dtype"))
def reduce_argmin(x, axis=-1, keep_dims=False, output_dtype="int32"):
    """iOS15/iOS17.reduction.reduce_argmin: index of the minimum along ``axis`` (ties: first index)."""
    return torch.argmin(x, dim=axis, keepdim=keep_dims)
