"""Project MIL graph passes, run inside coremltools' conversion pipeline.

coremltools' ``fuse_layernorm_or_instancenorm`` recognizes the channel-axis (B, C, 1, S) layer norm
only without its affine step, or with the bias applied before the scale (the published reference's
order, which forces a bias / weight division). ``LayerNormANE`` keeps torch's order
(``x_hat * weight + bias``), which converts to ``layer_norm(axes=[1]) -> mul -> add``; the pass below
folds that mul and add into the ``layer_norm``'s gamma and beta, exactly, without division.
"""

from __future__ import annotations

import numpy as np
from coremltools.converters.mil.mil import Builder as mb
from coremltools.converters.mil.mil import types
from coremltools.converters.mil.mil.passes.graph_pass import AbstractGraphPass
from coremltools.converters.mil.mil.passes.helper import block_context_manager
from coremltools.converters.mil.mil.passes.pass_registry import register_pass

FUSE_LAYER_NORM_AFFINE = "ane::fuse_layer_norm_affine"
# Must run after coremltools fuses the normalization, before it turns the mul/add into batch_norm.
RUNS_AFTER = "common::fuse_layernorm_or_instancenorm"


def _only_child(var, op_type: str):
    children = list(var.child_ops)
    if len(children) != 1 or children[0].op_type != op_type or var in var.op.enclosing_block.outputs:
        return None
    return children[0]


def _channel_constant(op, var, channels: int):
    """The constant operand of a binary op when it broadcasts along axis 1 only, squeezed to (C,)."""
    other = op.y if op.x is var else op.x
    if other.val is None:
        return None
    value = np.asarray(other.val)
    if value.ndim == 0:
        return np.full((channels,), value, dtype=value.dtype)
    if value.ndim > 4 or value.size != channels:
        return None
    shape = (1,) * (4 - value.ndim) + value.shape
    if shape[1] != channels:  # broadcasting along any other axis is not a per-channel affine
        return None
    return value.reshape(channels)


def _try_fuse(norm) -> bool:
    x = norm.x
    if x.rank != 4 or list(norm.axes.val) not in ([1], [-3]):
        return False
    if norm.gamma is not None or norm.beta is not None:
        return False
    channels = x.shape[1]
    if not isinstance(channels, int):
        return False
    mul = _only_child(norm.outputs[0], "mul")
    if mul is None:
        return False
    add = _only_child(mul.outputs[0], "add")
    if add is None:
        return False
    gamma = _channel_constant(mul, norm.outputs[0], channels)
    beta = _channel_constant(add, mul.outputs[0], channels)
    if gamma is None or beta is None:
        return False
    dtype = types.nptype_from_builtin(x.dtype)
    fused = mb.layer_norm(x=x, axes=[1], gamma=gamma.astype(dtype), beta=beta.astype(dtype),
                          epsilon=norm.epsilon, name=add.outputs[0].name, before_op=add)
    add.enclosing_block.replace_uses_of_var_after_op(anchor_op=add, old_var=add.outputs[0], new_var=fused)
    add.enclosing_block.remove_ops([norm, mul, add])
    return True


@register_pass(namespace="ane")
class fuse_layer_norm_affine(AbstractGraphPass):  # noqa: N801 (coremltools names passes in snake case)
    """``layer_norm(x, axes=[1]) * gamma + beta`` with per-channel constants -> one ``layer_norm``."""

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
            if op.op_type == "layer_norm" and _try_fuse(op):
                return True
        return False
