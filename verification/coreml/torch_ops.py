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


_coremltools_int = _TORCH_OPS_REGISTRY.get_func("int")


def _int(context, node):
    """``aten::Int`` of a constant: coremltools 9.0 calls ``int()`` on the constant's array, which numpy 2
    refuses for a 1-element 1-d array (``x.shape[1] // 2`` under trace is one: the rotary embedding's
    rotate-half). The element is taken instead; anything else is coremltools' own converter."""
    x = _get_inputs(context, node, expected=1)[0]
    if x.can_be_folded_to_const() and np.ndim(x.val) > 0 and np.size(x.val) == 1:
        context.add(mb.const(val=int(np.asarray(x.val).reshape(-1)[0]), name=node.name), node.name)
        return
    _coremltools_int(context, node)


_TORCH_OPS_REGISTRY.set_func_by_name(_int, "int")


_coremltools_split = _TORCH_OPS_REGISTRY.get_func("split")


def _split(context, node):
    """``tensor.split(size, dim)`` with a constant ``size`` and a known length along ``dim``: the pieces'
    sizes are computed here. coremltools 9.0 tiles ``length // size`` copies of ``size`` and fails when
    that is 0, i.e. when ``size`` exceeds the length (an LM head split into 16384-wide convs over a
    smaller vocabulary). Anything else is coremltools' own converter."""
    inputs = _get_inputs(context, node, min_expected=2)
    x, size = inputs[0], inputs[1]
    dim = inputs[2] if len(inputs) > 2 else 0
    dim = _get_kwinputs(context, node, "dim", default=[dim])[0]
    dim = dim.val if hasattr(dim, "val") else dim
    if size.val is not None and np.ndim(size.val) == 0 and dim is not None:
        length = x.shape[int(dim)]
        if isinstance(length, (int, np.integer)) and int(size.val) > 0:
            step = int(size.val)
            sizes = [step] * (length // step) + ([length % step] if length % step else [])
            pieces = mb.split(x=x, split_sizes=np.array(sizes, np.int32), axis=int(dim), name=node.name)
            context.add(pieces if isinstance(pieces, (list, tuple)) else (pieces,), torch_name=node.name)
            return
    _coremltools_split(context, node)


for _name in ("split", "split_with_sizes", "split_with_sizes_copy"):
    if _TORCH_OPS_REGISTRY.name_to_func_mapping.get(_name) is _coremltools_split:
        _TORCH_OPS_REGISTRY.set_func_by_name(_split, _name)
