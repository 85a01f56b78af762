"""Per-layer sensitivity on the tiny classifier: a layer's swapped-in figure is what a real coremltools
compression of that layer alone gives, the ranking is sorted, and the mixed-bit recipe is verified."""

from __future__ import annotations

import numpy as np
import torch

from verification.compression.apply import compress_ops
from verification.compression.compare import _comparable
from verification.compression.recipe import parse_config
from verification.compression.sensitivity import LayerCost, Sensitivity, layer_sensitivity
from verification.metrics import psnr
from verification.mil import MILExecutor

NAMES = ["input_ids", "attention_mask"]


def _inputs(model, inputs):
    feeds = [{n: x.numpy() for n, x in zip(NAMES, e, strict=True)} for e in inputs]
    with torch.no_grad():
        references = [
            model(*e).float().numpy() if torch.is_tensor(model(*e)) else model(*e)[0].numpy() for e in inputs
        ]
    return feeds, references, [e[1].bool().numpy() for e in inputs]


def test_swapped_weights_measure_what_a_real_one_layer_compression_measures(tiny):
    model, inputs, _, mlmodel = tiny
    feeds, references, reals = _inputs(model, inputs[:2])
    config = parse_config("palettize:3:mode=uniform")
    result = layer_sensitivity(
        mlmodel, config, feeds, references, real_masks=reals, target_psnr_db=40.0, model=model
    )
    costs = [c.cost_db for c in result.layers]
    assert costs == sorted(costs, reverse=True)
    modules = dict(model.named_modules())
    names = [c.layer for c in result.layers]
    assert all(n in modules for n in names) and "backbone.layers.1.self_attn.q_proj" in names, names
    assert all(c.vs_program_db > c.psnr_db - 1.0 for c in result.layers), result.layers
    assert result.baseline_psnr_db > result.all_compressed_psnr_db
    for layer in (result.layers[0], result.layers[-1]):
        real = compress_ops(mlmodel, {op: config for op in layer.ops})
        executor = MILExecutor(real)
        outputs = [executor.run(f)[executor.output_names[0]].astype(np.float32) for f in feeds]
        reference = np.concatenate(
            [_comparable(r, m).reshape(-1) for r, m in zip(references, reals, strict=True)]
        )
        got = np.concatenate([_comparable(o, m).reshape(-1) for o, m in zip(outputs, reals, strict=True)])
        assert abs(psnr(reference, got) - layer.psnr_db) < 0.01, (
            layer.layer,
            psnr(reference, got),
            layer.psnr_db,
        )
    mixed = result.mixed
    assert mixed is not None and abs(mixed.measured_psnr_db - mixed.predicted_psnr_db) < 0.01
    assert mixed.met == (mixed.measured_psnr_db >= 40.0)
    assert mixed.all_config_bytes <= mixed.stored_bytes <= mixed.all_fallback_bytes
    k = len(mixed.fallback_layers)
    tried = dict(mixed.probes)
    if k > 0 and k - 1 in tried:
        assert tried[k - 1] < 40.0  # one layer fewer misses the target: greedy's frontier


def test_a_negative_cost_is_explained_with_the_numbers():
    layers = [
        LayerCost("backbone.layers.0.ffn.fc1", ["a"], 8192, 40.0, 20.0, 40.1),
        LayerCost("backbone.layers.4.self_attn.q_proj", ["b"], 4096, 65.21, -5.21, 58.3),
    ]
    result = Sensitivity("palettize:4", 60.0, 39.0, layers, 1.0, inputs=2, values=4)
    note = result.noise_note
    assert note is not None and note == result.to_dict()["noise_note"]
    for text in ("1 of 2 layers", "-5.21 dB", "backbone.layers.4.self_attn.q_proj", "58.3 dB", "60.0 dB"):
        assert text in note, (text, note)
    assert "2 inputs (4 output values)" in note and "--examples" in note
    assert Sensitivity("palettize:4", 60.0, 39.0, layers[:1], 1.0).noise_note is None
