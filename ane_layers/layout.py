"""The (B, C, 1, S) data layout and additive attention masks.

ANE principle 1 (data format): the last axis of a Neural Engine buffer is contiguous and aligned to
64 bytes, so the sequence goes last and channels go on axis 1; a last axis of length 1 would waste
up to 32x the memory in fp16.

Masks here are additive biases with a finite sentinel: ``-inf`` or ``finfo(float32).min`` turn into
``-inf`` in an fp16 program, and ``0 * -inf`` makes the whole output NaN.
"""

from __future__ import annotations

import torch

from .checks import is_tracing

# Finite and representable in fp16 (max 65504); exp(-1e4) is 0 in fp16 and fp32 alike. Being additive,
# the mask holds while a row's scores spread less than about 1e4 - 104 (fp32's exp underflow): real
# attention logits sit far below that, and fp16 programs overflow at 65504 anyway. Beyond it a padded
# key's weight grows back (tests/layers/test_fp16.py pins the boundary down).
MASK_SENTINEL = -1e4
# The lowest value fp16 holds: an additive bias below it becomes -inf in an fp16 program.
FP16_LOWEST = -65504.0


def to_bc1s(x: torch.Tensor) -> torch.Tensor:
    """(B, S, C) -> (B, C, 1, S)."""
    if x.dim() != 3:
        raise ValueError(f"to_bc1s: expected a (B, S, C) tensor, got shape {tuple(x.shape)}")
    return x.transpose(1, 2).unsqueeze(2)


def from_bc1s(x: torch.Tensor) -> torch.Tensor:
    """(B, C, 1, S) -> (B, S, C)."""
    if x.dim() != 4 or x.shape[2] != 1:
        raise ValueError(f"from_bc1s: expected a (B, C, 1, S) tensor, got shape {tuple(x.shape)}")
    return x.squeeze(2).transpose(1, 2)


def _check_binary_mask(mask: torch.Tensor, name: str, batch_size: int | None, key_length: int | None):
    if not isinstance(mask, torch.Tensor):
        raise TypeError(f"{name}: expected a torch.Tensor of shape (B, S), got {type(mask).__name__}")
    if mask.dim() != 2:
        raise ValueError(f"{name}: expected shape (B, S), got {tuple(mask.shape)}")
    expected = (
        batch_size if batch_size is not None else mask.shape[0],
        key_length if key_length is not None else mask.shape[1],
    )
    if tuple(mask.shape) != expected:
        raise ValueError(f"{name}: expected shape (B, S) = {expected}, got {tuple(mask.shape)}")
    if mask.is_complex():
        raise TypeError(f"{name}: expected a bool, int or float mask, got dtype {mask.dtype}")
    if mask.dtype != torch.bool and not is_tracing():
        bad = (mask != 0) & (mask != 1)
        if bool(bad.any()):
            raise ValueError(
                f"{name}: expected only 0 and 1 in a {mask.dtype} mask, got {int(bad.sum())} other values "
                f"(e.g. {mask[bad].flatten()[0].item()}); pass additive masks as (B, S_k, 1, S_q) biases"
            )


def attention_mask_to_bias(
    attention_mask: torch.Tensor,
    *,
    batch_size: int | None = None,
    key_length: int | None = None,
    dtype: torch.dtype = torch.float32,
    query_length: int | None = None,
) -> torch.Tensor:
    """Hugging Face convention (1 or True = attend, 0 or False = padding), shape (B, S_k).

    Returns the additive key-padding bias of shape (B, S_k, 1, 1): 0 where attended, MASK_SENTINEL
    at padding. Accepts bool, integer and float masks holding only 0 and 1. With ``query_length`` the
    bias is (B, S_k, 1, S_q) instead, made without any tensor whose last axis is 1 (see ``_to_bias``).
    """
    _check_binary_mask(attention_mask, "attention_mask", batch_size, key_length)
    padding = attention_mask == 0 if attention_mask.dtype != torch.bool else ~attention_mask
    return _to_bias(padding, dtype, query_length)


