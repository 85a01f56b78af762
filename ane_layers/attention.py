"""Multi-head attention in split-einsum form for (B, C, 1, S) tensors."""

from __future__ import annotations

import torch
from torch import nn

from .checks import check_bc1s, check_divisible
from .layout import attention_mask_to_bias, causal_bias, check_attention_bias
from .linear import LinearANE


class MultiHeadAttentionANE(nn.Module):
    """Scaled dot-product multi-head attention, one small attention per head.

    Inputs are (B, C, 1, S); ``key_value`` (for cross-attention) is (B, kdim, 1, S_k). Masks:
    ``attention_mask`` is either a (B, S_k) key-padding mask in the Hugging Face convention
    (1 / True = attend; bool, int or float) or an additive float bias broadcastable to the score
    shape (B, S_k, 1, S_q) (see ``ane_layers.layout``); ``causal=True`` adds the causal bias.
    A query whose keys are all masked gets a finite result (a softmax over equally biased scores).

    ``query_chunk_size`` splits the queries into chunks of that length, so that the per-head score
    tensors (B, S_k, 1, chunk) stay small for long sequences.
    """

    def __init__(
        self,
        embed_dim: int,
        num_heads: int,
        *,
        bias: bool = True,
        kdim: int | None = None,
        vdim: int | None = None,
        query_chunk_size: int | None = None,
    ):
        super().__init__()
        check_divisible(embed_dim, num_heads)
        if kdim is not None and vdim is not None and kdim != vdim:
            raise ValueError(
                f"MultiHeadAttentionANE: expected kdim == vdim (keys and values both come from the one "
                f"key_value tensor), got kdim={kdim}, vdim={vdim}"
            )
        if query_chunk_size is not None and query_chunk_size < 1:
            raise ValueError(f"query_chunk_size: expected a positive length or None, got {query_chunk_size}")
        self.embed_dim = embed_dim
        self.num_heads = num_heads
        self.head_dim = embed_dim // num_heads
        key_value_dim = kdim if kdim is not None else vdim
        self.kdim = self.vdim = embed_dim if key_value_dim is None else key_value_dim
        self.query_chunk_size = query_chunk_size
        self.q_proj = LinearANE(embed_dim, embed_dim, bias=bias)
        self.k_proj = LinearANE(self.kdim, embed_dim, bias=bias)
        self.v_proj = LinearANE(self.vdim, embed_dim, bias=bias)
        self.out_proj = LinearANE(embed_dim, embed_dim, bias=bias)

    def forward(
        self,
        query: torch.Tensor,
        key_value: torch.Tensor | None = None,
        *,
        attention_mask: torch.Tensor | None = None,
        causal: bool = False,
    ) -> torch.Tensor:
        check_bc1s(
            query, "MultiHeadAttentionANE query", channels=self.embed_dim, dtype=self.q_proj.weight.dtype
        )
        if key_value is None:
            key_value = query
        else:
            check_bc1s(
                key_value,
                "MultiHeadAttentionANE key_value",
                channels=self.kdim,
                dtype=self.k_proj.weight.dtype,
            )
            if key_value.shape[0] != query.shape[0]:
                raise ValueError(
                    f"MultiHeadAttentionANE: query batch {query.shape[0]} != "
                    f"key_value batch {key_value.shape[0]}"
                )
        bias = self._score_bias(query, key_value, attention_mask, causal)

        # Scaling q once costs one op instead of one per head.
        q = self.q_proj(query) * self.head_dim**-0.5
        k = self.k_proj(key_value)
        v = self.v_proj(key_value)

        # ANE principle 2 (chunking): one small attention per head, split along channels (axis 1).
        heads_q = q.split(self.head_dim, dim=1)  # each (B, d, 1, S_q)
        # ANE principle 3 (few copies): the only transpose, on K; no reshapes anywhere.
        heads_k = k.transpose(1, 3).split(self.head_dim, dim=3)  # each (B, S_k, 1, d)
        heads_v = v.split(self.head_dim, dim=1)  # each (B, d, 1, S_k)

        if self.query_chunk_size is None or self.query_chunk_size >= query.shape[3]:
            heads = _attend(heads_q, heads_k, heads_v, bias)
        else:
            heads = self._attend_in_query_chunks(heads_q, heads_k, heads_v, bias)
        return self.out_proj(torch.cat(heads, dim=1))

    def _attend_in_query_chunks(self, heads_q, heads_k, heads_v, bias):
        n = self.query_chunk_size
        chunked_q = [qh.split(n, dim=3) for qh in heads_q]
        n_chunks = len(chunked_q[0])
        chunked_bias = [None] * n_chunks
        if bias is not None:
            chunked_bias = bias.split(n, dim=3) if bias.shape[3] > 1 else [bias] * n_chunks
        heads = []
        for h in range(self.num_heads):
            pieces = [
                _attend([chunked_q[h][c]], [heads_k[h]], [heads_v[h]], chunked_bias[c])[0]
                for c in range(n_chunks)
            ]
            heads.append(torch.cat(pieces, dim=3))
        return heads

    def _score_bias(self, query, key_value, attention_mask, causal):
        batch, key_length, query_length = query.shape[0], key_value.shape[3], query.shape[3]
        bias = None
        if attention_mask is not None:
            if not isinstance(attention_mask, torch.Tensor) or attention_mask.dim() not in (2, 4):
                got = (
                    tuple(attention_mask.shape)
                    if isinstance(attention_mask, torch.Tensor)
                    else attention_mask
                )
                raise ValueError(
                    f"attention_mask: expected a ({batch}, {key_length}) key-padding mask or an additive "
                    f"bias of shape (B, S_k, 1, S_q) = ({batch}, {key_length}, 1, {query_length}), got {got}"
                )
            if attention_mask.dim() == 2:
                bias = attention_mask_to_bias(
                    attention_mask, batch_size=batch, key_length=key_length, dtype=query.dtype
                )
            else:
                check_attention_bias(attention_mask, batch, key_length, query_length)
                bias = attention_mask.to(query.dtype)
        if causal:
            causal_part = causal_bias(query_length, key_length, dtype=query.dtype, device=query.device)
            bias = causal_part if bias is None else bias + causal_part
        return bias


def _attend(heads_q, heads_k, heads_v, bias):
    """Per-head attention; scores are (B, S_k, 1, S_q), so softmax runs over the key axis 1."""
    out = []
    for qh, kh, vh in zip(heads_q, heads_k, heads_v, strict=True):
        scores = torch.einsum("bchq,bkhc->bkhq", qh, kh)
        if bias is not None:
            scores = scores + bias
        weights = scores.softmax(dim=1)
        out.append(torch.einsum("bkhq,bchk->bchq", weights, vh))
    return out
