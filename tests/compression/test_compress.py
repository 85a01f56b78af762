"""Compression end to end on a tiny converted classifier: every form coremltools emits is decoded by the
executor exactly as coremltools' value inference decodes it, sizes are what the form promises, the
three-way split holds, the planted kernel defects are caught by the end-to-end gate, and bad recipes are
refused before anything is compressed."""

from __future__ import annotations

import functools

import coremltools as ct
import numpy as np
import pytest
import torch

from conftest import examples, tiny_classifier
from verification import thresholds
from verification.compression.apply import compress, compress_ops, plan
from verification.compression.compare import three_way
from verification.compression.recipe import Recipe, RecipeError, parse_compress, parse_config
from verification.compression.weights import dense_values, size_summary, weights
from verification.coreml import convert
from verification.mil import MILExecutor
from verification.mil.kernels import KERNELS
from verification.release import gate_config

NAMES = ["input_ids", "attention_mask"]
# gather (the 97-row embedding) cannot be cut into groups of 16 rows: grouped forms leave it out
GROUPED = "[compression]\ndefault = '{}'\n[compression.op_types]\ngather = 'none'\n"

FORMS = {
    "quantize:int8": {"constexpr_blockwise_shift_scale"},
    "quantize:int4:block=32": {"constexpr_blockwise_shift_scale"},
    "palettize:2": {"constexpr_lut_to_dense"},  # k-means (the others uniform: k-means is the slow one)
    "palettize:3:mode=uniform": {"constexpr_lut_to_dense"},
    "prune:0.5": {"constexpr_sparse_to_dense"},
    "prune:0.5+palettize:4:mode=uniform": {"constexpr_lut_to_sparse", "constexpr_sparse_to_dense"},
    "prune:0.5+quantize:int8": {"constexpr_sparse_blockwise_shift_scale", "constexpr_sparse_to_dense"},
    "palettize:4:mode=uniform+quantize:int8": {"constexpr_lut_to_dense", "constexpr_blockwise_shift_scale"},
}


@functools.cache
def _compressed(tiny_mlmodel, text):
    return compress(tiny_mlmodel, parse_compress(text))


def _recipe(tmp_path, config):
    path = tmp_path / "recipe.toml"
    path.write_text(GROUPED.format(config))
    return parse_compress(f"recipe={path}")


@pytest.mark.parametrize("text", list(FORMS))
def test_every_form_decodes_like_coremltools_and_keeps_its_size(tiny, text):
    model, inputs, names, mlmodel = tiny
    compressed = _compressed(mlmodel, text)
    found = weights(compressed)
    forms = {op for w in found for op in w.form.split("+")} - {"dense"}
    assert forms == FORMS[text], f"{text}: program holds {forms}"
    # the executor's own kernels (load-time) against coremltools' value inference
    executor = MILExecutor(compressed)
    reference = dense_values(compressed)
    for op in executor.function.operations:
        for name, var in op.inputs.items():
            if (op.name, name) in reference and var.op.op_type.startswith("constexpr_"):
                got = executor.constants[var.name].numpy().astype(np.float64)
                expected = reference[(op.name, name)].astype(np.float64)
                assert np.array_equal(got, expected), f"{text}: {op.name}.{name} decodes differently"
    config = parse_config(text)
    compressed_only = [w for w in found if w.form != "dense"]
    bits = 8 * sum(w.stored_bits / 8 for w in compressed_only) / sum(w.count for w in compressed_only)
    assert bits <= config.nominal_bits * thresholds.COMPRESSION_BITS_OVERHEAD_MAX, (text, bits)
    before, after = size_summary(mlmodel), size_summary(compressed)
    assert after.stored_bytes < before.stored_bytes and after.program_bytes < before.program_bytes


