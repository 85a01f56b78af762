"""Torch op converters that coremltools lacks, registered when ``verification.coreml`` is imported.

Each serves ops that current transformers emit, so baselines convert without downgrading anything.
"""

from __future__ import annotations

import numpy as np
from coremltools.converters.mil.frontend.torch.ops import (
    _get_inputs,
    _get_kwinputs,
    bitwise_and,
    where_scalarself,
)
from coremltools.converters.mil.frontend.torch.torch_op_registry import _TORCH_OPS_REGISTRY, register_torch_op
from coremltools.converters.mil.frontend.torch.utils import NUM_TO_NUMPY_DTYPE
from coremltools.converters.mil.mil import Builder as mb
from coremltools.converters.mil.mil import types


def _known_shape(size) -> tuple | None:
    values = size if isinstance(size, (list, tuple)) else [size]
    if any(v.val is None for v in values):
        return None
    if not isinstance(size, (list, tuple)):
        return tuple(int(d) for d in np.atleast_1d(size.val))
    return tuple(int(v.val) for v in values)


def new_ones(context, node):
    """``tensor.new_ones(size, dtype=None)``: ones of ``size`` in ``dtype`` or the tensor's own dtype.

    transformers >= 5 (masking_utils.and_masks) calls ``q_idx.new_ones((), dtype=torch.bool)``.
    """
    inputs = _get_inputs(context, node, min_expected=2)
    source, size = inputs[0], inputs[1]
    dtype = inputs[2] if len(inputs) > 2 else None
    dtype = _get_kwinputs(context, node, "dtype", default=[dtype])[0]
    if dtype is None or dtype.val is None:
        np_dtype = types.nptype_from_builtin(source.dtype)
    else:
        np_dtype = NUM_TO_NUMPY_DTYPE[int(dtype.val)] if not isinstance(dtype.val, np.dtype) else dtype.val
    if np.issubdtype(np_dtype, np.integer):
        np_dtype = np.int32  # Core ML tensors hold int32, not int64
    shape = _known_shape(size)
    if shape is not None:
        context.add(mb.const(val=np.ones(shape, dtype=np_dtype), name=node.name))
        return
    shape_var = mb.concat(values=list(size), axis=0) if isinstance(size, (list, tuple)) else size
    context.add(mb.fill(shape=shape_var, value=np_dtype(1), name=node.name))


def _registered(name: str) -> bool:
    return _TORCH_OPS_REGISTRY.get_func(name) is not None


# coremltools 9.0 has no converter for new_ones; a later release may, and then we keep theirs.
if not _registered("new_ones"):
    register_torch_op(new_ones)


# torch.export records bool masks combined with ``a & b`` (transformers >= 5, masking_utils) as
# ``__and__``. coremltools 9.0 converts it with its ``bitwise_and`` (bool inputs only), but its
# torch.export frontend checks the raw name first and rejects the node: the raw name is mapped here.
# (register_torch_op refuses names ending in "_", taking them for in-place ops.)
if "__and__" not in _TORCH_OPS_REGISTRY.name_to_func_mapping:
    _TORCH_OPS_REGISTRY.set_func_by_name(bitwise_and, "__and__")

# torch.where(cond, tensor, scalar) under torch.export (transformers >= 5 eager masks): coremltools 9.0
# converts the mirror image ``where.scalarself`` as a plain ``select``, which serves both.
if "where.scalarother" not in _TORCH_OPS_REGISTRY.name_to_func_mapping:
    _TORCH_OPS_REGISTRY.set_func_by_name(where_scalarself, "where.scalarother")


def _assert_tensor_metadata(context, node):
    """``aten._assert_tensor_metadata``: a dtype/shape check with no output; nothing to convert."""


# torch >= 2.7's torch.export inserts _assert_tensor_metadata nodes (around dtype conversions);
# coremltools 8.3 has no converter for them ("Unsupported fx node _assert_tensor_metadata"), 9.0 has one.
if not _registered("_assert_tensor_metadata"):
    register_torch_op(_assert_tensor_metadata)
