"""Models for the default-run Mac tests: small enough to convert in seconds, large enough for the gates.

Two DistilBERT layers at DistilBERT-base's width (768, 12 heads, FFN 3072): each layer does the same work
as one of DistilBERT-base's six, so the ANE layout's advantage is there, without a full model's
conversion time. Seeded random weights, no download.
"""

from __future__ import annotations


def distilbert_packages(folder, *, seq_len: int, batch_size: int = 1, n_layers: int = 2):
    """(optimized .mlpackage, baseline .mlpackage, feed dict) of a seeded DistilBERT, saved in ``folder``."""
    import torch
    import transformers

    import ane_models
    from verification.coreml import BaselineForConversion, convert, save

    torch.manual_seed(0)
    config = transformers.DistilBertConfig(n_layers=n_layers, attn_implementation="eager")
    hf = transformers.DistilBertForSequenceClassification(config).eval()
    ids = torch.randint(3, config.vocab_size, (batch_size, seq_len), dtype=torch.int32)
    inputs = (ids, torch.ones_like(ids))
    optimized = save(convert(ane_models.optimize(hf), inputs), folder / "optimized.mlpackage")
    baseline = save(convert(BaselineForConversion(hf), inputs), folder / "baseline.mlpackage")
    feed = {"input_ids": ids.numpy(), "attention_mask": inputs[1].numpy()}
    return optimized, baseline, feed
