"""Tiny seeded models of every family and head, and their inputs, shared by the Core ML tests.

Models are named by id: "family-head" for the ``ane_models`` of every transformers family and head, plus
the reference encoder-decoder ``TransformerANE`` and query-chunked models (``EXTRA_MODELS``)."""

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


# The reference Transformer: d_model 32, 4 heads, 2 + 2 layers, source 12 and target 10 long (neither a
# multiple of the chunk size), batch 2 with padding in the second row of both.
REFERENCE = dict(d_model=32, nhead=4, layers=2, feedforward=48, source=12, target=10)
CHUNK = 4  # query_chunk_size of the chunked models: SEQ 16 -> 4 chunks, the reference's 12 / 10 -> 3


@functools.cache
def reference_transformer(query_chunk_size: int | None = None) -> torch.nn.Module:
    torch.manual_seed(11)
    baseline = torch.nn.Transformer(
        REFERENCE["d_model"],
        REFERENCE["nhead"],
        REFERENCE["layers"],
        REFERENCE["layers"],
        REFERENCE["feedforward"],
        dropout=0.0,
        batch_first=True,
    ).eval()
    return ane_models.reference.from_torch_transformer(baseline, query_chunk_size=query_chunk_size)


def reference_inputs() -> tuple[torch.Tensor, ...]:
    """src, tgt in (B, C, 1, S); int32 key-padding masks (1 = padding) for source, target and memory."""
    generator = torch.Generator().manual_seed(5)
    src = torch.randn(BATCH, REFERENCE["d_model"], 1, REFERENCE["source"], generator=generator)
    tgt = torch.randn(BATCH, REFERENCE["d_model"], 1, REFERENCE["target"], generator=generator)
    src_mask = torch.zeros(BATCH, REFERENCE["source"], dtype=torch.int32)
    src_mask[1, 9:] = 1
    tgt_mask = torch.zeros(BATCH, REFERENCE["target"], dtype=torch.int32)
    tgt_mask[1, 7:] = 1
    return src, tgt, src_mask, tgt_mask, src_mask.clone()


@functools.cache
def chunked_distilbert() -> torch.nn.Module:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return ane_models.optimize(hf_model("distilbert", "Model"), query_chunk_size=CHUNK)


EXTRA_MODELS = {
    "reference-Transformer": (lambda: reference_transformer(), reference_inputs),
    "reference-Transformer-query_chunked": (lambda: reference_transformer(CHUNK), reference_inputs),
    "distilbert-Model-query_chunked": (chunked_distilbert, lambda: model_inputs("distilbert", "Model")),
}
FAMILY_MODELS = [f"{family}-{head}" for family in FAMILIES for head in HEADS]
ALL_MODELS = FAMILY_MODELS + list(EXTRA_MODELS)


def model_under_test(model_id: str) -> tuple[torch.nn.Module, tuple[torch.Tensor, ...]]:
    """The torch model of ``model_id`` (an id of ``ALL_MODELS``) and its example inputs."""
    if model_id in EXTRA_MODELS:
        build, inputs = EXTRA_MODELS[model_id]
        return build(), inputs()
    family, head = model_id.split("-")
    return ane_model(family, head), model_inputs(family, head)


def input_dict(mlmodel, inputs) -> dict:
    names = [d.name for d in mlmodel.get_spec().description.input]
    return {name: x.numpy() for name, x in zip(names, inputs, strict=True)}


def output_names(mlmodel) -> list[str]:
    return [d.name for d in mlmodel.get_spec().description.output]
