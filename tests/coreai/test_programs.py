"""Parity of Core AI programs, run by Core AI's runtime (the bundled interpreter here), against torch:
every ane_models family and head, the reference Transformer, query-chunked models and the transformers
baselines, fp32 and fp16. Gates and their measurements: verification/thresholds.py (COREAI_*)."""

import pytest
from coreai_cases import (
    ALL_MODELS,
    BASELINE_MODELS,
    REPRESENTATIVE_MODELS,
    model_under_test,
    source_outputs,
    torch_outputs,
)

from verification import thresholds
from verification.metrics import assert_parity

pytestmark = pytest.mark.coreai

RE_AUTHORED = [m for m in ALL_MODELS if m not in BASELINE_MODELS]
# Core AI's fp16 program of the plain transformers BERT classifier is 14 dB below torch's own fp16 run of
# it (46.9 vs 60.7 dB, measured): below the published 50 dB. The ANE twin is not (62.4 dB).
FP16_BELOW_PUBLISHED = {"baseline-bert-ForSequenceClassification"}


def fp16_floor(model_id: str) -> float:
    if "ForMultipleChoice" in model_id:
        return thresholds.COREAI_FP16_MULTIPLE_CHOICE_PSNR_DB
    return thresholds.COREAI_FP16_PSNR_DB


def run(program, model_id):
    from verification.coreai import describe, predict

    _, inputs = model_under_test(model_id)
    outputs = predict(program, program.feeds(inputs))
    assert list(outputs) == program.output_names, f"{model_id}: outputs {list(outputs)}"
    return list(outputs.values()), describe()


def assert_outputs(model_id, expected, got, min_psnr_db, label):
    assert len(expected) == len(got), f"{model_id}: {len(got)} outputs vs {len(expected)} expected"
    for index, (reference, output) in enumerate(zip(expected, got, strict=True)):
        result = assert_parity(
            reference,
            output,
            min_psnr_db=min_psnr_db,
            name=f"{model_id} output {index} [{label}]",
            context="padded second row, LayerNorm affines randomized",
        )
        print(f"{model_id} output {index} [{label}]: {result.psnr_db:.1f} dB")  # the measurements (pytest -s)


# The query-chunked reference Transformer converts in about 12 s (the tiny reference itself too): slow.
SLOW_FP32 = {"reference-Transformer-query_chunked"}


def _fp32_case(model_id):
    return pytest.param(model_id, marks=pytest.mark.slow) if model_id in SLOW_FP32 else model_id


@pytest.mark.parametrize("model_id", [_fp32_case(m) for m in ALL_MODELS])
def test_fp32_program_matches_torch_and_the_source_model(coreai_converted, model_id):
    """Against the torch model it was converted from (COREAI_FP32_PSNR_DB), and, for a re-authored model,
    Core AI's published bar against the source model (transformers or torch.nn.Transformer), > 70 dB."""
    model, inputs = model_under_test(model_id)
    got, runtime = run(coreai_converted(model_id, "fp32"), model_id)
    assert_outputs(
        model_id, torch_outputs(model, inputs), got, thresholds.COREAI_FP32_PSNR_DB, f"fp32, {runtime}"
    )
    if model_id in RE_AUTHORED:
        assert_outputs(
            model_id,
            source_outputs(model_id),
            got,
            thresholds.COREAI_REAUTHORED_PSNR_DB,
            f"vs source, {runtime}",
        )


def _fp16_case(model_id):
    if model_id in FP16_BELOW_PUBLISHED:
        return pytest.param(model_id, marks=pytest.mark.xfail(strict=True, reason="measured below 50 dB"))
    return model_id


@pytest.mark.parametrize("model_id", [_fp16_case(m) for m in REPRESENTATIVE_MODELS])
def test_fp16_program_matches_torch(coreai_converted, model_id):
    model, inputs = model_under_test(model_id)
    got, runtime = run(coreai_converted(model_id, "fp16"), model_id)
    assert_outputs(model_id, torch_outputs(model, inputs), got, fp16_floor(model_id), f"fp16, {runtime}")


@pytest.mark.slow
@pytest.mark.parametrize("model_id", [_fp16_case(m) for m in ALL_MODELS if m not in REPRESENTATIVE_MODELS])
def test_fp16_program_of_every_other_model_matches_torch(coreai_converted, model_id):
    test_fp16_program_matches_torch(coreai_converted, model_id)


def test_fp16_programs_are_fp16(coreai_converted):
    """precision='fp16' really converts a half-precision model: fp16 float inputs and outputs."""
    program = coreai_converted("reference-Transformer", "fp16")
    assert {str(program.input_dtypes[n]) for n in ("src", "tgt")} == {"float16"}, program.input_dtypes
    got, _ = run(program, "reference-Transformer")
    assert {str(x.dtype) for x in got} == {"float16"}
