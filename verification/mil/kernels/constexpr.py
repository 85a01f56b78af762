"""MIL kernels: compressed constants (iOS16.constexpr_ops, iOS18.compression).

These ops hold a weight in compressed form (a look-up table and indices, int8/int4 data with scales,
a sparsity mask and the non-zero values) and produce the dense weight. Every input is a constant, so the
executor evaluates them once, when the program is loaded (the plan's constant folding): a compressed
program then runs exactly as fast as its dense twin, with the dequantized weights cached.

Sub-byte dtypes arrive unpacked, one value per element: uint1..uint6 as torch.uint8, int4 as torch.int8
(coremltools' milproto reader unpacks them). The iOS16 forms keep their indices and masks bit-packed
(LSB first within each byte) with an explicit ``shape``; their kernels unpack them.
"""

from __future__ import annotations

import math

import torch

from .registry import positive_axis, register

_FLOAT_OUTPUTS = {"fp32": torch.float32, "fp16": torch.float16}


def _unpack_bits(packed: torch.Tensor, nbits: int, count: int) -> torch.Tensor:
    """The first ``count`` ``nbits``-wide unsigned values of a byte stream, element 0 in the lowest bits."""
    shifts = torch.arange(8, dtype=torch.int32)
    bits = (packed.to(torch.int32).reshape(-1, 1) >> shifts) & 1  # (bytes, 8), LSB first
    bits = bits.reshape(-1)[: count * nbits].reshape(count, nbits)
    weights = (1 << torch.arange(nbits, dtype=torch.int32)).reshape(1, nbits)
    return (bits * weights).sum(dim=1)


