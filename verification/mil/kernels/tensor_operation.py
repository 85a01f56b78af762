"""MIL kernels: tensor operations (iOS15.tensor_operation)."""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from .registry import positive_axis, register


@register("identity", moves_data=True)
def identity(x):
    """iOS15.tensor_operation.identity: the input itself."""
    return x


@register("concat", attributes=("axis", "interleave"), moves_data=True)
def concat(values, axis, interleave=False):
    """iOS15.tensor_operation.concat: join along ``axis``; ``interleave`` alternates slices of
    equally-shaped inputs (output[0::n] = values[0], output[1::n] = values[1], ...). Scalars (all inputs
    rank 0, as torch.export programs build slice bounds) are stacked into a vector."""
    if values[0].dim() == 0:
        return torch.stack(values)
    if not interleave:
        return torch.cat(values, dim=axis)
    axis = positive_axis(axis, values[0].dim())
    stacked = torch.stack(values, dim=axis + 1)
    shape = list(values[0].shape)
    shape[axis] *= len(values)
    return stacked.reshape(shape)


@register("stack", attributes=("axis",), moves_data=True)
def stack(values, axis):
    """iOS15.tensor_operation.stack: join equally-shaped inputs along a new ``axis``."""
    return torch.stack(values, dim=axis)


@register("split", attributes=("num_splits", "split_sizes", "axis"), moves_data=True)
def split(x, axis, num_splits=None, split_sizes=None):
    """iOS15.tensor_operation.split: ``split_sizes`` if given, else ``num_splits`` equal parts (views)."""
    if split_sizes is not None:
        return tuple(torch.split(x, [int(s) for s in split_sizes], dim=axis))
    return tuple(torch.chunk(x, int(num_splits), dim=axis))


@register("tile", attributes=("reps",), moves_data=True)
def tile(x, reps):
    """iOS15.tensor_operation.tile: repeat dim i ``reps[i]`` times."""
    return x.repeat(*[int(r) for r in reps])


@register("pad", attributes=("pad", "mode", "constant_val"))
def pad(x, pad, mode="constant", constant_val=0.0):
    """iOS15.tensor_operation.pad: ``pad`` lists (before, after) for the last len(pad)/2 axes, in axis
    order; modes constant, reflect and replicate."""
    torch_pad = []
    for i in reversed(range(len(pad) // 2)):
        torch_pad += [int(pad[2 * i]), int(pad[2 * i + 1])]
    if mode == "constant":
        return F.pad(x, torch_pad, mode="constant", value=constant_val)
    if mode not in ("reflect", "replicate"):
        raise ValueError(f"pad: unknown mode {mode!r}; expected constant, reflect or replicate")
    # torch pads only the last 1-3 axes in these modes and wants a batch axis: fold the leading axes.
    padded = len(torch_pad) // 2
    lead = x.shape[: x.dim() - padded]
    folded = x.reshape((1, max(1, math.prod(lead))) + tuple(x.shape[x.dim() - padded :]))
    out = F.pad(folded, torch_pad, mode=mode)
    return out.reshape(tuple(lead) + tuple(out.shape[2:]))


@register("fill", attributes=("shape", "value"))
def fill(shape, value=0.0):
    """iOS15.tensor_operation.fill: a tensor of ``shape`` filled with ``value``."""
    return torch.full([int(s) for s in shape], value)


@register("fill_like", attributes=("value",))
def fill_like(ref_tensor, value=0.0):
    """iOS16.tensor_operation.fill_like: a tensor shaped like ``ref_tensor`` filled with ``value``."""
    return torch.full(ref_tensor.shape, value)


@register("shape")
def shape(x):
    """iOS15.tensor_operation.shape: the int32 shape of ``x``."""
    return torch.tensor(x.shape, dtype=torch.int32)


@register("range_1d", attributes=("start", "end", "step"))
def range_1d(end, start, step):
    """iOS15.tensor_operation.range_1d: numpy arange(start, end, step). Float ranges: the length is
    ceil((end - start) / step) computed in fp32, as coremltools' type inference declares the output shape
    (in float64 it can differ: start 1e-12, end -1, step -1 gives 1 element, not 2); the values are
    start + i * step, rounded once."""
    if all(isinstance(v, int) for v in (start, end, step)):
        return torch.arange(start, end, step, dtype=torch.int32)
    start32, end32, step32 = np.float32(start), np.float32(end), np.float32(step)
    length = max(0, int(np.ceil((end32 - start32) / step32)))
    values = float(start32) + torch.arange(length, dtype=torch.float64) * float(step32)
    return values.to(torch.float32)


@register("cumsum", attributes=("axis", "exclusive", "reverse"))
def cumsum(x, axis=0, exclusive=False, reverse=False):
    """iOS15.tensor_operation.cumsum: inclusive (or exclusive: first element 0) running sum along ``axis``,
    optionally from the end."""
    if reverse:
        x = torch.flip(x, (axis,))
    y = torch.cumsum(x, dim=axis, dtype=x.dtype)
    if exclusive:
        y = y - x
    return torch.flip(y, (axis,)) if reverse else y


@register("topk", attributes=("k", "axis", "ascending", "sort", "return_indices", "output_indices_dtype"))
def topk(x, k=1, axis=-1, ascending=False, sort=True, return_indices=True, output_indices_dtype="int32"):
    """iOS15/iOS16/iOS17.tensor_operation.topk: the k largest (smallest when ``ascending``) values along
    ``axis`` and their indices; k = -1 takes all; the iOS16 ``return_indices`` drops the indices."""
    k = x.shape[axis] if k == -1 else k
    values, indices = torch.topk(x, k, dim=axis, largest=not ascending, sorted=True)
    return (values, indices) if return_indices else values


@register("argsort", attributes=("axis", "ascending"))
def argsort(x, axis=-1, ascending=False):
    """iOS15.tensor_operation.argsort: indices sorting ``x`` along ``axis`` (descending by default)."""
    return torch.argsort(x, dim=axis, descending=not ascending, stable=True)


@register("band_part", attributes=("lower", "upper"))
def band_part(x, lower=-1, upper=-1):
    """iOS15.tensor_operation.band_part: keep x[..., m, n] where (lower < 0 or m - n <= lower) and
    (upper < 0 or n - m <= upper), zero elsewhere."""
    rows, cols = x.shape[-2], x.shape[-1]
    m = torch.arange(rows)[:, None]
    n = torch.arange(cols)[None, :]
    keep = ((lower < 0) | (m - n <= lower)) & ((upper < 0) | (n - m <= upper))
    return torch.where(keep, x, torch.zeros((), dtype=x.dtype))


@register("one_hot", attributes=("one_hot_vector_size", "axis", "on_value", "off_value"))
def one_hot(indices, one_hot_vector_size, axis=-1, on_value=1, off_value=0):
    """iOS15.tensor_operation.one_hot: a new axis of length ``one_hot_vector_size`` at ``axis``."""
    hot = F.one_hot(indices.long(), int(one_hot_vector_size))
    out = torch.where(hot.bool(), torch.tensor(on_value), torch.tensor(off_value))
    return torch.movedim(out, -1, positive_axis(axis, indices.dim() + 1))
