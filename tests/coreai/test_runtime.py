"""Core AI's runtime paths. The interpreter path runs for real here; the macOS 27 OS-runtime path
(specialization options per compute unit) runs against recorded answers: what the interpreter returned
for a tiny BERT, served by a stand-in of ``coreai.runtime`` (tests/coreai/recorded_runtime.py). On a
Mac with Core AI the ``macos`` tests run the same model on the real OS runtime, on every compute unit."""

import numpy as np
import pytest
import torch
from coreai_cases import model_under_test, torch_outputs
from recorded_runtime import MODEL_ID, PRECISIONS, RecordedRuntime, load_recorded

from verification import thresholds
from verification.metrics import assert_parity, psnr

pytestmark = pytest.mark.coreai
FLOORS = {"fp32": thresholds.COREAI_FP32_PSNR_DB, "fp16": thresholds.COREAI_FP16_PSNR_DB}


def recorded(precision):
    data = load_recorded(precision)
    inputs = {k.split(":", 1)[1]: v for k, v in data.items() if k.startswith("input:")}
    outputs = {k.split(":", 1)[1]: v for k, v in data.items() if k.startswith("output:")}
    return inputs, outputs


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    from verification.coreai import convert, save

    model, inputs = model_under_test(MODEL_ID)
    return {
        precision: save(
            convert(model, inputs, precision=precision), tmp_path_factory.mktemp(precision) / "m.aimodel"
        )
        for precision in PRECISIONS
    }


@pytest.mark.parametrize("precision", PRECISIONS)
def test_the_recorded_answers_are_what_the_interpreter_returns_today(saved, precision):
    """Guards the recordings: re-record (python tests/coreai/recorded_runtime.py) when Core AI changes."""
    from verification.coreai import predict

    inputs, outputs = recorded(precision)
    live = predict(saved[precision], inputs)
    assert list(live) == list(outputs)
    for name, value in outputs.items():
        assert live[name].dtype == value.dtype and np.array_equal(live[name], value), (
            f"{MODEL_ID} {precision} {name!r}: the interpreter now returns other values "
            f"({psnr(value, live[name]):.1f} dB against the recording)"
        )


@pytest.mark.parametrize("precision", PRECISIONS)
@pytest.mark.parametrize("compute_unit", [None, "cpu_only", "cpu", "gpu", "neural_engine"])
def test_the_os_runtime_path_with_recorded_answers(saved, precision, compute_unit):
    from verification.coreai import describe, predict

    inputs, outputs = recorded(precision)
    runtime = RecordedRuntime(inputs, outputs)
    got = predict(saved[precision], inputs, compute_unit=compute_unit, runtime=runtime)
    # the options asked for the compute unit; inputs went in as NDArray by name, unchanged dtypes
    [(path, options)] = runtime.loads
    assert path == saved[precision]
    expected_options = {
        None: "preferred=None",
        "cpu_only": "cpu_only",
        "cpu": "preferred=ComputeUnitKind.cpu",
        "gpu": "preferred=ComputeUnitKind.gpu",
        "neural_engine": "preferred=ComputeUnitKind.neural_engine",
    }[compute_unit]
    assert repr(options) == expected_options
    [feeds] = runtime.calls
    assert {n: (v.numpy().dtype, v.shape) for n, v in feeds.items()} == {
        n: (v.dtype, v.shape) for n, v in inputs.items()
    }
    assert list(got) == list(outputs), "outputs come back in the function's declared order"
    assert "OS runtime" in describe(compute_unit, runtime=runtime)
    # and the answers are the model's
    model, torch_inputs = model_under_test(MODEL_ID)
    for reference, output in zip(torch_outputs(model, torch_inputs), got.values(), strict=True):
        assert_parity(
            reference, output, min_psnr_db=FLOORS[precision], name=f"{MODEL_ID} {precision} [{compute_unit}]"
        )


def test_the_os_runtime_path_checks_inputs_before_calling(saved):
    from verification.coreai import CoreAIRuntimeError, predict

    inputs, outputs = recorded("fp16")
    runtime = RecordedRuntime(inputs, outputs)
    wrong = {**inputs, "attention_mask": inputs["attention_mask"].astype(np.int64)}
    with pytest.raises(CoreAIRuntimeError, match="input 'attention_mask': expected dtype int32, got int64"):
        predict(saved["fp16"], wrong, compute_unit="neural_engine", runtime=runtime)
    assert runtime.calls == []


def test_the_interpreter_is_named_in_reports():
    from verification.coreai import describe

    assert describe().startswith("Core AI interpreter (coreai-core 1.0.0b3, bundled,")


def _os_runtime_or_skip():
    from verification.coreai.runtime import uses_os_runtime

    if not uses_os_runtime():
        pytest.skip("needs Core AI's OS runtime (macOS 27); here only the bundled interpreter runs")


@pytest.mark.macos
@pytest.mark.parametrize("precision", PRECISIONS)
@pytest.mark.parametrize("compute_unit", ["cpu_only", "gpu", "neural_engine"])
def test_the_os_runtime_on_every_compute_unit(saved, precision, compute_unit):
    _os_runtime_or_skip()
    from verification.coreai import predict

    model, inputs = model_under_test(MODEL_ID)
    feeds, _ = recorded(precision)
    got = predict(saved[precision], feeds, compute_unit=compute_unit)
    with torch.no_grad():
        expected = torch_outputs(model, inputs)
    for reference, output in zip(expected, got.values(), strict=True):
        assert_parity(
            reference, output, min_psnr_db=FLOORS[precision], name=f"{MODEL_ID} {precision} on {compute_unit}"
        )
