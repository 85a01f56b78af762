"""Core ML itself runs the project's models (macOS with coremltools' native extension; skipped elsewhere
with the reason by the ``macos`` marker).

The same programs as test_model_programs.py (every ane_models family and head, the reference
encoder-decoder Transformer, the query-chunked models; converted by ``verification.coreml.convert``,
traced and exported, fp32 and fp16) run through ``predict(backend="coreml")`` on CPU_ONLY and on ALL
compute units, against torch, with the floors the MIL executor tests use. fp16 programs take the native
fp16 arithmetic floor: Core ML computes fp16 programs in fp16 on the GPU and the Neural Engine. None of
these figures has been measured on a Mac yet: a first run there says whether the floors hold on device.
"""

import coremltools as ct
import numpy as np
import pytest
from program_parity import EXPORTERS, assert_program_matches_torch, fp16_floor
from tiny_models import ALL_MODELS, input_dict, model_under_test

from verification import thresholds
from verification.coreml import predict, save

pytestmark = [pytest.mark.coreml, pytest.mark.macos]

COMPUTE_UNITS = ("CPU_ONLY", "ALL")


@pytest.mark.parametrize("units", COMPUTE_UNITS)
@pytest.mark.parametrize("exporter", EXPORTERS)
@pytest.mark.parametrize("model_id", ALL_MODELS)
def test_core_ml_runs_the_fp32_program_like_torch(converted, model_id, exporter, units):
    assert_program_matches_torch(
        converted(model_id, "fp32", exporter),
        model_id,
        thresholds.COREML_FP32_PSNR_DB,
        label=f"fp32 program, {exporter}, Core ML on {units}",
        backend="coreml",
        compute_units=ct.ComputeUnit[units],
    )


@pytest.mark.parametrize("units", COMPUTE_UNITS)
@pytest.mark.parametrize("exporter", EXPORTERS)
@pytest.mark.parametrize("model_id", ALL_MODELS)
def test_core_ml_runs_the_fp16_program_above_its_floor(converted, model_id, exporter, units):
    assert_program_matches_torch(
        converted(model_id, "fp16", exporter),
        model_id,
        fp16_floor(model_id, "fp16_native"),
        label=f"fp16 program, {exporter}, Core ML on {units}",
        backend="coreml",
        compute_units=ct.ComputeUnit[units],
    )


@pytest.mark.parametrize("units", COMPUTE_UNITS)
def test_a_saved_package_runs_on_the_requested_compute_units(converted, tmp_path, units):
    """From a path: predict loads the package on the requested units; Core ML and the executor agree."""
    model_id = "distilbert-ForSequenceClassification"
    path = save(converted(model_id, "fp32"), tmp_path / "model.mlpackage")
    _, inputs = model_under_test(model_id)
    feed = input_dict(converted(model_id, "fp32"), inputs)
    on_coreml = predict(path, feed, backend="coreml", compute_units=ct.ComputeUnit[units])
    on_mil = predict(path, feed, backend="mil")
    assert on_coreml.keys() == on_mil.keys()
    for name in on_mil:
        np.testing.assert_allclose(on_coreml[name], on_mil[name], rtol=1e-3, atol=1e-4, err_msg=name)
