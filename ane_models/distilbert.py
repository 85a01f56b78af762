"""DistilBERT in the (B, C, 1, S) layout, with every task head of transformers.

Architecture (same math as transformers' DistilBERT): word + position embeddings, LayerNorm, then
post-norm encoder blocks (self-attention, add & norm, feed-forward, add & norm). No token types, no
pooler. The heads read the last hidden state (B, C, 1, S) and compute with 1x1 convolutions; only
their final outputs go back to the transformers shapes.

Call every model as ``model(input_ids, attention_mask)``; it returns a tuple whose first element has
the meaning of the transformers model's first output with ``return_dict=False``.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ane_layers import EmbeddingsANE, LayerNormANE, LinearANE, TransformerEncoderLayerANE, from_bc1s
from ane_layers.feed_forward import make_activation
from ane_layers.porting import HF_ACTIVATIONS

from .common import (
    ANEConfig,
    check_config,
    check_rank,
    check_same_shape,
    checkpoint_layer_norm_eps,
    finish,
    load_checkpoint,
    padding_bias,
    resolve_layer_norm_eps,
)
from .layout import LayoutAware, choice_logits, first_of, first_tokens

# Hugging Face key -> ANE key, applied in order to every key of the checkpoint.
RENAMES = (
    (r"^distilbert\.", "backbone."),
    (r"\bembeddings\.LayerNorm\.", "embeddings.norm."),
    (r"\btransformer\.layer\.(\d+)\.", r"layers.\1."),
    (r"\.attention\.q_lin\.", ".self_attn.q_proj."),
    (r"\.attention\.k_lin\.", ".self_attn.k_proj."),
    (r"\.attention\.v_lin\.", ".self_attn.v_proj."),
    (r"\.attention\.out_lin\.", ".self_attn.out_proj."),
    (r"\.sa_layer_norm\.", ".norm1."),
    (r"\.ffn\.lin1\.", ".ffn.fc1."),
    (r"\.ffn\.lin2\.", ".ffn.fc2."),
    (r"\.output_layer_norm\.", ".norm2."),
)
# Non-persistent buffers (older checkpoints may carry them): recomputed here, never loaded.
IGNORED = (r"\bembeddings\.position_ids$",)


class DistilBertModelANE(LayoutAware, nn.Module):
    """DistilBERT encoder. Returns ``(last_hidden_state,)`` with the hidden state in (B, C, 1, S)
    (use ``ane_models.hidden_states_to_bsc`` for transformers' (B, S, C))."""

    def __init__(self, config, *, layer_norm_eps: float, query_chunk_size: int | None = None):
        super().__init__()
        self.embeddings = EmbeddingsANE(config.vocab_size, config.dim, config.max_position_embeddings,
                                        pad_token_id=config.pad_token_id, eps=layer_norm_eps)
        self.layers = nn.ModuleList(
            TransformerEncoderLayerANE(config.dim, config.n_heads, config.hidden_dim,
                                       activation=HF_ACTIVATIONS[config.activation], norm_first=False,
                                       eps=layer_norm_eps, query_chunk_size=query_chunk_size)
            for _ in range(config.n_layers)
        )

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None):
        check_rank(input_ids, 2, "input_ids", "(B, S)")
        # once for all layers, in the model's dtype: (B, S, 1, 1), or (B, S, 1, S) in the coreai layout
        bias = padding_bias(attention_mask, input_ids, dtype=self.embeddings.word_embeddings.weight.dtype,
                            layout=self.ane_layout)
        x = self.embeddings(input_ids)
        for layer in self.layers:
            x = layer(x, bias)
        return (x,)


class DistilBertForMaskedLMANE(nn.Module):
    """Returns ``(logits,)`` of shape (B, S, vocab_size)."""

    def __init__(self, config, *, layer_norm_eps: float, query_chunk_size: int | None = None):
        super().__init__()
        self.backbone = DistilBertModelANE(config, layer_norm_eps=layer_norm_eps,
                                           query_chunk_size=query_chunk_size)
        self.vocab_transform = LinearANE(config.dim, config.dim)
        self.activation = make_activation(HF_ACTIVATIONS[config.activation])
        self.vocab_layer_norm = LayerNormANE(config.dim, eps=layer_norm_eps)
        self.vocab_projector = LinearANE(config.dim, config.vocab_size)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None):
        (x,) = self.backbone(input_ids, attention_mask)
        x = self.vocab_layer_norm(self.activation(self.vocab_transform(x)))
        # Logits as a 1x1 conv in (B, V, 1, S); one layout change at the very end.
        return (from_bc1s(self.vocab_projector(x)),)


