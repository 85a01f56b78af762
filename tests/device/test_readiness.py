"""Static readiness report: figures checked by hand on tiny built programs, then on converted models."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from coremltools.converters.mil.mil import Builder as mb
from coremltools.converters.mil.mil import types

from verification import thresholds
from verification.readiness import (
    ESTIMATE_MODEL,
    NO_LAYER_NORMS,
    analyze,
    compare,
    describe_finding,
    findings_by_check,
    readiness_checks,
    tensor_bytes,
)

# coremltools and transformers warn about versions and renamed outputs while converting the fixtures
pytestmark = pytest.mark.filterwarnings(
    "ignore::UserWarning", "ignore::DeprecationWarning", "ignore::FutureWarning", "ignore::RuntimeWarning"
)


def transpose_relu():
    @mb.program(input_specs=[mb.TensorSpec(shape=(1, 3, 1, 5), dtype=types.fp16)])
    def program(x):
        y = mb.transpose(x=x, perm=[0, 3, 2, 1], name="y")  # (1, 5, 1, 3)
        return mb.relu(x=y, name="z")

    return program


def test_padding_and_peak_by_hand():
    report = analyze(transpose_relu(), label="tiny")
    # x (1,3,1,5) fp16: 3 rows of 10 bytes, padded to 64 each -> 192; y and z (1,5,1,3): 5 rows -> 320.
    assert [(t.name, t.bytes, t.padded_bytes) for t in report.short_last_axis_tensors] == [
        ("y", 30, 320),
        ("z", 30, 320),
        ("x", 30, 192),
    ]
    assert report.padding_bytes_total == report.padding_bytes_short_last_axis == (192 - 30) + 2 * (320 - 30)
    # ops: const perm, transpose, relu. x lives until the transpose, y until the relu, z to the end.
    assert report.peak_activation_bytes == 320 + 320 and report.peak_at_op == "z"
    assert report.peak_activation_bytes_unpadded == 60
    assert report.largest_intermediate.padded_bytes == 320 and report.largest_intermediate.name == "y"
    assert report.ops == 2 and report.op_counts == {"relu": 1, "transpose": 1}
    assert [(c.op_type, c.detail) for c in report.copies] == [("transpose", "(1, 3, 1, 5) -> (1, 5, 1, 3)")]
    assert (report.copies_in_layers, report.copies_outside_layers, report.num_layers) == (0, 1, None)
    assert report.kind == "static estimate" and report.to_dict()["estimate_model"] == ESTIMATE_MODEL
    json.dumps(report.to_dict())


def test_a_tensor_stays_live_until_its_last_consumer():
    @mb.program(input_specs=[mb.TensorSpec(shape=(1, 1, 1, 32), dtype=types.fp16)])
    def program(x):
        a = mb.relu(x=x, name="a")
        b = mb.relu(x=a, name="b")
        return mb.add(x=a, y=b, name="c")

    report = analyze(program)
    # 32 fp16 = 64 bytes: no padding. At the add, a, b and c are live together.
    assert report.padding_bytes_total == 0 and report.short_last_axis_tensors == []
    assert report.peak_activation_bytes == report.peak_activation_bytes_unpadded == 3 * 64
    assert report.peak_at_op == "c"


def test_tensor_bytes():
    assert tensor_bytes((1, 768, 1, 128), 2) == (768 * 256, 768 * 256)
    assert tensor_bytes((2, 3, 1), 2) == (12, 6 * 64)  # a last axis of 1 costs 32x in fp16
    assert tensor_bytes((40,), 4) == (160, 192)
    assert tensor_bytes((), 4) == (4, 64)


def decomposed_layer_norm(x, squaring):
    mean = mb.reduce_mean(x=x, axes=[1], keep_dims=True)
    centered = mb.sub(x=x, y=mean)
    squared = mb.mul(x=centered, y=centered) if squaring == "mul" else mb.square(x=centered)
    variance = mb.reduce_mean(x=squared, axes=[1], keep_dims=True)
    return mb.real_div(x=centered, y=mb.sqrt(x=mb.add(x=variance, y=np.float16(1e-5))))


def one_layer_program():
    """Embedding-side copy, one fused and two decomposed layer norms, two copies between them."""

    @mb.program(input_specs=[mb.TensorSpec(shape=(1, 8, 4), dtype=types.fp16)])
    def program(x):
        x = mb.transpose(x=x, perm=[0, 2, 1])  # outside the layers: before the first layer norm
        x = mb.expand_dims(x=x, axes=[2])  # (1, 4, 1, 8)
        x = mb.layer_norm(x=x, axes=[1], epsilon=np.float16(1e-5))
        x = mb.transpose(x=x, perm=[0, 3, 2, 1])
        x = mb.transpose(x=x, perm=[0, 3, 2, 1])
        x = decomposed_layer_norm(x, "mul")
        x = mb.relu(x=x)
        return decomposed_layer_norm(x, "square")

    return program


def test_layer_norm_fusion_and_copies_per_layer():
    report = analyze(one_layer_program())
    assert (report.layer_norms_fused, report.layer_norms_unfused) == (1, 2)
    assert (report.num_layers, report.num_layers_source) == (1, "inferred from layer norms")
    assert (report.copies_in_layers, report.copies_outside_layers, report.copies_per_layer) == (2, 1, 2.0)
    checks = {c.name: c for c in readiness_checks(report)}
    assert checks["readiness_layer_norms_fused"].value == pytest.approx(1 / 3)
    assert not checks["readiness_layer_norms_fused"].passed
    assert (
        checks["readiness_copies_per_layer"].value == 2.0 and not checks["readiness_copies_per_layer"].passed
    )
    assert checks["readiness_copies_outside_layers"].value == 1
    given = analyze(one_layer_program(), num_layers=2)
    assert (given.copies_per_layer, given.num_layers_source) == (1.0, "given")


def test_a_mean_that_is_not_a_layer_norm_is_not_counted():
    @mb.program(input_specs=[mb.TensorSpec(shape=(1, 4, 1, 8), dtype=types.fp16)])
    def program(x):
        pooled = mb.reduce_mean(x=mb.mul(x=x, y=x), axes=[3], keep_dims=True)  # mean of squares, no centering
        return mb.reduce_mean(x=mb.sub(x=x, y=pooled), axes=[1], keep_dims=True)

    report = analyze(program)
    assert report.layer_norms == 0 and report.num_layers is None
    copies = {c.name: c for c in readiness_checks(report)}["readiness_copies_per_layer"]
    assert not copies.measured and "num_layers" in copies.reason


def test_no_layer_norm_means_fusion_is_not_measured():
    """Nothing to fuse is not a pass: the check is not measured, with the reason (a failure in strict)."""
    report = analyze(transpose_relu())
    assert report.layer_norms == 0
    fused = {c.name: c for c in readiness_checks(report)}["readiness_layer_norms_fused"]
    assert (fused.measured, fused.passed, fused.value) == (False, None, None)
    assert fused.reason == NO_LAYER_NORMS and "no layer norm found" in fused.reason
    strict = {c.name: c for c in readiness_checks(report, strict=True)}
    assert strict["readiness_layer_norms_fused"].passed is False
    assert strict["readiness_copies_per_layer"].passed is False  # no layers either
    assert strict["readiness_copies_outside_layers"].passed is True  # measured checks keep their verdicts


def sum_layer_norm(x, channels, scaling):
    """A decomposed layer norm whose means are reduce_sum / C (real_div) or reduce_sum * (1 / C) (mul)."""

    def mean(v):
        total = mb.reduce_sum(x=v, axes=[1], keep_dims=True)
        if scaling == "real_div":
            return mb.real_div(x=total, y=np.float16(channels))
        return mb.mul(x=np.float16(1 / channels), y=total)

    centered = mb.sub(x=x, y=mean(x))
    variance = mean(mb.mul(x=centered, y=centered))
    return mb.mul(x=centered, y=mb.rsqrt(x=mb.add(x=variance, y=np.float16(1e-5))))


def test_layer_norms_built_from_reduce_sum_are_detected():
    @mb.program(input_specs=[mb.TensorSpec(shape=(1, 4, 1, 8), dtype=types.fp16)])
    def program(x):
        x = sum_layer_norm(x, 4, "real_div")
        x = mb.layer_norm(x=x, axes=[1], epsilon=np.float16(1e-5))
        return sum_layer_norm(x, 4, "mul")

    report = analyze(program)
    assert (report.layer_norms_fused, report.layer_norms_unfused) == (1, 2)
    assert (report.num_layers, report.num_layers_source) == (1, "inferred from layer norms")
    fused = {c.name: c for c in readiness_checks(report)}["readiness_layer_norms_fused"]
    assert fused.value == pytest.approx(1 / 3) and fused.passed is False


@pytest.mark.parametrize("broken", ["centred on a sum", "variance over a tensor"])
def test_a_sum_that_is_not_a_mean_is_not_a_layer_norm(broken):
    @mb.program(input_specs=[mb.TensorSpec(shape=(1, 4, 1, 8), dtype=types.fp16)])
    def program(x):
        total = mb.reduce_sum(x=x, axes=[1], keep_dims=True)
        mean = total if broken == "centred on a sum" else mb.real_div(x=total, y=np.float16(4))
        centered = mb.sub(x=x, y=mean)
        squares = mb.reduce_sum(x=mb.mul(x=centered, y=centered), axes=[1], keep_dims=True)
        divisor = mb.reduce_max(x=x, axes=[1], keep_dims=True) if broken != "centred on a sum" else None
        if divisor is None:
            return mb.real_div(x=squares, y=np.float16(4))
        return mb.real_div(x=squares, y=divisor)  # divided by a tensor, not a constant

    assert analyze(program).layer_norms == 0


def test_off_ane_ops_and_dimension_limits():
    table = np.arange(40, dtype=np.float16).reshape(10, 4)
    weight = np.ones((2, 2, 1, 15), dtype=np.float16)

    @mb.program(
        input_specs=[
            mb.TensorSpec(shape=(1, 8), dtype=types.int32),
            mb.TensorSpec(shape=(1, 1, 1, 20000), dtype=types.fp16),
            mb.TensorSpec(shape=(1, 2, 1, 32), dtype=types.fp16),
        ]
    )
    def program(ids, wide, image):
        embedded = mb.gather(x=table, indices=ids, axis=0, name="embedded")  # (1, 8, 4)
        shifted = mb.add(x=ids, y=np.int32(1), name="shifted")  # int32 arithmetic
        as_float = mb.cast(x=shifted, dtype="fp16", name="as_float")  # reads an int32 tensor
        convolved = mb.conv(x=image, weight=weight, name="convolved")  # kernel width 15
        return embedded, as_float, mb.relu(x=wide, name="wide_relu"), convolved

    report = analyze(program)
    assert [(f.op, f.op_type) for f in report.off_ane_ops] == [
        ("embedded", "gather"),
        ("shifted", "add"),
        ("as_float", "cast"),
    ]
    assert "int32" in report.off_ane_ops[1].detail
    assert sorted((f.op, f.detail.split(" (")[0]) for f in report.over_limits) == [
        ("convolved", "kernel width 15 > 13"),
        ("wide", "width 20000 > 16384"),
        ("wide_relu", "width 20000 > 16384"),
    ]
    ids_tensor = next(t for t in report.short_last_axis_tensors if t.name == "ids")
    assert (ids_tensor.dtype, ids_tensor.bytes, ids_tensor.padded_bytes) == ("int32", 32, 64)
    checks = {c.name: c for c in readiness_checks(report)}
    assert (
        checks["readiness_dims_within_limits"].value == 3
        and not checks["readiness_dims_within_limits"].passed
    )
    assert checks["readiness_off_ane_ops"].value == 3
    assert checks["readiness_off_ane_ops"].threshold == thresholds.READINESS_OFF_ANE_OPS_MAX


def test_comparison_ratios_are_baseline_over_optimized():
    baseline, optimized = (
        analyze(one_layer_program(), label="baseline"),
        analyze(transpose_relu(), label="ane"),
    )
    table = compare(baseline, optimized)
    assert table.ratio("ops") == pytest.approx(baseline.ops / optimized.ops)
    assert table.ratio("peak activation bytes (padded)") == pytest.approx(
        baseline.peak_activation_bytes / optimized.peak_activation_bytes
    )
    assert table.ratio("dims over limits") is None  # 0 / 0
    assert "static estimate" in table.format_table().splitlines()[0]
    data = json.loads(json.dumps(table.to_dict()))
    assert data["ratio"] == "baseline / optimized" and data["kind"] == "static estimate"


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    """A 2-layer DistilBERT, baseline and ANE-optimized, converted to fp16 once for this module."""
    import transformers

    import ane_models
    from verification.coreml import BaselineForConversion, convert, save

    torch.manual_seed(0)
    config = transformers.DistilBertConfig(
        dim=16,
        n_heads=2,
        n_layers=2,
        hidden_dim=24,
        vocab_size=60,
        max_position_embeddings=32,
        attn_implementation="eager",
    )
    hf = transformers.DistilBertModel(config).eval()
    ids = torch.randint(3, 60, (1, 8), dtype=torch.int32)
    inputs = (ids, torch.ones_like(ids))
    optimized = convert(ane_models.optimize(hf), inputs, precision="fp16")
    baseline = convert(BaselineForConversion(hf), inputs, precision="fp16")
    path = save(optimized, tmp_path_factory.mktemp("readiness") / "optimized.mlpackage")
    return {"optimized": optimized, "baseline": baseline, "optimized_path": path}


@pytest.mark.coreml
def test_converted_models(converted):
    optimized = analyze(converted["optimized"], label="ane")
    baseline = analyze(converted["baseline"], label="baseline")
    for report, model in ((optimized, converted["optimized"]), (baseline, converted["baseline"])):
        operations = list(model._mil_program.functions["main"].operations)
        assert report.ops == sum(op.op_type != "const" for op in operations) == sum(report.op_counts.values())
        assert report.num_layers == 2 and report.layer_norms_fused == 5 and report.layer_norms_unfused == 0
        assert report.peak_activation_bytes >= report.largest_intermediate.padded_bytes > 0
    # the ANE attention has one copy per layer (the key transpose); the baseline's reshapes heads.
    assert optimized.copies_per_layer <= 1 < baseline.copies_per_layer
    assert any(f.op_type == "gather" for f in optimized.off_ane_ops)
    assert compare(baseline, optimized).ratio("copies per layer") >= 2


@pytest.mark.coreml
def test_saved_package_gives_the_same_report(converted):
    from_package = analyze(converted["optimized_path"], label="ane").to_dict()
    in_memory = analyze(converted["optimized"], label="ane").to_dict()
    figures = (
        "ops",
        "op_counts",
        "copies_in_layers",
        "peak_activation_bytes",
        "padding_bytes_total",
        "layer_norms_fused",
        "off_ane_ops",
        "copies",
    )
    assert {k: from_package[k] for k in figures} == {k: in_memory[k] for k in figures}
    # the torch module of each op survives the save (verification.coreml.scopes keeps the map)
    assert [f["module"] for f in from_package["copies"]] == [f["module"] for f in in_memory["copies"]]
    assert [f["module"] for f in from_package["copies"]] == [
        "embeddings",
        "layers.0.self_attn",
        "layers.1.self_attn",
    ]


class ReferenceStyleLayerNorm(torch.nn.Module):
    """The published reference's layer norm form, over the channel axis of (B, C, 1, S)."""

    def __init__(self, channels: int):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.rand(channels) + 0.5)
        self.bias = torch.nn.Parameter(torch.rand(channels))

    def forward(self, x):
        centered = x - x.mean(dim=1, keepdim=True)
        scaled = centered * (centered.pow(2).mean(dim=1, keepdim=True) + 1e-7).rsqrt()
        return (scaled + self.bias.view(1, -1, 1, 1)) * self.weight.view(1, -1, 1, 1)


