"""MIL kernels: program state (iOS 18) and the slice write stateful programs use to update it.

A state input arrives as a ``StateCell`` (``verification.mil.state``): a mutable box holding the
state's tensor, which persists across calls in a ``ProgramState``. ``read_state`` returns that tensor
without copying; ``coreml_update_state`` writes a value into it. The executor only hands a kernel the
state's own tensor to modify in place (``write_slice``) when no other live value can see the change:
that is how a KV cache update costs the new slots, not a copy of the whole cache (see
``verification.mil.state.in_place_slice_updates``).
"""

from __future__ import annotations

import torch

from .registry import register

_SLICE_ATTRIBUTES = ("begin", "end", "stride", "begin_mask", "end_mask", "squeeze_mask")


@register("read_state", moves_data=True)
def read_state(input):
    """iOS18.states.read_state: the tensor the state holds (returned as is, not copied: the executor
    never modifies it while this value is live)."""
    return input.value


@register("coreml_update_state", moves_data=True)
def coreml_update_state(state, value):
    """coreml_dialect.ops.coreml_update_state (iOS18; it lowers to write_state then read_state): the
    state now holds ``value``, which is returned. Unless ``value`` already is the state's tensor (the
    in-place slice write), the state takes a copy: the old tensor may still be read (a live read_state
    result) and the value may be another op's (a constant), so neither is ever written."""
    cell = state
    if value is not cell.value:
        if tuple(value.shape) != tuple(cell.value.shape):
            raise ValueError(
                f"coreml_update_state: state {cell.name!r} holds shape {tuple(cell.value.shape)}, "
                f"got a value of shape {tuple(value.shape)}"
            )
        cell.value = value.to(cell.value.dtype, copy=True)
    return cell.value


def _region(x: torch.Tensor, begin, end, stride, begin_mask, end_mask, squeeze_mask):
    """The view of ``x`` that slice_by_index's slice selects (axes kept, squeezed ones as length 1) and the
    axes along which that view runs backwards (negative strides: a torch view can only step forwards)."""
    rank = x.dim()
    stride = list(stride) if stride is not None else [1] * rank
    begin_mask = begin_mask or [False] * rank
    end_mask = end_mask or [False] * rank
    squeeze_mask = squeeze_mask or [False] * rank
    if not len(begin) == len(end) == len(stride) == rank:
        raise ValueError(
            f"slice_update: expected begin, end and stride of length {rank} (the rank of x), got "
            f"{len(begin)}, {len(end)}, {len(stride)}"
        )
    index, flipped = [], []
    for axis in range(rank):
        size = x.shape[axis]
        b = None if begin_mask[axis] else int(begin[axis])
        e = None if end_mask[axis] else int(end[axis])
        s = int(stride[axis])
        if squeeze_mask[axis]:
            at = (0 if s > 0 else size - 1) if b is None else (b + size if b < 0 else b)
            if not 0 <= at < size:
                raise IndexError(f"slice_update: index {b} out of range for axis {axis} of size {size}")
            index.append(slice(at, at + 1))
            continue
        if s == 0:
            raise ValueError(f"slice_update: stride 0 on axis {axis}")
        start, stop, step = slice(b, e, s).indices(size)
        count = len(range(start, stop, step))
        if step > 0 or count == 0:
            index.append(slice(start, stop, step) if count else slice(0, 0))
        else:
            last = start + (count - 1) * step
            index.append(slice(last, start + 1, -step))
            flipped.append(axis)
    return x[tuple(index)], flipped


def write_slice(x, update, begin, end, stride=None, begin_mask=None, end_mask=None, squeeze_mask=None):
    """slice_update's write done in place on ``x`` (which is returned): only the slice's elements move."""
    region, flipped = _region(x, begin, end, stride, begin_mask, end_mask, squeeze_mask)
    if update.numel() != region.numel():
        raise ValueError(
            f"slice_update: update of shape {tuple(update.shape)} does not fit the slice "
            f"begin={list(begin)} end={list(end)} of x of shape {tuple(x.shape)} (slice shape "
            f"{tuple(region.shape)}); a write past the end of a state (e.g. a KV cache) lands here"
        )
    update = update.reshape(region.shape)
    if flipped:
        update = update.flip(flipped)
    region.copy_(update)
    return x


@register("slice_update", attributes=_SLICE_ATTRIBUTES, moves_data=True)
def slice_update(x, update, begin, end, stride=None, begin_mask=None, end_mask=None, squeeze_mask=None):
    """iOS18.tensor_transformation.slice_update: a copy of ``x`` with ``x[slice] = update``, the slice as
    slice_by_index reads it (negative values count from the end, masks ignore begin / end, a squeezed
    axis takes the element at ``begin``); ``update`` has the slice's shape (squeezed axes dropped)."""
    return write_slice(x.clone(), update, begin, end, stride, begin_mask, end_mask, squeeze_mask)
