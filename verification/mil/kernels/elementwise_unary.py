"""MIL kernels: elementwise unary (iOS15.elementwise_unary)."""

from __future__ import annotations

import torch

from .registry import register


@register("abs")
def abs_(x):
    """iOS15.elementwise_unary.abs: |x|."""
    return torch.abs(x)


@register("ceil")
def ceil(x):
    """iOS15.elementwise_unary.ceil."""
    return torch.ceil(x)


@register("floor")
def floor(x):
    """iOS15.elementwise_unary.floor: round towards negative infinity."""
    return torch.floor(x)


@register("round")
def round_(x):
    """iOS15.elementwise_unary.round: nearest integer, halves to even (0.5 -> 0, as the op docs say)."""
    return torch.round(x)


@register("sign")
def sign(x):
    """iOS15.elementwise_unary.sign: -1, 0 or 1."""
    return torch.sign(x)


@register("exp")
def exp(x):
    """iOS15.elementwise_unary.exp: e ** x."""
    return torch.exp(x)


@register("exp2")
def exp2(x):
    """iOS15.elementwise_unary.exp2: 2 ** x."""
    return torch.exp2(x)


@register("log", attributes=("epsilon",))
def log(x, epsilon=1e-45):
    """iOS15.elementwise_unary.log: log(x + epsilon), epsilon defaults to 1e-45."""
    return torch.log(x + epsilon)


@register("sqrt")
def sqrt(x):
    """iOS15.elementwise_unary.sqrt."""
    return torch.sqrt(x)


@register("rsqrt", attributes=("epsilon",))
def rsqrt(x, epsilon=1e-12):
    """iOS15.elementwise_unary.rsqrt: 1 / sqrt(x + epsilon), epsilon defaults to 1e-12."""
    return torch.rsqrt(x + epsilon)


@register("inverse", attributes=("epsilon",))
def inverse(x, epsilon=1e-4):
    """iOS15.elementwise_unary.inverse: 1 / (x + epsilon), epsilon defaults to 1e-4."""
    return torch.reciprocal(x + epsilon)


@register("square")
def square(x):
    """iOS15.elementwise_unary.square: x * x."""
    return torch.mul(x, x)


@register("erf")
def erf(x):
    """iOS15.elementwise_unary.erf: Gauss error function."""
    return torch.erf(x)


@register("sin")
def sin(x):
    """iOS15.elementwise_unary.sin."""
    return torch.sin(x)


@register("cos")
def cos(x):
    """iOS15.elementwise_unary.cos."""
    return torch.cos(x)


@register("tanh")
def tanh(x):
    """iOS15.elementwise_unary.tanh: hyperbolic tangent."""
    return torch.tanh(x)


@register("logical_not")
def logical_not(x):
    """iOS15.elementwise_unary.logical_not: nonzero means true, bool output."""
    return torch.logical_not(x)


@register("clip", attributes=("alpha", "beta"))
def clip(x, alpha, beta):
    """iOS15.elementwise_unary.clip: min(max(x, alpha), beta)."""
    return torch.clamp(x, min=alpha, max=beta)


@register("threshold", attributes=("alpha",))
def threshold(x, alpha):
    """iOS15.elementwise_unary.threshold: max(x, alpha)."""
    return torch.clamp(x, min=alpha)


_TORCH_DTYPE_OF_MIL_NAME = {
    "int8": torch.int8,
    "uint8": torch.uint8,
    "int16": torch.int16,
    "uint16": torch.int32,  # torch has few uint16 kernels; int32 holds every uint16 value
    "int32": torch.int32,
    "bool": torch.bool,
}


@register("cast", attributes=("dtype",))
def cast(x, dtype):
    """iOS15/iOS17.elementwise_unary.cast: float -> int truncates towards zero (numpy ``astype``),
    anything -> bool is ``x != 0``. Casts between float types return floats unchanged: the executor
    stores them in the declared type, and rounds to fp16 only in the fp16 modes."""
    if dtype in ("fp16", "fp32", "fp64"):
        return x if x.is_floating_point() else x.to(torch.float32)
    if dtype == "bool":
        return x != 0
    if dtype not in _TORCH_DTYPE_OF_MIL_NAME:
        raise ValueError(f"cast: unknown dtype {dtype!r}")
    if x.is_floating_point():
        x = torch.trunc(x)
    return x.to(_TORCH_DTYPE_OF_MIL_NAME[dtype])
