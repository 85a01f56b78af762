"""A standalone encoder-decoder Transformer in the (B, C, 1, S) layout, with its torch baseline.

``TransformerANE`` has the structure of ``torch.nn.Transformer``: a stack of encoder layers and a
final LayerNorm, a stack of decoder layers (self-attention, cross-attention, feed-forward) and a
final LayerNorm. Like the published reference it has no embeddings: inputs and outputs are
(B, d_model, 1, S) tensors. ``from_torch_transformer`` copies the weights of an ``nn.Transformer``,
so the ANE model has a real baseline to be checked against.

Masks follow ``nn.Transformer``'s key-padding convention: (B, S) with True (or 1) at padding. They
become finite additive biases once, at the top of ``encode`` / ``decode``.
"""

from __future__ import annotations

import warnings
from typing import Any

import torch
from torch import nn

from ane_layers import LayerNormANE, TransformerDecoderLayerANE, TransformerEncoderLayerANE
from ane_layers.checks import check_bc1s
from ane_layers.layout import key_padding_mask_to_bias
from ane_layers.porting import from_decoder_layer, from_encoder_layer

from .common import TrainingModeWarning
from .layout import LayoutAware


class TransformerANE(LayoutAware, nn.Module):
    """Encoder-decoder Transformer on (B, d_model, 1, S) tensors (``nn.Transformer``'s math)."""

    def __init__(self, d_model: int = 512, nhead: int = 8, num_encoder_layers: int = 6,
                 num_decoder_layers: int = 6, dim_feedforward: int = 2048, *, activation: str = "relu",
                 norm_first: bool = False, eps: float = 1e-5, bias: bool = True,
                 query_chunk_size: int | None = None):
        super().__init__()
        self.d_model = d_model
        layer_options: dict[str, Any] = dict(activation=activation, norm_first=norm_first, eps=eps, bias=bias,
                             query_chunk_size=query_chunk_size)
        self.encoder_layers = nn.ModuleList(
            TransformerEncoderLayerANE(d_model, nhead, dim_feedforward, **layer_options)
            for _ in range(num_encoder_layers)
        )
        self.encoder_norm = LayerNormANE(d_model, eps=eps)
        self.decoder_layers = nn.ModuleList(
            TransformerDecoderLayerANE(d_model, nhead, dim_feedforward, **layer_options)
            for _ in range(num_decoder_layers)
        )
        self.decoder_norm = LayerNormANE(d_model, eps=eps)

    def forward(self, src: torch.Tensor, tgt: torch.Tensor, src_key_padding_mask: torch.Tensor | None = None,
                tgt_key_padding_mask: torch.Tensor | None = None,
                memory_key_padding_mask: torch.Tensor | None = None, *, causal: bool = True) -> torch.Tensor:
        """``src`` (B, C, 1, S_s), ``tgt`` (B, C, 1, S_t) -> decoder output (B, C, 1, S_t).

        Key-padding masks are (B, S) with True at padding, as in ``nn.Transformer``;
        ``memory_key_padding_mask`` masks the encoder output in cross-attention (usually the source
        mask). ``causal`` (default True) lets target position t attend only to positions <= t.
        """
        memory = self.encode(src, src_key_padding_mask)
        return self.decode(tgt, memory, tgt_key_padding_mask, memory_key_padding_mask, causal=causal)

    def encode(self, src: torch.Tensor, src_key_padding_mask: torch.Tensor | None = None) -> torch.Tensor:
        check_bc1s(src, "TransformerANE src", channels=self.d_model)
        bias = self._padding_bias(src_key_padding_mask, src, src, "src_key_padding_mask")
        x = src
        for layer in self.encoder_layers:
            x = layer(x, bias)
        return self.encoder_norm(x)

    def decode(self, tgt: torch.Tensor, memory: torch.Tensor,
               tgt_key_padding_mask: torch.Tensor | None = None,
               memory_key_padding_mask: torch.Tensor | None = None, *, causal: bool = True) -> torch.Tensor:
        check_bc1s(tgt, "TransformerANE tgt", channels=self.d_model)
        check_bc1s(memory, "TransformerANE memory", channels=self.d_model)
        tgt_bias = self._padding_bias(tgt_key_padding_mask, tgt, tgt, "tgt_key_padding_mask")
        memory_bias = self._padding_bias(memory_key_padding_mask, memory, tgt, "memory_key_padding_mask")
        x = tgt
        for layer in self.decoder_layers:
            x = layer(x, memory, attention_mask=tgt_bias, memory_mask=memory_bias, causal=causal)
        return self.decoder_norm(x)


    def _padding_bias(self, mask: torch.Tensor | None, keys: torch.Tensor, queries: torch.Tensor,
                      name: str) -> torch.Tensor | None:
        """(B, S_k, 1, 1), or (B, S_k, 1, S_q) in the coreai layout (``ane_models.layout``)."""
        if mask is None:
            return None
        expected = (keys.shape[0], keys.shape[3])
        if not isinstance(mask, torch.Tensor) or tuple(mask.shape) != expected:
            got = tuple(mask.shape) if isinstance(mask, torch.Tensor) else type(mask).__name__
            raise ValueError(f"{name}: expected shape (B, S) = {expected}, got {got}")
        query_length = int(queries.shape[3]) if self.ane_layout == "coreai" else None
        return key_padding_mask_to_bias(mask, dtype=keys.dtype, query_length=query_length)


def from_torch_transformer(transformer: nn.Transformer, *,
                           query_chunk_size: int | None = None) -> TransformerANE:
    """``TransformerANE`` with the weights of ``transformer`` (in eval mode, in its dtype).

    ``batch_first`` does not matter (the ANE model always takes (B, C, 1, S)). A transformer in
    training mode gives a ``TrainingModeWarning``; it is not changed.
    """
    encoder, decoder = transformer.encoder, transformer.decoder
    for name, stack, layer_type in (("encoder", encoder, nn.TransformerEncoderLayer),
                                    ("decoder", decoder, nn.TransformerDecoderLayer)):
        kinds = {type(layer).__name__ for layer in stack.layers}
        if not all(isinstance(layer, layer_type) for layer in stack.layers) or stack.norm is None:
            raise ValueError(f"from_torch_transformer: expected {name} layers of type {layer_type.__name__} "
                             f"and a final LayerNorm, got layers {sorted(kinds)}, norm {stack.norm!r}")
    first = encoder.layers[0] if len(encoder.layers) else decoder.layers[0]
    ane = TransformerANE(
        transformer.d_model, transformer.nhead, len(encoder.layers), len(decoder.layers),
        first.linear1.out_features, norm_first=first.norm_first, eps=encoder.norm.eps,
        bias=first.linear1.bias is not None, query_chunk_size=query_chunk_size)
    # Ported layers (ane_layers.porting checks the activation and copies every weight).
    ane.encoder_layers = nn.ModuleList(from_encoder_layer(layer, query_chunk_size=query_chunk_size)
                                       for layer in encoder.layers)
    ane.decoder_layers = nn.ModuleList(from_decoder_layer(layer, query_chunk_size=query_chunk_size)
                                       for layer in decoder.layers)
    ane.encoder_norm = LayerNormANE.from_layer_norm(encoder.norm)
    ane.decoder_norm = LayerNormANE.from_layer_norm(decoder.norm)
    if transformer.training:
        warnings.warn("from_torch_transformer: the transformer is in training mode; the ANE model is "
                      "returned in eval mode (dropout off). The input was not changed.",
                      TrainingModeWarning, stacklevel=2)
    reference = next(transformer.parameters())
    return ane.to(dtype=reference.dtype, device=reference.device).eval()