def key_padding_mask_to_bias(
    key_padding_mask: torch.Tensor,
    *,
    batch_size: int | None = None,
    key_length: int | None = None,
    dtype: torch.dtype = torch.float32,
    query_length: int | None = None,
) -> torch.Tensor:
    """torch.nn.MultiheadAttention convention (True or 1 = padding, ignored), shape (B, S_k).

    Returns the additive key-padding bias of shape (B, S_k, 1, 1), or (B, S_k, 1, S_q) with
    ``query_length``.
    """
    _check_binary_mask(key_padding_mask, "key_padding_mask", batch_size, key_length)
    padding = key_padding_mask != 0 if key_padding_mask.dtype != torch.bool else key_padding_mask
    return _to_bias(padding, dtype, query_length)


def _to_bias(padding: torch.Tensor, dtype: torch.dtype, query_length: int | None) -> torch.Tensor:
    """(B, S_k) bool -> additive bias in ``dtype``: (B, S_k, 1, 1), or with ``query_length`` (B, S_k, 1, S_q).

    The second form keeps keys on axis 1 and never has a last axis of 1: a (B, 1, 1, S_k) row, broadcast
    over the queries, then one transpose. It costs a broadcast and a transpose (once per model, not per
    layer), which the (B, S_k, 1, 1) form, broadcast inside the score add, does not.
    """
    if query_length is None:
        return (padding.to(dtype) * MASK_SENTINEL)[:, :, None, None]
    if not isinstance(query_length, int) or query_length < 1:
        raise ValueError(f"query_length: expected a positive int or None, got {query_length!r}")
    row = (padding.to(dtype) * MASK_SENTINEL)[:, None, None, :]  # (B, 1, 1, S_k)
    return row.expand(-1, query_length, -1, -1).transpose(1, 3)  # (B, S_k, 1, S_q)


def causal_bias(query_length: int, key_length: int | None = None, *, dtype=torch.float32, device=None):
    """Additive causal bias of shape (1, S_k, 1, S_q): query q may attend to keys k <= q."""
    key_length = query_length if key_length is None else key_length
    keys = torch.arange(key_length, device=device)[None, :, None, None]
    queries = torch.arange(query_length, device=device)[None, None, None, :]
    return (keys > queries).to(dtype) * MASK_SENTINEL


def check_attention_bias(bias: torch.Tensor, batch_size: int, key_length: int, query_length: int) -> None:
    """An additive bias must broadcast to the score shape (B, S_k, 1, S_q) along B and S_q only.

    A mask that is wrong in the key axis is rejected instead of silently broadcast.
    """
    if not isinstance(bias, torch.Tensor):
        raise TypeError(f"attention bias: expected a torch.Tensor, got {type(bias).__name__}")
    if not bias.is_floating_point():
        raise TypeError(
            f"attention bias: expected a floating-point additive bias of shape (B, S_k, 1, S_q), got dtype "
            f"{bias.dtype}; convert 0/1 masks with attention_mask_to_bias or key_padding_mask_to_bias"
        )
    ok = (
        bias.dim() == 4
        and bias.shape[0] in (1, batch_size)
        and bias.shape[1] == key_length
        and bias.shape[2] == 1
        and bias.shape[3] in (1, query_length)
    )
    if not ok:
        raise ValueError(
            f"attention bias: expected shape ({batch_size} or 1, {key_length}, 1, {query_length} or 1) "
            f"for scores (B, S_k, 1, S_q), got {tuple(bias.shape)}"
        )
    if is_tracing():
        return
    out_of_range = ~torch.isfinite(bias) | (bias < FP16_LOWEST)
    if bool(out_of_range.any()):
        raise ValueError(
            f"attention bias: expected finite values of at least {FP16_LOWEST} (fp16's lowest; use "
            f"MASK_SENTINEL = {MASK_SENTINEL} for masked positions), got {int(out_of_range.sum())} values "
            f"outside, e.g. {bias[out_of_range].flatten()[0].item()}: -inf and finfo(float32).min turn the "
            f"output NaN in an fp16 program"
        )