@pytest.mark.parametrize(
    "text", ["prune:0.75", "prune:0.75+palettize:4:mode=uniform", "prune:0.75+quantize:int8"]
)
def test_a_pruned_weight_stores_the_bits_its_config_promises(tiny, text):
    """Value comparison of the nominal bits (what the bits gate allows) with what coremltools stores: at
    75% sparsity the kept share (25%) and the pruned one differ, so counting the wrong one shows."""
    compressed = _compressed(tiny[3], text)
    pruned = [w for w in weights(compressed) if w.form != "dense"]
    stored = sum(w.stored_bits for w in pruned) / sum(w.count for w in pruned)
    nominal = parse_config(text).nominal_bits
    assert nominal * 0.9 <= stored <= nominal * thresholds.COMPRESSION_BITS_OVERHEAD_MAX, (
        f"{text}: stored {stored:.3f} bits per weight, nominal {nominal:.3f} (over {len(pruned)} weights)"
    )


_THREE_WAY: dict = {}


def _three_way(tiny, text):
    """three_way of the tiny classifier at ``text``, once per session and config."""
    key = (id(tiny[3]), text)
    if key not in _THREE_WAY:
        model, inputs, names, mlmodel = tiny
        _THREE_WAY[key] = three_way(model, inputs, names, mlmodel, _compressed(mlmodel, text))
    return _THREE_WAY[key]


HONEST = ["quantize:int8", "palettize:2", "prune:0.5+quantize:int8"]


@pytest.mark.parametrize("text", HONEST)
def test_three_way_separates_compression_loss_from_conversion_loss(tiny, text):
    model, inputs, names, mlmodel = tiny
    result = _three_way(tiny, text)
    assert result.unmatched == 0 and result.mapped == len(weights(mlmodel))
    assert result.mapped_by_scope >= result.mapped - 2  # the query projections' scope names the attention
    # the program on compressed weights loses what a program loses: conversion and fp16 only
    assert result.compressed_vs_fake_psnr_db >= thresholds.COMPRESSION_PROGRAM_VS_FAKE_PSNR_DB, result
    assert result.uncompressed_vs_torch.psnr_db >= thresholds.COREML_FP16_RANDOM_PSNR_DB
    # the compression's own loss dominates the total
    total, own = result.compressed_vs_torch.psnr_db, result.fake_vs_torch.psnr_db
    assert abs(total - own) < 3.0 and own < result.uncompressed_vs_torch.psnr_db, result
    assert result.task == "top-1 agreement" and result.compressed_vs_torch.agreement is not None


def lut_read_along_the_input_axis(original):
    """PLANTED: the LUT groups of the output channels are read along the input channels instead."""

    def kernel(indices, lut, vector_axis=None, shape=None):
        return original(indices, lut.transpose(0, 1), vector_axis, shape)

    return functools.update_wrapper(kernel, original)  # keeps the registry's flags


def scale_dropped(original):
    """PLANTED: the dequantization forgets its scale."""

    def kernel(data, scale, offset=None):
        return original(data, torch.ones_like(scale), offset)

    return functools.update_wrapper(kernel, original)


@pytest.mark.parametrize(
    "op_type,plant,config",
    [
        ("constexpr_lut_to_dense", lut_read_along_the_input_axis, "palettize:8:mode=uniform:group=16"),
        ("constexpr_blockwise_shift_scale", scale_dropped, "quantize:int8"),
    ],
)
def test_planted_kernel_defects_fail_the_end_to_end_gate(tiny, tmp_path, monkeypatch, op_type, plant, config):
    model, inputs, names, mlmodel = tiny
    compressed = compress(mlmodel, _recipe(tmp_path, config))
    honest = three_way(model, inputs, names, mlmodel, compressed)
    assert honest.compressed_vs_fake_psnr_db >= thresholds.COMPRESSION_PROGRAM_VS_FAKE_PSNR_DB
    monkeypatch.setitem(KERNELS, op_type, plant(KERNELS[op_type]))
    broken = three_way(model, inputs, names, mlmodel, compressed)
    # "not >=": a defect that overflows fp16 gives NaN, which the gate (value >= threshold) fails too
    assert not broken.compressed_vs_fake_psnr_db >= thresholds.COMPRESSION_PROGRAM_VS_FAKE_PSNR_DB - 10, (
        f"{op_type} planted defect: {broken.compressed_vs_fake_psnr_db:.1f} dB"
    )
    assert not broken.compressed_vs_torch.psnr_db >= honest.compressed_vs_torch.psnr_db - 10
    # the fake-compressed torch model reads coremltools' own decoding: untouched by the defect
    assert abs(broken.fake_vs_torch.psnr_db - honest.fake_vs_torch.psnr_db) < 1e-6


