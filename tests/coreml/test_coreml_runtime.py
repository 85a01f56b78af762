"""Core ML itself runs the project's models (macOS with coremltools' native extension; skipped elsewhere
with the reason by the ``macos`` marker).

The same programs as test_model_programs.py (every ane_models family and head, the reference
encoder-decoder Transformer, the query-chunked models; converted by ``verification.coreml.convert``,
traced and exported, fp32 and fp16) run through ``predict(backend="coreml")`` on CPU_ONLY and on ALL
compute units, against torch, with the floors the MIL executor tests use. fp16 programs take the native
fp16 arithmetic floor: Core ML computes fp16 programs in fp16 on the GPU and the Neural Engine. The
stateful prefill + decode package of a tiny Llama runs through Core ML's MLState (StatefulSession),
step by step against transformers and token for token against the MIL executor. None of
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


# ---------------------------------------------------------------- stateful multifunction programs


@pytest.fixture(scope="module")
def tiny_decoder_package(tmp_path_factory):
    """The tiny seeded Llama of test_decoder_programs.py as a prefill + decode package, state cache."""
    from test_decoder_programs import CAPACITY, PREFILL, tiny_llama

    import ane_models
    from verification.decoders.conversion import convert_decoder

    hf = tiny_llama()
    lm = ane_models.optimize(hf, cache_capacity=CAPACITY, prefill_length=PREFILL)
    root = tmp_path_factory.mktemp("coreml_decoder")
    packages = {p: convert_decoder(lm, root / f"{p}.mlpackage", precision=p).path for p in ("fp32", "fp16")}
    return hf, lm, packages


@pytest.mark.parametrize("units", COMPUTE_UNITS)
@pytest.mark.parametrize("precision", ["fp32", "fp16"])
def test_core_ml_runs_the_stateful_decoder_step_by_step_like_transformers(
    tiny_decoder_package, precision, units
):
    """Core ML's own MLState through StatefulSession: prefill, then every decode step's logits against
    transformers, and the greedy tokens against the MIL executor's on the same package."""
    import torch
    from test_decoder_programs import NEW_TOKENS

    from verification.decoders.checks import compare_steps, reference_logits, token_agreement
    from verification.decoders.program_lm import ProgramCausalLM

    hf, lm, packages = tiny_decoder_package
    prompt = torch.randint(0, 96, (1, 6), generator=torch.Generator().manual_seed(1))
    tokens, logits = reference_logits(hf, prompt, NEW_TOKENS)
    on_coreml = ProgramCausalLM(
        packages[precision], lm.decoder_config, backend="coreml", compute_units=ct.ComputeUnit[units]
    )
    figures = compare_steps(on_coreml, tokens, logits, prompt.shape[1])
    floor = thresholds.DECODER_STEP_PSNR_DB[precision]
    assert figures.worst_psnr_db > floor, f"{precision} on {units}: per-step PSNR {figures.psnr_db}"
    on_mil = ProgramCausalLM(packages[precision], lm.decoder_config, backend="mil")
    assert token_agreement(on_coreml, prompt, tokens).tokens == token_agreement(on_mil, prompt, tokens).tokens


def test_core_ml_keeps_the_states_of_one_session_apart(tiny_decoder_package):
    """Two sessions' states stay apart on Core ML too: a decode step on one leaves the other unchanged."""
    from verification.coreml import StatefulSession

    _, _, packages = tiny_decoder_package
    session = StatefulSession(packages["fp16"], backend="coreml")
    feed = {
        "input_ids": np.array([[5]], np.int32),
        "position": np.array([0], np.int32),
        "position_ids": np.array([[0]], np.int32),
        "attention_mask": np.ones((1, 40), np.int32),
    }
    first, second = session.make_state(), session.make_state()
    a = session.predict(feed, function_name="decode", state=first)["logits"]
    session.predict({**feed, "input_ids": np.array([[9]], np.int32)}, function_name="decode", state=second)
    again = session.predict(feed, function_name="decode", state=session.make_state())["logits"]
    np.testing.assert_allclose(a, again, rtol=1e-3, atol=1e-3)
