"""RoBERTa in the (B, C, 1, S) layout: BERT's encoder with RoBERTa's positions and heads.

Differences from BERT (``ane_models.bert``), all here:
- Position ids come from the ids, as in transformers: tokens other than the padding token are
  numbered padding_idx + 1, padding_idx + 2, ... in order, padding tokens get padding_idx. So the
  longest sequence is max_position_embeddings - padding_idx - 1 tokens. They are counted in float
  (a cumsum of the non-padding flags) and the position rows picked by a one-hot matmul, not a gather
  on int32 ids: integer tensors and gathers run off the Neural Engine, and this one depends on the
  ids, so it cannot fold into a constant as BERT's arange does. Exact: counts up to 2048 are exact
  integers even in fp16, and a one-hot row times the table adds one row to zeros.
- The masked-LM head is dense + exact GELU + LayerNorm + decoder.
- Sequence classification uses its own head (dense + tanh + out_proj on the first token), not the
  pooler. Question answering, token classification and multiple choice are BERT's heads over the
  RoBERTa encoder (multiple choice uses the pooler, as transformers does).

XLM-RoBERTa (model_type ``xlm-roberta``) is this architecture with a larger vocabulary: transformers'
``XLMRoberta*`` classes are copies of the ``Roberta*`` ones, with the same module and state-dict names,
so every head here serves both (``XLM_HEADS``). XLM-RoBERTa-XL (``xlm-roberta-xl``) truly differs: it
normalizes before each sublayer (pre-LN) and after the last layer, so it is refused by name.

Call every model as ``model(input_ids, attention_mask, token_type_ids)`` (the last two optional).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ane_layers import EmbeddingsANE, LayerNormANE, LinearANE, from_bc1s, to_bc1s

from . import bert
from .layout import first_of, first_tokens

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


class RobertaEmbeddingsANE(EmbeddingsANE):
    """``EmbeddingsANE`` with RoBERTa's positions, counted from the ids inside the program."""

    def __init__(self, config, *, eps: float):
        super().__init__(config.vocab_size, config.hidden_size, config.max_position_embeddings,
                         type_vocab_size=config.type_vocab_size, pad_token_id=config.pad_token_id, eps=eps,
                         position_offset=config.pad_token_id + 1)
        self.padding_idx = config.pad_token_id

    def forward(self, input_ids: torch.Tensor, token_type_ids: torch.Tensor | None = None,
                position_ids: torch.Tensor | None = None) -> torch.Tensor:
        if position_ids is not None:  # given: the plain lookup (checked there)
            return super().forward(input_ids, token_type_ids, position_ids)
        self.check_inputs(input_ids, token_type_ids)
        table = self.position_embeddings.weight  # (max_positions, C)
        # Float counts, not an int32 cumsum; padding keeps padding_idx. In the model's dtype when it holds
        # every position exactly (fp16: integers up to 2048), so an fp16 program has no fp32 tensor.
        exact = table.dtype == torch.float32 or table.shape[0] <= 2048
        count_dtype = table.dtype if exact else torch.float32
        not_padding = (input_ids != self.padding_idx).to(count_dtype)
        positions = torch.cumsum(not_padding, dim=1) * not_padding + self.padding_idx  # (B, S)
        if self.row_gather:  # coreai layout: a row gather (Core AI's rules forbid the one-hot's last axis 1)
            position_rows = self.lookup(self.position_embeddings, positions.to(torch.int32))
        else:  # stay on the ANE: a one-hot matmul, not a gather
            rows = torch.arange(table.shape[0], dtype=count_dtype, device=input_ids.device)
            one_hot = (positions[:, :, None] == rows).to(table.dtype)  # (B, S, max_positions)
            position_rows = torch.matmul(one_hot, table)
        x = self.lookup(self.word_embeddings, input_ids) + position_rows
        if self.token_type_embeddings is not None:
            if token_type_ids is None:
                token_type_ids = torch.zeros_like(input_ids)
            x = x + self.lookup(self.token_type_embeddings, token_type_ids)
        # ANE principle 1: switch to (B, C, 1, S) once, right after the lookups.
        return self.norm(to_bc1s(x))


class RobertaModelANE(bert.BertModelANE):
    """RoBERTa encoder (+ pooler). Returns ``(last_hidden_state, pooled_output)`` like BERT: hidden
    state in (B, C, 1, S), pooled (B, C); without a pooler, ``(last_hidden_state,)``."""

    def __init__(self, config, *, layer_norm_eps: float, add_pooling_layer: bool = True,
                 query_chunk_size: int | None = None):
        super().__init__(config, layer_norm_eps=layer_norm_eps, add_pooling_layer=add_pooling_layer,
                         query_chunk_size=query_chunk_size)
        # Positions start after padding_idx: the length check accounts for the offset.
        self.embeddings = RobertaEmbeddingsANE(config, eps=layer_norm_eps)


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
        first = first_tokens(x, self.backbone.ane_layout)  # the <s> token: (B, C, 1, 1) in coreml
        return (first_of(self.out_proj(torch.tanh(self.dense(first))), self.backbone.ane_layout),)


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

XLM_HEADS = {name.replace("Roberta", "XLMRoberta", 1): cls for name, cls in HEADS.items()}
# Model types of the RoBERTa lineage whose architecture is not this one, with the difference.
DIFFERENT = {
    "xlm-roberta-xl": "XLM-RoBERTa-XL normalizes before each sublayer (pre-LN), RoBERTa after (post-LN)",
}


def from_hf(model: nn.Module, architecture: str, *, fp16_safe_eps: bool | float = True,
            query_chunk_size: int | None = None) -> nn.Module:
    """The ANE equivalent of a transformers RoBERTa or XLM-RoBERTa ``model`` (class name
    ``architecture``)."""
    config: Any = model.config  # a transformers config: its fields differ per family
    if not isinstance(config.pad_token_id, int):
        raise ValueError(
            f"RoBERTa: expected an integer config.pad_token_id (positions start after it), got "
            f"{config.pad_token_id!r}"
        )
    heads = XLM_HEADS if architecture in XLM_HEADS else HEADS
    return bert.build(model, architecture, config.model_type, heads, RENAMES, IGNORED,
                      fp16_safe_eps=fp16_safe_eps,
                      query_chunk_size=query_chunk_size,
                      max_sequence_length=config.max_position_embeddings - config.pad_token_id - 1)
