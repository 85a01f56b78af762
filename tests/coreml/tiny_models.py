"""Tiny seeded models of every family and head, and their inputs, shared by the Core ML tests."""

from __future__ import annotations

import functools
import warnings

import torch
import transformers

import ane_models

FAMILIES = {
    "distilbert": dict(
        config=lambda: transformers.DistilBertConfig(
            dim=32, n_heads=4, n_layers=2, hidden_dim=48, vocab_size=97, max_position_embeddings=40
        ),
        prefix="DistilBert",
    ),
    "bert": dict(
        config=lambda: transformers.BertConfig(
            hidden_size=32,
            num_attention_heads=4,
            num_hidden_layers=2,
            intermediate_size=48,
            vocab_size=97,
            max_position_embeddings=40,
            type_vocab_size=2,
        ),
        prefix="Bert",
    ),
    "roberta": dict(
        config=lambda: transformers.RobertaConfig(
            hidden_size=32,
            num_attention_heads=4,
            num_hidden_layers=2,
            intermediate_size=48,
            vocab_size=97,
            max_position_embeddings=40,
            type_vocab_size=1,
            pad_token_id=1,
        ),
        prefix="Roberta",
    ),
}
HEADS = (
    "Model",
    "ForMaskedLM",
    "ForSequenceClassification",
    "ForQuestionAnswering",
    "ForTokenClassification",
    "ForMultipleChoice",
)
BATCH, CHOICES, SEQ, PADDED_FROM = 2, 3, 16, 11


@functools.cache
def hf_model(family: str, head: str) -> torch.nn.Module:
    config = FAMILIES[family]["config"]()
    config.num_labels = 2 if head == "ForQuestionAnswering" else 3
    config._attn_implementation = "eager"
    torch.manual_seed(sum(map(ord, family + head)))
    # transformers' default init (std 0.02) makes near-constant outputs; widen it so parity means something
    config.initializer_range = 0.2
    return getattr(transformers, FAMILIES[family]["prefix"] + head)(config).eval()


@functools.cache
def ane_model(family: str, head: str) -> torch.nn.Module:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return ane_models.optimize(hf_model(family, head))


def model_inputs(family: str, head: str) -> tuple[torch.Tensor, ...]:
    """int32 ids with the second row right-padded, an HF mask, and token types for BERT and RoBERTa."""
    shape = (BATCH, CHOICES, SEQ) if head == "ForMultipleChoice" else (BATCH, SEQ)
    generator = torch.Generator().manual_seed(7)
    ids = torch.randint(3, 97, shape, generator=generator, dtype=torch.int32)
    mask = torch.ones(shape, dtype=torch.int32)
    mask[1, ..., PADDED_FROM:] = 0
    if family == "distilbert":
        return ids, mask
    return ids, mask, torch.zeros_like(ids)


def input_dict(mlmodel, inputs) -> dict:
    names = [d.name for d in mlmodel.get_spec().description.input]
    return {name: x.numpy() for name, x in zip(names, inputs, strict=True)}


def output_names(mlmodel) -> list[str]:
    return [d.name for d in mlmodel.get_spec().description.output]
