"""The seeded models the model properties draw are big enough for defects to show: with weights at
transformers' default init (0.02) a tiny BERT's attention is nearly uniform, so swapping two layers'
query weights leaves its outputs within a 90 dB gate; at the properties' lowest init (0.1) it must not."""

from __future__ import annotations

import pytest
import torch
import transformers
from model_strategies import TokenBatch, randomize_parameters, run_ane, run_hf

import ane_models
from ane_layers import from_bc1s
from verification.metrics import psnr
from verification.thresholds import MODEL_FP32_PSNR_DB

LOWEST_DRAWN_INIT = 0.1  # small_configs' default initializer_range draws 0.1..0.2


def _tiny_bert(init: float):
    config = transformers.BertConfig(
        hidden_size=32,
        num_attention_heads=2,
        num_hidden_layers=2,
        intermediate_size=64,
        vocab_size=50,
        max_position_embeddings=32,
        initializer_range=init,
        attn_implementation="eager",
    )
    torch.manual_seed(0)
    hf = randomize_parameters(transformers.BertModel(config).eval(), 1)
    return hf, ane_models.optimize(hf).eval()


def _hidden(model, batch):
    out = run_ane(model, batch)[0]
    return from_bc1s(out) if out.dim() == 4 else out


@pytest.mark.parametrize("init", [LOWEST_DRAWN_INIT, 0.2])
def test_swapping_two_layers_query_weights_fails_the_gate(init):
    hf, ane = _tiny_bert(init)
    ids = torch.randint(0, 50, (2, 16), generator=torch.Generator().manual_seed(2))
    batch = TokenBatch(ids, torch.ones(2, 16, dtype=torch.long), torch.zeros(2, 16, dtype=torch.long))
    reference = run_hf(hf, batch)[0].numpy()
    clean = psnr(reference, _hidden(ane, batch).numpy())
    params = dict(ane.named_parameters())
    with torch.no_grad():
        q0, q1 = params["layers.0.self_attn.q_proj.weight"], params["layers.1.self_attn.q_proj.weight"]
        saved = q0.clone()
        q0.copy_(q1)
        q1.copy_(saved)
    swapped = psnr(reference, _hidden(ane, batch).numpy())
    assert clean >= MODEL_FP32_PSNR_DB, f"init {init}: the unchanged model reaches only {clean:.1f} dB"
    assert swapped < MODEL_FP32_PSNR_DB - 20, (
        f"init {init}: swapping layers 0 and 1's query weights gives {swapped:.1f} dB (clean {clean:.1f} "
        f"dB, gate {MODEL_FP32_PSNR_DB} dB): attention too uniform for a defect to show"
    )