@pytest.mark.coreml
def test_reference_style_layer_norms_converted_by_coremltools_count_as_unfused():
    import coremltools as ct

    model = torch.nn.Sequential(
        ReferenceStyleLayerNorm(16), ReferenceStyleLayerNorm(16), torch.nn.ReLU(), ReferenceStyleLayerNorm(16)
    ).eval()
    x = torch.rand(1, 16, 1, 8)
    mlmodel = ct.convert(
        torch.jit.trace(model, x), inputs=[ct.TensorType(shape=x.shape)], convert_to="mlprogram"
    )
    report = analyze(mlmodel)
    assert report.op_counts.get("layer_norm", 0) == 0 and report.op_counts["reduce_mean"] == 6
    assert (report.layer_norms_fused, report.layer_norms_unfused, report.num_layers) == (0, 3, 1)


def reshapes_program():
    """Reshapes of every kind, by the rule of ``reshape_moves_data`` (fp16: a 64-byte row is 32 values)."""

    @mb.program(
        input_specs=[
            mb.TensorSpec(shape=(1, 4, 1, 16), dtype=types.fp16),
            mb.TensorSpec(shape=(2, 64), dtype=types.fp16),
            mb.TensorSpec(shape=(6, 1, 1, 1), dtype=types.fp16),
            mb.TensorSpec(shape=(2, 3, 8), dtype=types.int32),
        ]
    )
    def program(x, wide, logits, ids):
        kept = mb.reshape(x=x, shape=[4, 16], name="kept_last_axis")  # rows relabelled
        merged = mb.reshape(x=x, shape=[1, 64], name="merged_rows")  # 4 padded rows of 32 B -> 1 row
        split = mb.reshape(x=wide, shape=[4, 32], name="unpadded_rows")  # 128 B rows -> 64 B rows
        choices = mb.reshape(x=logits, shape=[2, 3], name="choices")  # 6 rows of 1 value -> 2 rows of 3
        flat_ids = mb.reshape(x=ids, shape=[6, 8], name="flat_ids")  # int32, last axis kept: a view
        ids_rows = mb.reshape(x=ids, shape=[2, 24], name="ids_rows")  # int32, moved
        return kept, merged, split, choices, flat_ids, ids_rows

    return program


