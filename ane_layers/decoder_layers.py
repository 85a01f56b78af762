"""The pieces of a Llama-family causal LM besides attention: SwiGLU feed-forward, the pre-norm decoder
layer, and the LM head, all on (B, C, 1, S) tensors."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from .checks import check_bc1s, is_tracing
from .grouped_query_attention import GroupedQueryAttentionANE, unchecked
from .kv_cache import KVCache
from .linear import LinearANE
from .rms_norm import RMSNormANE


class SwiGLUFeedForwardANE(nn.Module):
    """``down(silu(gate(x)) * up(x))`` (transformers' ``LlamaMLP``) with 1x1 convolutions."""

    def __init__(self, hidden_size: int, intermediate_size: int, bias: bool = False):
        super().__init__()
        self.hidden_size = hidden_size
        self.gate_proj = LinearANE(hidden_size, intermediate_size, bias=bias)
        self.up_proj = LinearANE(hidden_size, intermediate_size, bias=bias)
        self.down_proj = LinearANE(intermediate_size, hidden_size, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_bc1s(
            x, "SwiGLUFeedForwardANE input", channels=self.hidden_size, dtype=self.gate_proj.weight.dtype
        )
        # ANE principle 1: three 1x1 convs over channels; the gating is elementwise in the same layout.
        return unchecked(self.down_proj, F.silu(unchecked(self.gate_proj, x)) * unchecked(self.up_proj, x))


class CausalDecoderLayerANE(nn.Module):
    """Pre-norm decoder layer: ``x + attn(norm(x))``, then ``x + mlp(norm(x))`` (``LlamaDecoderLayer``)."""

    def __init__(
        self,
        hidden_size: int,
        num_heads: int,
        num_kv_heads: int,
        head_dim: int,
        intermediate_size: int,
        *,
        eps: float = 1e-6,
        qkv_bias: bool = False,
        output_bias: bool = False,
        mlp_bias: bool = False,
        qk_norm: bool = False,
    ):
        super().__init__()
        self.input_layernorm = RMSNormANE(hidden_size, eps=eps)
        self.self_attn = GroupedQueryAttentionANE(
            hidden_size,
            num_heads,
            num_kv_heads,
            head_dim,
            qkv_bias=qkv_bias,
            output_bias=output_bias,
            qk_norm=qk_norm,
            eps=eps,
        )
        self.post_attention_layernorm = RMSNormANE(hidden_size, eps=eps)
        self.mlp = SwiGLUFeedForwardANE(hidden_size, intermediate_size, bias=mlp_bias)

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
        x = x + self.self_attn(self.input_layernorm(x), cos, sin, bias, cache, layer_index, position)
        return x + self.mlp(self.post_attention_layernorm(x))


# Output channels per conv of the LM head. Published M1 measurements put the Neural Engine's limit on a
# tensor's channels at 65536, below Llama 3's 128256-token vocabulary; 16384 leaves room and splits a
# 49152-token vocabulary into three equal convs. Configurable per head.
LM_HEAD_CHANNELS_PER_CONV = 16384


class LMHeadANE(nn.Module):
    """Logits (B, vocab, 1, S) as 1x1 convs, split along the vocabulary into convs of at most
    ``channels_per_conv`` outputs and concatenated along channels.

    ``weight`` is (vocab, hidden), as in ``nn.Linear`` and ``nn.Embedding``: tie it to the embedding by
    assigning the embedding's Parameter (``head.weight = embedding.weight``).
    """

    def __init__(self, hidden_size: int, vocab_size: int, channels_per_conv: int = LM_HEAD_CHANNELS_PER_CONV):
        super().__init__()
        if channels_per_conv < 1:
            raise ValueError(f"LMHeadANE: expected a positive channels_per_conv, got {channels_per_conv}")
        self.hidden_size, self.vocab_size, self.channels_per_conv = hidden_size, vocab_size, channels_per_conv
        self.weight = nn.Parameter(torch.empty(vocab_size, hidden_size).normal_(std=hidden_size**-0.5))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_bc1s(x, "LMHeadANE input", channels=self.hidden_size, dtype=self.weight.dtype)
        chunks = self.weight.split(self.channels_per_conv, dim=0)
        if is_tracing():
            return torch.cat([F.conv2d(x, w[:, :, None, None]) for w in chunks], dim=1)
        # eager torch: the same products as linears (torch's CPU conv is slow for 1x1 kernels)
        rows = x[:, :, 0, :].transpose(1, 2)  # (B, S, C), a view
        return torch.cat([F.linear(rows, w) for w in chunks], dim=2).transpose(1, 2)[:, :, None]

    def extra_repr(self) -> str:
        return f"{self.hidden_size} -> {self.vocab_size}, channels_per_conv={self.channels_per_conv}"
