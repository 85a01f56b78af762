"""fp16 in torch: the residual stream's peak per layer is measured; a model whose stream leaves fp16's
range is named with its layer, and no garbage PSNR is reported for it."""

from __future__ import annotations

import torch
from decoder_strategies import DecoderSpec, hf_causal_lm

import ane_models
from verification.equivalence.residual_stream import FP16_MAX, fp16_residual_check

SPEC = DecoderSpec(
    family="llama",
    layers=3,
    hidden=64,
    heads=4,
    kv_heads=2,
    head_dim=16,
    intermediate=96,
    vocab=128,
    max_positions=64,
    rope_theta=10000.0,
    rope_scaling=None,
    eps=1e-6,
    tied=False,
    bias=False,
    seed=11,
)


def _prompt():
    return torch.randint(0, SPEC.vocab, (1, 12), generator=torch.Generator().manual_seed(5))


def test_a_model_within_fp16_range_reports_peaks_and_its_fp16_psnr():
    hf = hf_causal_lm(SPEC)
    ids = _prompt()
    with torch.no_grad():
        reference = hf(ids).logits
    check = fp16_residual_check(ane_models.optimize(hf, cache_capacity=16), ids, reference)
    names = [name for name, _ in check.peaks]
    assert names == ["embeddings", "layer 0", "layer 1", "layer 2"], names
    assert check.overflow_layer is None and check.peak[1] < FP16_MAX, check.describe()
    assert check.fp16_psnr_db is not None and check.fp16_psnr_db > 40, check.describe()
    print(check.describe())


def test_a_model_whose_residual_stream_leaves_fp16_range_is_named_with_its_layer():
    hf = hf_causal_lm(SPEC)
    with torch.no_grad():  # Gemma-like: layer 1's MLP writes values far beyond 65504 into the stream
        hf.model.layers[1].mlp.down_proj.weight.mul_(3e4)
    ids = _prompt()
    with torch.no_grad():
        reference = hf(ids).logits
    check = fp16_residual_check(ane_models.optimize(hf, cache_capacity=16), ids, reference)
    assert check.overflow_layer == "layer 1", check.describe()
    assert check.fp16_psnr_db is None
    message = check.describe()
    assert "exceeds fp16's range (65504) at layer 1" in message and "no fp16 PSNR" in message, message
    peaks = dict(check.peaks)
    assert peaks["layer 0"] < FP16_MAX < peaks["layer 1"], peaks
