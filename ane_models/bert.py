"""BERT in the (B, C, 1, S) layout, with its pooler and every task head of transformers.

Architecture (same math as transformers' BERT, encoder only): word + position (0..S-1) + token type
embeddings, LayerNorm, post-norm encoder layers, and a pooler (dense + tanh on the first token) for
the base model, sequence classification and multiple choice. Heads compute with 1x1 convolutions in
(B, C, 1, S); only their final outputs go back to the transformers shapes.

Call every model as ``model(input_ids, attention_mask, token_type_ids)`` (the last two optional);
it returns a tuple whose first element has the meaning of the transformers model's first output
with ``return_dict=False``. RoBERTa (``ane_models.roberta``) reuses these classes.
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
    finish,
    load_checkpoint,
    padding_bias,
    resolve_layer_norm_eps,
)
from .layout import LayoutAware, choice_logits, first_of, first_tokens

# Hugging Face key -> ANE key, applied in order to every key of the checkpoint (RoBERTa adds its own).
RENAMES = (
    (r"^bert\.", "backbone."),
    (r"\bembeddings\.LayerNorm\.", "embeddings.norm."),
    (r"\bencoder\.layer\.(\d+)\.", r"layers.\1."),
    (r"\.attention\.self\.query\.", ".self_attn.q_proj."),
    (r"\.attention\.self\.key\.", ".self_attn.k_proj."),
    (r"\.attention\.self\.value\.", ".self_attn.v_proj."),
    (r"\.attention\.output\.dense\.", ".self_attn.out_proj."),
    (r"\.attention\.output\.LayerNorm\.", ".norm1."),
    (r"\.intermediate\.dense\.", ".ffn.fc1."),
    (r"(layers\.\d+)\.output\.dense\.", r"\1.ffn.fc2."),
    (r"(layers\.\d+)\.output\.LayerNorm\.", r"\1.norm2."),
    (r"\bpooler\.dense\.", "pooler."),
    (r"^cls\.predictions\.transform\.dense\.", "transform_dense."),
    (r"^cls\.predictions\.transform\.LayerNorm\.", "transform_norm."),
    (r"^cls\.predictions\.decoder\.", "decoder."),
)
IGNORED = (
    r"\bembeddings\.(position_ids|token_type_ids)$",  # non-persistent buffers, recomputed here
    r"^cls\.predictions\.bias$",  # alias of the decoder bias (tied): the decoder's own bias is what runs
)

# Options of the config whose other values change the architecture: refused, not silently ignored.
REQUIREMENTS = [
    ("is_decoder", False, (False,)),
    ("add_cross_attention", False, (False,)),
    ("position_embedding_type", "absolute", ("absolute",)),
    ("hidden_act", "gelu", tuple(HF_ACTIVATIONS)),
]


class BertModelANE(LayoutAware, nn.Module):
    """BERT encoder (+ pooler). Returns ``(last_hidden_state, pooled_output)``: the hidden state in
    (B, C, 1, S) (``ane_models.hidden_states_to_bsc`` gives (B, S, C)), pooled (B, C); without a
    pooler, ``(last_hidden_state,)``."""

    def __init__(self, config, *, layer_norm_eps: float, add_pooling_layer: bool = True,
                 query_chunk_size: int | None = None):
        super().__init__()
        self.embeddings = EmbeddingsANE(config.vocab_size, config.hidden_size, config.max_position_embeddings,
                                        type_vocab_size=config.type_vocab_size,
                                        pad_token_id=config.pad_token_id, eps=layer_norm_eps)
        self.layers = nn.ModuleList(
            TransformerEncoderLayerANE(config.hidden_size, config.num_attention_heads,
                                       config.intermediate_size, activation=HF_ACTIVATIONS[config.hidden_act],
                                       norm_first=False, eps=layer_norm_eps,
                                       query_chunk_size=query_chunk_size)
            for _ in range(config.num_hidden_layers)
        )
        self.pooler = LinearANE(config.hidden_size, config.hidden_size) if add_pooling_layer else None

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                token_type_ids: torch.Tensor | None = None):
        x, pooled = self.hidden_and_pooled(input_ids, attention_mask, token_type_ids)
        return (x,) if pooled is None else (x, first_of(pooled, self.ane_layout))

    def hidden_and_pooled(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                          token_type_ids: torch.Tensor | None = None):
        """(last hidden state (B, C, 1, S), pooler output still in (B, C, 1, n) or None): what the heads
        read (``ane_models.layout.first_tokens`` says n)."""
        check_rank(input_ids, 2, "input_ids", "(B, S)")
        # once for all layers, in the model's dtype: (B, S, 1, 1), or (B, S, 1, S) in the coreai layout
        bias = padding_bias(attention_mask, input_ids, dtype=self.embeddings.word_embeddings.weight.dtype,
                            layout=self.ane_layout)
        x = self.embeddings(input_ids, token_type_ids)  # RoBERTa's: positions counted from the ids
        for layer in self.layers:
            x = layer(x, bias)
        if self.pooler is None:
            return x, None
        return x, torch.tanh(self.pooler(first_tokens(x, self.ane_layout)))


class BertForMaskedLMANE(nn.Module):
    """Returns ``(logits,)`` of shape (B, S, vocab_size)."""

    backbone_class = BertModelANE

    def __init__(self, config, *, layer_norm_eps: float, query_chunk_size: int | None = None):
        super().__init__()
        self.backbone = self.backbone_class(config, layer_norm_eps=layer_norm_eps, add_pooling_layer=False,
                                            query_chunk_size=query_chunk_size)
        self.transform_dense = LinearANE(config.hidden_size, config.hidden_size)
        self.activation = make_activation(HF_ACTIVATIONS[config.hidden_act])
        self.transform_norm = LayerNormANE(config.hidden_size, eps=layer_norm_eps)
        self.decoder = LinearANE(config.hidden_size, config.vocab_size)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                token_type_ids: torch.Tensor | None = None):
        (x,) = self.backbone(input_ids, attention_mask, token_type_ids)
        x = self.transform_norm(self.activation(self.transform_dense(x)))
        # Logits as a 1x1 conv in (B, V, 1, S); one layout change at the very end.
        return (from_bc1s(self.decoder(x)),)


class BertForSequenceClassificationANE(nn.Module):
    """Returns ``(logits,)`` of shape (B, num_labels), from the pooled output."""

    backbone_class = BertModelANE

    def __init__(self, config, *, layer_norm_eps: float, query_chunk_size: int | None = None):
        super().__init__()
        self.backbone = self.backbone_class(config, layer_norm_eps=layer_norm_eps, add_pooling_layer=True,
                                            query_chunk_size=query_chunk_size)
        self.classifier = LinearANE(config.hidden_size, config.num_labels)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                token_type_ids: torch.Tensor | None = None):
        _, pooled = self.backbone.hidden_and_pooled(input_ids, attention_mask, token_type_ids)
        logits = self.classifier(pooled)  # (B, L, 1, n) through the 1x1 conv
        return (first_of(logits, self.backbone.ane_layout),)


class BertForQuestionAnsweringANE(nn.Module):
    """Returns ``(start_logits, end_logits)``, each (B, S)."""

    backbone_class = BertModelANE

    def __init__(self, config, *, layer_norm_eps: float, query_chunk_size: int | None = None):
        super().__init__()
        if config.num_labels != 2:
            raise ValueError(f"question answering: expected num_labels == 2 (start, end), "
                             f"got {config.num_labels}")
        self.backbone = self.backbone_class(config, layer_norm_eps=layer_norm_eps, add_pooling_layer=False,
                                            query_chunk_size=query_chunk_size)
        self.qa_outputs = LinearANE(config.hidden_size, 2)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                token_type_ids: torch.Tensor | None = None):
        (x,) = self.backbone(input_ids, attention_mask, token_type_ids)
        logits = self.qa_outputs(x)  # (B, 2, 1, S)
        return logits[:, 0, 0, :], logits[:, 1, 0, :]


class BertForTokenClassificationANE(nn.Module):
    """Returns ``(logits,)`` of shape (B, S, num_labels)."""

    backbone_class = BertModelANE

    def __init__(self, config, *, layer_norm_eps: float, query_chunk_size: int | None = None):
        super().__init__()
        self.backbone = self.backbone_class(config, layer_norm_eps=layer_norm_eps, add_pooling_layer=False,
                                            query_chunk_size=query_chunk_size)
        self.classifier = LinearANE(config.hidden_size, config.num_labels)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                token_type_ids: torch.Tensor | None = None):
        (x,) = self.backbone(input_ids, attention_mask, token_type_ids)
        return (from_bc1s(self.classifier(x)),)


class BertForMultipleChoiceANE(nn.Module):
    """Takes (B, num_choices, S) ids, mask and token types; returns ``(logits,)`` (B, num_choices),
    from the pooled output of each choice."""

    backbone_class = BertModelANE

    def __init__(self, config, *, layer_norm_eps: float, query_chunk_size: int | None = None):
        super().__init__()
        self.backbone = self.backbone_class(config, layer_norm_eps=layer_norm_eps, add_pooling_layer=True,
                                            query_chunk_size=query_chunk_size)
        self.classifier = LinearANE(config.hidden_size, 1)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                token_type_ids: torch.Tensor | None = None):
        check_rank(input_ids, 3, "input_ids", "(B, num_choices, S)")
        if attention_mask is not None:
            check_same_shape(attention_mask, input_ids, "attention_mask")
            attention_mask = attention_mask.flatten(0, 1)
        if token_type_ids is not None:
            check_same_shape(token_type_ids, input_ids, "token_type_ids")
            token_type_ids = token_type_ids.flatten(0, 1)
        # Every choice is one sequence of a (B * num_choices, S) batch.
        _, pooled = self.backbone.hidden_and_pooled(input_ids.flatten(0, 1), attention_mask, token_type_ids)
        logits = self.classifier(pooled)  # (B * num_choices, 1, 1, n)
        return (choice_logits(logits, input_ids, self.backbone.ane_layout),)


HEADS = {
    "BertModel": BertModelANE,
    "BertForMaskedLM": BertForMaskedLMANE,
    "BertForSequenceClassification": BertForSequenceClassificationANE,
    "BertForQuestionAnswering": BertForQuestionAnsweringANE,
    "BertForTokenClassification": BertForTokenClassificationANE,
    "BertForMultipleChoice": BertForMultipleChoiceANE,
}


def from_hf(model: nn.Module, architecture: str, *, fp16_safe_eps: bool | float = True,
            query_chunk_size: int | None = None) -> nn.Module:
    """The ANE equivalent of a transformers BERT ``model`` (class name ``architecture``)."""
    config: Any = model.config  # a transformers config: its fields differ per family
    return build(model, architecture, "bert", HEADS, RENAMES, IGNORED, fp16_safe_eps=fp16_safe_eps,
                 query_chunk_size=query_chunk_size, max_sequence_length=config.max_position_embeddings)


def build(model, architecture, model_type, heads, renames, ignored, *, fp16_safe_eps, query_chunk_size,
          max_sequence_length):
    """Check the config, build the ANE class of ``architecture``, load the weights (BERT and RoBERTa)."""
    config = model.config
    check_config(config, REQUIREMENTS)
    eps = resolve_layer_norm_eps(config.layer_norm_eps, fp16_safe_eps)
    options = dict(layer_norm_eps=eps, query_chunk_size=query_chunk_size)
    cls = heads[architecture]
    if issubclass(cls, BertModelANE):  # the base model: a pooler only if the checkpoint has one
        options["add_pooling_layer"] = getattr(model, "pooler", None) is not None
    ane = cls(config, **options)
    load_checkpoint(ane, model.state_dict(), renames, ignore=ignored)
    return finish(ane, model, ANEConfig(
        model_type=model_type, architecture=architecture, vocab_size=config.vocab_size,
        hidden_size=config.hidden_size, num_layers=config.num_hidden_layers,
        num_heads=config.num_attention_heads, max_sequence_length=max_sequence_length,
        layer_norm_eps=eps, checkpoint_layer_norm_eps=config.layer_norm_eps,
        fp16_safe_eps=fp16_safe_eps is not False))
