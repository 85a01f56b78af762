"""ANE-optimized transformer layers in the (B, C, 1, S) layout, each with a PyTorch baseline."""

from .attention import MultiHeadAttentionANE
from .decoder_layers import CausalDecoderLayerANE, LMHeadANE, SwiGLUFeedForwardANE
from .embeddings import EmbeddingsANE
from .feed_forward import FeedForwardANE
from .grouped_query_attention import GroupedQueryAttentionANE
from .kv_cache import KVCache
from .layer_norm import LayerNormANE
from .layout import (
    MASK_SENTINEL,
    attention_mask_to_bias,
    causal_bias,
    from_bc1s,
    key_padding_mask_to_bias,
    to_bc1s,
)
from .linear import LinearANE
from .rms_norm import RMSNormANE
from .rotary import RotaryEmbeddingANE
from .transformer_layers import TransformerDecoderLayerANE, TransformerEncoderLayerANE

__all__ = [
    "MASK_SENTINEL",
    "CausalDecoderLayerANE",
    "GroupedQueryAttentionANE",
    "KVCache",
    "LMHeadANE",
    "RMSNormANE",
    "RotaryEmbeddingANE",
    "SwiGLUFeedForwardANE",
    "EmbeddingsANE",
    "FeedForwardANE",
    "LayerNormANE",
    "LinearANE",
    "MultiHeadAttentionANE",
    "TransformerDecoderLayerANE",
    "TransformerEncoderLayerANE",
    "attention_mask_to_bias",
    "causal_bias",
    "from_bc1s",
    "key_padding_mask_to_bias",
    "to_bc1s",
]