def test_a_reshape_is_a_copy_when_it_moves_data():
    """Minimize copies: a reshape that changes the last axis while a row on either side is padded moves
    data (a copy); one that keeps the last axis, or whose rows are unpadded on both sides, does not."""
    report = analyze(reshapes_program())
    assert [(c.op, c.op_type) for c in report.copies] == [
        ("merged_rows", "reshape"),
        ("choices", "reshape"),
        ("ids_rows", "reshape"),
    ]
    assert report.copies[0].detail == "(1, 4, 1, 16) -> (1, 64)"
    # a relabelling computes nothing: not off the Neural Engine even on int32; a moving int32 reshape is
    assert [f.op for f in report.off_ane_ops] == ["ids_rows"]
    outside = {c.name: c for c in readiness_checks(report)}["readiness_copies_outside_layers"]
    assert (outside.value, outside.passed) == (3, False)
    assert "reshape merged_rows at #" in outside.reason and "reshape ids_rows" in outside.reason


def test_a_metadata_reshape_between_layer_norms_is_not_a_copy():
    """The multiple-choice pattern: (B, N, S) flattened to (B * N, S) keeps the last axis: no copy."""

    @mb.program(input_specs=[mb.TensorSpec(shape=(2, 3, 4, 1, 8), dtype=types.fp16)])
    def program(x):
        x = mb.layer_norm(x=x, axes=[2], epsilon=np.float16(1e-5))
        x = mb.reshape(x=x, shape=[6, 4, 1, 8], name="flattened")  # last axis kept
        x = mb.layer_norm(x=x, axes=[1], epsilon=np.float16(1e-5))
        x = mb.reshape(x=x, shape=[6, 4, 8, 1], name="moved")  # last axis 8 -> 1: every value its own row
        return mb.layer_norm(x=x, axes=[1], epsilon=np.float16(1e-5))

    report = analyze(program)
    assert [c.op for c in report.copies] == ["moved"]
    assert (report.copies_in_layers, report.copies_outside_layers, report.num_layers) == (1, 0, 1)
    assert report.copies[0].layer == "layer 0"


