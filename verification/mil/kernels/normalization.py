"""MIL kernels: normalization (iOS15.normalization)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .registry import positive_axes, register


@register("layer_norm", attributes=("axes", "epsilon"))
def layer_norm(x, axes=None, gamma=None, beta=None, epsilon=1e-5):
    """iOS15.normalization.layer_norm: gamma * (x - E[x]) / sqrt(Var[x] + epsilon) + beta, mean and
    biased variance over ``axes`` (all axes when None); gamma/beta have shape x.shape[axes]."""
    rank = x.dim()
    dims = list(range(rank)) if axes is None else sorted(positive_axes(axes, rank))
    if dims == list(range(rank - len(dims), rank)):
        shape = x.shape[rank - len(dims) :]
        return F.layer_norm(x, shape, gamma, beta, epsilon)
    mean = torch.mean(x, dim=dims, keepdim=True)
    centered = x - mean
    variance = torch.mean(centered * centered, dim=dims, keepdim=True)
    y = centered * torch.rsqrt(variance + epsilon)
    param_shape = [x.shape[i] if i in dims else 1 for i in range(rank)]
    if gamma is not None:
        y = y * gamma.reshape(param_shape)
    if beta is not None:
        y = y + beta.reshape(param_shape)
    return y


@register("batch_norm", attributes=("epsilon",))
def batch_norm(x, mean, variance, gamma=None, beta=None, epsilon=1e-5):
    """iOS15.normalization.batch_norm: gamma_c (x - mean_c) / sqrt(variance_c + epsilon) + beta_c over the
    channel axis 1 (inference form)."""
    return F.batch_norm(x, mean, variance, gamma, beta, False, 0.0, epsilon)


@register("instance_norm", attributes=("epsilon",))
def instance_norm(x, gamma=None, beta=None, epsilon=1e-5):
    """iOS15.normalization.instance_norm: per sample and channel over the spatial axes."""
    return F.instance_norm(x, weight=gamma, bias=beta, eps=epsilon)


@register("l2_norm", attributes=("epsilon",))
def l2_norm(x, epsilon=1e-6):
    """iOS15.normalization.l2_norm: x / sqrt(sum(x**2) + epsilon) over the last three axes."""
    dims = [-3, -2, -1]
    return x / torch.sqrt(torch.sum(x * x, dim=dims, keepdim=True) + epsilon)
