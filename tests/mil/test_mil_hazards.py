"""The hazard finder on planted cases: a finfo(float32).min attention mask that turns the fp16 program's
output into NaN, BERT's layer-norm epsilon 1e-12 that fp16 stores as a subnormal, a value that
overflows only in fp16, an op that loses precision followed by ops that only inherit (and amplify) it,
and a constant-folded op that overflows."""

from __future__ import annotations

import numpy as np
import pytest
from coremltools.converters.mil.mil import Builder as mb
from coremltools.converters.mil.mil import types

from verification.mil.hazards import find_hazards

pytestmark = pytest.mark.coreml


@pytest.fixture(scope="module")
def finfo_mask_report(saved_models):
    fp16_path, _, feed = saved_models["bert_finfo_min_mask_fp16"]
    fp32_path = saved_models["bert_finfo_min_mask_fp32"][0]
    return find_hazards(fp16_path, feed, fp32_program=fp32_path)


def test_finfo_min_mask_goes_nan_and_the_first_nan_op_is_named(finfo_mask_report):
    report = finfo_mask_report
    text = report.render()
    first = report.first_non_finite
    assert first is not None, text
    assert first.nan_count > 0, text
    # The mask product (1 - mask) * finfo.min is the first op: 0 * -inf gives NaN.
    assert first.op_type == "mul", text
    assert first.name in text and "FIRST NON-FINITE" in text


def test_finfo_min_mask_constant_is_flagged_in_both_programs(finfo_mask_report):
    kinds = {(w.program, w.kind) for w in finfo_mask_report.constant_warnings}
    text = finfo_mask_report.render()
    assert ("fp32 program", "overflow") in kinds, text
    assert ("fp16 program", "infinite") in kinds, text


def test_layer_norm_epsilon_1e_12_is_flagged_as_subnormal_and_underflow(finfo_mask_report):
    warnings = finfo_mask_report.constant_warnings
    text = finfo_mask_report.render()
    fp16_eps = [w for w in warnings if w.program == "fp16 program" and w.kind == "subnormal"]
    assert any("layer_norm" in user for w in fp16_eps for user in w.used_by), text
    fp32_eps = [w for w in warnings if w.program == "fp32 program" and w.kind == "underflow"]
    assert any("layer_norm" in user and "epsilon" in user for w in fp32_eps for user in w.used_by), text
    assert "1e-12" in text and "5.96e-08" in text


def test_a_finite_mask_program_has_no_non_finite_op_and_ranks_ops_by_own_psnr(saved_models):
    path, _, feed = saved_models["bert_finite_mask_fp16"]
    report = find_hazards(path, feed)
    assert report.first_non_finite is None, report.render()
    values = [op.own_psnr_db for op in report.ops_by_precision]
    assert values == sorted(values) and len(values) > 10
    assert all(np.isfinite(op.psnr_db) for op in report.ops_by_precision), report.render()
    assert all(np.isfinite(v) for v in values), report.render()
    assert report.ops_by_precision[0].name in report.render(top=3)
    (output_psnr,) = report.output_psnr_db.values()
    assert 40 < output_psnr < 120, report.render()


def test_runtime_overflow_only_in_fp16_is_found_with_the_fp32_run_finite():
    @mb.program(input_specs=[mb.TensorSpec(shape=(4,), dtype=types.fp16)])
    def program(x):
        big = mb.mul(x=x, y=np.float16(300.0), name="scale_up")
        bigger = mb.mul(x=big, y=np.float16(300.0), name="overflows")
        return mb.sub(x=bigger, y=bigger, name="inf_minus_inf")

    report = find_hazards(program, {"x": np.array([1, 2, 3, 4], np.float16)})
    first = report.first_non_finite
    assert first is not None and first.name == "overflows" and first.inf_count == 4, report.render()
    assert first.reference_is_finite, report.render()


@pytest.mark.parametrize("fp16_mode", ["fp16_storage", "fp16_native"])
def test_the_op_that_loses_precision_ranks_first_not_the_ops_that_inherit_it(fp16_mode):
    """``lossy`` scales x in [0.5, 1) by 2**-20, into fp16's subnormal range (spacing 2**-24: a few % error;
    56 dB measured, the PSNR formula's +1e-5 dominating these tiny values); the next two multiplications
    by 1024 are exact in fp16 (own loss: none), and so is the subtraction of 0.75, which halves the output
    range. Their drift (34.9, 34.8, 22.7 dB measured) is below the lossy op's: ranked by drift, the
    subtraction would come first; ranked by the precision each op loses itself, ``lossy`` must."""

    @mb.program(input_specs=[mb.TensorSpec(shape=(64,), dtype=types.fp16)])
    def program(x):
        lossy = mb.mul(x=x, y=np.float16(2.0**-20), name="lossy")
        back = mb.mul(x=lossy, y=np.float16(1024.0), name="exact_scale_1")
        back = mb.mul(x=back, y=np.float16(1024.0), name="exact_scale_2")
        return mb.sub(x=back, y=np.float16(0.75), name="exact_centering")

    x = np.random.default_rng(0).uniform(0.5, 1.0, 64).astype(np.float16)
    report = find_hazards(program, {"x": x}, fp16_mode=fp16_mode)
    text = report.render()
    by_name = {op.name: op for op in report.ops_by_precision}
    assert report.ops_by_precision[0].name == "lossy", text
    assert by_name["lossy"].own_psnr_db < 60, text
    for name in ("exact_scale_1", "exact_scale_2", "exact_centering"):
        # exact in fp16: no loss of their own, whatever they inherit
        assert by_name[name].own_psnr_db > 100, text
        assert by_name[name].psnr_db < by_name["lossy"].psnr_db, text  # the drift figure is kept
    assert by_name["exact_centering"].input_psnr_db == by_name["exact_scale_2"].psnr_db, text
    assert "own" in text and "drift" in text


