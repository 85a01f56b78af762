"""A tiny seeded DistilBERT classifier whose weights are big enough to compress (coremltools skips
weights under 2048 elements), converted once per session at iOS18 in fp16."""

from __future__ import annotations

import warnings

import coremltools as ct
import pytest
import torch
import transformers

import ane_models
from verification.coreml import convert

SEQ, BATCH, PADDED_FROM = 16, 2, 11


def tiny_classifier() -> torch.nn.Module:
    config = transformers.DistilBertConfig(
        dim=64, n_heads=4, n_layers=2, hidden_dim=128, vocab_size=97, max_position_embeddings=40, num_labels=5
    )
    config._attn_implementation = "eager"
    config.initializer_range = 0.2  # wider than the default 0.02, so outputs are not near-constant
    torch.manual_seed(14)
    baseline = transformers.DistilBertForSequenceClassification(config).eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return ane_models.optimize(baseline)


def examples(count: int = 3) -> list[tuple]:
    """int32 ids and masks, batch 2, the second row right-padded."""
    generator = torch.Generator().manual_seed(3)
    found = []
    for _ in range(count):
        ids = torch.randint(3, 97, (BATCH, SEQ), generator=generator, dtype=torch.int32)
        mask = torch.ones((BATCH, SEQ), dtype=torch.int32)
        mask[1, PADDED_FROM:] = 0
        found.append((ids, mask))
    return found


@pytest.fixture(scope="session")
def tiny():
    """(torch model, examples, input names, converted MLModel)."""
    model = tiny_classifier()
    inputs = examples()
    mlmodel = convert(model, inputs[0], precision="fp16", minimum_deployment_target=ct.target.iOS18)
    return model, inputs, ["input_ids", "attention_mask"], mlmodel