def _group_ids(shape, groups) -> torch.Tensor:
    """For each element of a tensor of ``shape``, the flat index of its group, where dim d is cut into
    ``groups[d]`` equal blocks (the LUT / scale tensors' leading dims)."""
    ids = torch.zeros((), dtype=torch.int64)
    for size, count in zip(shape, groups, strict=True):
        block = size // count
        ids = ids.unsqueeze(-1) * count + (torch.arange(size) // block)
    return ids


def _expand_blocks(values: torch.Tensor, shape) -> torch.Tensor:
    """``values`` (one per block) repeated so each element of ``shape`` sees its block's value."""
    for axis, (size, count) in enumerate(zip(shape, values.shape, strict=True)):
        if size != count:
            values = torch.repeat_interleave(values, size // count, dim=axis)
    return values


def _lut_lookup(indices: torch.Tensor, lut: torch.Tensor, vector_axis) -> torch.Tensor:
    """iOS18 LUT semantics: ``lut`` is (g_0 .. g_{K-1}, palettes, vector_size); the element at position i
    reads the table of its block (i_d // (shape_d / g_d) per dim) at its index; a vector entry fills
    ``vector_size`` consecutive elements along ``vector_axis``."""
    rank = indices.dim()
    palettes, vector_size = lut.shape[-2], lut.shape[-1]
    table = lut.reshape(-1, vector_size)  # (groups * palettes, vector_size)
    flat = _group_ids(indices.shape, lut.shape[:rank]) * palettes + indices.to(torch.int64)
    values = table[flat.reshape(-1)].reshape(*indices.shape, vector_size)
    if vector_size == 1:
        return values.reshape(indices.shape)
    axis = positive_axis(int(vector_axis), rank)
    values = values.movedim(-1, axis + 1)  # the vector follows its index along the axis
    shape = list(indices.shape)
    shape[axis] *= vector_size
    return values.reshape(shape)


def _dense_from_mask(nonzero: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    dense = torch.zeros(mask.shape, dtype=nonzero.dtype)
    dense[mask != 0] = nonzero
    return dense


@register("constexpr_lut_to_dense", attributes=("vector_axis", "shape"))
def constexpr_lut_to_dense(indices, lut, vector_axis=None, shape=None):
    """iOS18.compression.constexpr_lut_to_dense: palettized weights, ``output[i] = lut[block(i), indices[i]]``
    with per-block tables and vector entries (see ``_lut_lookup``). Also the iOS16.constexpr_ops form
    (inputs indices, lut, shape): one table of 2**nbits entries, indices bit-packed in a uint8 stream."""
    if shape is not None:
        count = math.prod(int(s) for s in shape)
        nbits = int(round(math.log2(lut.shape[0])))
        return lut[_unpack_bits(indices, nbits, count).to(torch.int64)].reshape([int(s) for s in shape])
    return _lut_lookup(indices, lut, vector_axis)


@register("constexpr_affine_dequantize", attributes=("axis",))
def constexpr_affine_dequantize(quantized_data, zero_point, scale, axis):
    """iOS16.constexpr_ops.constexpr_affine_dequantize: ``scale * (quantized_data - zero_point)``; scale and
    zero point are scalars or vectors along ``axis``."""
    rank = quantized_data.dim()
    view = [1] * rank
    view[positive_axis(int(axis), rank)] = -1
    scale = scale.reshape(view) if scale.dim() == 1 else scale
    zero_point = zero_point.reshape(view) if zero_point.dim() == 1 else zero_point
    return scale * (quantized_data.to(scale.dtype) - zero_point.to(scale.dtype))


@register("constexpr_blockwise_shift_scale")
def constexpr_blockwise_shift_scale(data, scale, offset=None):
    """iOS18.compression.constexpr_blockwise_shift_scale: ``scale[b] * (data - offset[b])`` where block b of
    each dim d spans ``data.shape[d] / scale.shape[d]`` elements (int8 per channel, int4 per block)."""
    values = data.to(scale.dtype)
    if offset is not None:
        values = values - _expand_blocks(offset.to(scale.dtype), data.shape)
    return _expand_blocks(scale, data.shape) * values


@register("constexpr_sparse_to_dense", attributes=("shape",))
def constexpr_sparse_to_dense(nonzero_data, mask, shape=None):
    """iOS18.compression.constexpr_sparse_to_dense: zeros of ``mask``'s shape, with ``nonzero_data`` written
    in row-major order where the uint1 mask is set. Also the iOS16.constexpr_ops form (a bit-packed uint8
    mask and an explicit ``shape``)."""
    if shape is not None:
        dims = [int(s) for s in shape]
        mask = _unpack_bits(mask, 1, math.prod(dims)).reshape(dims)
    return _dense_from_mask(nonzero_data, mask)


@register("constexpr_lut_to_sparse", attributes=("vector_axis",))
def constexpr_lut_to_sparse(indices_mask, indices_nonzero_data, lut, vector_axis=None):
    """iOS18.compression.constexpr_lut_to_sparse: a pruned and palettized weight. Returns (mask, the
    palettized non-zero values): the indices are scattered by the mask, looked up as in
    constexpr_lut_to_dense, and read back at the mask (widened by the vector size along ``vector_axis``)."""
    indices = _dense_from_mask(indices_nonzero_data, indices_mask)
    dense = _lut_lookup(indices, lut, vector_axis)
    mask = indices_mask
    if vector_axis is not None and lut.shape[-1] > 1:
        axis = positive_axis(int(vector_axis), indices.dim())
        mask = torch.repeat_interleave(mask, lut.shape[-1], dim=axis)
    return mask, dense[mask != 0]


@register("constexpr_sparse_blockwise_shift_scale")
def constexpr_sparse_blockwise_shift_scale(data_mask, nonzero_data, scale, offset=None):
    """iOS18.compression.constexpr_sparse_blockwise_shift_scale: a pruned and quantized weight. Returns
    (mask, the dequantized non-zero values), each dequantized with the scale (and offset) of its block in
    the dense layout, as in constexpr_blockwise_shift_scale."""
    dense = constexpr_blockwise_shift_scale(_dense_from_mask(nonzero_data, data_mask), scale, offset)
    return data_mask, dense[data_mask != 0]


@register("constexpr_cast", attributes=("output_dtype",))
def constexpr_cast(source_val, output_dtype):
    """iOS16.constexpr_ops.constexpr_cast: an fp16 constant widened to ``output_dtype`` (fp32 only)."""
    if output_dtype not in _FLOAT_OUTPUTS:
        raise ValueError(f"constexpr_cast: output_dtype {output_dtype!r}; expected 'fp32'")
    return source_val.to(torch.float32)
