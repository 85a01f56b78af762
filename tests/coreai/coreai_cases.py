"""The models the Core AI tests convert: every ``ane_models`` family and head, the reference
encoder-decoder Transformer, query-chunked models, and the transformers baselines, all tiny and seeded.

They are the Core ML tests' models (``tests/coreml/tiny_models.py``) with one change: every LayerNorm's
weight and bias is drawn away from its default (1, 0) first, because a trivial affine hides ordering bugs
(bias before or after the scale) and changes which ops the converters fuse.
"""

from __future__ import annotations

import copy
import functools
import warnings

import tiny_models
import torch
from tiny_models import BATCH, CHUNK, FAMILIES, HEADS, REFERENCE, model_inputs, reference_inputs

import ane_models
from verification.coreml import BaselineForConversion

BASELINE_HEADS = ("Model", "ForSequenceClassification")


def randomize_norms(model: torch.nn.Module, seed: int) -> torch.nn.Module:
    """``model`` with every LayerNorm's weight drawn from U(0.5, 1.5) and bias from N(0, 0.2), seeded."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.LayerNorm) and module.elementwise_affine:
                module.weight.copy_(0.5 + torch.rand(module.weight.shape, generator=generator))
                if module.bias is not None:
                    module.bias.copy_(0.2 * torch.randn(module.bias.shape, generator=generator))
    return model


@functools.cache
def source_model(family: str, head: str) -> torch.nn.Module:
    """The transformers model (eager attention) with randomized norms; a copy: tiny_models caches its own."""
    return randomize_norms(copy.deepcopy(tiny_models.hf_model(family, head)), sum(map(ord, family + head)))


@functools.cache
def ane_model(family: str, head: str, query_chunk_size: int | None = None) -> torch.nn.Module:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return ane_models.optimize(source_model(family, head), query_chunk_size=query_chunk_size)


@functools.cache
def reference_source() -> torch.nn.Transformer:
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
    return randomize_norms(baseline, 11)


@functools.cache
def reference_ane(query_chunk_size: int | None = None) -> torch.nn.Module:
    return ane_models.reference.from_torch_transformer(reference_source(), query_chunk_size=query_chunk_size)


FAMILY_MODELS = [f"{family}-{head}" for family in FAMILIES for head in HEADS]
EXTRA_MODELS = [
    "reference-Transformer",
    "reference-Transformer-query_chunked",
    "distilbert-Model-query_chunked",
]
BASELINE_MODELS = [f"baseline-{family}-{head}" for family in FAMILIES for head in BASELINE_HEADS]
ALL_MODELS = FAMILY_MODELS + EXTRA_MODELS + BASELINE_MODELS
# One model per family and kind: the ones the fp16 tests and the cross-check run by default
# (the interpreter's fp16 path is the slow one; every head in fp16 is behind the slow marker).
REPRESENTATIVE_MODELS = [f"{family}-Model" for family in FAMILIES] + [
    "reference-Transformer",
    "baseline-distilbert-Model",
]


def model_under_test(model_id: str) -> tuple[torch.nn.Module, tuple[torch.Tensor, ...]]:
    """The torch model of ``model_id`` (an id of ``ALL_MODELS``) and its example inputs."""
    if model_id.startswith("reference-Transformer"):
        return reference_ane(CHUNK if model_id.endswith("query_chunked") else None), reference_inputs()
    if model_id == "distilbert-Model-query_chunked":
        return ane_model("distilbert", "Model", CHUNK), model_inputs("distilbert", "Model")
    if model_id.startswith("baseline-"):
        _, family, head = model_id.split("-")
        return baseline(family, head), model_inputs(family, head)
    family, head = model_id.split("-")
    return ane_model(family, head), model_inputs(family, head)


@functools.cache
def baseline(family: str, head: str) -> torch.nn.Module:
    return BaselineForConversion(source_model(family, head)).eval()


def torch_outputs(model: torch.nn.Module, inputs) -> tuple[torch.Tensor, ...]:
    with torch.no_grad():
        expected = model(*inputs)
    return (expected,) if isinstance(expected, torch.Tensor) else tuple(expected)


def source_outputs(model_id: str) -> tuple[torch.Tensor, ...] | None:
    """What the source model (transformers, torch.nn.Transformer) computes for the re-authored ``model_id``,
    in the ANE model's output layout; None for the baselines (they are their own source)."""
    if model_id.startswith("baseline-"):
        return None
    if model_id.startswith("reference-Transformer"):
        src, tgt, src_mask, tgt_mask, memory_mask = reference_inputs()
        to_bsc = lambda x: x.squeeze(2).transpose(1, 2)  # noqa: E731 (B, C, 1, S) -> (B, S, C)
        with torch.no_grad():
            out = reference_source()(
                to_bsc(src),
                to_bsc(tgt),
                tgt_mask=torch.nn.Transformer.generate_square_subsequent_mask(REFERENCE["target"]),
                src_key_padding_mask=src_mask.bool(),
                tgt_key_padding_mask=tgt_mask.bool(),
                memory_key_padding_mask=memory_mask.bool(),
            )
        return (out.transpose(1, 2).unsqueeze(2),)
    family, head = model_id.split("-")[:2]
    names = ("input_ids", "attention_mask", "token_type_ids")
    kwargs = {name: x.long() for name, x in zip(names, model_inputs(family, head), strict=False)}
    with torch.no_grad():
        expected = tuple(source_model(family, head)(**kwargs, return_dict=False))
    if head == "Model":  # hidden states to (B, C, 1, S); BERT and RoBERTa add the pooled output
        return (expected[0].transpose(1, 2).unsqueeze(2), *expected[1:])
    return expected


__all__ = ["BATCH", "FAMILIES", "HEADS"]