def test_a_constant_folded_op_that_overflows_is_compared_and_named_first():
    """``300 * 300`` has constant inputs only: the executor would fold it at load and never observe it;
    in fp16 it is inf (90000 > 65504). The hazard finder must name it, not the op that reads it."""

    @mb.program(input_specs=[mb.TensorSpec(shape=(4,), dtype=types.fp16)])
    def program(x):
        product = mb.mul(x=np.float16(300.0), y=np.float16(300.0), name="folded_overflow")
        return mb.add(x=x, y=product, name="reads_it")

    report = find_hazards(program, {"x": np.ones(4, np.float16)})
    first = report.first_non_finite
    text = report.render()
    assert first is not None and first.name == "folded_overflow", text
    assert first.reference_is_finite and first.inf_count == 1, text
    assert report.ops_by_precision[0].name == "folded_overflow", text
    assert report.ops_by_precision[0].own_psnr_db == float("-inf"), text


# ---------------------------------------------------------------- the first op that goes bad, even partly


def partly_overflowing_program():
    """One of 8 elements of ``partly_overflows`` (300 * 300 = 90000) is inf in fp16; the reduction that
    reads it is inf in its only element, and the add after it is inf everywhere."""

    @mb.program(input_specs=[mb.TensorSpec(shape=(8,), dtype=types.fp16)])
    def program(x):
        scaled = mb.mul(x=x, y=np.float16(300.0), name="partly_overflows")
        total = mb.reduce_sum(x=scaled, axes=[0], keep_dims=True, name="inf_sum")
        return mb.add(x=x, y=total, name="all_inf")

    return program


def partly_nan_program():
    """``x - x`` is NaN where the fp16 input holds inf (an fp32 input of 70000 stored as fp16) and 0
    elsewhere; the fp32 run is 0 everywhere. Then a sum (NaN) and an add (NaN everywhere)."""

    @mb.program(input_specs=[mb.TensorSpec(shape=(2, 4), dtype=types.fp16)])
    def program(x):
        zero = mb.sub(x=x, y=x, name="partly_nan")
        total = mb.reduce_sum(x=zero, axes=[0, 1], keep_dims=True, name="nan_sum")
        return mb.add(x=x, y=total, name="all_nan")

    return program


@pytest.mark.parametrize("fp16_mode", ["fp16_storage", "fp16_native"])
@pytest.mark.parametrize("bad_position", [0, 3, 7])
def test_an_op_that_goes_inf_in_one_element_is_named_not_the_ops_that_go_inf_everywhere(
    fp16_mode, bad_position
):
    x = np.arange(1, 9, dtype=np.float16)
    x[bad_position] = 300.0
    report = find_hazards(partly_overflowing_program(), {"x": x}, fp16_mode=fp16_mode)
    first, text = report.first_non_finite, report.render()
    assert first is not None and first.name == "partly_overflows", text
    assert (first.inf_count, first.nan_count, first.size) == (1, 0, 8), text
    assert first.reference_is_finite, text


@pytest.mark.parametrize("fp16_mode", ["fp16_storage", "fp16_native"])
def test_an_op_that_goes_nan_in_one_element_is_named_not_the_ops_after_it(fp16_mode):
    x = np.full((2, 4), 1.5, np.float32)
    x[1, 2] = 70000.0  # beyond fp16's range: stored as inf by the fp16 run, kept by the fp32 run
    report = find_hazards(partly_nan_program(), {"x": x}, fp16_mode=fp16_mode)
    first, text = report.first_non_finite, report.render()
    assert first is not None and first.name == "partly_nan", text
    assert (first.nan_count, first.inf_count, first.size) == (1, 0, 8), text
    assert first.reference_is_finite, text
    assert "FIRST NON-FINITE: op #" in text and "'partly_nan'" in text and "1 NaN, 0 Inf of 8" in text


def test_the_finder_holds_only_live_values_not_every_activation():
    """A chain of 48 ops on a 4 MB tensor: the finder's runs go in lockstep, each holding what is still to
    be read, so its peak grows by a few tensors; holding every activation of the reference run and of the
    own-loss run (as it once did) is 2 x 48 x 4 MB."""
    import coremltools as ct
    from coremltools.converters.mil.mil import Function, Program

    from verification.release.resources import StageMeter

    size, count = 1 << 20, 48
    rng = np.random.default_rng(4)
    with Function({"x": mb.placeholder(shape=(1, size), dtype=types.fp16)}, ct.target.iOS16) as function:
        y = function.inputs["x"]
        for i in range(count):
            y = mb.add(x=y, y=np.float16(0.001 * (i + 1)), name=f"step_{i}")
        function.set_outputs([y])
    program = Program()
    program.add_function("main", function)
    feed = {"x": rng.standard_normal((1, size)).astype(np.float16)}
    meter = StageMeter()
    with meter.stage("hazards"):
        report = find_hazards(program, feed)
    stage = meter.stages[-1]
    if stage["peak_scope"] != "stage":
        pytest.skip("this kernel cannot reset the peak-RSS mark: a stage's own peak is not measurable")
    grown = stage["peak_mb"] - stage["start_mb"]
    assert len(report.ops_by_precision) == count and report.first_non_finite is None, report.render()
    held_all = 2 * count * size * 4 / 1e6
    assert grown < held_all / 2, f"the finder grew {grown:.0f} MB; all activations twice: {held_all:.0f} MB"
