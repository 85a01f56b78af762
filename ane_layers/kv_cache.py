"""A fixed-capacity key/value cache, written in place at a position, in the layouts attention reads.

Keys are stored as (layers, B, capacity, 1, kv_heads * head_dim): one kv head's slice of the last axis
is already the (B, S_k, 1, d) operand of the score einsum, so reading the cache transposes nothing (ANE
principle 3, few copies); only the N new keys are transposed when written. Values are stored as
(layers, B, kv_heads * head_dim, 1, capacity), the (B, d, 1, S_k) operand of the weighted sum.

Both are registered buffers written with slice assignment (``cache[..., p:p + n] = new``): a traced
module that does this converts to Core ML state (``read_state`` / ``slice_update`` /
``coreml_update_state``). The capacity is fixed, so shapes stay static; writing past it raises, it
never wraps around. The buffers are not persistent: a checkpoint never carries a cache.
"""

from __future__ import annotations

import torch
from torch import nn

from .checks import is_tracing


class KVCache(nn.Module):
    """Past keys (after RoPE) and values of every layer, for ``capacity`` positions of ``batch_size`` rows.

    ``write(layer, keys, values, position)`` stores N new keys and values (each (B, kv_heads * head_dim,
    1, N)) at cache slots ``position .. position + N - 1`` and returns the layer's whole cache: the one
    call serves a prefill of N tokens from ``position`` and a decode step of 1 token at ``position``.
    Slots not yet written hold zeros or stale values: the caller's causal mask hides them.
    """

    def __init__(
        self,
        num_layers: int,
        batch_size: int,
        num_kv_heads: int,
        head_dim: int,
        capacity: int,
        dtype: torch.dtype = torch.float32,
    ):
        super().__init__()
        for name, value in (
            ("num_layers", num_layers),
            ("batch_size", batch_size),
            ("num_kv_heads", num_kv_heads),
            ("head_dim", head_dim),
            ("capacity", capacity),
        ):
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"KVCache: expected a positive integer {name}, got {value!r}")
        self.num_layers, self.batch_size, self.capacity = num_layers, batch_size, capacity
        self.num_kv_heads, self.head_dim = num_kv_heads, head_dim
        channels = num_kv_heads * head_dim
        self.register_buffer(
            "k_cache",
            torch.zeros(num_layers, batch_size, capacity, 1, channels, dtype=dtype),
            persistent=False,
        )
        self.register_buffer(
            "v_cache",
            torch.zeros(num_layers, batch_size, channels, 1, capacity, dtype=dtype),
            persistent=False,
        )

    @property
    def shapes(self) -> tuple[tuple[int, ...], tuple[int, ...]]:
        return tuple(self.k_cache.shape), tuple(self.v_cache.shape)

    def reset(self) -> None:
        """Zero both caches in place (same shapes, same buffers)."""
        self.k_cache.zero_()
        self.v_cache.zero_()

    def write(self, layer: int, keys: torch.Tensor, values: torch.Tensor, position):
        """Store ``keys`` / ``values`` (B, kv_heads * head_dim, 1, N) at slots ``position ..``; return the
        layer's keys (B, capacity, 1, C) and values (B, C, 1, capacity)."""
        channels = self.num_kv_heads * self.head_dim
        expected = (self.batch_size, channels, 1)
        for name, x in (("keys", keys), ("values", values)):
            if x.dim() != 4 or tuple(x.shape[:3]) != expected:
                raise ValueError(
                    f"KVCache.write {name}: expected shape (B, C, 1, N) = "
                    f"({self.batch_size}, {channels}, 1, N), got {tuple(x.shape)}"
                )
            if x.dtype != self.k_cache.dtype:
                raise ValueError(
                    f"KVCache.write {name}: expected dtype {self.k_cache.dtype} (the cache's), got {x.dtype}"
                )
        n = keys.shape[3]
        check_slots(position, n, self.capacity)
        # In-place slice writes at a runtime position: what Core ML state conversion expects.
        self.k_cache[layer, :, position : position + n] = keys.transpose(1, 3)
        self.v_cache[layer, :, :, :, position : position + n] = values
        return self.k_cache[layer], self.v_cache[layer]

    def extra_repr(self) -> str:
        return (
            f"layers={self.num_layers}, batch={self.batch_size}, kv_heads={self.num_kv_heads}, "
            f"head_dim={self.head_dim}, capacity={self.capacity}, dtype={self.k_cache.dtype}"
        )


def check_slots(position, n: int, capacity: int) -> None:
    """Raise unless slots ``position .. position + n - 1`` lie inside a cache of ``capacity`` slots."""
    if is_tracing():
        return
    p = int(position)
    if p < 0 or n < 1 or p + n > capacity:
        raise ValueError(
            f"KV cache: expected {n} position(s) from {p} to fit in the cache's capacity of {capacity} "
            f"(slots 0..{capacity - 1}), got slots {p}..{p + n - 1}; a cache never wraps around"
        )