def test_the_program_vs_fake_floor_sits_just_below_honest_programs(tiny):
    """The floor is what an fp16 program does against torch (55 dB, thresholds.COREML_FP16_RANDOM_PSNR_DB):
    every honest compressed program clears it, and a floor far below the worst of them (0, say) would let
    a decoding error through."""
    floor = thresholds.COMPRESSION_PROGRAM_VS_FAKE_PSNR_DB
    honest = {text: _three_way(tiny, text).compressed_vs_fake_psnr_db for text in HONEST}
    worst = min(honest.values())
    assert floor <= worst and floor >= worst - 15.0, f"floor {floor} dB; honest programs: {honest}"
    assert floor == thresholds.COREML_FP16_RANDOM_PSNR_DB, (floor, thresholds.COREML_FP16_RANDOM_PSNR_DB)
    assert gate_config.CHECKS["compression_program_vs_fake_psnr_db"] == (gate_config.AT_LEAST, floor)


def scale_three_percent_high(original):
    """PLANTED: every dequantization scale 3% too large (a subtle decoding error, no NaN, no overflow)."""

    def kernel(data, scale, offset=None):
        return original(data, scale * 1.03, offset)

    return functools.update_wrapper(kernel, original)


def test_a_subtle_decoding_error_fails_the_program_vs_fake_gate(tiny, monkeypatch):
    """The gate, judged as ``ane-verify run`` judges it (default threshold, its direction), fails a program
    whose weights decode 3% off, which still lands far above 0 dB: the floor's value is what catches it."""
    model, inputs, names, mlmodel = tiny
    compressed = _compressed(mlmodel, "quantize:int8")
    monkeypatch.setitem(
        KERNELS,
        "constexpr_blockwise_shift_scale",
        scale_three_percent_high(KERNELS["constexpr_blockwise_shift_scale"]),
    )
    broken = three_way(model, inputs, names, mlmodel, compressed).compressed_vs_fake_psnr_db
    honest = _three_way(tiny, "quantize:int8").compressed_vs_fake_psnr_db
    check = {"name": "compression_program_vs_fake_psnr_db", "value": broken, "measured": True}
    verdict = gate_config.evaluate(check, gate_config.default_threshold(check["name"]))
    assert 10.0 < broken < honest - 10.0, f"planted 3% scale: {broken:.1f} dB, honest {honest:.1f} dB"
    assert verdict["passed"] is False, f"planted 3% scale: {broken:.1f} dB passed {verdict['threshold']} dB"


def test_recipes_per_layer_and_op_type(tiny, tmp_path):
    model, inputs, names, mlmodel = tiny
    path = tmp_path / "recipe.toml"
    path.write_text(
        '[compression]\ndefault = "quantize:int8"\n[compression.op_types]\ngather = "none"\n'
        '[compression.layers]\n"backbone.layers.0.ffn.fc1" = "palettize:2:mode=uniform"\n'
    )
    configs = plan(mlmodel, parse_compress(f"recipe={path}"))
    found = {w.op: w for w in weights(mlmodel)}
    assert all(found[op].op_type != "gather" for op in configs)
    assert sorted(c.text() for c in configs.values()).count("palettize:2:mode=uniform") == 1
    compressed = compress_ops(mlmodel, configs)
    forms = {w.op: w.form for w in weights(compressed)}
    assert sum(f == "constexpr_lut_to_dense" for f in forms.values()) == 1
    assert all(forms[op] == "dense" for op, w in found.items() if w.op_type == "gather")


