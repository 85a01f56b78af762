"""RoBERTa in the (B, C, 1, S) layout: BERT's encoder with RoBERTa's positions and heads.

Differences from BERT (``ane_models.bert``), all here:
- Position ids come from the ids, as in transformers: tokens other than the padding token are
  numbered padding_idx + 1, padding_idx + 2, ... in order, padding tokens get padding_idx. So the
  longest sequence is max_position_embeddings - padding_idx - 1 tokens.
- The masked-LM head is dense + exact GELU + LayerNorm + decoder.
- Sequence classification uses its own head (dense + tanh + out_proj on the first token), not the
  pooler. Question answering, token classification and multiple choice are BERT's heads over the
  RoBERTa encoder (multiple choice uses the pooler, as transformers does).

Call every model as ``model(input_ids, attention_mask, token_type_ids)`` (the last two optional).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ane_layers import EmbeddingsANE, LayerNormANE, LinearANE, from_bc1s

from . import bert
from .common import check_rank, padding_bias

RENAMES = (
    (r"^roberta\.", "backbone."),
    *bert.RENAMES[1:],  # the encoder is BERT's
    (r"^lm_head\.dense\.", "lm_dense."),
    (r"^lm_head\.layer_norm\.", "lm_norm."),
    (r"^lm_head\.decoder\.", "decoder."),
    (r"^classifier\.dense\.", "dense."),
    (r"^classifier\.out_proj\.", "out_proj."),
)
IGNORED = (
    r"\bembeddings\.(position_ids|token_type_ids)$",  # non-persistent buffers, recomputed here
    r"^lm_head\.bias$",  # alias of the decoder bias (tied): the decoder's own bias is what runs
)


class RobertaModelANE(bert.BertModelANE):
    """RoBERTa encoder (+ pooler). Returns ``(last_hidden_state, pooled_output)`` like BERT: hidden
    state in (B, C, 1, S), pooled (B, C); without a pooler, ``(last_hidden_state,)``."""

    def __init__(self, config, *, layer_norm_eps: float, add_pooling_layer: bool = True,
                 query_chunk_size: int | None = None):
        super().__init__(config, layer_norm_eps=layer_norm_eps, add_pooling_layer=add_pooling_layer,
                         query_chunk_size=query_chunk_size)
        self.padding_idx = config.pad_token_id
        # Positions start after padding_idx: the length check accounts for the offset.
        self.embeddings = EmbeddingsANE(config.vocab_size, config.hidden_size, config.max_position_embeddings,
                                        type_vocab_size=config.type_vocab_size,
                                        pad_token_id=config.pad_token_id, eps=layer_norm_eps,
                                        position_offset=config.pad_token_id + 1)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                token_type_ids: torch.Tensor | None = None):
        check_rank(input_ids, 2, "input_ids", "(B, S)")
        bias = padding_bias(attention_mask, input_ids)  # once for all layers: (B, S, 1, 1), finite
        # Count non-padding tokens (a cumsum, which converts to Core ML); padding stays at padding_idx.
        not_padding = (input_ids != self.padding_idx).to(torch.int32)
        position_ids = torch.cumsum(not_padding, dim=1, dtype=torch.int32) * not_padding + self.padding_idx
        x = self.embeddings(input_ids, token_type_ids, position_ids)
        return self.encode(x, bias)


class RobertaForMaskedLMANE(nn.Module):
    """Returns ``(logits,)`` of shape (B, S, vocab_size)."""

    def __init__(self, config, *, layer_norm_eps: float, query_chunk_size: int | None = None):
        super().__init__()
        self.backbone = RobertaModelANE(config, layer_norm_eps=layer_norm_eps, add_pooling_layer=False,
                                        query_chunk_size=query_chunk_size)
        self.lm_dense = LinearANE(config.hidden_size, config.hidden_size)
        self.lm_norm = LayerNormANE(config.hidden_size, eps=layer_norm_eps)
        self.decoder = LinearANE(config.hidden_size, config.vocab_size)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                token_type_ids: torch.Tensor | None = None):
        (x,) = self.backbone(input_ids, attention_mask, token_type_ids)
        x = self.lm_norm(nn.functional.gelu(self.lm_dense(x)))  # exact GELU, whatever hidden_act says
        return (from_bc1s(self.decoder(x)),)


class RobertaForSequenceClassificationANE(nn.Module):
    """Returns ``(logits,)`` of shape (B, num_labels), from the first token (no pooler)."""

    def __init__(self, config, *, layer_norm_eps: float, query_chunk_size: int | None = None):
        super().__init__()
        self.backbone = RobertaModelANE(config, layer_norm_eps=layer_norm_eps, add_pooling_layer=False,
                                        query_chunk_size=query_chunk_size)
        self.dense = LinearANE(config.hidden_size, config.hidden_size)
        self.out_proj = LinearANE(config.hidden_size, config.num_labels)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                token_type_ids: torch.Tensor | None = None):
        (x,) = self.backbone(input_ids, attention_mask, token_type_ids)
        logits = self.out_proj(torch.tanh(self.dense(x[:, :, :, :1])))  # <s> token, (B, L, 1, 1)
        return (logits[:, :, 0, 0],)


class RobertaForQuestionAnsweringANE(bert.BertForQuestionAnsweringANE):
    """BERT's question-answering head over the RoBERTa encoder: ``(start_logits, end_logits)``."""

    backbone_class = RobertaModelANE


class RobertaForTokenClassificationANE(bert.BertForTokenClassificationANE):
    """BERT's token-classification head over the RoBERTa encoder: ``(logits,)`` (B, S, num_labels)."""

    backbone_class = RobertaModelANE


class RobertaForMultipleChoiceANE(bert.BertForMultipleChoiceANE):
    """BERT's multiple-choice head (on the pooler) over the RoBERTa encoder: ``(logits,)``."""

    backbone_class = RobertaModelANE


HEADS = {
    "RobertaModel": RobertaModelANE,
    "RobertaForMaskedLM": RobertaForMaskedLMANE,
    "RobertaForSequenceClassification": RobertaForSequenceClassificationANE,
    "RobertaForQuestionAnswering": RobertaForQuestionAnsweringANE,
    "RobertaForTokenClassification": RobertaForTokenClassificationANE,
    "RobertaForMultipleChoice": RobertaForMultipleChoiceANE,
}


def from_hf(model: nn.Module, architecture: str, *, fp16_safe_eps: bool | float = True,
            query_chunk_size: int | None = None) -> nn.Module:
    """The ANE equivalent of a transformers RoBERTa ``model`` (class name ``architecture``)."""
    config: Any = model.config  # a transformers config: its fields differ per family
    if not isinstance(config.pad_token_id, int):
        raise ValueError(
            f"RoBERTa: expected an integer config.pad_token_id (positions start after it), got "
            f"{config.pad_token_id!r}"
        )
    return bert.build(model, architecture, "roberta", HEADS, RENAMES, IGNORED, fp16_safe_eps=fp16_safe_eps,
                      query_chunk_size=query_chunk_size,
                      max_sequence_length=config.max_position_embeddings - config.pad_token_id - 1)
