"""The converted program's parity per layer (verification.mil.layer_parity): each layer's output inside the
program against the same torch module's output, for both exporters; a defect in one layer shows there."""

import copy

import pytest
import torch
from tiny_models import input_dict, model_under_test

from verification import thresholds
from verification.mil.layer_parity import program_layer_parity

pytestmark = pytest.mark.coreml

LAYERS = {
    "distilbert-Model": ["embeddings", "layers.0", "layers.1"],
    "bert-ForSequenceClassification": ["backbone.embeddings", "backbone.layers.0", "backbone.layers.1"],
    "reference-Transformer": [
        "encoder_layers.0",
        "encoder_layers.1",
        "decoder_layers.0",
        "decoder_layers.1",
    ],
}


def _parity(mlmodel, model, inputs, **kwargs):
    return program_layer_parity(mlmodel, input_dict(mlmodel, inputs), model, inputs, **kwargs)


def _describe(rows) -> str:
    return "; ".join(f"{r.module} ({r.op_type} {r.op!r} #{r.position}): {r.psnr_db:.1f} dB" for r in rows)


# both exporters, both precisions, an encoder, a head (its layers under "backbone") and the reference
# encoder-decoder (torch.export only: traced, its attention's shape arithmetic has no converter)
CASES = [
    ("distilbert-Model", "trace", "fp32"),
    ("distilbert-Model", "trace", "fp16"),
    ("distilbert-Model", "export", "fp16"),
    ("bert-ForSequenceClassification", "trace", "fp16"),
    ("reference-Transformer", "export", "fp32"),
    ("reference-Transformer", "export", "fp16"),
]


@pytest.mark.parametrize("model_id, exporter, precision", CASES)
def test_every_layer_of_the_program_matches_torch(converted, model_id, exporter, precision):
    model, inputs = model_under_test(model_id)
    rows = _parity(converted(model_id, precision, exporter), model, inputs)
    text = _describe(rows)
    print(f"{model_id} {exporter} {precision}: {text}")  # the measurements (pytest -s)
    assert [r.module for r in rows] == LAYERS[model_id], text
    floor = thresholds.COREML_FP32_PSNR_DB if precision == "fp32" else thresholds.COREML_FP16_RANDOM_PSNR_DB
    assert all(r.psnr_db >= floor for r in rows), f"{model_id} ({exporter}, {precision}): {text}; bar {floor}"


def test_a_defect_in_one_layer_shows_in_that_layer_first(converted):
    """The torch model drifts from its program in layers.1 alone (norm1's weight scaled by 1.5 after the
    conversion): the embeddings and layers.0 still match, layers.1 does not."""
    model, inputs = model_under_test("distilbert-Model")
    drifted = copy.deepcopy(model)
    with torch.no_grad():
        drifted.layers[1].norm1.weight.mul_(1.5)
    rows = {r.module: r for r in _parity(converted("distilbert-Model", "fp32"), drifted, inputs)}
    text = _describe(rows.values())
    assert rows["embeddings"].psnr_db >= thresholds.COREML_FP32_PSNR_DB, text
    assert rows["layers.0"].psnr_db >= thresholds.COREML_FP32_PSNR_DB, text
    assert rows["layers.1"].psnr_db < 40, text


def test_a_program_without_a_module_map_is_refused_by_name():
    from coremltools.converters.mil.mil import Builder as mb

    @mb.program(input_specs=[mb.TensorSpec(shape=(2,))])
    def program(x):
        return mb.relu(x=x)

    with pytest.raises(ValueError, match="records no op -> torch module map"):
        program_layer_parity(program, {"x": [1.0, 2.0]}, torch.nn.ReLU(), (torch.ones(2),))
