"""Encoder and decoder layers (post-norm and pre-norm) on (B, C, 1, S) tensors.

Same structure and math as ``nn.TransformerEncoderLayer`` / ``nn.TransformerDecoderLayer``:
post-norm ``x = norm(x + sublayer(x))``; pre-norm ``x = x + sublayer(norm(x))``.
"""

from __future__ import annotations

import torch
from torch import nn

from .attention import MultiHeadAttentionANE
from .feed_forward import FeedForwardANE
from .layer_norm import LayerNormANE


class TransformerEncoderLayerANE(nn.Module):
    def __init__(
        self,
        embed_dim: int,
        num_heads: int,
        ffn_dim: int,
        *,
        activation: str = "relu",
        norm_first: bool = False,
        eps: float = 1e-5,
        bias: bool = True,
        query_chunk_size: int | None = None,
    ):
        super().__init__()
        self.norm_first = norm_first
        self.self_attn = MultiHeadAttentionANE(
            embed_dim, num_heads, bias=bias, query_chunk_size=query_chunk_size
        )
        self.norm1 = LayerNormANE(embed_dim, eps=eps)
        self.ffn = FeedForwardANE(embed_dim, ffn_dim, activation=activation, bias=bias)
        self.norm2 = LayerNormANE(embed_dim, eps=eps)

    def forward(
        self, x: torch.Tensor, attention_mask: torch.Tensor | None = None, causal: bool = False
    ) -> torch.Tensor:
        """``attention_mask``: (B, S) keep mask or additive bias, as in ``MultiHeadAttentionANE``."""
        if self.norm_first:
            x = x + self.self_attn(self.norm1(x), attention_mask=attention_mask, causal=causal)
            return x + self.ffn(self.norm2(x))
        x = self.norm1(x + self.self_attn(x, attention_mask=attention_mask, causal=causal))
        return self.norm2(x + self.ffn(x))


class TransformerDecoderLayerANE(nn.Module):
    def __init__(
        self,
        embed_dim: int,
        num_heads: int,
        ffn_dim: int,
        *,
        activation: str = "relu",
        norm_first: bool = False,
        eps: float = 1e-5,
        bias: bool = True,
        query_chunk_size: int | None = None,
    ):
        super().__init__()
        self.norm_first = norm_first
        self.self_attn = MultiHeadAttentionANE(
            embed_dim, num_heads, bias=bias, query_chunk_size=query_chunk_size
        )
        self.norm1 = LayerNormANE(embed_dim, eps=eps)
        self.cross_attn = MultiHeadAttentionANE(
            embed_dim, num_heads, bias=bias, query_chunk_size=query_chunk_size
        )
        self.norm2 = LayerNormANE(embed_dim, eps=eps)
        self.ffn = FeedForwardANE(embed_dim, ffn_dim, activation=activation, bias=bias)
        self.norm3 = LayerNormANE(embed_dim, eps=eps)

    def forward(
        self,
        x: torch.Tensor,
        memory: torch.Tensor,
        *,
        attention_mask: torch.Tensor | None = None,
        memory_mask: torch.Tensor | None = None,
        causal: bool = True,
    ) -> torch.Tensor:
        """``x``: (B, C, 1, S_t) targets; ``memory``: (B, C, 1, S_s) encoder output.

        ``attention_mask`` masks target keys, ``memory_mask`` the memory keys (each a (B, S) keep
        mask or an additive bias); ``causal`` adds the causal mask to self-attention.
        """
        if self.norm_first:
            x = x + self.self_attn(self.norm1(x), attention_mask=attention_mask, causal=causal)
            x = x + self.cross_attn(self.norm2(x), memory, attention_mask=memory_mask)
            return x + self.ffn(self.norm3(x))
        x = self.norm1(x + self.self_attn(x, attention_mask=attention_mask, causal=causal))
        x = self.norm2(x + self.cross_attn(x, memory, attention_mask=memory_mask))
        return self.norm3(x + self.ffn(x))
