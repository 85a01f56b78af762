"""Every op of a converted program names the torch module it comes from, for both exporters, after a save
and a load (verification.coreml.scopes; the package's metadata carries the map)."""

import pytest
from tiny_models import model_under_test

from ane_layers.layer_norm import LayerNormANE
from ane_layers.linear import LinearANE
from verification.coreml import save
from verification.coreml.scopes import describe, op_modules
from verification.mil import load_program

pytestmark = pytest.mark.coreml

# op type -> the class every op of that type must come from (what the op can only have been made of)
ORIGIN_OF = {"layer_norm": LayerNormANE, "conv": LinearANE}


def _made_of(module, expected) -> bool:
    """``module`` is an ``expected``, or holds one directly: a fused op keeps the scope of the op it ends
    with (coremltools' fuse_conv_scale: the query projection's conv and its scale are one conv, named
    after the scale's ``mul`` in the attention module)."""
    return isinstance(module, expected) or any(isinstance(c, expected) for c in module.children())


def _saved_modules(mlmodel, tmp_path, name):
    path = save(mlmodel, tmp_path / f"{name}.mlpackage")
    program = load_program(path)
    ops = [op for op in program.functions["main"].operations if op.op_type != "const"]
    return ops, op_modules(path)


@pytest.mark.parametrize("model_id", ["distilbert-Model", "reference-Transformer"])
@pytest.mark.parametrize("exporter", ["trace", "export"])
def test_every_op_names_an_existing_module_of_the_right_kind(converted, tmp_path, model_id, exporter):
    model, _ = model_under_test(model_id)
    modules = dict(model.named_modules())
    ops, paths = _saved_modules(converted(model_id, "fp16", exporter), tmp_path, model_id)
    missing = [f"#{i} {op.op_type} {op.name!r}" for i, op in enumerate(ops) if op.name not in paths]
    assert not missing, f"{model_id} ({exporter}): {len(missing)} of {len(ops)} ops name no module: {missing}"
    for op in ops:
        path = paths[op.name]
        assert path in modules, f"{model_id} ({exporter}): op {op.name!r} names {path!r}, not a module"
        expected = ORIGIN_OF.get(op.op_type)
        if expected is not None:
            assert _made_of(modules[path], expected), (
                f"{model_id} ({exporter}): {op.op_type} op {op.name!r} names {path!r}, a "
                f"{type(modules[path]).__name__}, expected a {expected.__name__}"
            )


@pytest.mark.parametrize("exporter", ["trace", "export"])
def test_each_layer_norm_is_told_apart_from_the_same_norm_of_another_layer(converted, tmp_path, exporter):
    """A loop over layers is one line of source: the path must still say which layer (layers.0 vs 1)."""
    ops, paths = _saved_modules(converted("distilbert-Model", "fp16", exporter), tmp_path, "distilbert")
    norms = [paths[op.name] for op in ops if op.op_type == "layer_norm"]
    expected = ["embeddings.norm", "layers.0.norm1", "layers.0.norm2", "layers.1.norm1", "layers.1.norm2"]
    assert norms == expected, f"{exporter}: layer norms in program order name {norms}, expected {expected}"


def test_the_baseline_program_names_transformers_modules(tmp_path):
    """A plain transformers model (wrapped for conversion) names its own modules: the wrapper's "model." and
    transformers' attribute names (DistilBERT: sa_layer_norm, output_layer_norm)."""
    import torch
    from tiny_models import hf_model, model_inputs

    from verification.coreml import BaselineForConversion, convert

    baseline = BaselineForConversion(hf_model("distilbert", "Model"))
    mlmodel = convert(baseline, model_inputs("distilbert", "Model"), precision="fp16")
    ops, paths = _saved_modules(mlmodel, tmp_path, "baseline")
    modules = dict(baseline.named_modules())
    norms = [paths[op.name] for op in ops if op.op_type == "layer_norm"]
    assert norms and all(isinstance(modules[p], torch.nn.LayerNorm) for p in norms), norms
    assert "model.transformer.layer.1.output_layer_norm" in norms, norms


def test_an_unknown_op_and_the_top_level_read_as_such():
    assert describe(None) == "unknown layer"
    assert describe("") == "top level"
    assert describe("layers.0.norm1") == "layers.0.norm1"


def test_the_hazard_finder_names_the_layer_of_every_op_it_ranks(converted, tmp_path):
    from tiny_models import input_dict

    from verification.mil.hazards import find_hazards

    model_id = "distilbert-Model"
    model, inputs = model_under_test(model_id)
    mlmodel = converted(model_id, "fp16", "trace")
    path = save(mlmodel, tmp_path / "hazards.mlpackage")
    report = find_hazards(path, input_dict(mlmodel, inputs))
    modules = dict(model.named_modules())
    unnamed = [op.name for op in report.ops_by_precision if op.module not in modules]
    assert not unnamed, f"{model_id}: ranked ops without a module: {unnamed}"
    text = report.render(top=40)
    assert "in layers.0.norm1" in text and "in layers.1.self_attn" in text, text