def test_a_recipe_naming_a_missing_layer_is_refused(tiny, tmp_path):
    path = tmp_path / "recipe.toml"
    layer = "backbone.layers.7.ffn.fc1"
    path.write_text(
        f'[compression]\ndefault = "quantize:int8"\n[compression.layers]\n"{layer}" = "palettize:4"\n'
    )
    with pytest.raises(RecipeError) as error:
        plan(tiny[3], parse_compress(f"recipe={path}"))
    message = str(error.value)
    assert f"recipe layer {layer!r}: the model has no such layer" in message and "closest" in message


def test_a_group_size_that_does_not_divide_the_channels_is_refused(tiny):
    with pytest.raises(RecipeError) as error:
        compress(tiny[3], parse_compress("palettize:4:group=48"))
    message = str(error.value)
    assert "group size 48 does not divide the" in message and "allowed: a divisor of" in message
    with pytest.raises(RecipeError, match="block size 48 does not divide the 64 input channels"):
        compress(tiny[3], parse_compress("quantize:int4:block=48"))


@functools.cache
def _ios16_program():
    model, inputs = tiny_classifier(), examples(1)
    mlmodel = convert(model, inputs[0], precision="fp16", minimum_deployment_target=ct.target.iOS16)
    return model, inputs, mlmodel


def test_int4_per_block_is_refused_below_ios18():
    _, _, mlmodel = _ios16_program()
    with pytest.raises(RecipeError, match="needs deployment target iOS18 or newer .* got iOS16"):
        compress(mlmodel, parse_compress("quantize:int4:block=32"))


@pytest.mark.slow
@pytest.mark.parametrize(
    "text,op",
    [
        ("palettize:4:mode=uniform", "constexpr_lut_to_dense"),
        ("quantize:int8", "constexpr_affine_dequantize"),
        ("prune:0.5", "constexpr_sparse_to_dense"),
    ],
)
def test_ios16_forms_run_end_to_end(text, op):
    """What iOS16 holds: the bit-packed iOS16 forms, decoded by the same kernels."""
    model, inputs, mlmodel = _ios16_program()
    compressed = compress(mlmodel, parse_compress(text))
    assert {w.form for w in weights(compressed)} >= {op}
    result = three_way(model, inputs, NAMES, mlmodel, compressed)
    assert result.compressed_vs_fake_psnr_db >= thresholds.COMPRESSION_PROGRAM_VS_FAKE_PSNR_DB, (text, result)


def test_replaced_constants_swap_and_restore(tiny):
    mlmodel = tiny[3]
    executor = MILExecutor(mlmodel)
    feed = {n: x.numpy() for n, x in zip(NAMES, tiny[1][0], strict=True)}
    before = executor.run(feed)
    weight = weights(mlmodel)[1]
    op = next(o for o in executor.function.operations if o.name == weight.op)
    name = op.inputs[weight.input].name
    with executor.replaced_constants({name: np.zeros(weight.shape, np.float32)}):
        changed = executor.run(feed)
    after = executor.run(feed)
    out = executor.output_names[0]
    assert not np.array_equal(before[out], changed[out]) and np.array_equal(before[out], after[out])
    with pytest.raises(KeyError, match="not a constant read by an op"):
        with executor.replaced_constants({"no_such_constant": np.zeros(3)}):
            pass
    with pytest.raises(ValueError, match="replacement shape"):
        with executor.replaced_constants({name: np.zeros((3,), np.float32)}):
            pass
    assert np.array_equal(executor.run(feed)[out], before[out])


def test_an_empty_recipe_is_refused(tiny, tmp_path):
    with pytest.raises(RecipeError, match="no weight of the model gets a compression"):
        compress(tiny[3], Recipe(source="none"))
