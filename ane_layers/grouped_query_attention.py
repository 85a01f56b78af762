"""Grouped-query causal self-attention over a KV cache, in split-einsum form for (B, C, 1, S) tensors.

The attention of transformers' Llama family (``LlamaAttention``, Qwen 2 with q/k/v biases, Qwen 3 with
q/k RMS norms): ``num_heads`` query heads share ``num_kv_heads`` key/value heads, query head ``h``
reading kv head ``h // (num_heads / num_kv_heads)``; 1 kv head is multi-query attention.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from .checks import check_bc1s, is_tracing
from .kv_cache import KVCache
from .linear import LinearANE
from .rms_norm import RMSNormANE
from .rotary import apply_rotary


def unchecked(linear: LinearANE, x: torch.Tensor) -> torch.Tensor:
    """The 1x1 conv of ``linear`` without its per-call input check: the layer checked ``x`` once on entry
    (a finiteness check per projection costs more than the projection in a decode step).

    Traced or exported, it is the conv (ANE principle 1). In eager torch the same product runs as a
    linear: torch's CPU conv takes a slow path for these 1x1 kernels (three quarters of a SmolLM2
    prefill, measured), which is a CPU artefact, not the layout's."""
    if is_tracing():
        return nn.Conv2d.forward(linear, x)
    # (B, C, S) viewed as (B, S, C) for F.linear (gemv at S = 1), then viewed back: no copies
    return F.linear(x[:, :, 0, :].transpose(1, 2), linear.weight[:, :, 0, 0], linear.bias).transpose(1, 2)[
        :, :, None
    ]


def check_head_counts(num_heads: int, num_kv_heads: int) -> None:
    if num_heads < 1 or num_kv_heads < 1 or num_heads % num_kv_heads:
        raise ValueError(
            f"grouped-query attention: expected num_key_value_heads to divide num_attention_heads, got "
            f"num_attention_heads={num_heads}, num_key_value_heads={num_kv_heads}"
        )


class GroupedQueryAttentionANE(nn.Module):
    """RoPE self-attention with grouped kv heads; keys and values go through a ``KVCache`` when given.

    ``forward(x, cos, sin, bias, cache=None, layer_index=0, position=0)``: ``x`` (B, hidden, 1, N);
    ``cos`` / ``sin`` (B, head_dim, 1, N) from ``RotaryEmbeddingANE``; ``bias`` an additive (B or 1, S_k,
    1, N) mask (finite sentinel) over the keys: the cache's ``capacity`` slots with a cache, else the N
    new tokens. Keys are cached after RoPE, as transformers caches them: rotating them again at read
    time would cost an op per step and precision.
    """

    def __init__(
        self,
        hidden_size: int,
        num_heads: int,
        num_kv_heads: int,
        head_dim: int,
        *,
        qkv_bias: bool = False,
        output_bias: bool = False,
        qk_norm: bool = False,
        eps: float = 1e-6,
    ):
        super().__init__()
        check_head_counts(num_heads, num_kv_heads)
        self.hidden_size, self.head_dim = hidden_size, head_dim
        self.num_heads, self.num_kv_heads = num_heads, num_kv_heads
        self.group_size = num_heads // num_kv_heads
        self.q_proj = LinearANE(hidden_size, num_heads * head_dim, bias=qkv_bias)
        self.k_proj = LinearANE(hidden_size, num_kv_heads * head_dim, bias=qkv_bias)
        self.v_proj = LinearANE(hidden_size, num_kv_heads * head_dim, bias=qkv_bias)
        self.o_proj = LinearANE(num_heads * head_dim, hidden_size, bias=output_bias)
        # Qwen 3: one RMS norm over each head's channels, shared by the heads, before RoPE.
        self.q_norm = RMSNormANE(head_dim, eps=eps) if qk_norm else None
        self.k_norm = RMSNormANE(head_dim, eps=eps) if qk_norm else None

    def kv_head_of(self, query_head: int) -> int:
        return query_head // self.group_size

    def forward(
        self,
        x: torch.Tensor,
        cos: torch.Tensor,
        sin: torch.Tensor,
        bias: torch.Tensor | None,
        cache: KVCache | None = None,
        layer_index: int = 0,
        position=0,
    ) -> torch.Tensor:
        check_bc1s(
            x, "GroupedQueryAttentionANE input", channels=self.hidden_size, dtype=self.q_proj.weight.dtype
        )
        q, k, v = unchecked(self.q_proj, x), unchecked(self.k_proj, x), unchecked(self.v_proj, x)
        heads_q = self.rotated_queries(q, cos, sin)
        keys, values = self.keys_and_values(self.rotated_keys(k, cos, sin), v, cache, layer_index, position)
        return unchecked(self.o_proj, torch.cat(self.attend(heads_q, keys, values, bias), dim=1))

    def rotated_queries(self, q: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> list[torch.Tensor]:
        """Per query head (B, d, 1, N): (q-norm,) RoPE, and the 1/sqrt(d) score scale."""
        # The score scale rides on the query's cos and sin: no extra op per head.
        q_cos, q_sin = cos * self.head_dim**-0.5, sin * self.head_dim**-0.5
        # ANE principle 2 (chunking): one small attention per head, heads split along channels (axis 1).
        return [apply_rotary(self._norm(self.q_norm, h), q_cos, q_sin) for h in q.split(self.head_dim, dim=1)]

    def rotated_keys(self, k: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
        """The new keys (B, kv_heads * d, 1, N) after (k-norm and) RoPE: what the cache stores."""
        heads = k.split(self.head_dim, dim=1)
        return torch.cat([apply_rotary(self._norm(self.k_norm, h), cos, sin) for h in heads], dim=1)

    def keys_and_values(self, new_k, v, cache: KVCache | None, layer_index: int, position):
        """Keys (B, S_k, 1, C) and values (B, C, 1, S_k) to attend over: the whole cache after writing the
        new ones at ``position``, or just the new ones without a cache."""
        if cache is not None:
            return cache.write(layer_index, new_k, v, position)
        return new_k.transpose(1, 3), v  # the only transpose, on the N new keys

    def attend(self, heads_q, keys, values, bias) -> list[torch.Tensor]:
        """One attention per query head over its kv head: scores (B, S_k, 1, N), softmax over keys."""
        heads_k = keys.split(self.head_dim, dim=3)  # each (B, S_k, 1, d): already the score einsum's operand
        heads_v = values.split(self.head_dim, dim=1)  # each (B, d, 1, S_k)
        out = []
        for h, qh in enumerate(heads_q):
            g = self.kv_head_of(h)
            scores = torch.einsum("bchq,bkhc->bkhq", qh, heads_k[g])
            if bias is not None:
                scores = scores + bias
            out.append(torch.einsum("bkhq,bchk->bchq", scores.softmax(dim=1), heads_v[g]))
        return out

    @staticmethod
    def _norm(norm: RMSNormANE | None, x: torch.Tensor) -> torch.Tensor:
        return x if norm is None else norm.normalize(x)