class DistilBertForSequenceClassificationANE(nn.Module):
    """Returns ``(logits,)`` of shape (B, num_labels), from the first token."""

    def __init__(self, config, *, layer_norm_eps: float, query_chunk_size: int | None = None):
        super().__init__()
        self.backbone = DistilBertModelANE(config, layer_norm_eps=layer_norm_eps,
                                           query_chunk_size=query_chunk_size)
        self.pre_classifier = LinearANE(config.dim, config.dim)
        self.classifier = LinearANE(config.dim, config.num_labels)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None):
        (x,) = self.backbone(input_ids, attention_mask)
        first = first_tokens(x, self.backbone.ane_layout)  # (B, C, 1, 1) (coreml): the first token
        logits = self.classifier(torch.relu(self.pre_classifier(first)))
        return (first_of(logits, self.backbone.ane_layout),)


class DistilBertForQuestionAnsweringANE(nn.Module):
    """Returns ``(start_logits, end_logits)``, each (B, S)."""

    def __init__(self, config, *, layer_norm_eps: float, query_chunk_size: int | None = None):
        super().__init__()
        if config.num_labels != 2:
            raise ValueError(f"question answering: expected num_labels == 2 (start, end), "
                             f"got {config.num_labels}")
        self.backbone = DistilBertModelANE(config, layer_norm_eps=layer_norm_eps,
                                           query_chunk_size=query_chunk_size)
        self.qa_outputs = LinearANE(config.dim, 2)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None):
        (x,) = self.backbone(input_ids, attention_mask)
        logits = self.qa_outputs(x)  # (B, 2, 1, S)
        return logits[:, 0, 0, :], logits[:, 1, 0, :]


class DistilBertForTokenClassificationANE(nn.Module):
    """Returns ``(logits,)`` of shape (B, S, num_labels)."""

    def __init__(self, config, *, layer_norm_eps: float, query_chunk_size: int | None = None):
        super().__init__()
        self.backbone = DistilBertModelANE(config, layer_norm_eps=layer_norm_eps,
                                           query_chunk_size=query_chunk_size)
        self.classifier = LinearANE(config.dim, config.num_labels)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None):
        (x,) = self.backbone(input_ids, attention_mask)
        return (from_bc1s(self.classifier(x)),)


class DistilBertForMultipleChoiceANE(nn.Module):
    """Takes (B, num_choices, S) ids and mask; returns ``(logits,)`` of shape (B, num_choices)."""

    def __init__(self, config, *, layer_norm_eps: float, query_chunk_size: int | None = None):
        super().__init__()
        self.backbone = DistilBertModelANE(config, layer_norm_eps=layer_norm_eps,
                                           query_chunk_size=query_chunk_size)
        self.pre_classifier = LinearANE(config.dim, config.dim)
        self.classifier = LinearANE(config.dim, 1)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None):
        check_rank(input_ids, 3, "input_ids", "(B, num_choices, S)")
        if attention_mask is not None:
            check_same_shape(attention_mask, input_ids, "attention_mask")
            attention_mask = attention_mask.flatten(0, 1)
        (x,) = self.backbone(input_ids.flatten(0, 1), attention_mask)  # (B * num_choices, S)
        first = first_tokens(x, self.backbone.ane_layout)
        logits = self.classifier(torch.relu(self.pre_classifier(first)))  # (B * choices, 1, 1, 1)
        return (choice_logits(logits, input_ids, self.backbone.ane_layout),)


HEADS = {
    "DistilBertModel": DistilBertModelANE,
    "DistilBertForMaskedLM": DistilBertForMaskedLMANE,
    "DistilBertForSequenceClassification": DistilBertForSequenceClassificationANE,
    "DistilBertForQuestionAnswering": DistilBertForQuestionAnsweringANE,
    "DistilBertForTokenClassification": DistilBertForTokenClassificationANE,
    "DistilBertForMultipleChoice": DistilBertForMultipleChoiceANE,
}


def from_hf(model: nn.Module, architecture: str, *, fp16_safe_eps: bool | float = True,
            query_chunk_size: int | None = None) -> nn.Module:
    """The ANE equivalent of a transformers DistilBERT ``model`` (class name ``architecture``)."""
    config: Any = model.config  # a transformers config: its fields differ per family
    check_config(config, [("activation", "gelu", tuple(HF_ACTIVATIONS))])
    checkpoint_eps = checkpoint_layer_norm_eps(model)  # DistilBERT's 1e-12 is fixed, not in the config
    eps = resolve_layer_norm_eps(checkpoint_eps, fp16_safe_eps)
    ane = HEADS[architecture](config, layer_norm_eps=eps, query_chunk_size=query_chunk_size)
    load_checkpoint(ane, model.state_dict(), RENAMES, ignore=IGNORED)
    return finish(ane, model, ANEConfig(
        model_type="distilbert", architecture=architecture, vocab_size=config.vocab_size,
        hidden_size=config.dim, num_layers=config.n_layers, num_heads=config.n_heads,
        max_sequence_length=config.max_position_embeddings, layer_norm_eps=eps,
        checkpoint_layer_norm_eps=checkpoint_eps, fp16_safe_eps=fp16_safe_eps is not False))