def test_failed_checks_name_the_ops_and_where_they_came_from():
    report = analyze(one_layer_program())
    found = findings_by_check(report)
    # the embedding-side transpose, the two copies inside layer 0, the two decomposed layer norms
    assert [(f.op_type, f.layer) for f in found["readiness_copies_outside_layers"]] == [
        ("transpose", "embeddings (up to the first layer norm)")
    ]
    assert [(f.op_type, f.layer) for f in found["readiness_copies_per_layer"]] == [
        ("transpose", "layer 0")
    ] * 2
    positions = [f.position for f in report.copies]
    assert positions == sorted(positions) and len(set(positions)) == 3
    assert [f.layer for f in found["readiness_layer_norms_fused"]] == ["layer 0", "layer 0"]
    checks = {c.name: c for c in readiness_checks(report)}
    per_layer = checks["readiness_copies_per_layer"]
    assert per_layer.passed is False and per_layer.reason.startswith("counted 2: transpose ")
    assert per_layer.reason.count("(layer 0)") == 2
    assert checks["readiness_layer_norms_fused"].reason.startswith("counted 2: ")
    assert (
        checks["readiness_copies_outside_layers"].passed
        and checks["readiness_copies_outside_layers"].reason is None
    )
    # a line for the reports: op type, name, position, place and detail
    line = describe_finding(found["readiness_copies_outside_layers"][0])
    assert line.startswith("transpose ") and "#1; embeddings (up to the first layer norm)" in line
    assert line.endswith("(1, 8, 4) -> (1, 4, 8)")
