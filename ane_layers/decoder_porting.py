"""Weight porting from transformers' Llama-family modules (Llama, Qwen 2, Qwen 3) into the decoder layers.

The modules are read by attribute name (``q_proj``, ``variance_epsilon``, ``config``...), so no
transformers class is imported; the ANE layers use the same parameter names, and ``LinearANE``
unsqueezes the 2D linear weights itself. Results are in the baseline's dtype and training mode.
"""

from __future__ import annotations

from typing import Any

from torch import nn

from .decoder_layers import CausalDecoderLayerANE, LMHeadANE, SwiGLUFeedForwardANE
from .grouped_query_attention import GroupedQueryAttentionANE
from .rms_norm import RMSNormANE
from .rotary import RotaryEmbeddingANE, rope_settings

HFModule = Any  # a transformers module, read by attribute name


def _load(ane: nn.Module, baseline: nn.Module) -> nn.Module:
    reference = next(baseline.parameters())
    ane.to(dtype=reference.dtype, device=reference.device)
    ane.load_state_dict({k: v.detach() for k, v in baseline.state_dict().items()}, strict=True)
    return ane.train(baseline.training)


def from_llama_rms_norm(norm: HFModule) -> RMSNormANE:
    """``LlamaRMSNorm`` / ``Qwen2RMSNorm`` / ``Qwen3RMSNorm`` (weight * x / rms, eps ``variance_epsilon``)."""
    return _load(RMSNormANE(norm.weight.shape[0], eps=norm.variance_epsilon), norm)


def from_llama_rotary(rotary: HFModule, head_dim: int | None = None) -> RotaryEmbeddingANE:
    """``LlamaRotaryEmbedding`` (and its Qwen copies): theta and scaling read from its config."""
    config = rotary.config
    if float(getattr(rotary, "attention_scaling", 1.0)) != 1.0:
        raise ValueError(f"rotary embedding: expected attention_scaling 1.0, got {rotary.attention_scaling}")
    theta, scaling = rope_settings(config)
    if head_dim is None:
        head_dim = getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
    return RotaryEmbeddingANE(head_dim, theta, scaling, config.max_position_embeddings)


def from_llama_attention(attention: HFModule) -> GroupedQueryAttentionANE:
    """``LlamaAttention`` (optional biases), ``Qwen2Attention`` (q/k/v biases), ``Qwen3Attention``
    (q/k norms)."""
    config = attention.config
    if getattr(attention, "sliding_window", None):
        raise ValueError(f"attention: expected full attention, got sliding_window={attention.sliding_window}")
    q_norm = getattr(attention, "q_norm", None)
    ane = GroupedQueryAttentionANE(
        config.hidden_size,
        config.num_attention_heads,
        config.num_key_value_heads,
        attention.head_dim,
        qkv_bias=attention.q_proj.bias is not None,
        output_bias=attention.o_proj.bias is not None,
        qk_norm=q_norm is not None,
        eps=q_norm.variance_epsilon if q_norm is not None else 1e-6,
    )
    return _load(ane, attention)


def from_llama_mlp(mlp: HFModule) -> SwiGLUFeedForwardANE:
    """``LlamaMLP`` with SiLU gating (``hidden_act='silu'``)."""
    act = getattr(mlp.config, "hidden_act", "silu")
    if act != "silu":
        raise ValueError(f"MLP: expected hidden_act 'silu' (SwiGLU), got {act!r}")
    ane = SwiGLUFeedForwardANE(
        mlp.gate_proj.in_features, mlp.gate_proj.out_features, bias=mlp.gate_proj.bias is not None
    )
    return _load(ane, mlp)


def from_llama_decoder_layer(layer: HFModule) -> CausalDecoderLayerANE:
    """``LlamaDecoderLayer`` (and its Qwen 2 / Qwen 3 copies): pre-norm attention and MLP."""
    attention = from_llama_attention(layer.self_attn)
    mlp = from_llama_mlp(layer.mlp)
    ane = CausalDecoderLayerANE(
        attention.hidden_size,
        attention.num_heads,
        attention.num_kv_heads,
        attention.head_dim,
        mlp.gate_proj.out_features,
        eps=layer.input_layernorm.variance_epsilon,
        qkv_bias=attention.q_proj.bias is not None,
        output_bias=attention.o_proj.bias is not None,
        mlp_bias=mlp.gate_proj.bias is not None,
        qk_norm=attention.q_norm is not None,
    )
    return _load(ane, layer)


def from_lm_head(linear: nn.Linear, channels_per_conv: int | None = None) -> LMHeadANE:
    """A bias-free ``nn.Linear`` LM head (or a tied one: its weight is the embedding's)."""
    if linear.bias is not None:
        raise ValueError(
            "LM head: expected a bias-free nn.Linear (Llama-family heads have no bias), got a bias"
        )
    options = {} if channels_per_conv is None else {"channels_per_conv": channels_per_conv}
    return _load(LMHeadANE(linear.in_features, linear.out_features, **options), linear)
