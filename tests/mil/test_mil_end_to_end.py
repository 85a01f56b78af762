"""Convert small torch modules with coremltools, save them, run the saved programs through the executor
and compare with torch. Conversions happen once per session (module-level cache)."""

from __future__ import annotations

import coremltools as ct
import numpy as np
import pytest
from coremltools.converters.mil.mil import Builder as mb
from coremltools.converters.mil.mil import types
from mil_testing import describe_difference

from verification.metrics import psnr
from verification.mil import KERNELS, MILExecutor

pytestmark = pytest.mark.coreml

# Floors: the lowest PSNR measured here (coremltools 9.0, torch 2.13, the seeds of conftest.py; printed by
# test_converted_program_matches_torch with -s) minus about 10 dB for other toolchains of the matrix.
# fp32 programs: ANE block 116.1, embedding 212.3, BERT 208.5 dB.
# fp16 storage: ANE block 74.2 (both targets), embedding 84.2, BERT 73.1 dB -> floor 63.
# fp16 native: ANE block 72.1 (both targets), embedding 84.2, BERT 73.1 dB -> floor 62.
FP32_FLOOR_DB = 90.0
FP16_FLOOR_DB = {"fp16_storage": 63.0, "fp16_native": 62.0}

TARGETS = {"default": None, "iOS16": ct.target.iOS16}  # the same targets conftest converts for


PARITY_CASES = [f"ane_block_{p}_{t}" for p in ("fp32", "fp16") for t in TARGETS]
PARITY_CASES += ["embedding_fp32", "embedding_fp16", "bert_finite_mask_fp32", "bert_finite_mask_fp16"]


@pytest.mark.parametrize("case", PARITY_CASES)
def test_converted_program_matches_torch(saved_models, case):
    path, reference, feed = saved_models[case]
    modes = ["fp32"] if case.endswith("fp32") or "_fp32_" in case else ["fp16_storage", "fp16_native"]
    for mode in modes:
        executor = MILExecutor(path, mode=mode)
        (output,) = executor.run(feed).values()
        floor = FP32_FLOOR_DB if mode == "fp32" else FP16_FLOOR_DB[mode]
        value = psnr(reference, output)
        print(f"{case} [{mode}]: {value:.1f} dB")
        assert value >= floor, (
            f"{case} [{mode}]: {value:.1f} dB < {floor} dB; {describe_difference(reference, output)}"
        )


def test_default_mode_follows_program_precision(saved_models):
    assert MILExecutor(saved_models["ane_block_fp16_default"][0]).mode == "fp16_storage"
    assert MILExecutor(saved_models["ane_block_fp32_default"][0]).mode == "fp32"


def test_fp16_program_outputs_fp16_from_ios16_on_and_fp32_with_boundary_casts(saved_models):
    for case, dtype in (("ane_block_fp16_iOS16", np.float16), ("ane_block_fp16_default", np.float32)):
        path, _, feed = saved_models[case]
        (output,) = MILExecutor(path).run(feed).values()
        assert output.dtype == dtype, f"{case}: output dtype {output.dtype}, expected {dtype}"


def test_in_memory_mlmodel_runs_like_its_saved_package(saved_models, tmp_path):
    path, _, feed = saved_models["ane_block_fp32_default"]
    model = ct.models.MLModel(str(path), skip_model_load=True)
    before = sorted(p.name for p in tmp_path.parent.iterdir())
    (from_model,) = MILExecutor(model).run(feed).values()
    (from_path,) = MILExecutor(path).run(feed).values()
    assert np.array_equal(from_model, from_path)
    assert sorted(p.name for p in tmp_path.parent.iterdir()) == before


def test_observe_sees_every_running_op_in_program_order(saved_models):
    path, _, feed = saved_models["ane_block_fp16_default"]
    executor = MILExecutor(path)
    seen = []
    executor.run(feed, observe=lambda info, outputs: seen.append((info.position, info.op_type, outputs)))
    assert len(seen) == executor.op_count
    assert [p for p, _, _ in seen] == sorted(p for p, _, _ in seen)
    intermediates = executor.run_all_intermediates(feed)
    names = []
    executor.run(feed, observe=lambda info, outputs: names.extend(info.output_names))
    assert set(intermediates) == set(names)
    assert all(isinstance(value, np.ndarray) for value in intermediates.values())


def test_every_op_type_that_conversion_produces_has_a_kernel(saved_models):
    """Coverage grounded in what conversion really produces (ANE block, embedding, BERT; fp32 and fp16;
    default and iOS16 targets)."""
    found = {}
    for name, (path, _, _) in saved_models.items():
        executor = MILExecutor(path, mode="fp32")
        for op in executor.function.operations:
            found.setdefault(op.op_type, set()).add(name)
    print("op types produced by conversion:", sorted(found))
    missing = {op: sorted(cases) for op, cases in found.items() if op != "const" and op not in KERNELS}
    assert not missing, f"op types without a kernel: {missing}"
    for expected in (
        "conv",
        "einsum",
        "softmax",
        "split",
        "concat",
        "layer_norm",
        "gather",
        "gelu",
        "linear",
    ):
        assert expected in found, f"conversion no longer produces {expected!r}; found {sorted(found)}"


def test_constant_ops_fold_at_load_or_run_at_call_time():
    """Folding is an optimisation only: with fold_constants=False the same op runs (and is observed) on
    every call and the outputs are the same."""

    @mb.program(input_specs=[mb.TensorSpec(shape=(3,), dtype=types.fp32)])
    def program(x):
        product = mb.mul(x=np.float32(3.0), y=np.array([1.0, 2.0, 4.0], np.float32), name="product")
        return mb.add(x=x, y=product, name="total")

    feed = {"x": np.array([0.5, -1.0, 2.0], np.float32)}
    folded, unfolded = MILExecutor(program), MILExecutor(program, fold_constants=False)
    assert [info.name for info in folded.folded_ops] == ["product"] and unfolded.folded_ops == []
    assert unfolded.op_count == folded.op_count + 1
    seen = []
    (from_unfolded,) = unfolded.run(feed, observe=lambda info, _: seen.append(info.name)).values()
    (from_folded,) = folded.run(feed).values()
    assert seen == ["product", "total"]
    np.testing.assert_array_equal(from_unfolded, from_folded)
    np.testing.assert_array_equal(from_folded, feed["x"] + np.array([3.0, 6.0, 12.0], np.float32))
