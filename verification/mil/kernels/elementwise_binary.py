"""MIL kernels: elementwise binary (iOS15.elementwise_binary)."""

from __future__ import annotations

import torch

from .registry import register


@register("add")
def add(x, y):
    """iOS15.elementwise_binary.add: x + y with numpy broadcasting."""
    return torch.add(x, y)


@register("sub")
def sub(x, y):
    """iOS15.elementwise_binary.sub: x - y with numpy broadcasting."""
    return torch.sub(x, y)


@register("mul")
def mul(x, y):
    """iOS15.elementwise_binary.mul: x * y with numpy broadcasting."""
    return torch.mul(x, y)


@register("real_div")
def real_div(x, y):
    """iOS15.elementwise_binary.real_div: true division x / y (an int32 result is truncated by the executor's
    cast to the declared int32 type)."""
    return torch.true_divide(x, y)


@register("floor_div")
def floor_div(x, y):
    """iOS15.elementwise_binary.floor_div: x / y rounded towards negative infinity."""
    return torch.div(x, y, rounding_mode="floor")


@register("mod")
def mod(x, y):
    """iOS15.elementwise_binary.mod: x % y with the sign of the divisor (Python/numpy ``%``)."""
    return torch.remainder(x, y)


@register("pow")
def pow_(x, y):
    """iOS15.elementwise_binary.pow: x ** y element-wise."""
    return torch.pow(x, y)


@register("maximum")
def maximum(x, y):
    """iOS15.elementwise_binary.maximum: element-wise max with broadcasting."""
    return torch.maximum(x, y)


@register("minimum")
def minimum(x, y):
    """iOS15.elementwise_binary.minimum: element-wise min with broadcasting."""
    return torch.minimum(x, y)


@register("equal")
def equal(x, y):
    """iOS15.elementwise_binary.equal: x == y, bool output."""
    return torch.eq(x, y)


@register("not_equal")
def not_equal(x, y):
    """iOS15.elementwise_binary.not_equal: x != y, bool output."""
    return torch.ne(x, y)


@register("greater")
def greater(x, y):
    """iOS15.elementwise_binary.greater: x > y, bool output."""
    return torch.gt(x, y)


@register("greater_equal")
def greater_equal(x, y):
    """iOS15.elementwise_binary.greater_equal: x >= y, bool output."""
    return torch.ge(x, y)


@register("less")
def less(x, y):
    """iOS15.elementwise_binary.less: x < y, bool output."""
    return torch.lt(x, y)


@register("less_equal")
def less_equal(x, y):
    """iOS15.elementwise_binary.less_equal: x <= y, bool output."""
    return torch.le(x, y)


@register("logical_and")
def logical_and(x, y):
    """iOS15.elementwise_binary.logical_and: nonzero means true, bool output."""
    return torch.logical_and(x, y)


@register("logical_or")
def logical_or(x, y):
    """iOS15.elementwise_binary.logical_or: nonzero means true, bool output."""
    return torch.logical_or(x, y)


@register("logical_xor")
def logical_xor(x, y):
    """iOS15.elementwise_binary.logical_xor: nonzero means true, bool output."""
    return torch.logical_xor(x, y)
