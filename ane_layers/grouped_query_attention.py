"""Grouped-query causal self-attention over a KV cache, in split-einsum form for (B, C, 1, S) tensors.

The attention of transformers' Llama family (``LlamaAttention``, Qwen 2 with q/k/v biases, Qwen 3 with
q/k RMS norms): ``num_heads`` query heads share ``num_kv_heads`` key/value heads, query head ``h``
reading kv head ``h // (num_heads / num_kv_heads)``; 1 kv head is multi-query attention.
"""

from __future__ import annotations

import torch
from torch import nn

from .checks import check_bc1s
from .kv_cache import KVCache
from .linear import LinearANE
from .rms_norm import RMSNormANE
from .rotary import apply_rotary


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
        d = self.head_dim
        q = self.q_proj(x)
        k = self.k_proj(x)
        v = self.v_proj(x)
        # The 1/sqrt(d) score scale rides on the query's cos and sin: no extra op per head.
        q_cos, q_sin = cos * d**-0.5, sin * d**-0.5

        # ANE principle 2 (chunking): one small attention per head, heads split along channels (axis 1).
        heads_q = [apply_rotary(self._norm(self.q_norm, h), q_cos, q_sin) for h in q.split(d, dim=1)]
        new_k = torch.cat(
            [apply_rotary(self._norm(self.k_norm, h), cos, sin) for h in k.split(d, dim=1)], dim=1
        )
        if cache is not None:
            keys, values = cache.write(layer_index, new_k, v, position)  # (B, S_k, 1, C), (B, C, 1, S_k)
        else:
            keys, values = new_k.transpose(1, 3), v  # the only transpose, on the N new keys
        heads_k = keys.split(d, dim=3)  # each (B, S_k, 1, d): already the score einsum's operand
        heads_v = values.split(d, dim=1)  # each (B, d, 1, S_k)

        out = []
        for h, qh in enumerate(heads_q):
            g = self.kv_head_of(h)
            scores = torch.einsum("bchq,bkhc->bkhq", qh, heads_k[g])  # (B, S_k, 1, N)
            if bias is not None:
                scores = scores + bias
            weights = scores.softmax(dim=1)  # over the key axis
            out.append(torch.einsum("bkhq,bchk->bchq", weights, heads_v[g]))
        return self.o_proj(torch.cat(out, dim=1))

    @staticmethod
    def _norm(norm: RMSNormANE | None, x: torch.Tensor) -> torch.Tensor:
        return x if norm is None else norm.normalize(x)
