"""MIL kernels: activations (iOS15.activation)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .registry import register


@register("relu")
def relu(x):
    """iOS15.activation.relu: max(x, 0)."""
    return torch.relu(x)


@register("relu6")
def relu6(x):
    """iOS15.activation.relu6: min(max(x, 0), 6)."""
    return torch.clamp(x, 0.0, 6.0)


@register("leaky_relu", attributes=("alpha",))
def leaky_relu(x, alpha=0.01):
    """iOS15.activation.leaky_relu: x if x >= 0 else alpha * x."""
    return F.leaky_relu(x, alpha)


@register("sigmoid")
def sigmoid(x):
    """iOS15.activation.sigmoid: 1 / (1 + exp(-x))."""
    return torch.sigmoid(x)


@register("silu")
def silu(x):
    """iOS15.activation.silu: x * sigmoid(x)."""
    return F.silu(x)


@register("softplus")
def softplus(x):
    """iOS15.activation.softplus: log(1 + exp(x))."""
    return F.softplus(x)


@register("gelu", attributes=("mode",))
def gelu(x, mode="EXACT"):
    """iOS15.activation.gelu: EXACT 0.5 x (1 + erf(x / sqrt 2)); TANH_APPROXIMATION
    0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))); SIGMOID_APPROXIMATION x * sigmoid(1.702 x)."""
    if mode == "EXACT":
        return F.gelu(x)
    if mode == "TANH_APPROXIMATION":
        return F.gelu(x, approximate="tanh")
    if mode == "SIGMOID_APPROXIMATION":
        return x * torch.sigmoid(1.702 * x)
    raise ValueError(
        f"gelu: unknown mode {mode!r}; expected EXACT, TANH_APPROXIMATION or SIGMOID_APPROXIMATION"
    )


@register("softmax", attributes=("axis",))
def softmax(x, axis=-1):
    """iOS15.activation.softmax: exp(x) / sum(exp(x), axis), axis defaults to -1."""
    return torch.softmax(x, axis)
