"""Project MIL graph passes, run inside coremltools' conversion pipeline.

``LayerNormANE`` normalizes over the channel axis of (B, C, 1, S) and applies torch's affine order
(``x_hat * weight + bias``). coremltools' ``fuse_layernorm_or_instancenorm`` matches that channel-axis
form only without an affine step or with the bias applied *before* the scale (the published
reference's order, which forces a bias / weight division), and coremltools' no-op elimination removes
an identity scale or a zero bias before any fusion runs. The pass below matches the op sequence that
``LayerNormANE`` traces to, with the scale and the bias each optional, and replaces it with one
``layer_norm`` op, exactly, without division:

    x -> reduce_mean(axes=[1]) -> sub -> mul(self) -> reduce_mean(axes=[1]) -> add(eps) -> rsqrt -> mul
      [-> mul(gamma)] [-> add(beta)]
"""

from __future__ import annotations

import numpy as np
from coremltools.converters.mil.mil import Builder as mb
from coremltools.converters.mil.mil import types
from coremltools.converters.mil.mil.passes.graph_pass import AbstractGraphPass
from coremltools.converters.mil.mil.passes.helper import block_context_manager
from coremltools.converters.mil.mil.passes.pass_registry import register_pass

FUSE_CHANNEL_LAYER_NORM = "ane::fuse_channel_layer_norm"
# Runs right before coremltools' own normalization fusion, after its no-op and const passes.
RUNS_BEFORE = "common::fuse_layernorm_or_instancenorm"


def _children(var) -> list:
    """Distinct consumers of ``var`` (coremltools lists an op once per input that uses ``var``)."""
    return list(dict.fromkeys(var.child_ops))


def _only_child(var, op_type: str):
    """The single consumer of ``var`` if it has that type and ``var`` is not a block output."""
    children = _children(var)
    if len(children) != 1 or children[0].op_type != op_type or var in var.op.enclosing_block.outputs:
        return None
    return children[0]


def _other_input(op, var):
    return op.y if op.x is var else op.x


def _is_channel_mean(op) -> bool:
    return (
        op is not None
        and op.op_type == "reduce_mean"
        and op.x.rank == 4
        and list(op.axes.val) in ([1], [-3])
        and bool(op.keep_dims.val)
    )


def _channel_constant(other, channels: int):
    """A constant broadcasting along axis 1 only, as a (C,) array; None for anything else."""
    if other.val is None:
        return None
    value = np.asarray(other.val)
    if value.ndim == 0:
        return np.full((channels,), value)
    if value.ndim > 4 or value.size != channels:
        return None
    if ((1,) * (4 - value.ndim) + value.shape)[1] != channels:
        return None
    return value.reshape(channels)


def _match(mean):
    """The ops and constants of a LayerNormANE sequence starting at ``mean``, or None."""
    x = mean.x
    channels = x.shape[1]
    if not isinstance(channels, int):
        return None
    sub = _only_child(mean.outputs[0], "sub")
    if sub is None or sub.x is not x or sub.y is not mean.outputs[0]:
        return None
    zero_mean = sub.outputs[0]
    consumers = _children(zero_mean)
    squares = [op for op in consumers if op.op_type == "mul" and op.x is zero_mean and op.y is zero_mean]
    scales = [op for op in consumers if op.op_type == "mul" and op not in squares]
    if len(squares) != 1 or len(scales) != 1 or zero_mean in sub.enclosing_block.outputs:
        return None
    variance = _only_child(squares[0].outputs[0], "reduce_mean")
    if not _is_channel_mean(variance):
        return None
    add_eps = _only_child(variance.outputs[0], "add")
    if add_eps is None:
        return None
    eps = _other_input(add_eps, variance.outputs[0])
    if eps.val is None or np.asarray(eps.val).size != 1:
        return None
    rsqrt = _only_child(add_eps.outputs[0], "rsqrt")
    normalize = scales[0]
    if rsqrt is None or _only_child(rsqrt.outputs[0], "mul") is not normalize:
        return None
    epsilon = float(np.asarray(eps.val).reshape(())) + float(
        rsqrt.epsilon.val
    )  # rsqrt(x) = 1/sqrt(x + its eps)

    ops = [mean, sub, squares[0], variance, add_eps, rsqrt, normalize]
    end, gamma, beta = normalize, None, None
    scale = _only_child(end.outputs[0], "mul")
    if scale is not None:
        gamma = _channel_constant(_other_input(scale, end.outputs[0]), channels)
        if gamma is not None:
            ops.append(scale)
            end = scale
    shift = _only_child(end.outputs[0], "add")
    if shift is not None:
        beta = _channel_constant(_other_input(shift, end.outputs[0]), channels)
        if beta is not None:
            ops.append(shift)
            end = shift
    return ops, end, epsilon, gamma, beta


def _try_fuse(mean) -> bool:
    matched = _match(mean)
    if matched is None:
        return False
    ops, end, epsilon, gamma, beta = matched
    x = mean.x
    dtype = types.nptype_from_builtin(x.dtype)
    channels = x.shape[1]
    gamma = np.ones(channels, dtype) if gamma is None else gamma.astype(dtype)
    beta = np.zeros(channels, dtype) if beta is None else beta.astype(dtype)
    fused = mb.layer_norm(
        x=x, axes=[1], gamma=gamma, beta=beta, epsilon=dtype(epsilon), name=end.outputs[0].name, before_op=end
    )
    end.enclosing_block.replace_uses_of_var_after_op(anchor_op=end, old_var=end.outputs[0], new_var=fused)
    end.enclosing_block.remove_ops(ops)
    return True


@register_pass(namespace="ane")
class fuse_channel_layer_norm(AbstractGraphPass):  # noqa: N801 (coremltools names passes in snake case)
    """The (B, C, 1, S) layer norm of ``LayerNormANE``, affine included, -> one ``layer_norm`` op."""

    def apply(self, prog):
        for function in prog.functions.values():
            while self._fuse_block(function):
                pass

    @block_context_manager
    def _fuse_block(self, block) -> bool:
        for op in list(block.operations):
            for inner in op.blocks:
                while self._fuse_block(inner):
                    pass
            if _is_channel_mean(op) and _try_fuse(op):
                return True
        return False
