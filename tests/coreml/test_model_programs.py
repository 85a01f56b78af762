"""End-to-end parity: every ane_models family and head, torch vs its converted ML Program run by the
MIL reference executor (Core ML itself on macOS: see test_coreml_runtime.py)."""

import pytest
import torch
from tiny_models import FAMILIES, HEADS, ane_model, input_dict, model_inputs, output_names

from verification import thresholds
from verification.coreml import predict
from verification.metrics import assert_parity

pytestmark = pytest.mark.coreml

ALL_MODELS = [(f, h) for f in FAMILIES for h in HEADS]


def _check(converted, family, head, precision, exporter, min_psnr_db):
    mlmodel = converted(family, head, precision, exporter)
    inputs = model_inputs(family, head)
    with torch.no_grad():
        expected = ane_model(family, head)(*inputs)
    outputs = predict(mlmodel, input_dict(mlmodel, inputs), backend="mil")
    names = output_names(mlmodel)
    assert len(names) == len(expected), f"{family} {head}: {names} vs {len(expected)} torch outputs"
    for name, reference in zip(names, expected, strict=True):
        assert_parity(
            reference,
            outputs[name],
            min_psnr_db=min_psnr_db,
            name=f"{family} {head} output {name!r} [{precision} program, {exporter}, MIL executor]",
            context=f"inputs {[tuple(x.shape) for x in inputs]}, row 1 padded from {11}",
        )


@pytest.mark.parametrize("family,head", ALL_MODELS)
def test_fp32_program_matches_torch_traced(converted, family, head):
    _check(converted, family, head, "fp32", "trace", thresholds.COREML_FP32_PSNR_DB)


@pytest.mark.parametrize("family,head", ALL_MODELS)
def test_fp32_program_matches_torch_exported(converted, family, head):
    _check(converted, family, head, "fp32", "export", thresholds.COREML_FP32_PSNR_DB)


@pytest.mark.parametrize("family", list(FAMILIES))
@pytest.mark.parametrize("head", ["Model", "ForSequenceClassification", "ForQuestionAnswering"])
def test_fp16_program_stays_above_its_floor(converted, family, head):
    _check(converted, family, head, "fp16", "trace", thresholds.COREML_FP16_RANDOM_PSNR_DB)


def test_fp16_programs_carry_no_unrepresentable_constants(converted):
    """No -inf, no overflow, no eps that rounds to 0; the fp16-safe eps 2**-23 is a subnormal, by choice."""
    from verification.mil import load_program
    from verification.mil.hazards import scan_constants

    for family in FAMILIES:
        program = load_program(converted(family, "Model", "fp16"))
        warnings = scan_constants(program, "fp16")
        hazards = [w for w in warnings if w.kind != "subnormal"]
        assert hazards == [], f"{family}: {hazards}"
        assert all(w.used_by and all(".epsilon" in use for use in w.used_by) for w in warnings), warnings
