"""Plain transformers models wrapped for conversion with the same calling convention as ``ane_models``.

The wrapper takes positional ``(input_ids, attention_mask)`` (plus ``token_type_ids`` for BERT and
RoBERTa) and returns transformers' outputs with ``return_dict=False``. BERT and DistilBERT read their
position ids from a buffer slice whose length becomes an ``aten::Int`` that coremltools 9.0 fails on
under torch 2.13 ("only 0-dimensional arrays can be converted"): the wrapper passes them explicitly.
RoBERTa (and XLM-RoBERTa, the same architecture) derives positions from the ids and needs nothing.
"""

from __future__ import annotations

import inspect

import torch
from torch import nn

FAMILIES_WITH_TOKEN_TYPES = ("bert", "roberta", "xlm-roberta")
FAMILIES_WITH_POSITION_BUFFER = ("bert", "distilbert")


class BaselineForConversion(nn.Module):
    def __init__(self, model: nn.Module):
        super().__init__()
        model_type = getattr(getattr(model, "config", None), "model_type", None)
        if model_type not in ("bert", "distilbert", "roberta", "xlm-roberta"):
            raise ValueError(
                f"BaselineForConversion: expected a transformers DistilBERT, BERT, RoBERTa or XLM-RoBERTa "
                f"model, got "
                f"{type(model).__name__} (model_type {model_type!r})"
            )
        self.model = model.eval()
        self.model_type = model_type
        # transformers 4.x (4.46 to 4.57): DistilBERT's forward takes no position_ids (its embeddings
        # always slice the buffer); transformers 5 takes them. Pass them only where forward accepts them.
        self.pass_positions = (
            model_type in FAMILIES_WITH_POSITION_BUFFER
            and "position_ids" in inspect.signature(model.forward).parameters
        )

    def forward(self, input_ids, attention_mask, token_type_ids=None):
        kwargs = {"input_ids": input_ids, "attention_mask": attention_mask, "return_dict": False}
        if self.model_type in FAMILIES_WITH_TOKEN_TYPES:
            kwargs["token_type_ids"] = (
                token_type_ids if token_type_ids is not None else torch.zeros_like(input_ids)
            )
        if self.pass_positions:
            # one row per sequence: a multiple-choice head's (B, choices, S) as its encoder sees it
            # (DistilBertForMultipleChoice flattens the ids but passes position_ids on as given)
            kwargs["position_ids"] = torch.arange(input_ids.shape[-1], device=input_ids.device).expand_as(
                input_ids.flatten(0, -2)
            )
        return self.model(**kwargs)


def example_inputs(model_type: str, batch_size: int, seq_len: int, vocab_size: int, seed: int = 0):
    """Token ids, an all-ones mask (and zero token types where the family has them), as int32."""
    generator = torch.Generator().manual_seed(seed)
    ids = torch.randint(3, vocab_size, (batch_size, seq_len), generator=generator, dtype=torch.int32)
    mask = torch.ones(batch_size, seq_len, dtype=torch.int32)
    if model_type in FAMILIES_WITH_TOKEN_TYPES:
        return ids, mask, torch.zeros_like(ids)
    return ids, mask
